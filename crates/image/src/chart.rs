//! Horizontal bar charts for measured figures (one bar per labelled value), drawn with the
//! bitmap font: enough for the evaluation's plots without a plotting library.

use crate::font;
use gradcam_core::{Error, Result};
use image::{Rgb, RgbImage};

const MARGIN: u32 = 12;
const ROW: u32 = 18;
const BAR_WIDTH: u32 = 360;
const INK: [u8; 3] = [20, 20, 20];
const BAR: [u8; 3] = [70, 110, 190];
const HIGHLIGHT: [u8; 3] = [200, 80, 50];
const GRID: [u8; 3] = [225, 225, 225];

/// A titled chart of labelled values on a `[0, max]` axis.
#[derive(Clone, Debug)]
pub struct BarChart {
    /// Drawn across the top.
    pub title: String,
    /// `(label, value)` from top to bottom.
    pub bars: Vec<(String, f32)>,
    /// The axis' end (values beyond it are drawn to it).
    pub max: f32,
    /// How each value is printed after its bar, e.g. `|v| format!("{:.1} %", 100.0 * v)`.
    pub format: fn(f32) -> String,
    /// Labels whose bars are drawn in the highlight colour.
    pub highlight: Vec<String>,
}

impl BarChart {
    /// Renders the chart.
    pub fn render(&self) -> Result<RgbImage> {
        if self.bars.is_empty() || !(self.max > 0.0 && self.max.is_finite()) {
            return Err(Error::InvalidArgument(
                "a chart needs bars and a positive axis".into(),
            ));
        }
        let label_w = self
            .bars
            .iter()
            .map(|(l, _)| font::width(l, 1))
            .max()
            .unwrap_or(0);
        let value_w = self
            .bars
            .iter()
            .map(|(_, v)| font::width(&(self.format)(*v), 1))
            .max()
            .unwrap_or(0);
        let title_h = font::GLYPH * 2 + 2 * MARGIN;
        let x0 = MARGIN + label_w + MARGIN;
        let width = (x0 + BAR_WIDTH + MARGIN + value_w + MARGIN)
            .max(font::width(&self.title, 2) + 2 * MARGIN);
        let height = title_h + ROW * self.bars.len() as u32 + MARGIN;
        let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
        font::draw(&mut img, &self.title, MARGIN, MARGIN, 2, INK);
        for tick in 0..=4 {
            let x = x0 + BAR_WIDTH * tick / 4;
            for y in title_h..height - MARGIN {
                img.put_pixel(x, y, Rgb(GRID));
            }
        }
        for (i, (label, v)) in self.bars.iter().enumerate() {
            let y = title_h + i as u32 * ROW;
            font::draw(&mut img, label, MARGIN, y + (ROW - font::GLYPH) / 2, 1, INK);
            let frac = if v.is_finite() {
                (v / self.max).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let len = (frac * BAR_WIDTH as f32).round() as u32;
            let colour = if self.highlight.contains(label) {
                HIGHLIGHT
            } else {
                BAR
            };
            for yy in y + 3..y + ROW - 3 {
                for xx in x0..x0 + len {
                    img.put_pixel(xx, yy, Rgb(colour));
                }
            }
            let text = (self.format)(*v);
            font::draw(
                &mut img,
                &text,
                x0 + len + 4,
                y + (ROW - font::GLYPH) / 2,
                1,
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
    fn bars_are_proportional() {
        let c = BarChart {
            title: "t".into(),
            bars: vec![("a".into(), 0.5), ("b".into(), 1.0)],
            max: 1.0,
            format: |v| format!("{v:.1}"),
            highlight: vec!["b".into()],
        };
        let img = c.render().unwrap();
        let title_h = 8 * 2 + 24;
        let x0 = 12 + 8 + 12;
        let mid = |i: u32| title_h + i * 18 + 9;
        // Bar a ends half way, bar b at the end, in the highlight colour.
        assert_eq!(img.get_pixel(x0 + 179, mid(0)).0, BAR);
        assert_ne!(img.get_pixel(x0 + 182, mid(0)).0, BAR);
        assert_eq!(img.get_pixel(x0 + 359, mid(1)).0, HIGHLIGHT);
        assert!(BarChart { bars: vec![], ..c }.render().is_err());
    }
}
