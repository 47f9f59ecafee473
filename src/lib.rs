//! # gradcam
//!
//! Grad-CAM, Guided Backpropagation, Guided Grad-CAM and their relatives on a minimal CNN
//! runtime with hand-written kernels, matching pytorch-grad-cam and Captum.
//!
//! This facade re-exports the workspace's crates:
//! [`core`] (shapes, errors, the backend trait), [`cpu`] (the CPU backend), [`runtime`] (graph,
//! forward, backward, model loading) and [`explain`] (the methods).
//!
//! ```no_run
//! use gradcam::{arch, CpuBackend, Explainer, HostTensor, Method, Model, Options, Weights};
//!
//! let weights = Weights::open("resnet50.safetensors")?;
//! let graph = arch::build("resnet50", &weights)?;
//! let explainer = Explainer::new(Model::new(CpuBackend::new(), graph)?);
//! let input = HostTensor::zeros([1, 3, 224, 224]); // normalised N×3×H×W
//! let out = explainer.explain(&input, &[Method::GradCam, Method::GuidedGradCam], &Options::default())?;
//! let map = out.get("gradcam").unwrap(); // N×224×224, in [0, 1]
//! # let _ = map;
//! # Ok::<(), gradcam::Error>(())
//! ```

pub use gradcam_core as core;
pub use gradcam_cpu as cpu;
#[cfg(feature = "cuda")]
pub use gradcam_cuda as cuda;
pub use gradcam_explain as explain;
pub use gradcam_onnx as onnx;
pub use gradcam_runtime as runtime;
#[cfg(feature = "wgpu")]
pub use gradcam_wgpu as wgpu;

pub use gradcam_core::{Backend, Error, HostTensor, Result, Shape, Tensor};
pub use gradcam_cpu::CpuBackend;
pub use gradcam_explain::{
    Classes, Explainer, Explanation, Method, OcclusionParams, Options, Score,
};
pub use gradcam_runtime::{arch, Graph, GraphBuilder, Model, Rounding, Weights};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
