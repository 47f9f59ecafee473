//! The ONNX project's own conformance data: every case of `onnx/backend/test/data/pytorch-converted`
//! and `pytorch-operator` (from the `onnx` PyPI package; `GRADCAM_ONNX_DATA` names that `data`
//! folder — CI installs the package and sets it) whose graph the importer translates is run
//! forward on the CPU backend and matched against the case's own outputs (relative L2 ≤ 1e-5).
//! Cases it cannot translate — 1-D, 3-D and 2-D-input models (the runtime takes NCHW images),
//! operators it does not support — are skipped with the reason, and the counts printed.
//! Without the data the test prints a notice and passes, unless `GRADCAM_REQUIRE_ONNX_DATA=1`.

use gradcam_core::Backend;
use std::path::{Path, PathBuf};

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GRADCAM_ONNX_DATA").map(PathBuf::from);
    match dir {
        Some(d) if d.join("pytorch-converted").is_dir() => Some(d),
        _ => {
            assert!(
                std::env::var("GRADCAM_REQUIRE_ONNX_DATA").as_deref() != Ok("1"),
                "GRADCAM_REQUIRE_ONNX_DATA=1 but GRADCAM_ONNX_DATA does not name onnx's test data"
            );
            eprintln!("notice: GRADCAM_ONNX_DATA not set: ONNX conformance cases not run");
            None
        }
    }
}

/// Runs one case: `Ok(Some(rel))` when run, `Ok(None)` with a skip reason printed, `Err` when
/// translated but wrong.
fn run_case(dir: &Path) -> Result<f64, String> {
    let model = std::fs::read(dir.join("model.onnx")).map_err(|e| e.to_string())?;
    let graph = gradcam_onnx::from_bytes_any_output(&model, Some(dir)).map_err(|e| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("");
        format!(
            "skip: {}",
            first.split("; supported:").next().unwrap_or(first)
        )
    })?;
    let set = dir.join("test_data_set_0");
    let pb = |name: &str| {
        std::fs::read(set.join(name))
            .map_err(|e| e.to_string())
            .and_then(|b| gradcam_onnx::read_tensor_pb(&b).map_err(|e| e.to_string()))
    };
    if set.join("input_1.pb").exists() || set.join("output_1.pb").exists() {
        return Err("skip: several inputs or outputs".into());
    }
    let (x, want) = (pb("input_0.pb")?, pb("output_0.pb")?);
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), graph).map_err(|e| e.to_string())?;
    let xd = m.upload_input(&x).map_err(|e| format!("skip: {e}"))?;
    let acts = m
        .forward(&xd, &Default::default())
        .map_err(|e| format!("FAILED: forward: {e}"))?;
    let y = acts.get(m.graph().output()).map_err(|e| e.to_string())?;
    if y.shape().dims() != want.shape.dims() {
        return Err(format!(
            "FAILED: output {} where the data has {}",
            y.shape(),
            want.shape
        ));
    }
    let got = cpu.download(y).map_err(|e| e.to_string())?;
    let num: f64 = got
        .iter()
        .zip(&want.data)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let den: f64 = want.data.iter().map(|b| (*b as f64).powi(2)).sum();
    let rel = (num / den.max(1e-30)).sqrt();
    if rel <= 1e-5 {
        Ok(rel)
    } else {
        Err(format!("FAILED: relative L2 {rel:.2e}"))
    }
}

#[test]
fn onnx_conformance_cases() {
    let Some(root) = data_dir() else { return };
    let (mut passed, mut skipped, mut failed) = (vec![], vec![], vec![]);
    for sub in ["pytorch-converted", "pytorch-operator"] {
        let mut cases: Vec<PathBuf> = std::fs::read_dir(root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("model.onnx").exists())
            .collect();
        cases.sort();
        for dir in cases {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            match run_case(&dir) {
                Ok(rel) => passed.push(format!("{name} ({rel:.1e})")),
                Err(r) if r.starts_with("skip") => skipped.push(format!("{name}: {r}")),
                Err(r) => failed.push(format!("{name}: {r}")),
            }
        }
    }
    eprintln!(
        "ONNX conformance: {} run, {} passed, {} failed, {} skipped",
        passed.len() + failed.len(),
        passed.len(),
        failed.len(),
        skipped.len()
    );
    for p in &passed {
        eprintln!("  passed  {p}");
    }
    for s in &skipped {
        eprintln!("  {s}");
    }
    assert!(failed.is_empty(), "failed:\n{}", failed.join("\n"));
    // The 2-D convolution and pooling cases, at least, must be among those run.
    for must in [
        "test_Conv2d ",
        "test_Conv2d_groups ",
        "test_MaxPool2d ",
        "test_AvgPool2d ",
    ] {
        assert!(
            passed.iter().any(|p| p.starts_with(must)),
            "{} was not run",
            must.trim()
        );
    }
}
