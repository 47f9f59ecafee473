//! Scratch buffers kept per thread and reused from call to call: a convolution's GEMM runs
//! once per task, and allocating (and zeroing) half a megabyte each time cost more than a
//! small layer's packing; Winograd's transformed tiles and products (megabytes) cost page
//! faults on every call when freshly allocated (VGG-16's 256-channel layer: 23 → 16 ms).
//!
//! A buffer is a `Vec<u64>` viewed as the element type: every bit pattern is a valid `f32`
//! or `f64`, so reused contents are initialized values, merely stale — every user writes each
//! element it reads. A buffer's first element starts on a cache line ([`ALIGN`]). Each [`Slot`]
//! keeps one spare per thread (up to [`KEEP_MAX_BYTES`]: the
//! memory stays with the thread, so its size is bounded); a buffer goes back to its slot when
//! dropped.

use crate::kernels::Element;
use std::cell::RefCell;

/// Which of a thread's spare buffers: one per concurrent use, so that holding one (Winograd's
/// tiles) does not make another (the GEMM's packed block, inside it) allocate.
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// The packed GEMM's block.
    Pack = 0,
    /// Winograd's transformed input tiles; a strided backward-data's columns.
    Tiles = 1,
    /// Winograd's products.
    Products = 2,
    /// A direct convolution's zero-padded image.
    Padded = 3,
    /// A direct convolution's partial sums of a group of tiles, positions × filters.
    Grid = 4,
    /// A direct convolution's weight packed per call (a caller without the backend's kept
    /// copy: the kernels' examples and benchmarks).
    Weight = 5,
}

/// The alignment of a buffer's first element, in bytes: a cache line, so that the AVX-512
/// kernel's 64-byte loads of a packed panel each read one line, not two.
pub const ALIGN: usize = 64;

/// The largest buffer a slot keeps (64 MiB); a larger one is freed when dropped.
pub const KEEP_MAX_BYTES: usize = 64 << 20;

thread_local! {
    static SPARE: [RefCell<Vec<u64>>; 6] = const {
        [const { RefCell::new(Vec::new()) }; 6]
    };
}

/// A buffer of `len` elements of `T` (their values unspecified).
pub struct Buffer<T> {
    words: Vec<u64>,
    /// The words before the first element: the view starts on a cache line ([`ALIGN`]).
    skip: usize,
    len: usize,
    slot: Slot,
    _t: std::marker::PhantomData<T>,
}

impl<T: Element> std::ops::Deref for Buffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: from word `skip` on, `words` holds at least `len · size_of::<T>()` bytes
        // (`take`), 64-aligned (≥ T's alignment); T is f32 or f64 (checked in `take`), for
        // which any bits are a value.
        unsafe {
            std::slice::from_raw_parts(self.words.as_ptr().add(self.skip).cast::<T>(), self.len)
        }
    }
}

impl<T: Element> std::ops::DerefMut for Buffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `self` is borrowed mutably.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.words.as_mut_ptr().add(self.skip).cast::<T>(),
                self.len,
            )
        }
    }
}

/// This thread's spare buffer of `slot` grown to `len` elements, or a new one if it is in use.
pub fn take<T: Element>(slot: Slot, len: usize) -> Buffer<T> {
    use std::any::TypeId;
    // The views above are sound only for types whose every bit pattern is a value.
    let id = TypeId::of::<T>();
    assert!(id == TypeId::of::<f32>() || id == TypeId::of::<f64>());
    let bytes = len * std::mem::size_of::<T>();
    let mut words = SPARE
        .try_with(|s| {
            s[slot as usize]
                .try_borrow_mut()
                .map(|mut v| std::mem::take(&mut *v))
                .ok()
        })
        .ok()
        .flatten()
        .unwrap_or_default();
    let need = bytes.div_ceil(8) + ALIGN / 8;
    if words.len() < need {
        words.resize(need, 0);
    }
    // Words (8 bytes, the allocation's alignment) up to the next line.
    let skip = (ALIGN - words.as_ptr() as usize % ALIGN) % ALIGN / 8;
    debug_assert!(skip + bytes.div_ceil(8) <= words.len());
    Buffer {
        words,
        skip,
        len,
        slot,
        _t: std::marker::PhantomData,
    }
}

impl<T> Drop for Buffer<T> {
    /// Returns the memory to this thread's slot for the next call (keeping the larger).
    fn drop(&mut self) {
        let words = std::mem::take(&mut self.words);
        let _ = SPARE.try_with(|s| {
            if let Ok(mut v) = s[self.slot as usize].try_borrow_mut() {
                if v.capacity() < words.capacity() && words.capacity() * 8 <= KEEP_MAX_BYTES {
                    *v = words;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_starts_on_a_cache_line_grown_or_reused() {
        for len in [1, 17, 1000, 70_001, 5, 300_000] {
            let a = take::<f32>(Slot::Pack, len);
            let b = take::<f64>(Slot::Pack, len + 3);
            assert_eq!((a.len(), a.as_ptr() as usize % ALIGN), (len, 0));
            assert_eq!((b.len(), b.as_ptr() as usize % ALIGN), (len + 3, 0));
        }
    }
}
