//! [`GraphBuilder`]: assemble a graph in Rust, with channel counts checked as layers are added.

use crate::graph::{Graph, Node, NodeId, Op, Param, ParamId};
use gradcam_core::{
    Activation, Conv2dParams, Error, HostTensor, LrnParams, Pool2dParams, Rectifier, Result, Shape,
};

/// What is known of a node's output before the input size is.
#[derive(Clone, Copy, Debug)]
enum Feat {
    /// NCHW with `c` channels; `unit` when the spatial size is 1×1 whatever the input.
    Image { c: usize, unit: bool },
    /// `[n, f]`, `f` known when it does not depend on the input size.
    Flat(Option<usize>),
}

/// Builds a [`Graph`] layer by layer. Names are module paths; every method checks what can be
/// checked without an input size (channel counts, parameter shapes) and errors otherwise.
///
/// ```
/// use gradcam_runtime::GraphBuilder;
/// use gradcam_core::{Conv2dParams, HostTensor};
/// let mut b = GraphBuilder::new(3);
/// let x = b.input();
/// let w = HostTensor::zeros([8, 3, 3, 3]);
/// let c = b.conv2d("features.0", x, w, None, Conv2dParams::new(1, 1)).unwrap();
/// let r = b.relu("features.1", c).unwrap();
/// let p = b.global_avg_pool("avgpool", r).unwrap();
/// let f = b.flatten("flatten", p).unwrap();
/// let y = b.linear("fc", f, HostTensor::zeros([5, 8]), None).unwrap();
/// let graph = b.build(y).unwrap();
/// assert_eq!(graph.default_target().unwrap(), graph.find("features.1").unwrap());
/// ```
pub struct GraphBuilder {
    nodes: Vec<Node>,
    params: Vec<Param>,
    feats: Vec<Feat>,
    aliases: Vec<(String, NodeId)>,
    input_channels: usize,
    default_target: Option<NodeId>,
    input_size: Option<[usize; 2]>,
}

impl GraphBuilder {
    /// A builder for inputs with `input_channels` channels.
    pub fn new(input_channels: usize) -> Self {
        GraphBuilder {
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: vec![],
            }],
            params: vec![],
            feats: vec![Feat::Image {
                c: input_channels,
                unit: false,
            }],
            aliases: vec![],
            input_channels,
            default_target: None,
            input_size: None,
        }
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        NodeId(0)
    }

    /// Channels of a node's NCHW output.
    pub fn channels(&self, id: NodeId) -> Result<usize> {
        match self.feat(id)? {
            Feat::Image { c, .. } => Ok(c),
            Feat::Flat(_) => Err(Error::Model(format!(
                "layer {} is flat, not an image",
                self.nodes[id.0].name
            ))),
        }
    }

    fn feat(&self, id: NodeId) -> Result<Feat> {
        self.feats
            .get(id.0)
            .copied()
            .ok_or_else(|| Error::Model(format!("node {} does not exist", id.0)))
    }

    fn push(&mut self, name: &str, op: Op, inputs: Vec<NodeId>, feat: Feat) -> NodeId {
        self.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs,
        });
        self.feats.push(feat);
        NodeId(self.nodes.len() - 1)
    }

    fn param(&mut self, name: String, value: HostTensor) -> ParamId {
        self.params.push(Param { name, value });
        ParamId(self.params.len() - 1)
    }

    fn image(&self, name: &str, x: NodeId) -> Result<(usize, bool)> {
        match self.feat(x)? {
            Feat::Image { c, unit } => Ok((c, unit)),
            Feat::Flat(_) => Err(Error::Model(format!("layer {name} needs an NCHW input"))),
        }
    }

    /// A convolution; `weight` is `[k, c/groups, kh, kw]`.
    pub fn conv2d(
        &mut self,
        name: &str,
        x: NodeId,
        weight: HostTensor,
        bias: Option<HostTensor>,
        params: Conv2dParams,
    ) -> Result<NodeId> {
        let (c, unit_in) = self.image(name, x)?;
        let [k, cg, kh, kw] = weight.shape.nchw(&format!("{name}.weight"))?;
        // A 1×1 kernel without padding keeps a 1×1 map 1×1 (a classifier as a 1×1 conv).
        let unit = unit_in && kh == 1 && kw == 1 && params.padding == [0, 0];
        if params.groups == 0 || cg * params.groups != c || k % params.groups != 0 {
            return Err(Error::Model(format!(
                "layer {name}: weight {} with {} groups does not fit {c} input channels",
                weight.shape, params.groups
            )));
        }
        if let Some(b) = &bias {
            if b.shape.dims() != [k] {
                return Err(Error::Model(format!(
                    "layer {name}: bias {} for {k} filters",
                    b.shape
                )));
            }
        }
        let weight = self.param(format!("{name}.weight"), weight);
        let bias = bias.map(|b| self.param(format!("{name}.bias"), b));
        Ok(self.push(
            name,
            Op::Conv2d {
                weight,
                bias,
                params,
            },
            vec![x],
            Feat::Image { c: k, unit },
        ))
    }

    /// Whether `x` is an NCHW tensor whose spatial size is 1×1 whatever the input's.
    pub fn is_unit(&self, x: NodeId) -> bool {
        matches!(self.feat(x), Ok(Feat::Image { unit: true, .. }))
    }

    /// A fully connected layer; `weight` is `[out, in]`.
    pub fn linear(
        &mut self,
        name: &str,
        x: NodeId,
        weight: HostTensor,
        bias: Option<HostTensor>,
    ) -> Result<NodeId> {
        let [o, i] = weight.shape.matrix(&format!("{name}.weight"))?;
        match self.feat(x)? {
            Feat::Flat(Some(f)) if f != i => {
                return Err(Error::Model(format!(
                    "layer {name}: weight {} takes {i} features, its input has {f}",
                    weight.shape
                )))
            }
            Feat::Image { .. } => {
                return Err(Error::Model(format!("layer {name} needs a flat input")))
            }
            _ => {}
        }
        if let Some(b) = &bias {
            if b.shape.dims() != [o] {
                return Err(Error::Model(format!(
                    "layer {name}: bias {} for {o} outputs",
                    b.shape
                )));
            }
        }
        let weight = self.param(format!("{name}.weight"), weight);
        let bias = bias.map(|b| self.param(format!("{name}.bias"), b));
        Ok(self.push(
            name,
            Op::Linear { weight, bias },
            vec![x],
            Feat::Flat(Some(o)),
        ))
    }

    fn same_feat(&mut self, name: &str, op: Op, x: NodeId) -> Result<NodeId> {
        let f = self.feat(x)?;
        Ok(self.push(name, op, vec![x], f))
    }

    /// `max(x, 0)`.
    pub fn relu(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        self.same_feat(name, Op::Rectifier(Rectifier::RELU), x)
    }

    /// `min(max(x, 0), 6)`.
    pub fn relu6(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        self.same_feat(name, Op::Rectifier(Rectifier::RELU6), x)
    }

    /// `clamp(x, lo, hi)`.
    pub fn clip(&mut self, name: &str, x: NodeId, lo: f32, hi: f32) -> Result<NodeId> {
        if lo.is_nan() || hi.is_nan() || lo >= hi {
            return Err(Error::Model(format!(
                "layer {name}: clip range [{lo}, {hi}] is empty"
            )));
        }
        self.same_feat(name, Op::Rectifier(Rectifier { lo, hi }), x)
    }

    /// A smooth or piecewise-linear activation (sigmoid, tanh, leaky ReLU, ELU, hard sigmoid,
    /// hard swish).
    pub fn activation(&mut self, name: &str, x: NodeId, a: Activation) -> Result<NodeId> {
        self.same_feat(name, Op::Activation(a), x)
    }

    /// Dropout (identity at inference).
    pub fn dropout(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        self.same_feat(name, Op::Dropout, x)
    }

    /// Local response normalisation across channels (AlexNet, GoogLeNet).
    pub fn lrn(&mut self, name: &str, x: NodeId, p: LrnParams) -> Result<NodeId> {
        let (c, unit) = self.image(name, x)?;
        if p.size == 0
            || !(p.alpha >= 0.0 && p.alpha.is_finite() && p.beta.is_finite() && p.bias > 0.0)
        {
            return Err(Error::Model(format!(
                "layer {name}: local response normalisation {p:?} (size ≥ 1, alpha ≥ 0, finite beta, bias > 0)"
            )));
        }
        Ok(self.push(name, Op::Lrn(p), vec![x], Feat::Image { c, unit }))
    }

    /// Max pooling.
    pub fn max_pool(&mut self, name: &str, x: NodeId, p: Pool2dParams) -> Result<NodeId> {
        let (c, _) = self.image(name, x)?;
        Ok(self.push(
            name,
            Op::MaxPool(p),
            vec![x],
            Feat::Image { c, unit: false },
        ))
    }

    /// Average pooling.
    pub fn avg_pool(&mut self, name: &str, x: NodeId, p: Pool2dParams) -> Result<NodeId> {
        let (c, _) = self.image(name, x)?;
        Ok(self.push(
            name,
            Op::AvgPool(p),
            vec![x],
            Feat::Image { c, unit: false },
        ))
    }

    /// Adaptive average pooling to `out`.
    pub fn adaptive_avg_pool(&mut self, name: &str, x: NodeId, out: [usize; 2]) -> Result<NodeId> {
        let (c, _) = self.image(name, x)?;
        Ok(self.push(
            name,
            Op::AdaptiveAvgPool(out),
            vec![x],
            Feat::Image {
                c,
                unit: out == [1, 1],
            },
        ))
    }

    /// Global average pooling to `[n, c, 1, 1]`.
    pub fn global_avg_pool(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        let (c, _) = self.image(name, x)?;
        Ok(self.push(
            name,
            Op::GlobalAvgPool,
            vec![x],
            Feat::Image { c, unit: true },
        ))
    }

    /// Inference batch norm from its four tensors and `eps`.
    pub fn batch_norm(
        &mut self,
        name: &str,
        x: NodeId,
        [gamma, beta, mean, var]: [HostTensor; 4],
        eps: f32,
    ) -> Result<NodeId> {
        let (c, unit) = self.image(name, x)?;
        for (t, what) in [
            (&gamma, "weight"),
            (&beta, "bias"),
            (&mean, "running_mean"),
            (&var, "running_var"),
        ] {
            if t.shape.dims() != [c] {
                return Err(Error::Model(format!(
                    "layer {name}: {what} {} for {c} channels",
                    t.shape
                )));
            }
        }
        let scale: Vec<f32> = gamma
            .data
            .iter()
            .zip(&var.data)
            .map(|(g, v)| g / (v + eps).sqrt())
            .collect();
        let shift: Vec<f32> = beta
            .data
            .iter()
            .zip(&mean.data)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        let scale = self.param(format!("{name}.scale"), HostTensor::new([c], scale)?);
        let shift = self.param(format!("{name}.shift"), HostTensor::new([c], shift)?);
        Ok(self.push(
            name,
            Op::BatchNorm { scale, shift },
            vec![x],
            Feat::Image { c, unit },
        ))
    }

    /// `a + b`.
    pub fn add(&mut self, name: &str, a: NodeId, b: NodeId) -> Result<NodeId> {
        // Two rows of features ([n, f]): a sum of flat tensors (a linear layer plus a computed
        // term).
        if let (Feat::Flat(fa), Feat::Flat(fb)) = (self.feat(a)?, self.feat(b)?) {
            if matches!((fa, fb), (Some(x), Some(y)) if x != y) {
                return Err(Error::Model(format!(
                    "layer {name}: adding {fa:?} features to {fb:?}"
                )));
            }
            return Ok(self.push(name, Op::Add, vec![a, b], Feat::Flat(fa.or(fb))));
        }
        let (ca, ua) = self.image(name, a)?;
        let (cb, _) = self.image(name, b)?;
        if ca != cb {
            return Err(Error::Model(format!(
                "layer {name}: adding {ca} channels to {cb}"
            )));
        }
        Ok(self.push(name, Op::Add, vec![a, b], Feat::Image { c: ca, unit: ua }))
    }

    /// `a ⊙ b`: equal shapes, or either of them `[n, c, 1, 1]` (a per-channel gate, broadcast
    /// over the other's plane).
    pub fn mul(&mut self, name: &str, a: NodeId, b: NodeId) -> Result<NodeId> {
        let (ca, ua) = self.image(name, a)?;
        let (cb, ub) = self.image(name, b)?;
        if ca != cb {
            return Err(Error::Model(format!(
                "layer {name}: multiplying {ca} channels by {cb}"
            )));
        }
        Ok(self.push(
            name,
            Op::Mul,
            vec![a, b],
            Feat::Image {
                c: ca,
                unit: ua && ub,
            },
        ))
    }

    /// Concatenation along channels.
    pub fn concat(&mut self, name: &str, xs: &[NodeId]) -> Result<NodeId> {
        if xs.is_empty() {
            return Err(Error::Model(format!(
                "layer {name}: nothing to concatenate"
            )));
        }
        let mut c = 0;
        for &x in xs {
            c += self.image(name, x)?.0;
        }
        Ok(self.push(
            name,
            Op::Concat,
            xs.to_vec(),
            Feat::Image { c, unit: false },
        ))
    }

    /// A constant image `value` (`[b, c, h, w]`, `b` 1 or the batch): see [`crate::Op::Constant`].
    pub fn constant(&mut self, name: &str, value: HostTensor) -> Result<NodeId> {
        let [_, c, h, w] = value.shape.nchw(name)?;
        let id = self.param(name.to_string(), value);
        let unit = h == 1 && w == 1;
        Ok(self.push(
            name,
            Op::Constant { value: id },
            vec![],
            Feat::Image { c, unit },
        ))
    }

    /// `[n, c, h, w] → [n, c·h·w]`.
    pub fn flatten(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        let f = match self.feat(x)? {
            Feat::Image { c, unit: true } => Some(c),
            Feat::Image { .. } => None,
            Feat::Flat(f) => f,
        };
        Ok(self.push(name, Op::Flatten, vec![x], Feat::Flat(f)))
    }

    /// `[n, c, h, w] → [n, c, h·w, 1]`, the same data (see [`crate::Op::Column`]).
    pub fn column(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        let (c, unit) = self.image(name, x)?;
        Ok(self.push(name, Op::Column, vec![x], Feat::Image { c, unit }))
    }

    /// Restricts the graph to `[h, w]` inputs (its translation depended on that size).
    pub fn require_input_size(&mut self, hw: [usize; 2]) {
        self.input_size = Some(hw);
    }

    /// The `[n, c, 1, 1]` image that `x` flattens, when `x` is the flatten of a 1×1 image (a
    /// reshape back to `[n, c, 1, 1]` is then that image).
    pub fn unflattened(&self, x: NodeId) -> Option<NodeId> {
        let node = self.nodes.get(x.0)?;
        match (&node.op, &node.inputs[..]) {
            (Op::Flatten, &[src]) if self.is_unit(src) => Some(src),
            _ => None,
        }
    }

    /// Row-wise softmax.
    pub fn softmax(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        match self.feat(x)? {
            Feat::Flat(_) => self.same_feat(name, Op::Softmax, x),
            Feat::Image { .. } => Err(Error::Model(format!(
                "layer {name}: softmax needs a flat input"
            ))),
        }
    }

    /// Names `node` also by the module path `alias` (the output of an enclosing module).
    pub fn alias(&mut self, alias: &str, node: NodeId) {
        self.aliases.push((alias.to_string(), node));
    }

    /// Sets the default Grad-CAM target layer.
    pub fn set_default_target(&mut self, node: NodeId) {
        self.default_target = Some(node);
    }

    /// The output shape of `node` for an input of shape `input`, by the graph's shape rules
    /// (importers use it to fold shape computations into constants).
    pub fn infer_shape(&self, node: NodeId, input: &Shape) -> Result<Shape> {
        let shapes = crate::graph::infer_shapes(&self.nodes[..=node.0], &self.params, input)?;
        Ok(shapes[node.0].clone())
    }

    /// Finishes the graph with `output` as the logits; it must be flat `[n, classes]`.
    pub fn build(self, output: NodeId) -> Result<Graph> {
        match self.feat(output)? {
            Feat::Flat(_) => {}
            Feat::Image { .. } => {
                return Err(Error::Model("the output must be flat [n, classes]".into()))
            }
        }
        self.build_any(output)
    }

    /// Finishes a graph whose output may be any tensor (an image too): for forward passes only,
    /// such as operator conformance tests; explaining needs [`GraphBuilder::build`]'s logits.
    pub fn build_any(self, output: NodeId) -> Result<Graph> {
        self.feat(output)?;
        let mut names = std::collections::HashSet::new();
        for n in &self.nodes {
            if !names.insert(n.name.as_str()) {
                return Err(Error::Model(format!("two layers are named {}", n.name)));
            }
        }
        Ok(Graph {
            nodes: self.nodes,
            params: self.params,
            aliases: self.aliases,
            output,
            input_channels: self.input_channels,
            input_size: self.input_size,
            default_target: self.default_target,
        })
    }
}
