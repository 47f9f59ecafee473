//! `gradcam explain` over many inputs: batches, a progress bar, unreadable inputs reported and
//! skipped, pictures and `summary.json` written batch by batch (memory stays flat).

use crate::backends::WithBackend;
use crate::explain_cmd::Setup;
use crate::input::{self, Loaded};
use crate::labels;
use crate::pictures::Pictures;
use crate::sources::Source;
use crate::summary::Summary;
use gradcam_core::{Backend, Error, Result};
use gradcam_explain::Explainer;
use gradcam_image::Colormap;
use gradcam_runtime::Model;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::HashSet;
use std::path::PathBuf;

/// One `explain` run.
pub struct BatchRun {
    /// The inputs.
    pub sources: Vec<Source>,
    /// Model, methods, options, preprocessing.
    pub setup: Setup,
    /// Images per batch.
    pub batch: u32,
    /// Pictures and summary directory.
    pub out: Option<PathBuf>,
    /// Where to save every tensor (one batch only).
    pub save_tensors: Option<PathBuf>,
    /// Class names.
    pub labels: Option<Vec<String>>,
    /// Overlay colormap.
    pub colormap: Colormap,
    /// The model, described for the summary.
    pub model: String,
}

/// What a run did.
pub struct Outcome {
    /// Input rows explained.
    pub explained: usize,
    /// Inputs skipped, with why.
    pub failed: Vec<(String, String)>,
}

/// Consecutive images up to `batch` per group; each tensor file alone.
fn group(sources: &[Source], batch: usize) -> Vec<&[Source]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < sources.len() {
        let mut end = start + 1;
        if matches!(sources[start], Source::Image(_)) {
            while end < sources.len()
                && end - start < batch
                && matches!(sources[end], Source::Image(_))
            {
                end += 1;
            }
        }
        out.push(&sources[start..end]);
        start = end;
    }
    out
}

fn describe(src: &Source) -> String {
    match src {
        Source::Image(p) => p.display().to_string(),
        Source::Tensor(s) => s.clone(),
    }
}

impl WithBackend for BatchRun {
    type Output = Outcome;

    fn run<B: Backend + Clone + 'static>(self, backend: B) -> Result<Outcome> {
        let BatchRun {
            sources,
            setup,
            batch,
            out,
            save_tensors,
            labels,
            colormap,
            model,
        } = self;
        let groups = group(&sources, batch as usize);
        if save_tensors.is_some() && groups.len() > 1 {
            return Err(Error::InvalidArgument(format!(
                "--save-tensors writes one batch: these {} inputs make {} (raise --batch, or give one tensor file)",
                sources.len(),
                groups.len()
            )));
        }
        let explainer = Explainer::new(Model::new(backend, setup.graph)?);
        let layer = if setup.methods.iter().any(|m| m.uses_target_layer()) {
            let id = explainer.target_layer(&setup.opts)?;
            Some(explainer.model().graph().display_name(id).to_string())
        } else {
            None
        };
        let mut summary = match &out {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                let pre = &setup.pre;
                Some(Summary::create(
                    &dir.join("summary.json"),
                    json!({
                        "model": model,
                        "layer": layer,
                        "methods": setup.methods.iter().map(|m| m.name()).collect::<Vec<_>>(),
                        "preprocess": {"resize": pre.resize, "crop": pre.crop, "mean": pre.mean, "std": pre.std},
                        "localization_threshold": gradcam_explain::localize::LOCALIZATION_THRESHOLD,
                    }),
                )?)
            }
            None => None,
        };
        let bar = ProgressBar::new(sources.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} inputs [{elapsed} < {eta}]")
                .expect("a valid template"),
        );
        if sources.len() == 1 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let single = sources.len() == 1;
        let mut labels = labels;
        let mut checked_labels = false;
        let mut failed: Vec<(String, String)> = Vec::new();
        let mut explained = 0;
        let mut stems: HashSet<String> = HashSet::new();
        for g in groups {
            let mut parts: Vec<Loaded> = Vec::new();
            for src in g {
                match input::load(src, &setup.pre) {
                    Ok(l) => parts.push(l),
                    Err(e) if single => return Err(e),
                    Err(e) => {
                        bar.suspend(|| eprintln!("skipped: {e}"));
                        failed.push((describe(src), e.to_string()));
                    }
                }
                bar.inc(1);
            }
            if parts.is_empty() {
                continue;
            }
            let loaded = input::stack(parts)?;
            let ex = explainer.explain(&loaded.tensor, &setup.methods, &setup.opts)?;
            let logits = ex.get("logits").expect("logits are always produced");
            let classes = logits.shape.dim(1);
            if !checked_labels {
                checked_labels = true;
                let (l, warning) = labels::check(labels.take(), classes);
                labels = l;
                if let Some(w) = warning {
                    bar.suspend(|| eprintln!("warning: {w}"));
                }
            }
            let pics = Pictures {
                dir: out.as_deref(),
                cmap: colormap,
                labels: labels.as_deref(),
            };
            bar.suspend(|| {
                for (r, (&img, &class)) in ex.images.iter().zip(&ex.targets).enumerate() {
                    let name = loaded
                        .items
                        .get(img)
                        .map_or_else(|| format!("image {img}"), |i| i.name.clone());
                    println!(
                        "row {r}: {name}, class {} ({}), logit {:.6}",
                        class,
                        pics.label(class),
                        logits.data[img * classes + class]
                    );
                }
            });
            if let Some(path) = &save_tensors {
                ex.save(path)?;
                bar.suspend(|| println!("tensors: {}", path.display()));
            }
            for (i, item) in loaded.items.iter().enumerate() {
                let mut stem = item.stem.clone();
                let mut k = 2;
                while !stems.insert(stem.clone()) {
                    stem = format!("{}_{k}", item.stem);
                    k += 1;
                }
                let entry = pics.image(&ex, i, item, &stem)?;
                if let Some(s) = summary.as_mut() {
                    s.push(&entry)?;
                }
            }
            explained += loaded.tensor.shape.dim(0);
        }
        bar.finish_and_clear();
        if let Some(s) = summary {
            s.finish(explained, &failed)?;
        }
        if explained == 0 {
            return Err(Error::Input(format!(
                "none of the {} inputs could be read",
                failed.len()
            )));
        }
        if let Some(dir) = &out {
            println!("pictures and summary.json: {}", dir.display());
        }
        Ok(Outcome { explained, failed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_group_by_batch_and_tensors_alone() {
        let i = |n: &str| Source::Image(n.into());
        let t = Source::Tensor("x.npy".into());
        let s = vec![i("a"), i("b"), i("c"), t.clone(), i("d")];
        let g: Vec<usize> = group(&s, 2).iter().map(|g| g.len()).collect();
        assert_eq!(g, vec![2, 1, 1, 1]);
    }
}
