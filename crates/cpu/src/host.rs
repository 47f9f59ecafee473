//! The CPU backend's tensor memory: a `Vec<f32>` whose large allocations are recycled.
//!
//! A new tensor's memory had to be zeroed before a kernel wrote it, and a forward pass makes
//! tensors of megabytes, layer after layer: ResNet-50's forward zeroed about 40 MB, 2–3 % of its
//! time. A convolution writes every value of its output, so its output may start from any
//! initialised memory: [`HostBuf`]s of [`RECYCLED`] values or more go, when dropped, to a pool
//! of freed buffers, from which [`filled_by`] takes one of the same length (stale values, never
//! read) before it makes a new one, and [`zeros`] takes one and zeroes it. The pool holds at
//! most [`POOL_BYTES`]: a buffer that does not fit first frees others (of other lengths
//! first), so buffers of lengths no longer used (another model, another input size) do not stay
//! for good.

use rayon::prelude::*;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Values from which a buffer is recycled (and zeroed on every thread when new).
pub(crate) const RECYCLED: usize = 1 << 16;

/// The most memory the pool of freed buffers holds (bytes).
pub(crate) const POOL_BYTES: usize = 256 << 20;

/// The process's pool of freed buffers.
static POOL: Mutex<Pool> = Mutex::new(Pool::new(POOL_BYTES));

/// Freed buffers by length, up to a number of bytes.
#[derive(Debug)]
struct Pool {
    /// Bytes it may hold.
    cap: usize,
    /// Bytes it holds.
    held: usize,
    /// Buffers by length (made on first use).
    free: Option<HashMap<usize, Vec<Vec<f32>>>>,
}

impl Pool {
    const fn new(cap: usize) -> Self {
        Pool {
            cap,
            held: 0,
            free: None,
        }
    }

    /// Keeps `buf` (its length is its capacity), first giving back (returning) buffers of
    /// other lengths, then of its own, until it fits; a buffer larger than the whole pool is
    /// returned. What is returned is for the caller to free, outside the lock.
    fn put(&mut self, buf: Vec<f32>) -> Vec<Vec<f32>> {
        let (len, bytes) = (buf.len(), std::mem::size_of_val(buf.as_slice()));
        if bytes > self.cap {
            return vec![buf];
        }
        let free = self.free.get_or_insert_with(HashMap::new);
        let mut out = Vec::new();
        while self.held + bytes > self.cap {
            let victim = free
                .iter()
                .find(|(&l, v)| l != len && !v.is_empty())
                .or_else(|| free.get_key_value(&len).filter(|(_, v)| !v.is_empty()))
                .map(|(&l, _)| l);
            let Some(l) = victim else { break };
            if let Some(b) = free.get_mut(&l).and_then(Vec::pop) {
                self.held -= std::mem::size_of_val(b.as_slice());
                out.push(b);
            }
            free.retain(|_, v| !v.is_empty());
        }
        self.held += bytes;
        free.entry(len).or_default().push(buf);
        out
    }

    /// A buffer of `len` values, if one is held.
    fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let buf = self.free.as_mut()?.get_mut(&len)?.pop()?;
        self.held -= std::mem::size_of_val(buf.as_slice());
        Some(buf)
    }
}

/// The pool, whatever a panicking thread left (its state is valid between calls).
fn pool() -> MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

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
        if self.0.len() < RECYCLED || self.0.capacity() != self.0.len() {
            return;
        }
        let freed = pool().put(std::mem::take(&mut self.0));
        drop(freed);
    }
}

/// `len` zeros; a large vector zeroed by every thread (a tensor's zeroing, on one thread while
/// the other waited, took 4 % of ResNet-50's Guided Grad-CAM), in a recycled buffer when the
/// pool has one of that length.
pub(crate) fn zeros(len: usize) -> HostBuf {
    if let Some(mut data) = recycled(len) {
        data.par_iter_mut().for_each(|v| *v = 0.0);
        return HostBuf(data);
    }
    if len < RECYCLED {
        return HostBuf(vec![0.0; len]);
    }
    let mut data = Vec::with_capacity(len);
    data.par_extend(rayon::iter::repeat_n(0.0f32, len));
    HostBuf(data)
}

/// A copy of `d`: into a recycled buffer when the pool has one of that length, else a new one
/// (one pass either way).
pub(crate) fn copy_of(d: &[f32]) -> HostBuf {
    match recycled(d.len()) {
        Some(mut v) => {
            v.copy_from_slice(d);
            HostBuf(v)
        }
        None => HostBuf(d.to_vec()),
    }
}

/// A buffer of `len` values that `f` writes, every one of them, before it reads any: a
/// recycled buffer when the pool has one of that length (its old values unread), else a new
/// one. In debug builds (the tests) the buffer is filled with NaN first, recycled or not, so
/// that a value `f` leaves unwritten shows.
pub(crate) fn filled_by(len: usize, f: impl FnOnce(&mut [f32])) -> HostBuf {
    let mut buf = match recycled(len) {
        Some(mut v) => {
            if cfg!(debug_assertions) {
                v.fill(f32::NAN);
            }
            HostBuf(v)
        }
        None if cfg!(debug_assertions) => HostBuf(vec![f32::NAN; len]),
        None => zeros(len),
    };
    f(&mut buf);
    buf
}

/// A recycled buffer of exactly `len` values (old values in it), where the length is one the
/// pool keeps and it holds one.
fn recycled(len: usize) -> Option<Vec<f32>> {
    if len < RECYCLED {
        None
    } else {
        pool().take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(len: usize, v: f32) -> Vec<f32> {
        vec![v; len]
    }

    #[test]
    fn a_pool_gives_back_a_buffer_of_the_same_length_once() {
        let mut p = Pool::new(1 << 20);
        assert!(p.put(buf(1000, 1.0)).is_empty());
        assert_eq!(p.held, 4000);
        assert!(p.take(999).is_none());
        assert_eq!(p.take(1000), Some(buf(1000, 1.0)));
        assert!(p.take(1000).is_none());
        assert_eq!(p.held, 0);
    }

    #[test]
    fn a_full_pool_frees_other_lengths_first_and_never_exceeds_its_size() {
        let mut p = Pool::new(10_000);
        assert!(p.put(buf(1000, 1.0)).is_empty());
        assert!(p.put(buf(1000, 2.0)).is_empty());
        // 8000 bytes held: 1500 values more (6000) fit once one of the other length goes.
        let freed = p.put(buf(1500, 3.0));
        assert_eq!(freed, vec![buf(1000, 2.0)]);
        assert_eq!(p.held, 10_000);
        // Another of 1500: the last of the other length goes, then the older one of its own.
        let freed = p.put(buf(1500, 4.0));
        assert_eq!(freed, vec![buf(1000, 1.0), buf(1500, 3.0)]);
        assert_eq!(p.held, 6000);
        // Larger than the whole pool: not kept.
        assert_eq!(p.put(buf(3000, 5.0)).len(), 1);
        assert_eq!(p.take(1500), Some(buf(1500, 4.0)));
        assert_eq!(p.held, 0);
    }

    #[test]
    #[cfg(debug_assertions)]
    fn filled_buffers_start_as_nan_in_tests_and_keep_what_was_written() {
        let len = RECYCLED + 12_347;
        let a = filled_by(len, |v| {
            assert!(v.iter().all(|x| x.is_nan()));
            v.fill(1.0);
        });
        assert!(a.iter().all(|&x| x == 1.0));
        drop(a);
        let b = filled_by(len, |v| {
            assert!(v.iter().all(|x| x.is_nan()));
            v.fill(2.0);
        });
        assert!(b.iter().all(|&x| x == 2.0));
        assert!(zeros(len).iter().all(|&x| x == 0.0));
    }
}
