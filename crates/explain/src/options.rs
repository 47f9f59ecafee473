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

/// How Grad-CAM pools the gradients into channel weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GradPooling {
    /// Global average pooling (the paper's αₖ).
    #[default]
    Average,
    /// Global max pooling (Table A1's ablation).
    Max,
}

/// Grad-CAM as the paper defines it (the default), or one of its Table A1 ablations. Applies
/// to the `gradcam` map and everything built on it (Guided and Deconvnet Grad-CAM); `backward`
/// applies to every method's backward pass to the target layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GradCamVariant {
    /// Rectify the map (`ReLU(Σₖ αₖAₖ)`); off, the signed map is min-max normalised.
    pub relu: bool,
    /// Take the gradients' absolute values before pooling.
    pub abs_gradients: bool,
    /// Average or max pooling of the gradients.
    pub pooling: GradPooling,
    /// Rectifier rule of the backward pass to the target layer: plain (the paper), guided or
    /// deconvnet.
    pub backward: gradcam_core::GradMode,
}

impl Default for GradCamVariant {
    fn default() -> Self {
        GradCamVariant {
            relu: true,
            abs_gradients: false,
            pooling: GradPooling::Average,
            backward: gradcam_core::GradMode::Plain,
        }
    }
}

impl GradCamVariant {
    /// Table A1's ablations by name: `paper`, `no-relu`, `abs-gradients`, `max-pooling`,
    /// `guided-backward`, `deconv-backward`.
    pub const NAMES: [&'static str; 6] = [
        "paper",
        "no-relu",
        "abs-gradients",
        "max-pooling",
        "guided-backward",
        "deconv-backward",
    ];

    /// The variant named `name` (one of [`GradCamVariant::NAMES`]).
    pub fn parse(name: &str) -> gradcam_core::Result<Self> {
        let d = GradCamVariant::default();
        Ok(match name {
            "paper" => d,
            "no-relu" => GradCamVariant { relu: false, ..d },
            "abs-gradients" => GradCamVariant {
                abs_gradients: true,
                ..d
            },
            "max-pooling" => GradCamVariant {
                pooling: GradPooling::Max,
                ..d
            },
            "guided-backward" => GradCamVariant {
                backward: gradcam_core::GradMode::Guided,
                ..d
            },
            "deconv-backward" => GradCamVariant {
                backward: gradcam_core::GradMode::Deconvnet,
                ..d
            },
            other => {
                return Err(gradcam_core::Error::InvalidArgument(format!(
                    "unknown Grad-CAM variant `{other}`; known: {}",
                    Self::NAMES.join(", ")
                )))
            }
        })
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
    /// Grad-CAM as the paper defines it, or an ablation.
    pub gradcam: GradCamVariant,
    /// Also return the intermediate tensors: the target layer's activations and gradients,
    /// Grad-CAM's channel weights, raw map and Captum's LayerGradCam (`target_activation`,
    /// `target_gradient`, `gradcam_weights`, `gradcam_raw`, `captum_layer_gradcam`). On a GPU
    /// they are the largest downloads; off, an explanation holds the logits and the methods'
    /// outputs only.
    pub intermediates: bool,
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
            gradcam: GradCamVariant::default(),
            intermediates: true,
        }
    }
}
