//! Backward passes: from a gradient seed at any node down to a chosen node or to the input, with
//! a chosen rectifier rule; weight gradients only when asked.

use crate::graph::{layer_error, mul_operands, NodeId, Op, ParamId};
use crate::model::{Activations, Model};
use gradcam_core::{Backend, Error, GradMode, Result, Shape, Tensor};
use std::collections::BTreeSet;

/// Where a backward pass stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// At this node: its gradient is the result and nothing below it is computed.
    At(NodeId),
    /// At the input.
    Input,
}

/// How rectifiers pass gradient in a backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RectifierRule {
    /// Plain, guided or deconvnet.
    pub mode: GradMode,
    /// Apply `mode` to ReLUs only and keep the plain backward for ReLU6 and clips
    /// (pytorch-grad-cam's `GuidedBackpropReLUModel`, which swaps only `nn.ReLU`).
    pub relu_only: bool,
}

/// One backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackwardSpec {
    /// The node the seed gradient is given for (usually the logits).
    pub from: NodeId,
    /// Where to stop.
    pub stop: Stop,
    /// The rectifier rule.
    pub rule: RectifierRule,
    /// Also compute the parameter gradients (training only; explaining never does).
    pub weight_grads: bool,
}

/// The result of a backward pass.
pub struct Gradients<B: Backend> {
    /// ∂seed/∂(stop node's output).
    pub at_stop: Tensor<B>,
    /// Parameter gradients by [`ParamId`], when asked for.
    pub params: Vec<Option<Tensor<B>>>,
}

impl<B: Backend> Model<B> {
    fn stop_node(&self, spec: &BackwardSpec) -> NodeId {
        match spec.stop {
            Stop::At(t) => t,
            Stop::Input => self.graph().input(),
        }
    }

    /// The nodes a pass runs through: descendants of the stop node that lead to `from`.
    fn region(&self, spec: &BackwardSpec) -> Result<Vec<bool>> {
        let g = self.graph();
        let n = g.nodes().len();
        let stop = self.stop_node(spec);
        if spec.from.0 >= n || stop.0 >= n {
            return Err(Error::InvalidArgument("backward: node out of range".into()));
        }
        let mut anc = vec![false; n];
        anc[spec.from.0] = true;
        for i in (0..=spec.from.0).rev() {
            if anc[i] {
                for inp in &g.nodes()[i].inputs {
                    anc[inp.0] = true;
                }
            }
        }
        if !anc[stop.0] {
            return Err(Error::InvalidArgument(format!(
                "layer {} does not lead to {}: no gradient flows between them",
                g.display_name(stop),
                g.display_name(spec.from)
            )));
        }
        let mut desc = vec![false; n];
        desc[stop.0] = true;
        for i in stop.0 + 1..n {
            desc[i] = g.nodes()[i].inputs.iter().any(|j| desc[j.0]);
        }
        Ok((0..n).map(|i| anc[i] && desc[i]).collect())
    }

    /// The node outputs a forward pass must keep for `spec` to run.
    pub fn backward_needs(&self, spec: &BackwardSpec) -> Result<BTreeSet<NodeId>> {
        let region = self.region(spec)?;
        let stop = self.stop_node(spec);
        let mut keep = BTreeSet::new();
        for (i, node) in self.graph().nodes().iter().enumerate() {
            if !region[i] || i == stop.0 {
                continue;
            }
            match node.op {
                Op::Rectifier(_) | Op::Softmax => {
                    keep.insert(NodeId(i));
                }
                Op::MaxPool(_) | Op::Activation(_) | Op::Lrn(_) => {
                    keep.insert(node.inputs[0]);
                }
                Op::Mul => {
                    keep.extend(node.inputs.iter().copied());
                }
                Op::Conv2d { .. } | Op::Linear { .. } if spec.weight_grads => {
                    keep.insert(node.inputs[0]);
                }
                _ => {}
            }
        }
        Ok(keep)
    }

    /// Runs `spec` from `seed` (shaped like the `from` node's output) over a forward pass that
    /// kept at least [`Model::backward_needs`].
    pub fn backward(
        &self,
        acts: &Activations<B>,
        spec: &BackwardSpec,
        seed: Tensor<B>,
    ) -> Result<Gradients<B>> {
        let (mut grads, params) = self.run_backward(acts, spec, seed, false, None)?;
        let stop = self.stop_node(spec);
        let at_stop = grads[stop.0]
            .take()
            .ok_or_else(|| Error::Model("no gradient reached the stop node".into()))?;
        Ok(Gradients { at_stop, params })
    }

    /// Like [`Model::backward`], but returns the gradient at every node the pass visited
    /// (indexed by node), for inspecting and comparing backends layer by layer.
    pub fn backward_trace(
        &self,
        acts: &Activations<B>,
        spec: &BackwardSpec,
        seed: Tensor<B>,
    ) -> Result<Vec<Option<Tensor<B>>>> {
        Ok(self.run_backward(acts, spec, seed, true, None)?.0)
    }

    /// Like [`Model::backward`], waiting for the device after each node: each visited node's op
    /// kind (prefixed `backward `) and milliseconds, in the order run. For `gradcam bench
    /// --profile`: where a backward pass's time goes.
    pub fn backward_profile(
        &self,
        acts: &Activations<B>,
        spec: &BackwardSpec,
        seed: Tensor<B>,
    ) -> Result<Vec<(String, f64)>> {
        let mut times = Vec::new();
        self.backend().synchronize()?;
        self.run_backward(acts, spec, seed, false, Some(&mut times))?;
        Ok(times)
    }

    /// The backward pass of `spec` from `seed` ([`Backend::run_pass`]): every node's gradient
    /// (all kept with `keep_all`, else only the stop node's) and the parameters'.
    #[allow(clippy::type_complexity)]
    fn run_backward(
        &self,
        acts: &Activations<B>,
        spec: &BackwardSpec,
        seed: Tensor<B>,
        keep_all: bool,
        timing: Option<&mut Vec<(String, f64)>>,
    ) -> Result<(Vec<Option<Tensor<B>>>, Vec<Option<Tensor<B>>>)> {
        self.backend()
            .run_pass(|| self.backward_pass(acts, spec, seed, keep_all, timing))
    }

    #[allow(clippy::type_complexity)]
    fn backward_pass(
        &self,
        acts: &Activations<B>,
        spec: &BackwardSpec,
        seed: Tensor<B>,
        keep_all: bool,
        mut timing: Option<&mut Vec<(String, f64)>>,
    ) -> Result<(Vec<Option<Tensor<B>>>, Vec<Option<Tensor<B>>>)> {
        let g = self.graph();
        let region = self.region(spec)?;
        let stop = self.stop_node(spec);
        if seed.shape() != &acts.shapes[spec.from.0] {
            return Err(Error::shape(
                "backward seed",
                format!(
                    "seed {} for output {}",
                    seed.shape(),
                    acts.shapes[spec.from.0]
                ),
            ));
        }
        let mut grads: Vec<Option<Tensor<B>>> = vec![None; g.nodes().len()];
        let mut pgrads: Vec<Option<Tensor<B>>> = vec![None; g.params().len()];
        let mut consumers = vec![0usize; g.nodes().len()];
        for node in g.nodes() {
            for inp in &node.inputs {
                consumers[inp.0] += 1;
            }
        }
        grads[spec.from.0] = Some(seed);
        for i in (stop.0 + 1..=spec.from.0).rev() {
            if !region[i] {
                continue;
            }
            let dy = if keep_all {
                grads[i].clone()
            } else {
                grads[i].take()
            };
            let Some(dy) = dy else { continue };
            let node = &g.nodes()[i];
            let started = timing.is_some().then(std::time::Instant::now);
            // A max-pool after a rectifier whose gradient nothing else needs: both backward
            // in one op, the result routed to the rectifier's input.
            let through = (!keep_all)
                .then(|| self.pool_through_rectifier(i, spec, stop, &region, &consumers))
                .flatten();
            let inputs = match through {
                Some((rect, r)) => self
                    .pool_rectifier_backward(i, rect, r, &dy, acts, spec)
                    .map(|dx| vec![Some(dx)]),
                None => match self.summed_backward_data(i, &dy, acts, spec, &region, &mut grads) {
                    Some(done) => done.map(|()| Vec::new()),
                    None => self.node_backward(i, &dy, acts, spec, &mut pgrads),
                },
            }
            .map_err(|e| layer_error(&node.name, e))?;
            let targets = match through {
                Some((rect, _)) => &g.nodes()[rect.0].inputs,
                None => &node.inputs,
            };
            for (inp, dx) in targets.iter().zip(inputs) {
                if !region[inp.0] {
                    continue;
                }
                let dx = dx.ok_or_else(|| {
                    Error::Model(format!("no gradient for input of {}", node.name))
                })?;
                grads[inp.0] = Some(match grads[inp.0].take() {
                    Some(acc) => self.backend().add(&acc, &dx)?,
                    None => dx,
                });
            }
            if let (Some(times), Some(t)) = (timing.as_deref_mut(), started) {
                self.backend().synchronize()?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let kind = self.op_kind(&node.op);
                let label = match through {
                    Some(_) => format!("backward {kind}+Rectifier"),
                    None => format!("backward {kind}"),
                };
                times.push((label, ms));
            }
        }
        Ok((grads, pgrads))
    }

    /// For a max-pool (node `i`) whose input is a rectifier's output that only it reads, where
    /// the pass runs through the rectifier (above the stop node, not the graph's output) and
    /// nothing else reads the rectifier's input: the rectifier and its parameters, for
    /// [`Model::pool_rectifier_backward`]. The fused result reaches the rectifier's input at
    /// the pool's turn, not the rectifier's; with no other reader of that input no other
    /// gradient is summed there, so no sum's order changes. `None` for any other node, where
    /// the rectifier's own gradient is wanted (the stop node; every node's gradient kept, which
    /// the caller checks), and in passes with weight gradients (training's passes run as they
    /// did).
    fn pool_through_rectifier(
        &self,
        i: usize,
        spec: &BackwardSpec,
        stop: NodeId,
        region: &[bool],
        consumers: &[usize],
    ) -> Option<(NodeId, gradcam_core::Rectifier)> {
        let g = self.graph();
        let node = &g.nodes()[i];
        let (Op::MaxPool(_), [rect]) = (&node.op, node.inputs.as_slice()) else {
            return None;
        };
        let Op::Rectifier(r) = g.nodes()[rect.0].op else {
            return None;
        };
        let alone = consumers[rect.0] == 1
            && *rect != g.output()
            && g.nodes()[rect.0].inputs.iter().all(|j| consumers[j.0] == 1);
        (alone && region[rect.0] && rect.0 > stop.0 && !spec.weight_grads).then_some((*rect, r))
    }

    /// The gradient of rectifier `rect`'s input through it and the max-pool `i` after it
    /// ([`Backend::max_pool2d_backward_rectified`]), from the pool's output gradient `dy`.
    fn pool_rectifier_backward(
        &self,
        i: usize,
        rect: NodeId,
        r: gradcam_core::Rectifier,
        dy: &Tensor<B>,
        acts: &Activations<B>,
        spec: &BackwardSpec,
    ) -> Result<Tensor<B>> {
        let Op::MaxPool(p) = &self.graph().nodes()[i].op else {
            return Err(Error::Model(
                "pool_rectifier_backward: not a max-pool".into(),
            ));
        };
        let mode = rectifier_mode(spec, r);
        self.backend()
            .max_pool2d_backward_rectified(acts.get(rect)?, dy, p, r, mode)
    }

    /// For a convolution whose input already has a gradient (a tensor with two consumers, as a
    /// residual block's input) and no weight gradient to compute: the backward-data and the
    /// sum in one op ([`Backend::conv2d_backward_data_add`]), the sum stored as the input's
    /// gradient. `None` for any other node (nothing done).
    fn summed_backward_data(
        &self,
        i: usize,
        dy: &Tensor<B>,
        acts: &Activations<B>,
        spec: &BackwardSpec,
        region: &[bool],
        grads: &mut [Option<Tensor<B>>],
    ) -> Option<Result<()>> {
        let node = &self.graph().nodes()[i];
        let (Op::Conv2d { weight, params, .. }, [inp]) = (&node.op, node.inputs.as_slice()) else {
            return None;
        };
        if spec.weight_grads || !region[inp.0] {
            return None;
        }
        let acc = grads[inp.0].take()?;
        let w = self.param(*weight);
        let summed =
            self.backend()
                .conv2d_backward_data_add(dy, w, params, &acts.shapes[inp.0], &acc);
        Some(summed.map(|dx| grads[inp.0] = Some(dx)))
    }

    /// Gradients for each input of node `i` given its output gradient `dy`.
    fn node_backward(
        &self,
        i: usize,
        dy: &Tensor<B>,
        acts: &Activations<B>,
        spec: &BackwardSpec,
        pgrads: &mut [Option<Tensor<B>>],
    ) -> Result<Vec<Option<Tensor<B>>>> {
        let b = self.backend();
        let node = &self.graph().nodes()[i];
        let in_shape = |k: usize| -> &Shape { &acts.shapes[node.inputs[k].0] };
        let input = |k: usize| acts.get(node.inputs[k]);
        let mut set = |id: &ParamId, t: Tensor<B>| pgrads[id.0] = Some(t);
        Ok(match &node.op {
            Op::Input | Op::Constant { .. } => vec![],
            Op::Conv2d {
                weight,
                bias,
                params,
            } => {
                let w = self.param(*weight);
                if spec.weight_grads {
                    set(
                        weight,
                        b.conv2d_backward_weight(input(0)?, dy, params, w.shape())?,
                    );
                    if let Some(bi) = bias {
                        set(bi, b.conv2d_backward_bias(dy)?);
                    }
                }
                vec![Some(b.conv2d_backward_data(dy, w, params, in_shape(0))?)]
            }
            Op::Linear { weight, bias } => {
                if spec.weight_grads {
                    set(weight, b.linear_backward_weight(input(0)?, dy)?);
                    if let Some(bi) = bias {
                        set(bi, b.linear_backward_bias(dy)?);
                    }
                }
                vec![Some(b.linear_backward_data(dy, self.param(*weight))?)]
            }
            Op::Rectifier(r) => {
                let mode = rectifier_mode(spec, *r);
                vec![Some(b.rectifier_backward(
                    acts.get(NodeId(i))?,
                    dy,
                    *r,
                    mode,
                )?)]
            }
            Op::Activation(a) => vec![Some(b.activation_backward(input(0)?, dy, *a)?)],
            Op::MaxPool(p) => vec![Some(b.max_pool2d_backward(input(0)?, dy, p)?)],
            Op::Lrn(p) => vec![Some(b.lrn_backward(input(0)?, dy, p)?)],
            Op::AvgPool(p) => vec![Some(b.avg_pool2d_backward(dy, p, in_shape(0))?)],
            Op::AdaptiveAvgPool(_) | Op::GlobalAvgPool => {
                vec![Some(b.adaptive_avg_pool2d_backward(dy, in_shape(0))?)]
            }
            Op::BatchNorm { scale, .. } => {
                vec![Some(b.channel_affine_backward(dy, self.param(*scale))?)]
            }
            Op::Add => vec![Some(dy.clone()), Some(dy.clone())],
            Op::Mul => {
                let [full, factor] = mul_operands(in_shape(0), in_shape(1))?;
                let (x, f) = (input(full)?, input(factor)?);
                let df = if x.shape() == f.shape() {
                    b.mul(dy, x)?
                } else {
                    b.mul_plane_sum(dy, x)?
                };
                let mut out = vec![None, None];
                out[full] = Some(b.mul(dy, f)?);
                out[factor] = Some(df);
                out
            }
            Op::Concat => {
                let mut start = 0;
                let mut out = Vec::with_capacity(node.inputs.len());
                for k in 0..node.inputs.len() {
                    let c = in_shape(k).dim(1);
                    out.push(Some(b.slice_channels(dy, start, c)?));
                    start += c;
                }
                out
            }
            Op::Flatten | Op::Column | Op::Dropout => {
                vec![Some(dy.reshape(in_shape(0).clone())?)]
            }
            Op::Softmax => vec![Some(b.softmax_backward(acts.get(NodeId(i))?, dy)?)],
        })
    }

    /// The softmax-score seed: the gradient of `softmax(logits)[r, classes[r]]` with respect to
    /// the logits, `p_c·(e_c − p)` per row.
    pub fn softmax_seed(&self, logits: &Tensor<B>, classes: &[usize]) -> Result<Tensor<B>> {
        let [n, c] = logits.shape().matrix("softmax seed")?;
        if classes.len() != n {
            return Err(Error::InvalidArgument(format!(
                "{} classes for {n} rows",
                classes.len()
            )));
        }
        let p = self.backend().softmax(logits)?;
        self.backend()
            .softmax_backward(&p, &self.one_hot(c, classes)?)
    }

    /// A one-hot seed `[n, classes]` with `classes[r]` set in row `r`; checks the range.
    pub fn one_hot(&self, n_classes: usize, classes: &[usize]) -> Result<Tensor<B>> {
        let mut data = vec![0.0f32; classes.len() * n_classes];
        for (r, &c) in classes.iter().enumerate() {
            if c >= n_classes {
                return Err(Error::ClassOutOfRange {
                    class: c,
                    classes: n_classes,
                });
            }
            data[r * n_classes + c] = 1.0;
        }
        self.backend()
            .upload(&data, Shape::new([classes.len(), n_classes]))
    }
}

/// The backward mode of rectifier `r` in pass `spec`: the rule's, except the plain one for a
/// non-ReLU rectifier where the rule applies to ReLUs only.
fn rectifier_mode(spec: &BackwardSpec, r: gradcam_core::Rectifier) -> GradMode {
    if spec.rule.relu_only && !r.is_relu() {
        GradMode::Plain
    } else {
        spec.rule.mode
    }
}
