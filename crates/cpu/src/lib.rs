//! The CPU backend of the gradcam runtime: every primitive of [`gradcam_core::Backend`] with
//! rayon parallelism and im2col + GEMM convolutions.
//!
//! The kernels in [`kernels`] are generic over the element type; the backend runs them in f32 and
//! the finite-difference tests run the very same code in f64.

mod backend;
pub mod kernels;

pub use backend::CpuBackend;
