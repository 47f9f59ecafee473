//! The paper's measurements on held-out procedural scenes, where the ground truth is known:
//! weakly-supervised localization (§4.1), the pointing game and its recall variant (§4.3),
//! faithfulness to occlusion (§5.3), class discrimination on two-object scenes, the Table A1
//! ablations of Grad-CAM and the layer sweep of Fig. A5. Deterministic: the same scenes and
//! model give the same bits.

use crate::model::input;
use crate::scene::{Scene, Split, CLASSES, SIZE};
use gradcam_core::{Backend, HostTensor, Result};
use gradcam_explain::localize::{localization_box, peak, BoundingBox, LOCALIZATION_THRESHOLD};
use gradcam_explain::metrics::{
    collapse_channels, mass_inside, pointing_hit, pointing_tolerance, spearman,
};
use gradcam_explain::{
    Classes, Explainer, Explanation, GradCamVariant, Method, OcclusionParams, Options,
};

/// How much to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeasureConfig {
    /// One-object test scenes: localization, pointing, faithfulness, ablations, layers.
    pub scenes: usize,
    /// Two-object test scenes: pointing, class discrimination, the recall variant.
    pub pairs: usize,
    /// Two-object validation scenes: the recall variant's rejection threshold.
    pub validation: usize,
    /// Scenes per explanation batch.
    pub batch: usize,
    /// Occlusion window and stride (faithfulness is measured against this map).
    pub occlusion: OcclusionParams,
}

impl MeasureConfig {
    /// The published evaluation: 1,000 one-object and 500 two-object test scenes, 200
    /// validation scenes; occlusion with an 8×8 window, stride 4.
    pub fn full() -> Self {
        MeasureConfig {
            scenes: 1000,
            pairs: 500,
            validation: 200,
            batch: 50,
            occlusion: OcclusionParams {
                window: Some([8, 8]),
                stride: Some([4, 4]),
                baseline: 0.0,
            },
        }
    }

    /// A small run for CI: 50 / 25 / 25 scenes.
    pub fn quick() -> Self {
        MeasureConfig {
            scenes: 50,
            pairs: 25,
            validation: 25,
            batch: 25,
            ..Self::full()
        }
    }

    /// Scenes in all, for progress reports.
    pub fn total(&self) -> usize {
        self.scenes + 2 * self.pairs + self.validation
    }
}

/// One row of a table: a method, an ablation or a layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// What the row measures.
    pub name: String,
    /// Top-1 localization error: wrong top-1 class, or IoU < 0.5 (one-object scenes).
    pub loc_error_top1: f32,
    /// Localization error with the true class explained: IoU < 0.5.
    pub loc_error_true: f32,
    /// Pointing game on one-object scenes (peak within the tolerance of the mask).
    pub pointing_one: f32,
    /// Pointing game on two-object scenes, each present class.
    pub pointing_two: Option<f32>,
    /// Mean Spearman correlation with the occlusion map (one-object scenes).
    pub faithfulness: Option<f32>,
    /// Mean share of the map's mass inside the class's own object (two-object scenes).
    pub own_mass: Option<f32>,
    /// Mean share inside the other object.
    pub other_mass: Option<f32>,
}

/// The pointing game's recall variant for one method.
#[derive(Clone, Debug, PartialEq)]
pub struct RecallRow {
    /// The method.
    pub name: String,
    /// Rejection threshold on the raw map's maximum, chosen on the validation scenes.
    pub threshold: f32,
    /// Accuracy on the validation scenes at that threshold.
    pub validation: f32,
    /// Accuracy on the test scenes.
    pub test: f32,
}

/// Everything measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// What was measured.
    pub config: MeasureConfig,
    /// Top-1 accuracy on the one-object scenes.
    pub accuracy: f32,
    /// The pointing tolerance in pixels (15 at 224, scaled).
    pub tolerance: f32,
    /// Every method at the default layer.
    pub methods: Vec<Row>,
    /// Grad-CAM and its Table A1 ablations at each of [`ABLATION_LAYERS`], named
    /// `variant @ layer`.
    pub ablations: Vec<Row>,
    /// Grad-CAM at each conv layer's output.
    pub layers: Vec<Row>,
    /// The recall variant of the pointing game.
    pub recall: Vec<RecallRow>,
}

/// The layers of the sweep: each convolution's rectified output, first to last.
pub const LAYERS: [&str; 4] = ["relu1", "relu2", "relu3", "relu4"];

/// The layers the ablations are measured at: the last (the paper's choice; here only global
/// average pooling and the linear layer lie above it, so no rectifier sees the backward pass
/// and the gradient is constant over each channel), and the one below it, whose backward
/// passes a convolution and a ReLU as VGG-16's last conv layer's passes its classifier.
pub const ABLATION_LAYERS: [&str; 2] = ["relu4", "relu3"];

#[derive(Clone, Default)]
struct Tally {
    n: usize,
    loc_top1: usize,
    loc_true: usize,
    point_one: usize,
    faith: f64,
    faith_n: usize,
    two_n: usize,
    point_two: usize,
    own: f64,
    other: f64,
}

impl Tally {
    fn row(&self, name: &str, two: bool) -> Row {
        let f = |a: usize, n: usize| a as f32 / n.max(1) as f32;
        Row {
            name: name.to_string(),
            loc_error_top1: f(self.loc_top1, self.n),
            loc_error_true: f(self.loc_true, self.n),
            pointing_one: f(self.point_one, self.n),
            pointing_two: two.then(|| f(self.point_two, self.two_n)),
            faithfulness: (self.faith_n > 0).then(|| (self.faith / self.faith_n as f64) as f32),
            own_mass: two.then(|| (self.own / self.two_n.max(1) as f64) as f32),
            other_mass: two.then(|| (self.other / self.two_n.max(1) as f64) as f32),
        }
    }
}

/// Row `r` of `tensor` in `ex` as one `SIZE×SIZE` map (gradients collapsed over channels).
fn map_of(ex: &Explanation, tensor: &str, r: usize) -> Option<Vec<f32>> {
    let t = ex.get(tensor)?;
    let plane = SIZE * SIZE;
    let per = t.data.len() / t.shape.dim(0);
    let v = &t.data[r * per..(r + 1) * per];
    Some(if per == plane {
        v.to_vec()
    } else {
        collapse_channels(v, per / plane, plane)
    })
}

fn gt_box(b: [usize; 4]) -> BoundingBox {
    BoundingBox {
        x0: b[0],
        y0: b[1],
        x1: b[2],
        y1: b[3],
    }
}

fn scenes(split: Split, from: usize, to: usize, objects: usize) -> Vec<Scene> {
    (from..to).map(|i| split.scene(i as u64, objects)).collect()
}

fn top1(logits: &HostTensor, r: usize) -> usize {
    let c = logits.shape.dim(1);
    let row = &logits.data[r * c..(r + 1) * c];
    (0..c).fold(0, |b, k| if row[k] > row[b] { k } else { b })
}

/// Adds one-object measurements of `tensor` to `t`; `occlusion` is the faithfulness reference.
fn one_object(
    t: &mut Tally,
    ex: &Explanation,
    tensor: &str,
    batch: &[Scene],
    occlusion: Option<&[Vec<f32>]>,
    tol: f32,
) -> Result<()> {
    let logits = ex.get("logits").expect("logits are always produced");
    for (r, scene) in batch.iter().enumerate() {
        let object = &scene.objects[0];
        let map = map_of(ex, tensor, r).expect("the method was run");
        let iou = localization_box(&map, SIZE, SIZE, LOCALIZATION_THRESHOLD)?
            .map_or(0.0, |b| b.iou(&gt_box(object.bbox)));
        t.n += 1;
        t.loc_true += usize::from(iou < 0.5);
        t.loc_top1 += usize::from(iou < 0.5 || top1(logits, r) != object.class);
        let has_peak = map.iter().any(|&v| v > 0.0);
        let p = peak(&map, SIZE, SIZE)?;
        t.point_one += usize::from(has_peak && pointing_hit(p, &object.mask, SIZE, SIZE, tol));
        if let Some(occ) = occlusion {
            t.faith += spearman(&map, &occ[r])? as f64;
            t.faith_n += 1;
        }
    }
    Ok(())
}

/// Measures the demo model behind `ex`; `progress(scenes done)` is called after each batch.
pub fn run<B: Backend>(
    ex: &Explainer<B>,
    cfg: &MeasureConfig,
    progress: &mut dyn FnMut(usize),
) -> Result<Report> {
    let tol = pointing_tolerance(SIZE);
    let methods = Method::ALL;
    let mut tallies: Vec<Tally> = vec![Tally::default(); methods.len()];
    let variants: Vec<(&str, GradCamVariant)> = GradCamVariant::NAMES
        .iter()
        .map(|n| GradCamVariant::parse(n).map(|v| (*n, v)))
        .collect::<Result<_>>()?;
    let mut ablations = vec![Tally::default(); variants.len() * ABLATION_LAYERS.len()];
    let mut layers = vec![Tally::default(); LAYERS.len()];
    let (mut correct, mut done) = (0, 0);
    let base = Options {
        occlusion: cfg.occlusion,
        ..Options::default()
    };
    // One-object scenes.
    for start in (0..cfg.scenes).step_by(cfg.batch) {
        let batch = scenes(Split::Test, start, (start + cfg.batch).min(cfg.scenes), 1);
        let x = input(&batch)?;
        let truth: Vec<usize> = batch.iter().map(|s| s.objects[0].class).collect();
        let opts = Options {
            classes: Classes::Given(truth.clone()),
            ..base.clone()
        };
        let e = ex.explain(&x, &methods, &opts)?;
        let logits = e.get("logits").expect("logits are always produced");
        correct += (0..batch.len())
            .filter(|&r| top1(logits, r) == truth[r])
            .count();
        let occ: Vec<Vec<f32>> = (0..batch.len())
            .map(|r| map_of(&e, "occlusion", r).expect("occlusion was run"))
            .collect();
        for (m, t) in methods.iter().zip(&mut tallies) {
            let reference = (*m != Method::Occlusion).then_some(&occ[..]);
            one_object(t, &e, m.tensor(), &batch, reference, tol)?;
        }
        let cases = ABLATION_LAYERS
            .iter()
            .flat_map(|l| variants.iter().map(move |v| (l, v)));
        for ((layer, (name, v)), t) in cases.zip(&mut ablations) {
            if *name == "paper" && *layer == ABLATION_LAYERS[0] {
                one_object(t, &e, "gradcam", &batch, Some(&occ), tol)?;
                continue;
            }
            let o = Options {
                gradcam: *v,
                layer: Some(layer.to_string()),
                ..opts.clone()
            };
            let ev = ex.explain(&x, &[Method::GradCam], &o)?;
            one_object(t, &ev, "gradcam", &batch, Some(&occ), tol)?;
        }
        for (layer, t) in LAYERS.iter().zip(&mut layers) {
            let o = Options {
                layer: Some(layer.to_string()),
                ..opts.clone()
            };
            let el = ex.explain(&x, &[Method::GradCam], &o)?;
            one_object(t, &el, "gradcam", &batch, Some(&occ), tol)?;
        }
        done += batch.len();
        progress(done);
    }
    // Two-object test scenes: pointing and class discrimination, every method.
    for start in (0..cfg.pairs).step_by(cfg.batch) {
        let batch = scenes(Split::Test, start, (start + cfg.batch).min(cfg.pairs), 2);
        let opts = Options {
            classes: Classes::PerImage(
                batch
                    .iter()
                    .map(|s| s.objects.iter().map(|o| o.class).collect())
                    .collect(),
            ),
            ..base.clone()
        };
        let e = ex.explain(&input(&batch)?, &methods, &opts)?;
        for (m, t) in methods.iter().zip(&mut tallies) {
            two_objects(t, &e, m.tensor(), &batch, tol)?;
        }
        done += batch.len();
        progress(done);
    }
    // The recall variant: every class of every two-object scene, rejected below a threshold.
    let validation = recall_cases(
        ex,
        Split::Validation,
        cfg.validation,
        cfg,
        tol,
        &mut done,
        progress,
    )?;
    let test = recall_cases(ex, Split::Test, cfg.pairs, cfg, tol, &mut done, progress)?;
    let recall = ["gradcam", "cam"]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let val: Vec<Case> = validation.iter().map(|c| c[k]).collect();
            let tst: Vec<Case> = test.iter().map(|c| c[k]).collect();
            let threshold = best_threshold(&val);
            RecallRow {
                name: name.to_string(),
                threshold,
                validation: recall_accuracy(&val, threshold),
                test: recall_accuracy(&tst, threshold),
            }
        })
        .collect();
    Ok(Report {
        config: *cfg,
        accuracy: correct as f32 / cfg.scenes.max(1) as f32,
        tolerance: tol,
        methods: methods
            .iter()
            .zip(&tallies)
            .map(|(m, t)| {
                let mut row = t.row(m.name(), cfg.pairs > 0);
                if *m == Method::Occlusion {
                    row.faithfulness = None;
                }
                row
            })
            .collect(),
        ablations: ABLATION_LAYERS
            .iter()
            .flat_map(|l| variants.iter().map(move |(n, _)| format!("{n} @ {l}")))
            .zip(&ablations)
            .map(|(n, t)| t.row(&n, false))
            .collect(),
        layers: LAYERS
            .iter()
            .zip(&layers)
            .map(|(n, t)| t.row(n, false))
            .collect(),
        recall,
    })
}

/// The figures that show how much a demo model's seed matters, for one model.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedRow {
    /// The model's training seed.
    pub seed: u64,
    /// One-object scenes measured.
    pub scenes: usize,
    /// Two-object scenes measured.
    pub pairs: usize,
    /// Top-1 accuracy on the one-object scenes.
    pub accuracy: f32,
    /// Top-1 localization error of Grad-CAM, Guided Backprop, Guided Grad-CAM and saliency
    /// ([`SPREAD_METHODS`] order).
    pub loc_error: [f32; 4],
    /// Grad-CAM's pointing game on two-object scenes.
    pub pointing_two: f32,
    /// Share of Grad-CAM's mass on its own object and on the other, two-object scenes.
    pub mass: [f32; 2],
    /// The same for Guided Grad-CAM.
    pub mass_guided_gradcam: [f32; 2],
    /// The same for Guided Backprop.
    pub mass_guided_backprop: [f32; 2],
}

/// The methods of the seed spread, by output tensor.
pub const SPREAD_METHODS: [&str; 4] = ["gradcam", "guided_backprop", "guided_gradcam", "saliency"];

/// The seed spread: for each `(seed, model)`, the cheap methods' figures on the first `scenes`
/// one-object and `pairs` two-object test scenes.
pub fn seed_spread<B: Backend>(
    models: &[(u64, Explainer<B>)],
    scenes: usize,
    pairs: usize,
    batch: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<SeedRow>> {
    let tol = pointing_tolerance(SIZE);
    let methods = [Method::GradCam, Method::GuidedGradCam, Method::Saliency];
    let mut rows = Vec::new();
    let mut done = 0;
    for (seed, ex) in models {
        let mut t: Vec<Tally> = vec![Tally::default(); SPREAD_METHODS.len()];
        let mut correct = 0;
        for start in (0..scenes).step_by(batch) {
            let b = self::scenes(Split::Test, start, (start + batch).min(scenes), 1);
            let truth: Vec<usize> = b.iter().map(|s| s.objects[0].class).collect();
            let opts = Options {
                classes: Classes::Given(truth.clone()),
                ..Options::default()
            };
            let e = ex.explain(&input(&b)?, &methods, &opts)?;
            let logits = e.get("logits").expect("logits are always produced");
            correct += (0..b.len())
                .filter(|&r| top1(logits, r) == truth[r])
                .count();
            for (name, tally) in SPREAD_METHODS.iter().zip(&mut t) {
                one_object(tally, &e, name, &b, None, tol)?;
            }
            done += b.len();
            progress(done);
        }
        for start in (0..pairs).step_by(batch) {
            let b = self::scenes(Split::Test, start, (start + batch).min(pairs), 2);
            let opts = Options {
                classes: Classes::PerImage(
                    b.iter()
                        .map(|s| s.objects.iter().map(|o| o.class).collect())
                        .collect(),
                ),
                ..Options::default()
            };
            let e = ex.explain(&input(&b)?, &methods, &opts)?;
            for (name, tally) in SPREAD_METHODS.iter().zip(&mut t) {
                two_objects(tally, &e, name, &b, tol)?;
            }
            done += b.len();
            progress(done);
        }
        let r: Vec<Row> = SPREAD_METHODS
            .iter()
            .zip(&t)
            .map(|(n, x)| x.row(n, true))
            .collect();
        let mass = |row: &Row| [row.own_mass.unwrap_or(0.0), row.other_mass.unwrap_or(0.0)];
        rows.push(SeedRow {
            seed: *seed,
            scenes,
            pairs,
            accuracy: correct as f32 / scenes.max(1) as f32,
            loc_error: [0, 1, 2, 3].map(|i| r[i].loc_error_top1),
            pointing_two: r[0].pointing_two.unwrap_or(0.0),
            mass: mass(&r[0]),
            mass_guided_gradcam: mass(&r[2]),
            mass_guided_backprop: mass(&r[1]),
        });
    }
    Ok(rows)
}

/// Adds two-object measurements of `tensor` (each explained class) to `t`.
fn two_objects(
    t: &mut Tally,
    e: &Explanation,
    tensor: &str,
    batch: &[Scene],
    tol: f32,
) -> Result<()> {
    for r in 0..e.targets.len() {
        let scene = &batch[e.images[r]];
        let own = scene.objects.iter().find(|o| o.class == e.targets[r]);
        let other = scene.objects.iter().find(|o| o.class != e.targets[r]);
        let (Some(own), Some(other)) = (own, other) else {
            continue;
        };
        let map = map_of(e, tensor, r).expect("the method was run");
        let has_peak = map.iter().any(|&v| v > 0.0);
        let p = peak(&map, SIZE, SIZE)?;
        t.two_n += 1;
        t.point_two += usize::from(has_peak && pointing_hit(p, &own.mask, SIZE, SIZE, tol));
        t.own += mass_inside(&map, &own.mask) as f64;
        t.other += mass_inside(&map, &other.mask) as f64;
    }
    Ok(())
}

/// One (scene, class) of the recall variant: the raw map's maximum, whether the class is in
/// the scene, and whether the map's peak points at it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Case {
    /// Largest value of the raw (unnormalised) map.
    pub max: f32,
    /// The class is in the scene.
    pub present: bool,
    /// The peak lies within the tolerance of the class's object.
    pub hit: bool,
}

/// Correct when a present class is kept and pointed at, or an absent class is rejected
/// (maximum below `threshold`).
pub fn recall_accuracy(cases: &[Case], threshold: f32) -> f32 {
    let ok = cases
        .iter()
        .filter(|c| {
            let kept = c.max >= threshold;
            if c.present {
                kept && c.hit
            } else {
                !kept
            }
        })
        .count();
    ok as f32 / cases.len().max(1) as f32
}

/// The threshold with the best [`recall_accuracy`] among the cases' maxima (and +∞, rejecting
/// all); the smallest on ties.
pub fn best_threshold(cases: &[Case]) -> f32 {
    let mut candidates: Vec<f32> = cases.iter().map(|c| c.max).collect();
    candidates.push(f32::INFINITY);
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    let mut best = (f32::NEG_INFINITY, f32::INFINITY);
    for t in candidates {
        let a = recall_accuracy(cases, t);
        if a > best.0 {
            best = (a, t);
        }
    }
    best.1
}

/// Grad-CAM's and CAM's cases on `n` two-object scenes of `split`, every class explained.
fn recall_cases<B: Backend>(
    ex: &Explainer<B>,
    split: Split,
    n: usize,
    cfg: &MeasureConfig,
    tol: f32,
    done: &mut usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<[Case; 2]>> {
    let mut out = Vec::new();
    for start in (0..n).step_by(cfg.batch) {
        let batch = scenes(split, start, (start + cfg.batch).min(n), 2);
        let opts = Options {
            classes: Classes::TopK(CLASSES.len()),
            ..Options::default()
        };
        let e = ex.explain(&input(&batch)?, &[Method::GradCam, Method::Cam], &opts)?;
        for r in 0..e.targets.len() {
            let scene = &batch[e.images[r]];
            let object = scene.objects.iter().find(|o| o.class == e.targets[r]);
            let case = |raw: &str, map: &str| -> Result<Case> {
                let t = e.get(raw).expect("the method was run");
                let per = t.data.len() / t.shape.dim(0);
                let max = t.data[r * per..(r + 1) * per]
                    .iter()
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max);
                let m = map_of(&e, map, r).expect("the method was run");
                let p = peak(&m, SIZE, SIZE)?;
                Ok(Case {
                    max,
                    present: object.is_some(),
                    hit: m.iter().any(|&v| v > 0.0)
                        && object.is_some_and(|o| pointing_hit(p, &o.mask, SIZE, SIZE, tol)),
                })
            };
            out.push([case("gradcam_raw", "gradcam")?, case("cam_raw", "cam")?]);
        }
        *done += batch.len();
        progress(*done);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_threshold_and_accuracy() {
        let c = |max, present, hit| Case { max, present, hit };
        let cases = [
            c(5.0, true, true),
            c(4.0, true, false),
            c(1.0, false, false),
            c(2.0, false, false),
        ];
        // Threshold 2.5 keeps 5 and 4 (one pointed), rejects 1 and 2: 3 of 4.
        assert_eq!(recall_accuracy(&cases, 2.5), 0.75);
        assert_eq!(recall_accuracy(&cases, f32::INFINITY), 0.5);
        // The best candidate is the smallest maximum reaching 3 of 4: 4.0.
        assert_eq!(best_threshold(&cases), 4.0);
        assert_eq!(recall_accuracy(&cases, 4.0), 0.75);
    }
}
