//! The Caffe2-era model-zoo graphs of the ONNX test suite (`onnx/backend/test/data/light`, from
//! the `onnx` PyPI package; `GRADCAM_ONNX_DATA` names that `data` folder, as for the
//! conformance test): AlexNet, ZFNet-512, VGG-19, ResNet-50, SqueezeNet, DenseNet-121,
//! Inception-v2, ShuffleNet (opset 9; Sum, LRN, Caffe's ceil-mode pool pads, BatchNormalization
//! as Unsqueeze·Mul·Add, channel shuffles, a 1×1-convolution classifier, a trailing Softmax). Their weights are
//! `ConstantOfShape` fills (0.02), so the import needs a larger tensor budget
//! (`GRADCAM_ONNX_MAX_MIB`, set here). Each graph that translates runs forward on the suite's
//! input (`arange(n)/n`) and must match the suite's output; then it is explained (Grad-CAM and
//! Guided Backprop at its default target, the softmax left out), and the maps must be finite.
//! The rest are skipped with the reason, and the counts printed. Without the data the test
//! prints a notice and passes, unless `GRADCAM_REQUIRE_ONNX_DATA=1`.

use gradcam::core::HostTensor;
use gradcam::{Backend, Classes, CpuBackend, Explainer, Method, Model, Options, Shape};
use std::path::PathBuf;

/// Graphs that must translate and match.
const REQUIRED: [&str; 8] = [
    "bvlc_alexnet",
    "zfnet512",
    "vgg19",
    "resnet50",
    "squeezenet",
    "densenet121",
    "inception_v2",
    "shufflenet",
];

fn light_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GRADCAM_ONNX_DATA").map(|d| PathBuf::from(d).join("light"));
    match dir {
        Some(d) if d.is_dir() => Some(d),
        _ => {
            assert!(
                std::env::var("GRADCAM_REQUIRE_ONNX_DATA").as_deref() != Ok("1"),
                "GRADCAM_REQUIRE_ONNX_DATA=1 but GRADCAM_ONNX_DATA does not name onnx's test data"
            );
            eprintln!("notice: GRADCAM_ONNX_DATA not set: model-zoo graphs not run");
            None
        }
    }
}

/// Forward against the suite's output, then an explanation; `Err("skip: …")` when the graph
/// does not translate.
fn run(dir: &std::path::Path, name: &str) -> Result<f64, String> {
    let bytes = std::fs::read(dir.join(format!("light_{name}.onnx"))).map_err(|e| e.to_string())?;
    let want = std::fs::read(dir.join(format!("light_{name}_output_0.pb")))
        .map_err(|e| e.to_string())
        .and_then(|b| gradcam::onnx::read_tensor_pb(&b).map_err(|e| e.to_string()))?;
    let graph = gradcam::onnx::from_bytes_any_output(&bytes, Some(dir)).map_err(|e| {
        let msg = e.to_string();
        format!("skip: {}", msg.split("; supported:").next().unwrap_or(&msg))
    })?;
    let n = 3 * 224 * 224;
    let x: Vec<f32> = (0..n).map(|i| (i as f64 / n as f64) as f32).collect();
    let input = HostTensor::new([1, 3, 224, 224], x).unwrap();
    let cpu = CpuBackend::new();
    let model = Model::new(cpu.clone(), graph).map_err(|e| e.to_string())?;
    let acts = model
        .forward(
            &cpu.upload(&input.data, Shape::new([1, 3, 224, 224]))
                .unwrap(),
            &Default::default(),
        )
        .map_err(|e| e.to_string())?;
    let got = cpu
        .download(acts.get(model.graph().output()).unwrap())
        .unwrap();
    if got.len() != want.data.len() {
        return Err(format!("{} outputs, want {}", got.len(), want.data.len()));
    }
    let num: f64 = got
        .iter()
        .zip(&want.data)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let den: f64 = want.data.iter().map(|b| (*b as f64).powi(2)).sum();
    let rel = (num / den.max(1e-30)).sqrt();
    // The explanation graph: raw scores (the trailing softmax left out), default target.
    let graph = gradcam::onnx::from_bytes(&bytes, Some(dir)).map_err(|e| e.to_string())?;
    let ex = Explainer::new(Model::new(cpu, graph.fold_batch_norm(&[]).unwrap()).unwrap());
    let opts = Options {
        classes: Classes::Given(vec![7]),
        guided_relu_only: true,
        ..Options::default()
    };
    let e = ex
        .explain(&input, &[Method::GradCam, Method::GuidedBackprop], &opts)
        .map_err(|e| format!("explain: {e}"))?;
    for k in ["gradcam", "guided_backprop"] {
        let t = e.get(k).ok_or(format!("no {k}"))?;
        if !t.data.iter().all(|v| v.is_finite()) {
            return Err(format!("{k} is not finite"));
        }
    }
    Ok(rel)
}

#[test]
fn model_zoo_graphs_import_run_and_explain() {
    let Some(dir) = light_dir() else { return };
    // SAFETY-free in this single-test binary: no other thread reads the environment yet.
    std::env::set_var("GRADCAM_ONNX_MAX_MIB", "4096");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let f = e.ok()?.file_name().into_string().ok()?;
            Some(f.strip_prefix("light_")?.strip_suffix(".onnx")?.to_string())
        })
        .collect();
    names.sort();
    let (mut passed, mut skipped, mut failed) = (vec![], vec![], vec![]);
    for name in &names {
        match run(&dir, name) {
            Ok(rel) if rel <= 1e-4 => {
                eprintln!("{name}: output relative L2 {rel:.1e}, explained");
                passed.push(name.clone());
            }
            Ok(rel) => failed.push(format!("{name}: relative L2 {rel:.2e}")),
            Err(e) if e.starts_with("skip: ") => {
                eprintln!("{name}: {e}");
                skipped.push(name.clone());
            }
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    eprintln!(
        "model-zoo graphs: {} run and passed, {} skipped, {} failed",
        passed.len(),
        skipped.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:#?}");
    for r in REQUIRED {
        assert!(passed.iter().any(|p| p == r), "{r} did not pass");
    }
}
