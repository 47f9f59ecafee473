//! Held-out measurements of the demo model: classification accuracy on one-object scenes, and
//! on two-object scenes whether each class's Grad-CAM peaks inside that class's own object.

use crate::model::input;
use crate::scene::{Split, SIZE};
use gradcam_core::{Backend, Result};
use gradcam_explain::localize::peak;
use gradcam_explain::{Classes, Explainer, Method, Options};

/// Top-1 accuracy over `n` one-object scenes of `split`, in batches of `batch`.
pub fn accuracy<B: Backend>(
    ex: &Explainer<B>,
    split: Split,
    n: usize,
    batch: usize,
) -> Result<f32> {
    let m = ex.model();
    let mut correct = 0;
    for start in (0..n).step_by(batch.max(1)) {
        let scenes: Vec<_> = (start..n.min(start + batch))
            .map(|i| split.scene(i as u64, 1))
            .collect();
        let x = m.upload_input(&input(&scenes)?)?;
        let acts = m.forward(&x, &Default::default())?;
        let logits = m.to_host(acts.get(m.graph().output())?)?;
        let c = logits.shape.dim(1);
        for (s, row) in scenes.iter().zip(logits.data.chunks(c)) {
            let best = (0..c).fold(0, |b, k| if row[k] > row[b] { k } else { b });
            correct += usize::from(best == s.objects[0].class);
        }
    }
    Ok(correct as f32 / n as f32)
}

/// Where each class's Grad-CAM peaks on two-object scenes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pointing {
    /// Fraction of (scene, class) pairs whose peak lies inside the class's own object (mask).
    pub own: f32,
    /// Fraction whose peak lies inside the other object.
    pub other: f32,
}

/// Over `n` two-object scenes of `split`, each of the two classes' Grad-CAM (default layer,
/// input resolution): how often it peaks inside its own object's mask, and inside the other's.
pub fn pointing<B: Backend>(
    ex: &Explainer<B>,
    split: Split,
    n: usize,
    batch: usize,
) -> Result<Pointing> {
    let (mut hits, mut wrong) = (0, 0);
    for start in (0..n).step_by(batch.max(1)) {
        let scenes: Vec<_> = (start..n.min(start + batch))
            .map(|i| split.scene(i as u64, 2))
            .collect();
        let opts = Options {
            classes: Classes::PerImage(
                scenes
                    .iter()
                    .map(|s| s.objects.iter().map(|o| o.class).collect())
                    .collect(),
            ),
            ..Options::default()
        };
        let e = ex.explain(&input(&scenes)?, &[Method::GradCam], &opts)?;
        let maps = e.get("gradcam").expect("Grad-CAM was asked for");
        for (r, map) in maps.data.chunks(SIZE * SIZE).enumerate() {
            let scene = &scenes[e.images[r]];
            let object = scene
                .objects
                .iter()
                .find(|o| o.class == e.targets[r])
                .expect("the explained classes are the scene's");
            let (y, x) = peak(map, SIZE, SIZE)?;
            hits += usize::from(object.covers(y, x));
            wrong += usize::from(
                scene
                    .objects
                    .iter()
                    .any(|o| o.class != object.class && o.covers(y, x)),
            );
        }
    }
    let pairs = (2 * n) as f32;
    Ok(Pointing {
        own: hits as f32 / pairs,
        other: wrong as f32 / pairs,
    })
}
