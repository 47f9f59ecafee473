//! Reading a map: its peak and the paper's weakly-supervised localization box (§4.1: threshold
//! at 15 % of the map's maximum, box around the largest connected segment).

use gradcam_core::{Error, Result};

/// The paper's threshold, as a fraction of the map's maximum.
pub const LOCALIZATION_THRESHOLD: f32 = 0.15;

/// A pixel box, `x1` and `y1` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundingBox {
    /// First column.
    pub x0: usize,
    /// First row.
    pub y0: usize,
    /// One past the last column.
    pub x1: usize,
    /// One past the last row.
    pub y1: usize,
}

impl BoundingBox {
    /// Pixels covered.
    pub fn area(&self) -> usize {
        self.x1.saturating_sub(self.x0) * self.y1.saturating_sub(self.y0)
    }

    /// Intersection over union with `other`.
    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let w = self.x1.min(other.x1).saturating_sub(self.x0.max(other.x0));
        let h = self.y1.min(other.y1).saturating_sub(self.y0.max(other.y0));
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union == 0 {
            0.0
        } else {
            inter as f32 / union as f32
        }
    }
}

fn check(map: &[f32], h: usize, w: usize) -> Result<()> {
    if h == 0 || w == 0 || map.len() != h * w {
        return Err(Error::shape(
            "map",
            format!("{} values for a {h}×{w} map", map.len()),
        ));
    }
    match map.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite {
            what: "the map".into(),
            value: map[index].to_string(),
            index,
        }),
        None => Ok(()),
    }
}

/// The `(row, column)` of the map's maximum (the first in raster order on ties; `(0, 0)` for
/// a constant map: callers that need a meaningful point check the maximum is positive).
pub fn peak(map: &[f32], h: usize, w: usize) -> Result<(usize, usize)> {
    check(map, h, w)?;
    let mut best = 0;
    for (i, &v) in map.iter().enumerate() {
        if v > map[best] {
            best = i;
        }
    }
    Ok((best / w, best % w))
}

/// Labels the 8-connected components of `mask` (`h×w`): 0 for background, 1.. in raster order
/// of their first pixel; returns the labels and each component's size (index `label − 1`).
pub fn components(mask: &[bool], h: usize, w: usize) -> Result<(Vec<u32>, Vec<usize>)> {
    if mask.len() != h * w {
        return Err(Error::shape(
            "components",
            format!("{} values for a {h}×{w} mask", mask.len()),
        ));
    }
    let mut labels = vec![0u32; h * w];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..h * w {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32 + 1;
        let mut size = 0;
        labels[start] = label;
        stack.push(start);
        while let Some(p) = stack.pop() {
            size += 1;
            let (y, x) = (p / w, p % w);
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let q = ny * w + nx;
                    if mask[q] && labels[q] == 0 {
                        labels[q] = label;
                        stack.push(q);
                    }
                }
            }
        }
        sizes.push(size);
    }
    Ok((labels, sizes))
}

/// The paper's box: pixels at or above `fraction` of the maximum, the largest 8-connected
/// segment among them (the first in raster order on ties), its tight box. `None` when the map
/// has no positive value (nothing to localize).
pub fn localization_box(
    map: &[f32],
    h: usize,
    w: usize,
    fraction: f32,
) -> Result<Option<BoundingBox>> {
    check(map, h, w)?;
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(Error::InvalidArgument(format!(
            "localization threshold {fraction}: it must be a fraction of the maximum in (0, 1]"
        )));
    }
    let max = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max <= 0.0 {
        return Ok(None);
    }
    let t = fraction * max;
    let mask: Vec<bool> = map.iter().map(|&v| v >= t && v > 0.0).collect();
    let (labels, sizes) = components(&mask, h, w)?;
    if sizes.is_empty() {
        return Ok(None);
    }
    let best = (0..sizes.len()).fold(0, |b, i| if sizes[i] > sizes[b] { i } else { b }) as u32 + 1;
    let mut bb = BoundingBox {
        x0: w,
        y0: h,
        x1: 0,
        y1: 0,
    };
    for (p, &l) in labels.iter().enumerate() {
        if l == best {
            let (y, x) = (p / w, p % w);
            bb = BoundingBox {
                x0: bb.x0.min(x),
                y0: bb.y0.min(y),
                x1: bb.x1.max(x + 1),
                y1: bb.y1.max(y + 1),
            };
        }
    }
    Ok(Some(bb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rows: &[&str]) -> (Vec<f32>, usize, usize) {
        let h = rows.len();
        let w = rows[0].len();
        let v = rows
            .iter()
            .flat_map(|r| {
                r.bytes()
                    .map(|b| if b == b'.' { 0.0 } else { (b - b'0') as f32 })
            })
            .collect();
        (v, h, w)
    }

    #[test]
    fn the_largest_segment_wins_and_diagonals_connect() {
        let (m, h, w) = map(&[
            "9.......", //
            ".......1", //
            "..11....", //
            "...11...", //
            "....1...", //
        ]);
        // Threshold 0.15·9 = 1.35 keeps only the 9: a one-pixel box.
        let b = localization_box(&m, h, w, 0.15).unwrap().unwrap();
        assert_eq!((b.x0, b.y0, b.x1, b.y1), (0, 0, 1, 1));
        // Threshold 0.1·9 = 0.9 keeps the 1s too; the diagonal chain (5 px) is largest.
        let b = localization_box(&m, h, w, 0.1).unwrap().unwrap();
        assert_eq!((b.x0, b.y0, b.x1, b.y1), (2, 2, 5, 5));
        let (labels, sizes) =
            components(&m.iter().map(|&v| v > 0.0).collect::<Vec<_>>(), h, w).unwrap();
        assert_eq!(sizes, vec![1, 1, 5]);
        assert_eq!(labels[15], 2);
    }

    #[test]
    fn ties_take_the_first_segment_and_empty_maps_have_no_box() {
        let (m, h, w) = map(&["22..22", "......"]);
        let b = localization_box(&m, h, w, 0.15).unwrap().unwrap();
        assert_eq!((b.x0, b.x1), (0, 2));
        assert_eq!(localization_box(&[0.0; 4], 2, 2, 0.15).unwrap(), None);
        assert_eq!(localization_box(&[-1.0; 4], 2, 2, 0.15).unwrap(), None);
        assert!(localization_box(&[f32::NAN; 4], 2, 2, 0.15).is_err());
        assert!(localization_box(&[0.0; 3], 2, 2, 0.15).is_err());
        assert!(localization_box(&[1.0; 4], 2, 2, 1.5).is_err());
        assert!(localization_box(&[1.0; 4], 2, 2, f32::NAN).is_err());
        assert!(components(&[true; 3], 2, 2).is_err());
        let empty = BoundingBox {
            x0: 3,
            y0: 3,
            x1: 0,
            y1: 0,
        };
        assert_eq!(empty.area(), 0);
    }

    #[test]
    fn peak_and_iou() {
        let (m, h, w) = map(&["1.3", "3.2"]);
        assert_eq!(peak(&m, h, w).unwrap(), (0, 2));
        let a = BoundingBox {
            x0: 0,
            y0: 0,
            x1: 4,
            y1: 4,
        };
        let b = BoundingBox {
            x0: 2,
            y0: 2,
            x1: 6,
            y1: 6,
        };
        assert!((a.iou(&b) - 4.0 / 28.0).abs() < 1e-7);
        assert_eq!(a.iou(&a), 1.0);
        let far = BoundingBox {
            x0: 10,
            y0: 10,
            x1: 11,
            y1: 11,
        };
        assert_eq!(a.iou(&far), 0.0);
    }
}
