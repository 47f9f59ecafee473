//! What to explain and how.

/// Which classes each input row explains.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Classes {
    /// The top-scoring class of each row.
    #[default]
    Top1,
    /// The `k` top-scoring classes of each row, best first.
    TopK(usize),
    /// One class per row; a single value applies to every row.
    Given(Vec<usize>),
    /// The same number of classes for every image, `lists[i]` being image `i`'s (rows are
    /// slot-major: every image's first class, then every image's second, ...).
    PerImage(Vec<Vec<usize>>),
}

/// The class score that is explained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Score {
    /// The raw logit `y_c` (the paper's and pytorch-grad-cam's choice).
    #[default]
    Logit,
    /// The softmax probability `p_c`.
    Softmax,
}

impl Score {
    /// The score of class `c` from a row of logits.
    pub fn of(self, logits: &[f32], c: usize) -> f32 {
        match self {
            Score::Logit => logits[c],
            Score::Softmax => {
                let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let s: f64 = logits.iter().map(|&v| ((v - m) as f64).exp()).sum();
                (((logits[c] - m) as f64).exp() / s) as f32
            }
        }
    }
}

/// Captum-style occlusion: a window over all channels slid with a stride, replaced by a
/// baseline value; each pixel gets the mean score drop of the windows covering it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OcclusionParams {
    /// Window height and width; `None` for `max(2, size/8)`.
    pub window: Option<[usize; 2]>,
    /// Stride; `None` for `max(1, size/16)`.
    pub stride: Option<[usize; 2]>,
    /// Value the window is set to.
    pub baseline: f32,
}

impl Default for OcclusionParams {
    fn default() -> Self {
        OcclusionParams {
            window: None,
            stride: None,
            baseline: 0.0,
        }
    }
}

impl OcclusionParams {
    /// Window and stride for an `h×w` input, defaults filled in.
    pub fn resolve(&self, h: usize, w: usize) -> ([usize; 2], [usize; 2]) {
        let window = self.window.unwrap_or([(h / 8).max(2), (w / 8).max(2)]);
        let stride = self.stride.unwrap_or([(h / 16).max(1), (w / 16).max(1)]);
        (window, stride)
    }
}

/// Options of one explanation run.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Target layer by module path or node name; `None` for the model's default.
    pub layer: Option<String>,
    /// Classes to explain.
    pub classes: Classes,
    /// The score each class is explained by.
    pub score: Score,
    /// Guided backprop as pytorch-grad-cam's `GuidedBackpropReLUModel`: the guided rule on
    /// ReLUs only, ReLU6 keeping its plain backward. Off: the rule applies to every rectifier.
    pub guided_relu_only: bool,
    /// Occlusion settings.
    pub occlusion: OcclusionParams,
    /// Images per forward pass for ScoreCAM and occlusion.
    pub perturbation_batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            layer: None,
            classes: Classes::Top1,
            score: Score::Logit,
            guided_relu_only: false,
            occlusion: OcclusionParams::default(),
            perturbation_batch: 32,
        }
    }
}
