//! The CPU backend's tensor memory: values in whole cache lines, starting on a line, whose
//! large allocations are recycled.
//!
//! Every buffer starts on a 64-byte line ([`Line`]): the AVX-512 micro-kernel's 64-byte loads
//! and stores along a channel plane (a 56×56 or 28×28 plane, 3136 or 784 values, starts a whole
//! number of lines after the previous one) then each touch one line, not two, and so do its
//! loads of a weight packed in panels of 64. On an Intel AVX-512 machine this and the GEMM's
//! weight prefetch made ResNet-50's forward and Guided Grad-CAM about 6 % faster
//! (docs/PERFORMANCE.md, 2026-11-28).
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

/// Values per [`Line`].
const LINE: usize = 16;

/// One 64-byte cache line of values: the unit a buffer is allocated in.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
struct Line([f32; LINE]);

/// `len` values in whole lines (the last line's values past `len` unused: never read, and
/// not compared).
#[derive(Clone, Debug, Default)]
struct Lines {
    lines: Vec<Line>,
    len: usize,
}

impl Lines {
    /// `len` values, each `v`.
    fn filled(len: usize, v: f32) -> Self {
        Lines {
            lines: vec![Line([v; LINE]); len.div_ceil(LINE)],
            len,
        }
    }

    /// A copy of `data`, in one pass.
    fn copy(data: &[f32]) -> Self {
        let mut lines = Vec::with_capacity(data.len().div_ceil(LINE));
        lines.extend(data.chunks(LINE).map(|c| {
            let mut l = Line([0.0; LINE]);
            l.0[..c.len()].copy_from_slice(c);
            l
        }));
        Lines {
            lines,
            len: data.len(),
        }
    }

    /// `len` zeros, written by every thread.
    fn zeros_parallel(len: usize) -> Self {
        let mut lines = Vec::with_capacity(len.div_ceil(LINE));
        lines.par_extend(rayon::iter::repeat_n(Line([0.0; LINE]), len.div_ceil(LINE)));
        Lines { lines, len }
    }

    /// The bytes it holds.
    fn bytes(&self) -> usize {
        std::mem::size_of_val(self.lines.as_slice())
    }

    fn as_slice(&self) -> &[f32] {
        debug_assert!(self.len <= self.lines.len() * LINE);
        // SAFETY: `Line` is `repr(C)` over 16 `f32`s with no padding (64 bytes, 64-aligned),
        // so the lines are `16 · lines.len() ≥ len` contiguous, initialised values.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [f32] {
        debug_assert!(self.len <= self.lines.len() * LINE);
        // SAFETY: as in `as_slice`, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len) }
    }
}

/// Freed buffers by length, up to a number of bytes.
#[derive(Debug)]
struct Pool {
    /// Bytes it may hold.
    cap: usize,
    /// Bytes it holds.
    held: usize,
    /// Buffers by length (made on first use).
    free: Option<HashMap<usize, Vec<Lines>>>,
}

impl Pool {
    const fn new(cap: usize) -> Self {
        Pool {
            cap,
            held: 0,
            free: None,
        }
    }

    /// Keeps `buf` (allocated exactly: its lines are its capacity), first giving back
    /// (returning) buffers of other lengths, then of its own, until it fits; a buffer larger
    /// than the whole pool is returned. What is returned is for the caller to free, outside
    /// the lock.
    fn put(&mut self, buf: Lines) -> Vec<Lines> {
        debug_assert_eq!(buf.lines.capacity(), buf.lines.len());
        let (len, bytes) = (buf.len, buf.bytes());
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
                self.held -= b.bytes();
                out.push(b);
            }
            free.retain(|_, v| !v.is_empty());
        }
        self.held += bytes;
        free.entry(len).or_default().push(buf);
        out
    }

    /// A buffer of `len` values, if one is held.
    fn take(&mut self, len: usize) -> Option<Lines> {
        let buf = self.free.as_mut()?.get_mut(&len)?.pop()?;
        self.held -= buf.bytes();
        Some(buf)
    }
}

/// The pool, whatever a panicking thread left (its state is valid between calls).
fn pool() -> MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Host memory of one tensor (or a weight's rearranged copy): its values, starting on a cache
/// line. Equal when the values are.
#[derive(Default, Clone)]
pub struct HostBuf(Lines);

impl HostBuf {
    /// A buffer holding `data` (copied onto whole cache lines).
    pub fn new(data: Vec<f32>) -> Self {
        HostBuf(Lines::copy(&data))
    }
}

impl PartialEq for Lines {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq for HostBuf {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl std::fmt::Debug for HostBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.as_slice().fmt(f)
    }
}

impl Deref for HostBuf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        self.0.as_slice()
    }
}

impl DerefMut for HostBuf {
    fn deref_mut(&mut self) -> &mut [f32] {
        self.0.as_mut_slice()
    }
}

impl Drop for HostBuf {
    fn drop(&mut self) {
        if self.0.len < RECYCLED {
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
        data.as_mut_slice().par_iter_mut().for_each(|v| *v = 0.0);
        return HostBuf(data);
    }
    if len < RECYCLED {
        return HostBuf(Lines::filled(len, 0.0));
    }
    HostBuf(Lines::zeros_parallel(len))
}

/// A copy of `d`: into a recycled buffer when the pool has one of that length, else a new one
/// (one pass either way).
pub(crate) fn copy_of(d: &[f32]) -> HostBuf {
    match recycled(d.len()) {
        Some(mut v) => {
            v.as_mut_slice().copy_from_slice(d);
            HostBuf(v)
        }
        None => HostBuf(Lines::copy(d)),
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
                v.as_mut_slice().fill(f32::NAN);
            }
            HostBuf(v)
        }
        None if cfg!(debug_assertions) => HostBuf(Lines::filled(len, f32::NAN)),
        None => zeros(len),
    };
    f(&mut buf);
    buf
}

/// A recycled buffer of exactly `len` values (old values in it), where the length is one the
/// pool keeps and it holds one.
fn recycled(len: usize) -> Option<Lines> {
    if len < RECYCLED {
        None
    } else {
        pool().take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(len: usize, v: f32) -> Lines {
        Lines::filled(len, v)
    }

    #[test]
    fn a_pool_gives_back_a_buffer_of_the_same_length_once() {
        let mut p = Pool::new(1 << 20);
        assert!(p.put(buf(1000, 1.0)).is_empty());
        // Whole lines: 63 lines of 64 bytes.
        assert_eq!(p.held, 4032);
        assert!(p.take(999).is_none());
        assert_eq!(p.take(1000), Some(buf(1000, 1.0)));
        assert!(p.take(1000).is_none());
        assert_eq!(p.held, 0);
    }

    #[test]
    fn a_full_pool_frees_other_lengths_first_and_never_exceeds_its_size() {
        let mut p = Pool::new(10_240);
        assert!(p.put(buf(1024, 1.0)).is_empty());
        assert!(p.put(buf(1024, 2.0)).is_empty());
        // 8192 bytes held: 1536 values more (6144) fit once one of the other length goes.
        let freed = p.put(buf(1536, 3.0));
        assert_eq!(freed, vec![buf(1024, 2.0)]);
        assert_eq!(p.held, 10_240);
        // Another of 1536: the last of the other length goes, then the older one of its own.
        let freed = p.put(buf(1536, 4.0));
        assert_eq!(freed, vec![buf(1024, 1.0), buf(1536, 3.0)]);
        assert_eq!(p.held, 6144);
        // Larger than the whole pool: not kept.
        assert_eq!(p.put(buf(3072, 5.0)).len(), 1);
        assert_eq!(p.take(1536), Some(buf(1536, 4.0)));
        assert_eq!(p.held, 0);
    }

    #[test]
    fn every_buffer_starts_on_a_cache_line_and_holds_its_length() {
        let data: Vec<f32> = (0..1001).map(|i| i as f32).collect();
        for len in [0, 1, 15, 16, 17, 1001] {
            let made = [
                HostBuf::new(data[..len].to_vec()),
                zeros(len),
                copy_of(&data[..len]),
                filled_by(len, |v| v.fill(3.0)),
            ];
            for b in &made {
                assert_eq!(b.len(), len);
                assert_eq!(b.as_ptr() as usize % 64, 0, "{len} values");
            }
            assert_eq!(&made[0][..], &data[..len]);
            assert_eq!(&made[2][..], &data[..len]);
            assert!(made[1].iter().all(|&v| v == 0.0));
            assert!(made[3].iter().all(|&v| v == 3.0));
        }
        // Recycled ones too (the pool keeps buffers from `RECYCLED` values): each made after
        // the previous one was dropped.
        let len = RECYCLED + 17;
        drop(zeros(len));
        let makers: [fn(usize) -> HostBuf; 3] = [
            zeros,
            |len| copy_of(&vec![1.0; len]),
            |len| filled_by(len, |v| v.fill(2.0)),
        ];
        for make in makers {
            let b = make(len);
            assert_eq!((b.len(), b.as_ptr() as usize % 64), (len, 0));
        }
        // Equal by value, whatever lies past the end in the last line.
        let (mut a, b) = (zeros(len), filled_by(len, |v| v.fill(0.0)));
        assert!(a == b);
        a[len - 1] = 1.0;
        assert!(a != b);
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
