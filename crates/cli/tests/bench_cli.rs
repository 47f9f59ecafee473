//! `gradcam bench`: its JSON contract, on seeded random weights.

use std::process::Command;

/// `gradcam bench` with `args` on seeded ResNet-18 weights at 32×32, two threads, three
/// timed runs: its stdout, one JSON object per line.
fn bench_json(args: &[&str]) -> Vec<serde_json::Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_gradcam"))
        .args([
            "bench",
            "--arch",
            "resnet18",
            "--size",
            "32",
            "--reps",
            "3",
            "--warmup",
            "1",
            "--threads",
            "2",
            "--json",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn bench_prints_one_json_object_per_method() {
    let lines = bench_json(&["--batch", "2", "--method", "forward,gradcam,guided-gradcam"]);
    assert_eq!(lines.len(), 3);
    // The plain forward and Grad-CAM at ResNet-18's last block read no mask: the CPU's fast
    // forward; Guided Grad-CAM's backward reads every mask: the exact one.
    for ((v, m), forward) in lines
        .iter()
        .zip(["forward", "gradcam", "guided-gradcam"])
        .zip(["fast", "fast", "exact"])
    {
        assert_eq!(v["method"], m);
        assert_eq!(v["forward"], forward, "{m}");
        assert_eq!(v["arch"], "resnet18");
        assert_eq!(v["batch"], 2);
        assert_eq!(v["threads"], 2);
        let (median, per) = (
            v["median_ms"].as_f64().unwrap(),
            v["ms_per_image"].as_f64().unwrap(),
        );
        assert!(median > 0.0 && (per - median / 2.0).abs() < 1e-9);
        assert!(v["min_ms"].as_f64().unwrap() <= median && median <= v["max_ms"].as_f64().unwrap());
    }
}

#[test]
fn bench_rejects_unknown_names() {
    // A generic resnet has no random weights (which depth?); an unknown method is refused.
    for (arch, method) in [("resnet", "gradcam"), ("resnet18", "fastest")] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gradcam"));
        cmd.args([
            "bench", "--arch", arch, "--method", method, "--size", "32", "--reps", "1",
        ]);
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: "));
    }
}

#[test]
fn bench_profile_sums_ops_and_times_the_forward_without_waits() {
    let lines = bench_json(&["--method", "forward", "--profile"]);
    assert_eq!(lines.len(), 2);
    let p = &lines[1];
    let kinds = p["profile"].as_array().unwrap();
    // ResNet-18: 20 convolutions (the 3 downsampling 1×1 among them) and one linear layer.
    let count = |prefix: &str| -> u64 {
        kinds
            .iter()
            .filter(|k| k["op"].as_str().unwrap().starts_with(prefix))
            .map(|k| k["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(count("conv"), 20);
    assert_eq!(count("Linear"), 1);
    let sum: f64 = kinds.iter().map(|k| k["ms"].as_f64().unwrap()).sum();
    assert!((sum - p["total_ms"].as_f64().unwrap()).abs() < 1e-9);
    let (issued, finished) = (
        p["forward_issued_ms"].as_f64().unwrap(),
        p["forward_finished_ms"].as_f64().unwrap(),
    );
    assert!(issued > 0.0 && finished.is_finite(), "{issued} {finished}");
    assert_eq!(p["forward"], "fast");
}
