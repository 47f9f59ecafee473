//! Core of the gradcam runtime: shapes, op parameters, the error type and the [`Backend`] trait.
//!
//! Every backend (CPU, CUDA, WebGPU) implements [`Backend`] on its own device-resident buffers;
//! the runtime and the explain methods are written once against the trait. Only
//! [`Backend::upload`] and [`Backend::download`] (or [`Backend::download_owned`]) touch host
//! memory.

mod backend;
pub mod check;
mod derived;
mod error;
mod memory;
mod params;
mod rng;
mod shape;
mod tensor;

pub use backend::Backend;
pub use derived::Derived;
pub use error::{Error, Result};
pub use memory::pool_bucket;
pub use params::{
    Activation, Conv2dParams, GradMode, LrnParams, Pool2dParams, Rectifier, ResizeMode,
    NORMALIZE_EPS, SCORECAM_EPS,
};
pub use rng::SplitMix64;
pub use shape::{DType, Shape};
pub use tensor::{HostTensor, Tensor};
