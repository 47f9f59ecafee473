//! Fusing a convolution or a sum with the rectifier after it, or a convolution with the
//! residual sum and rectifier after it, changes no value: the fused primitives give the bits
//! of the ops they replace (fast, Winograd-forward and reference CPU kernels), and a whole
//! forward pass with every fusion gives the bits of one with none (keeping a node's output
//! turns its fusion off); so does a whole backward pass whose gradient sums are fused into
//! backward-data against one that computes weight gradients (which turns them off), and one
//! that runs a max-pool's backward and its rectifier's as one op against the trace (which
//! keeps the rectifier's gradient, so runs them apart); where another op reads the rectifier's
//! output or input, the two run apart.

use gradcam::core::{Conv2dParams, GradMode, Pool2dParams, Rectifier};
use gradcam::runtime::{BackwardSpec, GraphBuilder, NodeId, Op, RectifierRule, Stop};
use gradcam::{arch, Backend, CpuBackend, Model, Shape};
use std::collections::BTreeSet;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A torchvision architecture with seeded random weights (10 classes), batch norm folded into
/// the convolutions as the CLI runs it.
fn folded(arch_name: &str) -> gradcam::Graph {
    arch::build(arch_name, &arch::random_weights(arch_name, 10, 7).unwrap())
        .unwrap()
        .fold_batch_norm(&[])
        .unwrap()
}

/// The values' bits (so that −0 and +0 differ and a NaN equals itself).
fn bits(v: Vec<f32>) -> Vec<u32> {
    v.into_iter().map(f32::to_bits).collect()
}

#[test]
fn fused_primitives_give_the_bits_of_the_two_ops() {
    for b in [
        CpuBackend::new(),
        CpuBackend::new().with_winograd_forward(true),
        CpuBackend::reference(),
    ] {
        let up = |dims: &[usize], seed| {
            let s = Shape::from(dims);
            b.upload(&random(s.numel(), seed), s).unwrap()
        };
        let (x, w, bias) = (up(&[3, 5, 13, 11], 1), up(&[7, 5, 3, 3], 2), up(&[7], 3));
        for r in [
            Rectifier::RELU,
            Rectifier::RELU6,
            Rectifier { lo: -0.5, hi: 0.25 },
        ] {
            for p in [Conv2dParams::new(1, 1), Conv2dParams::new(2, 0)] {
                let two = b.rectifier(&b.conv2d(&x, &w, Some(&bias), &p).unwrap(), r);
                let one = b.conv2d_rectified(&x, &w, Some(&bias), &p, r);
                assert_eq!(
                    bits(b.download(&one.unwrap()).unwrap()),
                    bits(b.download(&two.unwrap()).unwrap()),
                    "{} conv {p:?} {r:?}",
                    b.name()
                );
            }
            // With a residual sum between: every path (1×1 read in place, 3×3 direct or by
            // Winograd, strided, 5×5 by im2col) on the fast and the reference kernels.
            for (ws, p) in [
                ([7, 5, 1, 1], Conv2dParams::new(1, 0)),
                ([7, 5, 3, 3], Conv2dParams::new(1, 1)),
                ([7, 5, 3, 3], Conv2dParams::new(2, 1)),
                ([7, 5, 5, 5], Conv2dParams::new(1, 2)),
            ] {
                let w = up(&ws, 6);
                let conv = b.conv2d(&x, &w, Some(&bias), &p).unwrap();
                let res = up(conv.dims(), 7);
                let three = b.add_rectified(&conv, &res, r).unwrap();
                let one = b.conv2d_add_rectified(&x, &w, Some(&bias), &p, &res, r);
                assert_eq!(
                    bits(b.download(&one.unwrap()).unwrap()),
                    bits(b.download(&three).unwrap()),
                    "{} conv + residual {ws:?} {p:?} {r:?}",
                    b.name()
                );
            }
            // A max-pool's backward through the rectifier before it: dense windows (eight at
            // a time where 3×3 or 2×2 with stride 2 fit), ceil mode, dilation.
            let mut dilated = Pool2dParams::new(3, 1, 1);
            dilated.dilation = [2, 2];
            for p in [
                Pool2dParams::new(3, 2, 1),
                Pool2dParams::new(2, 2, 0),
                Pool2dParams::new(3, 2, 0).ceil(),
                dilated,
            ] {
                let y = b.rectifier(&up(&[2, 3, 23, 37], 8), r).unwrap();
                let dy = up(b.max_pool2d(&y, &p).unwrap().dims(), 9);
                for m in [GradMode::Plain, GradMode::Guided, GradMode::Deconvnet] {
                    let two = b.max_pool2d_backward(&y, &dy, &p).unwrap();
                    let two = b.rectifier_backward(&y, &two, r, m).unwrap();
                    let one = b.max_pool2d_backward_rectified(&y, &dy, &p, r, m);
                    assert_eq!(
                        bits(b.download(&one.unwrap()).unwrap()),
                        bits(b.download(&two).unwrap()),
                        "{} max-pool {p:?} {r:?} {m:?}",
                        b.name()
                    );
                }
            }
            let (u, v) = (up(&[2, 3, 5, 7], 4), up(&[2, 3, 5, 7], 5));
            let two = b.rectifier(&b.add(&u, &v).unwrap(), r).unwrap();
            let one = b.add_rectified(&u, &v, r).unwrap();
            assert_eq!(
                bits(b.download(&one).unwrap()),
                bits(b.download(&two).unwrap())
            );
        }
    }
}

#[test]
fn a_forward_pass_with_fusions_gives_the_bits_of_one_without() {
    let g = folded("resnet18");
    let fusable: Vec<NodeId> = g
        .nodes()
        .iter()
        .enumerate()
        .filter(|(i, n)| {
            matches!(n.op, Op::Conv2d { .. } | Op::Add)
                && g.nodes()
                    .get(i + 1)
                    .is_some_and(|m| matches!(m.op, Op::Rectifier(_)))
        })
        .map(|(i, _)| NodeId(i))
        .collect();
    assert!(
        fusable.len() > 10,
        "resnet18 has conv→ReLU and add→ReLU pairs"
    );
    let cpu = CpuBackend::new();
    let m = Model::new(cpu.clone(), g).unwrap();
    let x = cpu
        .upload(&random(2 * 3 * 40 * 40, 9), Shape::new([2, 3, 40, 40]))
        .unwrap();
    let relus: BTreeSet<NodeId> = fusable.iter().map(|i| NodeId(i.0 + 1)).collect();
    let fused = m.forward(&x, &relus).unwrap();
    let all: BTreeSet<NodeId> = relus.iter().chain(&fusable).copied().collect();
    let plain = m.forward(&x, &all).unwrap();
    // Kept, the pre-activations were stored, so that pass ran every pair unfused (that the
    // other pass fused them is counted in tests/invariants.rs).
    assert!(fusable.iter().all(|&i| plain.get(i).is_ok()));
    for id in relus.iter().chain([&m.graph().output()]) {
        assert_eq!(
            bits(cpu.download(fused.get(*id).unwrap()).unwrap()),
            bits(cpu.download(plain.get(*id).unwrap()).unwrap()),
            "node {}",
            id.0
        );
    }
}

#[test]
fn a_backward_pass_with_fused_gradient_sums_gives_the_bits_of_one_without() {
    // ResNet-18's sums follow 3×3 and strided backward-data, ResNet-50's 1×1 ones (the GEMM's
    // store).
    for arch_name in ["resnet18", "resnet50"] {
        let g = folded(arch_name);
        let cpu = CpuBackend::new();
        let m = Model::new(cpu.clone(), g).unwrap();
        let x = cpu
            .upload(&random(2 * 3 * 48 * 48, 11), Shape::new([2, 3, 48, 48]))
            .unwrap();
        let spec = |weight_grads| BackwardSpec {
            from: m.graph().output(),
            stop: Stop::Input,
            rule: RectifierRule {
                mode: GradMode::Guided,
                relu_only: false,
            },
            weight_grads,
        };
        let keep = m.backward_needs(&spec(true)).unwrap();
        let acts = m.forward(&x, &keep).unwrap();
        let seed = || m.one_hot(10, &[3, 7]).unwrap();
        let fused = m.backward_trace(&acts, &spec(false), seed()).unwrap();
        let plain = m.backward_trace(&acts, &spec(true), seed()).unwrap();
        let mut compared = 0;
        for (i, (f, p)) in fused.iter().zip(&plain).enumerate() {
            assert_eq!(f.is_some(), p.is_some(), "{arch_name} node {i}");
            if let (Some(f), Some(p)) = (f, p) {
                assert_eq!(
                    bits(cpu.download(f).unwrap()),
                    bits(cpu.download(p).unwrap()),
                    "{arch_name} node {i}"
                );
                compared += 1;
            }
        }
        assert!(compared >= 40, "{arch_name}: {compared} gradients compared");
    }
}

#[test]
fn a_backward_pass_through_a_max_pool_and_its_rectifier_in_one_op_gives_the_bits_of_two() {
    let g = folded("resnet18");
    let cpu = CpuBackend::new();
    let m = Model::new(cpu.clone(), g).unwrap();
    let (pool, stem_relu) = m
        .graph()
        .nodes()
        .iter()
        .enumerate()
        .find_map(|(i, n)| matches!(n.op, Op::MaxPool(_)).then(|| (NodeId(i), n.inputs[0])))
        .expect("resnet18 has a max-pool");
    assert!(matches!(
        m.graph().nodes()[stem_relu.0].op,
        Op::Rectifier(_)
    ));
    let x = cpu
        .upload(&random(2 * 3 * 45 * 45, 12), Shape::new([2, 3, 45, 45]))
        .unwrap();
    for mode in [GradMode::Plain, GradMode::Guided, GradMode::Deconvnet] {
        // To the input the two run as one op (`backward`); the trace keeps every node's
        // gradient, the ReLU's too, so it runs them apart. Stopped at the ReLU, whose own
        // gradient is then the result, they run apart in both.
        for (stop, at) in [
            (Stop::Input, m.graph().input()),
            (Stop::At(stem_relu), stem_relu),
        ] {
            let spec = BackwardSpec {
                from: m.graph().output(),
                stop,
                rule: RectifierRule {
                    mode,
                    relu_only: false,
                },
                weight_grads: false,
            };
            let acts = m.forward(&x, &m.backward_needs(&spec).unwrap()).unwrap();
            let seed = || m.one_hot(10, &[3, 7]).unwrap();
            let one = m.backward(&acts, &spec, seed()).unwrap().at_stop;
            let trace = m.backward_trace(&acts, &spec, seed()).unwrap();
            let two = trace[at.0].as_ref().expect("traced");
            assert!(trace[pool.0].is_some() && trace[stem_relu.0].is_some());
            assert_eq!(
                bits(cpu.download(&one).unwrap()),
                bits(cpu.download(two).unwrap()),
                "{mode:?} {stop:?}"
            );
            // What ran: to the input, the pool and the stem's ReLU as one op and every other
            // ReLU alone; stopped at the stem's ReLU, the pool alone and no ReLU twice.
            let ran = m.backward_profile(&acts, &spec, seed()).unwrap();
            let count = |label: &str| ran.iter().filter(|(l, _)| l == label).count();
            let relus = m
                .graph()
                .nodes()
                .iter()
                .filter(|n| matches!(n.op, Op::Rectifier(_)))
                .count();
            let fused = usize::from(stop == Stop::Input);
            assert_eq!(count("backward MaxPool+Rectifier"), fused, "{stop:?}");
            assert_eq!(count("backward MaxPool"), 1 - fused, "{stop:?}");
            assert_eq!(count("backward Rectifier"), relus - 1, "{stop:?}");
        }
    }
}

/// A small network whose ReLU feeds a 2×2 max-pool, in three shapes: the ReLU read only by
/// the pool (`0`), also by an average pool beside it (`1`), or the convolution before the ReLU
/// also read by that average pool (`2`); the branches summed, then the classifier.
fn pool_after_relu(shape: usize) -> gradcam::Graph {
    let tensor = |dims: &[usize], seed| {
        let v = random(dims.iter().product(), seed);
        gradcam::HostTensor::new(dims.to_vec(), v).unwrap()
    };
    let mut b = GraphBuilder::new(3);
    let x = b.input();
    let c = b
        .conv2d(
            "conv",
            x,
            tensor(&[4, 3, 3, 3], 21),
            None,
            Conv2dParams::new(1, 1),
        )
        .unwrap();
    let r = b.relu("relu", c).unwrap();
    let p = Pool2dParams::new(2, 2, 0);
    let m = b.max_pool("maxpool", r, p).unwrap();
    let out = match shape {
        0 => m,
        _ => {
            let beside = b.avg_pool("avgpool", [r, c][shape - 1], p).unwrap();
            b.add("sum", m, beside).unwrap()
        }
    };
    let g = b.global_avg_pool("gap", out).unwrap();
    let f = b.flatten("flatten", g).unwrap();
    let y = b.linear("fc", f, tensor(&[5, 4], 22), None).unwrap();
    b.build(y).unwrap()
}

#[test]
fn a_max_pool_and_its_rectifier_run_apart_where_another_op_reads_either() {
    for (shape, fused) in [(0, 1), (1, 0), (2, 0)] {
        let cpu = CpuBackend::new();
        let m = Model::new(cpu.clone(), pool_after_relu(shape)).unwrap();
        let x = cpu
            .upload(&random(2 * 3 * 11 * 13, 23), Shape::new([2, 3, 11, 13]))
            .unwrap();
        let spec = BackwardSpec {
            from: m.graph().output(),
            stop: Stop::Input,
            rule: RectifierRule {
                mode: GradMode::Guided,
                relu_only: false,
            },
            weight_grads: false,
        };
        let acts = m.forward(&x, &m.backward_needs(&spec).unwrap()).unwrap();
        let seed = || m.one_hot(5, &[1, 4]).unwrap();
        let ran = m.backward_profile(&acts, &spec, seed()).unwrap();
        let count = |label: &str| ran.iter().filter(|(l, _)| l == label).count();
        assert_eq!(count("backward MaxPool+Rectifier"), fused, "shape {shape}");
        assert_eq!(count("backward Rectifier"), 1 - fused, "shape {shape}");
        let one = m.backward(&acts, &spec, seed()).unwrap().at_stop;
        let trace = m.backward_trace(&acts, &spec, seed()).unwrap();
        let two = trace[m.graph().input().0].as_ref().expect("traced");
        let one = bits(cpu.download(&one).unwrap());
        assert!(
            one.iter().any(|&v| f32::from_bits(v) != 0.0),
            "shape {shape}"
        );
        assert_eq!(one, bits(cpu.download(two).unwrap()), "shape {shape}");
    }
}
