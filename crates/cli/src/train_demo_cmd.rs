//! `gradcam train-demo`: trains the demo model on the CPU with the project's own runtime and
//! reports its held-out accuracy and Grad-CAM pointing.

use clap::Args;
use gradcam_core::{Error, Result};
use gradcam_cpu::CpuBackend;
use gradcam_demo::{eval, train, Split};
use gradcam_explain::Explainer;
use gradcam_runtime::{Model, Weights};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

/// Arguments of `gradcam train-demo`.
#[derive(Args)]
pub struct TrainDemoArgs {
    /// Seed of the initial weights and of the scene mix.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Optimisation steps.
    #[arg(long, default_value_t = train::TrainConfig::default().steps)]
    steps: usize,
    /// Scenes per step.
    #[arg(long, default_value_t = train::TrainConfig::default().batch)]
    batch: usize,
    /// Peak step size (Adam).
    #[arg(long, default_value_t = train::TrainConfig::default().lr)]
    lr: f32,
    /// Where the trained weights go (safetensors).
    #[arg(long, default_value = "demo.safetensors")]
    out: PathBuf,
    /// Held-out scenes for the reported figures.
    #[arg(long, default_value_t = 1000)]
    eval_scenes: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Runs `gradcam train-demo`.
pub fn run(a: TrainDemoArgs) -> Result<()> {
    if let Some(t) = a.threads {
        gradcam_cpu::set_threads(t)?;
    }
    if a.steps == 0 || a.batch == 0 || a.eval_scenes == 0 {
        return Err(Error::InvalidArgument(
            "--steps, --batch and --eval-scenes must be positive".into(),
        ));
    }
    let cfg = train::TrainConfig {
        seed: a.seed,
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        ..Default::default()
    };
    let bar = ProgressBar::new(cfg.steps as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]")
            .expect("a valid template"),
    );
    let mut avg = None;
    let graph = train::train(CpuBackend::reference(), &cfg, |step, loss| {
        let a: f32 = avg.map_or(loss, |m: f32| 0.95 * m + 0.05 * loss);
        avg = Some(a);
        bar.set_message(format!("loss {a:.4}"));
        bar.set_position(step as u64 + 1);
    })?;
    bar.finish();
    let bytes = Weights::from_graph(&graph, "the demo model")
        .to_bytes(&[(train::METADATA_KEY, &cfg.describe())])?;
    std::fs::write(&a.out, bytes).map_err(|e| Error::io(&a.out, e))?;
    println!("weights: {}", a.out.display());
    let ex = Explainer::new(Model::new(CpuBackend::reference(), graph)?);
    let acc = eval::accuracy(&ex, Split::Test, a.eval_scenes, 64)?;
    let hit = eval::pointing(&ex, Split::Test, a.eval_scenes, 64)?;
    println!(
        "held-out ({} scenes each): accuracy {:.1} % (one object); on two-object scenes each class's Grad-CAM peaks inside its own object {:.1} %, inside the other object {:.1} %",
        a.eval_scenes,
        100.0 * acc,
        100.0 * hit.own,
        100.0 * hit.other
    );
    Ok(())
}
