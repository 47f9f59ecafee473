//! `gradcam demo` and `gradcam explain` on images: panels (one against a golden picture),
//! summaries, batches with unreadable files, converted colour types, labels.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gradcam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradcam"))
        .args(args)
        .output()
        .unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("gradcam-demo-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/golden")
        .join(name)
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A PNG with a valid header (CRC included) declaring a 0×4 image.
const ZERO_WIDTH_PNG: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 0, 0, 0, 0, 4, 8, 2, 0,
    0, 0, 47, 120, 169, 83, 0, 0, 0, 8, 73, 68, 65, 84, 120, 156, 3, 0, 0, 0, 0, 1, 72, 6, 137,
    210, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

#[test]
fn demo_explains_each_object_with_its_own_class() {
    let out = tmp("demo");
    let o = gradcam(&["demo", "--out", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let truth = json(&out.join("scene.json"));
    let classes: Vec<String> = truth["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["label"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(classes.len(), 2);
    for c in &classes {
        assert!(stdout.contains(&format!("on the {c};")), "{c}: {stdout}");
    }
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["explained"], 1);
    let explained = summary["images"][0]["explained"].as_array().unwrap();
    assert_eq!(explained.len(), 2);
    for (e, c) in explained.iter().zip(&classes) {
        assert_eq!(e["label"].as_str().unwrap(), c);
        let file = format!("scene.{}-{c}.panel.png", e["class"]);
        assert_eq!(e["files"]["panel"].as_str().unwrap(), file);
        assert!(out.join(&file).is_file());
    }
    // The first class's panel against the committed golden picture, below the title (whose
    // printed score is checked through the summary): a few levels of slack, the maps being
    // float computations.
    let first = explained[0]["files"]["panel"].as_str().unwrap();
    let panel = image::open(out.join(first)).unwrap().to_rgb8();
    let want_path = golden("demo_panel.png");
    if std::env::var_os("GRADCAM_BLESS").is_some() {
        panel.save(&want_path).unwrap();
    }
    let want = image::open(&want_path).unwrap().to_rgb8();
    assert_eq!(panel.dimensions(), want.dimensions());
    let title_band = 32 * 3 * panel.width() as usize;
    let worst = panel.as_raw()[title_band..]
        .iter()
        .zip(&want.as_raw()[title_band..])
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .max()
        .unwrap();
    assert!(
        worst <= 4,
        "the panel differs from {} by {worst}",
        want_path.display()
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_batch_goes_on_past_unreadable_images() {
    let dir = tmp("inputs");
    std::fs::create_dir_all(&dir).unwrap();
    // Readable: RGB, grayscale, RGBA (converted, not rejected).
    let rgb = image::RgbImage::from_fn(80, 64, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 4) as u8, 90])
    });
    rgb.save(dir.join("a_rgb.png")).unwrap();
    image::GrayImage::from_fn(64, 64, |x, _| image::Luma([(x * 4) as u8]))
        .save(dir.join("b_gray.png"))
        .unwrap();
    image::RgbaImage::from_fn(64, 70, |x, y| image::Rgba([x as u8, y as u8, 200, 128]))
        .save(dir.join("c_rgba.png"))
        .unwrap();
    // Unreadable: corrupt, truncated, empty, not an image at all.
    std::fs::write(dir.join("d_corrupt.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let full = std::fs::read(dir.join("a_rgb.png")).unwrap();
    std::fs::write(dir.join("e_truncated.png"), &full[..full.len() / 2]).unwrap();
    std::fs::write(dir.join("f_empty.jpg"), b"").unwrap();
    std::fs::write(dir.join("g_text.jpg"), b"hello").unwrap();
    // A PNG whose header declares a zero width.
    std::fs::write(dir.join("h_zero.png"), ZERO_WIDTH_PNG).unwrap();
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "disc\nsquare\n").unwrap();
    let out = tmp("out");
    let o = gradcam(&[
        "explain",
        "--arch",
        "demo",
        "--input",
        dir.to_str().unwrap(),
        "--size",
        "64",
        "--resize",
        "64",
        "--batch",
        "2",
        "--labels",
        labels.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for bad in ["d_corrupt", "e_truncated", "f_empty", "g_text", "h_zero"] {
        assert!(stderr.contains(bad), "{bad} not reported: {stderr}");
    }
    assert!(
        stderr.contains("the labels file has 2 names but the model has 4 classes"),
        "{stderr}"
    );
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["explained"], 3);
    assert_eq!(summary["failed"].as_array().unwrap().len(), 5);
    // Guided Grad-CAM (a default method) reads the forward's masks: the exact forward.
    assert_eq!(summary["run"]["backend"], "cpu");
    assert_eq!(summary["run"]["forward"], "exact");
    let images = summary["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    let entry = &images[0]["explained"][0];
    assert_eq!(entry["map"], "gradcam");
    let b = &entry["box"];
    assert!(b["x0"].as_u64() < b["x1"].as_u64() && b["x1"].as_u64() <= Some(64));
    assert!(entry["peak"]["x"].as_u64().unwrap() < 64);
    assert_eq!(images[0]["top"].as_array().unwrap().len(), 4);
    let p: f64 = images[0]["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["probability"].as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-4);
    // With the right labels the names reach the files.
    std::fs::write(&labels, "disc\nsquare\ntriangle\ncross\n").unwrap();
    let out2 = tmp("out2");
    let o = gradcam(&[
        "explain",
        "--arch",
        "demo",
        "--input",
        dir.join("a_rgb.png").to_str().unwrap(),
        "--size",
        "64",
        "--labels",
        labels.to_str().unwrap(),
        "--top",
        "2",
        "--colormap",
        "turbo",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let panels = std::fs::read_dir(&out2)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".panel.png")
        })
        .count();
    assert_eq!(panels, 2);
    let s = json(&out2.join("summary.json"));
    let label = s["images"][0]["explained"][0]["label"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(["disc", "square", "triangle", "cross"].contains(&label.as_str()));
    let class = &s["images"][0]["explained"][0]["class"];
    assert!(out2
        .join(format!("a_rgb.{class}-{label}.gradcam.png"))
        .is_file());
    for p in [dir, out, out2] {
        let _ = std::fs::remove_dir_all(p);
    }
}

#[test]
fn the_summary_says_which_forward_ran() {
    let dir = tmp("rounding");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("a.png");
    image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 4) as u8, 90])
    })
    .save(&png)
    .unwrap();
    let summary_of = |methods: &str, out: &str| {
        let out = dir.join(out);
        let o = gradcam(&[
            "explain",
            "--arch",
            "demo",
            "--input",
            png.to_str().unwrap(),
            "--size",
            "64",
            "--method",
            methods,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        json(&out.join("summary.json"))
    };
    // Grad-CAM alone at the last block (average pooling and the classifier after it) reads
    // nothing of the forward: the backend's fast one. Guided Grad-CAM reads its masks.
    let fast = summary_of("gradcam", "fast");
    assert_eq!(fast["run"]["backend"], "cpu");
    assert_eq!(fast["run"]["forward"], "fast");
    assert_eq!(
        summary_of("gradcam,guided-gradcam", "exact")["run"]["forward"],
        "exact"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn nothing_readable_is_an_error() {
    let dir = tmp("none");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("x.png"), b"nope").unwrap();
    std::fs::write(dir.join("y.png"), b"nope").unwrap();
    let o = gradcam(&[
        "explain",
        "--arch",
        "demo",
        "--input",
        dir.to_str().unwrap(),
        "--size",
        "64",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("none of the 2 inputs could be read and explained"),
        "{stderr}"
    );
    let o = gradcam(&["explain", "--arch", "resnet18", "--input", "x.png"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--weights is required"));
    let _ = std::fs::remove_dir_all(dir);
}
