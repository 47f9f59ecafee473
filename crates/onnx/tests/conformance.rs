//! The ONNX project's own conformance data: every case of `onnx/backend/test/data/pytorch-converted`
//! and `pytorch-operator` (from the `onnx` PyPI package; `GRADCAM_ONNX_DATA` names that `data`
//! folder — CI installs the package and sets it) whose graph the importer translates is run
//! forward on the CPU backend and matched against the case's own outputs (relative L2 ≤ 1e-5).
//! 2-D and 3-D inputs run as `[n, f, 1, 1]` and `[n, c, l, 1]` (outputs compared without the
//! unit axes after the batch); inputs after the first are bound as constants
//! ([`gradcam_onnx::from_bytes_bound`]). Cases it cannot translate — rank-1 or rank-5 inputs,
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
    let set = dir.join("test_data_set_0");
    let pb = |name: &str| {
        std::fs::read(set.join(name))
            .map_err(|e| e.to_string())
            .and_then(|b| gradcam_onnx::read_tensor_pb(&b).map_err(|e| e.to_string()))
    };
    if set.join("output_1.pb").exists() {
        return Err("skip: several outputs".into());
    }
    // Inputs after the first are bound as constants (the runtime has one input).
    let rest = (1..)
        .map(|i| format!("input_{i}.pb"))
        .take_while(|n| set.join(n).exists())
        .map(|n| pb(&n))
        .collect::<Result<Vec<_>, _>>()?;
    let graph = gradcam_onnx::from_bytes_bound(&model, Some(dir), &rest).map_err(|e| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("");
        format!(
            "skip: {}",
            first.split("; supported:").next().unwrap_or(first)
        )
    })?;
    let (x, want) = (pb("input_0.pb")?, pb("output_0.pb")?);
    // [n], [n, f] and [n, c, l] run as [n, 1, 1, 1], [n, f, 1, 1] and [n, c, l, 1].
    let mut dims = x.shape.dims().to_vec();
    if !(1..=4).contains(&dims.len()) {
        return Err(format!("skip: a rank-{} input", dims.len()));
    }
    dims.resize(4, 1);
    let x = gradcam_core::HostTensor::new(dims, x.data).map_err(|e| e.to_string())?;
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), graph).map_err(|e| e.to_string())?;
    let xd = m.upload_input(&x).map_err(|e| format!("skip: {e}"))?;
    let acts = m
        .forward(&xd, &Default::default())
        .map_err(|e| format!("FAILED: forward: {e}"))?;
    let y = acts.get(m.graph().output()).map_err(|e| e.to_string())?;
    // Compared without the unit axes after the batch: ONNX's [n, f] is the runtime's
    // [n, f, 1, 1].
    let squeeze = |d: &[usize]| -> Vec<usize> {
        d.iter()
            .enumerate()
            .filter(|&(i, &v)| i == 0 || v != 1)
            .map(|(_, &v)| v)
            .collect()
    };
    if squeeze(y.shape().dims()) != squeeze(want.shape.dims()) {
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
    // These, at least, must be among those run (the operators of 2-D CNN classifiers, 2-D
    // and 3-D inputs, several inputs bound as constants).
    for must in [
        "test_Conv2d ",
        "test_Conv2d_groups ",
        "test_MaxPool2d ",
        "test_AvgPool2d ",
        "test_BatchNorm2d_eval ",
        "test_PReLU_2d ",
        "test_ZeroPad2d ",
        "test_ConstantPad2d ",
        "test_Linear ",
        "test_Linear_no_bias ",
        "test_Softmax ",
        "test_ELU ",
        "test_LeakyReLU ",
        "test_Conv1d ",
        "test_operator_mm ",
        "test_operator_addmm ",
        "test_operator_concat2 ",
        "test_operator_reduced_mean_keepdim ",
        "test_operator_reduced_mean ",
        "test_operator_view ",
    ] {
        assert!(
            passed.iter().any(|p| p.starts_with(must)),
            "{} was not run",
            must.trim()
        );
    }
}
