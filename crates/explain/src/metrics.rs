//! Measures of maps against ground truth and against each other, as the paper's evaluations
//! use them: the pointing game's hit with a tolerance, rank correlation (faithfulness to
//! occlusion), the share of a map's mass inside a mask (class discrimination), and gradient
//! pictures collapsed to one map.

use gradcam_core::{Error, Result};

/// Average ranks (1-based) of `v`: tied values share the mean of the ranks they span.
pub fn ranks(v: &[f32]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && v[idx[j]] == v[idx[i]] {
            j += 1;
        }
        let mean = (i + 1 + j) as f64 / 2.0;
        for &k in &idx[i..j] {
            r[k] = mean;
        }
        i = j;
    }
    r
}

/// Spearman's rank correlation (Pearson's over average ranks, so ties are handled); 0 when
/// either side is constant, where it is undefined.
pub fn spearman(a: &[f32], b: &[f32]) -> Result<f32> {
    if a.len() != b.len() || a.is_empty() {
        return Err(Error::shape(
            "spearman",
            format!("{} and {} values", a.len(), b.len()),
        ));
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let mean = (a.len() as f64 + 1.0) / 2.0;
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - mean) * (y - mean);
        va += (x - mean) * (x - mean);
        vb += (y - mean) * (y - mean);
    }
    if va == 0.0 || vb == 0.0 {
        return Ok(0.0);
    }
    Ok((cov / (va * vb).sqrt()) as f32)
}

/// The pointing game's hit: whether some pixel of `mask` (`h×w`) lies within `tolerance`
/// pixels (Euclidean) of `point = (row, column)`.
pub fn pointing_hit(
    point: (usize, usize),
    mask: &[bool],
    h: usize,
    w: usize,
    tolerance: f32,
) -> bool {
    let t = tolerance.max(0.0);
    let r = t.floor() as usize;
    let (py, px) = point;
    for y in py.saturating_sub(r)..(py + r + 1).min(h) {
        for x in px.saturating_sub(r)..(px + r + 1).min(w) {
            let (dy, dx) = (y as f32 - py as f32, x as f32 - px as f32);
            if mask[y * w + x] && dy * dy + dx * dx <= t * t {
                return true;
            }
        }
    }
    false
}

/// The pointing game's 15-pixel tolerance at 224 pixels, scaled to an image side.
pub fn pointing_tolerance(side: usize) -> f32 {
    15.0 * side as f32 / 224.0
}

/// The share of the map's positive mass inside `mask` (0 when the map has none).
pub fn mass_inside(map: &[f32], mask: &[bool]) -> f32 {
    let (mut inside, mut total) = (0.0f64, 0.0f64);
    for (&v, &m) in map.iter().zip(mask) {
        let v = v.max(0.0) as f64;
        total += v;
        if m {
            inside += v;
        }
    }
    if total > 0.0 {
        (inside / total) as f32
    } else {
        0.0
    }
}

/// A `c×plane` gradient picture as one map: the largest magnitude over channels per pixel
/// (Simonyan et al.'s saliency convention).
pub fn collapse_channels(g: &[f32], c: usize, plane: usize) -> Vec<f32> {
    (0..plane)
        .map(|p| (0..c).map(|k| g[k * plane + p].abs()).fold(0.0, f32::max))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_correlation_with_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 2.0, 2.0]), vec![4.0, 1.0, 2.5, 2.5]);
        // ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): 4.5 / √(4.5·5).
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((r - (4.5 / (4.5f32 * 5.0).sqrt())).abs() < 1e-6, "{r}");
        assert_eq!(spearman(&[1.0, 5.0, 9.0], &[0.1, 0.2, 7.0]).unwrap(), 1.0);
        assert_eq!(spearman(&[1.0, 5.0, 9.0], &[3.0, 2.0, 1.0]).unwrap(), -1.0);
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]).unwrap(), 0.0);
        assert!(spearman(&[1.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn pointing_tolerance_is_euclidean() {
        let (h, w) = (12, 12);
        let mut mask = vec![false; h * w];
        mask[5 * w + 5] = true;
        assert!(pointing_hit((5, 5), &mask, h, w, 0.0));
        assert!(pointing_hit((5, 9), &mask, h, w, 4.0));
        assert!(!pointing_hit((5, 10), &mask, h, w, 4.0));
        // (3, 3) away diagonally is 4.24 pixels: outside 4, inside 4.3.
        assert!(!pointing_hit((8, 8), &mask, h, w, 4.0));
        assert!(pointing_hit((8, 8), &mask, h, w, 4.3));
        assert!((pointing_tolerance(224) - 15.0).abs() < 1e-6);
    }

    #[test]
    fn mass_and_collapse() {
        assert_eq!(mass_inside(&[1.0, 3.0, -5.0], &[true, false, true]), 0.25);
        assert_eq!(mass_inside(&[0.0, -1.0], &[true, false]), 0.0);
        assert_eq!(
            collapse_channels(&[1.0, -2.0, -3.0, 0.5], 2, 2),
            vec![3.0, 2.0]
        );
    }
}
