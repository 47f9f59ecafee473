//! A CNN with the non-rectifier activations explains end to end: the plain backward through
//! sigmoid, tanh, leaky ReLU, ELU, hard sigmoid and hard swish is the true gradient (saliency
//! against central finite differences of the class score), and the guided rule leaves them
//! alone (Guided Backprop equals saliency where no rectifier is present).

use gradcam::core::{Activation, Conv2dParams, HostTensor};
use gradcam::{Classes, CpuBackend, Explainer, GraphBuilder, Method, Model, Options};

fn graph() -> gradcam::Graph {
    let mut r = gradcam::core::SplitMix64::new(41);
    let mut t = |dims: &[usize], s: f32| {
        let n = dims.iter().product();
        HostTensor::new(dims.to_vec(), (0..n).map(|_| r.uniform(-s, s)).collect()).unwrap()
    };
    let mut b = GraphBuilder::new(2);
    let mut x = b.input();
    let acts = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::LeakyRelu(0.1),
        Activation::Elu(0.7),
        Activation::HardSigmoid(0.2, 0.5),
        Activation::HardSwish,
    ];
    let mut c = 2;
    for (i, a) in acts.into_iter().enumerate() {
        let k = 3 + i % 2;
        x = b
            .conv2d(
                &format!("conv{i}"),
                x,
                t(&[k, c, 3, 3], 0.6),
                Some(t(&[k], 0.2)),
                Conv2dParams::new(1, 1),
            )
            .unwrap();
        x = b.activation(&format!("act{i}"), x, a).unwrap();
        c = k;
    }
    let p = b.global_avg_pool("pool", x).unwrap();
    let f = b.flatten("flat", p).unwrap();
    let y = b
        .linear("fc", f, t(&[3, c], 1.0), Some(t(&[3], 0.1)))
        .unwrap();
    b.build(y).unwrap()
}

#[test]
fn saliency_is_the_true_gradient_and_guided_leaves_activations_alone() {
    let ex = Explainer::new(Model::new(CpuBackend::new(), graph()).unwrap());
    let mut r = gradcam::core::SplitMix64::new(5);
    let x = HostTensor::new(
        [1, 2, 6, 5],
        (0..60).map(|_| r.uniform(-2.0, 2.0)).collect(),
    )
    .unwrap();
    let opts = Options {
        classes: Classes::Given(vec![1]),
        layer: Some("act5".into()),
        ..Options::default()
    };
    let e = ex
        .explain(
            &x,
            &[Method::Saliency, Method::GuidedBackprop, Method::GradCam],
            &opts,
        )
        .unwrap();
    let sal = &e.get("saliency").unwrap().data;
    assert_eq!(sal, &e.get("guided_backprop").unwrap().data);
    assert!(e.get("gradcam").unwrap().data.iter().all(|v| v.is_finite()));
    // Central differences of logit 1 (f64 accumulation of f32 forwards, h = 1e-2).
    let logit = |v: &[f32]| -> f64 {
        let t = HostTensor::new([1, 2, 6, 5], v.to_vec()).unwrap();
        let o = ex.explain(&t, &[Method::GradCam], &opts).unwrap();
        o.get("logits").unwrap().data[1] as f64
    };
    let h = 1e-2f32;
    for i in [0, 7, 13, 29, 42, 59] {
        let (mut up, mut dn) = (x.data.clone(), x.data.clone());
        up[i] += h;
        dn[i] -= h;
        let fd = (logit(&up) - logit(&dn)) / (2.0 * h as f64);
        let g = sal[i] as f64;
        assert!(
            (fd - g).abs() <= 2e-3 + 2e-2 * g.abs(),
            "input {i}: saliency {g:.5} vs finite difference {fd:.5}"
        );
    }
}
