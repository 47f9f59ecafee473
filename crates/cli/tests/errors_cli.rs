//! The command line reports bad input in one line with exit status 1, never a panic.

use std::path::PathBuf;
use std::process::Command;

fn fixture(case: &str, file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/fixtures")
        .join(case)
        .join(file)
        .display()
        .to_string()
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gradcam-cli-err-{}-{name}", std::process::id()))
}

/// Runs `gradcam explain` on mini_resnet with `args` replacing defaults; returns stderr.
fn fails(args: &[&str]) -> String {
    let weights = fixture("mini_resnet", "weights.safetensors");
    let input = format!("{}:input", fixture("mini_resnet", "reference.safetensors"));
    let mut full: Vec<String> = vec!["explain".into()];
    let has = |k: &str| args.contains(&k);
    if !has("--arch") {
        full.extend(["--arch".into(), "resnet".into()]);
    }
    if !has("--weights") {
        full.extend(["--weights".into(), weights]);
    }
    if !has("--input") {
        full.extend(["--input".into(), input]);
    }
    full.extend(args.iter().map(|s| s.to_string()));
    let o = Command::new(env!("CARGO_BIN_EXE_gradcam"))
        .args(&full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected failure for {args:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn missing_files() {
    assert!(fails(&["--weights", "/nonexistent.safetensors"]).contains("/nonexistent.safetensors"));
    assert!(fails(&["--input", "/nonexistent.png"]).contains("/nonexistent.png"));
}

#[test]
fn corrupted_weights_and_images() {
    let w = tmp("w.safetensors");
    std::fs::write(&w, b"garbage").unwrap();
    assert!(fails(&["--weights", w.to_str().unwrap()]).contains("not a valid safetensors file"));
    let img = tmp("broken.png");
    std::fs::write(&img, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    assert!(fails(&["--input", img.to_str().unwrap()]).contains("corrupt or truncated image"));
    let _ = std::fs::remove_file(w);
    let _ = std::fs::remove_file(img);
}

#[test]
fn unknown_names() {
    assert!(fails(&["--arch", "resnet5"]).contains("unknown architecture"));
    assert!(fails(&["--method", "gradcam,gradkam"]).contains("unknown method"));
    assert!(fails(&["--layer", "layer7"]).contains("candidates"));
    assert!(fails(&["--backend", "tpu"]).contains("not available"));
    let input = format!("{}:nope", fixture("mini_resnet", "reference.safetensors"));
    assert!(fails(&["--input", &input]).contains("no tensor `nope`"));
}

#[test]
fn class_out_of_range_and_nan_input() {
    assert!(fails(&["--class", "10"]).contains("class 10 out of range"));
    // A .npy input holding a NaN.
    let mut body: Vec<u8> = vec![0; 3 * 64 * 64 * 4];
    body[40..44].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 64, 64), }".to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut file = b"\x93NUMPY\x01\x00".to_vec();
    file.extend((h.len() as u16).to_le_bytes());
    file.extend(h.as_bytes());
    file.extend(body);
    let p = tmp("nan.npy");
    std::fs::write(&p, file).unwrap();
    assert!(fails(&["--input", p.to_str().unwrap()]).contains("non-finite"));
    let _ = std::fs::remove_file(p);
}

#[test]
fn explains_an_image_file() {
    // A real PNG goes through resizing and normalisation and gives pictures.
    let img = tmp("in.png");
    let pixels: Vec<u8> = (0..40 * 30 * 3).map(|i| (i * 7 % 251) as u8).collect();
    image::RgbImage::from_raw(40, 30, pixels)
        .unwrap()
        .save(&img)
        .unwrap();
    let out = tmp("pictures");
    let o = Command::new(env!("CARGO_BIN_EXE_gradcam"))
        .args([
            "explain",
            "--arch",
            "resnet",
            "--weights",
            &fixture("mini_resnet", "weights.safetensors"),
        ])
        .args([
            "--input",
            img.to_str().unwrap(),
            "--size",
            "64",
            "--method",
            "gradcam,guided-gradcam",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    // Grad-CAM, guided backprop, Guided Grad-CAM, the panel and the summary.
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".gradcam.png")));
    assert!(names.iter().any(|n| n.ends_with(".panel.png")));
    assert!(names.iter().any(|n| n == "summary.json"));
    let picture = image::open(
        out.join(
            names
                .iter()
                .find(|n| n.ends_with(".guided_gradcam.png"))
                .unwrap(),
        ),
    )
    .unwrap();
    assert_eq!((picture.width(), picture.height()), (64, 64));
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_file(img);
}
