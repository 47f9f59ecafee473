//! Operators beyond the fixtures' exports, each against a host computation: per-channel
//! `Sub`/`Div`/`Mul`/`Add` by constants (normalisation baked into a model), and `MatMul` by a
//! constant followed by `Add` of a bias (tf2onnx's fully connected layers).

use gradcam_core::{Backend, Shape};
mod common;

use common::{node, tensor};
use gradcam_onnx::proto::*;
use prost::Message;

fn dims(d: &[i64]) -> Option<TypeProto> {
    Some(TypeProto {
        tensor_type: Some(TypeProtoTensor {
            elem_type: Some(1),
            shape: Some(TensorShapeProto {
                dim: d
                    .iter()
                    .map(|&v| Dimension {
                        dim_value: Some(v),
                        dim_param: None,
                    })
                    .collect(),
            }),
        }),
    })
}

#[test]
fn normalisation_constants_and_matmul_with_bias() {
    let mean = [0.5f32, -0.25, 0.125];
    let std = [2.0f32, 0.5, 4.0];
    let conv: Vec<f32> = vec![1.0, -1.0, 0.5, 0.25, 0.75, -0.5]; // [2, 3, 1, 1]
    let fc: Vec<f32> = vec![1.0, 2.0, -1.0, 0.5, 0.0, 3.0]; // MatMul's [in = 2, out = 3]
    let bias = [0.1f32, 0.2, 0.3];
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: None,
            version: Some(13),
        }],
        graph: Some(GraphProto {
            node: vec![
                node("Sub", &["x", "mean"], "centred"),
                node("Div", &["centred", "std"], "scaled"),
                node("Mul", &["scaled", "two"], "doubled"),
                node("Conv", &["doubled", "w"], "conv"),
                node("Relu", &["conv"], "relu"),
                node("GlobalAveragePool", &["relu"], "pool"),
                node("Flatten", &["pool"], "flat"),
                node("MatMul", &["flat", "fc"], "mm"),
                node("Add", &["mm", "bias"], "logits"),
            ],
            initializer: vec![
                tensor("mean", &[1, 3, 1, 1], mean.to_vec()),
                tensor("std", &[3, 1, 1], std.to_vec()),
                tensor("two", &[], vec![2.0]),
                tensor("w", &[2, 3, 1, 1], conv.clone()),
                tensor("fc", &[2, 3], fc.clone()),
                tensor("bias", &[3], bias.to_vec()),
            ],
            input: vec![ValueInfoProto {
                name: Some("x".into()),
                r#type: dims(&[1, 3, 2, 2]),
            }],
            output: vec![ValueInfoProto {
                name: Some("logits".into()),
                r#type: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let g = gradcam_onnx::from_bytes(&model.encode_to_vec(), None).unwrap();
    assert!(g.find("mm").is_err(), "MatMul and Add are one linear layer");
    assert!(g.find("logits").is_ok());
    let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), g).unwrap();
    let xd = cpu.upload(&x, Shape::new([1, 3, 2, 2])).unwrap();
    let acts = m.forward(&xd, &Default::default()).unwrap();
    let got = cpu.download(acts.get(m.graph().output()).unwrap()).unwrap();
    // Host: normalise, 1×1 conv, ReLU, mean over the 2×2 plane, x·fc + bias.
    let mut pooled = [0.0f32; 2];
    for (k, p) in pooled.iter_mut().enumerate() {
        for q in 0..4 {
            let v: f32 = (0..3)
                .map(|c| conv[k * 3 + c] * ((x[c * 4 + q] - mean[c]) / std[c]) * 2.0)
                .sum();
            *p += v.max(0.0) / 4.0;
        }
    }
    for (o, g) in got.iter().enumerate() {
        let want = pooled[0] * fc[o] + pooled[1] * fc[3 + o] + bias[o];
        assert!((g - want).abs() < 1e-5, "output {o}: {g} vs {want}");
    }
}

#[test]
fn a_matmul_without_bias_and_unsupported_broadcasts() {
    let base = |extra: Vec<NodeProto>, inits: Vec<TensorProto>, out: &str| ModelProto {
        opset_import: vec![OperatorSetIdProto {
            domain: None,
            version: Some(13),
        }],
        graph: Some(GraphProto {
            node: [
                vec![
                    node("GlobalAveragePool", &["x"], "pool"),
                    node("Flatten", &["pool"], "flat"),
                ],
                extra,
            ]
            .concat(),
            initializer: inits,
            input: vec![ValueInfoProto {
                name: Some("x".into()),
                r#type: dims(&[1, 2, 3, 3]),
            }],
            output: vec![ValueInfoProto {
                name: Some(out.into()),
                r#type: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    // MatMul as the output: a linear layer without bias, named by its tensor.
    let m = base(
        vec![node("MatMul", &["flat", "fc"], "mm")],
        vec![tensor("fc", &[2, 4], vec![0.5; 8])],
        "mm",
    );
    let g = gradcam_onnx::from_bytes(&m.encode_to_vec(), None).unwrap();
    assert!(g.find("mm").is_ok());
    // A constant broadcast along the width, not per channel: an error naming the shape.
    let m = base(
        vec![
            node("Mul", &["x", "k"], "y"),
            node("GlobalAveragePool", &["y"], "p2"),
        ],
        vec![tensor("k", &[3], vec![1.0; 3])],
        "flat",
    );
    let msg = gradcam_onnx::from_bytes(&m.encode_to_vec(), None)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("per-channel"), "{msg}");
}

/// The TorchScript exporter's `x.view(x.size(0), -1)` at older opsets: Shape → Gather →
/// Unsqueeze → Concat → Reshape, folded into a flatten that keeps the batch dimension.
#[test]
fn a_shape_computation_folds_into_a_flatten() {
    let int = |name: &str, dims: &[i64], v: Vec<i64>| TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(7),
        int64_data: v,
        ..Default::default()
    };
    let mut unsq = node("Unsqueeze", &["n"], "n1");
    unsq.attribute.push(AttributeProto {
        name: Some("axes".into()),
        ints: vec![0],
        ..Default::default()
    });
    let mut gemm = node("Gemm", &["flat", "fc", "fb"], "logits");
    gemm.attribute.push(AttributeProto {
        name: Some("transB".into()),
        i: Some(1),
        ..Default::default()
    });
    let model = ModelProto {
        opset_import: vec![OperatorSetIdProto {
            domain: None,
            version: Some(11),
        }],
        graph: Some(GraphProto {
            node: vec![
                node("Relu", &["x"], "r"),
                node("Shape", &["r"], "s"),
                node("Gather", &["s", "zero"], "n"),
                unsq,
                node("Concat", &["n1", "minus_one"], "target"),
                node("Reshape", &["r", "target"], "flat"),
                gemm,
            ],
            initializer: vec![
                int("zero", &[], vec![0]),
                int("minus_one", &[1], vec![-1]),
                tensor("fc", &[2, 12], (0..24).map(|i| i as f32 / 24.0).collect()),
                tensor("fb", &[2], vec![0.0, 1.0]),
            ],
            input: vec![ValueInfoProto {
                name: Some("x".into()),
                r#type: dims(&[1, 3, 2, 2]),
            }],
            output: vec![ValueInfoProto {
                name: Some("logits".into()),
                r#type: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let g = gradcam_onnx::from_bytes(&model.encode_to_vec(), None).unwrap();
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), g).unwrap();
    // Batch 2: the folded shape kept the batch symbolic.
    let x: Vec<f32> = (0..24).map(|i| i as f32 - 11.5).collect();
    let xd = cpu.upload(&x, Shape::new([2, 3, 2, 2])).unwrap();
    let acts = m.forward(&xd, &Default::default()).unwrap();
    let got = cpu.download(acts.get(m.graph().output()).unwrap()).unwrap();
    for n in 0..2 {
        for o in 0..2 {
            let want: f32 = (0..12)
                .map(|j| x[n * 12 + j].max(0.0) * ((o * 12 + j) as f32 / 24.0))
                .sum::<f32>()
                + o as f32;
            assert!((got[n * 2 + o] - want).abs() < 1e-4, "{got:?}");
        }
    }
}

/// Each activation with its attributes (and ONNX's defaults), against a host computation.
#[test]
fn activations_with_their_attributes() {
    let attr = |name: &str, f: f32| AttributeProto {
        name: Some(name.into()),
        f: Some(f),
        ..Default::default()
    };
    let x: Vec<f32> = (0..24).map(|i| (i as f32 - 12.0) * 0.6).collect();
    type F = fn(f32) -> f32;
    let cases: Vec<(&str, Vec<AttributeProto>, F)> = vec![
        ("LeakyRelu", vec![attr("alpha", 0.2)], |v| {
            if v >= 0.0 {
                v
            } else {
                0.2 * v
            }
        }),
        ("LeakyRelu", vec![], |v| if v >= 0.0 { v } else { 0.01 * v }),
        ("Elu", vec![attr("alpha", 0.5)], |v| {
            if v > 0.0 {
                v
            } else {
                0.5 * (v.exp() - 1.0)
            }
        }),
        (
            "HardSigmoid",
            vec![attr("alpha", 1.0 / 6.0), attr("beta", 0.5)],
            |v| (v / 6.0 + 0.5).clamp(0.0, 1.0),
        ),
        ("HardSigmoid", vec![], |v| (0.2 * v + 0.5).clamp(0.0, 1.0)),
        ("HardSwish", vec![], |v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0)),
        ("Sigmoid", vec![], |v| 1.0 / (1.0 + (-v).exp())),
        ("Tanh", vec![], |v| v.tanh()),
    ];
    for (op, attrs, f) in cases {
        let mut n = node(op, &["x"], "y");
        n.attribute = attrs;
        let model = ModelProto {
            opset_import: vec![OperatorSetIdProto {
                domain: None,
                version: Some(14),
            }],
            graph: Some(GraphProto {
                node: vec![n],
                input: vec![ValueInfoProto {
                    name: Some("x".into()),
                    r#type: dims(&[1, 2, 3, 4]),
                }],
                output: vec![ValueInfoProto {
                    name: Some("y".into()),
                    r#type: None,
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let g = gradcam_onnx::from_bytes_any_output(&model.encode_to_vec(), None).unwrap();
        let cpu = gradcam_cpu::CpuBackend::new();
        let m = gradcam_runtime::Model::new(cpu.clone(), g).unwrap();
        let xd = cpu.upload(&x, Shape::new([1, 2, 3, 4])).unwrap();
        let acts = m.forward(&xd, &Default::default()).unwrap();
        let got = cpu.download(acts.get(m.graph().output()).unwrap()).unwrap();
        for (v, g) in x.iter().zip(&got) {
            assert!((f(*v) - g).abs() < 1e-6, "{op} at {v}: {g} vs {}", f(*v));
        }
    }
}

/// TensorFlow-style heads: GlobalAveragePool → Squeeze([2, 3]) → Gemm, and an identity
/// Transpose, import as a flatten and an alias; other squeezes and permutations are errors.
#[test]
fn squeeze_after_pooling_and_identity_transpose() {
    let graph = |squeeze_axes: Vec<i64>, perm: Vec<i64>| {
        let mut sq = node("Squeeze", &["pool"], "sq");
        sq.attribute.push(AttributeProto {
            name: Some("axes".into()),
            ints: squeeze_axes,
            ..Default::default()
        });
        let mut tr = node("Transpose", &["x"], "xt");
        tr.attribute.push(AttributeProto {
            name: Some("perm".into()),
            ints: perm,
            ..Default::default()
        });
        let mut gemm = node("Gemm", &["sq", "fc"], "logits");
        gemm.attribute.push(AttributeProto {
            name: Some("transB".into()),
            i: Some(1),
            ..Default::default()
        });
        ModelProto {
            opset_import: vec![OperatorSetIdProto {
                domain: None,
                version: Some(11),
            }],
            graph: Some(GraphProto {
                node: vec![tr, node("GlobalAveragePool", &["xt"], "pool"), sq, gemm],
                initializer: vec![tensor("fc", &[2, 3], vec![1.0, 0.0, -1.0, 0.5, 0.5, 0.5])],
                input: vec![ValueInfoProto {
                    name: Some("x".into()),
                    r#type: dims(&[1, 3, 2, 2]),
                }],
                output: vec![ValueInfoProto {
                    name: Some("logits".into()),
                    r#type: None,
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    };
    let g = gradcam_onnx::from_bytes(&graph(vec![2, 3], vec![0, 1, 2, 3]), None).unwrap();
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), g).unwrap();
    let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let acts = m
        .forward(
            &cpu.upload(&x, Shape::new([1, 3, 2, 2])).unwrap(),
            &Default::default(),
        )
        .unwrap();
    let got = cpu.download(acts.get(m.graph().output()).unwrap()).unwrap();
    // Channel means 1.5, 5.5, 9.5.
    assert_eq!(got, vec![1.5 - 9.5, 0.5 * (1.5 + 5.5 + 9.5)]);
    for (axes, perm) in [
        (vec![1, 2], vec![0, 1, 2, 3]),
        (vec![2, 3], vec![0, 2, 3, 1]),
    ] {
        assert!(gradcam_onnx::from_bytes(&graph(axes, perm), None).is_err());
    }
}
