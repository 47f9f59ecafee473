//! Training the demo model with the gradcam runtime itself: weight gradients on a backend
//! (the CPU in `gradcam train-demo`), softmax cross-entropy, Adam with warm-up and cosine decay,
//! on a fresh stream of training scenes (no scene is seen twice).

use crate::model::{input, targets};
use crate::scene::{Split, CLASSES};
use gradcam_core::{Backend, Result, SplitMix64};
use gradcam_runtime::{arch, AdamConfig, Graph, Model, Trainer};

/// How the demo model is trained. The defaults reproduce the committed weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    /// Seeds the initial weights and the order of one- and two-object scenes.
    pub seed: u64,
    /// Optimisation steps.
    pub steps: usize,
    /// Scenes per step.
    pub batch: usize,
    /// Peak step size.
    pub lr: f32,
    /// Fraction of two-object scenes (their target is ½ on each class).
    pub two_object_fraction: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 0,
            steps: 1500,
            batch: 32,
            lr: 2e-3,
            two_object_fraction: 0.3,
        }
    }
}

/// The safetensors metadata key under which `gradcam train-demo` records
/// [`TrainConfig::describe`] (one key, so the file's bytes do not depend on map order).
pub const METADATA_KEY: &str = "gradcam_train_demo";

impl TrainConfig {
    /// `seed=… steps=… batch=… lr=… two_object_fraction=…`.
    pub fn describe(&self) -> String {
        format!(
            "seed={} steps={} batch={} lr={} two_object_fraction={}",
            self.seed, self.steps, self.batch, self.lr, self.two_object_fraction
        )
    }

    /// The step size at `step`: linear warm-up over 50 steps, then cosine decay to 2 %.
    pub fn lr_at(&self, step: usize) -> f32 {
        let warm = 50.min(self.steps / 10).max(1);
        if step < warm {
            return self.lr * (step + 1) as f32 / warm as f32;
        }
        let t = (step - warm) as f32 / (self.steps - warm).max(1) as f32;
        self.lr * (0.02 + 0.98 * 0.5 * (1.0 + (std::f32::consts::PI * t).cos()))
    }
}

/// Trains the demo model on `backend` from seeded random weights; `progress(step, loss)` is
/// called after every step. Returns the trained graph (its parameters are the weights).
pub fn train<B: Backend>(
    backend: B,
    cfg: &TrainConfig,
    mut progress: impl FnMut(usize, f32),
) -> Result<Graph> {
    let init = arch::random_weights("demo", CLASSES.len(), cfg.seed)?;
    let model = Model::new(backend, arch::build("demo", &init)?)?;
    let mut trainer = Trainer::new(model, AdamConfig::default());
    let mut mix = SplitMix64::new(SplitMix64::derive(cfg.seed, 1));
    for step in 0..cfg.steps {
        let scenes: Vec<_> = (0..cfg.batch)
            .map(|j| {
                let objects = if mix.unit() < cfg.two_object_fraction {
                    2
                } else {
                    1
                };
                let index = (cfg.seed << 32) + (step * cfg.batch + j) as u64;
                Split::Train.scene(index, objects)
            })
            .collect();
        let loss = trainer.step(&input(&scenes)?, &targets(&scenes), cfg.lr_at(step))?;
        progress(step, loss);
    }
    Ok(trainer.into_model().graph().clone())
}
