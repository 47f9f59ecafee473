//! `gradcam explain`.

use crate::backends::{with_backend, WithBackend};
use crate::batch_run::{BatchRun, Outcome};
use crate::sources::{self, Source};
use crate::{input, labels};
use clap::Args;
use gradcam_core::{Error, Result};
use gradcam_explain::{
    Classes, Explainer, GradCamVariant, Method, OcclusionParams, Options, Score,
};
use gradcam_image::{Colormap, Preprocess};
use gradcam_runtime::{arch, Graph, Model, Weights};
use std::path::PathBuf;

/// Where the model comes from.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Built-in architecture (resnet, resnet18..152, vgg11..19[_bn], squeezenet1_0/1_1,
    /// mobilenet_v2, alexnet, demo).
    #[arg(long, required_unless_present = "model")]
    pub arch: Option<String>,
    /// torchvision state dict saved as safetensors (optional for `demo`, whose trained
    /// weights are built in).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// An ONNX model (`FILE.onnx`, external data beside it), instead of --arch/--weights:
    /// layers are named by their ONNX output tensors (`gradcam layers --model FILE.onnx`).
    #[arg(long, conflicts_with_all = ["arch", "weights"])]
    pub model: Option<PathBuf>,
}

impl ModelArgs {
    /// Loads the graph.
    pub fn graph(&self) -> Result<Graph> {
        if let Some(m) = &self.model {
            return gradcam_onnx::load(m);
        }
        let arch = self.arch.as_deref().unwrap_or_default();
        match (&self.weights, arch) {
            (Some(w), arch) => arch::build(arch, &Weights::open(w)?),
            (None, "demo") => gradcam_demo::model::graph(),
            (None, arch) => Err(Error::InvalidArgument(format!(
                "--weights is required for `{arch}` (only `demo` has built-in weights)"
            ))),
        }
    }

    /// How the model is named in summaries.
    pub fn describe(&self) -> String {
        let arch = self.arch.as_deref().unwrap_or_default();
        match (&self.model, &self.weights) {
            (Some(m), _) => format!("ONNX {}", m.display()),
            (None, Some(w)) => format!("{arch} ({})", w.display()),
            (None, None) => format!("{arch} (built-in weights)"),
        }
    }
}

/// What to explain and how: shared by `explain` and `compare`.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images (PNG/JPEG files, directories of them, glob patterns), or an N×3×H×W float
    /// tensor: FILE.safetensors[:NAME] or FILE.npy. Repeat or list several.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<String>,
    /// The model's input side: images are centre-cropped to it after resizing their shorter
    /// side to size·256/224 (torchvision's evaluation transform).
    #[arg(long, default_value_t = 224)]
    size: u32,
    /// Shorter side images are resized to (default: the crop·256/224, 256 for 224).
    #[arg(long)]
    resize: Option<u32>,
    /// Side of the centre crop (default: --size).
    #[arg(long)]
    crop: Option<u32>,
    /// Normalisation mean, three values.
    #[arg(long, value_delimiter = ',', default_values_t = [0.485f32, 0.456, 0.406])]
    mean: Vec<f32>,
    /// Normalisation standard deviation, three values.
    #[arg(long, value_delimiter = ',', default_values_t = [0.229f32, 0.224, 0.225])]
    std: Vec<f32>,
    /// Class per input row (one value applies to every row); default the top-1 class.
    #[arg(long, value_delimiter = ',', conflicts_with = "top")]
    class: Vec<usize>,
    /// Explain each row's top K classes.
    #[arg(long)]
    top: Option<usize>,
    /// Target layer (module path such as layer4.1 or features.29); default the model's last
    /// spatial layer.
    #[arg(long)]
    layer: Option<String>,
    /// Methods, comma separated, or `all`: gradcam, gradcam++, xgradcam, hirescam, layercam,
    /// eigencam, scorecam, guided-backprop, guided-gradcam, deconvnet, deconvnet-gradcam,
    /// saliency, occlusion, cam.
    #[arg(long, default_value = "gradcam,guided-gradcam")]
    method: String,
    /// The class score explained: the raw logit (as pytorch-grad-cam) or the softmax
    /// probability.
    #[arg(long, default_value = "logit", value_parser = ["logit", "softmax"])]
    score: String,
    /// Guided backprop as pytorch-grad-cam's GuidedBackpropReLUModel (guided rule on ReLU
    /// only; ReLU6 keeps its plain gradient).
    #[arg(long)]
    guided_relu_only: bool,
    /// Occlusion window, H[,W] (default max(2, size/8)).
    #[arg(long, value_delimiter = ',')]
    occlusion_window: Vec<usize>,
    /// Occlusion stride, H[,W] (default max(1, size/16)).
    #[arg(long, value_delimiter = ',')]
    occlusion_stride: Vec<usize>,
    /// Occlusion baseline value.
    #[arg(long, default_value_t = 0.0)]
    occlusion_baseline: f32,
    /// Grad-CAM as the paper defines it, or one of its Table A1 ablations: paper, no-relu,
    /// abs-gradients, max-pooling, guided-backward, deconv-backward.
    #[arg(long, default_value = "paper")]
    gradcam_variant: String,
    /// wgpu adapter whose name contains this text (default: `WGPU_ADAPTER_NAME`, else the
    /// default adapter).
    #[arg(long)]
    adapter: Option<String>,
    /// Worker threads of the CPU backend (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Arguments of `gradcam explain`.
#[derive(Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Compute backend: cpu (forward 3×3 convolutions by Winograd F(4×4) where no backward
    /// reads the forward: Grad-CAM at a layer followed by no rectifier, max-pool, activation
    /// or product, as a ResNet's last block; CAM, EigenCAM, ScoreCAM, occlusion),
    /// cpu-winograd (in every forward: faster, rounding ≈ 1e-5, more of Guided Backprop's
    /// masks moved), cpu-exact (in none), wgpu (WebGPU; `WGPU_BACKEND` restricts the API),
    /// cuda[:N], or cuda-tf32[:N] (large convolutions in TF32 on the tensor cores; a build with
    /// `cuda`).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Directory for the pictures (per image and class: overlays, gradients, a Figure-1
    /// panel) and `summary.json`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Class names, one per line, in logit order.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Colormap of the overlays: jet (pytorch-grad-cam's), turbo or viridis.
    #[arg(long, default_value = "jet")]
    colormap: String,
    /// Images per batch.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Write every output tensor, named as the reference fixtures, to this safetensors file.
    #[arg(long)]
    save_tensors: Option<PathBuf>,
}

fn pair(v: &[usize], what: &str) -> Result<Option<[usize; 2]>> {
    match v {
        [] => Ok(None),
        [a] => Ok(Some([*a, *a])),
        [a, b] => Ok(Some([*a, *b])),
        _ => Err(Error::InvalidArgument(format!("{what} takes H or H,W"))),
    }
}

fn three(v: &[f32], what: &str) -> Result<[f32; 3]> {
    <[f32; 3]>::try_from(v)
        .map_err(|_| Error::InvalidArgument(format!("{what} takes three values")))
}

/// A loaded model with what to run on it.
pub struct Setup {
    /// The model (batch norm folded, the target protected).
    pub graph: Graph,
    /// Methods to run.
    pub methods: Vec<Method>,
    /// Options.
    pub opts: Options,
    /// Image preprocessing.
    pub pre: Preprocess,
}

impl RunArgs {
    /// Loads the model and reads the methods, the options and the preprocessing.
    pub fn setup(&self) -> Result<Setup> {
        if let Some(t) = self.threads {
            gradcam_cpu::set_threads(t)?;
        }
        let methods = if self.method.trim() == "all" {
            Method::ALL.to_vec()
        } else {
            Method::parse_list(&self.method)?
        };
        let crop = self.crop.unwrap_or(self.size);
        let pre = Preprocess {
            resize: self.resize.unwrap_or(Preprocess::imagenet(crop).resize),
            crop,
            mean: three(&self.mean, "--mean")?,
            std: three(&self.std, "--std")?,
        };
        pre.validate()?;
        let graph = self.model.graph()?;
        let target = match &self.layer {
            Some(l) => graph.find(l)?,
            None => graph.default_target()?,
        };
        let graph = graph.fold_batch_norm(&[target])?;
        let opts = Options {
            layer: self.layer.clone(),
            classes: match (self.top, self.class.is_empty()) {
                (Some(k), _) => Classes::TopK(k),
                (None, false) => Classes::Given(self.class.clone()),
                (None, true) => Classes::Top1,
            },
            score: if self.score == "softmax" {
                Score::Softmax
            } else {
                Score::Logit
            },
            guided_relu_only: self.guided_relu_only,
            occlusion: OcclusionParams {
                window: pair(&self.occlusion_window, "--occlusion-window")?,
                stride: pair(&self.occlusion_stride, "--occlusion-stride")?,
                baseline: self.occlusion_baseline,
            },
            gradcam: GradCamVariant::parse(&self.gradcam_variant)?,
            ..Options::default()
        };
        Ok(Setup {
            graph,
            methods,
            opts,
            pre,
        })
    }

    /// The inputs, expanded.
    pub fn sources(&self) -> Result<Vec<Source>> {
        sources::expand(&self.input)
    }

    /// The model, the one input batch (a single input only) and the options: for `compare`.
    pub fn prepare(&self) -> Result<ExplainJob> {
        let setup = self.setup()?;
        let input = match self.sources()?.as_slice() {
            [one] => input::load(one, &setup.pre)?.tensor,
            _ => {
                return Err(Error::InvalidArgument(
                    "give one input (an image or a tensor file) here".into(),
                ))
            }
        };
        Ok(ExplainJob {
            graph: setup.graph,
            input,
            methods: setup.methods,
            opts: setup.opts,
        })
    }

    /// The wgpu adapter asked for.
    pub fn adapter(&self) -> Option<&str> {
        self.adapter.as_deref()
    }

    /// The model's description.
    pub fn model(&self) -> &ModelArgs {
        &self.model
    }
}

/// Runs `gradcam explain`; returns how many inputs were explained and which failed.
pub fn run(a: ExplainArgs) -> Result<Outcome> {
    let mut setup = a.run.setup()?;
    // Pictures and the summary need the maps only; --save-tensors writes everything.
    setup.opts.intermediates = a.save_tensors.is_some();
    let labels = match &a.labels {
        Some(p) => Some(labels::read(p)?),
        None => None,
    };
    let job = BatchRun {
        sources: a.run.sources()?,
        setup,
        batch: a.batch,
        out: a.out,
        save_tensors: a.save_tensors,
        labels,
        colormap: Colormap::parse(&a.colormap)?,
        model: a.run.model().describe(),
    };
    with_backend(&a.backend, a.run.adapter(), job)
}

/// One explanation run, on whichever backend is chosen.
#[derive(Clone)]
pub struct ExplainJob {
    /// The model.
    pub graph: Graph,
    /// The input batch.
    pub input: gradcam_core::HostTensor,
    /// Methods to run.
    pub methods: Vec<Method>,
    /// Options.
    pub opts: Options,
}

impl WithBackend for ExplainJob {
    type Output = gradcam_explain::Explanation;
    fn run<B: gradcam_core::Backend + Clone + 'static>(self, backend: B) -> Result<Self::Output> {
        let explainer = Explainer::new(Model::new(backend, self.graph)?);
        explainer.explain(&self.input, &self.methods, &self.opts)
    }
}
