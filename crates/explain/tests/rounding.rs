//! Which forward an explanation runs on the CPU: the faster Winograd one (`Rounding::Fast`)
//! exactly when no backward pass reads a mask or a switch of it, else the direct product's.
//! Checked bit for bit against the backends that always (`cpu-winograd`) or never
//! (`cpu-exact`) take it.

use gradcam_core::{Conv2dParams, HostTensor, SplitMix64};
use gradcam_cpu::CpuBackend;
use gradcam_explain::{Classes, Explainer, Method, OcclusionParams, Options};
use gradcam_runtime::{Graph, GraphBuilder, Model, Rounding};
use std::collections::BTreeSet;

fn random(r: &mut SplitMix64, dims: &[usize], scale: f32) -> HostTensor {
    let n = dims.iter().product();
    HostTensor::new(
        dims.to_vec(),
        (0..n).map(|_| r.uniform(-scale, scale)).collect(),
    )
    .unwrap()
}

/// Three 3×3 convolutions with rectifiers (16 channels at 116×116: 841 tiles, a plane larger
/// than the direct convolution takes, so F(4×4) takes the last two with every micro-kernel,
/// `winograd4::pays`), global pooling and a classifier of 5.
fn graph() -> Graph {
    let mut r = SplitMix64::new(11);
    let mut b = GraphBuilder::new(3);
    let mut x = b.input();
    for (i, c) in [3, 16, 16].into_iter().enumerate() {
        let w = random(&mut r, &[16, c, 3, 3], 0.4);
        let bias = random(&mut r, &[16], 0.1);
        x = b
            .conv2d(
                &format!("conv{i}"),
                x,
                w,
                Some(bias),
                Conv2dParams::new(1, 1),
            )
            .unwrap();
        x = b.relu(&format!("relu{i}"), x).unwrap();
    }
    let p = b.global_avg_pool("pool", x).unwrap();
    let f = b.flatten("flat", p).unwrap();
    let w = random(&mut r, &[5, 16], 0.5);
    let y = b.linear("fc", f, w, None).unwrap();
    b.build(y).unwrap()
}

fn explainer(backend: CpuBackend) -> Explainer<CpuBackend> {
    Explainer::new(Model::new(backend, graph()).unwrap())
}

fn input() -> HostTensor {
    random(&mut SplitMix64::new(3), &[2, 3, 116, 116], 1.5)
}

/// The options for `layer`: classes 1 and 3, occlusion by 16 windows (not the default 256, on
/// this larger image).
fn options(layer: &str) -> Options {
    Options {
        layer: Some(layer.into()),
        classes: Classes::Given(vec![1, 3]),
        occlusion: OcclusionParams {
            window: Some([29, 29]),
            stride: Some([29, 29]),
            baseline: 0.0,
        },
        ..Options::default()
    }
}

fn run(backend: CpuBackend, methods: &[Method], layer: &str) -> Vec<(String, Vec<f32>)> {
    let opts = options(layer);
    let e = explainer(backend)
        .explain(&input(), methods, &opts)
        .unwrap();
    e.tensors
        .into_iter()
        .map(|(name, t)| (name, t.data))
        .collect()
}

/// What the explanation reports of its forward, and what `forward_rounding` predicts.
fn reported(backend: CpuBackend, methods: &[Method], layer: &str) -> (Rounding, Rounding) {
    let opts = options(layer);
    let ex = explainer(backend);
    let e = ex.explain(&input(), methods, &opts).unwrap();
    (e.forward, ex.forward_rounding(methods, &opts).unwrap())
}

fn fast() -> CpuBackend {
    CpuBackend::new().with_winograd_forward(true)
}

fn exact() -> CpuBackend {
    CpuBackend::new().with_fast_forward(false)
}

#[test]
fn the_forward_rounds_fast_only_where_no_backward_reads_it() {
    // Grad-CAM at the last rectifier: the backward passes pooling and the classifier only.
    let free = [Method::GradCam, Method::ScoreCam, Method::Occlusion];
    let got = run(CpuBackend::new(), &free, "relu2");
    assert_eq!(got, run(fast(), &free, "relu2"));
    // The test can fail: the two forwards differ here (by rounding).
    let other = run(exact(), &free, "relu2");
    assert_ne!(got, other);
    let (a, b) = (&got[0].1, &other[0].1);
    let err = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(err < 1e-4, "{}: {err}", got[0].0);

    // Grad-CAM at an earlier layer: its backward passes relu2's mask.
    let masked = [Method::GradCam];
    let got = run(CpuBackend::new(), &masked, "relu1");
    assert_eq!(got, run(exact(), &masked, "relu1"));
    assert_ne!(got, run(fast(), &masked, "relu1"));
    // Guided Backprop reads every mask; Guided Grad-CAM shares its forward; so does
    // occlusion asked with it (its windows' logits round as the image's).
    let guided = [Method::GradCam, Method::GuidedBackprop, Method::Occlusion];
    let got = run(CpuBackend::new(), &guided, "relu2");
    assert_eq!(got, run(exact(), &guided, "relu2"));
    assert_ne!(got, run(fast(), &guided, "relu2"));

    // Each reports what it ran, as `forward_rounding` predicts.
    let (fast_r, exact_r) = (Rounding::Fast, Rounding::Exact);
    assert_eq!(
        reported(CpuBackend::new(), &free, "relu2"),
        (fast_r, fast_r)
    );
    assert_eq!(
        reported(CpuBackend::new(), &masked, "relu1"),
        (exact_r, exact_r)
    );
    assert_eq!(
        reported(CpuBackend::new(), &guided, "relu2"),
        (exact_r, exact_r)
    );
    // A backend without a fast handle runs, and reports, its own forward (`exact`: for
    // `cpu-winograd`, its Winograd one).
    assert_eq!(reported(exact(), &free, "relu2"), (exact_r, exact_r));
    assert_eq!(reported(fast(), &free, "relu2"), (exact_r, exact_r));
}

#[test]
fn forward_with_takes_the_backends_fast_handle_where_it_has_one() {
    let logits = |backend: CpuBackend, rounding: Rounding| {
        let m = Model::new(backend, graph()).unwrap();
        let x = m.upload_input(&input()).unwrap();
        let acts = m.forward_with(&x, &BTreeSet::new(), rounding).unwrap();
        m.to_host(acts.get(m.graph().output()).unwrap())
            .unwrap()
            .data
    };
    let exact_logits = logits(CpuBackend::new(), Rounding::Exact);
    assert_eq!(
        logits(CpuBackend::new(), Rounding::Fast),
        logits(fast(), Rounding::Exact)
    );
    assert_ne!(logits(CpuBackend::new(), Rounding::Fast), exact_logits);
    // No fast handle: both roundings are the direct product's.
    assert_eq!(logits(exact(), Rounding::Fast), exact_logits);
    assert_eq!(
        logits(CpuBackend::reference(), Rounding::Fast),
        logits(CpuBackend::reference(), Rounding::Exact)
    );
}
