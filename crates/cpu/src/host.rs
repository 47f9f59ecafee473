//! The CPU backend's tensor memory: a `Vec<f32>` whose large allocations are recycled.
//!
//! A new tensor's memory had to be zeroed before a kernel wrote it, and a forward pass makes
//! tensors of megabytes, layer after layer: ResNet-50's forward zeroed about 40 MB, 2–3 % of its
//! time. A convolution writes every value of its output, so its output may start from any
//! initialised memory: [`HostBuf`]s of [`RECYCLED`] values or more go, when dropped, to a pool
//! of freed buffers, from which [`filled_by`] takes one of the same length (stale values, never
//! read) before it zeroes a new one. The pool holds at most [`POOL_BYTES`]; a buffer that
//! does not fit is freed.

use rayon::prelude::*;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Values from which a buffer is recycled (and zeroed on every thread when new).
pub(crate) const RECYCLED: usize = 1 << 16;

/// The most memory the pool of freed buffers holds (bytes).
pub(crate) const POOL_BYTES: usize = 256 << 20;

/// Freed buffers by length.
type Freed = HashMap<usize, Vec<Vec<f32>>>;

/// Freed buffers (made on first use), and their total size in bytes.
static POOL: Mutex<(usize, Option<Freed>)> = Mutex::new((0, None));

/// Host memory of one tensor (or a weight's rearranged copy).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HostBuf(Vec<f32>);

impl HostBuf {
    /// A buffer holding `data`.
    pub fn new(data: Vec<f32>) -> Self {
        HostBuf(data)
    }
}

impl Deref for HostBuf {
    type Target = Vec<f32>;
    fn deref(&self) -> &Vec<f32> {
        &self.0
    }
}

impl DerefMut for HostBuf {
    fn deref_mut(&mut self) -> &mut Vec<f32> {
        &mut self.0
    }
}

impl Drop for HostBuf {
    fn drop(&mut self) {
        let len = self.0.len();
        if len < RECYCLED || self.0.capacity() != len {
            return;
        }
        let bytes = len * std::mem::size_of::<f32>();
        let Ok(mut pool) = POOL.lock() else {
            return;
        };
        let (held, map) = &mut *pool;
        if *held + bytes <= POOL_BYTES {
            *held += bytes;
            let buf = std::mem::take(&mut self.0);
            map.get_or_insert_with(HashMap::new)
                .entry(len)
                .or_default()
                .push(buf);
        }
    }
}

/// A freed buffer of `len` values from the pool, if one is there.
fn recycled(len: usize) -> Option<Vec<f32>> {
    let mut pool = POOL.lock().ok()?;
    let (held, map) = &mut *pool;
    let buf = map.as_mut()?.get_mut(&len)?.pop()?;
    *held -= len * std::mem::size_of::<f32>();
    Some(buf)
}

/// `len` zeros; a large vector zeroed by every thread (a tensor's zeroing, on one thread while
/// the other waited, took 4 % of ResNet-50's Guided Grad-CAM).
pub(crate) fn zeros(len: usize) -> HostBuf {
    if len < RECYCLED {
        return HostBuf(vec![0.0; len]);
    }
    if let Some(mut data) = recycled(len) {
        data.par_iter_mut().for_each(|v| *v = 0.0);
        return HostBuf(data);
    }
    let mut data = Vec::with_capacity(len);
    data.par_extend(rayon::iter::repeat_n(0.0f32, len));
    HostBuf(data)
}

/// A buffer of `len` values that `f` writes, every one of them: a recycled buffer when the
/// pool has one of that length (its old values unread: in debug builds they are set to NaN
/// first, so that a value `f` leaves unwritten shows in the tests), else zeros.
pub(crate) fn filled_by(len: usize, f: impl FnOnce(&mut [f32])) -> HostBuf {
    let mut buf = match recycled(len) {
        Some(v) => {
            let mut v = HostBuf(v);
            if cfg!(debug_assertions) {
                v.fill(f32::NAN);
            }
            v
        }
        None => zeros(len),
    };
    f(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_large_buffer_is_recycled_once_for_its_length() {
        // A length no other test uses, so that the shared pool holds only this buffer.
        let len = RECYCLED + 12_347;
        let first = filled_by(len, |v| v.fill(1.0));
        let ptr = first.as_ptr();
        drop(first);
        let again = filled_by(len, |v| {
            // Debug builds poison the recycled values; release builds leave the old ones.
            assert!(v.iter().all(|x| x.is_nan() || *x == 1.0));
            v.fill(2.0);
        });
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.iter().all(|&x| x == 2.0));
        // The pool had one: a second request of that length gets fresh zeros.
        let fresh = filled_by(len, |v| assert!(v.iter().all(|&x| x == 0.0)));
        assert_ne!(fresh.as_ptr(), ptr);
        drop(again);
        drop(fresh);
    }

    #[test]
    fn small_buffers_are_not_pooled() {
        let len = RECYCLED - 1;
        drop(filled_by(len, |v| v.fill(1.0)));
        assert!(recycled(len).is_none());
    }
}
