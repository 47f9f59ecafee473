//! [`CpuBackend`]: the trait implementation, shape checks first, then the kernels.

use crate::host::{self, HostBuf};
use crate::kernels::winograd::{self, Variant};
use crate::kernels::{activation, cam, conv, direct, layout, linear, lrn, pool, winograd4};
use gradcam_core::{
    check, Activation, Backend, Conv2dParams, Derived, Error, GradMode, LrnParams, Pool2dParams,
    Rectifier, ResizeMode, Result, Shape, Tensor,
};
use std::sync::Arc;

/// The CPU backend; its device memory is host memory behind an `Arc`. Clones share one cache
/// of rearranged weights (flipped or transposed for backward-data), kept while the weights
/// live. Its ops run on rayon's pool (sized by [`crate::set_threads`]); through a pass
/// ([`Backend::run_pass`]: a forward, a backward, an explanation) the pool's idle workers spin,
/// running its jobs as they come, rather than sleep between ops, and stop when the pass ends or
/// after 2 ms without a job (none spin while passes from several threads run at once).
#[derive(Clone, Debug)]
pub struct CpuBackend {
    /// Rearranged weights (flipped, transposed, Winograd-transformed).
    derived: Arc<Derived<HostBuf, HostBuf>>,
    reference: bool,
    winograd_forward: bool,
    /// Whether [`Backend::fast_forward`] hands out a Winograd-forward handle.
    fast_variant: bool,
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend {
            derived: Arc::default(),
            reference: false,
            winograd_forward: false,
            fast_variant: true,
        }
    }
}

impl CpuBackend {
    /// A CPU backend using rayon's global thread pool and the fastest kernels this CPU runs
    /// (AVX-512 or AVX2 micro-kernels chosen at run time; `GRADCAM_CPU_KERNEL` overrides).
    pub fn new() -> Self {
        CpuBackend::default()
    }

    /// The reference kernels: convolutions by im2col + `matrixmultiply` (forward) and GEMM +
    /// col2im (backward-data), slower, but their rounding does not change when the fast
    /// kernels do. Training and evaluating the demo model use them, so its committed weights
    /// and docs/EVALUATION.md reproduce bit for bit.
    pub fn reference() -> Self {
        CpuBackend {
            reference: true,
            ..CpuBackend::default()
        }
    }

    /// With `on`, every forward 3×3 stride-1 convolution runs by Winograd F(4×4, 3×3) (from
    /// 16 channels, and 13×13 planes; with the AVX-512 micro-kernel from 25×25, and where the
    /// direct convolution could take the layer only with products of 4 Mi multiply-adds:
    /// [`winograd4::pays`]), as backward-data does ([`winograd4::pays_backward`], which with
    /// AVX-512 also leaves layers of fewer than 128 channels to the direct convolution): the
    /// forward of ResNet-50, ResNet-18 and VGG-16 7–30 % faster on an AVX2 machine
    /// (docs/PERFORMANCE.md). The cost is rounding: F(4×4)'s relative error is ≈ 1e-5 against
    /// the direct product's ≈ 1e-7, which leaves logits and Grad-CAM about 1e-6 from PyTorch's
    /// but decides more near-zero rectifier inputs' signs, so masks downstream change: Guided
    /// Backprop on ResNet-50 drifted 3.3e-4 from PyTorch's (2.6e-7 without; the fixtures'
    /// tolerance is 1e-4). Off by default, as the CUDA backend's TF32 is: by default only the
    /// forward passes whose masks no backward reads round so ([`Backend::fast_forward`]). The
    /// CLI's `--backend cpu-winograd`.
    pub fn with_winograd_forward(self, on: bool) -> Self {
        CpuBackend {
            winograd_forward: on,
            ..self
        }
    }

    /// With `on` (the default), [`Backend::fast_forward`] gives this backend with Winograd
    /// forwards ([`CpuBackend::with_winograd_forward`]), which the explainer uses for forward
    /// passes no backward reads anything of (Grad-CAM at a layer followed by no rectifier,
    /// max-pool, activation or product; CAM; ScoreCAM's passes; not Guided Backprop). Off:
    /// every forward rounds as the direct product, the CLI's `--backend cpu-exact`. The
    /// reference kernels never have a fast handle.
    pub fn with_fast_forward(self, on: bool) -> Self {
        CpuBackend {
            fast_variant: on,
            ..self
        }
    }

    /// A forward convolution (plus `residual`, then clamped) by the backend's plan.
    fn conv_forward(
        &self,
        x: &T,
        w: &T,
        b: Option<&T>,
        p: &Conv2dParams,
        residual: Option<&T>,
        clamp: Option<(f32, f32)>,
    ) -> Result<T> {
        let out = check::conv2d(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
        if let Some(r) = residual {
            check::same("residual sum", &Shape::from(out), r.shape())?;
        }
        let g = conv::ConvGeom::new(
            x.shape().nchw("conv2d")?,
            w.shape().nchw("conv2d")?,
            out,
            *p,
        );
        // Every path writes each output value (the first block of steps stores, not adds).
        Ok(make_filled(out, |y| {
            self.forward_geom(
                data(x),
                w.buffer(),
                w.dims(),
                b.map(data),
                residual.map(data),
                clamp,
                &g,
                false,
                y,
            )
        }))
    }

    /// The forward convolution of checked geometry `g` (`backward`: computing a stride-1
    /// backward-data with the flipped weight): Winograd with the transformed weight where the
    /// plan allows, else the direct convolution with the packed weight where it applies (both
    /// weights kept per weight buffer), else im2col and the packed GEMM.
    #[allow(clippy::too_many_arguments)]
    fn forward_geom(
        &self,
        x: &[f32],
        w: &Arc<HostBuf>,
        dims: &[usize],
        b: Option<&[f32]>,
        residual: Option<&[f32]>,
        clamp: Option<(f32, f32)>,
        g: &conv::ConvGeom,
        backward: bool,
        y: &mut [f32],
    ) {
        let plan = self.plan();
        // Winograd's output transform takes no residual: the sum and the clamp follow it (the
        // same operations in the same order).
        let (wino_clamp, after) = match residual {
            None => (clamp, None),
            Some(r) => (None, Some((r, clamp))),
        };
        let relaxed = if backward {
            winograd4::pays_backward(plan.kernel, g)
        } else {
            self.winograd_forward && winograd4::pays(plan.kernel, g)
        };
        match plan.winograd(g, relaxed) {
            Some(Variant::F2) => {
                let u = self.derived.get(w, &tag(dims, g.p.groups, 0), |w| {
                    host::filled_by(16 * g.k * g.c, |u| {
                        winograd::transform_weight_into(w, g.k, g.c, u)
                    })
                });
                winograd::forward(plan.kernel, x, &u, b, wino_clamp, g, y);
            }
            Some(Variant::F4) => {
                let u = self.derived.get(w, &tag(dims, g.p.groups, 3), |w| {
                    host::filled_by(winograd4::P * g.k * g.c, |u| {
                        winograd4::transform_weight_into(w, g.k, g.c, u)
                    })
                });
                winograd4::forward(plan.kernel, x, &u, b, wino_clamp, g, y);
            }
            None => match plan.direct_kernel(g) {
                Some(k) => {
                    let wt = self.derived.get(w, &tag(dims, g.p.groups, 4), |w| {
                        let depth = g.c * g.kh * g.kw;
                        host::filled_by(g.k.div_ceil(k.nr) * depth * k.nr, |o| {
                            direct::pack_weight_into(w, g.k, depth, k.nr, o)
                        })
                    });
                    return direct::forward(k, x, &wt, b, residual, clamp, g, y);
                }
                None => return conv::forward_fused(plan, x, w, b, residual, clamp, g, y),
            },
        }
        if let Some((r, clamp)) = after {
            layout::add_in_place(y, r, clamp);
        }
    }

    /// [`Backend::conv2d_backward_data`], plus `acc` (of the input's shape) when given: in the
    /// direct kernel's or the GEMM's store, after Winograd's output transform or col2im in a
    /// pass of its own.
    fn backward_data(
        &self,
        dy: &T,
        w: &T,
        p: &Conv2dParams,
        x_shape: &Shape,
        acc: Option<&T>,
    ) -> Result<T> {
        check::conv2d_backward(x_shape, w.shape(), dy.shape(), p)?;
        let xs = x_shape.nchw("conv2d")?;
        let g = conv::ConvGeom::new(
            xs,
            w.shape().nchw("conv2d")?,
            dy.shape().nchw("conv2d")?,
            *p,
        );
        let plan = self.plan();
        let prepared = self.derived.get(
            w.buffer(),
            &tag(w.dims(), p.groups, 1 + plan.flips(&g) as u8),
            |w| host::filled_by(w.len(), |o| conv::prepare_backward_into(plan, w, &g, o)),
        );
        match conv::transposed_geom(&g).filter(|_| plan.flips(&g)) {
            // Stride 1: the forward convolution of dy with the flipped weight (which writes
            // every value).
            Some(t) => Ok(make_filled(xs, |dx| {
                self.forward_geom(
                    data(dy),
                    &prepared,
                    w.dims(),
                    None,
                    acc.map(data),
                    None,
                    &t,
                    true,
                    dx,
                )
            })),
            None => Ok(make(xs, |dx| {
                conv::backward_data(plan, data(dy), &prepared, &g, acc.map(data), dx)
            })),
        }
    }

    fn plan(&self) -> conv::Plan<f32> {
        if self.reference {
            conv::Plan::reference()
        } else {
            conv::Plan::fast()
        }
    }
}

type T = Tensor<CpuBackend>;

/// The key of a rearranged weight: which rearrangement (0: Winograd F(2×2)'s, 1: transposed,
/// 2: flipped, 3: Winograd F(4×4)'s, 4: packed for the direct convolution), its grouping and
/// the weight's dimensions (a reshaped view shares the buffer).
fn tag(dims: &[usize], groups: usize, kind: u8) -> Vec<usize> {
    [kind as usize, groups]
        .into_iter()
        .chain(dims.iter().copied())
        .collect()
}

/// Max pooling's backward, then `then(x, dx)` on each plane as it is finished
/// ([`pool::max_backward_then`]). Each plane is zeroed by the kernel before its gradients are
/// added: not here too (no change measured in the network: the second pass found the buffer
/// in cache).
fn max_pool_backward(
    x: &T,
    dy: &T,
    p: &Pool2dParams,
    then: impl Fn(&[f32], &mut [f32]) + Sync,
) -> Result<T> {
    check::pool2d_backward(x.shape(), dy.shape(), p, "max_pool2d backward")?;
    let g = pool_geom(
        x.shape().nchw("max_pool2d")?,
        dy.shape().nchw("max_pool2d")?,
    );
    Ok(make_filled(x.shape().clone(), |dx| {
        pool::max_backward_then(data(x), data(dy), &g, p, dx, then)
    }))
}

/// A new tensor of `shape` whose values `f` writes (into zeros).
fn make(shape: impl Into<Shape>, f: impl FnOnce(&mut [f32])) -> T {
    let shape = shape.into();
    let mut data = host::zeros(shape.numel());
    f(&mut data);
    Tensor::from_parts(shape, Arc::new(data))
}

/// A new tensor of `shape` whose every value `f` writes (into a recycled buffer, whose old
/// values it must not read: [`host::filled_by`]): convolutions, rectifiers, sums, max
/// pooling, and the pools' backward (which zero each plane before adding into it).
fn make_filled(shape: impl Into<Shape>, f: impl FnOnce(&mut [f32])) -> T {
    let shape = shape.into();
    Tensor::from_parts(shape.clone(), Arc::new(host::filled_by(shape.numel(), f)))
}

fn data(t: &T) -> &[f32] {
    t.buffer()
}

fn pool_geom(x: [usize; 4], y: [usize; 4]) -> pool::PoolGeom {
    pool::PoolGeom {
        h: x[2],
        w: x[3],
        oh: y[2],
        ow: y[3],
    }
}

impl Backend for CpuBackend {
    type Buffer = Arc<HostBuf>;

    fn name(&self) -> String {
        if self.reference {
            "cpu (reference kernels)".into()
        } else if self.winograd_forward {
            "cpu-winograd".into()
        } else if !self.fast_variant {
            "cpu-exact".into()
        } else {
            "cpu".into()
        }
    }

    /// On a worker of the rayon pool (run in place when called on one): called from another
    /// thread, every parallel op injected its work into the pool and put the caller to sleep
    /// until the workers had finished, a wake-up per op each way. A 1×1 stride-2 convolution
    /// of 70 µs took a median of 127–150 µs so, 76 µs on a worker; ResNet-50's forward ran
    /// 7 % faster, ResNet-18's 9 % (docs/PERFORMANCE.md). The pool's other workers spin
    /// through the pass rather than sleep between its ops (`spin.rs`).
    fn run_pass<R: Send>(&self, pass: impl FnOnce() -> R + Send) -> R {
        crate::spin::pass(pass)
    }

    fn fast_forward(&self) -> Option<Self> {
        (self.fast_variant && !self.reference && !self.winograd_forward)
            .then(|| self.clone().with_winograd_forward(true))
    }

    fn upload(&self, d: &[f32], shape: Shape) -> Result<T> {
        if d.len() != shape.numel() {
            return Err(Error::shape(
                "upload",
                format!("{} values for {shape}", d.len()),
            ));
        }
        // Into a recycled buffer where the pool has one: a fresh copy of a 224×224 image cost
        // 147 page faults per call.
        Ok(Tensor::from_parts(shape, Arc::new(host::copy_of(d))))
    }

    fn download(&self, x: &T) -> Result<Vec<f32>> {
        Ok(data(x).to_vec())
    }

    fn conv2d(&self, x: &T, w: &T, b: Option<&T>, p: &Conv2dParams) -> Result<T> {
        self.conv_forward(x, w, b, p, None, None)
    }

    fn conv2d_rectified(
        &self,
        x: &T,
        w: &T,
        b: Option<&T>,
        p: &Conv2dParams,
        r: Rectifier,
    ) -> Result<T> {
        self.conv_forward(x, w, b, p, None, Some((r.lo, r.hi)))
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
        self.conv_forward(x, w, b, p, Some(residual), Some((r.lo, r.hi)))
    }

    fn conv2d_backward_data(&self, dy: &T, w: &T, p: &Conv2dParams, x_shape: &Shape) -> Result<T> {
        self.backward_data(dy, w, p, x_shape, None)
    }

    fn conv2d_backward_data_add(
        &self,
        dy: &T,
        w: &T,
        p: &Conv2dParams,
        x_shape: &Shape,
        acc: &T,
    ) -> Result<T> {
        check::same("conv2d gradient sum", acc.shape(), x_shape)?;
        self.backward_data(dy, w, p, x_shape, Some(acc))
    }

    fn conv2d_backward_weight(
        &self,
        x: &T,
        dy: &T,
        p: &Conv2dParams,
        w_shape: &Shape,
    ) -> Result<T> {
        check::conv2d_backward(x.shape(), w_shape, dy.shape(), p)?;
        let g = conv::ConvGeom::new(
            x.shape().nchw("conv2d")?,
            w_shape.nchw("conv2d")?,
            dy.shape().nchw("conv2d")?,
            *p,
        );
        Ok(make(w_shape.clone(), |dw| {
            conv::backward_weight(data(x), data(dy), &g, dw)
        }))
    }

    fn conv2d_backward_bias(&self, dy: &T) -> Result<T> {
        let [n, k, h, w] = dy.shape().nchw("conv2d bias gradient")?;
        Ok(make([k], |db| {
            conv::backward_bias(data(dy), n, k, h * w, db)
        }))
    }

    fn linear(&self, x: &T, w: &T, b: Option<&T>) -> Result<T> {
        let [n, o] = check::linear(x.shape(), w.shape(), b.map(|b| b.shape()))?;
        let i = w.dims()[1];
        Ok(make([n, o], |y| {
            if n <= linear::ROWS_MAX && !self.reference {
                linear::forward_rows(data(x), data(w), b.map(data), n, i, o, y)
            } else {
                linear::forward(data(x), data(w), b.map(data), n, i, o, y)
            }
        }))
    }

    fn linear_backward_data(&self, dy: &T, w: &T) -> Result<T> {
        let [n, i, o] = check::linear_backward_data(dy.shape(), w.shape())?;
        Ok(make([n, i], |dx| {
            if n <= linear::ROWS_MAX && !self.reference {
                linear::backward_data_rows(data(dy), data(w), n, i, o, dx)
            } else {
                linear::backward_data(data(dy), data(w), n, i, o, dx)
            }
        }))
    }

    fn linear_backward_weight(&self, x: &T, dy: &T) -> Result<T> {
        let [n, i, o] = check::linear_backward_weight(x.shape(), dy.shape())?;
        Ok(make([o, i], |dw| {
            linear::backward_weight(data(x), data(dy), n, i, o, dw)
        }))
    }

    fn linear_backward_bias(&self, dy: &T) -> Result<T> {
        let [n, o] = dy.shape().matrix("linear backward")?;
        Ok(make([o], |db| linear::backward_bias(data(dy), n, o, db)))
    }

    fn rectifier(&self, x: &T, r: Rectifier) -> Result<T> {
        Ok(make_filled(x.shape().clone(), |y| {
            activation::rectifier(data(x), r, y)
        }))
    }

    fn rectifier_backward(&self, y: &T, dy: &T, r: Rectifier, mode: GradMode) -> Result<T> {
        check::same("rectifier backward", y.shape(), dy.shape())?;
        Ok(make_filled(y.shape().clone(), |dx| {
            activation::rectifier_backward(data(y), data(dy), r, mode, dx)
        }))
    }

    fn activation(&self, x: &T, a: Activation) -> Result<T> {
        Ok(make(x.shape().clone(), |y| {
            activation::activation(data(x), a, y)
        }))
    }

    fn activation_backward(&self, x: &T, dy: &T, a: Activation) -> Result<T> {
        check::same("activation backward", x.shape(), dy.shape())?;
        Ok(make(x.shape().clone(), |dx| {
            activation::activation_backward(data(x), data(dy), a, dx)
        }))
    }

    fn lrn(&self, x: &T, p: &LrnParams) -> Result<T> {
        let [_, c, h, w] = check::lrn(x.shape(), p)?;
        Ok(make(x.shape().clone(), |y| {
            lrn::lrn(data(x), c, h * w, p, y)
        }))
    }

    fn lrn_backward(&self, x: &T, dy: &T, p: &LrnParams) -> Result<T> {
        let [_, c, h, w] = check::lrn(x.shape(), p)?;
        check::same("lrn backward", x.shape(), dy.shape())?;
        Ok(make(x.shape().clone(), |dx| {
            lrn::lrn_backward(data(x), data(dy), c, h * w, p, dx)
        }))
    }

    fn max_pool2d(&self, x: &T, p: &Pool2dParams) -> Result<T> {
        let out = check::pool2d(x.shape(), p, "max_pool2d")?;
        let g = pool_geom(x.shape().nchw("max_pool2d")?, out);
        Ok(make_filled(out, |y| pool::max_forward(data(x), &g, p, y)))
    }

    fn max_pool2d_backward(&self, x: &T, dy: &T, p: &Pool2dParams) -> Result<T> {
        max_pool_backward(x, dy, p, |_, _| {})
    }

    fn max_pool2d_backward_rectified(
        &self,
        x: &T,
        dy: &T,
        p: &Pool2dParams,
        r: Rectifier,
        mode: GradMode,
    ) -> Result<T> {
        // Each plane's rectifier rule applied by the thread that has just summed it, while it
        // is in cache: no pass of its own over the input and the gradient.
        max_pool_backward(x, dy, p, |x, dx| {
            activation::rectifier_backward_in_place(x, dx, r, mode)
        })
    }

    fn avg_pool2d(&self, x: &T, p: &Pool2dParams) -> Result<T> {
        let out = check::pool2d(x.shape(), p, "avg_pool2d")?;
        let g = pool_geom(x.shape().nchw("avg_pool2d")?, out);
        Ok(make(out, |y| pool::avg_forward(data(x), &g, p, y)))
    }

    fn avg_pool2d_backward(&self, dy: &T, p: &Pool2dParams, x_shape: &Shape) -> Result<T> {
        check::pool2d_backward(x_shape, dy.shape(), p, "avg_pool2d backward")?;
        let g = pool_geom(x_shape.nchw("avg_pool2d")?, dy.shape().nchw("avg_pool2d")?);
        Ok(make_filled(x_shape.clone(), |dx| {
            pool::avg_backward(data(dy), &g, p, dx)
        }))
    }

    fn adaptive_avg_pool2d(&self, x: &T, out: [usize; 2]) -> Result<T> {
        let o = check::adaptive_pool(x.shape(), out)?;
        let g = pool_geom(x.shape().nchw("adaptive_avg_pool2d")?, o);
        Ok(make(o, |y| pool::adaptive_forward(data(x), &g, y)))
    }

    fn adaptive_avg_pool2d_backward(&self, dy: &T, x_shape: &Shape) -> Result<T> {
        let d = dy.shape().nchw("adaptive_avg_pool2d backward")?;
        let o = check::adaptive_pool(x_shape, [d[2], d[3]])?;
        check::same("adaptive_avg_pool2d backward", dy.shape(), &Shape::from(o))?;
        let g = pool_geom(x_shape.nchw("adaptive_avg_pool2d")?, o);
        Ok(make_filled(x_shape.clone(), |dx| {
            pool::adaptive_backward(data(dy), &g, dx)
        }))
    }

    fn channel_affine(&self, x: &T, scale: &T, shift: &T) -> Result<T> {
        let [_, c, h, w] = check::channel_affine(x.shape(), scale.shape(), Some(shift.shape()))?;
        Ok(make(x.shape().clone(), |y| {
            layout::channel_affine(data(x), data(scale), Some(data(shift)), c, h * w, y)
        }))
    }

    fn channel_affine_backward(&self, dy: &T, scale: &T) -> Result<T> {
        let [_, c, h, w] = check::channel_affine(dy.shape(), scale.shape(), None)?;
        Ok(make(dy.shape().clone(), |dx| {
            layout::channel_affine(data(dy), data(scale), None, c, h * w, dx)
        }))
    }

    fn add(&self, a: &T, b: &T) -> Result<T> {
        check::same("add", a.shape(), b.shape())?;
        Ok(make_filled(a.shape().clone(), |y| {
            layout::add(data(a), data(b), y)
        }))
    }

    fn add_rectified(&self, a: &T, b: &T, r: Rectifier) -> Result<T> {
        check::same("add", a.shape(), b.shape())?;
        Ok(make_filled(a.shape().clone(), |y| {
            layout::add_clamped(data(a), data(b), r.lo, r.hi, y)
        }))
    }

    fn mul(&self, a: &T, b: &T) -> Result<T> {
        let plane = check::mul(a.shape(), b.shape())?;
        Ok(make(a.shape().clone(), |y| {
            layout::mul(data(a), data(b), plane, y)
        }))
    }

    fn mul_plane_sum(&self, dy: &T, a: &T) -> Result<T> {
        let [n, c, h, w] = check::cam_pair("mul_plane_sum", dy.shape(), a.shape())?;
        Ok(make([n, c, 1, 1], |y| {
            layout::mul_plane_sum(data(dy), data(a), h * w, y)
        }))
    }

    fn concat_channels(&self, xs: &[&T]) -> Result<T> {
        let shapes: Vec<&Shape> = xs.iter().map(|x| x.shape()).collect();
        let out = check::concat_channels(&shapes)?;
        let sizes: Vec<usize> = xs.iter().map(|x| x.numel() / out[0].max(1)).collect();
        let slices: Vec<&[f32]> = xs.iter().map(|x| data(x)).collect();
        Ok(make(out, |y| layout::concat(&slices, &sizes, out[0], y)))
    }

    fn slice_channels(&self, x: &T, start: usize, len: usize) -> Result<T> {
        let out = check::slice_channels(x.shape(), start, len)?;
        let plane = out[2] * out[3];
        let c = x.dims()[1];
        Ok(make(out, |y| {
            layout::slice(data(x), c * plane, start * plane, len * plane, y)
        }))
    }

    fn softmax(&self, x: &T) -> Result<T> {
        let [_, c] = check::softmax(x.shape())?;
        Ok(make(x.shape().clone(), |y| {
            activation::softmax(data(x), c, y)
        }))
    }

    fn softmax_backward(&self, y: &T, dy: &T) -> Result<T> {
        let [_, c] = check::softmax(y.shape())?;
        check::same("softmax backward", y.shape(), dy.shape())?;
        Ok(make(y.shape().clone(), |dx| {
            activation::softmax_backward(data(y), data(dy), c, dx)
        }))
    }

    fn gradient_gap(&self, g: &T) -> Result<T> {
        let [n, k, h, w] = g.shape().nchw("gradient_gap")?;
        Ok(make([n, k], |o| cam::gap(data(g), h * w, o)))
    }

    fn weighted_channel_sum(&self, a: &T, w: &T, relu: bool) -> Result<T> {
        let [n, k, h, wd] = check::weighted_channel_sum(a.shape(), w.shape())?;
        Ok(make([n, h, wd], |o| {
            cam::weighted_channel_sum(data(a), data(w), k, h * wd, relu, o)
        }))
    }

    fn elementwise_channel_sum(&self, a: &T, g: &T, relu_grad: bool) -> Result<T> {
        let [n, k, h, w] = check::cam_pair("elementwise_channel_sum", a.shape(), g.shape())?;
        Ok(make([n, h, w], |o| {
            cam::elementwise_channel_sum(data(a), data(g), k, h * w, relu_grad, o)
        }))
    }

    fn gradcampp_weights(&self, a: &T, g: &T) -> Result<T> {
        let [n, k, h, w] = check::cam_pair("gradcampp_weights", a.shape(), g.shape())?;
        Ok(make([n, k], |o| {
            cam::gradcampp_weights(data(a), data(g), h * w, o)
        }))
    }

    fn xgradcam_weights(&self, a: &T, g: &T) -> Result<T> {
        let [n, k, h, w] = check::cam_pair("xgradcam_weights", a.shape(), g.shape())?;
        Ok(make([n, k], |o| {
            cam::xgradcam_weights(data(a), data(g), h * w, o)
        }))
    }

    fn normalize_min_max(&self, x: &T, group: usize, eps: f32) -> Result<T> {
        check::normalize(x.shape(), group)?;
        Ok(make(x.shape().clone(), |y| {
            cam::normalize(data(x), group, eps, y)
        }))
    }

    fn resize_bilinear(&self, x: &T, out: [usize; 2], mode: ResizeMode) -> Result<T> {
        let (_, hw, shape) = check::resize(x.shape(), out)?;
        Ok(make(shape, |y| cam::resize(data(x), hw, out, mode, y)))
    }

    fn heatmap_fusion(&self, x: &T, maps: &T) -> Result<T> {
        let ([n, c, h, w], m) = check::fusion(x.shape(), maps.shape())?;
        Ok(make([n * m, c, h, w], |y| {
            cam::fusion(data(x), data(maps), c, m, h * w, y)
        }))
    }

    fn occlude(&self, x: &T, origins: &[[usize; 2]], size: [usize; 2], baseline: f32) -> Result<T> {
        let [_, c, h, w] = check::occlude(x.shape(), origins, size)?;
        Ok(make([origins.len(), c, h, w], |y| {
            cam::occlude(data(x), [c, h, w], origins, size, baseline, y)
        }))
    }
}
