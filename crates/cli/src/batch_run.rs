//! `gradcam explain` over many inputs: batches, a progress bar, inputs that cannot be read or
//! explained reported and skipped, pictures and `summary.json` written batch by batch (memory
//! stays flat).

use crate::backends::WithBackend;
use crate::explain_cmd::Setup;
use crate::input::{self, Loaded};
use crate::labels;
use crate::pictures::Pictures;
use crate::sources::Source;
use crate::summary::Summary;
use gradcam_core::{Backend, Error, Result};
use gradcam_explain::{Classes, Explainer, Options};
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

/// Consecutive images up to `batch` per group (as index ranges); each tensor file alone.
fn group(sources: &[Source], batch: usize) -> Vec<std::ops::Range<usize>> {
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
        out.push(start..end);
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

/// `--class` with one class per image input: each source keeps its own class even when a
/// batch is short of a skipped file. `None` when the classes are not given per image.
fn classes_per_source(sources: &[Source], opts: &Options) -> Result<Option<Vec<usize>>> {
    let Classes::Given(v) = &opts.classes else {
        return Ok(None);
    };
    let images = sources.iter().all(|s| matches!(s, Source::Image(_)));
    if v.len() <= 1 || !images {
        return Ok(None);
    }
    if v.len() != sources.len() {
        return Err(Error::InvalidArgument(format!(
            "{} classes given for {} input images: give one per image or a single one for all",
            v.len(),
            sources.len()
        )));
    }
    Ok(Some(v.clone()))
}

/// The state a run accumulates.
struct Progress {
    summary: Option<Summary>,
    failed: Vec<(String, String)>,
    explained: usize,
    stems: HashSet<String>,
    labels: Option<Vec<String>>,
    labels_checked: bool,
}

impl WithBackend for BatchRun {
    type Output = Outcome;

    fn run<B: Backend + Clone + 'static>(self, backend: B) -> Result<Outcome> {
        let groups = group(&self.sources, self.batch as usize);
        if self.save_tensors.is_some() && groups.len() > 1 {
            return Err(Error::InvalidArgument(format!(
                "--save-tensors writes one batch: these {} inputs make {} (raise --batch, or give one tensor file)",
                self.sources.len(),
                groups.len()
            )));
        }
        let per_source = classes_per_source(&self.sources, &self.setup.opts)?;
        let explainer = Explainer::new(Model::new(backend, self.setup.graph.clone())?);
        let layer = explainer
            .target_for(&self.setup.methods, &self.setup.opts)?
            .map(|id| explainer.model().graph().display_name(id).to_string());
        let forward = explainer
            .forward_rounding(&self.setup.methods, &self.setup.opts)?
            .name();
        let summary = match &self.out {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                let pre = &self.setup.pre;
                Some(Summary::create(
                    &dir.join("summary.json"),
                    json!({
                        "model": self.model,
                        "backend": explainer.model().backend().name(),
                        "forward": forward,
                        "layer": layer,
                        "methods": self.setup.methods.iter().map(|m| m.name()).collect::<Vec<_>>(),
                        "preprocess": {"resize": pre.resize, "crop": pre.crop, "mean": pre.mean, "std": pre.std},
                        "localization_threshold": gradcam_explain::localize::LOCALIZATION_THRESHOLD,
                        "coordinates": "pixels of the model's input (the crop), x1 and y1 exclusive",
                    }),
                )?)
            }
            None => None,
        };
        let mut st = Progress {
            summary,
            failed: Vec::new(),
            explained: 0,
            stems: HashSet::new(),
            labels: self.labels.clone(),
            labels_checked: false,
        };
        let bar = ProgressBar::new(self.sources.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} inputs [{elapsed} < {eta}]")
                .expect("a valid template"),
        );
        if self.sources.len() == 1 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let mut result = Ok(());
        for g in groups {
            result = self.batch(&explainer, g, per_source.as_deref(), &bar, &mut st);
            if result.is_err() {
                break;
            }
        }
        bar.finish_and_clear();
        if let Some(s) = st.summary.take() {
            s.finish(st.explained, &st.failed)?;
        }
        result?;
        if st.explained == 0 {
            let first = st
                .failed
                .first()
                .map_or(String::new(), |(f, e)| format!(" (first, {f}: {e})"));
            return Err(Error::Input(format!(
                "none of the {} inputs could be read and explained{first}",
                st.failed.len()
            )));
        }
        if let Some(dir) = &self.out {
            println!("pictures and summary.json: {}", dir.display());
        }
        Ok(Outcome {
            explained: st.explained,
            failed: st.failed,
        })
    }
}

impl BatchRun {
    /// Loads, explains and writes the sources in `range`. Only a single-input run or a failed
    /// write ends the run with an error; otherwise what fails is recorded and skipped.
    fn batch<B: Backend>(
        &self,
        explainer: &Explainer<B>,
        range: std::ops::Range<usize>,
        per_source: Option<&[usize]>,
        bar: &ProgressBar,
        st: &mut Progress,
    ) -> Result<()> {
        let single = self.sources.len() == 1;
        let mut parts: Vec<Loaded> = Vec::new();
        let mut classes = Vec::new();
        for i in range {
            let src = &self.sources[i];
            match input::load(src, &self.setup.pre) {
                Ok(l) => {
                    if let Some(w) = &l.warning {
                        bar.suspend(|| eprintln!("warning: {w}"));
                    }
                    parts.push(l);
                    classes.extend(per_source.map(|v| v[i]));
                }
                Err(e) if single => return Err(e),
                Err(e) => {
                    bar.suspend(|| eprintln!("skipped: {e}"));
                    st.failed.push((describe(src), e.to_string()));
                }
            }
            bar.inc(1);
        }
        if parts.is_empty() {
            return Ok(());
        }
        let loaded = input::stack(parts)?;
        let mut opts = self.setup.opts.clone();
        if per_source.is_some() {
            opts.classes = Classes::Given(classes);
        }
        let ex = match explainer.explain(&loaded.tensor, &self.setup.methods, &opts) {
            Ok(ex) => ex,
            Err(e) if single => return Err(e),
            Err(e) => {
                for item in &loaded.items {
                    bar.suspend(|| eprintln!("skipped: {}: {e}", item.name));
                    st.failed.push((item.name.clone(), e.to_string()));
                }
                return Ok(());
            }
        };
        let logits = ex.get("logits").expect("logits are always produced");
        let classes_n = logits.shape.dim(1);
        if !st.labels_checked {
            st.labels_checked = true;
            let (l, warning) = labels::check(st.labels.take(), classes_n);
            st.labels = l;
            if let Some(w) = warning {
                bar.suspend(|| eprintln!("warning: {w}"));
            }
        }
        let pics = Pictures {
            dir: self.out.as_deref(),
            cmap: self.colormap,
            labels: st.labels.as_deref(),
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
                    logits.data[img * classes_n + class]
                );
            }
        });
        if let Some(path) = &self.save_tensors {
            ex.save(path)?;
            bar.suspend(|| println!("tensors: {}", path.display()));
        }
        for (i, item) in loaded.items.iter().enumerate() {
            let mut stem = item.stem.clone();
            let mut k = 2;
            while !st.stems.insert(stem.clone()) {
                stem = format!("{}_{k}", item.stem);
                k += 1;
            }
            match pics.image(&ex, i, item, &stem) {
                Ok(entry) => {
                    if let Some(s) = st.summary.as_mut() {
                        s.push(&entry)?;
                    }
                    st.explained += 1;
                }
                Err(e) if single => return Err(e),
                Err(e) => {
                    bar.suspend(|| eprintln!("skipped: {}: {e}", item.name));
                    st.failed.push((item.name.clone(), e.to_string()));
                }
            }
        }
        if loaded.items.is_empty() {
            st.explained += loaded.tensor.shape.dim(0);
        }
        Ok(())
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
        let g = group(&s, 2);
        assert_eq!(g, vec![0..2, 2..3, 3..4, 4..5]);
    }

    #[test]
    fn classes_follow_their_images() {
        let i = |n: &str| Source::Image(n.into());
        let opts = |v: Vec<usize>| Options {
            classes: Classes::Given(v),
            ..Options::default()
        };
        let s = vec![i("a"), i("b"), i("c")];
        assert_eq!(
            classes_per_source(&s, &opts(vec![1, 2, 3])).unwrap(),
            Some(vec![1, 2, 3])
        );
        assert_eq!(classes_per_source(&s, &opts(vec![1])).unwrap(), None);
        assert!(classes_per_source(&s, &opts(vec![1, 2])).is_err());
        let t = vec![Source::Tensor("x.npy".into())];
        assert_eq!(classes_per_source(&t, &opts(vec![1, 2])).unwrap(), None);
    }
}
