//! [`Model`]: a graph with its parameters on a backend; forward keeps only what is asked for.

use crate::graph::{layer_error, mul_operands, Graph, NodeId, Op};
use gradcam_core::{Backend, Error, HostTensor, Result, Shape, Tensor};
use std::collections::BTreeSet;

/// A graph whose parameters live on backend `B`.
pub struct Model<B: Backend> {
    graph: Graph,
    params: Vec<Tensor<B>>,
    backend: B,
    /// The backend's [`Backend::fast_forward`] handle, for [`Rounding::Fast`].
    fast: Option<B>,
    /// `fused[i]`: node `i` (a convolution or a sum) feeds only the rectifier `i + 1`, so the
    /// forward pass runs both as one op unless `i`'s own output is asked for.
    fused: Vec<bool>,
    /// `residual[i]`: node `i` is a convolution feeding only the sum `i + 1`, which feeds only
    /// the rectifier `i + 2`: the three run as one op unless `i`'s or `i + 1`'s output is
    /// asked for (a residual block's last convolution, or its shortcut's).
    residual: Vec<bool>,
}

/// How a forward pass may round ([`Model::forward_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rounding {
    /// As the backend computes every forward (the default; on the CPU the direct product's
    /// rounding, unless the backend was made to run Winograd everywhere, as `cuda-tf32` runs
    /// TF32): what a backward pass reading the forward's rectifier masks or pooling switches
    /// (Guided Backprop, a gradient through later rectifiers) needs, since rounding decides
    /// the signs of values near zero.
    #[default]
    Exact,
    /// The backend's [`Backend::fast_forward`] handle where it has one (the CPU's Winograd
    /// F(4×4) convolutions, ≈ 1e-5 relative), else as `Exact`: for passes whose values only
    /// flow on as values (logits, a target layer's activations with no rectifier after it).
    Fast,
}

impl Rounding {
    /// `exact` or `fast`.
    pub fn name(self) -> &'static str {
        match self {
            Rounding::Exact => "exact",
            Rounding::Fast => "fast",
        }
    }
}

/// The outputs of one forward pass that were kept, and every node's shape.
pub struct Activations<B: Backend> {
    pub(crate) values: Vec<Option<Tensor<B>>>,
    pub(crate) shapes: Vec<Shape>,
}

impl<B: Backend> Activations<B> {
    /// A kept output, or an error naming what is missing.
    pub fn get(&self, id: NodeId) -> Result<&Tensor<B>> {
        self.values
            .get(id.0)
            .and_then(|v| v.as_ref())
            .ok_or_else(|| {
                Error::Model(format!(
                    "the output of node {} was not kept by the forward pass",
                    id.0
                ))
            })
    }

    /// The shape of every node's output.
    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }

    /// How many outputs are held.
    pub fn kept(&self) -> usize {
        self.values.iter().filter(|v| v.is_some()).count()
    }
}

impl<B: Backend> Model<B> {
    /// Uploads the graph's parameters to `backend`.
    pub fn new(backend: B, graph: Graph) -> Result<Self> {
        let params = graph
            .params()
            .iter()
            .map(|p| backend.upload(&p.value.data, p.value.shape.clone()))
            .collect::<Result<Vec<_>>>()?;
        let fused = fusable(&graph);
        let residual = residual_fusable(&graph, &fused);
        let fast = backend.fast_forward();
        Ok(Model {
            graph,
            params,
            backend,
            fast,
            fused,
            residual,
        })
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The device copy of parameter `i`.
    pub fn param(&self, i: crate::ParamId) -> &Tensor<B> {
        &self.params[i.0]
    }

    /// Replaces parameter `i` (same shape) on the host and on the device: training updates.
    pub fn set_param(&mut self, i: crate::ParamId, value: HostTensor) -> Result<()> {
        let p = self
            .graph
            .params()
            .get(i.0)
            .ok_or_else(|| Error::InvalidArgument(format!("no parameter {}", i.0)))?;
        if p.value.shape != value.shape {
            return Err(Error::shape(
                "set_param",
                format!("{}: {} given for {}", p.name, value.shape, p.value.shape),
            ));
        }
        value.check_finite(&p.name)?;
        self.params[i.0] = self.backend.upload(&value.data, value.shape.clone())?;
        *self.graph.param_mut(i.0) = value;
        Ok(())
    }

    /// Number of classes for inputs of `input` shape (the output's width).
    pub fn classes(&self, input: &Shape) -> Result<usize> {
        let shapes = self.graph.infer_shapes(input)?;
        Ok(shapes[self.graph.output().0].dims()[1])
    }

    /// Checks a host input (rank, channels, finite values, a size the model takes) and uploads it.
    pub fn upload_input(&self, x: &HostTensor) -> Result<Tensor<B>> {
        if x.shape.rank() != 4 {
            return Err(Error::Input(format!(
                "expected an N×{}×H×W tensor, got {}",
                self.graph.input_channels(),
                x.shape
            )));
        }
        if x.shape.dim(0) == 0 {
            return Err(Error::Input("the input batch is empty".into()));
        }
        x.check_finite("the input")?;
        self.graph.infer_shapes(&x.shape)?;
        self.backend.upload(&x.data, x.shape.clone())
    }

    /// Runs the graph on `x`, keeping the outputs of `keep` (and the logits); every other
    /// output is released as soon as its last consumer has run. [`Rounding::Exact`]: what any
    /// backward pass may follow.
    pub fn forward(&self, x: &Tensor<B>, keep: &BTreeSet<NodeId>) -> Result<Activations<B>> {
        self.forward_with(x, keep, Rounding::Exact)
    }

    /// How a forward asked to round as `r` does round: [`Rounding::Fast`] only where the
    /// backend has a fast handle.
    pub fn effective_rounding(&self, r: Rounding) -> Rounding {
        match self.fast_for(r) {
            Some(_) => Rounding::Fast,
            None => Rounding::Exact,
        }
    }

    /// The fast handle, where `r` allows it and the backend has one.
    fn fast_for(&self, r: Rounding) -> Option<&B> {
        self.fast.as_ref().filter(|_| r == Rounding::Fast)
    }

    /// The backend that runs a forward pass rounding as `r` allows.
    fn backend_for(&self, r: Rounding) -> &B {
        self.fast_for(r).unwrap_or(&self.backend)
    }

    /// [`Model::forward`], rounding as `rounding` allows: with [`Rounding::Fast`], follow it
    /// only with backward passes that read nothing of it ([`Model::backward_needs`] empty).
    pub fn forward_with(
        &self,
        x: &Tensor<B>,
        keep: &BTreeSet<NodeId>,
        rounding: Rounding,
    ) -> Result<Activations<B>> {
        let b = self.backend_for(rounding);
        b.run_pass(|| self.run_forward(b, x, keep))
    }

    /// [`Model::forward_with`]'s pass, on `b`.
    fn run_forward(&self, b: &B, x: &Tensor<B>, keep: &BTreeSet<NodeId>) -> Result<Activations<B>> {
        let g = &self.graph;
        let shapes = g.infer_shapes(x.shape())?;
        let n = g.nodes().len();
        let mut last_use = vec![0usize; n];
        for (i, node) in g.nodes().iter().enumerate() {
            for inp in &node.inputs {
                last_use[inp.0] = i;
            }
        }
        let mut values: Vec<Option<Tensor<B>>> = vec![None; n];
        // The output of fused nodes, computed at the first, stored at the rectifier (the node
        // index given); the nodes between hold nothing.
        let mut carried: Option<(usize, Tensor<B>)> = None;
        for (i, node) in g.nodes().iter().enumerate() {
            if let Some((at, y)) = carried.take() {
                if at == i {
                    values[i] = Some(y);
                } else {
                    carried = Some((at, y));
                }
            } else if self.residual[i]
                && !keep.contains(&NodeId(i))
                && !keep.contains(&NodeId(i + 1))
            {
                carried = Some((
                    i + 2,
                    self.run_residual(b, i, &values)
                        .map_err(|e| layer_error(&node.name, e))?,
                ));
            } else if self.fused[i] && !keep.contains(&NodeId(i)) {
                let Op::Rectifier(r) = g.nodes()[i + 1].op else {
                    unreachable!("fusable() pairs a node with a rectifier")
                };
                carried = Some((
                    i + 1,
                    self.run_fused(b, node, r, &values)
                        .map_err(|e| layer_error(&node.name, e))?,
                ));
            } else {
                let out = self
                    .run_node(b, node, &values, x, &shapes[i])
                    .map_err(|e| layer_error(&node.name, e))?;
                values[i] = Some(out);
            }
            for inp in &node.inputs {
                if last_use[inp.0] == i && !keep.contains(inp) && *inp != g.output() {
                    values[inp.0] = None;
                }
            }
        }
        Ok(Activations { values, shapes })
    }

    /// Runs the forward pass node by node, waiting for the device after each, and returns each
    /// node's kind (`conv3x3/s1`, `Rectifier`, ...) with its milliseconds: where the time goes.
    /// Slower than [`Model::forward`] by the waits; for profiling only.
    pub fn forward_profile(&self, x: &Tensor<B>, rounding: Rounding) -> Result<Vec<(String, f64)>> {
        let b = self.backend_for(rounding);
        b.run_pass(|| self.profile_forward(b, x))
    }

    /// [`Model::forward_profile`]'s pass, on `b`.
    fn profile_forward(&self, b: &B, x: &Tensor<B>) -> Result<Vec<(String, f64)>> {
        let g = &self.graph;
        let shapes = g.infer_shapes(x.shape())?;
        let mut values: Vec<Option<Tensor<B>>> = vec![None; g.nodes().len()];
        let mut out = Vec::with_capacity(values.len());
        b.synchronize()?;
        for (i, node) in g.nodes().iter().enumerate() {
            let t = std::time::Instant::now();
            let y = self
                .run_node(b, node, &values, x, &shapes[i])
                .map_err(|e| layer_error(&node.name, e))?;
            b.synchronize()?;
            out.push((self.op_kind(&node.op), t.elapsed().as_secs_f64() * 1e3));
            values[i] = Some(y);
        }
        Ok(out)
    }

    /// A short label of an op for profiles: convolutions by kernel, stride and grouping, the
    /// rest by kind.
    pub(crate) fn op_kind(&self, op: &Op) -> String {
        match op {
            Op::Conv2d { weight, params, .. } => {
                let d = self.params[weight.0].dims();
                let g = if params.groups > 1 { "/grouped" } else { "" };
                format!("conv{}x{}/s{}{g}", d[2], d[3], params.stride[0])
            }
            other => {
                let s = format!("{other:?}");
                s.split(['(', ' ', '{']).next().unwrap_or("").to_string()
            }
        }
    }

    /// A convolution or a sum and the rectifier after it, as one backend op.
    fn run_fused(
        &self,
        b: &B,
        node: &crate::Node,
        r: gradcam_core::Rectifier,
        values: &[Option<Tensor<B>>],
    ) -> Result<Tensor<B>> {
        let arg = |i: usize| input(node, values, i);
        let p = |id: &crate::ParamId| &self.params[id.0];
        match &node.op {
            Op::Conv2d {
                weight,
                bias,
                params,
            } => b.conv2d_rectified(arg(0)?, p(weight), bias.as_ref().map(p), params, r),
            Op::Add => b.add_rectified(arg(0)?, arg(1)?, r),
            _ => Err(Error::Model(format!("{} cannot be fused", node.name))),
        }
    }

    /// The convolution `i`, the sum `i + 1` with its other operand and the rectifier `i + 2`,
    /// as one backend op.
    fn run_residual(&self, b: &B, i: usize, values: &[Option<Tensor<B>>]) -> Result<Tensor<B>> {
        let nodes = self.graph.nodes();
        let (conv, sum) = (&nodes[i], &nodes[i + 1]);
        let (
            Op::Conv2d {
                weight,
                bias,
                params,
            },
            Op::Rectifier(r),
        ) = (&conv.op, &nodes[i + 2].op)
        else {
            return Err(Error::Model(format!("{} cannot be fused", conv.name)));
        };
        let other = usize::from(sum.inputs[0] == NodeId(i));
        let p = |id: &crate::ParamId| &self.params[id.0];
        b.conv2d_add_rectified(
            input(conv, values, 0)?,
            p(weight),
            bias.as_ref().map(p),
            params,
            input(sum, values, other)?,
            *r,
        )
    }

    fn run_node(
        &self,
        b: &B,
        node: &crate::Node,
        values: &[Option<Tensor<B>>],
        x: &Tensor<B>,
        shape: &Shape,
    ) -> Result<Tensor<B>> {
        let arg = |i: usize| input(node, values, i);
        let p = |id: &crate::ParamId| &self.params[id.0];
        match &node.op {
            Op::Input => Ok(x.clone()),
            Op::Conv2d {
                weight,
                bias,
                params,
            } => b.conv2d(arg(0)?, p(weight), bias.as_ref().map(p), params),
            Op::Linear { weight, bias } => b.linear(arg(0)?, p(weight), bias.as_ref().map(p)),
            Op::Rectifier(r) => b.rectifier(arg(0)?, *r),
            Op::Activation(a) => b.activation(arg(0)?, *a),
            Op::MaxPool(pp) => b.max_pool2d(arg(0)?, pp),
            Op::Lrn(lp) => b.lrn(arg(0)?, lp),
            Op::AvgPool(pp) => b.avg_pool2d(arg(0)?, pp),
            Op::AdaptiveAvgPool(o) => b.adaptive_avg_pool2d(arg(0)?, *o),
            Op::GlobalAvgPool => {
                let a = arg(0)?;
                let d = a.shape().nchw("global_avg_pool")?;
                b.gradient_gap(a)?.reshape([d[0], d[1], 1, 1])
            }
            Op::BatchNorm { scale, shift } => b.channel_affine(arg(0)?, p(scale), p(shift)),
            Op::Add => b.add(arg(0)?, arg(1)?),
            Op::Mul => {
                let [full, factor] = mul_operands(arg(0)?.shape(), arg(1)?.shape())?;
                b.mul(arg(full)?, arg(factor)?)
            }
            Op::Concat => {
                let xs = (0..node.inputs.len())
                    .map(arg)
                    .collect::<Result<Vec<_>>>()?;
                b.concat_channels(&xs)
            }
            Op::Flatten | Op::Column | Op::Dropout => arg(0)?.reshape(shape.clone()),
            Op::Softmax => b.softmax(arg(0)?),
            Op::Constant { value } => {
                let t = p(value);
                if t.dims()[0] == shape.dims()[0] {
                    return Ok(t.clone());
                }
                // A batch-1 constant repeated over the batch, uploaded as such.
                let host = &self.graph.params()[value.0].value.data;
                b.upload(&host.repeat(shape.dims()[0]), shape.clone())
            }
        }
    }

    /// Downloads a tensor as a [`HostTensor`].
    pub fn to_host(&self, t: &Tensor<B>) -> Result<HostTensor> {
        HostTensor::new(t.shape().clone(), self.backend.download(t)?)
    }

    /// [`Model::to_host`] of a tensor no longer needed ([`Backend::download_owned`]: a backend
    /// may hand over its buffer rather than a copy).
    pub fn into_host(&self, t: Tensor<B>) -> Result<HostTensor> {
        let shape = t.shape().clone();
        HostTensor::new(shape, self.backend.download_owned(t)?)
    }
}

/// How many inputs of later nodes each node's output is.
fn consumer_counts(g: &Graph) -> Vec<usize> {
    let mut consumers = vec![0usize; g.nodes().len()];
    for node in g.nodes() {
        for inp in &node.inputs {
            consumers[inp.0] += 1;
        }
    }
    consumers
}

/// Which nodes run fused with the rectifier right after them: a convolution or a sum whose one
/// consumer is that rectifier, and which is not the graph's output.
fn fusable(g: &Graph) -> Vec<bool> {
    let nodes = g.nodes();
    let consumers = consumer_counts(g);
    (0..nodes.len())
        .map(|i| {
            matches!(nodes[i].op, Op::Conv2d { .. } | Op::Add)
                && consumers[i] == 1
                && g.output() != NodeId(i)
                && nodes.get(i + 1).is_some_and(|next| {
                    matches!(next.op, Op::Rectifier(_)) && next.inputs == [NodeId(i)]
                })
        })
        .collect()
}

/// Which nodes run fused with the sum and the rectifier after them ([`Model`]'s `residual`):
/// a convolution whose one consumer is the sum `i + 1`, whose other operand is another node,
/// the sum being [`fusable`] with its rectifier.
fn residual_fusable(g: &Graph, fused: &[bool]) -> Vec<bool> {
    let nodes = g.nodes();
    let consumers = consumer_counts(g);
    (0..nodes.len())
        .map(|i| {
            matches!(nodes[i].op, Op::Conv2d { .. })
                && consumers[i] == 1
                && g.output() != NodeId(i)
                && fused.get(i + 1) == Some(&true)
                && nodes.get(i + 1).is_some_and(|sum| {
                    matches!(sum.op, Op::Add)
                        && sum.inputs.len() == 2
                        && sum.inputs.iter().filter(|&&x| x == NodeId(i)).count() == 1
                })
        })
        .collect()
}

/// Operand `i` of `node` from the values held, or an error if it was released.
fn input<'a, B: Backend>(
    node: &crate::Node,
    values: &'a [Option<Tensor<B>>],
    i: usize,
) -> Result<&'a Tensor<B>> {
    values[node.inputs[i].0]
        .as_ref()
        .ok_or_else(|| Error::Model(format!("input {i} of {} was released early", node.name)))
}
