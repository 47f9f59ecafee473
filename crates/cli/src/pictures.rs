//! What `explain --out` writes for one input image: per explained class, every map overlaid on
//! the picture, every gradient as pytorch-grad-cam shows it, one Figure-1 panel; and the
//! image's `summary.json` entry (top classes, and per class the map's peak and the paper's
//! localization box).

use crate::input::Item;
use gradcam_core::{Error, HostTensor, Result};
use gradcam_explain::localize::{localization_box, peak, LOCALIZATION_THRESHOLD};
use gradcam_explain::{Explanation, Method};
use gradcam_image::{picture, Colormap, Panel, RgbImage};
use serde_json::{json, Value};
use std::path::Path;

/// Panel order after the original: the paper's Figure 1, then the other methods.
const PANEL_ORDER: [&str; 4] = ["guided_backprop", "gradcam", "guided_gradcam", "occlusion"];

/// How pictures are written.
pub struct Pictures<'a> {
    /// Where to write them; `None` computes the summary only.
    pub dir: Option<&'a Path>,
    /// Colormap of the overlays.
    pub cmap: Colormap,
    /// Class names in logit order.
    pub labels: Option<&'a [String]>,
}

fn caption(tensor: &str) -> String {
    match tensor {
        "gradcam" => "Grad-CAM".into(),
        "guided_backprop" => "Guided Backprop".into(),
        "guided_gradcam" => "Guided Grad-CAM".into(),
        "deconvnet_gradcam" => "Deconvnet Grad-CAM".into(),
        other => other.replace('_', " "),
    }
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A map scaled for display: occlusion's score drops by their positive part over their
/// maximum; the other methods' maps are already in `[0, 1]`.
fn display_map(tensor: &str, v: &[f32]) -> Vec<f32> {
    if tensor != "occlusion" {
        return v.to_vec();
    }
    let max = v.iter().copied().fold(0.0f32, f32::max);
    v.iter()
        .map(|&x| if max > 0.0 { x.max(0.0) / max } else { 0.0 })
        .collect()
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = row.iter().map(|&v| ((v - m) as f64).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| (v / s) as f32).collect()
}

/// Row `r` of a tensor whose first axis is rows.
fn row(t: &HostTensor, r: usize) -> &[f32] {
    let per = t.data.len() / t.shape.dim(0);
    &t.data[r * per..(r + 1) * per]
}

impl Pictures<'_> {
    /// A class's name, or its number.
    pub fn label(&self, c: usize) -> String {
        match self.labels.and_then(|l| l.get(c)) {
            Some(l) => l.clone(),
            None => c.to_string(),
        }
    }

    /// The file-name part for class `c`: its number, and its name when labels are given
    /// (`282-tiger_cat`), so two classes never share a name.
    fn file_part(&self, c: usize) -> String {
        match self.labels.and_then(|l| l.get(c)) {
            Some(l) => format!("{c}-{}", file_safe(l)),
            None => c.to_string(),
        }
    }

    fn save(&self, img: &RgbImage, name: &str) -> Result<Option<String>> {
        let Some(dir) = self.dir else { return Ok(None) };
        picture::save(img, &dir.join(name))?;
        Ok(Some(name.to_string()))
    }

    /// Writes the pictures of batch image `image` (`item`, named `stem` in file names) and
    /// returns its summary entry.
    pub fn image(&self, ex: &Explanation, image: usize, item: &Item, stem: &str) -> Result<Value> {
        let logits = ex
            .get("logits")
            .ok_or_else(|| Error::Model("the explanation has no logits".into()))?;
        let probs = softmax(row(logits, image));
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        let rows: Vec<usize> = (0..ex.targets.len())
            .filter(|&r| ex.images[r] == image)
            .collect();
        let top: Vec<Value> = order
            .iter()
            .take(rows.len().max(5))
            .map(|&c| {
                json!({"class": c, "label": self.label(c), "probability": probs[c], "logit": row(logits, image)[c]})
            })
            .collect();
        let (w, h) = item.picture.dimensions();
        let mut explained = Vec::new();
        for r in rows {
            let c = ex.targets[r];
            let base = format!("{stem}.{}", self.file_part(c));
            let mut files = serde_json::Map::new();
            let mut tiles: Vec<(String, RgbImage)> = vec![("input".into(), item.picture.clone())];
            let mut found: Vec<(String, RgbImage)> = Vec::new();
            let mut located = None;
            for m in Method::ALL {
                let name = m.tensor();
                let Some(t) = ex.get(name) else { continue };
                let d = t.shape.dims();
                let v = row(t, r);
                let img = match d.len() {
                    3 if (d[2], d[1]) == (w as usize, h as usize) => {
                        let shown = display_map(name, v);
                        if located.is_none() {
                            located = Some((name, shown.clone()));
                        }
                        picture::overlay(&item.picture, &shown, self.cmap)?
                    }
                    4 if d[1] == 3 => picture::gradient(v, d[2], d[3])?,
                    _ => continue,
                };
                if let Some(f) = self.save(&img, &format!("{base}.{name}.png"))? {
                    files.insert(name.to_string(), Value::String(f));
                }
                found.push((name.to_string(), img));
            }
            // Figure 1's order first, then the rest as Method::ALL lists them.
            found.sort_by_key(|(n, _)| {
                PANEL_ORDER
                    .iter()
                    .position(|p| p == n)
                    .unwrap_or(PANEL_ORDER.len())
            });
            tiles.extend(found.into_iter().map(|(n, img)| (caption(&n), img)));
            let logit = row(logits, image)[c];
            let title = format!("{}: logit {logit:.3}, p {:.3}", self.label(c), probs[c]);
            if self.dir.is_some() && tiles.len() > 1 {
                let k = 160u32.div_ceil(w.max(h)).max(1);
                let panel = Panel {
                    title,
                    tiles,
                    tile_size: w.max(h) * k,
                }
                .render()?;
                if let Some(f) = self.save(&panel, &format!("{base}.panel.png"))? {
                    files.insert("panel".into(), Value::String(f));
                }
            }
            let mut entry = json!({
                "class": c,
                "label": self.label(c),
                "logit": logit,
                "probability": probs[c],
                "files": files,
            });
            if let Some((name, map)) = located {
                entry["map"] = json!(name);
                if map.iter().all(|&v| v <= 0.0) {
                    // Nothing to point at or box: the class has no positive evidence here.
                    entry["peak"] = Value::Null;
                    entry["box"] = Value::Null;
                    explained.push(entry);
                    continue;
                }
                let (py, px) = peak(&map, h as usize, w as usize)?;
                let bb = localization_box(&map, h as usize, w as usize, LOCALIZATION_THRESHOLD)?;
                entry["peak"] = json!({"x": px, "y": py});
                entry["box"] = match bb {
                    Some(b) => json!({"x0": b.x0, "y0": b.y0, "x1": b.x1, "y1": b.y1}),
                    None => Value::Null,
                };
            }
            explained.push(entry);
        }
        Ok(json!({
            "file": item.name,
            "size": [w, h],
            "top": top,
            "explained": explained,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_scaling_and_names() {
        assert_eq!(
            display_map("gradcam", &[0.0, 0.5, 1.0]),
            vec![0.0, 0.5, 1.0]
        );
        assert_eq!(
            display_map("occlusion", &[-1.0, 0.1, 0.2]),
            vec![0.0, 0.5, 1.0]
        );
        assert_eq!(display_map("occlusion", &[-1.0, -2.0]), vec![0.0, 0.0]);
        assert_eq!(file_safe("tiger cat/x"), "tiger_cat_x");
        let p = softmax(&[0.0, 0.0]);
        assert!((p[0] - 0.5).abs() < 1e-7);
    }
}
