//! Products of two computed tensors explain end to end: a squeeze-and-excitation gate
//! (`x ⊙ sigmoid(conv(gap(x)))`, one factor per channel broadcast over the plane) and a swish
//! (`x ⊙ sigmoid(x)`, elementwise). The plain backward through both is the true gradient
//! (saliency against central finite differences of the class score), and every other backend
//! present gives the CPU's explanation.

mod common;

use gradcam::core::{Activation, Conv2dParams, HostTensor};
use gradcam::{Backend, Classes, CpuBackend, Explainer, GraphBuilder, Method, Model, Options};

fn graph() -> gradcam::Graph {
    let mut r = gradcam::core::SplitMix64::new(43);
    let mut t = |dims: &[usize], s: f32| {
        let n = dims.iter().product();
        HostTensor::new(dims.to_vec(), (0..n).map(|_| r.uniform(-s, s)).collect()).unwrap()
    };
    let mut b = GraphBuilder::new(2);
    let x = b.input();
    let c1 = b
        .conv2d(
            "conv1",
            x,
            t(&[5, 2, 3, 3], 0.6),
            Some(t(&[5], 0.2)),
            Conv2dParams::new(1, 1),
        )
        .unwrap();
    // Swish: x·sigmoid(x).
    let s1 = b.activation("sig1", c1, Activation::Sigmoid).unwrap();
    let sw = b.mul("swish", c1, s1).unwrap();
    // Squeeze and excitation, the gate first to check that the builder orders the operands.
    let sq = b.global_avg_pool("se.pool", sw).unwrap();
    let ex = b
        .conv2d(
            "se.fc",
            sq,
            t(&[5, 5, 1, 1], 1.0),
            Some(t(&[5], 0.3)),
            Conv2dParams::new(1, 0),
        )
        .unwrap();
    let gate = b.activation("se.gate", ex, Activation::Sigmoid).unwrap();
    let se = b.mul("se.scale", gate, sw).unwrap();
    let c2 = b
        .conv2d(
            "conv2",
            se,
            t(&[4, 5, 3, 3], 0.5),
            Some(t(&[4], 0.1)),
            Conv2dParams::new(1, 1),
        )
        .unwrap();
    let a2 = b.activation("act2", c2, Activation::Tanh).unwrap();
    let p = b.global_avg_pool("pool", a2).unwrap();
    let f = b.flatten("flat", p).unwrap();
    let y = b
        .linear("fc", f, t(&[3, 4], 1.0), Some(t(&[3], 0.1)))
        .unwrap();
    b.build(y).unwrap()
}

fn input() -> HostTensor {
    let mut r = gradcam::core::SplitMix64::new(8);
    HostTensor::new(
        [2, 2, 7, 5],
        (0..140).map(|_| r.uniform(-2.0, 2.0)).collect(),
    )
    .unwrap()
}

fn options() -> Options {
    Options {
        classes: Classes::Given(vec![1, 2]),
        layer: Some("se.scale".into()),
        ..Options::default()
    }
}

const METHODS: [Method; 3] = [Method::Saliency, Method::GradCam, Method::GuidedGradCam];

#[test]
fn saliency_through_products_is_the_true_gradient() {
    let ex = Explainer::new(Model::new(CpuBackend::new(), graph()).unwrap());
    let x = input();
    let opts = options();
    let e = ex.explain(&x, &METHODS, &opts).unwrap();
    let sal = &e.get("saliency").unwrap().data;
    assert!(e.get("gradcam").unwrap().data.iter().all(|v| v.is_finite()));
    // Central differences of each row's class logit (f64 of f32 forwards, h = 1e-2).
    let logit = |v: &[f32], row: usize| -> f64 {
        let t = HostTensor::new([2, 2, 7, 5], v.to_vec()).unwrap();
        let o = ex.explain(&t, &[Method::GradCam], &opts).unwrap();
        o.get("logits").unwrap().data[row * 3 + [1, 2][row]] as f64
    };
    let h = 1e-2f32;
    for i in [0, 9, 33, 69, 70, 101, 139] {
        let (mut up, mut dn) = (x.data.clone(), x.data.clone());
        up[i] += h;
        dn[i] -= h;
        let row = i / 70;
        let fd = (logit(&up, row) - logit(&dn, row)) / (2.0 * h as f64);
        let g = sal[i] as f64;
        assert!(
            (fd - g).abs() <= 2e-3 + 2e-2 * g.abs(),
            "input {i}: saliency {g:.5} vs finite difference {fd:.5}"
        );
    }
}

fn same_as_cpu<B: Backend + Clone + 'static>(backend: B) {
    let x = input();
    let cpu = Explainer::new(Model::new(CpuBackend::new(), graph()).unwrap())
        .explain(&x, &METHODS, &options())
        .unwrap();
    let name = backend.name();
    let dev = Explainer::new(Model::new(backend, graph()).unwrap())
        .explain(&x, &METHODS, &options())
        .unwrap();
    for (k, t) in &cpu.tensors {
        let d = dev.get(k).unwrap_or_else(|| panic!("{name}: no {k}"));
        let rel = common::rel_l2(&d.data, &t.data);
        assert!(
            rel < 1e-4,
            "{name}: {k} differs from the CPU's by {rel:.2e}"
        );
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_gives_the_cpus_explanation() {
    if let Some(b) = common::wgpu_backend() {
        same_as_cpu(b);
    }
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_gives_the_cpus_explanation() {
    if let Some(b) = common::cuda_backend() {
        same_as_cpu(b);
    }
}
