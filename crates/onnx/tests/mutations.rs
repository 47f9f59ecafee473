//! A deterministic mutation fuzzer for the loader, run by CI: thousands of corrupted versions of
//! real exports (bit flips, byte overwrites, truncations, insertions, duplicated spans) must each
//! import or fail with an error — never panic. `fuzz/` holds the cargo-fuzz target for longer
//! runs; a crash either finds is to become a regression test here (none found so far).

use gradcam_core::SplitMix64;
use std::path::PathBuf;

fn fixture(case: &str, file: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/fixtures")
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
    for (case, file, n) in [
        ("tiny_cam", "model.onnx", 1500),
        ("tiny_cam", "model.dynamo.onnx", 1500),
        ("mobilenet_v2_035", "model.onnx", 200),
    ] {
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
