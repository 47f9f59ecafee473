//! Grad-CAM and its relatives, composed from the backend's primitives over one shared forward
//! pass: Grad-CAM, Grad-CAM++, XGradCAM, HiResCAM, LayerCAM, EigenCAM, ScoreCAM, Guided
//! Backprop, Guided Grad-CAM, Deconvnet, Deconvnet Grad-CAM, saliency, occlusion and CAM.
//!
//! Explaining never computes a weight gradient; Grad-CAM's backward stops at the target layer.
//! Outputs are named as in the reference fixtures and match pytorch-grad-cam and Captum.

mod cam_map;
mod eigen;
mod explainer;
mod explanation;
pub mod localize;
mod method;
pub mod metrics;
mod options;
mod perturb;
mod variant;

pub use eigen::projection as eigencam_projection;
pub use explainer::Explainer;
pub use explanation::Explanation;
pub use method::Method;
pub use options::{Classes, GradCamVariant, GradPooling, OcclusionParams, Options, Score};
