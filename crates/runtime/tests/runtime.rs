//! Forward and backward semantics on the reference models: batch-norm folding, seeds at any
//! node, stopping anywhere, softmax seeds, and weight gradients when asked.

use gradcam_core::{Backend, GradMode, HostTensor, Shape};
use gradcam_cpu::CpuBackend;
use gradcam_runtime::{arch, BackwardSpec, Graph, Model, Op, RectifierRule, Stop, Weights};
use std::collections::BTreeSet;

fn fixture(case: &str, file: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/fixtures")
        .join(case)
        .join(file)
}

fn graph(case: &str, arch_name: &str) -> Graph {
    arch::build(
        arch_name,
        &Weights::open(fixture(case, "weights.safetensors")).unwrap(),
    )
    .unwrap()
}

fn input(case: &str) -> HostTensor {
    Weights::open(fixture(case, "reference.safetensors"))
        .unwrap()
        .get("input")
        .unwrap()
}

fn logits(model: &Model<CpuBackend>, x: &HostTensor) -> Vec<f32> {
    let t = model.upload_input(x).unwrap();
    let acts = model.forward(&t, &BTreeSet::new()).unwrap();
    model
        .backend()
        .download(acts.get(model.graph().output()).unwrap())
        .unwrap()
}

fn rel(a: &[f32], b: &[f32]) -> f64 {
    let n: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let d: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (n / d).sqrt()
}

#[test]
fn folding_batch_norm_keeps_the_logits() {
    for (case, name) in [
        ("mini_resnet", "resnet"),
        ("mobilenet_v2_035", "mobilenet_v2"),
    ] {
        let g = graph(case, name);
        let folded = g.fold_batch_norm(&[]).unwrap();
        let bn = |g: &Graph| {
            g.nodes()
                .iter()
                .filter(|n| matches!(n.op, Op::BatchNorm { .. }))
                .count()
        };
        assert!(bn(&g) > 0);
        assert_eq!(bn(&folded), 0, "{case}: every batch norm follows a conv");
        let x = input(case);
        let a = logits(&Model::new(CpuBackend::new(), g.clone()).unwrap(), &x);
        let b = logits(&Model::new(CpuBackend::new(), folded).unwrap(), &x);
        assert!(rel(&b, &a) < 1e-5, "{case}: {}", rel(&b, &a));
        // A protected conv keeps its own output and its batch norm.
        let conv = g
            .find("layer4.1.conv2")
            .or_else(|_| g.find("features.18.0"))
            .unwrap();
        let kept = g.fold_batch_norm(&[conv]).unwrap();
        assert_eq!(bn(&kept), 1);
        assert!(kept.find(&g.node(conv).name).is_ok());
    }
}

#[test]
fn backward_chains_through_any_seed_and_stop() {
    let model = Model::new(CpuBackend::new(), graph("mini_resnet", "resnet")).unwrap();
    let g = model.graph();
    let x = model.upload_input(&input("mini_resnet")).unwrap();
    let target = g.find("layer3.1").unwrap();
    let plain = |from, stop| BackwardSpec {
        from,
        stop,
        rule: RectifierRule::default(),
        weight_grads: false,
    };
    let full = plain(g.output(), Stop::Input);
    let to_target = plain(g.output(), Stop::At(target));
    let from_target = plain(target, Stop::Input);
    let mut keep = model.backward_needs(&full).unwrap();
    keep.insert(target);
    let acts = model.forward(&x, &keep).unwrap();
    let seed = model.one_hot(10, &[9, 5]).unwrap();
    let direct = model.backward(&acts, &full, seed.clone()).unwrap().at_stop;
    let g_target = model.backward(&acts, &to_target, seed).unwrap().at_stop;
    assert_eq!(g_target.shape(), acts.get(target).unwrap().shape());
    let chained = model
        .backward(&acts, &from_target, g_target)
        .unwrap()
        .at_stop;
    let b = model.backend();
    assert!(
        rel(
            &b.download(&chained).unwrap(),
            &b.download(&direct).unwrap()
        ) < 1e-6
    );
    // A layer that does not lead to the seed node is refused.
    let later = g.find("layer4.0").unwrap();
    assert!(model
        .backward_needs(&plain(target, Stop::At(later)))
        .is_err());
}

#[test]
fn softmax_seed_is_the_softmax_gradient() {
    let model = Model::new(CpuBackend::new(), graph("mini_resnet", "resnet")).unwrap();
    let b = model.backend();
    let l = vec![0.5f32, -1.0, 2.0, 0.0, 1.0, 1.0];
    let t = b.upload(&l, Shape::new([2, 3])).unwrap();
    let seed = b
        .download(&model.softmax_seed(&t, &[2, 0]).unwrap())
        .unwrap();
    for (r, c) in [(0usize, 2usize), (1, 0)] {
        let row = &l[r * 3..r * 3 + 3];
        let e: Vec<f64> = row.iter().map(|v| (*v as f64).exp()).collect();
        let s: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|v| v / s).collect();
        for j in 0..3 {
            let expect = p[c] * ((j == c) as u8 as f64 - p[j]);
            assert!(
                (seed[r * 3 + j] as f64 - expect).abs() < 1e-6,
                "row {r} col {j}"
            );
        }
    }
    assert!(model.softmax_seed(&t, &[0]).is_err());
}

#[test]
fn weight_gradients_only_when_asked() {
    let model = Model::new(CpuBackend::new(), graph("mini_resnet", "resnet")).unwrap();
    let g = model.graph();
    let x = input("mini_resnet");
    let spec = |weight_grads| BackwardSpec {
        from: g.output(),
        stop: Stop::Input,
        rule: RectifierRule::default(),
        weight_grads,
    };
    let xt = model.upload_input(&x).unwrap();
    let acts = model
        .forward(&xt, &model.backward_needs(&spec(true)).unwrap())
        .unwrap();
    let seed = model.one_hot(10, &[9, 5]).unwrap();
    let none = model.backward(&acts, &spec(false), seed.clone()).unwrap();
    assert!(none.params.iter().all(|p| p.is_none()));
    let grads = model.backward(&acts, &spec(true), seed).unwrap();
    // Check the fc weight gradient against central differences of the class scores.
    let Op::Linear { weight, .. } = &g.node(g.output()).op else {
        panic!()
    };
    let dw = model
        .backend()
        .download(grads.params[weight.0].as_ref().unwrap())
        .unwrap();
    let score = |g: &Graph| {
        let l = logits(&Model::new(CpuBackend::new(), g.clone()).unwrap(), &x);
        (l[9] + l[10 + 5]) as f64
    };
    for idx in [9 * 128 + 3, 5 * 128 + 77, 0] {
        let mut plus = g.clone();
        let mut minus = g.clone();
        let h = 1e-2f32;
        param_mut(&mut plus, weight.0).data[idx] += h;
        param_mut(&mut minus, weight.0).data[idx] -= h;
        let num = (score(&plus) - score(&minus)) / (2.0 * h as f64);
        assert!(
            (num - dw[idx] as f64).abs() < 1e-3,
            "fc.weight[{idx}]: {num} vs {}",
            dw[idx]
        );
    }
    // Guided mode on the same graph changes the input gradient, not the forward.
    let guided = BackwardSpec {
        rule: RectifierRule {
            mode: GradMode::Guided,
            relu_only: false,
        },
        ..spec(false)
    };
    let gb = model
        .backward(&acts, &guided, model.one_hot(10, &[9, 5]).unwrap())
        .unwrap()
        .at_stop;
    assert_eq!(gb.shape(), xt.shape());
}

fn param_mut(g: &mut Graph, i: usize) -> &mut HostTensor {
    g.param_mut(i)
}

/// The default target is the spatial tensor the classifier head pools: not a
/// squeeze-and-excitation block's pooled input, through a concat-pooling head (max and average
/// side by side), and back past a 1×1-convolution classifier on a 7×7 average pool.
#[test]
fn default_target_finds_the_head_pooling() {
    use gradcam_core::{Activation, Conv2dParams, Pool2dParams};
    use gradcam_runtime::GraphBuilder;
    let w =
        |dims: &[usize]| HostTensor::new(dims.to_vec(), vec![0.1; dims.iter().product()]).unwrap();
    let stem = |b: &mut GraphBuilder| {
        let x = b.input();
        let c = b
            .conv2d("conv", x, w(&[4, 3, 3, 3]), None, Conv2dParams::new(1, 1))
            .unwrap();
        b.relu("relu", c).unwrap()
    };
    let target = |g: &Graph| g.node(g.default_target().unwrap()).name.clone();

    // Squeeze and excitation, then the head.
    let mut b = GraphBuilder::new(3);
    let r = stem(&mut b);
    let p = b.global_avg_pool("se.pool", r).unwrap();
    let e = b
        .conv2d("se.fc", p, w(&[4, 4, 1, 1]), None, Conv2dParams::new(1, 0))
        .unwrap();
    let s = b.activation("se.gate", e, Activation::Sigmoid).unwrap();
    let m = b.mul("se.scale", r, s).unwrap();
    let hp = b.global_avg_pool("pool", m).unwrap();
    let f = b.flatten("flat", hp).unwrap();
    let y = b.linear("fc", f, w(&[5, 4]), None).unwrap();
    assert_eq!(target(&b.build(y).unwrap()), "se.scale");

    // Concat pooling: a full-window max pool beside the global average.
    let mut b = GraphBuilder::new(3);
    let r = stem(&mut b);
    let mx = b
        .max_pool("maxpool", r, Pool2dParams::new(8, 8, 0))
        .unwrap();
    let av = b.global_avg_pool("avgpool", r).unwrap();
    let cat = b.concat("cat", &[mx, av]).unwrap();
    let f = b.flatten("flat", cat).unwrap();
    let y = b.linear("fc", f, w(&[5, 8]), None).unwrap();
    assert_eq!(target(&b.build(y).unwrap()), "relu");

    // A 7×7 average pool, then a 1×1 convolution as the classifier, flattened.
    let mut b = GraphBuilder::new(3);
    let r = stem(&mut b);
    let ap = b.avg_pool("pool", r, Pool2dParams::new(7, 1, 0)).unwrap();
    let cls = b
        .conv2d(
            "classifier",
            ap,
            w(&[5, 4, 1, 1]),
            None,
            Conv2dParams::new(1, 0),
        )
        .unwrap();
    let f = b.flatten("flat", cls).unwrap();
    assert_eq!(target(&b.build_any(f).unwrap()), "relu");
}
