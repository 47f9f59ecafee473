//! Bad ONNX input is an error naming what is wrong, never a panic or a huge allocation: empty,
//! garbage and truncated files, unknown operators, hostile sizes, unsafe external data paths.

mod common;

use common::tensor;
use gradcam_onnx::proto::*;
use prost::Message;

fn input(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: Some(d),
                            dim_param: None,
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: Some(format!("{op}_node")),
        op_type: Some(op.into()),
        ..Default::default()
    }
}

/// conv (2 filters, 3×3) → relu → global average pool → flatten → gemm (3 classes), plus
/// whatever `extra` nodes say, on a 1×1×6×6 input.
fn model(extra: Vec<NodeProto>, output: &str) -> ModelProto {
    let mut nodes = vec![
        node("Conv", &["x", "w", "b"], "c"),
        node("Relu", &["c"], "r"),
        node("GlobalAveragePool", &["r"], "g"),
        node("Flatten", &["g"], "f"),
        node("Gemm", &["f", "fw", "fb"], "logits"),
    ];
    nodes[4].attribute.push(AttributeProto {
        name: Some("transB".into()),
        i: Some(1),
        ..Default::default()
    });
    nodes.extend(extra);
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: vec![
                tensor(
                    "w",
                    &[2, 1, 3, 3],
                    (0..18).map(|i| i as f32 * 0.1 - 0.8).collect(),
                ),
                tensor("b", &[2], vec![0.1, -0.1]),
                tensor("fw", &[3, 2], vec![1.0, 0.5, -0.5, 0.25, 0.0, 1.0]),
                tensor("fb", &[3], vec![0.0, 0.1, 0.2]),
            ],
            input: vec![input("x", &[1, 1, 6, 6])],
            output: vec![ValueInfoProto {
                name: Some(output.into()),
                r#type: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn error(bytes: &[u8]) -> String {
    match gradcam_onnx::from_bytes(bytes, None) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_small_valid_model_imports_and_runs() {
    let g = gradcam_onnx::from_bytes(&model(vec![], "logits").encode_to_vec(), None).unwrap();
    assert!(
        g.find("r").is_ok(),
        "layers are named by their ONNX tensors"
    );
    assert_eq!(g.default_target().unwrap(), g.find("r").unwrap());
    use gradcam_core::{Backend, Shape};
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), g).unwrap();
    let x = cpu.upload(&[0.5; 36], Shape::new([1, 1, 6, 6])).unwrap();
    let acts = m.forward(&x, &Default::default()).unwrap();
    let logits = cpu.download(acts.get(m.graph().output()).unwrap()).unwrap();
    // A constant 0.5 image, no padding: every conv output is 0.5·Σw + b, so each pooled
    // channel is that value rectified.
    let w: Vec<f32> = (0..18).map(|i| i as f32 * 0.1 - 0.8).collect();
    let pooled: Vec<f32> = (0..2)
        .map(|k| (w[k * 9..k * 9 + 9].iter().sum::<f32>() * 0.5 + [0.1, -0.1][k]).max(0.0))
        .collect();
    let want = [
        pooled[0] * 1.0 + pooled[1] * 0.5,
        pooled[0] * -0.5 + pooled[1] * 0.25 + 0.1,
        pooled[1] * 1.0 + 0.2,
    ];
    for (a, b) in logits.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{logits:?} vs {want:?}");
    }
}

#[test]
fn empty_garbage_and_truncated_files_are_errors() {
    assert!(error(&[]).contains("empty"));
    assert!(error(&[0xff; 64]).contains("not a valid ONNX"));
    let bytes = model(vec![], "logits").encode_to_vec();
    for cut in [1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let msg = error(&bytes[..cut]);
        assert!(!msg.is_empty(), "cut at {cut}");
    }
}

#[test]
fn an_unknown_operator_is_named_with_the_supported_list() {
    let m = model(vec![node("Erf", &["logits"], "e")], "e");
    let msg = error(&m.encode_to_vec());
    assert!(msg.contains("Erf") && msg.contains("Erf_node"), "{msg}");
    assert!(msg.contains("supported: ") && msg.contains("Conv"), "{msg}");
}

#[test]
fn hostile_sizes_are_refused_before_allocating() {
    let mut m = model(vec![], "logits");
    let g = m.graph.as_mut().unwrap();
    // Claims 2^40 elements with 4 bytes of data; then dimensions whose product overflows.
    g.initializer[1] = TensorProto {
        name: Some("b".into()),
        dims: vec![1 << 20, 1 << 20],
        data_type: Some(1),
        raw_data: Some(vec![0; 4]),
        ..Default::default()
    };
    assert!(error(&m.encode_to_vec()).contains("bytes of data"));
    let g = m.graph.as_mut().unwrap();
    g.initializer[1].dims = vec![i64::MAX, 4];
    assert!(error(&m.encode_to_vec()).contains("overflow"));
    let g = m.graph.as_mut().unwrap();
    g.initializer[1].dims = vec![-2];
    assert!(error(&m.encode_to_vec()).contains("negative"));
}

#[test]
fn external_data_must_stay_beside_the_model() {
    let mut m = model(vec![], "logits");
    let g = m.graph.as_mut().unwrap();
    g.initializer[1] = TensorProto {
        name: Some("b".into()),
        dims: vec![2],
        data_type: Some(1),
        data_location: Some(1),
        external_data: vec![StringStringEntryProto {
            key: Some("location".into()),
            value: Some("../../etc/passwd".into()),
        }],
        ..Default::default()
    };
    let msg = match gradcam_onnx::from_bytes(&m.encode_to_vec(), Some(std::path::Path::new("/tmp")))
    {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains("plain relative path"), "{msg}");
}

#[test]
fn external_data_is_read_with_its_offset() {
    let dir = std::env::temp_dir().join(format!("gradcam-onnx-ext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut data = vec![9u8; 8]; // 8 bytes of padding before the tensor
    for v in [0.1f32, -0.1] {
        data.extend(v.to_le_bytes());
    }
    std::fs::write(dir.join("model.onnx.data"), &data).unwrap();
    let mut m = model(vec![], "logits");
    let entry = |k: &str, v: &str| StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    };
    m.graph.as_mut().unwrap().initializer[1] = TensorProto {
        name: Some("b".into()),
        dims: vec![2],
        data_type: Some(1),
        data_location: Some(1),
        external_data: vec![
            entry("location", "model.onnx.data"),
            entry("offset", "8"),
            entry("length", "8"),
        ],
        ..Default::default()
    };
    let bytes = m.encode_to_vec();
    std::fs::write(dir.join("model.onnx"), &bytes).unwrap();
    let g = gradcam_onnx::load(&dir.join("model.onnx")).unwrap();
    let bias = g.params().iter().find(|p| p.name == "c.bias").unwrap();
    assert_eq!(bias.value.data, vec![0.1, -0.1]);
    // A length beyond the file is an error.
    m.graph.as_mut().unwrap().initializer[1].external_data[1] = entry("offset", "12");
    std::fs::write(dir.join("model.onnx"), m.encode_to_vec()).unwrap();
    let msg = gradcam_onnx::load(&dir.join("model.onnx"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("offset 12"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unsupported_attributes_and_missing_pieces_are_errors() {
    // Negative (cropping) convolution padding; asymmetric padding imports.
    let padded = |pads: Vec<i64>| {
        let mut m = model(vec![], "logits");
        m.graph.as_mut().unwrap().node[0]
            .attribute
            .push(AttributeProto {
                name: Some("pads".into()),
                ints: pads,
                ..Default::default()
            });
        m.encode_to_vec()
    };
    assert!(error(&padded(vec![0, -1, 1, 1])).contains("pads [0, -1, 1, 1]"));
    assert!(gradcam_onnx::from_bytes(&padded(vec![0, 0, 1, 1]), None).is_ok());
    // An output that is not computed.
    let m = model(vec![], "nowhere");
    assert!(error(&m.encode_to_vec()).contains("nowhere"));
    // A node reading a tensor defined nowhere.
    let m = model(vec![node("Relu", &["ghost"], "z")], "z");
    assert!(error(&m.encode_to_vec()).contains("ghost"));
    // No graph.
    let m = ModelProto {
        ir_version: Some(8),
        ..Default::default()
    };
    assert!(error(&m.encode_to_vec()).contains("no graph"));
}

#[test]
fn sizes_that_overflow_or_amplify_are_refused() {
    // 2^62 floats claimed: the byte count overflows.
    let mut m = model(vec![], "logits");
    m.graph.as_mut().unwrap().initializer[1] = TensorProto {
        name: Some("b".into()),
        dims: vec![1 << 31, 1 << 31],
        data_type: Some(1),
        raw_data: Some(vec![]),
        ..Default::default()
    };
    assert!(error(&m.encode_to_vec()).contains("overflow"));
    // One 1 MB initializer passed through 100 Identity nodes: 100 MB from a 1 MB file.
    let mut m = model(vec![], "logits");
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(TensorProto {
        name: Some("big".into()),
        dims: vec![1 << 18],
        data_type: Some(1),
        raw_data: Some(vec![0; 1 << 20]),
        ..Default::default()
    });
    for i in 0..100 {
        g.node.push(node("Identity", &["big"], &format!("copy{i}")));
    }
    assert!(error(&m.encode_to_vec()).contains("more memory than its file size allows"));
    // A folded "shape" that keeps doubling.
    let mut m = model(vec![], "logits");
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(TensorProto {
        name: Some("s0".into()),
        dims: vec![1],
        data_type: Some(7),
        int64_data: vec![1],
        ..Default::default()
    });
    for i in 0..10 {
        let prev = format!("s{i}");
        g.node.push(node(
            "Concat",
            &[prev.as_str(), prev.as_str()],
            &format!("s{}", i + 1),
        ));
    }
    assert!(error(&m.encode_to_vec()).contains("at most 64 values"));
}

#[test]
fn unsupported_pooling_groups_and_reshapes_are_errors_not_wrong_graphs() {
    let with = |op: &str, i: usize, name: &str, ints: Vec<i64>, extra: Vec<NodeProto>| {
        let mut m = model(extra, "logits");
        let n = &mut m.graph.as_mut().unwrap().node[i];
        assert_eq!(n.op_type.as_deref(), Some(op));
        n.attribute.push(AttributeProto {
            name: Some(name.into()),
            ints: ints.clone(),
            i: ints.first().copied(),
            ..Default::default()
        });
        error(&m.encode_to_vec())
    };
    // A group count above the input channels.
    assert!(with("Conv", 0, "group", vec![4], vec![]).contains("group 4"));
    // A reshape of [1, 2, 4, 4] to [-1, 2] (rows of 2, not one row per image).
    let mut m = model(vec![], "logits");
    let g = m.graph.as_mut().unwrap();
    g.node[3] = node("Reshape", &["g", "shape"], "f");
    g.initializer.push(TensorProto {
        name: Some("shape".into()),
        dims: vec![2],
        data_type: Some(7),
        int64_data: vec![-1, 1],
        ..Default::default()
    });
    let msg = error(&m.encode_to_vec());
    assert!(msg.contains("only a reshape to [n, features]"), "{msg}");
}
