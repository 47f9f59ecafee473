//! The CPU backend of the gradcam runtime: every primitive of [`gradcam_core::Backend`] with
//! rayon parallelism and im2col + GEMM convolutions.
//!
//! The kernels in [`kernels`] are generic over the element type; the backend runs them in f32 and
//! the finite-difference tests run the very same code in f64.

mod backend;
mod host;
pub mod kernels;
mod spin;

pub use backend::CpuBackend;
pub use host::HostBuf;

/// Sizes the global rayon pool the CPU kernels run on; call once, before any work.
pub fn set_threads(n: usize) -> gradcam_core::Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| gradcam_core::Error::InvalidArgument(format!("cannot set {n} threads: {e}")))
}
