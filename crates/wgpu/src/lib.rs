//! The WebGPU backend of the gradcam runtime: every primitive of [`gradcam_core::Backend`] as a
//! hand-written WGSL compute shader (top-level `shaders/`, one file per op family), run through
//! wgpu on Vulkan, Metal, DX12 — or, without a GPU, Mesa's llvmpipe Vulkan adapter.
//!
//! Tensors live in device buffers from a pool reused across calls; pipelines are compiled once
//! per process and cached; dispatches are submitted in batches (`batch.rs`); nothing is read
//! back between the upload of an input and the download of a result.

mod backend;
mod batch;
mod context;
mod pool;
mod shaders;
mod splitk;

pub use backend::WgpuBackend;
pub use context::AdapterChoice;
pub use shaders::SHADERS;
pub use splitk::SplitK;
