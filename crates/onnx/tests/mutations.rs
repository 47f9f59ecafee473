//! Deterministic mutation fuzzers for the loader, run by CI: thousands of corrupted versions of
//! real exports (bit flips, byte overwrites, truncations, insertions, duplicated spans), and of
//! their decoded graphs (attribute values, initializer shapes and values, rewired inputs,
//! swapped operators), must each import or fail with an error — never panic; imported ones also
//! run forward. `GRADCAM_MUTATIONS=K` runs K times as many. `fuzz/` holds the cargo-fuzz targets
//! for longer runs (they need a nightly toolchain). Crashes found become regression tests:
//! `ops_more.rs`'s `fuzzer_regressions` (two, from the structural mutations: arithmetic on an
//! empty constant, an axis of `i64::MAX`).

use gradcam_core::SplitMix64;
use std::path::PathBuf;

/// `case` under `tests/data` (`fixtures/…` or `onnx_models/…`).
fn fixture(case: &str, file: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(case)
        .join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn mutate(src: &[u8], r: &mut SplitMix64) -> Vec<u8> {
    let mut v = src.to_vec();
    for _ in 0..r.int(1, 4) {
        if v.is_empty() {
            break;
        }
        let at = r.int(0, v.len() - 1);
        match r.int(0, 4) {
            0 => v[at] ^= 1 << r.int(0, 7),
            1 => v[at] = r.int(0, 255) as u8,
            2 => v.truncate(at),
            3 => v.insert(at, r.int(0, 255) as u8),
            _ => {
                let end = (at + r.int(1, 16)).min(v.len());
                let span = v[at..end].to_vec();
                v.splice(at..at, span);
            }
        }
    }
    v
}

#[test]
fn corrupted_exports_never_panic() {
    let mut r = SplitMix64::new(2026);
    let mut ok = 0;
    let mut errors = 0;
    // `GRADCAM_MUTATIONS=K` runs K times as many (a longer local campaign).
    let k: usize = std::env::var("GRADCAM_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for (case, file, n) in [
        ("fixtures/tiny_cam", "model.onnx", 1500),
        ("fixtures/tiny_cam", "model.dynamo.onnx", 1500),
        ("fixtures/mobilenet_v2_035", "model.onnx", 200),
        // Channel split and shuffle, squeeze-and-excitation products.
        ("onnx_models/tiny_shufflenet", "model.onnx", 300),
        ("onnx_models/tiny_shufflenet", "model.dynamo.onnx", 300),
        ("onnx_models/tiny_efficientnet", "model.onnx", 300),
        // tf2onnx: an NHWC input, uneven padding, Mul·Add batch norms.
        ("tf2onnx", "model.onnx", 300),
    ] {
        let n = n * k;
        let src = fixture(case, file);
        gradcam_onnx::from_bytes(&src, None).expect("the original imports");
        for _ in 0..n {
            let m = mutate(&src, &mut r);
            match gradcam_onnx::from_bytes(&m, None) {
                Ok(_) => ok += 1,
                Err(_) => errors += 1,
            }
        }
    }
    eprintln!("mutations: {ok} imported, {errors} rejected with an error");
    assert!(
        errors > 0,
        "no mutation was rejected: the fuzzer does not reach the parser"
    );
}

/// Mutations of the decoded model rather than its bytes, so that they reach the translator:
/// attribute values (pads, strides, axes, split sizes, perm, sizes) replaced by zero,
/// negative, huge or off-by-one values, initializer dimensions and int64 values (shapes,
/// starts, ends) changed, node inputs rewired to other tensors, and operator types swapped —
/// each mutated model must import, fail with an error, or (when it imports) run forward or fail
/// with an error, never panic.
#[test]
fn structurally_mutated_models_never_panic() {
    use gradcam_core::{Backend, Shape};
    use gradcam_onnx::proto::ModelProto;
    use prost::Message;
    let k: usize = std::env::var("GRADCAM_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let odd = |r: &mut SplitMix64, v: i64| -> i64 {
        match r.int(0, 7) {
            0 => 0,
            1 => -1,
            2 => v.saturating_neg(),
            3 => v.saturating_add(1),
            4 => v.saturating_sub(1),
            5 => 1 << 40,
            6 => i64::MAX,
            _ => r.int(0, 9) as i64,
        }
    };
    let ops = [
        "Relu",
        "Conv",
        "Add",
        "Mul",
        "Slice",
        "Split",
        "Reshape",
        "Transpose",
        "Concat",
        "LRN",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "Flatten",
        "Gemm",
        "Softmax",
        "Div",
        "Sub",
    ];
    let mut r = SplitMix64::new(77);
    let (mut imported, mut rejected, mut ran) = (0, 0, 0);
    let cpu = gradcam_cpu::CpuBackend::new();
    for (case, file, n) in [
        ("onnx_models/tiny_shufflenet", "model.onnx", 150),
        ("onnx_models/tiny_shufflenet", "model.dynamo.onnx", 150),
        ("onnx_models/tiny_efficientnet", "model.onnx", 150),
        ("fixtures/mini_resnet", "model.onnx", 150),
        ("tf2onnx", "model.onnx", 150),
    ] {
        let src = ModelProto::decode(&fixture(case, file)[..]).unwrap();
        for _ in 0..n * k {
            let mut m = src.clone();
            let g = m.graph.as_mut().unwrap();
            for _ in 0..r.int(1, 3) {
                match r.int(0, 3) {
                    0 if !g.node.is_empty() => {
                        let nd = r.int(0, g.node.len() - 1);
                        let node = &mut g.node[nd];
                        if !node.attribute.is_empty() {
                            let at = r.int(0, node.attribute.len() - 1);
                            let a = &mut node.attribute[at];
                            if let Some(i) = a.i {
                                a.i = Some(odd(&mut r, i));
                            }
                            if !a.ints.is_empty() {
                                let j = r.int(0, a.ints.len() - 1);
                                a.ints[j] = odd(&mut r, a.ints[j]);
                                if r.int(0, 3) == 0 {
                                    a.ints.pop();
                                }
                            }
                            if let Some(f) = a.f {
                                a.f = Some([0.0, -f, f32::NAN, 1e30][r.int(0, 3)]);
                            }
                        }
                    }
                    1 if !g.initializer.is_empty() => {
                        let t = r.int(0, g.initializer.len() - 1);
                        let t = &mut g.initializer[t];
                        if !t.int64_data.is_empty() {
                            let j = r.int(0, t.int64_data.len() - 1);
                            t.int64_data[j] = odd(&mut r, t.int64_data[j]);
                        } else if !t.dims.is_empty() {
                            let j = r.int(0, t.dims.len() - 1);
                            t.dims[j] = odd(&mut r, t.dims[j]);
                        }
                    }
                    2 if g.node.len() > 1 => {
                        let (a, b) = (r.int(0, g.node.len() - 1), r.int(0, g.node.len() - 1));
                        if let (Some(i), Some(o)) = (
                            g.node[a].input.len().checked_sub(1),
                            g.node[b].output.first().cloned(),
                        ) {
                            let j = r.int(0, i);
                            g.node[a].input[j] = o;
                        }
                    }
                    _ if !g.node.is_empty() => {
                        let nd = r.int(0, g.node.len() - 1);
                        g.node[nd].op_type = Some(ops[r.int(0, ops.len() - 1)].to_string());
                    }
                    _ => {}
                }
            }
            match gradcam_onnx::from_bytes_any_output(&m.encode_to_vec(), None) {
                Ok(graph) => {
                    imported += 1;
                    if let Ok(model) = gradcam_runtime::Model::new(cpu.clone(), graph) {
                        let x =
                            cpu.upload(&vec![0.25; 2 * 3 * 64 * 64], Shape::new([2, 3, 64, 64]));
                        if model.forward(&x.unwrap(), &Default::default()).is_ok() {
                            ran += 1;
                        }
                    }
                }
                Err(_) => rejected += 1,
            }
        }
    }
    eprintln!("structural mutations: {imported} imported ({ran} ran), {rejected} rejected");
    assert!(rejected > 0 && imported > 0);
}
