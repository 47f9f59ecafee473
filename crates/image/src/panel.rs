//! The paper's Figure 1 as one picture: a title (class and score) over a row of tiles
//! (original | guided backprop | Grad-CAM | Guided Grad-CAM | occlusion), each captioned.

use crate::font;
use gradcam_core::{Error, Result};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

const MARGIN: u32 = 8;
const TITLE_SCALE: u32 = 2;
const CAPTION_SCALE: u32 = 1;
const INK: [u8; 3] = [20, 20, 20];
const PAPER: [u8; 3] = [255, 255, 255];

/// A titled row of captioned tiles.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Drawn across the top (cut with `..` when too long).
    pub title: String,
    /// `(caption, picture)` from left to right.
    pub tiles: Vec<(String, RgbImage)>,
    /// Side every tile is scaled to (nearest neighbour, so small inputs stay crisp).
    pub tile_size: u32,
}

impl Panel {
    /// Renders the panel.
    pub fn render(&self) -> Result<RgbImage> {
        if self.tiles.is_empty() || self.tile_size == 0 {
            return Err(Error::InvalidArgument(
                "a panel needs tiles of a positive size".into(),
            ));
        }
        let n = self.tiles.len() as u32;
        let t = self.tile_size;
        let title_h = font::GLYPH * TITLE_SCALE + 2 * MARGIN;
        let caption_h = font::GLYPH * CAPTION_SCALE + MARGIN;
        let width = MARGIN + n * (t + MARGIN);
        let height = title_h + t + caption_h + MARGIN;
        let mut img = RgbImage::from_pixel(width, height, Rgb(PAPER));
        let title = font::fit(&self.title, width - 2 * MARGIN, TITLE_SCALE);
        font::draw(&mut img, &title, MARGIN, MARGIN, TITLE_SCALE, INK);
        for (i, (caption, tile)) in self.tiles.iter().enumerate() {
            if tile.width() == 0 || tile.height() == 0 {
                return Err(Error::InvalidArgument(format!(
                    "panel tile `{caption}` is empty"
                )));
            }
            let x = MARGIN + i as u32 * (t + MARGIN);
            let scaled = if tile.dimensions() == (t, t) {
                tile.clone()
            } else {
                let filter = if tile.width() < t {
                    FilterType::Nearest
                } else {
                    FilterType::Triangle
                };
                imageops::resize(tile, t, t, filter)
            };
            imageops::replace(&mut img, &scaled, x as i64, title_h as i64);
            let cap = font::fit(caption, t, CAPTION_SCALE);
            let cx = x + (t - font::width(&cap, CAPTION_SCALE)) / 2;
            font::draw(
                &mut img,
                &cap,
                cx,
                title_h + t + MARGIN / 2,
                CAPTION_SCALE,
                INK,
            );
        }
        Ok(img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let red = RgbImage::from_pixel(4, 4, Rgb([255, 0, 0]));
        let p = Panel {
            title: "disc 0.97".into(),
            tiles: vec![("a".into(), red.clone()), ("b".into(), red)],
            tile_size: 32,
        };
        let img = p.render().unwrap();
        assert_eq!(img.dimensions(), (8 + 2 * 40, 32 + 32 + 16 + 8));
        // Tiles scaled by nearest neighbour into place.
        assert_eq!(img.get_pixel(8, 32).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(8 + 40 + 31, 32 + 31).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(8 + 32 + 1, 40).0, PAPER);
        assert!(Panel { tiles: vec![], ..p }.render().is_err());
    }
}
