//! The packed block's buffer, kept per thread and reused from call to call: a convolution's
//! GEMM runs once per task, and allocating (and zeroing) half a megabyte each time cost more
//! than a small layer's packing.
//!
//! The buffer is a `Vec<u64>` viewed as the element type: every bit pattern is a valid `f32`
//! or `f64`, so reused contents are initialized values, merely stale — the packer overwrites
//! every element the micro-kernel reads.

use crate::kernels::Element;
use std::cell::RefCell;

thread_local! {
    static SPARE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `len` elements of `T` (their values unspecified).
pub struct Buffer<T> {
    words: Vec<u64>,
    len: usize,
    _t: std::marker::PhantomData<T>,
}

impl<T: Element> std::ops::Deref for Buffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `words` holds at least `len · size_of::<T>()` bytes, 8-aligned (≥ T's
        // alignment); T is f32 or f64 (checked in `take`), for which any bits are a value.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Element> std::ops::DerefMut for Buffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `self` is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<T>(), self.len) }
    }
}

/// This thread's spare buffer grown to `len` elements, or a new one if it is in use.
pub fn take<T: Element>(len: usize) -> Buffer<T> {
    use std::any::TypeId;
    // The views above are sound only for types whose every bit pattern is a value.
    let id = TypeId::of::<T>();
    assert!(id == TypeId::of::<f32>() || id == TypeId::of::<f64>());
    let bytes = len * std::mem::size_of::<T>();
    let mut words = SPARE
        .try_with(|s| s.try_borrow_mut().map(|mut v| std::mem::take(&mut *v)).ok())
        .ok()
        .flatten()
        .unwrap_or_default();
    let need = bytes.div_ceil(8);
    if words.len() < need {
        words.resize(need, 0);
    }
    Buffer {
        words,
        len,
        _t: std::marker::PhantomData,
    }
}

/// Returns a buffer to this thread for the next call.
pub fn give_back<T>(buf: Buffer<T>) {
    let _ = SPARE.try_with(|s| {
        if let Ok(mut v) = s.try_borrow_mut() {
            if v.capacity() < buf.words.capacity() {
                *v = buf.words;
            }
        }
    });
}
