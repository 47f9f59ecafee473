//! PRelu, Pad, GlobalMaxPool, Sum, Sub of two tensors, ConstantOfShape, transposed constants and
//! a 2-D input, each against a host computation; and the errors for what they do not cover.

use gradcam_core::{Backend, Shape};
mod common;

use common::{int_attr, ints, ints_attr, model, node, run, tensor, with};
use gradcam_onnx::proto::*;

#[test]
fn prelu_asymmetric_constant_pad_and_global_max_pool() {
    let (h, w) = (3usize, 4usize);
    let slope = [0.25f32, -0.5, 2.0];
    // Pad rows 1 above and 2 below, columns 2 on the left, by 0.75.
    let pads = vec![0, 0, 1, 2, 0, 0, 2, 0];
    let bytes = model(
        vec![
            node("PRelu", &["x", "slope"], "act"),
            node("Pad", &["act", "pads", "value"], "padded"),
            node("GlobalMaxPool", &["padded"], "y"),
        ],
        vec![
            tensor("slope", &[3, 1, 1], slope.to_vec()),
            ints("pads", pads),
            tensor("value", &[], vec![0.75]),
        ],
        &[1, 3, h as i64, w as i64],
        "y",
    );
    let x: Vec<f32> = (0..3 * h * w)
        .map(|i| (i as f32 * 0.7).sin() * 2.0)
        .collect();
    let got = run(&bytes, &x, [1, 3, h, w]);
    // Host: PReLU per channel, then the max over the plane and the pad value.
    for c in 0..3 {
        let want = x[c * h * w..(c + 1) * h * w]
            .iter()
            .map(|&v| if v > 0.0 { v } else { slope[c] * v })
            .fold(0.75f32, f32::max);
        assert!(
            (got[c] - want).abs() < 1e-6,
            "channel {c}: {} vs {want}",
            got[c]
        );
    }
    // The padded tensor itself: shape and placement.
    let g = gradcam_onnx::from_bytes_any_output(&bytes, None).unwrap();
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), g).unwrap();
    let id = m.graph().find("padded").unwrap();
    let acts = m
        .forward(
            &cpu.upload(&x, Shape::new([1, 3, h, w])).unwrap(),
            &[id].into_iter().collect(),
        )
        .unwrap();
    let p = acts.get(id).unwrap();
    assert_eq!(p.shape().dims(), &[1, 3, h + 3, w + 2]);
    let pv = cpu.download(p).unwrap();
    for c in 0..3 {
        for y in 0..h + 3 {
            for xx in 0..w + 2 {
                let inside = (1..=h).contains(&y) && xx >= 2;
                let want = if inside {
                    let v = x[c * h * w + (y - 1) * w + xx - 2];
                    if v > 0.0 {
                        v
                    } else {
                        slope[c] * v
                    }
                } else {
                    0.75
                };
                let got = pv[(c * (h + 3) + y) * (w + 2) + xx];
                assert!((got - want).abs() < 1e-6, "({c},{y},{xx}): {got} vs {want}");
            }
        }
    }
}

#[test]
fn sum_sub_constant_of_shape_and_a_transposed_weight_on_a_2d_input() {
    let wt: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect(); // [3, 4]
    let value = TensorProto {
        dims: vec![1],
        data_type: Some(1),
        float_data: vec![2.0],
        ..Default::default()
    };
    let bytes = model(
        vec![
            node("Relu", &["x"], "r"),
            node("Sum", &["x", "r", "x"], "s"),
            node("Sub", &["s", "r"], "d"),
            with(
                node("ConstantOfShape", &["one"], "two"),
                AttributeProto {
                    name: Some("value".into()),
                    t: Some(value),
                    ..Default::default()
                },
            ),
            node("Add", &["d", "two"], "e"),
            with(
                node("Transpose", &["w"], "wt"),
                AttributeProto {
                    name: Some("perm".into()),
                    ints: vec![1, 0],
                    ..Default::default()
                },
            ),
            node("MatMul", &["e", "wt"], "y"),
        ],
        vec![ints("one", vec![1]), tensor("w", &[3, 4], wt.clone())],
        &[0, 4],
        "y",
    );
    let x: Vec<f32> = (0..8).map(|i| (i as f32 * 1.3).cos()).collect();
    let got = run(&bytes, &x, [2, 4, 1, 1]);
    assert_eq!(got.len(), 6);
    for n in 0..2 {
        for o in 0..3 {
            // x + relu(x) + x − relu(x) + 2 = 2x + 2, then · wᵀ.
            let want: f32 = (0..4)
                .map(|i| (2.0 * x[n * 4 + i] + 2.0) * wt[o * 4 + i])
                .sum();
            let g = got[n * 3 + o];
            assert!((g - want).abs() < 1e-5, "({n},{o}): {g} vs {want}");
        }
    }
}

#[test]
fn pads_and_pools_beyond_the_supported_are_errors() {
    let pad = |mode: &str, pads: Vec<i64>| {
        model(
            vec![with(
                node("Pad", &["x", "pads"], "y"),
                AttributeProto {
                    name: Some("mode".into()),
                    s: Some(mode.as_bytes().to_vec()),
                    ..Default::default()
                },
            )],
            vec![ints("pads", pads)],
            &[1, 3, 4, 4],
            "y",
        )
    };
    let e = |b: Vec<u8>| {
        gradcam_onnx::from_bytes_any_output(&b, None)
            .expect_err("an error")
            .to_string()
    };
    assert!(e(pad("reflect", vec![0, 0, 1, 1, 0, 0, 1, 1])).contains("reflect"));
    assert!(e(pad("constant", vec![0, 0, -1, 0, 0, 0, 0, 0])).contains("crop"));
    assert!(e(pad("constant", vec![0, 1, 0, 0, 0, 0, 0, 0])).contains("spatial"));
    assert!(e(pad("constant", vec![0, 0, 1])).contains("pads"));
    let gmp = model(
        vec![node("GlobalMaxPool", &["x"], "y")],
        vec![],
        &[1, 3, 0, 0],
        "y",
    );
    assert!(e(gmp).contains("fixed"));
}

/// A constant first operand does not decide a result's rank, a rank-3 pad pads the length,
/// and a mean over axis −1 of `[n, c, l]` is over the length (not the runtime's unit axis).
#[test]
fn ranks_follow_the_computed_operand_on_a_3d_input() {
    let bytes = model(
        vec![
            node("Sub", &["one", "x"], "d"),
            node("Pad", &["d", "pads"], "p"),
            with(
                with(
                    node("ReduceMean", &["p"], "y"),
                    AttributeProto {
                        name: Some("axes".into()),
                        ints: vec![-1],
                        ..Default::default()
                    },
                ),
                AttributeProto {
                    name: Some("keepdims".into()),
                    i: Some(1),
                    ..Default::default()
                },
            ),
        ],
        vec![
            tensor("one", &[], vec![1.0]),
            ints("pads", vec![0, 0, 2, 0, 0, 1]),
        ],
        &[1, 3, 5],
        "y",
    );
    let x: Vec<f32> = (0..15).map(|i| (i as f32 * 0.9).sin()).collect();
    let got = run(&bytes, &x, [1, 3, 5, 1]);
    assert_eq!(got.len(), 3);
    for c in 0..3 {
        let want: f32 = x[c * 5..(c + 1) * 5].iter().map(|v| 1.0 - v).sum::<f32>() / 8.0;
        assert!(
            (got[c] - want).abs() < 1e-6,
            "channel {c}: {} vs {want}",
            got[c]
        );
    }
    // Eight pads are for a rank-4 tensor, not this one; a bound value must fill its shape.
    let bad = model(
        vec![node("Pad", &["x", "pads"], "y")],
        vec![ints("pads", vec![0, 0, 1, 1, 0, 0, 1, 1])],
        &[1, 3, 5],
        "y",
    );
    assert!(gradcam_onnx::from_bytes_any_output(&bad, None).is_err());
    let t = gradcam_core::HostTensor {
        shape: Shape::new([2, 3]),
        data: vec![0.0; 5],
    };
    assert!(gradcam_onnx::from_bytes_bound(&bytes, None, &[t]).is_err());
}

/// Products of computed tensors: a swish (`x·sigmoid(x)`) and a squeeze-and-excitation gate
/// (`x·sigmoid(conv1x1(gap(x)))`, the gate first) and quotients, against host computations; a
/// spatial gate and operands of different ranks are errors.
#[test]
fn swish_and_squeeze_excitation_products() {
    let (c, h, w) = (3usize, 4usize, 5usize);
    let wg: Vec<f32> = (0..c * c).map(|i| (i as f32 * 0.7).sin()).collect();
    let bg = vec![0.1f32, -0.2, 0.3];
    let bytes = model(
        vec![
            node("Sigmoid", &["x"], "s"),
            node("Mul", &["x", "s"], "sw"),
            node("GlobalAveragePool", &["sw"], "p"),
            node("Conv", &["p", "wg", "bg"], "e"),
            node("Sigmoid", &["e"], "g"),
            node("Mul", &["g", "sw"], "y"),
        ],
        vec![
            tensor("wg", &[c as i64, c as i64, 1, 1], wg.clone()),
            tensor("bg", &[c as i64], bg.clone()),
        ],
        &[0, c as i64, h as i64, w as i64],
        "y",
    );
    let plane = h * w;
    let x: Vec<f32> = (0..2 * c * plane)
        .map(|i| (i as f32 * 0.37).cos() * 2.0)
        .collect();
    let got = run(&bytes, &x, [2, c, h, w]);
    let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
    for n in 0..2 {
        let sw: Vec<f32> = (0..c * plane)
            .map(|i| x[n * c * plane + i] * sig(x[n * c * plane + i]))
            .collect();
        let pooled: Vec<f32> = (0..c)
            .map(|k| sw[k * plane..(k + 1) * plane].iter().sum::<f32>() / plane as f32)
            .collect();
        for k in 0..c {
            let e: f32 = bg[k] + (0..c).map(|j| wg[k * c + j] * pooled[j]).sum::<f32>();
            for q in 0..plane {
                let want = sw[k * plane + q] * sig(e);
                let g = got[(n * c + k) * plane + q];
                assert!((g - want).abs() < 1e-5, "({n},{k},{q}): {g} vs {want}");
            }
        }
    }
    let e = |nodes: Vec<NodeProto>, input: &[i64]| {
        gradcam_onnx::from_bytes_any_output(&model(nodes, vec![], input, "y"), None)
            .expect_err("an error")
            .to_string()
    };
    // Quotients: x / sigmoid(x) = x·(1 + e⁻ˣ), and 2 / sigmoid(x) = 2·(1 + e⁻ˣ).
    let quotient = model(
        vec![
            node("Sigmoid", &["x"], "s"),
            node("Div", &["x", "s"], "q"),
            node("Div", &["two", "s"], "r"),
            node("Add", &["q", "r"], "y"),
        ],
        vec![tensor("two", &[], vec![2.0])],
        &[1, 3, 2, 2],
        "y",
    );
    let xq: Vec<f32> = (0..12).map(|i| i as f32 * 0.4 - 2.0).collect();
    let got = run(&quotient, &xq, [1, 3, 2, 2]);
    for (g, v) in got.iter().zip(&xq) {
        let want = (v + 2.0) * (1.0 + (-v).exp());
        assert!(
            (g - want).abs() < 1e-5 * want.abs().max(1.0),
            "{g} vs {want}"
        );
    }
    // A spatial gate [n, 1, h, w] has one channel, not the tensor's three.
    let spatial = vec![
        node("ReduceMean", &["x"], "m"),
        node("Mul", &["x", "m"], "y"),
    ];
    let spatial = spatial
        .into_iter()
        .map(|n| {
            if n.op_type.as_deref() == Some("ReduceMean") {
                with(
                    n,
                    AttributeProto {
                        name: Some("axes".into()),
                        ints: vec![1],
                        ..Default::default()
                    },
                )
            } else {
                n
            }
        })
        .collect();
    let msg = e(spatial, &[1, 3, 4, 4]);
    assert!(msg.contains("channels") || msg.contains("mean"), "{msg}");
    // [n, c] by [n, c, h, w]: ONNX would align c with h, not a per-channel gate.
    let ranks = vec![
        node("GlobalAveragePool", &["x"], "p"),
        node("Flatten", &["p"], "f"),
        node("Mul", &["x", "f"], "y"),
    ];
    assert!(e(ranks, &[1, 3, 4, 4]).contains("ranks"));
}

/// Caffe-era graphs: LRN, a max pool whose pads end one stride short (Caffe's ceil mode), and a
/// classifier ending in a 1×1 convolution and a softmax, which explanations leave out (they
/// seed the raw scores), against host computations.
#[test]
fn lrn_caffe_pool_pads_and_a_trailing_softmax() {
    let (c, h) = (6usize, 6usize);
    let bytes = model(
        vec![
            with(
                with(
                    with(
                        node("LRN", &["x"], "n"),
                        AttributeProto {
                            name: Some("size".into()),
                            i: Some(3),
                            ..Default::default()
                        },
                    ),
                    AttributeProto {
                        name: Some("alpha".into()),
                        f: Some(0.2),
                        ..Default::default()
                    },
                ),
                AttributeProto {
                    name: Some("bias".into()),
                    f: Some(1.5),
                    ..Default::default()
                },
            ),
            with(
                with(
                    with(
                        node("MaxPool", &["n"], "y"),
                        AttributeProto {
                            name: Some("kernel_shape".into()),
                            ints: vec![3, 3],
                            ..Default::default()
                        },
                    ),
                    AttributeProto {
                        name: Some("strides".into()),
                        ints: vec![2, 2],
                        ..Default::default()
                    },
                ),
                AttributeProto {
                    name: Some("pads".into()),
                    ints: vec![0, 0, 1, 1],
                    ..Default::default()
                },
            ),
        ],
        vec![],
        &[1, c as i64, h as i64, h as i64],
        "y",
    );
    let x: Vec<f32> = (0..c * h * h)
        .map(|i| (i as f32 * 0.61).sin() * 3.0)
        .collect();
    let got = run(&bytes, &x, [1, c, h, h]);
    // LRN: window [ch − 1, ch + 1], α/size = 0.2/3, β = 0.75, bias 1.5.
    let plane = h * h;
    let lrn: Vec<f32> = (0..c * plane)
        .map(|i| {
            let (ch, q) = (i / plane, i % plane);
            let s: f32 = (ch.saturating_sub(1)..=(ch + 1).min(c - 1))
                .map(|j| x[j * plane + q].powi(2))
                .sum();
            x[i] / (1.5 + 0.2 / 3.0 * s).powf(0.75)
        })
        .collect();
    // Max pool 3×3, stride 2, padding 0 before and 1 after: (6 + 1 − 3)/2 + 1 = 3 outputs a
    // side, the last window reaching into the padding.
    assert_eq!(got.len(), c * 9);
    for ch in 0..c {
        for (oy, ox) in (0..3).flat_map(|a| (0..3).map(move |b| (a, b))) {
            let mut m = f32::NEG_INFINITY;
            for (ky, kx) in (0..3).flat_map(|a| (0..3).map(move |b| (a, b))) {
                let (iy, ix) = (oy * 2 + ky, ox * 2 + kx);
                if iy < h && ix < h {
                    m = m.max(lrn[ch * plane + iy * h + ix]);
                }
            }
            let g = got[ch * 9 + oy * 3 + ox];
            assert!((g - m).abs() < 1e-5, "({ch},{oy},{ox}): {g} vs {m}");
        }
    }

    // GlobalAveragePool → 1×1 Conv (4 → 3) → Softmax: explained as the conv's scores.
    let w: Vec<f32> = (0..12).map(|i| i as f32 * 0.1 - 0.5).collect();
    let bytes = model(
        vec![
            node("GlobalAveragePool", &["x"], "p"),
            node("Conv", &["p", "w"], "s"),
            node("Softmax", &["s"], "y"),
        ],
        vec![tensor("w", &[3, 4, 1, 1], w.clone())],
        &[0, 4, 3, 3],
        "y",
    );
    let g = gradcam_onnx::from_bytes(&bytes, None).unwrap();
    assert_eq!(g.nodes().last().unwrap().op.kind(), "flatten");
    let x: Vec<f32> = (0..72).map(|i| (i as f32 * 0.3).cos()).collect();
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), g).unwrap();
    let acts = m
        .forward(
            &cpu.upload(&x, Shape::new([2, 4, 3, 3])).unwrap(),
            &Default::default(),
        )
        .unwrap();
    let y = cpu.download(acts.get(m.graph().output()).unwrap()).unwrap();
    assert_eq!(y.len(), 6);
    for n in 0..2 {
        let pooled: Vec<f32> = (0..4)
            .map(|k| x[(n * 4 + k) * 9..(n * 4 + k + 1) * 9].iter().sum::<f32>() / 9.0)
            .collect();
        for o in 0..3 {
            let want: f32 = (0..4).map(|k| w[o * 4 + k] * pooled[k]).sum();
            assert!((y[n * 3 + o] - want).abs() < 1e-5, "raw score, not softmax");
        }
    }
}

/// An even LRN window leans up: ONNX's `[c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉]`, here [c − 1, c + 2].
#[test]
fn lrn_even_window_direction() {
    let (c, plane) = (5usize, 4usize);
    let bytes = model(
        vec![with(
            node("LRN", &["x"], "y"),
            AttributeProto {
                name: Some("size".into()),
                i: Some(4),
                ..Default::default()
            },
        )],
        vec![],
        &[1, c as i64, 2, 2],
        "y",
    );
    let x: Vec<f32> = (0..c * plane)
        .map(|i| (i as f32 * 0.9).sin() * 40.0)
        .collect();
    let got = run(&bytes, &x, [1, c, 2, 2]);
    for i in 0..c * plane {
        let (ch, q) = (i / plane, i % plane);
        let s: f32 = (ch.saturating_sub(1)..=(ch + 2).min(c - 1))
            .map(|j| x[j * plane + q].powi(2))
            .sum();
        let want = x[i] / (1.0 + 1e-4 / 4.0 * s).powf(0.75);
        assert!(
            (got[i] - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{i}: {} vs {want}",
            got[i]
        );
    }
}

/// What the channel split and shuffle translations do not cover is an error, not a wrong graph.
#[test]
fn slices_and_shuffles_beyond_the_supported_are_errors() {
    let e = |nodes: Vec<NodeProto>, init: Vec<TensorProto>| {
        gradcam_onnx::from_bytes_any_output(&model(nodes, init, &[1, 4, 3, 3], "y"), None)
            .expect_err("an error")
            .to_string()
    };
    // A slice along the height, and one with step 2.
    let slice = |axes: i64, step: i64| {
        e(
            vec![node("Slice", &["x", "s", "t", "a", "p"], "y")],
            vec![
                ints("s", vec![0]),
                ints("t", vec![2]),
                ints("a", vec![axes]),
                ints("p", vec![step]),
            ],
        )
    };
    assert!(slice(2, 1).contains("axis 1"));
    assert!(slice(1, 2).contains("step 1"));
    // A rank-5 view used other than as a shuffle: transposed another way, or read directly.
    let view = ints("v", vec![1, 2, 2, 3, 3]);
    let other = e(
        vec![
            node("Reshape", &["x", "v"], "g"),
            with(
                node("Transpose", &["g"], "y"),
                AttributeProto {
                    name: Some("perm".into()),
                    ints: vec![0, 1, 2, 4, 3],
                    ..Default::default()
                },
            ),
        ],
        vec![view.clone()],
    );
    assert!(other.contains("permutation"), "{other}");
    let read = e(
        vec![node("Reshape", &["x", "v"], "g"), node("Relu", &["g"], "y")],
        vec![view],
    );
    assert!(read.contains("channel shuffle"), "{read}");
}

/// Hostile split sizes and group counts are errors, not panics or wrong graphs; a Transpose
/// without `perm` reverses the axes (so it is not taken for the identity); a float Cast makes
/// the shape arithmetic after it divide as floats.
#[test]
fn split_and_shuffle_sizes_are_checked() {
    let e = |nodes: Vec<NodeProto>, init: Vec<TensorProto>| {
        gradcam_onnx::from_bytes_any_output(&model(nodes, init, &[1, 4, 3, 3], "y"), None)
            .expect_err("an error")
            .to_string()
    };
    // Split into two outputs by the sizes in `s`.
    let split = || {
        let mut n = node("Split", &["x", "s"], "y");
        n.output.push("z".into());
        with(
            n,
            AttributeProto {
                name: Some("axis".into()),
                i: Some(1),
                ..Default::default()
            },
        )
    };
    let huge = 1i64 << 62;
    assert!(e(vec![split()], vec![ints("s", vec![huge, huge])]).contains("split sizes"));
    assert!(e(vec![split()], vec![ints("s", vec![1, 2])]).contains("split sizes"));
    // g · c/g wrapping around to c.
    let wrap = e(
        vec![
            node("Reshape", &["x", "v"], "g"),
            with(
                node("Transpose", &["g"], "t"),
                AttributeProto {
                    name: Some("perm".into()),
                    ints: vec![0, 2, 1, 3, 4],
                    ..Default::default()
                },
            ),
            node("Reshape", &["t", "w"], "y"),
        ],
        vec![
            ints("v", vec![1, (1 << 62) + 1, 4, 3, 3]),
            ints("w", vec![1, 4, 3, 3]),
        ],
    );
    assert!(wrap.contains("reshape"), "{wrap}");
    assert!(e(vec![node("Transpose", &["x"], "y")], vec![]).contains("permutation"));
}

/// A Gemm whose C is computed (`addmm` chained) is the product plus C; with β ≠ 1 an error.
#[test]
fn gemm_with_a_computed_c() {
    let wt: Vec<f32> = (0..12).map(|i| i as f32 * 0.1 - 0.4).collect(); // [4, 3]
    let gemm = |beta: f32| {
        model(
            vec![
                node("Relu", &["x"], "r"),
                with(
                    node("Gemm", &["x", "w", "r"], "y"),
                    AttributeProto {
                        name: Some("beta".into()),
                        f: Some(beta),
                        ..Default::default()
                    },
                ),
            ],
            vec![tensor("w", &[4, 3], wt.clone())],
            &[0, 4],
            "y",
        )
    };
    // x [2, 4] · w [4, 3] + relu(x) [2, 4]: C must have the product's shape, a shape error
    // when it runs.
    let g = gradcam_onnx::from_bytes_any_output(&gemm(1.0), None).unwrap();
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), g).unwrap();
    let x = cpu.upload(&[0.5; 8], Shape::new([2, 4, 1, 1])).unwrap();
    let e = m
        .forward(&x, &Default::default())
        .err()
        .expect("a shape error");
    assert!(e.to_string().contains("add"), "{e}");
    let square: Vec<f32> = (0..16).map(|i| (i as f32 * 0.7).sin()).collect(); // [4, 4]
    let bytes = model(
        vec![
            node("Relu", &["x"], "r"),
            node("Gemm", &["x", "w", "r"], "y"),
        ],
        vec![tensor("w", &[4, 4], square.clone())],
        &[0, 4],
        "y",
    );
    let x: Vec<f32> = (0..8).map(|i| (i as f32 * 1.1).cos()).collect();
    let got = run(&bytes, &x, [2, 4, 1, 1]);
    for n in 0..2 {
        for o in 0..4 {
            let want: f32 = (0..4)
                .map(|i| x[n * 4 + i] * square[i * 4 + o])
                .sum::<f32>()
                + x[n * 4 + o].max(0.0);
            assert!((got[n * 4 + o] - want).abs() < 1e-5, "({n},{o})");
        }
    }
    let beta = gradcam_onnx::from_bytes_any_output(&gemm(0.5), None).unwrap_err();
    assert!(beta.to_string().contains("beta"), "{beta}");
}

/// Regressions from the structural mutation fuzzer (`tests/mutations.rs`): arithmetic on an
/// empty constant indexed past its end; an axis of `i64::MAX` overflowed when normalised.
#[test]
fn fuzzer_regressions() {
    let e = |nodes: Vec<NodeProto>, init: Vec<TensorProto>| {
        gradcam_onnx::from_bytes_any_output(&model(nodes, init, &[1, 4, 3, 3], "y"), None)
            .expect_err("an error")
            .to_string()
    };
    let empty = TensorProto {
        name: Some("empty".into()),
        dims: vec![0],
        data_type: Some(7),
        ..Default::default()
    };
    let msg = e(
        vec![
            node("Add", &["empty", "one"], "k"),
            node("Reshape", &["x", "k"], "y"),
        ],
        vec![empty, ints("one", vec![1])],
    );
    assert!(msg.contains("empty"), "{msg}");
    for op in ["Concat", "Softmax", "Split"] {
        let mut n = with(
            node(op, &["x", "x"], "y"),
            AttributeProto {
                name: Some("axis".into()),
                i: Some(i64::MAX),
                ..Default::default()
            },
        );
        if op != "Concat" {
            n.input.truncate(1);
        }
        assert!(e(vec![n], vec![]).contains("axis"), "{op}");
    }
}

/// Every output of a Split keeps its input's rank: on a 3-D input the second part's mean over
/// axis −1 is over the length (with rank 4 assumed it would be the runtime's unit axis).
#[test]
fn split_outputs_keep_the_inputs_rank() {
    let mut split = with(
        node("Split", &["x"], "a"),
        AttributeProto {
            name: Some("axis".into()),
            i: Some(1),
            ..Default::default()
        },
    );
    split.output.push("b".into());
    let bytes = model(
        vec![
            split,
            with(
                node("ReduceMean", &["b"], "y"),
                AttributeProto {
                    name: Some("axes".into()),
                    ints: vec![-1],
                    ..Default::default()
                },
            ),
        ],
        vec![],
        &[0, 4, 6],
        "y",
    );
    let x: Vec<f32> = (0..48).map(|i| (i as f32 * 0.5).sin()).collect();
    let got = run(&bytes, &x, [2, 4, 6, 1]);
    assert_eq!(got.len(), 4);
    for n in 0..2 {
        for c in 0..2 {
            let base = (n * 4 + 2 + c) * 6;
            let want = x[base..base + 6].iter().sum::<f32>() / 6.0;
            assert!((got[n * 2 + c] - want).abs() < 1e-5, "({n},{c})");
        }
    }
}

/// A mean over one spatial axis without keepdims: a rank-3 result (the height dropped is the
/// row `[n, c, 1, w]` as `[n, c, w]`), forward and backward against host computations.
#[test]
fn mean_over_one_axis_without_keepdims() {
    let (c, h, w) = (2usize, 3usize, 4usize);
    let x: Vec<f32> = (0..c * h * w).map(|i| (i as f32 * 0.37).cos()).collect();
    let keepdims0 = int_attr("keepdims", 0);
    let mean = |axis: i64| {
        model(
            vec![with(
                with(
                    node("ReduceMean", &["x"], "y"),
                    ints_attr("axes", vec![axis]),
                ),
                keepdims0.clone(),
            )],
            vec![],
            &[1, c as i64, h as i64, w as i64],
            "y",
        )
    };
    let at = |ci: usize, y: usize, xx: usize| x[(ci * h + y) * w + xx];
    // Over the height: [1, c, w].
    let got = run(&mean(2), &x, [1, c, h, w]);
    assert_eq!(got.len(), c * w);
    for ci in 0..c {
        for xx in 0..w {
            let want = (0..h).map(|y| at(ci, y, xx)).sum::<f32>() / h as f32;
            assert!((got[ci * w + xx] - want).abs() < 1e-6);
        }
    }
    // Over the width: [1, c, h].
    let got = run(&mean(-1), &x, [1, c, h, w]);
    assert_eq!(got.len(), c * h);
    for ci in 0..c {
        for y in 0..h {
            let want = (0..w).map(|xx| at(ci, y, xx)).sum::<f32>() / w as f32;
            assert!((got[ci * h + y] - want).abs() < 1e-6);
        }
    }
    // The gradient through the height mean: each input gets its column's seed over h.
    let g = gradcam_onnx::from_bytes_any_output(&mean(2), None).unwrap();
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), g).unwrap();
    let out = m.graph().output();
    let spec = gradcam_runtime::BackwardSpec {
        from: out,
        stop: gradcam_runtime::Stop::Input,
        rule: Default::default(),
        weight_grads: false,
    };
    let xd = cpu.upload(&x, Shape::new([1, c, h, w])).unwrap();
    let acts = m.forward(&xd, &m.backward_needs(&spec).unwrap()).unwrap();
    assert_eq!(acts.shapes()[out.0].dims(), &[1, c, w, 1]);
    let seed: Vec<f32> = (0..c * w).map(|i| i as f32 - 2.5).collect();
    let seed_t = cpu.upload(&seed, Shape::new([1, c, w, 1])).unwrap();
    let dx = cpu
        .download(&m.backward(&acts, &spec, seed_t).unwrap().at_stop)
        .unwrap();
    for ci in 0..c {
        for y in 0..h {
            for xx in 0..w {
                let want = seed[ci * w + xx] / h as f32;
                assert!((dx[(ci * h + y) * w + xx] - want).abs() < 1e-6);
            }
        }
    }
}

/// A rank-1 input `[n]` runs as `[n, 1, 1, 1]` (one channel): PyTorch's `view` export, a
/// Flatten to `[n, 1]`, then a rectifier.
#[test]
fn a_rank_one_input() {
    let bytes = model(
        vec![
            with(node("Flatten", &["x"], "f"), int_attr("axis", 1)),
            node("Relu", &["f"], "y"),
        ],
        vec![],
        &[3],
        "y",
    );
    let got = run(&bytes, &[1.0, -2.0, 0.5], [3, 1, 1, 1]);
    assert_eq!(got, vec![1.0, 0.0, 0.5]);
}

/// The one-axis mean's window is the file's input size: other sizes are refused; the default
/// Grad-CAM target walks back through the rank-3 view to the convolution; a rank-1 tensor's
/// axis 0 is its batch, neither a flatten's axis nor a channel concatenation.
#[test]
fn one_axis_means_fix_the_size_and_rank_one_axes_are_the_batch() {
    let keepdims0 = int_attr("keepdims", 0);
    let axes = |v: i64| ints_attr("axes", vec![v]);
    let bytes = model(
        vec![
            node("Conv", &["x", "w"], "conv"),
            with(
                with(node("ReduceMean", &["conv"], "rows"), axes(2)),
                keepdims0.clone(),
            ),
            with(
                with(node("ReduceMean", &["rows"], "m"), axes(2)),
                keepdims0.clone(),
            ),
            node("Gemm", &["m", "fc"], "y"),
        ],
        vec![
            tensor(
                "w",
                &[4, 3, 1, 1],
                (0..12).map(|i| i as f32 * 0.1).collect(),
            ),
            tensor("fc", &[4, 2], vec![0.5; 8]),
        ],
        &[1, 3, 5, 6],
        "y",
    );
    let g = gradcam_onnx::from_bytes_any_output(&bytes, None).unwrap();
    assert_eq!(g.input_size(), Some([5, 6]));
    assert!(g.infer_shapes(&Shape::new([1, 3, 5, 6])).is_ok());
    assert!(g.infer_shapes(&Shape::new([1, 3, 7, 6])).is_err());
    let target = g.default_target().unwrap();
    assert_eq!(g.node(target).name, "conv");

    // Flatten and Concat at axis 0 of a rank-1 input.
    for (op, inputs) in [("Flatten", &["x"][..]), ("Concat", &["x", "x"][..])] {
        let axis0 = int_attr("axis", 0);
        let bytes = model(vec![with(node(op, inputs, "y"), axis0)], vec![], &[3], "y");
        assert!(
            gradcam_onnx::from_bytes_any_output(&bytes, None).is_err(),
            "{op}"
        );
    }
}

/// PyTorch's hand-written global average pool, `x.view(n, c, -1).mean(-1)`: a Reshape to
/// `[n, c, -1]` (the rank-3 Column view) and a mean over its last axis; the Grad-CAM target
/// found behind it is the convolution, and its gradient the host's.
#[test]
fn a_view_to_n_c_minus_one_then_a_mean() {
    let (c, h, w) = (3usize, 4usize, 5usize);
    let wt: Vec<f32> = (0..2 * c).map(|i| i as f32 * 0.3 - 0.7).collect();
    let mean = with(
        with(node("ReduceMean", &["v"], "m"), ints_attr("axes", vec![-1])),
        int_attr("keepdims", 0),
    );
    let bytes = model(
        vec![
            node("Conv", &["x", "w"], "conv"),
            node("Reshape", &["conv", "shape"], "v"),
            mean,
        ],
        vec![
            tensor("w", &[2, c as i64, 1, 1], wt.clone()),
            ints("shape", vec![0, 2, -1]),
        ],
        &[1, c as i64, h as i64, w as i64],
        "m",
    );
    let x: Vec<f32> = (0..c * h * w).map(|i| (i as f32 * 0.21).sin()).collect();
    let got = run(&bytes, &x, [1, c, h, w]);
    assert_eq!(got.len(), 2);
    for k in 0..2 {
        let want = (0..h * w)
            .map(|p| {
                (0..c)
                    .map(|ci| wt[k * c + ci] * x[ci * h * w + p])
                    .sum::<f32>()
            })
            .sum::<f32>()
            / (h * w) as f32;
        assert!((got[k] - want).abs() < 1e-5, "{k}: {} vs {want}", got[k]);
    }
    let g = gradcam_onnx::from_bytes_any_output(&bytes, None).unwrap();
    // Any input size: the view's length is -1.
    assert!(g.infer_shapes(&Shape::new([2, 3, 7, 6])).is_ok());
    assert_eq!(g.node(g.default_target().unwrap()).name, "conv");
    // A fixed length other than the plane's is refused.
    let bad = model(
        vec![node("Reshape", &["x", "shape"], "v")],
        vec![ints("shape", vec![0, 3, 7])],
        &[1, 3, 4, 5],
        "v",
    );
    assert!(gradcam_onnx::from_bytes_any_output(&bad, None).is_err());
}

/// A constant operand of a concatenation (coordinate channels, as CoordConv adds them) is a
/// constant node: repeated over the batch when its batch is 1, taken as is when it is the
/// batch, refused otherwise; no gradient flows into it, and the input's gradient through the
/// concatenation is the computed branch's. Checked against a host computation.
#[test]
fn concat_with_a_constant_operand() {
    use gradcam_runtime::{BackwardSpec, Model, RectifierRule, Stop};
    let (c, h, w) = (2usize, 3usize, 4usize);
    let plane = h * w;
    let coords: Vec<f32> = (0..2 * plane).map(|i| i as f32 * 0.1 - 1.0).collect();
    let graph_of = |batch: i64| {
        model(
            vec![
                node("Relu", &["x"], "r"),
                with(node("Concat", &["r", "k"], "cat"), int_attr("axis", 1)),
                node("GlobalAveragePool", &["cat"], "y"),
            ],
            vec![tensor(
                "k",
                &[batch, 2, h as i64, w as i64],
                coords.repeat(batch as usize),
            )],
            &[0, c as i64, h as i64, w as i64],
            "y",
        )
    };
    let x: Vec<f32> = (0..3 * c * plane)
        .map(|i| (i as f32 * 0.61).sin())
        .collect();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let want: Vec<f32> = (0..3)
        .flat_map(|n| {
            let img = &x[n * c * plane..(n + 1) * c * plane];
            let relu: Vec<f32> = img.iter().map(|v| v.max(0.0)).collect();
            (0..c)
                .map(move |k| mean(&relu[k * plane..(k + 1) * plane]))
                .chain((0..2).map(|k| mean(&coords[k * plane..(k + 1) * plane])))
        })
        .collect();
    // A batch-1 constant on batches 1 and 3; a batch-3 constant on batch 3.
    for (batch, n) in [(1, 1), (1, 3), (3, 3)] {
        let got = run(&graph_of(batch), &x[..n * c * plane], [n, c, h, w]);
        assert_eq!(got.len(), n * (c + 2));
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() < 1e-5, "batch {batch} on {n}: {g} vs {e}");
        }
    }
    // A batch-3 constant with a batch of 2: refused, naming the constant.
    let g = gradcam_onnx::from_bytes_any_output(&graph_of(3), None).unwrap();
    let e = g.infer_shapes(&Shape::new([2, c, h, w])).unwrap_err();
    assert!(e.to_string().contains("constant"), "{e}");
    // The gradient of the pooled outputs' sum reaches the input through the computed branch
    // only: 1/plane where x > 0.
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = Model::new(
        cpu.clone(),
        gradcam_onnx::from_bytes_any_output(&graph_of(1), None).unwrap(),
    )
    .unwrap();
    let spec = BackwardSpec {
        from: m.graph().output(),
        stop: Stop::Input,
        rule: RectifierRule::default(),
        weight_grads: false,
    };
    let xs = cpu.upload(&x, Shape::new([3, c, h, w])).unwrap();
    let acts = m.forward(&xs, &m.backward_needs(&spec).unwrap()).unwrap();
    let seed = cpu
        .upload(&vec![1.0; 3 * (c + 2)], Shape::new([3, c + 2, 1, 1]))
        .unwrap();
    let dx = cpu
        .download(&m.backward(&acts, &spec, seed).unwrap().at_stop)
        .unwrap();
    for (d, v) in dx.iter().zip(&x) {
        let e = if *v > 0.0 { 1.0 / plane as f32 } else { 0.0 };
        assert!((d - e).abs() < 1e-6, "{d} vs {e}");
    }
}
