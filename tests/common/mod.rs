//! Shared by the fixture tests: the reference cases copied into `tests/data/fixtures`, the two
//! custom models built with the builder API, and the comparison with the fixtures' tolerances.
#![allow(dead_code)]

use gradcam::core::{Conv2dParams, HostTensor, Pool2dParams};
use gradcam::{
    arch, Classes, Explainer, Graph, GraphBuilder, Method, Model, OcclusionParams, Options, Weights,
};
use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The five reference cases.
pub const CASES: [&str; 5] = [
    "tiny_cam",
    "vgg_like",
    "mini_resnet",
    "squeezenet1_1",
    "mobilenet_v2_035",
];

/// One reference case.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub json: serde_json::Value,
    pub reference: BTreeMap<String, HostTensor>,
    pub targets: Vec<usize>,
}

pub fn fixtures_dir() -> PathBuf {
    // The facade's tests run from the workspace root, the CLI's from crates/cli.
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        here.join("tests/data/fixtures"),
        here.join("../../tests/data/fixtures"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
    .expect("tests/data/fixtures")
}

pub fn load_case(name: &str) -> Case {
    let dir = fixtures_dir().join(name);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let reference = read_tensors(&dir.join("reference.safetensors"));
    let targets = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    Case {
        name: name.into(),
        dir,
        json,
        reference,
        targets,
    }
}

/// Every float tensor of a safetensors file (int64 tensors converted to f32).
pub fn read_tensors(path: &std::path::Path) -> BTreeMap<String, HostTensor> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            let data: Vec<f32> = match v.dtype() {
                safetensors::Dtype::F32 => v
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::I64 => v
                    .data()
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32)
                    .collect(),
                d => panic!("unexpected dtype {d:?}"),
            };
            (k, HostTensor::new(v.shape().to_vec(), data).unwrap())
        })
        .collect()
}

impl Case {
    pub fn weights_path(&self) -> PathBuf {
        self.dir.join("weights.safetensors")
    }

    /// The built-in architecture serving this case, if any.
    pub fn arch(&self) -> Option<&'static str> {
        match self.name.as_str() {
            "mini_resnet" => Some("resnet"),
            "squeezenet1_1" => Some("squeezenet1_1"),
            "mobilenet_v2_035" => Some("mobilenet_v2"),
            _ => None,
        }
    }

    pub fn target_layer(&self) -> String {
        self.json["target_layer"].as_str().unwrap().to_string()
    }

    /// Occlusion window and stride (height, width) from case.json.
    pub fn occlusion(&self) -> ([usize; 2], [usize; 2]) {
        let w: Vec<usize> = self.json["occlusion"]["window"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let s: Vec<usize> = self.json["occlusion"]["stride"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        ([w[1], w[2]], [s[1], s[2]])
    }

    /// The case's graph: the builder API for the two custom models, the built-in
    /// architectures for the torchvision ones.
    pub fn graph(&self) -> Graph {
        let w = Weights::open(self.weights_path()).unwrap();
        match self.name.as_str() {
            "tiny_cam" => tiny_cam(&w),
            "vgg_like" => vgg_like(&w),
            _ => arch::build(self.arch().unwrap(), &w).unwrap(),
        }
    }
}

fn conv(
    b: &mut GraphBuilder,
    w: &Weights,
    name: &str,
    x: gradcam::runtime::NodeId,
) -> gradcam::runtime::NodeId {
    let weight = w.get(&format!("{name}.weight")).unwrap();
    let bias = w.get(&format!("{name}.bias")).unwrap();
    b.conv2d(name, x, weight, Some(bias), Conv2dParams::new(1, 1))
        .unwrap()
}

fn linear(
    b: &mut GraphBuilder,
    w: &Weights,
    name: &str,
    x: gradcam::runtime::NodeId,
) -> gradcam::runtime::NodeId {
    b.linear(
        name,
        x,
        w.get(&format!("{name}.weight")).unwrap(),
        Some(w.get(&format!("{name}.bias")).unwrap()),
    )
    .unwrap()
}

/// generate.py's TinyCam: conv stack, global average pool, linear.
pub fn tiny_cam(w: &Weights) -> Graph {
    let mut b = GraphBuilder::new(3);
    let x = b.input();
    let x = conv(&mut b, w, "features.0", x);
    let x = b.relu("features.1", x).unwrap();
    let x = b
        .max_pool("features.2", x, Pool2dParams::new(2, 2, 0))
        .unwrap();
    let x = conv(&mut b, w, "features.3", x);
    let x = b.relu("features.4", x).unwrap();
    let x = conv(&mut b, w, "features.5", x);
    let x = b.relu("features.6", x).unwrap();
    let x = b.adaptive_avg_pool("avgpool", x, [1, 1]).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let y = linear(&mut b, w, "fc", x);
    b.build(y).unwrap()
}

/// generate.py's VggLike: ReLUs and dropout between the target layer and the logits.
pub fn vgg_like(w: &Weights) -> Graph {
    let mut b = GraphBuilder::new(3);
    let x = b.input();
    let x = conv(&mut b, w, "features.0", x);
    let x = b.relu("features.1", x).unwrap();
    let x = conv(&mut b, w, "features.2", x);
    let x = b.relu("features.3", x).unwrap();
    let x = b
        .max_pool("features.4", x, Pool2dParams::new(2, 2, 0))
        .unwrap();
    let x = conv(&mut b, w, "features.5", x);
    let x = b.relu("features.6", x).unwrap();
    let x = conv(&mut b, w, "features.7", x);
    let x = b.relu("features.8", x).unwrap();
    let x = b
        .max_pool("features.9", x, Pool2dParams::new(2, 2, 0))
        .unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let x = linear(&mut b, w, "classifier.0", x);
    let x = b.relu("classifier.1", x).unwrap();
    let x = b.dropout("classifier.2", x).unwrap();
    let x = linear(&mut b, w, "classifier.3", x);
    let x = b.relu("classifier.4", x).unwrap();
    let x = b.dropout("classifier.5", x).unwrap();
    let y = linear(&mut b, w, "classifier.6", x);
    b.build(y).unwrap()
}

/// The fixtures README's tolerance for a tensor.
pub fn tolerance(name: &str) -> f64 {
    match name {
        "scorecam" => 1e-2,
        "gradcam" | "gradcampp" | "xgradcam" | "hirescam" | "layercam" | "eigencam"
        | "guided_gradcam" => 1e-3,
        _ => 1e-4,
    }
}

/// ‖a − b‖ / ‖b‖.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((*x as f64) - (*y as f64)).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// Compares every reference tensor that `ours` names (with `rename` mapping reference names to
/// ours), returning failures; EigenCAM passes if it matches the reference up to the SVD's sign.
pub fn compare(
    case: &Case,
    ours: &BTreeMap<String, HostTensor>,
    rename: &dyn Fn(&str) -> String,
    skip: &[&str],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, r) in &case.reference {
        if name == "input" || name == "targets" || skip.contains(&name.as_str()) {
            continue;
        }
        let Some(o) = ours.get(&rename(name)) else {
            failures.push(format!("{}: {name} missing from our outputs", case.name));
            continue;
        };
        if o.shape != r.shape {
            failures.push(format!(
                "{}: {name} shape {} vs reference {}",
                case.name, o.shape, r.shape
            ));
            continue;
        }
        let tol = tolerance(name);
        let err = match name.as_str() {
            "eigencam" => eigencam_error(case, o, r),
            "occlusion" => occlusion_error(case, o, r),
            _ => rel_l2(&o.data, &r.data),
        };
        eprintln!(
            "{:>17} {name:>22}: rel L2 {err:.2e} (tol {tol:.0e})",
            case.name
        );
        if err.is_nan() || err >= tol {
            failures.push(format!(
                "{}: {name} rel L2 {err:.3e} > {tol:.0e}",
                case.name
            ));
        }
    }
    failures
}

/// Occlusion maps are differences of two float32 logits: both PyTorch's and ours carry a few
/// units in the last place of the logits, which swamp the map when occluding barely moves the
/// score (mobilenet_v2_035's reference is ~1e-8 everywhere). The error is relative L2, except
/// that a root-mean-square difference within 4 ulps of the largest logit counts as agreement.
fn occlusion_error(case: &Case, ours: &HostTensor, reference: &HostTensor) -> f64 {
    let n = reference.data.len() as f64;
    let rms_diff = (rel_l2(&ours.data, &reference.data).powi(2)
        * reference
            .data
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
        / n)
        .sqrt();
    let max_logit = case.reference["logits"]
        .data
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs() as f64));
    let floor = 4.0 * f32::EPSILON as f64 * max_logit;
    if rms_diff <= floor {
        0.0
    } else {
        rel_l2(&ours.data, &reference.data)
    }
}

/// EigenCAM rows agree with the reference computed from either sign of the first singular
/// vector (pytorch-grad-cam keeps LAPACK's arbitrary sign; we correct it). Each row must match
/// the reference under exactly one of the two signs: ours, or the map of the negated projection,
/// which the test recomputes from the reference activations.
fn eigencam_error(case: &Case, ours: &HostTensor, reference: &HostTensor) -> f64 {
    let plane = ours.data.len() / ours.shape.dim(0);
    let flipped = flipped_eigencam(case, ours);
    let mut worst = 0.0f64;
    for r in 0..ours.shape.dim(0) {
        let s = r * plane..(r + 1) * plane;
        let direct = rel_l2(&ours.data[s.clone()], &reference.data[s.clone()]);
        let other = rel_l2(&flipped[s.clone()], &reference.data[s]);
        worst = worst.max(direct.min(other));
    }
    worst
}

/// Our EigenCAM with the opposite sign, computed by the library on the reference activations.
fn flipped_eigencam(case: &Case, ours: &HostTensor) -> Vec<f32> {
    use gradcam::core::{Backend, Shape};
    let a = &case.reference["target_activation"];
    let [n, k, h, w] = a.shape.nchw("a").unwrap();
    let [hh, ww] = [ours.shape.dim(1), ours.shape.dim(2)];
    let proj = gradcam::explain::eigencam_projection(&a.data, n, k, h * w);
    let neg: Vec<f32> = proj.iter().map(|v| -v).collect();
    let b = gradcam::CpuBackend::new();
    let t = b.upload(&neg, Shape::new([n, h, w])).unwrap();
    b.download(&b.cam_postprocess_fused(&t, [hh, ww]).unwrap())
        .unwrap()
}

/// The CUDA backend, or `None` with a notice when no driver, NVRTC or device is present; where
/// `GRADCAM_REQUIRE_CUDA=1` (scripts/gpu-check.sh on a lent GPU) that fails the test instead.
#[cfg(feature = "cuda")]
pub fn cuda_backend() -> Option<gradcam::cuda::CudaBackend> {
    match gradcam::cuda::CudaBackend::new() {
        Ok(b) => Some(b),
        Err(e) if std::env::var("GRADCAM_REQUIRE_CUDA").as_deref() == Ok("1") => {
            panic!("GRADCAM_REQUIRE_CUDA=1 but no CUDA backend: {e}")
        }
        Err(e) => {
            eprintln!("notice: skipping CUDA tests: {e}");
            None
        }
    }
}

/// The CUDA backend with its TF32 convolutions, under the same rules as [`cuda_backend`].
#[cfg(feature = "cuda")]
pub fn cuda_tf32_backend() -> Option<gradcam::cuda::CudaBackend> {
    cuda_backend().map(|b| b.with_tf32(true).expect("TF32 on this GPU"))
}

/// The wgpu backend, or `None` with a notice when no adapter is present; where
/// `GRADCAM_REQUIRE_WGPU=1` (CI) a missing adapter fails the test instead.
#[cfg(feature = "wgpu")]
pub fn wgpu_backend() -> Option<gradcam::wgpu::WgpuBackend> {
    match gradcam::wgpu::WgpuBackend::new() {
        Ok(b) => Some(b),
        Err(e) if std::env::var("GRADCAM_REQUIRE_WGPU").as_deref() == Ok("1") => {
            panic!("GRADCAM_REQUIRE_WGPU=1 but no wgpu adapter: {e}")
        }
        Err(e) => {
            eprintln!("notice: skipping wgpu tests: {e}");
            None
        }
    }
}

/// Runs every method of case `name` on `backend` with `graph` (built-in, or imported from
/// ONNX) explained at `layer`, and compares with the reference; without `perturbation`,
/// ScoreCAM and occlusion (hundreds of forward passes) are left out. Panics listing every
/// tensor beyond its tolerance.
/// (The library's `run_on`, with a given graph (built-in, or imported from ONNX) and target layer name.
pub fn run_with<B: gradcam::Backend>(
    backend: B,
    name: &str,
    graph: gradcam::Graph,
    layer: String,
    perturbation: bool,
) {
    let case = load_case(name);
    let model = Model::new(backend, graph.fold_batch_norm(&[]).unwrap()).unwrap();
    let explainer = Explainer::new(model);
    let (window, stride) = case.occlusion();
    let mut opts = Options {
        layer: Some(layer),
        classes: Classes::Given(case.targets.clone()),
        occlusion: OcclusionParams {
            window: Some(window),
            stride: Some(stride),
            baseline: 0.0,
        },
        ..Options::default()
    };
    let mut methods: Vec<Method> = Method::ALL.to_vec();
    if name != "tiny_cam" {
        methods.retain(|m| *m != Method::Cam);
    }
    let mut skip = vec!["guided_backprop_pgc"];
    if !perturbation {
        methods.retain(|m| !matches!(m, Method::ScoreCam | Method::Occlusion));
        skip.extend(["scorecam", "occlusion"]);
    }
    let input = &case.reference["input"];
    let ours = explainer.explain(input, &methods, &opts).unwrap();
    assert_eq!(ours.targets, case.targets);
    let mut failures = compare(&case, &ours.tensors, &|n| n.to_string(), &skip);

    // pytorch-grad-cam's GuidedBackpropReLUModel: the guided rule on nn.ReLU only.
    opts.guided_relu_only = true;
    let pgc = explainer
        .explain(input, &[Method::GuidedBackprop], &opts)
        .unwrap();
    let mut only = case.reference.clone();
    only.retain(|k, _| k == "guided_backprop_pgc");
    let pgc_case = Case {
        reference: only,
        ..load_case(name)
    };
    failures.extend(compare(
        &pgc_case,
        &pgc.tensors,
        &|_| "guided_backprop".to_string(),
        &[],
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
