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
pub mod packed;
pub mod pool;
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
