//! [`Explainer`]: one shared forward pass, the backward passes the requested methods need, and
//! the maps, all on the backend until the final download.

use crate::cam_map::CamMap;
use crate::{
    eigen, perturb, variant, Classes, Explanation, GradCamVariant, Method, Options, Score,
};
use gradcam_core::{Backend, Error, GradMode, HostTensor, Result, Shape, Tensor};
use gradcam_runtime::{BackwardSpec, Model, NodeId, Op, RectifierRule, Rounding, Stop};
use std::collections::{BTreeMap, BTreeSet};

/// Explains a model's decisions.
///
/// ```
/// use gradcam_core::{Conv2dParams, HostTensor};
/// use gradcam_cpu::CpuBackend;
/// use gradcam_explain::{Explainer, Method, Options};
/// use gradcam_runtime::{GraphBuilder, Model};
///
/// // A tiny conv → ReLU → GAP → linear model with fixed weights.
/// let mut b = GraphBuilder::new(1);
/// let x = b.input();
/// let c = b.conv2d("conv", x, HostTensor::new([2, 1, 1, 1], vec![1.0, -1.0])?, None, Conv2dParams::default())?;
/// let r = b.relu("relu", c)?;
/// let p = b.global_avg_pool("pool", r)?;
/// let f = b.flatten("flatten", p)?;
/// let y = b.linear("fc", f, HostTensor::new([2, 2], vec![1.0, 0.0, 0.0, 1.0])?, None)?;
/// let model = Model::new(CpuBackend::new(), b.build(y)?)?;
///
/// let input = HostTensor::new([1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0])?;
/// let out = Explainer::new(model).explain(&input, &[Method::GradCam], &Options::default())?;
/// assert_eq!(out.targets, vec![0]);
/// assert_eq!(out.get("gradcam_raw").unwrap().data, vec![0.25, 0.5, 0.75, 1.0]);
/// # Ok::<(), gradcam_core::Error>(())
/// ```
pub struct Explainer<B: Backend> {
    model: Model<B>,
}

/// Outputs of one class slot, on the device or already on the host.
enum Out<B: Backend> {
    Dev(Tensor<B>),
    Host(HostTensor),
}

/// The backward passes an explanation runs.
#[derive(Default)]
struct Passes {
    target: Option<BackwardSpec>,
    guided: Option<BackwardSpec>,
    deconv: Option<BackwardSpec>,
    saliency: Option<BackwardSpec>,
}

impl Passes {
    /// The passes `methods` need, from the output node `out` (to `target` for the CAM methods).
    fn plan(methods: &[Method], opts: &Options, target: Option<NodeId>, out: NodeId) -> Self {
        let has = |x: Method| methods.contains(&x);
        let spec = |stop, mode| BackwardSpec {
            from: out,
            stop,
            rule: RectifierRule {
                mode,
                relu_only: false,
            },
            weight_grads: false,
        };
        let mut passes = Passes::default();
        if let Some(t) = target.filter(|_| methods.iter().any(|m| m.needs_target_gradient())) {
            passes.target = Some(spec(Stop::At(t), opts.gradcam.backward));
        }
        if has(Method::GuidedBackprop) || has(Method::GuidedGradCam) {
            let mut s = spec(Stop::Input, GradMode::Guided);
            s.rule.relu_only = opts.guided_relu_only;
            passes.guided = Some(s);
        }
        if has(Method::Deconvnet) || has(Method::DeconvnetGradCam) {
            passes.deconv = Some(spec(Stop::Input, GradMode::Deconvnet));
        }
        if has(Method::Saliency) {
            passes.saliency = Some(spec(Stop::Input, GradMode::Plain));
        }
        passes
    }

    /// Every planned pass.
    fn all(&self) -> impl Iterator<Item = &BackwardSpec> {
        [&self.target, &self.guided, &self.deconv, &self.saliency]
            .into_iter()
            .flatten()
    }
}

impl<B: Backend> Explainer<B> {
    /// An explainer for `model`.
    pub fn new(model: Model<B>) -> Self {
        Explainer { model }
    }

    /// The model.
    pub fn model(&self) -> &Model<B> {
        &self.model
    }

    /// Resolves the target layer named in `opts` (or the default) and checks it is 4-D.
    pub fn target_layer(&self, opts: &Options) -> Result<NodeId> {
        let g = self.model.graph();
        match &opts.layer {
            Some(l) => g.find(l),
            None => g.default_target(),
        }
    }

    /// The target layer, where one of `methods` uses one ([`Explainer::target_layer`]).
    pub fn target_for(&self, methods: &[Method], opts: &Options) -> Result<Option<NodeId>> {
        if methods.iter().any(|m| m.uses_target_layer()) {
            self.target_layer(opts).map(Some)
        } else {
            Ok(None)
        }
    }

    /// What the shared forward keeps for `passes` (and the target activation), and how it may
    /// round: where no backward reads a mask or a switch of it, its rounding moves values by
    /// rounding only, so the backend may take its faster forward ([`Rounding::Fast`]).
    fn forward_plan(
        &self,
        passes: &Passes,
        target: Option<NodeId>,
    ) -> Result<(BTreeSet<NodeId>, Rounding)> {
        let mut keep: BTreeSet<NodeId> = target.into_iter().collect();
        let mut rounding = Rounding::Fast;
        for s in passes.all() {
            let needs = self.model.backward_needs(s)?;
            if !needs.is_empty() {
                rounding = Rounding::Exact;
            }
            keep.extend(needs);
        }
        Ok((keep, self.model.effective_rounding(rounding)))
    }

    /// How [`Explainer::explain`] rounds its forward for `methods` and `opts`:
    /// [`Rounding::Fast`] where no backward pass reads the forward's masks or switches and the
    /// backend has a faster forward, else [`Rounding::Exact`] (also in
    /// [`Explanation::forward`]).
    pub fn forward_rounding(&self, methods: &[Method], opts: &Options) -> Result<Rounding> {
        let target = self.target_for(methods, opts)?;
        let passes = Passes::plan(methods, opts, target, self.model.graph().output());
        Ok(self.forward_plan(&passes, target)?.1)
    }

    /// Explains `input` (`[n, c, h, w]`, normalised) with every method in `methods`.
    pub fn explain(
        &self,
        input: &HostTensor,
        methods: &[Method],
        opts: &Options,
    ) -> Result<Explanation> {
        // One pass for the backend: its ops then start without waking this thread.
        self.model
            .backend()
            .run_pass(|| self.explain_pass(input, methods, opts))
    }

    /// [`Explainer::explain`]'s work.
    fn explain_pass(
        &self,
        input: &HostTensor,
        methods: &[Method],
        opts: &Options,
    ) -> Result<Explanation> {
        if methods.is_empty() {
            return Err(Error::InvalidArgument("no method given".into()));
        }
        let m = &self.model;
        let g = m.graph();
        let b = m.backend();
        let has = |x: Method| methods.contains(&x);
        let x = m.upload_input(input)?;
        let shapes = g.infer_shapes(x.shape())?;
        let [n, _, hh, ww] = x.shape().nchw("input")?;
        let out_node = g.output();
        let classes_n = shapes[out_node.0].dims()[1];

        let target = self.target_for(methods, opts)?;
        if let Some(t) = target.filter(|t| shapes[t.0].rank() != 4) {
            return Err(Error::InvalidArgument(format!(
                "target layer {} has output {}: CAM methods need a 4-D activation",
                g.display_name(t),
                shapes[t.0]
            )));
        }

        let passes = Passes::plan(methods, opts, target, out_node);
        let (keep, rounding) = self.forward_plan(&passes, target)?;
        let acts = m.forward_with(&x, &keep, rounding)?;
        let logits = acts.get(out_node)?.clone();
        let slots = self.choose_classes(&opts.classes, &logits, n, classes_n)?;
        let a = target.map(|t| acts.get(t).cloned()).transpose()?;

        // Class-independent work, shared by every slot.
        let eigencam = match (&a, has(Method::EigenCam)) {
            (Some(a), true) => {
                let [_, k, h, w] = a.shape().nchw("eigencam")?;
                let proj = eigen::projection(&b.download(a)?, n, k, h * w);
                Some(b.cam_postprocess_fused(&b.upload(&proj, Shape::new([n, h, w]))?, [hh, ww])?)
            }
            _ => None,
        };
        let scorecam = match (&a, has(Method::ScoreCam)) {
            (Some(a), true) => Some(perturb::scorecam_logits(
                m,
                &x,
                a,
                opts.perturbation_batch,
                rounding,
            )?),
            _ => None,
        };
        let occlusion = if has(Method::Occlusion) {
            let (window, stride) = opts.occlusion.resolve(hh, ww);
            let origins = perturb::origins(hh, ww, window, stride)?;
            let scores = perturb::occlusion_logits(
                m,
                &x,
                &origins,
                window,
                opts.occlusion.baseline,
                opts.perturbation_batch,
                rounding,
            )?;
            Some((origins, window, scores, b.download(&logits)?))
        } else {
            None
        };

        let mut per_slot: Vec<BTreeMap<String, Out<B>>> = Vec::with_capacity(slots.len());
        for slot in &slots {
            let seed = match opts.score {
                Score::Logit => m.one_hot(classes_n, slot)?,
                Score::Softmax => m.softmax_seed(&logits, slot)?,
            };
            let mut outs: BTreeMap<String, Out<B>> = BTreeMap::new();
            let mut put = |k: &str, t: Tensor<B>| {
                outs.insert(k.to_string(), Out::Dev(t));
            };
            let mut gradcam_map = None;
            if let (Some(s), Some(a)) = (&passes.target, &a) {
                let gt = m.backward(&acts, s, seed.clone())?.at_stop;
                if opts.intermediates {
                    put("target_gradient", gt.clone());
                }
                if has(Method::GradCam)
                    || has(Method::GuidedGradCam)
                    || has(Method::DeconvnetGradCam)
                {
                    let (alpha, raw, map) = if opts.gradcam == GradCamVariant::default() {
                        let (alpha, raw) = b.gradcam_fused(a, &gt)?;
                        (alpha, raw.clone(), CamMap::Raw(raw))
                    } else {
                        let (alpha, raw, map) =
                            variant::gradcam(b, a, &gt, &opts.gradcam, [hh, ww])?;
                        (alpha, raw, CamMap::Done(map))
                    };
                    if opts.intermediates {
                        let [_, _, h, w] = a.shape().nchw("gradcam")?;
                        put(
                            "captum_layer_gradcam",
                            b.weighted_channel_sum(a, &alpha, false)?
                                .reshape([n, 1, h, w])?,
                        );
                        put("gradcam_weights", alpha);
                        put("gradcam_raw", raw);
                    }
                    gradcam_map = Some(map);
                }
                if has(Method::GradCamPlusPlus) {
                    let raw = b.weighted_channel_sum(a, &b.gradcampp_weights(a, &gt)?, true)?;
                    put("gradcampp", b.cam_postprocess_fused(&raw, [hh, ww])?);
                }
                if has(Method::XGradCam) {
                    let raw = b.weighted_channel_sum(a, &b.xgradcam_weights(a, &gt)?, true)?;
                    put("xgradcam", b.cam_postprocess_fused(&raw, [hh, ww])?);
                }
                if has(Method::HiResCam) {
                    let raw = b.elementwise_channel_sum(a, &gt, false)?;
                    put("hirescam", b.cam_postprocess_fused(&raw, [hh, ww])?);
                }
                if has(Method::LayerCam) {
                    let raw = b.elementwise_channel_sum(a, &gt, true)?;
                    put("layercam", b.cam_postprocess_fused(&raw, [hh, ww])?);
                }
            }
            for (pass, name, fused) in [
                (
                    &passes.guided,
                    "guided_backprop",
                    Some(("guided_gradcam", Method::GuidedGradCam)),
                ),
                (
                    &passes.deconv,
                    "deconvnet",
                    Some(("deconvnet_gradcam", Method::DeconvnetGradCam)),
                ),
                (&passes.saliency, "saliency", None),
            ] {
                let Some(s) = pass else { continue };
                let grad = m.backward(&acts, s, seed.clone())?.at_stop;
                if let (Some((fused, method)), Some(map)) = (fused, gradcam_map.as_mut()) {
                    if has(method) {
                        put(fused, map.product(b, &grad)?);
                    }
                }
                put(name, grad);
            }
            if let Some(map) = gradcam_map {
                put("gradcam", map.into_map(b, [hh, ww])?);
            }
            if let (Some(a), true) = (&a, has(Method::Cam)) {
                let raw = self.cam(a, slot, target.expect("CAM has a target"))?;
                put("cam", b.cam_postprocess_fused(&raw, [hh, ww])?);
                put("cam_raw", raw);
            }
            if let Some(map) = &eigencam {
                put("eigencam", map.clone());
            }
            if let (Some(scores), Some(a)) = (&scorecam, &a) {
                let k = a.dims()[1];
                let mut weights = Vec::with_capacity(n * k);
                for (i, &c) in slot.iter().enumerate() {
                    let s: Vec<f32> = scores[i]
                        .chunks(classes_n)
                        .map(|row| opts.score.of(row, c))
                        .collect();
                    weights.extend(perturb::softmax(&s));
                }
                let w = b.upload(&weights, Shape::new([n, k]))?;
                put(
                    "scorecam",
                    b.cam_postprocess_fused(&b.weighted_channel_sum(a, &w, true)?, [hh, ww])?,
                );
            }
            if let Some((origins, window, scores, base)) = &occlusion {
                let mut data = Vec::with_capacity(n * hh * ww);
                for (i, &c) in slot.iter().enumerate() {
                    let row = |v: &[f32]| opts.score.of(v, c);
                    let s: Vec<f32> = scores[i].chunks(classes_n).map(row).collect();
                    let b0 = row(&base[i * classes_n..(i + 1) * classes_n]);
                    data.extend(perturb::occlusion_map(b0, &s, origins, *window, hh, ww));
                }
                outs.insert(
                    "occlusion".into(),
                    Out::Host(HostTensor::new([n, hh, ww], data)?),
                );
            }
            per_slot.push(outs);
        }

        // Download, interleaving slots: row i·K + j explains slot j of image i.
        let k = slots.len();
        let mut ex = Explanation {
            layer: target.map(|t| g.display_name(t).to_string()),
            forward: rounding,
            ..Default::default()
        };
        for i in 0..n {
            for slot in &slots {
                ex.targets.push(slot[i]);
                ex.images.push(i);
            }
        }
        ex.tensors.insert("logits".into(), m.to_host(&logits)?);
        if let Some(a) = a.as_ref().filter(|_| opts.intermediates) {
            ex.tensors.insert("target_activation".into(), m.to_host(a)?);
        }
        let names: Vec<String> = per_slot
            .first()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        for name in names {
            let hosts = per_slot
                .iter_mut()
                .map(
                    |o| match o.remove(&name).expect("every slot has the same outputs") {
                        Out::Dev(t) => m.into_host(t),
                        Out::Host(h) => Ok(h),
                    },
                )
                .collect::<Result<Vec<_>>>()?;
            ex.tensors.insert(name, interleave(hosts, n, k)?);
        }
        Ok(ex)
    }

    /// The classes of each slot: `slots[j][i]` is image `i`'s class in slot `j`.
    fn choose_classes(
        &self,
        classes: &Classes,
        logits: &Tensor<B>,
        n: usize,
        c: usize,
    ) -> Result<Vec<Vec<usize>>> {
        let check = |v: usize| {
            if v >= c {
                Err(Error::ClassOutOfRange {
                    class: v,
                    classes: c,
                })
            } else {
                Ok(v)
            }
        };
        match classes {
            Classes::Given(v) if v.len() == 1 => Ok(vec![vec![check(v[0])?; n]]),
            Classes::Given(v) if v.len() == n => {
                Ok(vec![v.iter().map(|&x| check(x)).collect::<Result<_>>()?])
            }
            Classes::Given(v) => Err(Error::InvalidArgument(format!(
                "{} classes given for {n} input rows: give one per row or a single one for all",
                v.len()
            ))),
            Classes::PerImage(lists) => {
                let k = lists.first().map_or(0, Vec::len);
                if lists.len() != n || k == 0 || lists.iter().any(|l| l.len() != k) {
                    return Err(Error::InvalidArgument(format!(
                        "per-image classes: give the same number (at least one) for each of the {n} images"
                    )));
                }
                (0..k)
                    .map(|j| lists.iter().map(|l| check(l[j])).collect())
                    .collect()
            }
            Classes::Top1 => self.choose_classes(&Classes::TopK(1), logits, n, c),
            Classes::TopK(k) => {
                if *k == 0 || *k > c {
                    return Err(Error::InvalidArgument(format!("top {k} of {c} classes")));
                }
                let l = self.model.backend().download(logits)?;
                let ranked: Vec<Vec<usize>> = l
                    .chunks(c)
                    .map(|row| {
                        let mut idx: Vec<usize> = (0..c).collect();
                        idx.sort_by(|&p, &q| row[q].total_cmp(&row[p]).then(p.cmp(&q)));
                        idx
                    })
                    .collect();
                Ok((0..*k)
                    .map(|j| ranked.iter().map(|r| r[j]).collect())
                    .collect())
            }
        }
    }

    /// CAM: `Σₖ w[c,k] Aₖ` with the classifier's weights; the target must feed global average
    /// pooling then the final linear layer.
    fn cam(&self, a: &Tensor<B>, classes: &[usize], target: NodeId) -> Result<Tensor<B>> {
        let g = self.model.graph();
        let fc = g.node(g.output());
        let unsupported = || {
            Error::Unsupported(format!(
                "CAM needs the target layer to feed global average pooling and then the final linear layer; {} does not",
                g.display_name(target)
            ))
        };
        let Op::Linear { weight, .. } = &fc.op else {
            return Err(unsupported());
        };
        let mut cur = fc.inputs[0];
        while matches!(g.node(cur).op, Op::Flatten | Op::Dropout) {
            cur = g.node(cur).inputs[0];
        }
        if !matches!(
            g.node(cur).op,
            Op::GlobalAvgPool | Op::AdaptiveAvgPool([1, 1])
        ) || g.node(cur).inputs[0] != target
        {
            return Err(unsupported());
        }
        let w = &g.params()[weight.0].value;
        let k = a.dims()[1];
        if w.shape.dim(1) != k {
            return Err(unsupported());
        }
        let mut rows = Vec::with_capacity(classes.len() * k);
        for &c in classes {
            rows.extend_from_slice(&w.data[c * k..(c + 1) * k]);
        }
        let wt = self
            .model
            .backend()
            .upload(&rows, Shape::new([classes.len(), k]))?;
        self.model.backend().weighted_channel_sum(a, &wt, false)
    }
}

/// Stacks per-slot tensors `[n, ...]` into `[n·k, ...]` with row `i·k + j` from slot `j`; a
/// single slot's tensor is returned as it is, not copied again (a 224×224 Guided Backprop map
/// is 600 KB; a copy into a fresh allocation once cost 147 page faults per explanation).
fn interleave(mut slots: Vec<HostTensor>, n: usize, k: usize) -> Result<HostTensor> {
    if slots.len() == 1 {
        return Ok(slots.remove(0));
    }
    let dims = slots[0].shape.dims();
    let row = slots[0].data.len() / n.max(1);
    let mut data = Vec::with_capacity(row * n * k);
    for i in 0..n {
        for s in &slots {
            data.extend_from_slice(&s.data[i * row..(i + 1) * row]);
        }
    }
    let mut shape = dims.to_vec();
    shape[0] = n * k;
    HostTensor::new(shape, data)
}
