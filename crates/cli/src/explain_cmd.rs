//! `gradcam explain`.

use crate::backends::{with_backend, WithBackend};
use crate::input::{self, Preprocess};
use crate::render;
use clap::Args;
use gradcam_core::{Error, Result};
use gradcam_explain::{Classes, Explainer, Method, OcclusionParams, Options, Score};
use gradcam_runtime::{arch, Graph, Model, Weights};
use std::path::PathBuf;

/// Where the model comes from.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Built-in architecture (resnet, resnet18..152, vgg11..19[_bn], squeezenet1_0/1_1,
    /// mobilenet_v2, alexnet).
    #[arg(long)]
    pub arch: String,
    /// torchvision state dict saved as safetensors.
    #[arg(long)]
    pub weights: PathBuf,
}

impl ModelArgs {
    /// Loads the graph.
    pub fn graph(&self) -> Result<Graph> {
        arch::build(&self.arch, &Weights::open(&self.weights)?)
    }
}

/// What to explain and how: shared by `explain` and `compare`.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// An image (PNG/JPEG), or an N×3×H×W float tensor: FILE.safetensors[:NAME] or FILE.npy.
    #[arg(long)]
    input: String,
    /// Side images are resized to.
    #[arg(long, default_value_t = 224)]
    size: u32,
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
    #[arg(long, default_value = "gradcam")]
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
    /// Compute backend: cpu, or wgpu (WebGPU; `WGPU_BACKEND` restricts the API).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Directory for PNG pictures of every map and gradient.
    #[arg(long)]
    out: Option<PathBuf>,
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

impl RunArgs {
    /// Loads the model (batch norm folded, the target protected), the input, the methods and
    /// the options.
    pub fn prepare(&self) -> Result<ExplainJob> {
        if let Some(t) = self.threads {
            gradcam_cpu::set_threads(t)?;
        }
        let methods = if self.method.trim() == "all" {
            Method::ALL.to_vec()
        } else {
            Method::parse_list(&self.method)?
        };
        let std = three(&self.std, "--std")?;
        if std.iter().any(|s| *s <= 0.0 || !s.is_finite()) {
            return Err(Error::InvalidArgument(
                "--std values must be positive".into(),
            ));
        }
        let pre = Preprocess {
            size: self.size,
            mean: three(&self.mean, "--mean")?,
            std,
        };
        let input = input::load(&self.input, &pre)?;
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
            ..Options::default()
        };
        Ok(ExplainJob {
            graph,
            input,
            methods,
            opts,
        })
    }

    /// The wgpu adapter asked for.
    pub fn adapter(&self) -> Option<&str> {
        self.adapter.as_deref()
    }
}

/// Runs `gradcam explain`.
pub fn run(a: ExplainArgs) -> Result<()> {
    let job = a.run.prepare()?;
    let ex = with_backend(&a.backend, a.run.adapter(), job)?;

    let logits = ex.get("logits").expect("logits are always produced");
    let c = logits.shape.dim(1);
    if let Some(l) = &ex.layer {
        println!("target layer: {l}");
    }
    for (r, (&img, &class)) in ex.images.iter().zip(&ex.targets).enumerate() {
        println!(
            "row {r}: image {img}, class {class}, logit {:.6}",
            logits.data[img * c + class]
        );
    }
    if let Some(path) = &a.save_tensors {
        ex.save(path)?;
        println!("tensors: {}", path.display());
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let written = write_pictures(&ex, dir)?;
        println!("pictures: {written} PNG files in {}", dir.display());
    }
    Ok(())
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

fn write_pictures(ex: &gradcam_explain::Explanation, dir: &std::path::Path) -> Result<usize> {
    let mut written = 0;
    for m in Method::ALL {
        let Some(t) = ex.get(m.tensor()) else {
            continue;
        };
        let d = t.shape.dims();
        let rows = d[0];
        let per = t.data.len() / rows;
        for r in 0..rows {
            let path = dir.join(format!(
                "{}_{}_{}.png",
                ex.images[r],
                ex.targets[r],
                m.tensor()
            ));
            let v = &t.data[r * per..(r + 1) * per];
            match d.len() {
                3 => render::save_map(v, d[1], d[2], &path)?,
                4 => render::save_gradient(v, d[2], d[3], &path)?,
                _ => continue,
            }
            written += 1;
        }
    }
    Ok(written)
}
