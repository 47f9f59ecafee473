//! `gradcam eval`: the paper's measurements on the demo model and held-out procedural scenes,
//! written as Markdown, CSV and PNG plots.

use crate::eval_report;
use clap::Args;
use gradcam_core::{Error, Result};
use gradcam_cpu::CpuBackend;
use gradcam_demo::measure::{self, MeasureConfig};
use gradcam_explain::Explainer;
use gradcam_runtime::{arch, Model, Weights};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `gradcam eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Directory for EVALUATION.md and eval/ (CSV tables and plots).
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// The small run CI uses (50 one-object, 25 two-object, 25 validation scenes).
    #[arg(long)]
    quick: bool,
    /// One-object test scenes (default 1000; 50 with --quick).
    #[arg(long)]
    scenes: Option<usize>,
    /// Two-object test scenes (default 500; 25 with --quick).
    #[arg(long)]
    pairs: Option<usize>,
    /// Two-object validation scenes (default 200; 25 with --quick).
    #[arg(long)]
    validation: Option<usize>,
    /// Demo weights to measure instead of the built-in ones (e.g. another seed's, from
    /// `gradcam train-demo --seed N`).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Directory of other seeds' demo weights (`demo_seed*.safetensors` from `gradcam
    /// train-demo --seed N`) for the spread across seeds; skipped when absent.
    #[arg(long, default_value = "crates/demo/weights/seeds")]
    seeds: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Runs `gradcam eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    if let Some(t) = a.threads {
        gradcam_cpu::set_threads(t)?;
    }
    let mut cfg = if a.quick {
        MeasureConfig::quick()
    } else {
        MeasureConfig::full()
    };
    cfg.scenes = a.scenes.unwrap_or(cfg.scenes);
    cfg.pairs = a.pairs.unwrap_or(cfg.pairs);
    cfg.validation = a.validation.unwrap_or(cfg.validation);
    if cfg.scenes == 0 || cfg.pairs == 0 || cfg.validation == 0 {
        return Err(Error::InvalidArgument(
            "--scenes, --pairs and --validation must be positive".into(),
        ));
    }
    let (graph, model) = match &a.weights {
        Some(w) => (
            arch::build("demo", &Weights::open(w)?)?,
            format!("demo CNN, weights {}", w.display()),
        ),
        None => (
            gradcam_demo::model::graph()?,
            "demo CNN, built-in weights (train-demo seed 0)".to_string(),
        ),
    };
    let (spread_scenes, spread_pairs) = if a.quick { (20, 10) } else { (300, 150) };
    let mut models = vec![(
        seed_of(a.weights.as_ref())?,
        Explainer::new(Model::new(CpuBackend::reference(), graph.clone())?),
    )];
    for (seed, path) in seed_files(&a.seeds)? {
        let g = arch::build("demo", &Weights::open(&path)?)?;
        models.push((
            seed,
            Explainer::new(Model::new(CpuBackend::reference(), g)?),
        ));
    }
    let ex = Explainer::new(Model::new(CpuBackend::reference(), graph)?);
    let spread_total = models.len() * (spread_scenes + spread_pairs);
    let bar = ProgressBar::new((cfg.total() + spread_total) as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} scenes [{elapsed} < {eta}]")
            .expect("a valid template"),
    );
    let started = Instant::now();
    let report = measure::run(&ex, &cfg, &mut |done| bar.set_position(done as u64))?;
    let seeds = measure::seed_spread(
        &models,
        spread_scenes,
        spread_pairs,
        cfg.batch,
        &mut |done| bar.set_position((cfg.total() + done) as u64),
    )?;
    bar.finish_and_clear();
    let mut command = "gradcam eval".to_string();
    if a.quick {
        command.push_str(" --quick");
    }
    for (flag, v) in [
        ("--scenes", a.scenes),
        ("--pairs", a.pairs),
        ("--validation", a.validation),
    ] {
        if let Some(v) = v {
            command.push_str(&format!(" {flag} {v}"));
        }
    }
    if let Some(w) = &a.weights {
        command.push_str(&format!(" --weights {}", w.display()));
    }
    let written = eval_report::write(&report, &seeds, &a.out, &command, &model)?;
    println!(
        "measured {} scenes in {:.1} s; wrote {}",
        cfg.total() + spread_total,
        started.elapsed().as_secs_f64(),
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// The training seed recorded in a demo weights file (0 for the built-in weights).
fn seed_of(path: Option<&PathBuf>) -> Result<u64> {
    let Some(path) = path else { return Ok(0) };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        Error::Model(format!(
            "{}: not a valid safetensors file ({e})",
            path.display()
        ))
    })?;
    let described = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(gradcam_demo::train::METADATA_KEY).cloned())
        .ok_or_else(|| Error::Model(format!("{}: no train-demo record", path.display())))?;
    described
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("seed="))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Model(format!("{}: no seed in `{described}`", path.display())))
}

/// `demo_seed*.safetensors` in `dir`, with their seeds, in seed order; none when `dir` is absent.
fn seed_files(dir: &std::path::Path) -> Result<Vec<(u64, PathBuf)>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("demo_seed") && name.ends_with(".safetensors") {
            out.push((seed_of(Some(&path))?, path));
        }
    }
    out.sort();
    Ok(out)
}
