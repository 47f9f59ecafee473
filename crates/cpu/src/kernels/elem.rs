//! The element types the kernels run on.

use num_traits::Float;

/// f32 (the backend's type) or f64 (the finite-difference checks).
pub trait Element:
    Float + Default + Send + Sync + std::fmt::Debug + std::iter::Sum + std::ops::AddAssign + 'static
{
    /// Converts a parameter given in f32.
    fn of(v: f32) -> Self;
    /// Converts a count or index.
    fn of_usize(v: usize) -> Self;
    /// `C = α·A·B + β·C` on raw strided matrices (`m×k`, `k×n`, `m×n`).
    ///
    /// # Safety
    /// Every index `i·rs + j·cs` within the stated sizes must be inside its allocation, and `c`
    /// must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
    /// The packed-GEMM micro-kernel for this type on this CPU (none: `matrixmultiply`).
    fn packed_kernel() -> Option<super::packed::Kernel<Self>>;
}

impl Element for f32 {
    fn of(v: f32) -> Self {
        v
    }
    fn of_usize(v: usize) -> Self {
        v as f32
    }
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
    fn packed_kernel() -> Option<super::packed::Kernel<f32>> {
        super::packed::f32_default()
    }
}

impl Element for f64 {
    fn of(v: f32) -> Self {
        v as f64
    }
    fn of_usize(v: usize) -> Self {
        v as f64
    }
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
    fn packed_kernel() -> Option<super::packed::Kernel<f64>> {
        None
    }
}
