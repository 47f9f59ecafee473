//! Grad-CAM's Table A1 variants against a host computation from the same target activation
//! and gradient, at a layer whose backward passes a convolution and a ReLU.

use gradcam_core::GradMode;
use gradcam_cpu::CpuBackend;
use gradcam_explain::{Classes, Explainer, GradCamVariant, Method, Options};
use gradcam_runtime::{arch, BackwardSpec, Model, RectifierRule, Stop};

fn input(n: usize, side: usize) -> gradcam_core::HostTensor {
    let mut r = gradcam_core::SplitMix64::new(5);
    let data = (0..n * 3 * side * side)
        .map(|_| r.uniform(-1.5, 1.5))
        .collect();
    gradcam_core::HostTensor::new([n, 3, side, side], data).unwrap()
}

#[test]
fn each_variant_computes_what_it_names() {
    let w = arch::random_weights("demo", 4, 3).unwrap();
    let ex =
        Explainer::new(Model::new(CpuBackend::new(), arch::build("demo", &w).unwrap()).unwrap());
    let x = input(2, 20);
    for name in GradCamVariant::NAMES {
        let v = GradCamVariant::parse(name).unwrap();
        let opts = Options {
            layer: Some("relu3".into()),
            classes: Classes::Given(vec![1, 2]),
            gradcam: v,
            ..Options::default()
        };
        let e = ex.explain(&x, &[Method::GradCam], &opts).unwrap();
        let a = e.get("target_activation").unwrap();
        let g = e.get("target_gradient").unwrap();
        let [n, k, h, ww] = [
            a.shape.dim(0),
            a.shape.dim(1),
            a.shape.dim(2),
            a.shape.dim(3),
        ];
        let plane = h * ww;
        // The gradient is the backward pass with the variant's rectifier rule.
        let m = ex.model();
        let t = m.graph().find("relu3").unwrap();
        let spec = BackwardSpec {
            from: m.graph().output(),
            stop: Stop::At(t),
            rule: RectifierRule {
                mode: v.backward,
                relu_only: false,
            },
            weight_grads: false,
        };
        let xd = m.upload_input(&x).unwrap();
        let acts = m.forward(&xd, &m.backward_needs(&spec).unwrap()).unwrap();
        let seed = m.one_hot(4, &[1, 2]).unwrap();
        let want_g = m
            .to_host(&m.backward(&acts, &spec, seed).unwrap().at_stop)
            .unwrap();
        assert_eq!(g.data, want_g.data, "{name}: target gradient");
        // Weights and raw map on the host.
        let alpha: Vec<f32> = (0..n * k)
            .map(|i| {
                let gs = g.data[i * plane..(i + 1) * plane].iter().map(|&x| {
                    if v.abs_gradients {
                        x.abs()
                    } else {
                        x
                    }
                });
                match v.pooling {
                    gradcam_explain::GradPooling::Average => gs.sum::<f32>() / plane as f32,
                    gradcam_explain::GradPooling::Max => gs.fold(f32::NEG_INFINITY, f32::max),
                }
            })
            .collect();
        let got_alpha = &e.get("gradcam_weights").unwrap().data;
        for (p, q) in alpha.iter().zip(got_alpha) {
            assert!(
                (p - q).abs() <= 1e-5 * p.abs().max(1e-3),
                "{name}: weights {p} vs {q}"
            );
        }
        let raw = &e.get("gradcam_raw").unwrap().data;
        for img in 0..n {
            for p in 0..plane {
                let s: f32 = (0..k)
                    .map(|c| alpha[img * k + c] * a.data[(img * k + c) * plane + p])
                    .sum();
                let want = if v.relu { s.max(0.0) } else { s };
                let got = raw[img * plane + p];
                assert!(
                    (want - got).abs() <= 1e-4 * want.abs().max(1e-2),
                    "{name}: raw {want} vs {got}"
                );
            }
        }
        // Every variant's map is normalised to [0, 1].
        let map = &e.get("gradcam").unwrap().data;
        assert!(map.iter().all(|v| (0.0..=1.0).contains(v)), "{name}");
    }
    // The guided and deconvnet rules do change the gradient at relu3.
    let grad = |mode| {
        let opts = Options {
            layer: Some("relu3".into()),
            classes: Classes::Given(vec![1]),
            gradcam: GradCamVariant {
                backward: mode,
                ..GradCamVariant::default()
            },
            ..Options::default()
        };
        ex.explain(&x, &[Method::GradCam], &opts)
            .unwrap()
            .get("target_gradient")
            .unwrap()
            .data
            .clone()
    };
    assert_ne!(grad(GradMode::Plain), grad(GradMode::Guided));
    assert_ne!(grad(GradMode::Plain), grad(GradMode::Deconvnet));
    assert!(GradCamVariant::parse("sideways").is_err());
}
