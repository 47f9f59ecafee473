//! The architecture's invariants, checked by counting the primitives an explanation calls:
//! explaining never computes weight gradients, Grad-CAM's backward stops at the target layer,
//! and every method of one call shares one forward pass that keeps only what backward needs.

mod common;

use gradcam::core::{
    Activation, Conv2dParams, GradMode, LrnParams, Pool2dParams, Rectifier, ResizeMode,
};
use gradcam::runtime::{BackwardSpec, Op, RectifierRule, Stop};
use gradcam::{
    Backend, Classes, CpuBackend, Explainer, Method, Model, Options, Result, Shape, Tensor,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// The CPU backend, counting calls per primitive. It has no `fast_forward` handle (the
/// trait's default), so every forward here is the exact one; a fast forward calls the same
/// primitives (only the CPU's convolution algorithm differs), so the counts hold for both.
#[derive(Default)]
struct Counting {
    inner: CpuBackend,
    calls: Mutex<BTreeMap<&'static str, usize>>,
}

type T = Tensor<Counting>;
type C = Tensor<CpuBackend>;

fn cpu(t: &T) -> C {
    Tensor::from_parts(t.shape().clone(), t.buffer().clone())
}

fn wrap(r: Result<C>) -> Result<T> {
    r.map(|t| Tensor::from_parts(t.shape().clone(), t.buffer().clone()))
}

impl Counting {
    fn hit(&self, name: &'static str) {
        *self.calls.lock().unwrap().entry(name).or_default() += 1;
    }
    fn count(&self, name: &str) -> usize {
        self.calls.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

impl Backend for Counting {
    type Buffer = <CpuBackend as Backend>::Buffer;
    fn name(&self) -> String {
        "counting-cpu".into()
    }
    fn upload(&self, d: &[f32], s: Shape) -> Result<T> {
        self.hit("upload");
        wrap(self.inner.upload(d, s))
    }
    fn download(&self, x: &T) -> Result<Vec<f32>> {
        self.hit("download");
        self.inner.download(&cpu(x))
    }
    fn conv2d(&self, x: &T, w: &T, b: Option<&T>, p: &Conv2dParams) -> Result<T> {
        self.hit("conv2d");
        wrap(self.inner.conv2d(&cpu(x), &cpu(w), b.map(cpu).as_ref(), p))
    }
    fn conv2d_rectified(
        &self,
        x: &T,
        w: &T,
        b: Option<&T>,
        p: &Conv2dParams,
        r: Rectifier,
    ) -> Result<T> {
        self.hit("conv2d");
        self.hit("conv2d_rectified");
        wrap(
            self.inner
                .conv2d_rectified(&cpu(x), &cpu(w), b.map(cpu).as_ref(), p, r),
        )
    }
    fn conv2d_add_rectified(
        &self,
        x: &T,
        w: &T,
        b: Option<&T>,
        p: &Conv2dParams,
        residual: &T,
        r: Rectifier,
    ) -> Result<T> {
        self.hit("conv2d");
        self.hit("add");
        self.hit("conv2d_add_rectified");
        wrap(self.inner.conv2d_add_rectified(
            &cpu(x),
            &cpu(w),
            b.map(cpu).as_ref(),
            p,
            &cpu(residual),
            r,
        ))
    }
    fn conv2d_backward_data(&self, dy: &T, w: &T, p: &Conv2dParams, s: &Shape) -> Result<T> {
        self.hit("conv2d_backward_data");
        wrap(self.inner.conv2d_backward_data(&cpu(dy), &cpu(w), p, s))
    }
    fn conv2d_backward_data_add(
        &self,
        dy: &T,
        w: &T,
        p: &Conv2dParams,
        s: &Shape,
        acc: &T,
    ) -> Result<T> {
        self.hit("conv2d_backward_data");
        self.hit("add");
        self.hit("conv2d_backward_data_add");
        wrap(
            self.inner
                .conv2d_backward_data_add(&cpu(dy), &cpu(w), p, s, &cpu(acc)),
        )
    }
    fn conv2d_backward_weight(&self, x: &T, dy: &T, p: &Conv2dParams, s: &Shape) -> Result<T> {
        self.hit("conv2d_backward_weight");
        wrap(self.inner.conv2d_backward_weight(&cpu(x), &cpu(dy), p, s))
    }
    fn conv2d_backward_bias(&self, dy: &T) -> Result<T> {
        self.hit("conv2d_backward_bias");
        wrap(self.inner.conv2d_backward_bias(&cpu(dy)))
    }
    fn linear(&self, x: &T, w: &T, b: Option<&T>) -> Result<T> {
        self.hit("linear");
        wrap(self.inner.linear(&cpu(x), &cpu(w), b.map(cpu).as_ref()))
    }
    fn linear_backward_data(&self, dy: &T, w: &T) -> Result<T> {
        self.hit("linear_backward_data");
        wrap(self.inner.linear_backward_data(&cpu(dy), &cpu(w)))
    }
    fn linear_backward_weight(&self, x: &T, dy: &T) -> Result<T> {
        self.hit("linear_backward_weight");
        wrap(self.inner.linear_backward_weight(&cpu(x), &cpu(dy)))
    }
    fn linear_backward_bias(&self, dy: &T) -> Result<T> {
        self.hit("linear_backward_bias");
        wrap(self.inner.linear_backward_bias(&cpu(dy)))
    }
    fn rectifier(&self, x: &T, r: Rectifier) -> Result<T> {
        self.hit("rectifier");
        wrap(self.inner.rectifier(&cpu(x), r))
    }
    fn activation(&self, x: &T, a: Activation) -> Result<T> {
        self.hit("activation");
        wrap(self.inner.activation(&cpu(x), a))
    }
    fn activation_backward(&self, x: &T, dy: &T, a: Activation) -> Result<T> {
        self.hit("activation_backward");
        wrap(self.inner.activation_backward(&cpu(x), &cpu(dy), a))
    }
    fn rectifier_backward(&self, y: &T, dy: &T, r: Rectifier, m: GradMode) -> Result<T> {
        self.hit("rectifier_backward");
        wrap(self.inner.rectifier_backward(&cpu(y), &cpu(dy), r, m))
    }
    fn max_pool2d(&self, x: &T, p: &Pool2dParams) -> Result<T> {
        self.hit("max_pool2d");
        wrap(self.inner.max_pool2d(&cpu(x), p))
    }
    fn max_pool2d_backward(&self, x: &T, dy: &T, p: &Pool2dParams) -> Result<T> {
        self.hit("max_pool2d_backward");
        wrap(self.inner.max_pool2d_backward(&cpu(x), &cpu(dy), p))
    }
    fn max_pool2d_backward_rectified(
        &self,
        x: &T,
        dy: &T,
        p: &Pool2dParams,
        r: Rectifier,
        m: GradMode,
    ) -> Result<T> {
        self.hit("max_pool2d_backward_rectified");
        wrap(
            self.inner
                .max_pool2d_backward_rectified(&cpu(x), &cpu(dy), p, r, m),
        )
    }
    fn avg_pool2d(&self, x: &T, p: &Pool2dParams) -> Result<T> {
        self.hit("avg_pool2d");
        wrap(self.inner.avg_pool2d(&cpu(x), p))
    }
    fn avg_pool2d_backward(&self, dy: &T, p: &Pool2dParams, s: &Shape) -> Result<T> {
        self.hit("avg_pool2d_backward");
        wrap(self.inner.avg_pool2d_backward(&cpu(dy), p, s))
    }
    fn adaptive_avg_pool2d(&self, x: &T, o: [usize; 2]) -> Result<T> {
        self.hit("adaptive_avg_pool2d");
        wrap(self.inner.adaptive_avg_pool2d(&cpu(x), o))
    }
    fn adaptive_avg_pool2d_backward(&self, dy: &T, s: &Shape) -> Result<T> {
        self.hit("adaptive_avg_pool2d_backward");
        wrap(self.inner.adaptive_avg_pool2d_backward(&cpu(dy), s))
    }
    fn channel_affine(&self, x: &T, s: &T, b: &T) -> Result<T> {
        self.hit("channel_affine");
        wrap(self.inner.channel_affine(&cpu(x), &cpu(s), &cpu(b)))
    }
    fn channel_affine_backward(&self, dy: &T, s: &T) -> Result<T> {
        self.hit("channel_affine_backward");
        wrap(self.inner.channel_affine_backward(&cpu(dy), &cpu(s)))
    }
    fn add(&self, a: &T, b: &T) -> Result<T> {
        self.hit("add");
        wrap(self.inner.add(&cpu(a), &cpu(b)))
    }
    fn add_rectified(&self, a: &T, b: &T, r: Rectifier) -> Result<T> {
        self.hit("add");
        self.hit("add_rectified");
        wrap(self.inner.add_rectified(&cpu(a), &cpu(b), r))
    }
    fn lrn(&self, x: &T, p: &LrnParams) -> Result<T> {
        self.hit("lrn");
        wrap(self.inner.lrn(&cpu(x), p))
    }
    fn lrn_backward(&self, x: &T, dy: &T, p: &LrnParams) -> Result<T> {
        self.hit("lrn_backward");
        wrap(self.inner.lrn_backward(&cpu(x), &cpu(dy), p))
    }
    fn mul(&self, a: &T, b: &T) -> Result<T> {
        self.hit("mul");
        wrap(self.inner.mul(&cpu(a), &cpu(b)))
    }
    fn mul_plane_sum(&self, dy: &T, a: &T) -> Result<T> {
        self.hit("mul_plane_sum");
        wrap(self.inner.mul_plane_sum(&cpu(dy), &cpu(a)))
    }
    fn concat_channels(&self, xs: &[&T]) -> Result<T> {
        self.hit("concat_channels");
        let v: Vec<C> = xs.iter().map(|x| cpu(x)).collect();
        wrap(self.inner.concat_channels(&v.iter().collect::<Vec<_>>()))
    }
    fn slice_channels(&self, x: &T, s: usize, l: usize) -> Result<T> {
        self.hit("slice_channels");
        wrap(self.inner.slice_channels(&cpu(x), s, l))
    }
    fn softmax(&self, x: &T) -> Result<T> {
        self.hit("softmax");
        wrap(self.inner.softmax(&cpu(x)))
    }
    fn softmax_backward(&self, y: &T, dy: &T) -> Result<T> {
        self.hit("softmax_backward");
        wrap(self.inner.softmax_backward(&cpu(y), &cpu(dy)))
    }
    fn gradient_gap(&self, g: &T) -> Result<T> {
        self.hit("gradient_gap");
        wrap(self.inner.gradient_gap(&cpu(g)))
    }
    fn weighted_channel_sum(&self, a: &T, w: &T, relu: bool) -> Result<T> {
        self.hit("weighted_channel_sum");
        wrap(self.inner.weighted_channel_sum(&cpu(a), &cpu(w), relu))
    }
    fn elementwise_channel_sum(&self, a: &T, g: &T, relu: bool) -> Result<T> {
        self.hit("elementwise_channel_sum");
        wrap(self.inner.elementwise_channel_sum(&cpu(a), &cpu(g), relu))
    }
    fn gradcampp_weights(&self, a: &T, g: &T) -> Result<T> {
        self.hit("gradcampp_weights");
        wrap(self.inner.gradcampp_weights(&cpu(a), &cpu(g)))
    }
    fn xgradcam_weights(&self, a: &T, g: &T) -> Result<T> {
        self.hit("xgradcam_weights");
        wrap(self.inner.xgradcam_weights(&cpu(a), &cpu(g)))
    }
    fn normalize_min_max(&self, x: &T, g: usize, eps: f32) -> Result<T> {
        self.hit("normalize_min_max");
        wrap(self.inner.normalize_min_max(&cpu(x), g, eps))
    }
    fn resize_bilinear(&self, x: &T, o: [usize; 2], m: ResizeMode) -> Result<T> {
        self.hit("resize_bilinear");
        wrap(self.inner.resize_bilinear(&cpu(x), o, m))
    }
    fn heatmap_fusion(&self, x: &T, m: &T) -> Result<T> {
        self.hit("heatmap_fusion");
        wrap(self.inner.heatmap_fusion(&cpu(x), &cpu(m)))
    }
    fn occlude(&self, x: &T, o: &[[usize; 2]], s: [usize; 2], b: f32) -> Result<T> {
        self.hit("occlude");
        wrap(self.inner.occlude(&cpu(x), o, s, b))
    }
}

fn conv_nodes(g: &gradcam::Graph) -> usize {
    g.nodes()
        .iter()
        .filter(|n| matches!(n.op, Op::Conv2d { .. }))
        .count()
}

fn mini_resnet() -> (Explainer<Counting>, gradcam::HostTensor, Vec<usize>) {
    let case = common::load_case("mini_resnet");
    // Batch norm folded into the convolutions, as the CLI runs it.
    let graph = case.graph().fold_batch_norm(&[]).unwrap();
    let model = Model::new(Counting::default(), graph).unwrap();
    (
        Explainer::new(model),
        case.reference["input"].clone(),
        case.targets.clone(),
    )
}

#[test]
fn gradcam_backward_stops_at_the_target_and_computes_no_weight_gradient() {
    let (ex, input, targets) = mini_resnet();
    let convs = conv_nodes(ex.model().graph());
    let opts = Options {
        layer: Some("layer4.0".into()),
        classes: Classes::Given(targets),
        ..Options::default()
    };
    ex.explain(&input, &[Method::GradCam], &opts).unwrap();
    let b = ex.model().backend();
    assert_eq!(b.count("conv2d"), convs, "one forward pass");
    // Convolutions feeding only a ReLU ran fused with it; a residual block's last convolution
    // (or its shortcut's), its sum and its ReLU ran as one.
    assert!(
        b.count("conv2d_rectified") > 0 && b.count("conv2d_add_rectified") > 0,
        "fused: {} convolutions, {} residual sums",
        b.count("conv2d_rectified"),
        b.count("conv2d_add_rectified")
    );
    // Above layer4.0 there are exactly two convs (layer4.1.conv1/conv2) and one linear layer.
    assert_eq!(b.count("conv2d_backward_data"), 2);
    assert_eq!(b.count("linear_backward_data"), 1);
    assert_eq!(
        b.count("conv2d_backward_weight") + b.count("linear_backward_weight"),
        0
    );
    assert_eq!(
        b.count("conv2d_backward_bias") + b.count("linear_backward_bias"),
        0
    );
    // Classes were given: the only downloads are the final outputs (logits, activation,
    // and the five Grad-CAM tensors).
    assert_eq!(b.count("download"), 7);
}

#[test]
fn all_gradient_methods_share_one_forward_pass() {
    let (ex, input, targets) = mini_resnet();
    let convs = conv_nodes(ex.model().graph());
    let opts = Options {
        classes: Classes::Given(targets),
        ..Options::default()
    };
    let methods = [
        Method::GradCam,
        Method::GradCamPlusPlus,
        Method::HiResCam,
        Method::GuidedBackprop,
        Method::GuidedGradCam,
        Method::Deconvnet,
        Method::Saliency,
    ];
    ex.explain(&input, &methods, &opts).unwrap();
    let b = ex.model().backend();
    assert_eq!(
        b.count("conv2d"),
        convs,
        "one forward pass for every method"
    );
    assert_eq!(
        b.count("conv2d_backward_weight") + b.count("linear_backward_weight"),
        0
    );
    // Three passes to the input (guided, deconvnet, saliency) run through every conv.
    assert_eq!(b.count("conv2d_backward_data"), 3 * convs);
    // A residual block's input gets two gradients: the second one's backward-data and the sum
    // ran as one op.
    assert!(
        b.count("conv2d_backward_data_add") >= 3,
        "fused gradient sums"
    );
    // Each pass to the input went through the stem's max-pool and the ReLU before it in one op.
    assert_eq!(b.count("max_pool2d_backward_rectified"), 3);
    assert_eq!(b.count("max_pool2d_backward"), 0);
}

#[test]
fn forward_keeps_only_what_backward_needs() {
    let case = common::load_case("mini_resnet");
    let model = Model::new(CpuBackend::new(), case.graph()).unwrap();
    let g = model.graph();
    let target = g.find("layer4.1").unwrap();
    let spec = BackwardSpec {
        from: g.output(),
        stop: Stop::At(target),
        rule: RectifierRule::default(),
        weight_grads: false,
    };
    // Above layer4.1 there are only pooling, flatten and the classifier: nothing to keep.
    assert!(model.backward_needs(&spec).unwrap().is_empty());
    let x = model.upload_input(&case.reference["input"]).unwrap();
    let keep: BTreeSet<_> = [target].into_iter().collect();
    let acts = model.forward(&x, &keep).unwrap();
    assert_eq!(acts.kept(), 2, "the target activation and the logits");
    // A guided pass to the input needs every rectifier output and max-pool input.
    let guided = BackwardSpec {
        stop: Stop::Input,
        rule: RectifierRule {
            mode: GradMode::Guided,
            relu_only: false,
        },
        ..spec
    };
    let needs = model.backward_needs(&guided).unwrap();
    let mut expected = BTreeSet::new();
    for (i, n) in g.nodes().iter().enumerate() {
        match n.op {
            Op::Rectifier(_) => {
                expected.insert(gradcam::runtime::NodeId(i));
            }
            Op::MaxPool(_) => {
                expected.insert(n.inputs[0]);
            }
            _ => {}
        }
    }
    assert_eq!(needs, expected);
    assert_eq!(
        needs.len(),
        17,
        "stem ReLU (also the max-pool input) and two per block"
    );
}
