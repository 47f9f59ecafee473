//! Colormaps for heatmaps: OpenCV's jet (what pytorch-grad-cam draws), and two perceptually
//! ordered maps, turbo and viridis.

use gradcam_core::{Error, Result};

/// A colormap from `[0, 1]` to RGB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Colormap {
    /// OpenCV's `COLORMAP_JET` (pytorch-grad-cam's default).
    #[default]
    Jet,
    /// Google's Turbo (Mikhailov 2019): 33 entries of its table, interpolated linearly
    /// (within 3/255 of the full table at every entry).
    Turbo,
    /// matplotlib's viridis: 33 entries of its table, interpolated linearly (within 2/255).
    Viridis,
}

impl Colormap {
    /// Every colormap's name.
    pub const NAMES: [&'static str; 3] = ["jet", "turbo", "viridis"];

    /// Parses a name of [`Colormap::NAMES`].
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jet" => Ok(Colormap::Jet),
            "turbo" => Ok(Colormap::Turbo),
            "viridis" => Ok(Colormap::Viridis),
            other => Err(Error::InvalidArgument(format!(
                "unknown colormap `{other}`; known: {}",
                Self::NAMES.join(", ")
            ))),
        }
    }

    /// The colour at `v` (clamped to `[0, 1]`; non-finite values map to 0).
    pub fn rgb(self, v: f32) -> [u8; 3] {
        let v = if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let f = match self {
            Colormap::Jet => {
                let ch = |c: f32| (1.5 - (4.0 * v - c).abs()).clamp(0.0, 1.0);
                [ch(3.0), ch(2.0), ch(1.0)]
            }
            Colormap::Turbo => table(&TURBO, v),
            Colormap::Viridis => table(&VIRIDIS, v),
        };
        f.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8)
    }
}

/// Entries 0, 8, 16, …, 248 and 255 of a 256-entry colormap table.
fn table(t: &[[u8; 3]; 33], v: f32) -> [f32; 3] {
    let x = v * 255.0;
    let i = ((x / 8.0) as usize).min(31);
    let (x0, x1) = (
        i as f32 * 8.0,
        if i == 31 { 255.0 } else { (i + 1) as f32 * 8.0 },
    );
    let t1 = (x - x0) / (x1 - x0);
    [0, 1, 2].map(|k| (t[i][k] as f32 * (1.0 - t1) + t[i + 1][k] as f32 * t1) / 255.0)
}

/// Google's Turbo table (as matplotlib ships it), every 8th entry and the last.
const TURBO: [[u8; 3]; 33] = [
    [48, 18, 59],
    [57, 42, 115],
    [64, 64, 162],
    [68, 86, 199],
    [70, 107, 227],
    [70, 128, 246],
    [66, 148, 255],
    [55, 168, 250],
    [40, 188, 235],
    [28, 205, 216],
    [24, 221, 194],
    [31, 233, 175],
    [50, 242, 152],
    [78, 249, 125],
    [109, 254, 98],
    [139, 255, 75],
    [164, 252, 60],
    [185, 246, 53],
    [205, 236, 52],
    [223, 223, 55],
    [238, 207, 58],
    [248, 190, 57],
    [253, 172, 52],
    [254, 150, 43],
    [251, 126, 33],
    [244, 102, 23],
    [235, 80, 14],
    [223, 63, 8],
    [208, 47, 5],
    [190, 33, 2],
    [169, 22, 1],
    [146, 11, 1],
    [122, 4, 3],
];

/// matplotlib's viridis table, every 8th entry and the last.
const VIRIDIS: [[u8; 3]; 33] = [
    [68, 1, 84],
    [71, 13, 96],
    [72, 24, 106],
    [72, 35, 116],
    [71, 45, 123],
    [69, 55, 129],
    [66, 64, 134],
    [62, 73, 137],
    [59, 82, 139],
    [55, 91, 141],
    [51, 99, 141],
    [47, 107, 142],
    [44, 114, 142],
    [41, 122, 142],
    [38, 130, 142],
    [35, 137, 142],
    [33, 145, 140],
    [31, 152, 139],
    [31, 160, 136],
    [34, 167, 133],
    [40, 174, 128],
    [50, 182, 122],
    [63, 188, 115],
    [78, 195, 107],
    [94, 201, 98],
    [112, 207, 87],
    [132, 212, 75],
    [152, 216, 62],
    [173, 220, 48],
    [194, 223, 35],
    [216, 226, 25],
    [236, 229, 27],
    [253, 231, 37],
];

#[cfg(test)]
mod tests {
    use super::Colormap;

    fn near(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
        a.iter()
            .zip(b)
            .all(|(&x, y)| (x as i32 - y as i32).abs() <= tol)
    }

    #[test]
    fn jet_matches_opencv_at_fixed_points() {
        let j = Colormap::Jet;
        assert_eq!(j.rgb(0.0), [0, 0, 128]);
        assert_eq!(j.rgb(0.5), [128, 255, 128]);
        assert_eq!(j.rgb(1.0), [128, 0, 0]);
        assert_eq!(j.rgb(f32::NAN), [0, 0, 128]);
        assert_eq!(j.rgb(7.0), [128, 0, 0]);
    }

    #[test]
    fn turbo_and_viridis_match_their_tables_at_fixed_points() {
        // Entries 0, 128 and 255 of the published 256-entry tables.
        // Entries 37, 100 and 250 are not stored: the interpolation stays within 3 (turbo) and
        // 2 (viridis) of the published tables.
        for (i, t, v) in [
            (37, [71, 120, 240], [70, 51, 127]),
            (100, [63, 246, 138], [42, 118, 142]),
            (250, [139, 9, 2], [241, 229, 29]),
        ] {
            let x = i as f32 / 255.0;
            assert!(
                near(Colormap::Turbo.rgb(x), t, 3),
                "turbo {i}: {:?}",
                Colormap::Turbo.rgb(x)
            );
            assert!(
                near(Colormap::Viridis.rgb(x), v, 2),
                "viridis {i}: {:?}",
                Colormap::Viridis.rgb(x)
            );
        }
        let t = Colormap::Turbo;
        assert!(near(t.rgb(0.0), [48, 18, 59], 3), "{:?}", t.rgb(0.0));
        assert!(
            near(t.rgb(128.0 / 255.0), [164, 252, 60], 3),
            "{:?}",
            t.rgb(0.5)
        );
        assert!(near(t.rgb(1.0), [122, 4, 3], 3), "{:?}", t.rgb(1.0));
        let v = Colormap::Viridis;
        assert!(near(v.rgb(0.0), [68, 1, 84], 2), "{:?}", v.rgb(0.0));
        assert!(
            near(v.rgb(128.0 / 255.0), [33, 145, 140], 2),
            "{:?}",
            v.rgb(0.5)
        );
        assert!(near(v.rgb(1.0), [253, 231, 37], 2), "{:?}", v.rgb(1.0));
    }

    #[test]
    fn names_parse() {
        for n in Colormap::NAMES {
            Colormap::parse(n).unwrap();
        }
        assert!(Colormap::parse("rainbow").is_err());
    }
}
