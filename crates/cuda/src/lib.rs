//! CUDA backend of the gradcam runtime: every primitive of [`gradcam_core::Backend`] as a
//! hand-written CUDA C++ kernel (top-level `kernels/`, one file per op family), compiled with
//! NVRTC at run time for the device's own architecture, once per process, through cudarc's
//! dynamically loaded driver and NVRTC libraries.
//!
//! Without a driver, NVRTC or a device, [`CudaBackend::new`] returns an error naming what is
//! missing; it never panics. One stream; device memory comes from a pool reused across calls;
//! nothing returns to the host between ops.

mod backend;
mod context;
pub mod kernels;
mod pool;

pub use backend::CudaBackend;
pub use pool::DeviceBuffer;
