//! Models whose graphs go beyond convolution chains — torchvision's MobileNetV3-Small (width
//! 0.25, squeeze-and-excitation gates, HardSwish), a tiny EfficientNet-style CNN (swish as
//! Sigmoid·Mul, an SE gate with a Sigmoid) and a tiny ShuffleNetV2 (channel split as Slice or
//! Split, channel shuffle as Reshape·Transpose·Reshape) — through both ONNX exporters, at the
//! default target layer (the last block, not an SE block's pooled input), against PyTorch +
//! pytorch-grad-cam (`tests/data/onnx_models/generate.py`): logits, Grad-CAM, Guided Backprop (the guided rule on ReLU
//! only, as `GuidedBackpropReLUModel`) and Guided Grad-CAM, on every backend present.

mod common;

use gradcam::{Backend, Classes, CpuBackend, Explainer, Method, Model, Options};
use std::path::PathBuf;

const CASES: [&str; 3] = [
    "mobilenet_v3_small_025",
    "tiny_efficientnet",
    "tiny_shufflenet",
];

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/onnx_models")
        .join(name)
}

fn run<B: Backend + Clone + 'static>(backend: B, name: &str, file: &str) {
    let reference = common::read_tensors(&dir(name).join("reference.safetensors"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir(name).join("case.json")).unwrap())
            .unwrap();
    let targets: Vec<usize> = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as usize)
        .collect();
    let graph =
        gradcam::onnx::load(&dir(name).join(file)).unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
    let backend_name = backend.name();
    let ex = Explainer::new(Model::new(backend, graph.fold_batch_norm(&[]).unwrap()).unwrap());
    let opts = Options {
        classes: Classes::Given(targets.clone()),
        guided_relu_only: true,
        ..Options::default()
    };
    let out = ex
        .explain(
            &reference["input"],
            &[Method::GradCam, Method::GuidedGradCam],
            &opts,
        )
        .unwrap();
    assert_eq!(out.targets, targets);
    for (ours, theirs, tol) in [
        ("logits", "logits", 1e-4),
        ("gradcam", "gradcam", 1e-3),
        ("guided_backprop", "guided_backprop_pgc", 1e-4),
        ("guided_gradcam", "guided_gradcam", 1e-3),
    ] {
        let a = &out.get(ours).unwrap_or_else(|| panic!("no {ours}")).data;
        let rel = common::rel_l2(a, &reference[theirs].data);
        assert!(
            rel < tol,
            "{name}/{file} on {backend_name}: {ours} relative L2 {rel:.2e} (tolerance {tol:.0e})"
        );
    }
}

fn every_case<B: Backend + Clone + 'static>(backend: B) {
    for name in CASES {
        for file in ["model.onnx", "model.dynamo.onnx"] {
            run(backend.clone(), name, file);
        }
    }
}

#[test]
fn cpu() {
    every_case(CpuBackend::new());
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu() {
    if let Some(b) = common::wgpu_backend() {
        every_case(b);
    }
}

#[cfg(feature = "cuda")]
#[test]
fn cuda() {
    if let Some(b) = common::cuda_backend() {
        every_case(b);
    }
}
