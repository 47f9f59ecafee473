//! Pictures of explanations, as pytorch-grad-cam draws them: a map blended over the image
//! (`show_cam_on_image`), a map alone, a gradient standardised for display
//! (`deprocess_image`), and the input shown back from its normalised tensor.

use crate::Colormap;
use gradcam_core::{Error, Result};
use image::{Rgb, RgbImage};

fn check(what: &str, len: usize, want: usize) -> Result<()> {
    if len != want {
        return Err(Error::shape(
            what,
            format!("{len} values for {want} pixels"),
        ));
    }
    Ok(())
}

/// `map` (`h×w`, values in `[0, 1]` as the methods produce them) in `cmap`.
pub fn heatmap(map: &[f32], h: usize, w: usize, cmap: Colormap) -> Result<RgbImage> {
    check("heatmap", map.len(), h * w)?;
    let mut img = RgbImage::new(w as u32, h as u32);
    for (p, &v) in img.pixels_mut().zip(map) {
        *p = Rgb(cmap.rgb(v));
    }
    Ok(img)
}

/// pytorch-grad-cam's `show_cam_on_image` (image weight 0.5): `c = ½·colour(map) + ½·image`,
/// then `c / max(c)` over the whole picture. `map` must match the image's size.
pub fn overlay(image: &RgbImage, map: &[f32], cmap: Colormap) -> Result<RgbImage> {
    let (w, h) = image.dimensions();
    check("overlay", map.len(), (w * h) as usize)?;
    let blended: Vec<[f32; 3]> = image
        .pixels()
        .zip(map)
        .map(|(p, &v)| {
            let c = cmap.rgb(v);
            [0, 1, 2].map(|k| 0.5 * c[k] as f32 / 255.0 + 0.5 * p[k] as f32 / 255.0)
        })
        .collect();
    let max = blended.iter().flatten().copied().fold(0.0f32, f32::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let mut out = RgbImage::new(w, h);
    for (p, c) in out.pixels_mut().zip(&blended) {
        *p = Rgb(c.map(|v| (255.0 * (v / max)).clamp(0.0, 255.0) as u8));
    }
    Ok(out)
}

/// pytorch-grad-cam's `deprocess_image` of a `3×h×w` gradient: standardised over all values,
/// ×0.1, +0.5, clipped to `[0, 1]`.
pub fn gradient(g: &[f32], h: usize, w: usize) -> Result<RgbImage> {
    check("gradient", g.len(), 3 * h * w)?;
    let n = g.len() as f32;
    let mean = g.iter().sum::<f32>() / n;
    let std = (g.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
    let plane = h * w;
    let mut img = RgbImage::new(w as u32, h as u32);
    for (i, p) in img.pixels_mut().enumerate() {
        *p = Rgb([0, 1, 2].map(|c| {
            let v = ((g[c * plane + i] - mean) / (std + 1e-5)) * 0.1 + 0.5;
            (v.clamp(0.0, 1.0) * 255.0).round() as u8
        }));
    }
    Ok(img)
}

/// The picture a normalised `3×h×w` input shows: `x·std + mean`, clipped to `[0, 1]`.
pub fn denormalize(
    x: &[f32],
    h: usize,
    w: usize,
    mean: [f32; 3],
    std: [f32; 3],
) -> Result<RgbImage> {
    check("input picture", x.len(), 3 * h * w)?;
    let plane = h * w;
    let mut img = RgbImage::new(w as u32, h as u32);
    for (i, p) in img.pixels_mut().enumerate() {
        *p = Rgb([0, 1, 2].map(|c| {
            ((x[c * plane + i] * std[c] + mean[c]).clamp(0.0, 1.0) * 255.0).round() as u8
        }));
    }
    Ok(img)
}

/// Writes a PNG, creating nothing but the file.
pub fn save(img: &RgbImage, path: &std::path::Path) -> Result<()> {
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| Error::InvalidArgument(format!("{}: cannot write PNG ({e})", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_is_normalised_by_its_maximum() {
        let img = RgbImage::from_pixel(2, 1, Rgb([0, 0, 0]));
        // Jet at 1.0 is (128, 0, 0): blended ½·128/255, then scaled to 255.
        let o = overlay(&img, &[1.0, 0.0], Colormap::Jet).unwrap();
        assert_eq!(o.get_pixel(0, 0).0, [255, 0, 0]);
        // Jet at 0.0 is (0, 0, 128): the same maximum, so also 255 in blue.
        assert_eq!(o.get_pixel(1, 0).0, [0, 0, 255]);
        assert!(overlay(&img, &[1.0], Colormap::Jet).is_err());
    }

    #[test]
    fn gradient_and_denormalize_at_known_values() {
        // Mean 0, std 1: ±1 map to 0.5 ± 0.1.
        let g = gradient(&[1.0, -1.0, 1.0, -1.0, 1.0, -1.0], 1, 2).unwrap();
        assert_eq!(g.get_pixel(0, 0).0, [153; 3]);
        assert_eq!(g.get_pixel(1, 0).0, [102; 3]);
        let d = denormalize(&[0.0, 1.0, -10.0], 1, 1, [0.5; 3], [0.25; 3]).unwrap();
        assert_eq!(d.get_pixel(0, 0).0, [128, 191, 0]);
    }
}
