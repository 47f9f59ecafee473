//! The reference cases through `gradcam explain --save-tensors`: the built-in architectures
//! (`--arch --weights`) and every case's two ONNX exports (`--model`), every reference tensor
//! matched within the fixtures' tolerances. (tiny_cam and vgg_like have no built-in
//! architecture: they come through ONNX only.)

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::process::Command;

/// Every method but ScoreCAM and occlusion, whose hundreds of forward passes are slow on a
/// software adapter (their primitives are checked one by one in tests/backends.rs).
const GRADIENT_METHODS: &str = "gradcam,gradcam++,xgradcam,hirescam,layercam,eigencam,guided-backprop,guided-gradcam,deconvnet,deconvnet-gradcam,saliency";

fn run_case(name: &str) {
    run_on(name, "cpu", true);
}

fn run_on(name: &str, backend: &str, perturbation: bool) {
    let case = common::load_case(name);
    let model = vec![
        "--arch".to_string(),
        case.arch().unwrap().to_string(),
        "--weights".to_string(),
        case.weights_path().display().to_string(),
    ];
    run_model(name, backend, perturbation, &model, &case.target_layer());
}

/// `gradcam explain` with the model given by `model` (arguments), explained at `layer`.
fn run_model(name: &str, backend: &str, perturbation: bool, model: &[String], layer: &str) {
    let case = common::load_case(name);
    // A file of its own per run: tests run in parallel (the same case through --arch and
    // --model, or on two backends), and each removes its files when done.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run_id = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = std::env::temp_dir().join(format!(
        "gradcam-cli-{name}-{backend}-{run_id}-{}.safetensors",
        std::process::id()
    ));
    let (window, stride) = case.occlusion();
    let classes: Vec<String> = case.targets.iter().map(|c| c.to_string()).collect();
    let input = format!("{}:input", case.dir.join("reference.safetensors").display());
    let run = |extra: &[&str], path: &std::path::Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_gradcam"))
            .arg("explain")
            .args(model)
            .args([
                "--input",
                &input,
                "--class",
                &classes.join(","),
                "--layer",
                layer,
            ])
            .args([
                "--occlusion-window",
                &format!("{},{}", window[0], window[1]),
            ])
            .args([
                "--occlusion-stride",
                &format!("{},{}", stride[0], stride[1]),
            ])
            .args(["--backend", backend])
            .args(extra)
            .arg("--save-tensors")
            .arg(path)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "gradcam explain failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        common::read_tensors(path)
    };
    let methods = if perturbation {
        format!("{GRADIENT_METHODS},scorecam,occlusion")
    } else {
        GRADIENT_METHODS.to_string()
    };
    let ours = run(&["--method", &methods], &out);
    let mut skip = vec!["guided_backprop_pgc", "cam_raw"];
    if !perturbation {
        skip.extend(["scorecam", "occlusion"]);
    }
    let mut failures = common::compare(&case, &ours, &|n| n.to_string(), &skip);
    let targets = &ours["targets"].data;
    assert_eq!(
        targets.iter().map(|v| *v as usize).collect::<Vec<_>>(),
        case.targets
    );

    let pgc_out = out.with_extension("pgc.safetensors");
    let pgc = run(
        &["--method", "guided-backprop", "--guided-relu-only"],
        &pgc_out,
    );
    let mut only = case.reference.clone();
    only.retain(|k, _| k == "guided_backprop_pgc");
    let pgc_case = common::Case {
        reference: only,
        ..common::load_case(name)
    };
    failures.extend(common::compare(
        &pgc_case,
        &pgc,
        &|_| "guided_backprop".to_string(),
        &[],
    ));
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&pgc_out);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every case's ONNX exports through `--model`, targeted by the ONNX tensor names.
#[test]
fn every_case_through_onnx() {
    for name in common::CASES {
        let case = common::load_case(name);
        for (file, key) in [
            ("model.onnx", "onnx_target_tensor"),
            ("model.dynamo.onnx", "dynamo_onnx_target_tensor"),
        ] {
            let model = [
                "--model".to_string(),
                case.dir.join(file).display().to_string(),
            ];
            let layer = case.json[key].as_str().unwrap();
            // ScoreCAM and occlusion on the smallest case only: they are slow in a debug build.
            run_model(name, "cpu", name == "tiny_cam", &model, layer);
        }
    }
}

#[test]
fn mini_resnet() {
    run_case("mini_resnet");
}

#[test]
fn squeezenet1_1() {
    run_case("squeezenet1_1");
}

#[test]
fn mobilenet_v2_035() {
    run_case("mobilenet_v2_035");
}

/// The same through `--backend wgpu` (skipped with a notice where no adapter exists, a failure
/// where `GRADCAM_REQUIRE_WGPU=1`).
#[cfg(feature = "wgpu")]
#[test]
fn every_builtin_case_on_wgpu() {
    if common::wgpu_backend().is_none() {
        return;
    }
    for name in ["mini_resnet", "squeezenet1_1", "mobilenet_v2_035"] {
        // ScoreCAM's and occlusion's hundreds of forward passes run on one case: llvmpipe
        // executes the shaders on the CPU.
        run_on(name, "wgpu", name == "mini_resnet");
    }
}

/// The same through `--backend cuda` (skipped with a notice where no CUDA device exists, a
/// failure where `GRADCAM_REQUIRE_CUDA=1`).
#[cfg(feature = "cuda")]
#[test]
fn every_builtin_case_on_cuda() {
    if common::cuda_backend().is_none() {
        return;
    }
    for name in ["mini_resnet", "squeezenet1_1", "mobilenet_v2_035"] {
        run_on(name, "cuda", true);
    }
}
