//! The CPU kernels, generic over the element type so that the same code runs in f32 (the
//! backend) and in f64 (the finite-difference checks of every backward).
//!
//! Kernels take slices and explicit dimensions and assume shapes already checked by
//! [`gradcam_core::check`]; they panic only on a broken internal invariant.

pub mod activation;
pub mod cam;
pub mod conv;
pub mod direct;
mod elem;
mod gemm;
pub mod layout;
pub mod linear;
pub mod lrn;
mod max_vector;
pub mod packed;
pub mod pool;
pub mod vector;
pub mod winograd;
pub mod winograd4;

pub use elem::Element;
pub use gemm::{gemm, Mat, MatMut};

/// A raw pointer that rayon tasks writing disjoint regions of one buffer may share.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T>(pub *mut T);
// SAFETY: every user writes only a region no other task touches (stated at each use).
unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    pub(crate) fn ptr(self) -> *mut T {
        self.0
    }
}

/// Splits `0..n` into about `parts` contiguous ranges of at least `min` elements.
pub(crate) fn ranges(n: usize, parts: usize, min: usize) -> Vec<(usize, usize)> {
    let parts = parts.max(1).min(n.div_ceil(min.max(1))).max(1);
    let step = n.div_ceil(parts).max(1);
    (0..n)
        .step_by(step)
        .map(|s| (s, (s + step).min(n)))
        .collect()
}

/// Asks the CPU to bring `data` into L2 ahead of its use (a hint: no effect off x86-64), one
/// request per 64-byte line.
#[inline]
pub(crate) fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let p = data.as_ptr().cast::<i8>();
        for off in (0..std::mem::size_of_val(data)).step_by(64) {
            // SAFETY: a prefetch reads nothing and cannot fault; the address is inside `data`.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}
