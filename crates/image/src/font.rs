//! Text in pictures: the public-domain 8×8 bitmap font of the `font8x8` crate (ASCII; other
//! characters are drawn as `?`), scaled by an integer factor.

use font8x8::legacy::BASIC_LEGACY;
use image::{Rgb, RgbImage};

/// Glyph side in font pixels.
pub const GLYPH: u32 = 8;

/// Width of `text` at `scale`.
pub fn width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * GLYPH * scale
}

/// Draws `text` with its top-left corner at `(x, y)`, clipped to the image.
pub fn draw(img: &mut RgbImage, text: &str, x: u32, y: u32, scale: u32, colour: [u8; 3]) {
    for (i, ch) in text.chars().enumerate() {
        let code = if ch.is_ascii() && !ch.is_ascii_control() {
            ch as usize
        } else {
            b'?' as usize
        };
        let glyph = BASIC_LEGACY[code];
        let gx = x + i as u32 * GLYPH * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..GLYPH {
                if bits >> col & 1 == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (gx + col * scale + dx, y + row as u32 * scale + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, Rgb(colour));
                        }
                    }
                }
            }
        }
    }
}

/// Shortens `text` to at most `max` pixels wide at `scale`, ending it with `..` when cut.
pub fn fit(text: &str, max: u32, scale: u32) -> String {
    let cap = (max / (GLYPH * scale)) as usize;
    let n = text.chars().count();
    if n <= cap {
        return text.to_string();
    }
    let keep = cap.saturating_sub(2);
    text.chars()
        .take(keep)
        .chain("..".chars())
        .take(cap)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_land_where_expected() {
        let mut img = RgbImage::new(20, 10);
        draw(&mut img, "|", 0, 0, 1, [255, 255, 255]);
        // font8x8's `|` is a broken bar in columns 3-4 (bit 0 is the leftmost pixel).
        let lit: Vec<u32> = (0..8).filter(|&x| img.get_pixel(x, 1)[0] == 255).collect();
        assert_eq!(lit, vec![3, 4]);
        assert_eq!(width("ab", 2), 32);
        assert_eq!(fit("abcdefgh", 48, 1), "abcd..");
        assert_eq!(fit("abc", 48, 1), "abc");
    }
}
