//! PNG pictures of the outputs: maps in the jet colormap, gradients as pytorch-grad-cam's
//! `deprocess_image` shows them.

use gradcam_core::{Error, Result};
use std::path::Path;

/// OpenCV's jet colormap at `v` in [0, 1].
pub fn jet(v: f32) -> [u8; 3] {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let ch = |c: f32| ((1.5 - (4.0 * v - c).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    [ch(3.0), ch(2.0), ch(1.0)]
}

/// Writes an `h×w` map, min-max scaled, in the jet colormap.
pub fn save_map(map: &[f32], h: usize, w: usize, path: &Path) -> Result<()> {
    let (lo, hi) = map
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &v| {
            (l.min(v), u.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut buf = Vec::with_capacity(h * w * 3);
    for &v in map {
        buf.extend(jet((v - lo) / span));
    }
    write(path, w, h, buf)
}

/// Writes a `3×h×w` gradient as pytorch-grad-cam's `deprocess_image`: standardised, ×0.1,
/// +0.5, clipped.
pub fn save_gradient(g: &[f32], h: usize, w: usize, path: &Path) -> Result<()> {
    let n = g.len() as f32;
    let mean = g.iter().sum::<f32>() / n;
    let std = (g.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
    let plane = h * w;
    let mut buf = Vec::with_capacity(plane * 3);
    for i in 0..plane {
        for c in 0..3 {
            let v = ((g[c * plane + i] - mean) / (std + 1e-5)) * 0.1 + 0.5;
            buf.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    write(path, w, h, buf)
}

fn write(path: &Path, w: usize, h: usize, buf: Vec<u8>) -> Result<()> {
    let img = image::RgbImage::from_raw(w as u32, h as u32, buf)
        .ok_or_else(|| Error::InvalidArgument(format!("{}: bad image size", path.display())))?;
    img.save(path)
        .map_err(|e| Error::InvalidArgument(format!("{}: cannot write PNG ({e})", path.display())))
}

#[cfg(test)]
mod tests {
    use super::jet;

    #[test]
    fn jet_matches_opencv_at_fixed_points() {
        assert_eq!(jet(0.0), [0, 0, 128]);
        assert_eq!(jet(0.5), [128, 255, 128]);
        assert_eq!(jet(1.0), [128, 0, 0]);
        assert_eq!(jet(f32::NAN), [0, 0, 128]);
    }
}
