//! Images into model inputs as torchvision's evaluation transform does: decode (any colour
//! type, converted to RGB), resize the shorter side, centre-crop, scale to `[0, 1]`, normalise
//! per channel.

use gradcam_core::{Error, Result};
use image::imageops::{self, FilterType};
use image::{ImageReader, RgbImage};
use std::path::Path;

/// ImageNet's channel means (torchvision's models; the CLI's default).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's channel standard deviations.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Resize, crop and normalisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// The shorter side is resized to this (bilinear, antialiased when shrinking).
    pub resize: u32,
    /// Side of the centre crop: the model's input size.
    pub crop: u32,
    /// Subtracted per channel after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Divided by per channel.
    pub std: [f32; 3],
}

impl Preprocess {
    /// torchvision's ImageNet evaluation transform for input side `size`: resize to
    /// `size·256/224` (256 for 224), crop `size`, ImageNet mean and std.
    pub fn imagenet(size: u32) -> Self {
        Preprocess {
            resize: ((size as f64) * 256.0 / 224.0).round() as u32,
            crop: size,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if self.crop == 0 || self.resize < self.crop {
            return Err(Error::InvalidArgument(format!(
                "resize {} and crop {}: the crop must be positive and no larger than the resize",
                self.resize, self.crop
            )));
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return Err(Error::InvalidArgument(
                "the mean must be finite and the std positive".into(),
            ));
        }
        Ok(())
    }

    /// The cropped picture (what the model sees, for display) and its normalised `3×crop×crop`
    /// tensor data.
    pub fn apply(&self, img: &RgbImage) -> Result<(RgbImage, Vec<f32>)> {
        self.validate()?;
        if img.width() == 0 || img.height() == 0 {
            return Err(Error::Input(
                "the image is empty (zero width or height)".into(),
            ));
        }
        let resized = resize_shorter(img, self.resize);
        let pic = center_crop(&resized, self.crop);
        let plane = (self.crop * self.crop) as usize;
        let mut data = vec![0.0f32; 3 * plane];
        for (i, px) in pic.pixels().enumerate() {
            for c in 0..3 {
                data[c * plane + i] = (px[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        Ok((pic, data))
    }
}

/// Decodes a PNG or JPEG file (the format is read from its bytes) into RGB; grayscale, alpha
/// and 16-bit images are converted (alpha dropped, as PIL's `convert("RGB")`).
pub fn decode(path: &Path) -> Result<RgbImage> {
    let reader = ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format().is_none() {
        return Err(Error::Input(format!(
            "{}: not a PNG or JPEG image",
            path.display()
        )));
    }
    let img = reader.decode().map_err(|e| {
        Error::Input(format!(
            "{}: corrupt or truncated image ({e})",
            path.display()
        ))
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::Input(format!(
            "{}: the image is empty (zero width or height)",
            path.display()
        )));
    }
    Ok(img.to_rgb8())
}

/// Resizes so the shorter side is `side`, the longer scaled in proportion and truncated
/// (torchvision's rule). An empty image is returned as it is.
pub fn resize_shorter(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return img.clone();
    }
    let (nw, nh) = if w <= h {
        (side, ((side as u64 * h as u64) / w as u64) as u32)
    } else {
        (((side as u64 * w as u64) / h as u64) as u32, side)
    };
    if (nw, nh) == (w, h) {
        return img.clone();
    }
    imageops::resize(img, nw.max(1), nh.max(1), FilterType::Triangle)
}

/// The centred `size×size` crop, offsets rounded half to even as Python's `round` (torchvision).
pub fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let off = |full: u32| {
        let twice = full.saturating_sub(size);
        // round(twice / 2) with ties to even.
        let half = twice / 2;
        if twice % 2 == 1 && half % 2 == 1 {
            half + 1
        } else {
            half
        }
    };
    imageops::crop_imm(img, off(w), off(h), size.min(w), size.min(h)).to_image()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn shorter_side_and_crop_follow_torchvision() {
        let img = RgbImage::new(6, 3);
        assert_eq!(resize_shorter(&img, 2).dimensions(), (4, 2));
        assert_eq!(resize_shorter(&RgbImage::new(3, 7), 2).dimensions(), (2, 4));
        // (5−2)/2 = 1.5 rounds to 2; (3−2)/2 = 0.5 rounds to 0; (7-2)/2 = 2.5 rounds to 2.
        let mut img = RgbImage::new(5, 3);
        img.put_pixel(2, 0, Rgb([9, 9, 9]));
        assert_eq!(center_crop(&img, 2).get_pixel(0, 0).0, [9, 9, 9]);
        let mut img = RgbImage::new(7, 7);
        img.put_pixel(2, 2, Rgb([5, 5, 5]));
        assert_eq!(center_crop(&img, 2).get_pixel(0, 0).0, [5, 5, 5]);
    }

    #[test]
    fn normalises_known_values() {
        let mut img = RgbImage::from_pixel(2, 2, Rgb([255, 0, 51]));
        img.put_pixel(1, 1, Rgb([0, 255, 255]));
        let pre = Preprocess {
            resize: 2,
            crop: 2,
            mean: [0.5, 0.5, 0.2],
            std: [0.25, 0.5, 0.1],
        };
        let (pic, x) = pre.apply(&img).unwrap();
        assert_eq!(pic, img);
        let want = [
            2.0, 2.0, 2.0, -2.0, -1.0, -1.0, -1.0, 1.0, 0.0, 0.0, 0.0, 8.0,
        ];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{x:?}");
        }
        assert_eq!(Preprocess::imagenet(224).resize, 256);
        assert!(Preprocess { crop: 3, ..pre }.apply(&img).is_err());
        assert!(Preprocess {
            std: [0.0; 3],
            ..pre
        }
        .apply(&img)
        .is_err());
        assert!(pre.apply(&RgbImage::new(0, 5)).is_err());
        assert_eq!(resize_shorter(&RgbImage::new(0, 5), 4).dimensions(), (0, 5));
    }
}
