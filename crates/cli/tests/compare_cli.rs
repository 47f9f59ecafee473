//! `gradcam compare`: cpu against wgpu, layer by layer, with an exit code that says whether
//! they agreed.
#![cfg(feature = "wgpu")]

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::process::Command;

fn fixture(file: &str) -> String {
    format!(
        "{}/../../tests/data/fixtures/mini_resnet/{file}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn compare(extra: &[&str]) -> Option<(i32, String)> {
    common::wgpu_backend()?;
    let o = Command::new(env!("CARGO_BIN_EXE_gradcam"))
        .args([
            "compare",
            "--backends",
            "cpu,wgpu",
            "--arch",
            "resnet",
            "--weights",
            &fixture("weights.safetensors"),
        ])
        .args([
            "--input",
            &format!("{}:input", fixture("reference.safetensors")),
            "--method",
            "gradcam,guided-gradcam",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    Some((
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).to_string(),
    ))
}

#[test]
fn backends_agree_layer_by_layer() {
    let Some((code, out)) = compare(&["--json"]) else {
        return;
    };
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let b = &v["backends"][0];
    assert_eq!(b["backend"], "wgpu");
    assert_eq!(b["within_tolerance"], true);
    // Guided Grad-CAM reads the forward's masks: both explain with their exact forwards.
    assert_eq!(v["reference_forward"], "exact");
    assert_eq!(b["forward"], "exact");
    let rows = b["rows"].as_array().unwrap();
    let has = |section: &str, name: &str| {
        rows.iter()
            .any(|r| r["section"] == section && r["name"] == name)
    };
    // Batch norm is folded into the convs before it, which take its name.
    assert!(
        has("forward", "layer4.1.bn2") && has("backward", "bn1") && has("output", "guided_gradcam")
    );
    assert!(rows.iter().all(|r| r["rel_l2"].as_f64().unwrap() < 1e-4));
}

#[test]
fn a_zero_tolerance_names_the_first_divergence() {
    let Some((code, out)) = compare(&["--tol", "0"]) else {
        return;
    };
    assert_eq!(code, 2, "float rounding differs between backends: {out}");
    assert!(out.contains("first divergence at forward"), "{out}");
}

/// Under `--rule guided` the traced backward is Guided Backprop itself: its gradient at the
/// input differs between the backends exactly as the `guided_backprop` output does; under the
/// default plain rule it is the ordinary gradient, which differs differently.
#[test]
fn the_guided_rule_traces_guided_backprop() {
    let input_vs_output = |rule: &str| {
        let (code, out) = compare(&["--json", "--rule", rule])?;
        assert_eq!(code, 0, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let rows = v["backends"][0]["rows"].as_array().unwrap().clone();
        let diff = |section: &str, name: &str| {
            rows.iter()
                .find(|r| r["section"] == section && r["name"] == name)
                .map(|r| r["max_abs"].as_f64().unwrap())
                .unwrap()
        };
        Some((diff("backward", "input"), diff("output", "guided_backprop")))
    };
    let Some((input, output)) = input_vs_output("guided") else {
        return;
    };
    assert_eq!(input, output);
    let (input, output) = input_vs_output("plain").unwrap();
    assert_ne!(input, output);
}
