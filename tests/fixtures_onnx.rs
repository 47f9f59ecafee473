//! Every reference case through its ONNX exports — `model.onnx` (TorchScript exporter, opset 17)
//! and `model.dynamo.onnx` (dynamo exporter, opset 20) — imported by `gradcam::onnx`, targeted by
//! the ONNX tensor names in `case.json`, every reference tensor matched within the fixtures'
//! tolerances, as through the built-in architectures.

mod common;

use common::{fixtures_dir, load_case, CASES};
use gradcam::CpuBackend;

fn run(name: &str, file: &str, target_key: &str) {
    let case = load_case(name);
    let graph = gradcam::onnx::load(&fixtures_dir().join(name).join(file))
        .unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
    let layer = case.json[target_key]
        .as_str()
        .expect("target tensor")
        .to_string();
    common::run_with(
        CpuBackend::new(),
        name,
        graph,
        layer,
        name != "mobilenet_v2_035",
    );
}

#[test]
fn torchscript_exports() {
    for name in CASES {
        run(name, "model.onnx", "onnx_target_tensor");
    }
}

#[test]
fn dynamo_exports() {
    for name in CASES {
        run(name, "model.dynamo.onnx", "dynamo_onnx_target_tensor");
    }
}
