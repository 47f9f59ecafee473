//! Device memory reused across calls: a freed buffer goes back to a pool by rounded size, and the
//! next request of that size takes it (on the one stream, so reuse is ordered after every use).

use cudarc::driver::CudaSlice;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Idle buffers by rounded element count, and the elements they hold in all.
type Idle = (HashMap<usize, Vec<CudaSlice<f32>>>, usize);

/// Buffers kept for reuse, by rounded element count.
pub(crate) struct Pool {
    /// The device's context: made current before a buffer is freed, so that the free goes to
    /// this device whichever thread drops the last handle.
    ctx: Arc<cudarc::driver::CudaContext>,
    free: Mutex<Idle>,
    /// Most elements kept idle before buffers are released instead.
    cap: usize,
}

/// A pooled device buffer of at least the tensor's element count; it returns to the pool when
/// dropped.
pub struct DeviceBuffer {
    pub(crate) slice: Option<CudaSlice<f32>>,
    pool: Arc<Pool>,
}

impl DeviceBuffer {
    /// The device slice.
    pub(crate) fn raw(&self) -> &CudaSlice<f32> {
        self.slice.as_ref().expect("a live buffer")
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if let Some(s) = self.slice.take() {
            self.pool.give_back(s);
        }
    }
}

impl Pool {
    pub(crate) fn new(ctx: Arc<cudarc::driver::CudaContext>, cap_bytes: usize) -> Arc<Self> {
        Arc::new(Pool {
            ctx,
            free: Mutex::new((HashMap::new(), 0)),
            cap: cap_bytes / 4,
        })
    }

    /// A free buffer of `len` (already rounded) elements, if any.
    pub(crate) fn take(&self, len: usize) -> Option<CudaSlice<f32>> {
        let mut g = self.free.lock().expect("pool lock");
        let s = g.0.get_mut(&len)?.pop()?;
        g.1 -= len;
        Some(s)
    }

    fn give_back(&self, s: CudaSlice<f32>) {
        let len = s.len();
        let mut g = self.free.lock().expect("pool lock");
        if g.1 + len > self.cap {
            let _ = self.ctx.bind_to_thread();
            return; // dropped: freed to the driver
        }
        g.1 += len;
        g.0.entry(len).or_default().push(s);
    }

    /// Frees every idle buffer (after an allocation failed).
    pub(crate) fn release(&self) {
        let mut g = self.free.lock().expect("pool lock");
        let _ = self.ctx.bind_to_thread();
        g.0.clear();
        g.1 = 0;
    }

    /// Wraps a slice so that it comes back on drop.
    pub(crate) fn wrap(self: &Arc<Self>, slice: CudaSlice<f32>) -> DeviceBuffer {
        DeviceBuffer {
            slice: Some(slice),
            pool: self.clone(),
        }
    }

    /// Bytes held idle.
    pub(crate) fn idle_bytes(&self) -> usize {
        self.free.lock().expect("pool lock").1 * 4
    }
}
