//! A TensorFlow model through tf2onnx (`tests/data/tf2onnx/generate.py`): a small Keras CNN
//! whose stride-2 `padding="same"` convolutions pad one more row and column at the end, with
//! batch norm as Mul·Add, ReLU6 as Clip, a depthwise convolution and a residual Add — exported
//! with its NHWC input (the graph starts with a Transpose to NCHW, which the importer takes as
//! the input) and with `inputs_as_nchw`. Logits and Grad-CAM at the default target (the last
//! convolution, as Keras computes it with `tf.GradientTape`) against TensorFlow's own, on every
//! backend present.

mod common;

use gradcam::{Backend, Classes, CpuBackend, Explainer, Method, Model, Options};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tf2onnx")
}

fn run<B: Backend + Clone + 'static>(backend: B, file: &str) {
    let reference = common::read_tensors(&dir().join("reference.safetensors"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("case.json")).unwrap()).unwrap();
    let targets: Vec<usize> = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as usize)
        .collect();
    let graph = gradcam::onnx::load(&dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let backend_name = backend.name();
    let ex = Explainer::new(Model::new(backend, graph.fold_batch_norm(&[]).unwrap()).unwrap());
    let opts = Options {
        classes: Classes::Given(targets.clone()),
        ..Options::default()
    };
    let out = ex
        .explain(&reference["input"], &[Method::GradCam], &opts)
        .unwrap();
    assert_eq!(out.targets, targets);
    for (name, tol) in [("logits", 1e-4), ("gradcam", 1e-3)] {
        let ours = out.get(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(ours.shape.dims(), reference[name].shape.dims(), "{name}");
        let rel = common::rel_l2(&ours.data, &reference[name].data);
        assert!(
            rel < tol,
            "{file} on {backend_name}: {name} relative L2 {rel:.2e} (tolerance {tol:.0e})"
        );
    }
}

fn both_files<B: Backend + Clone + 'static>(backend: B) {
    for file in ["model.onnx", "model.nchw.onnx"] {
        run(backend.clone(), file);
    }
}

#[test]
fn cpu() {
    both_files(CpuBackend::new());
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu() {
    if let Some(b) = common::wgpu_backend() {
        both_files(b);
    }
}

#[cfg(feature = "cuda")]
#[test]
fn cuda() {
    if let Some(b) = common::cuda_backend() {
        both_files(b);
    }
}
