//! The graph: nodes in topological order, each an op on earlier nodes, with host-side parameters.

use gradcam_core::{
    check, Activation, Conv2dParams, Error, HostTensor, LrnParams, Pool2dParams, Rectifier, Result,
    Shape,
};

/// Index of a node in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// Index of a parameter tensor in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub usize);

/// An operation. Parameters are referenced by [`ParamId`].
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The graph input, `[n, c, h, w]`.
    Input,
    /// 2-D convolution.
    Conv2d {
        /// `[k, c/groups, kh, kw]`.
        weight: ParamId,
        /// `[k]`.
        bias: Option<ParamId>,
        /// Stride, padding, dilation, groups.
        params: Conv2dParams,
    },
    /// Fully connected layer on `[n, in]`.
    Linear {
        /// `[out, in]`.
        weight: ParamId,
        /// `[out]`.
        bias: Option<ParamId>,
    },
    /// ReLU, ReLU6 or clip.
    Rectifier(Rectifier),
    /// Sigmoid, tanh, leaky ReLU, ELU, hard sigmoid, hard swish or reciprocal (plain backward
    /// in every mode).
    Activation(Activation),
    /// Local response normalisation across channels.
    Lrn(LrnParams),
    /// Max pooling.
    MaxPool(Pool2dParams),
    /// Average pooling.
    AvgPool(Pool2dParams),
    /// Adaptive average pooling to a fixed size.
    AdaptiveAvgPool([usize; 2]),
    /// Global average pooling to `[n, c, 1, 1]`.
    GlobalAvgPool,
    /// Inference batch norm as a per-channel affine map.
    BatchNorm {
        /// `γ/√(σ²+ε)`, `[c]`.
        scale: ParamId,
        /// `β − μ·scale`, `[c]`.
        shift: ParamId,
    },
    /// Sum of two inputs of equal shape.
    Add,
    /// Product of two inputs: equal shapes, or either of them `[n, c, 1, 1]`, one factor per image
    /// and channel broadcast over the other's plane (a squeeze-and-excitation gate).
    Mul,
    /// Concatenation along channels.
    Concat,
    /// `[n, ...] → [n, rest]`.
    Flatten,
    /// `[n, c, h, w] → [n, c, h·w, 1]`, the same data: a rank-3 ONNX tensor `[n, c, l]` (held as
    /// `[n, c, l, 1]`) made of a plane, such as a mean over the height alone.
    Column,
    /// Dropout: the identity at inference.
    Dropout,
    /// Row-wise softmax.
    Softmax,
    /// A constant image `[b, c, h, w]` (a parameter), the same whatever the input: `b` is 1
    /// (repeated over the batch) or the batch itself. No input, no gradient (a constant operand
    /// of a concatenation: coordinate channels, an ONNX graph's second input bound to data).
    Constant {
        /// The value.
        value: ParamId,
    },
}

impl Op {
    /// A short kind name for listings.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv2d { .. } => "conv2d",
            Op::Linear { .. } => "linear",
            Op::Rectifier(r) if r.is_relu() => "relu",
            Op::Rectifier(_) => "clip",
            Op::Activation(_) => "activation",
            Op::MaxPool(_) => "max_pool2d",
            Op::AvgPool(_) => "avg_pool2d",
            Op::AdaptiveAvgPool(_) => "adaptive_avg_pool2d",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Add => "add",
            Op::Lrn(_) => "lrn",
            Op::Mul => "mul",
            Op::Concat => "concat",
            Op::Flatten => "flatten",
            Op::Column => "column",
            Op::Dropout => "dropout",
            Op::Softmax => "softmax",
            Op::Constant { .. } => "constant",
        }
    }
}

/// One node: a named op applied to earlier nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Module path (`layer4.1.conv2`, `features.29`).
    pub name: String,
    /// The operation.
    pub op: Op,
    /// Operand nodes, all earlier in the graph.
    pub inputs: Vec<NodeId>,
}

/// A named parameter tensor on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Name (`layer1.0.conv1.weight`).
    pub name: String,
    /// Value.
    pub value: HostTensor,
}

/// A CNN as a graph. Nodes are in topological order; node 0 is the input.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) params: Vec<Param>,
    /// Module paths naming the output of an enclosing module (`layer4.1` → its last ReLU).
    pub(crate) aliases: Vec<(String, NodeId)>,
    pub(crate) output: NodeId,
    pub(crate) input_channels: usize,
    pub(crate) default_target: Option<NodeId>,
    /// The only input size `[h, w]` the graph is correct for, when its translation depended on
    /// it (an ONNX file's fixed size behind TensorFlow's uneven padding or NHWC flatten).
    pub(crate) input_size: Option<[usize; 2]>,
}

impl Graph {
    /// The nodes, in topological order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// One node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// The parameters.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// A parameter's host value, to edit (training, tests); re-create the [`crate::Model`] after.
    pub fn param_mut(&mut self, i: usize) -> &mut HostTensor {
        &mut self.params[i].value
    }

    /// The output node (the logits).
    pub fn output(&self) -> NodeId {
        self.output
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        NodeId(0)
    }

    /// Channels the input must have.
    pub fn input_channels(&self) -> usize {
        self.input_channels
    }

    /// The only input size `[h, w]` the graph takes, where its translation depended on it.
    pub fn input_size(&self) -> Option<[usize; 2]> {
        self.input_size
    }

    /// Module-path aliases of enclosing modules.
    pub fn aliases(&self) -> &[(String, NodeId)] {
        &self.aliases
    }

    /// The preferred display name of a node: its module alias if it has one.
    pub fn display_name(&self, id: NodeId) -> &str {
        self.aliases
            .iter()
            .find(|(_, n)| *n == id)
            .map_or(self.nodes[id.0].name.as_str(), |(a, _)| a.as_str())
    }

    /// Resolves a layer by node name or module alias; the error lists the candidates.
    pub fn find(&self, name: &str) -> Result<NodeId> {
        if let Some((_, id)) = self.aliases.iter().find(|(a, _)| a == name) {
            return Ok(*id);
        }
        if let Some(i) = self.nodes.iter().position(|n| n.name == name) {
            return Ok(NodeId(i));
        }
        Err(Error::LayerNotFound {
            name: name.to_string(),
            candidates: self.layer_names(),
        })
    }

    /// Every name [`Graph::find`] accepts: aliases first, then node names.
    pub fn layer_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.aliases.iter().map(|(a, _)| a.clone()).collect();
        v.extend(self.nodes.iter().skip(1).map(|n| n.name.clone()));
        v
    }

    /// The default Grad-CAM target: the architecture's choice, else the spatial tensor that the
    /// classifier head pools or flattens — the input of the first global pooling or flatten
    /// whose descendants, the graph's output among them, read nothing from before it (a
    /// squeeze-and-excitation block's pooling is not the head: its gate multiplies an earlier
    /// tensor), local pooling and dropout before it skipped.
    pub fn default_target(&self) -> Result<NodeId> {
        if let Some(t) = self.default_target {
            return Ok(t);
        }
        let reduces = |op: &Op| {
            matches!(
                op,
                Op::GlobalAvgPool | Op::Flatten | Op::AdaptiveAvgPool([1, 1])
            )
        };
        let pool = |op: &Op| {
            matches!(
                op,
                Op::MaxPool(_) | Op::AvgPool(_) | Op::AdaptiveAvgPool(_) | Op::GlobalAvgPool
            )
        };
        let heads = |r: usize| {
            // Descendants of r; each must read only r, its descendants, or another pooling of
            // the tensor r pools (a concat-pooling head: max and average side by side).
            let src = self.nodes[r].inputs.first().copied();
            let sibling = |k: NodeId| {
                pool(&self.nodes[k.0].op) && self.nodes[k.0].inputs.first().copied() == src
            };
            let mut desc = vec![false; self.nodes.len()];
            for j in r + 1..self.nodes.len() {
                let ins = &self.nodes[j].inputs;
                if ins.iter().any(|k| k.0 == r || desc[k.0]) {
                    if !ins.iter().all(|&k| k.0 == r || desc[k.0] || sibling(k)) {
                        return false;
                    }
                    desc[j] = true;
                }
            }
            r == self.output.0 || desc[self.output.0]
        };
        let head = (1..self.nodes.len())
            .find(|&i| reduces(&self.nodes[i].op) && heads(i))
            .ok_or_else(|| {
                Error::Model(
                    "the graph has no global pooling or flatten: name a target layer".into(),
                )
            })?;
        // Back through local pooling, dropout and rank-3 views, and through pointwise layers on pooled
        // features (a classifier as a 1×1 convolution after a 7×7 average pool).
        let pointwise = |op: &Op| match op {
            Op::Conv2d { params, weight, .. } => {
                params.padding == [0, 0] && self.params[weight.0].value.shape.dims()[2..] == [1, 1]
            }
            Op::Rectifier(_) | Op::Activation(_) | Op::BatchNorm { .. } | Op::Dropout => true,
            _ => false,
        };
        // (Only below a flatten: global pooling has already reduced to 1×1 where it heads.)
        let flatten_head = matches!(self.nodes[head].op, Op::Flatten);
        let mut cur = self.nodes[head].inputs[0];
        loop {
            let op = &self.nodes[cur.0].op;
            if pool(op) || matches!(op, Op::Dropout | Op::Column) {
                cur = self.nodes[cur.0].inputs[0];
                continue;
            }
            if !flatten_head {
                break;
            }
            let mut k = cur;
            while pointwise(&self.nodes[k.0].op) && k.0 != 0 {
                k = self.nodes[k.0].inputs[0];
            }
            if k != cur && pool(&self.nodes[k.0].op) {
                cur = k;
                continue;
            }
            break;
        }
        if cur.0 == 0 {
            return Err(Error::Model(
                "no spatial layer before global pooling".into(),
            ));
        }
        Ok(cur)
    }

    /// The consumers of each node.
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut c = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for inp in &n.inputs {
                c[inp.0].push(NodeId(i));
            }
        }
        c
    }

    /// Shape of every node for an input shape, checked op by op; an error names the layer.
    pub fn infer_shapes(&self, input: &Shape) -> Result<Vec<Shape>> {
        let [_, c, h, w] = input.nchw("model input")?;
        if c != self.input_channels {
            return Err(Error::Input(format!(
                "the model takes {} input channels, the input {input} has {c}",
                self.input_channels
            )));
        }
        if let Some([fh, fw]) = self.input_size.filter(|&s| s != [h, w]) {
            return Err(Error::Input(format!(
                "the model takes {fh}×{fw} inputs only (its ONNX file fixes that size, and its \
                 padding or flatten was translated for it), the input {input} is {h}×{w}"
            )));
        }
        infer_shapes(&self.nodes, &self.params, input)
    }
}

/// The output shape of every node of `nodes` (topologically ordered, node 0 the input) for an
/// input of shape `input`: shared by [`Graph::infer_shapes`] and the builder.
pub(crate) fn infer_shapes(nodes: &[Node], params: &[Param], input: &Shape) -> Result<Vec<Shape>> {
    let mut shapes: Vec<Shape> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let s = node_shape(params, node, &shapes, input).map_err(|e| layer_error(&node.name, e))?;
        shapes.push(s);
    }
    Ok(shapes)
}

fn node_shape(params: &[Param], node: &Node, shapes: &[Shape], input: &Shape) -> Result<Shape> {
    let x = |i: usize| &shapes[node.inputs[i].0];
    let p = |id: &ParamId| &params[id.0].value.shape;
    Ok(match &node.op {
        Op::Input => input.clone(),
        Op::Conv2d {
            weight,
            bias,
            params,
        } => check::conv2d(x(0), p(weight), bias.as_ref().map(p), params)?.into(),
        Op::Linear { weight, bias } => check::linear(x(0), p(weight), bias.as_ref().map(p))?.into(),
        Op::Rectifier(_) | Op::Activation(_) | Op::Dropout => x(0).clone(),
        Op::Softmax => check::softmax(x(0))?.into(),
        Op::Lrn(lp) => check::lrn(x(0), lp)?.into(),
        Op::MaxPool(pp) | Op::AvgPool(pp) => check::pool2d(x(0), pp, node.op.kind())?.into(),
        Op::AdaptiveAvgPool(o) => check::adaptive_pool(x(0), *o)?.into(),
        Op::GlobalAvgPool => check::adaptive_pool(x(0), [1, 1])?.into(),
        Op::BatchNorm { scale, shift } => {
            check::channel_affine(x(0), p(scale), Some(p(shift)))?.into()
        }
        Op::Add => {
            check::same("add", x(0), x(1))?;
            x(0).clone()
        }
        Op::Mul => {
            let [full, _] = mul_operands(x(0), x(1))?;
            x(full).clone()
        }
        Op::Concat => {
            let s: Vec<&Shape> = node.inputs.iter().map(|i| &shapes[i.0]).collect();
            check::concat_channels(&s)?.into()
        }
        Op::Flatten => {
            let d = x(0).dims();
            if d.is_empty() {
                return Err(Error::shape("flatten", "scalar input"));
            }
            Shape::new([d[0], d[1..].iter().product()])
        }
        Op::Column => {
            let d = x(0).nchw("column")?;
            Shape::new([d[0], d[1], d[2] * d[3], 1])
        }
        Op::Constant { value } => {
            let [b, c, h, w] = p(value).nchw("constant")?;
            let n = input.dims()[0];
            if b != 1 && b != n {
                return Err(Error::shape(
                    "constant",
                    format!("a constant of batch {b} with an input batch of {n}"),
                ));
            }
            Shape::new([n, c, h, w])
        }
    })
}

/// Which operand of a product is the full tensor and which the factor (the `[n, c, 1, 1]` gate,
/// or the second of two equal shapes), as input indices.
pub(crate) fn mul_operands(a: &Shape, b: &Shape) -> Result<[usize; 2]> {
    match check::mul(a, b) {
        Ok(_) => Ok([0, 1]),
        Err(e) => check::mul(b, a).map(|_| [1, 0]).map_err(|_| e),
    }
}

/// Prefixes an error with the layer it came from.
pub(crate) fn layer_error(layer: &str, e: Error) -> Error {
    match e {
        Error::Shape { op, msg } => Error::Shape {
            op: format!("layer {layer} ({op})"),
            msg,
        },
        Error::Input(m) => Error::Input(m),
        other => Error::Model(format!("layer {layer}: {other}")),
    }
}
