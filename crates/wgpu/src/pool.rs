//! A pool of storage buffers reused across calls: explaining many images allocates once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Buffers kept for reuse, by rounded size.
pub(crate) struct Pool {
    free: Mutex<(HashMap<u64, Vec<wgpu::Buffer>>, u64)>,
    /// Most bytes kept idle before buffers are released instead.
    cap: u64,
}

/// A pooled device buffer; it returns to the pool when dropped.
pub struct GpuBuffer {
    pub(crate) buffer: Option<wgpu::Buffer>,
    pool: Arc<Pool>,
}

impl GpuBuffer {
    /// The wgpu buffer.
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("a live buffer")
    }
}

/// A tensor's device storage: one buffer, or — for a tensor larger than the adapter's largest
/// storage binding — several, each holding `part_len` consecutive values (whole rows).
pub struct Storage {
    pub(crate) parts: Vec<GpuBuffer>,
    pub(crate) part_len: usize,
}

impl Storage {
    /// The single buffer of an unsplit tensor; a split one is an error naming `op`.
    pub(crate) fn single(&self, op: &str) -> gradcam_core::Result<&GpuBuffer> {
        match &self.parts[..] {
            [b] => Ok(b),
            parts => Err(gradcam_core::Error::Backend {
                backend: "wgpu".into(),
                msg: format!(
                    "{op}: a tensor split across {} buffers (larger than the adapter's largest \
                     storage binding) can only be a linear layer's weight",
                    parts.len()
                ),
            }),
        }
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool.give_back(b);
        }
    }
}

/// Bytes actually allocated for a request (the size classes shared with the CUDA pool).
pub(crate) fn bucket(bytes: u64) -> u64 {
    gradcam_core::pool_bucket(bytes)
}

impl Pool {
    pub(crate) fn new(cap: u64) -> Arc<Self> {
        Arc::new(Pool {
            free: Mutex::new((HashMap::new(), 0)),
            cap,
        })
    }

    /// A free buffer of this bucket, if any.
    pub(crate) fn take(&self, size: u64) -> Option<wgpu::Buffer> {
        let mut g = self.free.lock().expect("pool lock");
        let b = g.0.get_mut(&size)?.pop()?;
        g.1 -= size;
        Some(b)
    }

    fn give_back(&self, b: wgpu::Buffer) {
        let size = b.size();
        let mut g = self.free.lock().expect("pool lock");
        if g.1 + size > self.cap {
            return; // dropped: released to the driver
        }
        g.1 += size;
        g.0.entry(size).or_default().push(b);
    }

    /// Wraps a buffer so that it comes back on drop.
    pub(crate) fn wrap(self: &Arc<Self>, buffer: wgpu::Buffer) -> GpuBuffer {
        GpuBuffer {
            buffer: Some(buffer),
            pool: self.clone(),
        }
    }

    /// Bytes held idle.
    pub(crate) fn idle_bytes(&self) -> u64 {
        self.free.lock().expect("pool lock").1
    }
}
