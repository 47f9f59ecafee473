//! The perturbation methods' forward passes: ScoreCAM's masked inputs and occlusion's blanked
//! windows. Each runs batches of perturbed copies of one image and returns every class's logit,
//! so that all explained classes share the same passes.

use gradcam_core::{Backend, Error, ResizeMode, Result, Tensor, SCORECAM_EPS};
use gradcam_runtime::{Model, Rounding};
use std::collections::BTreeSet;

/// Row `i` of a tensor, as a batch of one.
pub(crate) fn row<B: Backend>(b: &B, x: &Tensor<B>, i: usize) -> Result<Tensor<B>> {
    let d = x.dims().to_vec();
    let rest: usize = d[1..].iter().product();
    let r = b.slice_channels(&x.reshape([1, d[0], rest, 1])?, i, 1)?;
    let mut one = d;
    one[0] = 1;
    r.reshape(one)
}

/// The logits of a batch, rounded as the image's own forward was (`rounding`), so that a
/// perturbation that changes nothing changes no logit.
fn logits_of<B: Backend>(
    model: &Model<B>,
    batch: &Tensor<B>,
    rounding: Rounding,
) -> Result<Vec<f32>> {
    let acts = model.forward_with(batch, &BTreeSet::new(), rounding)?;
    model.backend().download(acts.get(model.graph().output())?)
}

/// ScoreCAM: for each image, the logits `[k, classes]` of the input masked by each channel of
/// the target activation `a`, upsampled with aligned corners and min-max normalised.
pub(crate) fn scorecam_logits<B: Backend>(
    model: &Model<B>,
    x: &Tensor<B>,
    a: &Tensor<B>,
    batch: usize,
    rounding: Rounding,
) -> Result<Vec<Vec<f32>>> {
    let b = model.backend();
    let [n, k, _, _] = a.shape().nchw("scorecam")?;
    let [_, _, h, w] = x.shape().nchw("scorecam")?;
    let mut all = Vec::with_capacity(n);
    for i in 0..n {
        let xi = row(b, x, i)?;
        let ai = row(b, a, i)?;
        let mut scores = Vec::new();
        for k0 in (0..k).step_by(batch.max(1)) {
            let kc = batch.max(1).min(k - k0);
            let chunk = b.slice_channels(&ai, k0, kc)?;
            let up = b.resize_bilinear(&chunk, [h, w], ResizeMode::AlignCorners)?;
            let masks = b.normalize_min_max(&up, h * w, SCORECAM_EPS)?;
            scores.extend(logits_of(model, &b.heatmap_fusion(&xi, &masks)?, rounding)?);
        }
        all.push(scores);
    }
    Ok(all)
}

/// Window origins of a sliding window over an `h×w` image.
pub(crate) fn origins(
    h: usize,
    w: usize,
    window: [usize; 2],
    stride: [usize; 2],
) -> Result<Vec<[usize; 2]>> {
    if window[0] == 0 || window[1] == 0 || window[0] > h || window[1] > w || stride.contains(&0) {
        return Err(Error::InvalidArgument(format!(
            "occlusion window {window:?} with stride {stride:?} does not fit a {h}×{w} input"
        )));
    }
    let mut v = Vec::new();
    for y in (0..=h - window[0]).step_by(stride[0]) {
        for x in (0..=w - window[1]).step_by(stride[1]) {
            v.push([y, x]);
        }
    }
    Ok(v)
}

/// Occlusion: for each image, the logits `[windows, classes]` with each window blanked.
pub(crate) fn occlusion_logits<B: Backend>(
    model: &Model<B>,
    x: &Tensor<B>,
    origins: &[[usize; 2]],
    window: [usize; 2],
    baseline: f32,
    batch: usize,
    rounding: Rounding,
) -> Result<Vec<Vec<f32>>> {
    let b = model.backend();
    let n = x.dims()[0];
    let mut all = Vec::with_capacity(n);
    for i in 0..n {
        let xi = row(b, x, i)?;
        let mut scores = Vec::new();
        for chunk in origins.chunks(batch.max(1)) {
            scores.extend(logits_of(
                model,
                &b.occlude(&xi, chunk, window, baseline)?,
                rounding,
            )?);
        }
        all.push(scores);
    }
    Ok(all)
}

/// Captum's attribution from the window scores of one image and class: each pixel gets the
/// mean drop `base − score` over the windows covering it.
pub(crate) fn occlusion_map(
    base: f32,
    scores: &[f32],
    origins: &[[usize; 2]],
    window: [usize; 2],
    h: usize,
    w: usize,
) -> Vec<f32> {
    let mut sum = vec![0.0f64; h * w];
    let mut count = vec![0u32; h * w];
    for (o, &s) in origins.iter().zip(scores) {
        let drop = (base - s) as f64;
        for y in o[0]..o[0] + window[0] {
            for x in o[1]..o[1] + window[1] {
                sum[y * w + x] += drop;
                count[y * w + x] += 1;
            }
        }
    }
    sum.iter()
        .zip(&count)
        .map(|(&s, &c)| if c == 0 { 0.0 } else { (s / c as f64) as f32 })
        .collect()
}

/// Softmax of one row.
pub(crate) fn softmax(v: &[f32]) -> Vec<f32> {
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = v.iter().map(|&x| ((x - m) as f64).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|&x| (x / s) as f32).collect()
}
