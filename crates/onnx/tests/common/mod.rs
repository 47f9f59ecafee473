//! ONNX messages built by hand for the importer's tests.
#![allow(dead_code)]

use gradcam_core::{Backend, Shape};
use gradcam_onnx::proto::*;
use prost::Message;

/// A float initializer.
pub fn tensor(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        float_data: data,
        ..Default::default()
    }
}

/// A node named by its output.
pub fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: Some(output.into()),
        op_type: Some(op.into()),
        ..Default::default()
    }
}

/// An int64 vector initializer.
pub fn ints(name: &str, v: Vec<i64>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![v.len() as i64],
        data_type: Some(7),
        int64_data: v,
        ..Default::default()
    }
}

/// `n` with one more attribute.
pub fn with(mut n: NodeProto, attr: AttributeProto) -> NodeProto {
    n.attribute.push(attr);
    n
}

/// An integer attribute.
#[allow(dead_code)]
pub fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(i),
        ..Default::default()
    }
}

/// An integer-list attribute.
#[allow(dead_code)]
pub fn ints_attr(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v,
        ..Default::default()
    }
}

/// An opset-13 model of `nodes` with one float input `x` of `input` dims (≤ 0: symbolic).
pub fn model(nodes: Vec<NodeProto>, init: Vec<TensorProto>, input: &[i64], out: &str) -> Vec<u8> {
    ModelProto {
        opset_import: vec![OperatorSetIdProto {
            domain: None,
            version: Some(13),
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: init,
            input: vec![ValueInfoProto {
                name: Some("x".into()),
                r#type: Some(TypeProto {
                    tensor_type: Some(TypeProtoTensor {
                        elem_type: Some(1),
                        shape: Some(TensorShapeProto {
                            dim: input
                                .iter()
                                .map(|&v| Dimension {
                                    dim_value: (v > 0).then_some(v),
                                    dim_param: (v <= 0).then(|| "n".to_string()),
                                })
                                .collect(),
                        }),
                    }),
                }),
            }],
            output: vec![ValueInfoProto {
                name: Some(out.into()),
                r#type: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The output of `bytes`'s graph (any output) on `x` on the CPU.
pub fn run(bytes: &[u8], x: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let g = gradcam_onnx::from_bytes_any_output(bytes, None).unwrap();
    let cpu = gradcam_cpu::CpuBackend::new();
    let m = gradcam_runtime::Model::new(cpu.clone(), g).unwrap();
    let acts = m
        .forward(
            &cpu.upload(x, Shape::new(shape)).unwrap(),
            &Default::default(),
        )
        .unwrap();
    cpu.download(acts.get(m.graph().output()).unwrap()).unwrap()
}
