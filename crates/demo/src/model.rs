//! The demo model: the runtime's `demo` architecture with the weights this crate trained
//! (`weights/demo.safetensors`, embedded in the binary), and scenes as its input batches.

use crate::scene::{Scene, CLASSES, SIZE};
use gradcam_core::{HostTensor, Result};
use gradcam_runtime::{arch, Graph, Weights};

/// The trained weights, as committed (reproduced by `gradcam train-demo`).
pub const WEIGHTS: &[u8] = include_bytes!("../weights/demo.safetensors");

/// Normalisation the model was trained with (ImageNet's, the CLI's default).
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// See [`MEAN`].
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The embedded trained weights.
pub fn weights() -> Result<Weights> {
    Weights::from_bytes(WEIGHTS, "the built-in demo weights")
}

/// The trained demo model's graph.
pub fn graph() -> Result<Graph> {
    arch::build("demo", &weights()?)
}

/// Normalised `N×3×64×64` input for `scenes`.
pub fn input(scenes: &[Scene]) -> Result<HostTensor> {
    let plane = SIZE * SIZE;
    let mut data = Vec::with_capacity(scenes.len() * 3 * plane);
    for s in scenes {
        for c in 0..3 {
            data.extend(
                s.image[c * plane..(c + 1) * plane]
                    .iter()
                    .map(|v| (v - MEAN[c]) / STD[c]),
            );
        }
    }
    HostTensor::new([scenes.len(), 3, SIZE, SIZE], data)
}

/// Training targets: each scene's classes share the probability mass equally (`N×classes`).
pub fn targets(scenes: &[Scene]) -> Vec<f32> {
    let c = CLASSES.len();
    let mut t = vec![0.0f32; scenes.len() * c];
    for (r, s) in scenes.iter().enumerate() {
        for o in &s.objects {
            t[r * c + o.class] += 1.0 / s.objects.len() as f32;
        }
    }
    t
}
