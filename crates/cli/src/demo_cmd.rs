//! `gradcam demo`: the built-in demo model on a generated two-object scene; a Figure-1 panel
//! per class, and whether each class's Grad-CAM peaks on its own object.

use crate::backends::with_backend;
use crate::batch_run::BatchRun;
use crate::explain_cmd::Setup;
use crate::sources::Source;
use clap::Args;
use gradcam_core::{Error, Result};
use gradcam_demo::{model, Split, CLASSES, SIZE};
use gradcam_explain::{Classes, Method, Options};
use gradcam_image::{picture, Colormap, Preprocess, RgbImage};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Arguments of `gradcam demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Output directory.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Which held-out two-object scene to explain (any index; 1 by default, a cross beside a
    /// striped square).
    #[arg(long, default_value_t = 1)]
    scene: u64,
    /// Compute backend: cpu, wgpu, or cuda (a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Overlay colormap: jet, turbo or viridis.
    #[arg(long, default_value = "jet")]
    colormap: String,
}

/// Runs `gradcam demo`.
pub fn run(a: DemoArgs) -> Result<()> {
    let scene = Split::Test.scene(a.scene, 2);
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let plane = SIZE * SIZE;
    let mut img = RgbImage::new(SIZE as u32, SIZE as u32);
    for (i, p) in img.pixels_mut().enumerate() {
        p.0 = [0, 1, 2].map(|c| (scene.image[c * plane + i] * 255.0).round() as u8);
    }
    let png = a.out.join("scene.png");
    picture::save(&img, &png)?;
    let truth: Vec<Value> = scene
        .objects
        .iter()
        .map(|o| json!({"class": o.class, "label": CLASSES[o.class], "box": {"x0": o.bbox[0], "y0": o.bbox[1], "x1": o.bbox[2], "y1": o.bbox[3]}}))
        .collect();
    let truth_path = a.out.join("scene.json");
    std::fs::write(
        &truth_path,
        serde_json::to_string_pretty(&json!({"objects": truth})).expect("JSON"),
    )
    .map_err(|e| Error::io(&truth_path, e))?;
    println!(
        "scene {} (held-out split): a {} and a {}, written to {}",
        a.scene,
        CLASSES[scene.objects[0].class],
        CLASSES[scene.objects[1].class],
        png.display()
    );
    let setup = Setup {
        graph: model::graph()?,
        methods: vec![Method::GradCam, Method::GuidedGradCam, Method::Occlusion],
        opts: Options {
            classes: Classes::PerImage(vec![scene.objects.iter().map(|o| o.class).collect()]),
            ..Options::default()
        },
        pre: Preprocess {
            resize: SIZE as u32,
            crop: SIZE as u32,
            mean: model::MEAN,
            std: model::STD,
        },
    };
    let job = BatchRun {
        sources: vec![Source::Image(png)],
        setup,
        batch: 1,
        out: Some(a.out.clone()),
        save_tensors: None,
        labels: Some(CLASSES.iter().map(|s| s.to_string()).collect()),
        colormap: Colormap::parse(&a.colormap)?,
        model: "demo (built-in weights)".into(),
    };
    with_backend(&a.backend, None, job)?;
    let summary_path = a.out.join("summary.json");
    let text = std::fs::read_to_string(&summary_path).map_err(|e| Error::io(&summary_path, e))?;
    let summary: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Input(format!("{}: {e}", summary_path.display())))?;
    let entries = summary["images"][0]["explained"]
        .as_array()
        .ok_or_else(|| Error::Model(format!("{}: no explained classes", summary_path.display())))?;
    for e in entries {
        let class = e["class"].as_u64().map(|c| c as usize);
        let label = class.and_then(|c| CLASSES.get(c)).copied().unwrap_or("?");
        let verdict = match (e["peak"]["x"].as_u64(), e["peak"]["y"].as_u64()) {
            (Some(x), Some(y)) => {
                let (x, y) = (x as usize, y as usize);
                let place = match scene.objects.iter().find(|o| o.covers(y, x)) {
                    Some(o) if Some(o.class) == class => format!("on the {label}"),
                    Some(o) => format!("on the {}, not the {label}", CLASSES[o.class]),
                    None => "on the background".into(),
                };
                format!("Grad-CAM peak at (x {x}, y {y}): {place}")
            }
            _ => "no positive Grad-CAM evidence".into(),
        };
        println!(
            "{label:<8} p {:.3}  {verdict}; panel {}",
            e["probability"].as_f64().unwrap_or(f64::NAN),
            a.out
                .join(e["files"]["panel"].as_str().unwrap_or("-"))
                .display()
        );
    }
    Ok(())
}
