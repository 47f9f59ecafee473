//! ONNX graph → runtime graph, node by node. Constants (initializers, `Constant` nodes) stay on
//! the host and become layer parameters or attributes; every other value is a runtime node named
//! by its ONNX tensor name, so a target layer is named as in the ONNX file.

use crate::proto::{AttributeProto, GraphProto, ModelProto, NodeProto};
use crate::tensor::{self, Const};
use gradcam_core::{Activation, Conv2dParams, Error, HostTensor, LrnParams, Pool2dParams, Result};
use gradcam_runtime::{Graph, GraphBuilder, NodeId};
use std::collections::HashMap;
use std::path::Path;

/// The operators the importer translates.
pub const SUPPORTED: &[&str] = &[
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Constant",
    "Conv",
    "Dropout",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "MaxPool",
    "ReduceMean",
    "Relu",
    "Sigmoid",
    "Tanh",
    "LeakyRelu",
    "Elu",
    "HardSigmoid",
    "HardSwish",
    "Reshape",
    "Softmax",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "MatMul",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Cast",
    "Transpose",
    "PRelu",
    "Pad",
    "GlobalMaxPool",
    "Sum",
    "ConstantOfShape",
    "LRN",
    "Slice",
    "Split",
];

/// A batch dimension in a folded shape (`Shape` of a tensor whose batch size is the input's).
const BATCH: i64 = i64::MIN + 1;

/// A value of the ONNX graph: a runtime node, a host constant, or a `MatMul` by a constant
/// not yet made a linear layer (an `Add` of a bias may still join it).
#[derive(Clone)]
enum Value {
    Node(NodeId),
    Const(Const),
    MatMul {
        x: NodeId,
        weight: HostTensor,
    },
    /// A computed `[n, c, h, w]` viewed as `[n, g, c/g, h, w]` (a channel shuffle's first
    /// reshape), `transposed` to `[n, c/g, g, h, w]` (its transpose); only the shuffle's last
    /// reshape, back to `[n, c, h, w]`, may read it.
    Grouped {
        x: NodeId,
        groups: usize,
        transposed: bool,
    },
    /// A computed `[n, c, h, w]` transposed to NHWC (TensorFlow's layout before a flatten);
    /// only a flatten may read it.
    Hwc {
        x: NodeId,
        chw: [usize; 3],
    },
    /// The flatten of an [`Value::Hwc`]: `x` is the flat `[n, c·h·w]` in CHW order, the ONNX
    /// tensor the same values in HWC order; only a product with a constant matrix (MatMul,
    /// Gemm) may read it, its rows permuted to match.
    FlatHwc {
        x: NodeId,
        chw: [usize; 3],
    },
}

/// The columns of an `[o, c·h·w]` matrix that multiplies features in HWC order, reordered for
/// the same features in CHW order.
fn hwc_columns_to_chw(data: &[f32], o: usize, [c, h, w]: [usize; 3]) -> Vec<f32> {
    let i = c * h * w;
    let mut out = vec![0.0f32; data.len()];
    for r in 0..o {
        for ch in 0..c {
            for p in 0..h * w {
                out[r * i + ch * h * w + p] = data[r * i + p * c + ch];
            }
        }
    }
    out
}

fn err(node: &NodeProto, msg: impl std::fmt::Display) -> Error {
    Error::Model(format!(
        "ONNX node `{}` ({}): {msg}",
        node.name.as_deref().unwrap_or(""),
        node.op_type.as_deref().unwrap_or("")
    ))
}

/// Attribute lookup for one node. For a 1-D convolution or pooling (`one_d`) the spatial
/// lists read as the 2-D ones of an `[n, c, l, 1]` tensor: `[k]` → `[k, 1]`, pads `[b, e]` →
/// `[b, 0, e, 0]`.
struct Attrs<'a> {
    node: &'a NodeProto,
    one_d: bool,
}

impl<'a> Attrs<'a> {
    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
    }
    fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).and_then(|a| a.i).unwrap_or(default)
    }
    fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).and_then(|a| a.f).unwrap_or(default)
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        let v = self.get(name).map(|a| a.ints.clone())?;
        Some(match (self.one_d, name, v.as_slice()) {
            (true, "kernel_shape" | "strides" | "dilations", [k]) => vec![*k, 1],
            (true, "pads", [b, e]) => vec![*b, 0, *e, 0],
            _ => v,
        })
    }
    fn string(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }
}

/// Two spatial values from an attribute list (`[h, w]`), `default` when absent; strides,
/// dilations and kernel sizes must be at least `min`.
fn pair(node: &NodeProto, v: Option<Vec<i64>>, default: usize, what: &str) -> Result<[usize; 2]> {
    let min = if what == "pads" { 0 } else { 1 };
    match v.as_deref() {
        None => Ok([default; 2]),
        Some([a, b]) if *a >= min && *b >= min && *a <= 1 << 16 && *b <= 1 << 16 => {
            Ok([*a as usize, *b as usize])
        }
        Some(other) => Err(err(
            node,
            format!("{what} {other:?}: two values of at least {min} are supported"),
        )),
    }
}

/// A convolution's padding, `(before, after)` per spatial axis, from ONNX's
/// `[top, left, bottom, right]` or `auto_pad` (SAME with an uneven total — TensorFlow's stride-2
/// layers — needs the input's size, `hw`).
fn conv_padding(
    node: &NodeProto,
    a: &Attrs,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    hw: impl FnOnce() -> Result<Option<[usize; 2]>>,
) -> Result<([usize; 2], [usize; 2])> {
    let limit = 0..=1i64 << 16;
    match a.string("auto_pad").as_deref().unwrap_or("NOTSET") {
        "SAME_UPPER" | "SAME_LOWER" => {
            let lower = a.string("auto_pad").as_deref() == Some("SAME_LOWER");
            let hw = if stride == [1, 1] { None } else { hw()? };
            let (mut before, mut after) = ([0; 2], [0; 2]);
            for i in 0..2 {
                let reach = dilation[i] * (kernel[i] - 1) + 1;
                let total = match hw {
                    // Output ⌈size / stride⌉: total = (out − 1)·stride + reach − size.
                    Some(hw) => {
                        ((hw[i].div_ceil(stride[i]) - 1) * stride[i] + reach).saturating_sub(hw[i])
                    }
                    None if stride[i] == 1 => reach - 1,
                    None => {
                        return Err(err(
                            node,
                            "auto_pad SAME with a stride needs the model's input size fixed",
                        ))
                    }
                };
                let small = total / 2;
                (before[i], after[i]) = if lower {
                    (total - small, small)
                } else {
                    (small, total - small)
                };
            }
            Ok((before, after))
        }
        _ => match a.ints("pads").as_deref() {
            Some([t, l, bo, r])
                if a.string("auto_pad").is_none_or(|p| p == "NOTSET")
                    && [t, l, bo, r].iter().all(|v| limit.contains(v)) =>
            {
                Ok(([*t as usize, *l as usize], [*bo as usize, *r as usize]))
            }
            _ => padding(node, a, kernel, stride, dilation).map(|p| (p, p)),
        },
    }
}

/// Symmetric padding from ONNX's `[top, left, bottom, right]` (or `auto_pad`).
fn padding(
    node: &NodeProto,
    a: &Attrs,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Result<[usize; 2]> {
    match a.string("auto_pad").as_deref().unwrap_or("NOTSET") {
        "NOTSET" => {}
        "VALID" => return Ok([0, 0]),
        "SAME_UPPER" | "SAME_LOWER" => {
            // Symmetric only where the total padding is even and the stride is 1.
            let mut p = [0; 2];
            for i in 0..2 {
                let total = dilation[i] * (kernel[i] - 1);
                if stride[i] != 1 || !total.is_multiple_of(2) {
                    return Err(err(
                        node,
                        "auto_pad SAME with an asymmetric padding is not supported",
                    ));
                }
                p[i] = total / 2;
            }
            return Ok(p);
        }
        other => return Err(err(node, format!("auto_pad `{other}`"))),
    }
    match a.ints("pads").as_deref() {
        None => Ok([0, 0]),
        Some([t, l, b, r])
            if t == b && l == r && (0..=1 << 16).contains(t) && (0..=1 << 16).contains(l) =>
        {
            Ok([*t as usize, *l as usize])
        }
        Some(p) => Err(err(
            node,
            format!("pads {p:?}: four values in 0..=65536 expected (pools: the same at both ends)"),
        )),
    }
}

fn pool_params(node: &NodeProto, a: &Attrs) -> Result<Pool2dParams> {
    if a.get("kernel_shape").is_none() {
        return Err(err(node, "kernel_shape is required"));
    }
    let kernel = pair(node, a.ints("kernel_shape"), 1, "kernel_shape")?;
    let stride = pair(node, a.ints("strides"), 1, "strides")?;
    let dilation = pair(node, a.ints("dilations"), 1, "dilations")?;
    let ceil_mode = a.int("ceil_mode", 0) != 0;
    let count_include_pad = a.int("count_include_pad", 0) != 0;
    // Caffe's ceil-mode pooling, exported as pads one stride short at the end
    // ([b, b, b + s − 1, b + s − 1], the end below the window): symmetric padding b in ceil
    // mode covers the same windows (none starts in the padding), and with padding excluded
    // from averages it averages the same elements.
    if let Some([t, l, bo, r]) = a.ints("pads").as_deref() {
        let caffe = |begin: i64, end: i64, i: usize| {
            let window = (dilation[i] * (kernel[i] - 1) + 1) as i64;
            (0..=1 << 16).contains(&begin)
                && end == begin + stride[i] as i64 - 1
                && end < window
                && stride[i] > 1
        };
        let auto = a.string("auto_pad");
        if matches!(auto.as_deref(), None | Some("NOTSET"))
            && !ceil_mode
            && !count_include_pad
            && caffe(*t, *bo, 0)
            && caffe(*l, *r, 1)
        {
            return Ok(Pool2dParams {
                kernel,
                stride,
                padding: [*t as usize, *l as usize],
                dilation,
                ceil_mode: true,
                count_include_pad,
            });
        }
    }
    Ok(Pool2dParams {
        kernel,
        stride,
        padding: padding(node, a, kernel, stride, dilation)?,
        dilation,
        ceil_mode,
        count_include_pad,
    })
}

/// The standard-domain opset the model imports.
fn opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .unwrap_or(1)
}

/// Translates a decoded model; `dir` is its folder (external data). With `any_output` the
/// graph's output may be any tensor (forward-only use, such as conformance tests); otherwise
/// it must be flat logits.
pub fn translate(
    model: &ModelProto,
    dir: Option<&Path>,
    any_output: bool,
    file_bytes: usize,
    bound: &[HostTensor],
) -> Result<Graph> {
    let budget = tensor::Budget::for_file(file_bytes);
    let g: &GraphProto = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::Model("the ONNX file has no graph".into()))?;
    let opset = opset(model);
    let mut values: HashMap<String, Value> = HashMap::new();
    for t in &g.initializer {
        let name = t.name.clone().unwrap_or_default();
        values.insert(name, Value::Const(tensor::read(t, dir, &budget)?));
    }
    // The one image input: NCHW with a fixed channel count.
    let inputs: Vec<_> = g
        .input
        .iter()
        .filter(|i| !values.contains_key(i.name.as_deref().unwrap_or("")))
        .collect();
    if inputs.len() != bound.len() + 1 {
        return Err(Error::Model(format!(
            "the ONNX graph has {} inputs besides its weights; one image input is supported{}",
            inputs.len(),
            if bound.is_empty() {
                String::new()
            } else {
                format!(" ({} more bound to constants)", bound.len())
            }
        )));
    }
    let input = inputs[0];
    for (i, t) in inputs[1..].iter().zip(bound) {
        if t.data.len() != t.shape.numel() {
            return Err(Error::InvalidArgument(format!(
                "a value bound to input `{}` has {} values for shape {}",
                i.name.as_deref().unwrap_or(""),
                t.data.len(),
                t.shape
            )));
        }
        budget.take(t.data.len() * 4, "a bound input")?;
        let k = Const {
            dims: t.shape.dims().to_vec(),
            f: t.data.clone(),
            i: vec![],
        };
        values.insert(i.name.clone().unwrap_or_default(), Value::Const(k));
    }
    let dims: Vec<Option<i64>> = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| s.dim.iter().map(|d| d.dim_value).collect())
        .unwrap_or_default();
    let limit = 1i64 << 20;
    if dims.iter().flatten().any(|&d| d > limit) {
        return Err(Error::Model(format!(
            "the ONNX input `{}` has a dimension above {limit}: {dims:?}",
            input.name.as_deref().unwrap_or("")
        )));
    }
    // An NHWC image input (tf2onnx) that goes into Transposes to NCHW, possibly through
    // per-channel arithmetic: the model takes NCHW images, as every other.
    let input_name = input.name.clone().unwrap_or_default();
    let last = match dims[..] {
        [_, _, _, Some(c)] if c > 0 => c as usize,
        _ => 0,
    };
    let (nhwc_chain, nhwc_readers) = nhwc_prefix(g, &input_name, &values, last);
    let nhwc = dims.len() == 4 && !nhwc_readers.is_empty();
    let dims: Vec<Option<i64>> = if nhwc {
        vec![dims[0], dims[3], dims[1], dims[2]]
    } else {
        dims
    };
    // Images [n, c, h, w]; also [n], [n, f] and [n, c, l], run as [n, 1, 1, 1], [n, f, 1, 1]
    // and [n, c, l, 1].
    let channels = match dims[..] {
        [_] => 1,
        [_, Some(c)] | [_, Some(c), _] | [_, Some(c), _, _] if c > 0 => c as usize,
        _ => {
            return Err(Error::Model(format!(
                "the ONNX input `{}` must be [n, c, h, w] (or [n], [n, f], [n, c, l]) with a fixed \
                 channel count, got {dims:?}",
                input.name.as_deref().unwrap_or("")
            )))
        }
    };
    // The input shape with batch 1, where the spatial size is fixed: `Shape` nodes fold with it.
    let fixed = match dims[..] {
        [_] | [_, _] => Some(gradcam_core::Shape::new([1, channels, 1, 1])),
        [_, _, Some(l)] if l > 0 => Some(gradcam_core::Shape::new([1, channels, l as usize, 1])),
        [_, _, Some(h), Some(w)] if h > 0 && w > 0 => Some(gradcam_core::Shape::new([
            1, channels, h as usize, w as usize,
        ])),
        _ => None,
    };
    // The ONNX rank of every computed tensor (4 unless set).
    let mut ranks: HashMap<String, usize> = HashMap::new();
    ranks.insert(input.name.clone().unwrap_or_default(), dims.len());
    let ctx = Ctx {
        opset,
        input: fixed,
        batch: dims.first().copied().flatten(),
        budget: &budget,
    };
    // An input that looks NHWC ([n, h, w, 3] and the like) but does not reach Transposes to
    // NCHW through per-channel arithmetic only: say so with any error.
    // (Both spatial sizes above 4, so a small NCHW plane such as [1, 9, 4, 4] does not.)
    let looks_nhwc = !nhwc
        && matches!(dims[..], [_, h, w, Some(last)]
            if h.is_none_or(|h| h > 4) && w.is_none_or(|w| w > 4) && (1..=4).contains(&last));
    let hint = |e: Error| match e {
        Error::Model(m) if looks_nhwc => Error::Model(format!(
            "{m} (the input {dims:?} looks NHWC: an NHWC input is supported when it goes into \
             Transposes to NCHW, directly or through per-channel arithmetic with constants; \
             export with tf2onnx's `--inputs-as-nchw`)"
        )),
        e => e,
    };
    let mut b = GraphBuilder::new(channels);
    values.insert(input_name, Value::Node(b.input()));
    let out_name = g
        .output
        .first()
        .and_then(|o| o.name.clone())
        .ok_or_else(|| Error::Model("the ONNX graph has no output".into()))?;
    // Explanations seed the raw class scores (no softmax): a Softmax that makes the graph's
    // output (model-zoo graphs end with one) is left out; `--score softmax` applies it.
    let trailing_softmax = if any_output {
        None
    } else {
        g.node.iter().position(|n| {
            n.op_type.as_deref() == Some("Softmax") && n.output.first() == Some(&out_name)
        })
    };
    for (k, node) in g.node.iter().enumerate() {
        if Some(k) == trailing_softmax {
            continue;
        }
        // The Transposes that end an NHWC input's prefix: their output is its NCHW value.
        if nhwc && nhwc_readers.contains(&k) {
            let v = values.get(&node.input[0]).cloned();
            if let (Some(Value::Node(id)), Some(o)) = (v, node.output.first()) {
                values.insert(o.clone(), Value::Node(id));
                ranks.insert(o.clone(), 4);
                b.alias(o, id);
            }
            continue;
        }
        // Per-channel arithmetic before them (Keras preprocessing layers), its constants along
        // the NHWC channel axis made NCHW ones.
        let moved;
        let node = if nhwc && nhwc_chain.contains(&k) {
            moved = nchw_constants(node, &mut values);
            &moved
        } else {
            node
        };
        if !fold_bias(&mut b, &mut values, node)? {
            for name in &node.input {
                materialize(&mut b, &mut values, name)?;
            }
            translate_node(&mut b, &mut values, &ranks, node, &ctx).map_err(&hint)?;
        }
        // Ranks of computed values only (a constant's rank is its dims' length); every output
        // of a Split has its input's.
        let r = out_rank(node, &ranks, &values);
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if matches!(
                values.get(out),
                Some(Value::Node(_)) | Some(Value::MatMul { .. })
            ) {
                ranks.insert(out.clone(), r);
            }
        }
    }
    let out = match trailing_softmax {
        Some(k) => g.node[k].input.first().cloned().unwrap_or_default(),
        None => out_name,
    };
    materialize(&mut b, &mut values, &out)?;
    match values.get(&out) {
        Some(Value::Node(id)) if any_output => b.build_any(*id),
        // Scores as [n, classes, 1, 1] (pooled, or a 1×1 convolution after the pooling).
        Some(&Value::Node(id)) if b.is_unit(id) => {
            let f = b.flatten(&format!("{out}::flat"), id)?;
            b.build(f)
        }
        Some(Value::Node(id)) => b.build(*id),
        _ => Err(Error::Model(format!(
            "the ONNX output `{out}` is not computed from the input"
        ))),
    }
}

/// An NHWC image input (tf2onnx's default layout): the graph input goes, possibly through
/// per-channel arithmetic with constants (Keras' rescaling and normalisation layers), into
/// Transposes to NCHW and nowhere else. Returns that arithmetic's nodes and the Transposes
/// (none: not such an input).
fn nhwc_prefix(
    g: &GraphProto,
    input: &str,
    values: &HashMap<String, Value>,
    channels: usize,
) -> (Vec<usize>, Vec<usize>) {
    let readers = |name: &str| -> Vec<usize> {
        g.node
            .iter()
            .enumerate()
            .filter(|(_, n)| n.input.iter().any(|i| i == name))
            .map(|(k, _)| k)
            .collect()
    };
    let to_nchw = |n: &NodeProto| {
        n.op_type.as_deref() == Some("Transpose")
            && n.input.len() == 1
            && Attrs {
                node: n,
                one_d: false,
            }
            .ints("perm")
            .as_deref()
                == Some(&[0, 3, 1, 2])
    };
    // A constant operand along the last axis only: a scalar, [c], [1, 1, c] or [1, 1, 1, c],
    // of one value or one per channel (an initializer: Constant nodes are not read yet).
    let per_channel = |name: &str| match values.get(name) {
        Some(Value::Const(k)) => {
            !name.is_empty()
                && k.dims.len() <= 4
                && k.dims.iter().rev().skip(1).all(|&d| d == 1)
                && (k.f.len() == 1 || k.f.len() == channels)
        }
        _ => false,
    };
    // A tensor the graph also outputs keeps its NHWC layout there: not such a prefix.
    let output = |name: &str| g.output.iter().any(|o| o.name.as_deref() == Some(name));
    let mut chain = Vec::new();
    let mut cur = input.to_string();
    loop {
        let rs = readers(&cur);
        if output(&cur) {
            return (vec![], vec![]);
        }
        if !rs.is_empty() && rs.iter().all(|&k| to_nchw(&g.node[k])) {
            return (chain, rs);
        }
        let [k] = rs[..] else {
            return (vec![], vec![]);
        };
        let n = &g.node[k];
        let arithmetic = matches!(n.op_type.as_deref(), Some("Add" | "Sub" | "Mul" | "Div"));
        let other = n.input.iter().find(|i| **i != cur);
        match (arithmetic && n.input.len() == 2, other, n.output.first()) {
            (true, Some(c), Some(o)) if per_channel(c) && chain.len() < 16 => {
                chain.push(k);
                cur = o.clone();
            }
            _ => return (vec![], vec![]),
        }
    }
}

/// `node` with its constant operand (per channel along NHWC's last axis) made an NCHW
/// per-channel constant `[1, c, 1, 1]` under a new name.
fn nchw_constants(node: &NodeProto, values: &mut HashMap<String, Value>) -> NodeProto {
    let mut moved = node.clone();
    for name in moved.input.iter_mut() {
        if let Some(Value::Const(k)) = values.get(name.as_str()) {
            if k.f.len() > 1 {
                let mut k = k.clone();
                k.dims = vec![1, k.f.len(), 1, 1];
                // A name no tensor of the graph has.
                let mut renamed = format!("{name}::nchw");
                while values.contains_key(&renamed) {
                    renamed.push('_');
                }
                values.insert(renamed.clone(), Value::Const(k));
                *name = renamed;
            }
        }
    }
    moved
}

/// Whether `axis` (possibly negative) of a rank-`rank` tensor is its channel axis, 1 (a rank-1
/// tensor has none: its axis 0 is the batch).
fn channel_axis(axis: i64, rank: i64) -> bool {
    rank >= 2 && (axis == 1 || axis.checked_add(rank) == Some(1))
}

/// The ONNX rank of a node's output: that of its first input, except where the operator
/// makes a matrix of it.
fn out_rank(
    node: &NodeProto,
    ranks: &HashMap<String, usize>,
    values: &HashMap<String, Value>,
) -> usize {
    let keepdims = Attrs { node, one_d: false }.int("keepdims", 1);
    match node.op_type.as_deref().unwrap_or("") {
        // A reshape: its target's length (a channel shuffle reshapes back to rank 4).
        "Reshape" => match node.input.get(1).and_then(|n| values.get(n)) {
            Some(Value::Const(k)) if !k.f.is_empty() => k.f.len(),
            _ => 2,
        },
        "Flatten" | "Gemm" | "MatMul" | "Squeeze" => 2,
        // A mean without keepdims drops its axes (all spatial ones: a matrix).
        "ReduceMean" if keepdims == 0 => {
            let attr = Attrs { node, one_d: false }.ints("axes");
            let input = || match node.input.get(1).and_then(|n| values.get(n)) {
                Some(Value::Const(k)) => Some(k.f.len()),
                _ => None,
            };
            match attr.map(|a| a.len()).or_else(input) {
                Some(k) => computed_rank(node, ranks).saturating_sub(k).max(2),
                None => 2,
            }
        }
        // Broadcasting: the largest rank among the operands, constants included.
        "Add" | "Sub" | "Mul" | "Div" | "Sum" => node
            .input
            .iter()
            .filter_map(|n| match (ranks.get(n), values.get(n)) {
                (Some(&r), _) => Some(r),
                (None, Some(Value::Const(k))) => Some(k.dims.len()),
                _ => None,
            })
            .max()
            .unwrap_or(4),
        _ => computed_rank(node, ranks),
    }
}

/// The ONNX rank of a node's first computed input (constants have no entry): 4 unless a 2-D
/// or 3-D input, or a flattening, set it.
fn computed_rank(node: &NodeProto, ranks: &HashMap<String, usize>) -> usize {
    node.input
        .iter()
        .find_map(|n| ranks.get(n))
        .copied()
        .unwrap_or(4)
}

/// `p op q` for two constants of one shape, or one of them a single value: integers when both
/// are (ONNX's integer division truncates), floats otherwise. The folded batch size (`BATCH`)
/// does not take part in arithmetic.
fn fold_arithmetic(node: &NodeProto, op: &str, p: &Const, q: &Const) -> Result<Const> {
    let (n, m) = (p.f.len(), q.f.len());
    let inconsistent = |k: &Const| !k.i.is_empty() && k.i.len() != k.f.len();
    if n == 0 || m == 0 || inconsistent(p) || inconsistent(q) {
        return Err(err(node, "arithmetic on an empty constant"));
    }
    if n != m && n != 1 && m != 1 {
        return Err(err(
            node,
            format!("constants of shapes {:?} and {:?}", p.dims, q.dims),
        ));
    }
    if n == m && n > 1 && p.dims != q.dims {
        return Err(err(
            node,
            format!("constants of shapes {:?} and {:?}", p.dims, q.dims),
        ));
    }
    if p.i.contains(&BATCH) || q.i.contains(&BATCH) {
        return Err(err(node, "arithmetic on the batch size (a dynamic batch)"));
    }
    // The longer operand's shape; for two single values the one of higher rank.
    let dims = if n > m || (n == m && p.dims.len() >= q.dims.len()) {
        p.dims.clone()
    } else {
        q.dims.clone()
    };
    let len = n.max(m);
    if len > 1 << 16 {
        return Err(err(
            node,
            "only small constants (shapes, scalars) are folded",
        ));
    }
    let at = |v: usize, k: usize| if v == 1 { 0 } else { k };
    if !p.i.is_empty() && !q.i.is_empty() {
        let mut i = Vec::with_capacity(len);
        for k in 0..len {
            let (a, c) = (p.i[at(n, k)], q.i[at(m, k)]);
            i.push(
                match op {
                    "Add" => a.checked_add(c),
                    "Sub" => a.checked_sub(c),
                    "Mul" => a.checked_mul(c),
                    _ => a.checked_div(c),
                }
                .ok_or_else(|| err(node, format!("{a} {op} {c} overflows or divides by zero")))?,
            );
        }
        let f = i.iter().map(|&v| v as f32).collect();
        return Ok(Const { dims, f, i });
    }
    let f = (0..len)
        .map(|k| {
            let (a, c) = (p.f[at(n, k)], q.f[at(m, k)]);
            match op {
                "Add" => a + c,
                "Sub" => a - c,
                "Mul" => a * c,
                _ => a / c,
            }
        })
        .collect();
    Ok(Const { dims, f, i: vec![] })
}

/// Channels `lo..lo + len` of a computed tensor with `ch` channels: a 1×1 convolution by rows of
/// the identity (exact; its backward puts the gradient back in place).
fn channel_range(
    b: &mut GraphBuilder,
    name: &str,
    src: NodeId,
    ch: usize,
    lo: usize,
    len: usize,
    ctx: &Ctx,
) -> Result<NodeId> {
    let bytes = len
        .checked_mul(ch)
        .and_then(|v| v.checked_mul(4))
        .ok_or_else(|| Error::Model(format!("{name}: a slice of too many channels")))?;
    ctx.budget.take(bytes, "a channel slice")?;
    let mut wt = vec![0.0f32; len * ch];
    for i in 0..len {
        wt[i * ch + lo + i] = 1.0;
    }
    let wt = HostTensor::new([len, ch, 1, 1], wt)?;
    b.conv2d(name, src, wt, None, Conv2dParams::new(1, 0))
}

/// `Split` of a computed tensor's channels into consecutive parts (sizes from the `split`
/// input or attribute, else equal parts as `num_outputs` or the outputs ask), each output a
/// [`channel_range`].
fn split_channels(
    b: &mut GraphBuilder,
    values: &mut HashMap<String, Value>,
    ranks: &HashMap<String, usize>,
    node: &NodeProto,
    ctx: &Ctx,
) -> Result<()> {
    let a = Attrs { node, one_d: false };
    let rank = computed_rank(node, ranks) as i64;
    let axis = a.int("axis", 0);
    if !channel_axis(axis, rank) {
        return Err(err(
            node,
            format!("only a split of channels (axis 1) is supported, not axis {axis}"),
        ));
    }
    let src = match node.input.first().and_then(|n| values.get(n)) {
        Some(Value::Node(id)) => *id,
        _ => return Err(err(node, "input 0 must be a computed tensor")),
    };
    let ch = b.channels(src)?;
    let parts = node.output.len();
    let given = if ctx.opset < 13 {
        a.ints("split")
    } else {
        match node
            .input
            .get(1)
            .filter(|n| !n.is_empty())
            .map(|n| values.get(n))
        {
            Some(Some(Value::Const(k))) => Some(k.ints()),
            Some(_) => return Err(err(node, "the split sizes must be a constant")),
            None => None,
        }
    };
    let sizes: Vec<usize> = match given {
        Some(v) if v.iter().all(|&s| (0..=ch as i64).contains(&s)) => {
            v.iter().map(|&s| s as usize).collect()
        }
        Some(v) => return Err(err(node, format!("split sizes {v:?} of {ch} channels"))),
        None => {
            // Equal parts; the last smaller where they do not divide (opset 18's rule).
            let k = a.int("num_outputs", parts as i64);
            if k != parts as i64 {
                return Err(err(node, format!("num_outputs {k} for {parts} outputs")));
            }
            let k = parts.max(1);
            let each = ch.div_ceil(k);
            (0..k)
                .map(|i| each.min(ch.saturating_sub(i * each)))
                .collect()
        }
    };
    if sizes.len() != parts || sizes.iter().sum::<usize>() != ch || sizes.contains(&0) {
        return Err(err(
            node,
            format!("split sizes {sizes:?} for {ch} channels into {parts} outputs"),
        ));
    }
    let mut lo = 0;
    for (name, len) in node.output.iter().zip(sizes) {
        if !name.is_empty() {
            let id = channel_range(b, name, src, ch, lo, len, ctx)?;
            values.insert(name.clone(), Value::Node(id));
        }
        lo += len;
    }
    Ok(())
}

/// Makes a pending `MatMul` value a linear layer without bias, named by its tensor.
fn materialize(
    b: &mut GraphBuilder,
    values: &mut HashMap<String, Value>,
    name: &str,
) -> Result<()> {
    if let Some(Value::MatMul { x, weight }) = values.get(name).cloned() {
        let id = b.linear(name, x, weight, None)?;
        values.insert(name.to_string(), Value::Node(id));
    }
    Ok(())
}

/// `Add(MatMul(x, W), bias)` with a constant bias of one value per output: one linear layer
/// named by the `Add`'s output. Returns whether the node was consumed.
fn fold_bias(
    b: &mut GraphBuilder,
    values: &mut HashMap<String, Value>,
    node: &NodeProto,
) -> Result<bool> {
    if node.op_type.as_deref() != Some("Add")
        || node.input.len() != 2
        || !matches!(node.domain.as_deref(), None | Some("") | Some("ai.onnx"))
    {
        return Ok(false);
    }
    let get = |i: usize| values.get(&node.input[i]).cloned();
    let (pending, bias) = match (get(0), get(1)) {
        (Some(m @ Value::MatMul { .. }), Some(Value::Const(c)))
        | (Some(Value::Const(c)), Some(m @ Value::MatMul { .. })) => (m, c),
        _ => return Ok(false),
    };
    let Value::MatMul { x, weight } = pending else {
        return Ok(false);
    };
    let outputs = weight.shape.dim(0);
    if bias.f.len() != outputs || bias.dims.iter().rev().skip(1).any(|&d| d != 1) {
        return Ok(false);
    }
    let out = node.output.first().cloned().unwrap_or_default();
    let id = b.linear(&out, x, weight, Some(HostTensor::new([outputs], bias.f)?))?;
    values.insert(out, Value::Node(id));
    Ok(true)
}

/// A per-channel constant for an image with `c` channels: a scalar, or `[c, 1, 1]` /
/// `[1, c, 1, 1]` (numpy broadcasting over NCHW), as `c` values.
/// A scalar or per-channel constant as `c` values, for a tensor of ONNX rank `rank`: by
/// broadcasting, per-channel means `[c]` followed by `rank − 2` ones (`[c, 1, 1]` for images).
fn per_channel(node: &NodeProto, k: &Const, c: usize, rank: usize) -> Result<Vec<f32>> {
    let dims: Vec<usize> = k.dims.iter().copied().skip_while(|&d| d == 1).collect();
    let per_channel = dims.first() == Some(&c)
        && dims.len() == rank.saturating_sub(1)
        && dims[1..].iter().all(|&d| d == 1)
        && k.dims.len() <= rank;
    match k.f.len() {
        1 => Ok(vec![k.f[0]; c]),
        n if n == c && per_channel => Ok(k.f.clone()),
        _ => Err(err(
            node,
            format!(
                "a constant of shape {:?} on {c} channels of a rank-{rank} tensor: only scalars \
                 and per-channel constants are supported",
                k.dims
            ),
        )),
    }
}

/// `y = x·scale + shift` per channel, as an inference batch norm (ε = 0, mean 0, var 1).
fn affine(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    scale: Vec<f32>,
    shift: Vec<f32>,
) -> Result<NodeId> {
    let c = scale.len();
    let t = |d: Vec<f32>| HostTensor::new([c], d);
    b.batch_norm(
        name,
        x,
        [t(scale)?, t(shift)?, t(vec![0.0; c])?, t(vec![1.0; c])?],
        0.0,
    )
}

/// A constant with its axes permuted (`perm[i]` is the source axis of axis `i`).
fn transpose_const(k: &Const, perm: &[usize]) -> Const {
    let rank = k.dims.len();
    let dims: Vec<usize> = perm.iter().map(|&p| k.dims[p]).collect();
    let mut stride = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        stride[i] = stride[i + 1] * k.dims[i + 1];
    }
    let n = k.f.len();
    let mut src_of = vec![0usize; n];
    let mut idx = vec![0usize; rank];
    for slot in src_of.iter_mut() {
        *slot = idx.iter().zip(perm).map(|(&i, &p)| i * stride[p]).sum();
        for ax in (0..rank).rev() {
            idx[ax] += 1;
            if idx[ax] < dims[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    Const {
        dims,
        f: src_of.iter().map(|&s| k.f[s]).collect(),
        i: if k.i.is_empty() {
            vec![]
        } else {
            src_of.iter().map(|&s| k.i[s]).collect()
        },
    }
}

/// One spatial axis of a constant pad as a one-hot convolution kernel: `(kernel, tap,
/// padding, dilation)` such that a convolution with a kernel of that size, one at `tap`,
/// symmetric `padding` and that dilation shifts the input by `before` and grows it by
/// `before + after`: output `o` reads input `o − before`. Equal pads: one tap, padding `p`.
/// Else two taps `|before − after|` apart, padding `max` (so the output has
/// `l + 2·max − |before − after| = l + before + after` values), the one at 0 when
/// `before ≥ after`, else at 1 — two multiply-adds per value whatever the pads.
fn pad_axis(before: usize, after: usize) -> (usize, usize, usize, usize) {
    let p = before.max(after);
    match before.abs_diff(after) {
        0 => (1, 0, p, 1),
        d => (2, usize::from(after > before), p, d),
    }
}

/// A constant pad of the spatial axes (`[top, left]`, `[bottom, right]`) by `value`: a
/// depthwise convolution whose kernel is one-hot, so its backward is the crop.
fn pad2d(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    before: [usize; 2],
    after: [usize; 2],
    value: f32,
) -> Result<NodeId> {
    let c = b.channels(x)?;
    let (kh, th, ph, dh) = pad_axis(before[0], after[0]);
    let (kw, tw, pw, dw) = pad_axis(before[1], after[1]);
    let mut w = vec![0.0f32; c * kh * kw];
    for ch in 0..c {
        w[(ch * kh + th) * kw + tw] = 1.0;
    }
    let p = Conv2dParams {
        stride: [1, 1],
        padding: [ph, pw],
        dilation: [dh, dw],
        groups: c,
    };
    if value == 0.0 {
        return b.conv2d(name, x, HostTensor::new([c, 1, kh, kw], w)?, None, p);
    }
    // pad(x, v) = pad(x − v, 0) + v.
    let shifted = affine(
        b,
        &format!("{name}::shift"),
        x,
        vec![1.0; c],
        vec![-value; c],
    )?;
    let padded = b.conv2d(
        &format!("{name}::pad"),
        shifted,
        HostTensor::new([c, 1, kh, kw], w)?,
        None,
        p,
    )?;
    affine(b, name, padded, vec![1.0; c], vec![value; c])
}

/// What every node's translation may consult.
struct Ctx<'a> {
    /// The standard-domain opset.
    opset: i64,
    /// The input shape with batch 1, where its spatial size is fixed (`Shape` nodes fold).
    input: Option<gradcam_core::Shape>,
    /// The ONNX input's batch size, where fixed.
    batch: Option<i64>,
    /// Tensor bytes the import may still materialise.
    budget: &'a tensor::Budget,
}

/// Axes of a 4-D tensor, negative ones counted from the end, in increasing order.
fn sorted_axes(axes: Vec<i64>, rank: usize) -> Vec<i64> {
    let mut v: Vec<i64> = axes
        .into_iter()
        .map(|v| if v < 0 { v + rank as i64 } else { v })
        .collect();
    v.sort_unstable();
    v
}

/// Longest folded shape constant (shapes, axes, indices): anything longer is not a shape.
const MAX_SHAPE_CONST: usize = 64;

fn translate_node(
    b: &mut GraphBuilder,
    values: &mut HashMap<String, Value>,
    ranks: &HashMap<String, usize>,
    node: &NodeProto,
    ctx: &Ctx,
) -> Result<()> {
    let (opset, input) = (ctx.opset, ctx.input.as_ref());
    let op = node.op_type.as_deref().unwrap_or("");
    if !matches!(node.domain.as_deref(), None | Some("") | Some("ai.onnx")) {
        return Err(err(
            node,
            format!(
                "operator domain `{}` is not supported",
                node.domain.as_deref().unwrap_or("")
            ),
        ));
    }
    let out = node
        .output
        .first()
        .cloned()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| err(node, "no output"))?;
    if op == "Split" {
        return split_channels(b, values, ranks, node, ctx);
    }
    if node.output.iter().skip(1).any(|o| !o.is_empty()) && !matches!(op, "Dropout") {
        return Err(err(node, "only the first output is supported"));
    }
    let value = |i: usize| -> Result<&Value> {
        let name = node
            .input
            .get(i)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| err(node, format!("input {i} is missing")))?;
        values.get(name).ok_or_else(|| {
            err(
                node,
                format!("input `{name}` is not defined before the node"),
            )
        })
    };
    let x = |i: usize| -> Result<NodeId> {
        match value(i)? {
            Value::Node(id) => Ok(*id),
            Value::Grouped { .. } => Err(err(
                node,
                format!("input {i} is a rank-5 view of channels, supported only as a channel shuffle (Reshape, Transpose, Reshape)"),
            )),
            Value::Hwc { .. } | Value::FlatHwc { .. } => Err(err(
                node,
                format!("input {i} is a computed tensor in NHWC order (Transpose 0, 2, 3, 1), supported only flattened into a MatMul or Gemm"),
            )),
            _ => Err(err(
                node,
                format!("input {i} is a constant; a computed tensor is expected"),
            )),
        }
    };
    let c = |i: usize| -> Result<Const> {
        match value(i)? {
            Value::Const(k) => {
                ctx.budget
                    .take(k.f.len() * 4 + k.i.len() * 8, "a constant's use")?;
                Ok(k.clone())
            }
            _ => Err(err(
                node,
                format!("input {i} must be a constant (an initializer or a Constant node)"),
            )),
        }
    };
    let has = |i: usize| node.input.get(i).is_some_and(|n| !n.is_empty());
    // Convolutions and pools over one axis (kernel_shape, or a 3-D convolution weight).
    let one_d = matches!(op, "Conv" | "MaxPool" | "AveragePool")
        && (Attrs { node, one_d: false }
            .ints("kernel_shape")
            .is_some_and(|k| k.len() == 1)
            || (op == "Conv" && matches!(value(1), Ok(Value::Const(w)) if w.dims.len() == 3)));
    let a = Attrs { node, one_d };
    // The ONNX rank of the first input (4 unless a 2-D or 3-D input, or a flattening, set
    // it): `[n, f]` runs as `[n, f, 1, 1]`, `[n, c, l]` as `[n, c, l, 1]`.
    let rank0 = computed_rank(node, ranks);
    // A computed input as the flat `[n, f]` a linear layer or a softmax takes.
    let flat_name = format!("{out}::flat");
    let flat = |b: &mut GraphBuilder, id: NodeId| -> Result<NodeId> {
        match b.channels(id) {
            Ok(_) if rank0 == 2 => b.flatten(&flat_name, id),
            Ok(_) => Err(err(
                node,
                format!("a rank-{rank0} input where a matrix is expected"),
            )),
            Err(_) => Ok(id),
        }
    };
    // The input of a product by a constant matrix `data` ([o, i], rows the outputs): a flat
    // computed tensor, or an NHWC flatten, `data`'s columns then reordered from HWC to CHW.
    let product_input =
        |b: &mut GraphBuilder, data: Vec<f32>, o: usize, i: usize| -> Result<(NodeId, Vec<f32>)> {
            match value(0)?.clone() {
                Value::FlatHwc { x: src, chw } if chw.iter().product::<usize>() == i => {
                    Ok((src, hwc_columns_to_chw(&data, o, chw)))
                }
                Value::FlatHwc { chw, .. } => Err(err(
                    node,
                    format!("{chw:?} features (NHWC) times a matrix for {i}"),
                )),
                _ => Ok((flat(b, x(0)?)?, data)),
            }
        };
    // An `axes` list: an attribute before opset `since`, the second input from it on.
    let axes_from = |since: i64| -> Result<Option<Vec<i64>>> {
        if opset < since {
            Ok(a.ints("axes"))
        } else if has(1) {
            Ok(Some(c(1)?.ints()))
        } else {
            Ok(None)
        }
    };
    let id = match op {
        "Conv" => {
            let mut w = c(1)?;
            if one_d && w.dims.len() == 3 {
                w.dims.push(1);
            }
            if w.dims.len() != 4 || w.dims.contains(&0) {
                return Err(err(
                    node,
                    format!(
                        "weight {:?}: a non-empty 2-D convolution weight is expected",
                        w.dims
                    ),
                ));
            }
            let kernel = [w.dims[2], w.dims[3]];
            let stride = pair(node, a.ints("strides"), 1, "strides")?;
            let dilation = pair(node, a.ints("dilations"), 1, "dilations")?;
            let mut src = x(0)?;
            // The input's size, asked for only by SAME padding at a stride (the split then
            // depends on it, and the graph takes that input size only).
            let hw = || -> Result<Option<[usize; 2]>> {
                match input {
                    Some(s) => {
                        let d = b.infer_shape(src, s)?.nchw("Conv")?;
                        Ok(Some([d[2], d[3]]))
                    }
                    None => Ok(None),
                }
            };
            let (before, after) = conv_padding(node, &a, kernel, stride, dilation, hw)?;
            let same = a.string("auto_pad").is_some_and(|p| p.starts_with("SAME"));
            if let (Some(s), true) = (input, same && stride != [1, 1]) {
                b.require_input_size([s.dims()[2], s.dims()[3]]);
            }
            // Uneven padding (TensorFlow's SAME at stride 2: one more row and column at the
            // end): the even part in the convolution, the rest as a zero Pad before it.
            let even = [before[0].min(after[0]), before[1].min(after[1])];
            if before != after {
                let (bf, af) = (
                    [before[0] - even[0], before[1] - even[1]],
                    [after[0] - even[0], after[1] - even[1]],
                );
                src = pad2d(b, &format!("{out}::pad"), src, bf, af, 0.0)?;
            }
            let p = Conv2dParams {
                stride,
                padding: even,
                dilation,
                groups: {
                    let g = a.int("group", 1);
                    let c = b.channels(x(0)?)?;
                    usize::try_from(g)
                        .ok()
                        .filter(|g| (1..=c).contains(g))
                        .ok_or_else(|| err(node, format!("group {g} for {c} input channels")))?
                },
            };
            let bias = if has(2) { Some(c(2)?.tensor()?) } else { None };
            b.conv2d(&out, src, w.tensor()?, bias, p)?
        }
        "Relu" => b.relu(&out, x(0)?)?,
        "Sigmoid" => b.activation(&out, x(0)?, Activation::Sigmoid)?,
        "Tanh" => b.activation(&out, x(0)?, Activation::Tanh)?,
        "LeakyRelu" => {
            let al = a.float("alpha", 0.01);
            b.activation(&out, x(0)?, Activation::LeakyRelu(al))?
        }
        "Elu" => b.activation(&out, x(0)?, Activation::Elu(a.float("alpha", 1.0)))?,
        "HardSigmoid" => {
            let h = Activation::HardSigmoid(a.float("alpha", 0.2), a.float("beta", 0.5));
            b.activation(&out, x(0)?, h)?
        }
        "HardSwish" => b.activation(&out, x(0)?, Activation::HardSwish)?,
        "LRN" => {
            let size = a.int("size", 0);
            if !(1..=1 << 16).contains(&size) {
                return Err(err(node, format!("size {size}: 1 or more channels")));
            }
            let p = LrnParams {
                size: size as usize,
                alpha: a.float("alpha", 1e-4),
                beta: a.float("beta", 0.75),
                bias: a.float("bias", 1.0),
            };
            b.lrn(&out, x(0)?, p)?
        }
        "Clip" => {
            let (lo, hi) = if opset < 11 {
                (
                    a.float("min", f32::NEG_INFINITY),
                    a.float("max", f32::INFINITY),
                )
            } else {
                let bound = |i: usize, default: f32| -> Result<f32> {
                    if !has(i) {
                        return Ok(default);
                    }
                    let k = c(i)?;
                    k.f.first()
                        .copied()
                        .filter(|_| k.f.len() == 1)
                        .ok_or_else(|| err(node, "min and max must be scalars"))
                };
                (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
            };
            b.clip(&out, x(0)?, lo, hi)?
        }
        "PRelu" => {
            let src = x(0)?;
            let ch = b.channels(src)?;
            let k = c(1)?;
            // Before opset 7 a 1-D slope of one value per channel is per channel whatever
            // the rank (no broadcasting yet).
            let slope = if opset < 7 && k.dims == [ch] {
                k.f.clone()
            } else {
                per_channel(node, &k, ch, rank0)?
            };
            if slope.iter().all(|&v| v == slope[0]) {
                b.activation(&out, src, Activation::LeakyRelu(slope[0]))?
            } else {
                // prelu(x) = (1 − a)·max(x, 0) + a·x per channel; max(x, 0) as a leaky ReLU
                // of slope 0 (an activation: the guided rules apply to rectifiers only, and
                // PyTorch's guided backprop leaves PReLU alone too).
                let pos = b.activation(&format!("{out}::pos"), src, Activation::LeakyRelu(0.0))?;
                let keep: Vec<f32> = slope.iter().map(|a| 1.0 - a).collect();
                let pos = affine(b, &format!("{out}::pos_scaled"), pos, keep, vec![0.0; ch])?;
                let lin = affine(b, &format!("{out}::linear"), src, slope, vec![0.0; ch])?;
                b.add(&out, pos, lin)?
            }
        }
        "Pad" => {
            let mode = a.string("mode").unwrap_or_else(|| "constant".into());
            if mode != "constant" {
                return Err(err(node, format!("pad mode `{mode}` (only constant)")));
            }
            let (pads, value) = if opset < 11 {
                let pads = a
                    .ints("pads")
                    .ok_or_else(|| err(node, "a Pad without its `pads` attribute"))?;
                (pads, a.float("value", 0.0))
            } else {
                let v = if has(2) {
                    match c(2)?.f[..] {
                        [v] => v,
                        _ => return Err(err(node, "the pad value must be one value")),
                    }
                } else {
                    0.0
                };
                (c(1)?.ints(), v)
            };
            // Pads by axis: every axis of the (rank0) tensor, or those the `axes` input
            // (opset 18) names, each once.
            let rank = rank0 as i64;
            let axes: Vec<i64> = if opset >= 18 && has(3) {
                c(3)?
                    .ints()
                    .iter()
                    .map(|&v| if v < 0 { v + rank } else { v })
                    .collect()
            } else {
                (0..rank).collect()
            };
            let mut seen = [false; 4];
            let valid = axes.iter().all(|&v| {
                (0..rank).contains(&v) && !std::mem::replace(&mut seen[v as usize], true)
            });
            if pads.len() != 2 * axes.len() || !valid {
                return Err(err(
                    node,
                    format!("pads {pads:?} for axes {axes:?} of a rank-{rank0} tensor"),
                ));
            }
            // Runtime axes: [n, c, l] runs as [n, c, l, 1], so its axis 2 is the height.
            let mut before = [0i64; 4];
            let mut after = [0i64; 4];
            for (i, &ax) in axes.iter().enumerate() {
                before[ax as usize] = pads[i];
                after[ax as usize] = pads[i + axes.len()];
            }
            if before[..2] != [0, 0] || after[..2] != [0, 0] {
                return Err(err(node, "only the spatial axes can be padded"));
            }
            let fits = |v: i64| (0..=1024).contains(&v);
            if !before.iter().chain(&after).all(|&v| fits(v)) {
                return Err(err(
                    node,
                    format!("pads {pads:?}: each must be in 0..=1024 (negative pads crop)"),
                ));
            }
            let (bf, af) = (
                [before[2] as usize, before[3] as usize],
                [after[2] as usize, after[3] as usize],
            );
            let src = x(0)?;
            if bf == [0, 0] && af == [0, 0] {
                b.alias(&out, src);
                values.insert(out, Value::Node(src));
                return Ok(());
            }
            pad2d(b, &out, src, bf, af, value)?
        }
        "GlobalMaxPool" => {
            let src = x(0)?;
            let shape = match input {
                Some(s) => b.infer_shape(src, s)?,
                None => {
                    return Err(err(
                        node,
                        "global max pooling needs the model's input size fixed",
                    ))
                }
            };
            let d = shape.nchw("GlobalMaxPool")?;
            let p = Pool2dParams {
                kernel: [d[2], d[3]],
                stride: [1, 1],
                padding: [0, 0],
                dilation: [1, 1],
                ceil_mode: false,
                count_include_pad: false,
            };
            b.max_pool(&out, src, p)?
        }
        "Sum" => {
            let n = node.input.len();
            if n == 0 {
                return Err(err(node, "a Sum of nothing"));
            }
            let mut acc = x(0)?;
            for i in 1..n {
                let name = if i + 1 == n {
                    out.clone()
                } else {
                    format!("{out}::{i}")
                };
                acc = b.add(&name, acc, x(i)?)?;
            }
            if n == 1 {
                b.alias(&out, acc);
            }
            acc
        }
        "ConstantOfShape" => {
            let shape = c(0)?.ints();
            if shape.len() > 8 {
                return Err(err(node, "only shapes of rank up to 8"));
            }
            let dims: Vec<usize> = shape
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| err(node, format!("dimension {d}"))))
                .collect::<Result<_>>()?;
            let n = dims
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| err(node, "a shape too large"))?;
            ctx.budget.take(n.saturating_mul(12), "ConstantOfShape")?;
            let v = match a.get("value").and_then(|v| v.t.as_ref()) {
                Some(t) => tensor::read(t, None, ctx.budget)?,
                None => Const {
                    dims: vec![1],
                    f: vec![0.0],
                    i: vec![0],
                },
            };
            let [f] = v.f[..] else {
                return Err(err(node, "the value must be one value"));
            };
            let i = v.i.first().copied();
            values.insert(
                out,
                Value::Const(Const {
                    dims,
                    f: vec![f; n],
                    i: i.map_or_else(Vec::new, |i| vec![i; n]),
                }),
            );
            return Ok(());
        }
        "MaxPool" => b.max_pool(&out, x(0)?, pool_params(node, &a)?)?,
        "AveragePool" => {
            let p = pool_params(node, &a)?;
            if p.dilation != [1, 1] {
                return Err(err(node, "dilated average pooling is not supported"));
            }
            b.avg_pool(&out, x(0)?, p)?
        }
        "GlobalAveragePool" => b.global_avg_pool(&out, x(0)?)?,
        "ReduceMean" => {
            let axes = axes_from(18)?
                .ok_or_else(|| err(node, "a mean over every axis is not supported"))?;
            let axes = sorted_axes(axes, rank0);
            let keep = a.int("keepdims", 1) != 0;
            let src = x(0)?;
            // Every spatial axis: global pooling. One of two (kept): a pool along it.
            let all: &[i64] = if rank0 == 3 { &[2] } else { &[2, 3] };
            if axes == all {
                if keep {
                    b.global_avg_pool(&out, src)?
                } else {
                    let pooled = b.global_avg_pool(&format!("{out}::pool"), src)?;
                    b.flatten(&out, pooled)?
                }
            } else if rank0 == 4 && (axes == [2] || axes == [3]) {
                let d = match input {
                    Some(s) => b.infer_shape(src, s)?.nchw("ReduceMean")?,
                    None => {
                        return Err(err(node, "a mean over one axis needs the input size fixed"))
                    }
                };
                // The window is the file's fixed size: other sizes would pool part of the axis.
                if let Some(s) = input {
                    b.require_input_size([s.dims()[2], s.dims()[3]]);
                }
                let kernel = if axes == [2] { [d[2], 1] } else { [1, d[3]] };
                let p = Pool2dParams {
                    kernel,
                    stride: [1, 1],
                    padding: [0, 0],
                    dilation: [1, 1],
                    ceil_mode: false,
                    count_include_pad: false,
                };
                if keep || axes == [3] {
                    // Kept, or the width dropped: [n, c, h, 1] is the rank-3 [n, c, h] itself.
                    b.avg_pool(&out, src, p)?
                } else {
                    // The height dropped: the [n, c, 1, w] row as the rank-3 [n, c, w].
                    let row = b.avg_pool(&format!("{out}::pool"), src, p)?;
                    b.column(&out, row)?
                }
            } else {
                return Err(err(
                    node,
                    format!(
                        "a mean over axes {axes:?} (keepdims {keep}) of a rank-{rank0} tensor: \
                         over the spatial axes, all or one, is supported"
                    ),
                ));
            }
        }
        "Flatten" => {
            let axis = a.int("axis", 1);
            // Axis 1 (or its negative form); a rank-1 tensor's axis 0 is its batch.
            if (if axis < 0 { axis + rank0 as i64 } else { axis }) != 1 {
                return Err(err(node, "only axis 1 is supported"));
            }
            if let Value::Hwc { x: src, chw } = value(0)?.clone() {
                let id = b.flatten(&out, src)?;
                values.insert(out, Value::FlatHwc { x: id, chw });
                return Ok(());
            }
            b.flatten(&out, x(0)?)?
        }
        "Reshape" => {
            let shape = c(1)?.ints();
            // The batch entry of a target shape: kept (0, the folded batch, -1) or the input's.
            let batch_ok = |n: i64| matches!(n, 0 | BATCH | -1) || Some(n) == ctx.batch;
            if let Value::Grouped {
                x: src,
                groups,
                transposed,
            } = value(0)?.clone()
            {
                // A channel shuffle's last reshape, back to [n, c, h, w]: out channel j is
                // channel (j mod g)·(c/g) + ⌊j/g⌋, a 1×1 convolution by a permutation matrix
                // (exact, and its backward is the inverse permutation).
                let s =
                    input.ok_or_else(|| err(node, "a channel shuffle needs a fixed input size"))?;
                let d = b.infer_shape(src, s)?.nchw("Reshape")?;
                let [_, ch, h, w] = d;
                let back = matches!(shape[..], [n, k, y, x] if batch_ok(n)
                    && (k == ch as i64 || k == -1) && y == h as i64 && x == w as i64);
                if !transposed || !back {
                    return Err(err(
                        node,
                        format!("a grouped view of channels reshaped to {shape:?}: only a channel shuffle is supported"),
                    ));
                }
                let bytes = ch
                    .checked_mul(ch * 4)
                    .ok_or_else(|| err(node, "too many channels"))?;
                ctx.budget.take(bytes, "a channel shuffle")?;
                let per = ch / groups;
                let mut wt = vec![0.0f32; ch * ch];
                for j in 0..ch {
                    wt[j * ch + (j % groups) * per + j / groups] = 1.0;
                }
                let wt = HostTensor::new([ch, ch, 1, 1], wt)?;
                let id = b.conv2d(&out, src, wt, None, Conv2dParams::new(1, 0))?;
                values.insert(out, Value::Node(id));
                return Ok(());
            }
            if let Value::Hwc { x: src, chw } = value(0)?.clone() {
                let f = chw.iter().product::<usize>() as i64;
                if !matches!(shape[..], [n, k] if batch_ok(n) && (k == f || (k == -1 && n != -1))) {
                    return Err(err(
                        node,
                        format!("an NHWC view reshaped to {shape:?}: only a flatten is supported"),
                    ));
                }
                let id = b.flatten(&out, src)?;
                values.insert(out, Value::FlatHwc { x: id, chw });
                return Ok(());
            }
            let src = x(0)?;
            if shape.len() == 5 {
                // [n, g, c/g, h, w] of a computed [n, c, h, w] (input size fixed): a grouped view.
                if let Some(s) = input {
                    let [_, ch, h, w] = b.infer_shape(src, s)?.nchw("Reshape")?;
                    if let [n, g, per, y, x] = shape[..] {
                        if batch_ok(n)
                            && g > 0
                            && per > 0
                            && g.checked_mul(per) == Some(ch as i64)
                            && y == h as i64
                            && x == w as i64
                        {
                            values.insert(
                                out,
                                Value::Grouped {
                                    x: src,
                                    groups: g as usize,
                                    transposed: false,
                                },
                            );
                            return Ok(());
                        }
                    }
                }
            }
            // A computed [n, c, h, w] as [n, c, h·w] (PyTorch's `x.view(n, c, -1)`, often before
            // a mean over the last axis: a global average pool written by hand): the Column
            // view, rank 3.
            if let [n, k, l] = shape[..] {
                let ch = b.channels(src).ok().map(|c| c as i64);
                if rank0 == 4 && batch_ok(n) && (k == 0 || Some(k) == ch) && !(n == -1 && l == -1) {
                    let plane = match input {
                        Some(s) => {
                            let [_, _, h, w] = b.infer_shape(src, s)?.nchw("Reshape")?;
                            Some((h * w) as i64)
                        }
                        None => None,
                    };
                    if l == -1 || (l > 0 && Some(l) == plane) {
                        if let (Some(s), true) = (input, l != -1) {
                            // A plane of this size's: the graph takes no other.
                            b.require_input_size([s.dims()[2], s.dims()[3]]);
                        }
                        let id = b.column(&out, src)?;
                        values.insert(out, Value::Node(id));
                        return Ok(());
                    }
                }
            }
            // A reshape of a computed [n, c, h, w] to its own shape (tf2onnx writes the
            // transpose of a 1×1 map as one): nothing to do.
            if let [n, k, y, x] = shape[..] {
                // [n, c] back to [n, c, 1, 1] (a squeeze-and-excitation gate's pooled vector).
                if let Some(unit) = b.unflattened(src) {
                    if batch_ok(n) && [y, x] == [1, 1] && b.channels(unit).ok() == Some(k as usize)
                    {
                        b.alias(&out, unit);
                        values.insert(out, Value::Node(unit));
                        return Ok(());
                    }
                }
                let same = match input {
                    Some(s) => {
                        let [_, ch, h, w] = b.infer_shape(src, s)?.nchw("Reshape")?;
                        k == ch as i64 && y == h as i64 && x == w as i64
                    }
                    None => {
                        b.is_unit(src)
                            && [y, x] == [1, 1]
                            && b.channels(src).ok() == Some(k as usize)
                    }
                };
                if batch_ok(n) && same && rank0 == 4 {
                    if let (Some(s), false) = (input, b.is_unit(src)) {
                        // A target of this size's: the graph takes no other.
                        b.require_input_size([s.dims()[2], s.dims()[3]]);
                    }
                    b.alias(&out, src);
                    values.insert(out, Value::Node(src));
                    return Ok(());
                }
            }
            // The features per row, where the input's size is fixed.
            let features = match input {
                Some(s) => {
                    Some(b.infer_shape(src, s)?.dims()[1..].iter().product::<usize>() as i64)
                }
                None => None,
            };
            // A flatten to [n, features]: the batch kept (0, the folded batch, or the input's
            // fixed batch size; -1 only with the features given) and the rest in one row.
            let ok = match shape[..] {
                [n, f] => {
                    let rest = f == -1 || Some(f) == features;
                    match n {
                        0 | BATCH => rest,
                        -1 => f != -1 && Some(f) == features,
                        n => Some(n) == ctx.batch && rest,
                    }
                }
                _ => false,
            };
            if !ok {
                return Err(err(
                    node,
                    format!(
                        "only a reshape to [n, features] (or an image's [n, c, -1]) is supported, not {shape:?}{}",
                        features.map_or(String::new(), |f| format!(" ({f} features per row)"))
                    ),
                ));
            }
            b.flatten(&out, src)?
        }
        "Gemm" => {
            if a.int("transA", 0) != 0 {
                return Err(err(node, "transA = 1 is not supported"));
            }
            let w = c(1)?;
            let [r, k] = w.dims[..] else {
                return Err(err(node, "B must be a matrix"));
            };
            if r == 0 || k == 0 {
                return Err(err(node, format!("an empty B {:?}", w.dims)));
            }
            let alpha = a.float("alpha", 1.0);
            let beta = a.float("beta", 1.0);
            // The runtime's linear layer takes [out, in].
            let data: Vec<f32> = if a.int("transB", 0) != 0 {
                w.f.iter().map(|v| v * alpha).collect()
            } else {
                (0..k)
                    .flat_map(|o| (0..r).map(move |i| (o, i)))
                    .map(|(o, i)| w.f[i * k + o] * alpha)
                    .collect()
            };
            let (o, i) = if a.int("transB", 0) != 0 {
                (r, k)
            } else {
                (k, r)
            };
            // C computed (`addmm(c, a, b)` chained): the product, then a sum with C, which
            // must then be the product's [n, o] (β = 1).
            if has(2) {
                if let Value::Node(cid) = value(2)?.clone() {
                    if beta != 1.0 {
                        return Err(err(node, format!("beta {beta} with a computed C")));
                    }
                    let src = flat(b, x(0)?)?;
                    let wt = HostTensor::new([o, i], data)?;
                    let prod = b.linear(&format!("{out}::product"), src, wt, None)?;
                    // C computed from a 2-D input runs as [n, o, 1, 1]: its rows.
                    let cid = match b.channels(cid) {
                        Ok(_) if ranks.get(&node.input[2]).copied() == Some(2) => {
                            b.flatten(&format!("{out}::c"), cid)?
                        }
                        _ => cid,
                    };
                    let id = b.add(&out, prod, cid)?;
                    values.insert(out, Value::Node(id));
                    return Ok(());
                }
            }
            let bias = if has(2) {
                let cb = c(2)?;
                let vals: Vec<f32> = match (cb.f.len(), cb.dims.as_slice()) {
                    (1, _) => vec![cb.f[0] * beta; o],
                    (n, [m]) | (n, [1, m]) if n == o && *m == o => {
                        cb.f.iter().map(|v| v * beta).collect()
                    }
                    _ => {
                        return Err(err(
                            node,
                            format!("C of shape {:?}: a bias of {o} values is expected", cb.dims),
                        ))
                    }
                };
                Some(HostTensor::new([o], vals)?)
            } else {
                None
            };
            let (src, data) = product_input(b, data, o, i)?;
            b.linear(&out, src, HostTensor::new([o, i], data)?, bias)?
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            let (v0, v1) = (value(0)?.clone(), value(1)?.clone());
            match (&v0, &v1) {
                (Value::Node(p), Value::Node(q)) if op == "Add" => b.add(&out, *p, *q)?,
                (Value::Node(p), Value::Node(q)) if op == "Sub" => {
                    let c = b.channels(*q)?;
                    let neg = affine(b, &format!("{out}::neg"), *q, vec![-1.0; c], vec![0.0; c])?;
                    b.add(&out, *p, neg)?
                }
                (Value::Node(p), Value::Node(q)) if op == "Mul" || op == "Div" => {
                    // Equal shapes, or a per-channel factor [n, c, 1, 1] (a gate, or a divisor):
                    // only where ONNX's broadcasting (aligned from the last axis) means the
                    // same, equal ranks.
                    let rank = |i: usize| ranks.get(&node.input[i]).copied().unwrap_or(4);
                    if rank(0) != rank(1) {
                        return Err(err(
                            node,
                            format!(
                                "a product of computed tensors of ranks {} and {}",
                                rank(0),
                                rank(1)
                            ),
                        ));
                    }
                    if op == "Div" {
                        // x / y = x · (1/y): the reciprocal's gradient is −1/y².
                        let r = b.activation(
                            &format!("{out}::reciprocal"),
                            *q,
                            Activation::Reciprocal,
                        )?;
                        b.mul(&out, *p, r)?
                    } else {
                        b.mul(&out, *p, *q)?
                    }
                }
                (Value::Node(id), Value::Const(k)) | (Value::Const(k), Value::Node(id)) => {
                    let node_first = matches!(v0, Value::Node(_));
                    let c = b.channels(*id)?;
                    let v = per_channel(node, k, c, rank0)?;
                    // y = x·scale + shift, as an inference batch norm (ε = 0, mean 0, var 1).
                    let (scale, shift): (Vec<f32>, Vec<f32>) = match (op, node_first) {
                        ("Add", _) => (vec![1.0; c], v),
                        ("Sub", true) => (vec![1.0; c], v.iter().map(|t| -t).collect()),
                        ("Sub", false) => (vec![-1.0; c], v),
                        ("Mul", _) => (v, vec![0.0; c]),
                        ("Div", true) => (v.iter().map(|t| 1.0 / t).collect(), vec![0.0; c]),
                        _ => {
                            // k / x = k · (1/x).
                            let name = format!("{out}::reciprocal");
                            let r = b.activation(&name, *id, Activation::Reciprocal)?;
                            let id = affine(b, &out, r, v, vec![0.0; c])?;
                            values.insert(out, Value::Node(id));
                            return Ok(());
                        }
                    };
                    affine(b, &out, *id, scale, shift)?
                }
                (Value::Const(p), Value::Const(q)) => {
                    // Shape arithmetic (`x.size(1) // groups`): folded, as Shape and Gather are.
                    let k = fold_arithmetic(node, op, p, q)?;
                    ctx.budget
                        .take(k.f.len() * 4 + k.i.len() * 8, "a folded constant")?;
                    values.insert(out, Value::Const(k));
                    return Ok(());
                }
                (Value::Grouped { .. }, _) | (_, Value::Grouped { .. }) => return Err(err(
                    node,
                    "arithmetic on a rank-5 view of channels (supported only as a channel shuffle)",
                )),
                (Value::Hwc { .. } | Value::FlatHwc { .. }, _)
                | (_, Value::Hwc { .. } | Value::FlatHwc { .. }) => return Err(err(
                    node,
                    "arithmetic on a tensor in NHWC order (Transpose 0, 2, 3, 1: supported only \
                     flattened into a MatMul or Gemm)",
                )),
                _ => return Err(err(node, "arithmetic on a pending matrix product")),
            }
        }
        "MatMul" => {
            let w = c(1)?;
            let [i, o] = w.dims[..] else {
                return Err(err(
                    node,
                    "only a product with a constant matrix is supported",
                ));
            };
            if i == 0 || o == 0 {
                return Err(err(node, format!("an empty matrix {:?}", w.dims)));
            }
            // The runtime's linear layer takes [out, in].
            let data: Vec<f32> = (0..o)
                .flat_map(|r| (0..i).map(move |q| (r, q)))
                .map(|(r, q)| w.f[q * o + r])
                .collect();
            let (src, data) = product_input(b, data, o, i)?;
            values.insert(
                out,
                Value::MatMul {
                    x: src,
                    weight: HostTensor::new([o, i], data)?,
                },
            );
            return Ok(());
        }
        "Concat"
            if node
                .input
                .iter()
                .all(|n| matches!(values.get(n), Some(Value::Const(_)))) =>
        {
            // A shape being assembled: 1-D integer constants joined end to end.
            let mut k = Const {
                dims: vec![0],
                f: vec![],
                i: vec![],
            };
            for i in 0..node.input.len() {
                let part = c(i)?;
                if part.dims.len() != 1 || k.dims[0] + part.dims[0] > MAX_SHAPE_CONST {
                    return Err(err(
                        node,
                        format!("only shapes (1-D, at most {MAX_SHAPE_CONST} values) are folded"),
                    ));
                }
                k.dims[0] += part.dims[0];
                k.f.extend(&part.f);
                k.i.extend(part.ints());
            }
            values.insert(out, Value::Const(k));
            return Ok(());
        }
        "Concat" => {
            let axis = a.int("axis", 1);
            if !channel_axis(axis, rank0 as i64) {
                return Err(err(
                    node,
                    format!("only channel concatenation, not axis {axis}"),
                ));
            }
            // Computed tensors, and constants of the same rank (coordinate channels, a second
            // graph input bound to data) as constant nodes.
            let mut xs = Vec::with_capacity(node.input.len());
            for i in 0..node.input.len() {
                if !matches!(value(i)?, Value::Const(_)) {
                    xs.push(x(i)?);
                    continue;
                }
                let t = c(i)?.tensor()?;
                let rank = t.shape.dims().len();
                if rank != rank0 || !(2..=4).contains(&rank) {
                    return Err(err(
                        node,
                        format!(
                            "input {i} is a rank-{rank} constant; a constant concatenated to a \
                             rank-{rank0} tensor must have its rank (2 to 4)"
                        ),
                    ));
                }
                let mut dims = t.shape.dims().to_vec();
                dims.resize(4, 1);
                let t = HostTensor::new(dims, t.data)?;
                xs.push(b.constant(&format!("{out}::constant{i}"), t)?);
            }
            b.concat(&out, &xs)?
        }
        "BatchNormalization" => {
            let t = |i: usize| -> Result<HostTensor> { c(i)?.tensor() };
            b.batch_norm(
                &out,
                x(0)?,
                [t(1)?, t(2)?, t(3)?, t(4)?],
                a.float("epsilon", 1e-5),
            )?
        }
        "Softmax" => {
            let axis = a.int("axis", if opset < 13 { 1 } else { -1 });
            if opset < 13 && axis == 1 && b.channels(x(0)?).is_ok() {
                // Before opset 13 axis 1 means over everything after the batch (the input
                // coerced to [n, c·h·w]): a flatten, then the softmax.
                let f = b.flatten(&flat_name, x(0)?)?;
                b.softmax(&out, f)?
            } else {
                if !channel_axis(axis, rank0 as i64) {
                    return Err(err(
                        node,
                        format!(
                            "softmax over axis {axis} of a rank-{rank0} tensor (only over axis 1)"
                        ),
                    ));
                }
                let src = flat(b, x(0)?)?;
                b.softmax(&out, src)?
            }
        }
        "Identity" | "Dropout" => {
            let v = value(0)?.clone();
            if let Value::Const(k) = &v {
                ctx.budget
                    .take(k.f.len() * 4 + k.i.len() * 8, "a constant's use")?;
            }
            if let Value::Node(id) = v {
                b.alias(&out, id);
            }
            values.insert(out, v);
            return Ok(());
        }
        "Shape" => {
            if a.get("start").is_some() || a.get("end").is_some() {
                return Err(err(node, "Shape with start or end is not supported"));
            }
            let input = input.ok_or_else(|| {
                err(
                    node,
                    "folding a Shape needs an input of fixed height and width",
                )
            })?;
            let s = b.infer_shape(x(0)?, input)?;
            let ints: Vec<i64> = s
                .dims()
                .iter()
                .enumerate()
                .map(|(i, &d)| if i == 0 { BATCH } else { d as i64 })
                .collect();
            let k = Const {
                dims: vec![ints.len()],
                f: ints.iter().map(|&v| v as f32).collect(),
                i: ints,
            };
            values.insert(out, Value::Const(k));
            return Ok(());
        }
        "Gather" => {
            let (data, idx) = (c(0)?, c(1)?);
            if a.int("axis", 0) != 0
                || data.dims.len() != 1
                || idx.dims.len() > 1
                || idx.f.len() > MAX_SHAPE_CONST
            {
                return Err(err(node, "only gathering from a 1-D constant along axis 0"));
            }
            let vals = data.ints();
            let picked = idx
                .ints()
                .iter()
                .map(|&j| {
                    let j = if j < 0 { j + vals.len() as i64 } else { j };
                    usize::try_from(j)
                        .ok()
                        .and_then(|j| vals.get(j).copied())
                        .ok_or_else(|| err(node, format!("index {j} out of range")))
                })
                .collect::<Result<Vec<i64>>>()?;
            let k = Const {
                dims: idx.dims.clone(),
                f: picked.iter().map(|&v| v as f32).collect(),
                i: picked,
            };
            values.insert(out, Value::Const(k));
            return Ok(());
        }
        "Squeeze" if matches!(value(0)?, Value::Node(_)) => {
            // [n, c, 1, 1] (or [n, c, 1]) → [n, c] after global pooling (TensorFlow
            // exports): a flatten.
            let src = x(0)?;
            let axes = sorted_axes(
                axes_from(13)?.ok_or_else(|| err(node, "Squeeze of a tensor needs its axes"))?,
                rank0,
            );
            let unit = match input {
                Some(s) => b.infer_shape(src, s)?.dims().get(2..) == Some(&[1, 1][..]),
                None => false,
            };
            // Every spatial axis of the ONNX tensor: [2, 3], or [2] of an [n, c, 1].
            let spatial: &[i64] = if rank0 == 3 { &[2] } else { &[2, 3] };
            if axes != spatial || rank0 < 3 || !unit {
                return Err(err(
                    node,
                    "only squeezing the 1×1 spatial axes of a pooled tensor is supported",
                ));
            }
            b.flatten(&out, src)?
        }
        "Transpose" if matches!(value(0)?, Value::Const(_)) => {
            let k = c(0)?;
            let rank = k.dims.len();
            if rank > 8 || k.dims.iter().product::<usize>() != k.f.len() {
                return Err(err(
                    node,
                    format!("a constant of shape {:?} to transpose", k.dims),
                ));
            }
            ctx.budget.take(k.f.len() * 24, "a transposed constant")?;
            let perm: Vec<usize> = match a.ints("perm") {
                Some(p) => p.iter().map(|&v| v as usize).collect(),
                None => (0..rank).rev().collect(),
            };
            let mut seen = vec![false; rank];
            if perm.len() != rank
                || perm
                    .iter()
                    .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
            {
                return Err(err(
                    node,
                    format!("permutation {perm:?} of a rank-{rank} constant"),
                ));
            }
            values.insert(out, Value::Const(transpose_const(&k, &perm)));
            return Ok(());
        }
        "Slice" => {
            // Channels start..end of a computed tensor (step 1): a 1×1 convolution by rows of
            // the identity (exact; its backward puts the gradient back in place).
            let list = |attr: &str, i: usize| -> Result<Option<Vec<i64>>> {
                if opset < 10 {
                    Ok(a.ints(attr))
                } else if has(i) {
                    Ok(Some(c(i)?.ints()))
                } else {
                    Ok(None)
                }
            };
            let (starts, ends) = (list("starts", 1)?, list("ends", 2)?);
            let axes = list("axes", 3)?.unwrap_or_else(|| vec![0]);
            let steps = if opset < 10 { None } else { list("", 4)? };
            // A slice of a 1-D constant (a shape: TensorFlow's flatten takes its batch entry
            // so), folded: one axis, a positive step.
            if let Value::Const(k) = value(0)?.clone() {
                let step = steps.as_deref().map_or(Some(1), |s| match s {
                    [v] if *v > 0 => Some(*v),
                    _ => None,
                });
                let (Some([start]), Some([end]), [0 | -1], 1, Some(step)) = (
                    starts.as_deref(),
                    ends.as_deref(),
                    &axes[..],
                    k.dims.len(),
                    step,
                ) else {
                    return Err(err(
                        node,
                        "only a slice of a 1-D constant along its axis, with a positive step, folds",
                    ));
                };
                let n = k.dims[0] as i64;
                let at = |v: i64| (if v < 0 { v + n } else { v }).clamp(0, n) as usize;
                let picks: Vec<usize> = (at(*start)..at(*end)).step_by(step as usize).collect();
                let f = picks.iter().map(|&j| k.f[j]).collect();
                let i = if k.i.is_empty() {
                    vec![]
                } else {
                    picks.iter().map(|&j| k.i[j]).collect()
                };
                values.insert(
                    out,
                    Value::Const(Const {
                        dims: vec![picks.len()],
                        f,
                        i,
                    }),
                );
                return Ok(());
            }
            let src = x(0)?;
            let ch = b.channels(src)? as i64;
            let (Some([start]), Some([end])) = (starts.as_deref(), ends.as_deref()) else {
                return Err(err(node, "only a slice along one axis is supported"));
            };
            let axis = match axes[..] {
                [ax] if ax < 0 => ax + rank0 as i64,
                [ax] => ax,
                _ => -1,
            };
            if axis != 1 || steps.is_some_and(|s| s != [1]) {
                return Err(err(
                    node,
                    format!(
                        "only a slice of channels (axis 1, step 1) is supported, not axes {axes:?}"
                    ),
                ));
            }
            let clamp = |v: i64| if v < 0 { (v + ch).max(0) } else { v.min(ch) };
            let (lo, hi) = (clamp(*start) as usize, clamp(*end) as usize);
            if hi <= lo {
                return Err(err(
                    node,
                    format!("an empty slice {start}..{end} of {ch} channels"),
                ));
            }
            channel_range(b, &out, src, ch as usize, lo, hi - lo, ctx)?
        }
        "Transpose" => {
            // Without `perm` ONNX reverses the axes.
            let rank = if matches!(value(0)?, Value::Grouped { .. }) {
                5
            } else {
                rank0
            };
            let perm = a
                .ints("perm")
                .unwrap_or_else(|| (0..rank as i64).rev().collect());
            if let Value::Grouped {
                x,
                groups,
                transposed: false,
            } = value(0)?.clone()
            {
                if perm == [0, 2, 1, 3, 4] {
                    let v = Value::Grouped {
                        x,
                        groups,
                        transposed: true,
                    };
                    values.insert(out, v);
                    return Ok(());
                }
            }
            // Back from NHWC: the tensor itself.
            if let (Value::Hwc { x: src, .. }, [0, 3, 1, 2]) = (value(0)?.clone(), &perm[..]) {
                b.alias(&out, src);
                values.insert(out, Value::Node(src));
                return Ok(());
            }
            if perm == [0, 2, 3, 1] && rank == 4 {
                if let (Value::Node(src), Some(s)) = (value(0)?.clone(), input) {
                    let [_, c, h, w] = b.infer_shape(src, s)?.nchw("Transpose")?;
                    if h * w == 1 {
                        // A 1×1 map: NHWC and NCHW orders are one.
                        b.alias(&out, src);
                        values.insert(out, Value::Node(src));
                        return Ok(());
                    }
                    // The flatten's order is this size's: the graph takes no other.
                    b.require_input_size([s.dims()[2], s.dims()[3]]);
                    values.insert(
                        out,
                        Value::Hwc {
                            x: src,
                            chw: [c, h, w],
                        },
                    );
                    return Ok(());
                }
            }
            if !perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
                return Err(err(
                    node,
                    format!(
                        "only the identity permutation (and NCHW to NHWC before a flatten, with \
                         the input size fixed) is supported, not {perm:?}"
                    ),
                ));
            }
            let v = value(0)?.clone();
            if let Value::Node(id) = v {
                b.alias(&out, id);
            }
            values.insert(out, v);
            return Ok(());
        }
        "Unsqueeze" | "Squeeze" => {
            let mut k = c(0)?;
            let axes = axes_from(13)?;
            if k.dims.len() + axes.as_ref().map_or(0, Vec::len) > 8 {
                return Err(err(node, "only shape constants of rank up to 8 are folded"));
            }
            if op == "Unsqueeze" {
                let mut axes = axes.ok_or_else(|| err(node, "Unsqueeze without axes"))?;
                let rank = (k.dims.len() + axes.len()) as i64;
                for v in axes.iter_mut() {
                    if *v < 0 {
                        *v += rank;
                    }
                }
                axes.sort_unstable();
                for &ax in &axes {
                    let ax = usize::try_from(ax)
                        .ok()
                        .filter(|&ax| ax <= k.dims.len())
                        .ok_or_else(|| err(node, format!("axis {ax} out of range")))?;
                    k.dims.insert(ax, 1);
                }
            } else {
                let rank = k.dims.len() as i64;
                let drop: Vec<usize> = match axes {
                    Some(v) => v
                        .iter()
                        .map(|&x| {
                            let ax = if x < 0 { x + rank } else { x };
                            usize::try_from(ax)
                                .ok()
                                .filter(|&ax| k.dims.get(ax) == Some(&1))
                                .ok_or_else(|| err(node, format!("axis {x} is not of size 1")))
                        })
                        .collect::<Result<_>>()?,
                    None => (0..k.dims.len()).filter(|&i| k.dims[i] == 1).collect(),
                };
                k.dims = (0..k.dims.len())
                    .filter(|i| !drop.contains(i))
                    .map(|i| k.dims[i])
                    .collect();
            }
            values.insert(out, Value::Const(k));
            return Ok(());
        }
        "Cast" => {
            // Integers (INT8..UINT64, BOOL) keep integer values; floats drop them, so that
            // later arithmetic divides as floats.
            let mut k = c(0)?;
            match a.int("to", 1) {
                2..=7 | 9 | 12 | 13 => {
                    if k.i.is_empty() {
                        k.i = k.f.iter().map(|&v| v as i64).collect();
                    }
                }
                _ => k.i.clear(),
            }
            values.insert(out, Value::Const(k));
            return Ok(());
        }
        "Constant" => {
            let k = if let Some(t) = a.get("value").and_then(|v| v.t.as_ref()) {
                tensor::read(t, None, ctx.budget)?
            } else if let Some(v) = a.get("value_float").and_then(|v| v.f) {
                Const {
                    dims: vec![],
                    f: vec![v],
                    i: vec![],
                }
            } else if let Some(v) = a.get("value_floats") {
                Const {
                    dims: vec![v.floats.len()],
                    f: v.floats.clone(),
                    i: vec![],
                }
            } else if let Some(v) = a.get("value_int").and_then(|v| v.i) {
                Const {
                    dims: vec![],
                    f: vec![v as f32],
                    i: vec![v],
                }
            } else if let Some(v) = a.get("value_ints") {
                Const {
                    dims: vec![v.ints.len()],
                    f: v.ints.iter().map(|&i| i as f32).collect(),
                    i: v.ints.clone(),
                }
            } else {
                return Err(err(node, "a Constant without a tensor, float or int value"));
            };
            values.insert(out, Value::Const(k));
            return Ok(());
        }
        other => {
            return Err(err(
                node,
                format!(
                    "operator `{other}` is not supported; supported: {}",
                    SUPPORTED.join(", ")
                ),
            ))
        }
    };
    values.insert(out, Value::Node(id));
    Ok(())
}
