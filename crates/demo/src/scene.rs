//! Procedural scenes with known ground truth: 64×64 RGB images holding one or two objects of
//! four classes that differ in form and texture (a dotted disc, a striped square, a chequered
//! triangle, a diagonally striped cross), in random colours, sizes and positions, over a shaded
//! background with clutter (short lines, specks) and pixel noise. Each object's class, box and
//! mask is recorded. A scene is a pure function of its seed.

use gradcam_core::SplitMix64;

/// Side of a scene in pixels.
pub const SIZE: usize = 64;

/// The object classes, in logit order.
pub const CLASSES: [&str; 4] = ["disc", "square", "triangle", "cross"];

/// One object of a scene.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// Index into [`CLASSES`].
    pub class: usize,
    /// Tight box of the mask, `[x0, y0, x1, y1]` with `x1`, `y1` exclusive.
    pub bbox: [usize; 4],
    /// `SIZE×SIZE`, row-major: the pixels the object covers.
    pub mask: Vec<bool>,
}

impl Object {
    /// Whether pixel `(y, x)` belongs to the object.
    pub fn covers(&self, y: usize, x: usize) -> bool {
        y < SIZE && x < SIZE && self.mask[y * SIZE + x]
    }
}

/// A rendered scene.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// `3×SIZE×SIZE`, channel-major, values in `[0, 1]`.
    pub image: Vec<f32>,
    /// The objects, painted in this order (they never overlap).
    pub objects: Vec<Object>,
}

/// A split of the procedural set: disjoint seed streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// What the demo model is trained on.
    Train,
    /// For choosing thresholds and hyper-parameters.
    Validation,
    /// Held out: reported figures only.
    Test,
}

impl Split {
    /// The seed of scene `index` of this split.
    pub fn seed(self, index: u64) -> u64 {
        let tag = match self {
            Split::Train => 0x0074_7261_696e,
            Split::Validation => 0x0076_616c_6964,
            Split::Test => 0x7465_7374,
        };
        SplitMix64::derive(SplitMix64::derive(0x0067_7261_6463_616d, tag), index)
    }

    /// Scene `index` of this split with `objects` objects (1 or 2).
    pub fn scene(self, index: u64, objects: usize) -> Scene {
        generate(self.seed(index), objects)
    }
}

type Rgb = [f32; 3];

fn colour(r: &mut SplitMix64) -> Rgb {
    [r.unit(), r.unit(), r.unit()]
}

fn distance(a: Rgb, b: Rgb) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f32>()
        .sqrt()
}

struct Canvas {
    px: Vec<Rgb>,
}

impl Canvas {
    fn blend(&mut self, y: usize, x: usize, c: Rgb, alpha: f32) {
        let p = &mut self.px[y * SIZE + x];
        for k in 0..3 {
            p[k] = p[k] * (1.0 - alpha) + c[k] * alpha;
        }
    }
}

/// Whether relative point `(u, v)` of a unit box lies in `class`'s shape.
fn inside(class: usize, u: f32, v: f32) -> bool {
    match class {
        0 => (u - 0.5).powi(2) + (v - 0.5).powi(2) <= 0.25,
        1 => true,
        2 => (u - 0.5).abs() <= v / 2.0,
        _ => (u - 0.5).abs() <= 1.0 / 6.0 || (v - 0.5).abs() <= 1.0 / 6.0,
    }
}

/// The texture's brightness factor at offset `(dy, dx)` inside an object of side `s`.
fn texture(class: usize, dy: usize, dx: usize, s: usize) -> f32 {
    let cell = (s / 6).max(2);
    let dark = 0.45;
    let dot = (s / 4).max(4);
    match class {
        0 if dy % dot < dot / 2 && dx % dot < dot / 2 => dark,
        1 if (dy / cell) % 2 == 1 => dark,
        2 if (dy / cell + dx / cell) % 2 == 1 => dark,
        3 if ((dy + dx) / cell) % 2 == 1 => dark,
        _ => 1.0,
    }
}

/// Renders the scene of `seed` with `objects` objects (1 or 2; more are clamped to 2).
pub fn generate(seed: u64, objects: usize) -> Scene {
    let mut r = SplitMix64::new(seed);
    let objects = objects.clamp(1, 2);
    // Background: a low-contrast linear blend of two colours.
    let (c0, c1) = (colour(&mut r), colour(&mut r));
    let angle = r.uniform(0.0, std::f32::consts::TAU);
    let (dx, dy) = (angle.cos(), angle.sin());
    let mut cv = Canvas {
        px: vec![[0.0; 3]; SIZE * SIZE],
    };
    for y in 0..SIZE {
        for x in 0..SIZE {
            let t = 0.5
                + 0.5 * ((x as f32 / SIZE as f32 - 0.5) * dx + (y as f32 / SIZE as f32 - 0.5) * dy);
            let t = 0.4 * t.clamp(0.0, 1.0);
            cv.px[y * SIZE + x] = [0, 1, 2].map(|k| c0[k] * (1.0 - t) + c1[k] * t);
        }
    }
    // Clutter: short thin lines and specks.
    for _ in 0..r.int(4, 9) {
        let c = colour(&mut r);
        let alpha = r.uniform(0.3, 0.7);
        let (x0, y0) = (r.uniform(0.0, SIZE as f32), r.uniform(0.0, SIZE as f32));
        if r.unit() < 0.5 {
            let len = r.uniform(5.0, 14.0);
            let a = r.uniform(0.0, std::f32::consts::TAU);
            for s in 0..(len as usize * 2) {
                let (x, y) = (x0 + a.cos() * s as f32 * 0.5, y0 + a.sin() * s as f32 * 0.5);
                if (0.0..SIZE as f32).contains(&x) && (0.0..SIZE as f32).contains(&y) {
                    cv.blend(y as usize, x as usize, c, alpha);
                }
            }
        } else {
            let (x, y) = (x0 as usize, y0 as usize);
            for (yy, xx) in [(y, x), (y, x + 1), (y + 1, x), (y + 1, x + 1)] {
                if yy < SIZE && xx < SIZE {
                    cv.blend(yy, xx, c, alpha);
                }
            }
        }
    }
    // Objects: distinct classes, separated boxes, colours that stand out from the background.
    let first = r.int(0, CLASSES.len() - 1);
    let mut classes = vec![first];
    if objects == 2 {
        classes.push((first + r.int(1, CLASSES.len() - 1)) % CLASSES.len());
    }
    let (lo, hi) = if objects == 1 { (16, 30) } else { (14, 24) };
    let mut placed: Vec<[usize; 4]> = Vec::new();
    let mut out = Vec::new();
    for &class in &classes {
        let (s, x0, y0) = loop {
            let s = r.int(lo, hi);
            let x0 = r.int(1, SIZE - 1 - s);
            let y0 = r.int(1, SIZE - 1 - s);
            let gap = 3;
            let clear = placed.iter().all(|b| {
                x0 + s + gap <= b[0] || b[2] + gap <= x0 || y0 + s + gap <= b[1] || b[3] + gap <= y0
            });
            if clear {
                break (s, x0, y0);
            }
        };
        placed.push([x0, y0, x0 + s, y0 + s]);
        let bg = cv.px[(y0 + s / 2) * SIZE + x0 + s / 2];
        let mut fill = colour(&mut r);
        while distance(fill, bg) < 0.5 {
            fill = colour(&mut r);
        }
        let mut mask = vec![false; SIZE * SIZE];
        let mut bbox = [SIZE, SIZE, 0, 0];
        for dy in 0..s {
            for dx in 0..s {
                let (u, v) = ((dx as f32 + 0.5) / s as f32, (dy as f32 + 0.5) / s as f32);
                if !inside(class, u, v) {
                    continue;
                }
                let (y, x) = (y0 + dy, x0 + dx);
                let f = texture(class, dy, dx, s);
                cv.blend(y, x, fill.map(|c| c * f), 1.0);
                mask[y * SIZE + x] = true;
                bbox = [
                    bbox[0].min(x),
                    bbox[1].min(y),
                    bbox[2].max(x + 1),
                    bbox[3].max(y + 1),
                ];
            }
        }
        out.push(Object { class, bbox, mask });
    }
    // Pixel noise.
    let mut image = vec![0.0f32; 3 * SIZE * SIZE];
    for (i, p) in cv.px.iter().enumerate() {
        for k in 0..3 {
            image[k * SIZE * SIZE + i] = (p[k] + r.uniform(-0.06, 0.06)).clamp(0.0, 1.0);
        }
    }
    Scene {
        image,
        objects: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_reproducible_and_their_ground_truth_consistent() {
        for i in 0..200 {
            for n in [1, 2] {
                let s = Split::Test.scene(i, n);
                assert_eq!(s, Split::Test.scene(i, n));
                assert_eq!(s.objects.len(), n);
                assert!(s.image.iter().all(|v| (0.0..=1.0).contains(v)));
                for o in &s.objects {
                    let [x0, y0, x1, y1] = o.bbox;
                    assert!(x0 < x1 && y0 < y1 && x1 <= SIZE && y1 <= SIZE);
                    let area = o.mask.iter().filter(|m| **m).count();
                    assert!(area >= 60, "object too small: {area}");
                    for y in 0..SIZE {
                        for x in 0..SIZE {
                            if o.covers(y, x) {
                                assert!((x0..x1).contains(&x) && (y0..y1).contains(&y));
                            }
                        }
                    }
                }
                if n == 2 {
                    assert_ne!(s.objects[0].class, s.objects[1].class);
                    assert!(!(0..SIZE * SIZE).any(|p| s.objects[0].mask[p] && s.objects[1].mask[p]));
                }
            }
        }
        assert_ne!(Split::Train.seed(0), Split::Test.seed(0));
        assert_ne!(Split::Train.scene(0, 1), Split::Train.scene(1, 1));
    }
}
