//! [`WgpuBackend`]: shape checks (shared with every backend), then one dispatch per primitive.

use crate::context::{AdapterChoice, Context, Params};
use crate::pool::{GpuBuffer, Storage};
use crate::splitk::{self, SplitK};
use gradcam_core::{
    check, Activation, Backend, Conv2dParams, Error, GradMode, LrnParams, Pool2dParams, Rectifier,
    ResizeMode, Result, Shape, Tensor,
};
use std::sync::Arc;

/// The WebGPU backend. Cloning shares the device, caches and pool.
#[derive(Clone)]
pub struct WgpuBackend {
    ctx: Arc<Context>,
    /// A one-element buffer bound where a shader's optional input is absent.
    dummy: Arc<GpuBuffer>,
    /// How the tiled convolution GEMMs split their depth.
    split_k: SplitK,
}

type T = Tensor<WgpuBackend>;

fn single(b: GpuBuffer) -> Arc<Storage> {
    Arc::new(Storage {
        parts: vec![b],
        part_len: usize::MAX,
    })
}

fn u(v: usize) -> u32 {
    v as u32
}

impl WgpuBackend {
    /// Opens the adapter named by `WGPU_ADAPTER_NAME` (or the default one); `WGPU_BACKEND`
    /// restricts the APIs tried (`vulkan`, `metal`, `dx12`).
    pub fn new() -> Result<Self> {
        Self::with_adapter(&AdapterChoice::default())
    }

    /// Opens a chosen adapter.
    pub fn with_adapter(choice: &AdapterChoice) -> Result<Self> {
        let ctx = Arc::new(Context::new(choice)?);
        let dummy = Arc::new(ctx.upload(&[0.0])?);
        Ok(WgpuBackend {
            ctx,
            dummy,
            split_k: SplitK::default(),
        })
    }

    /// This backend with the tiled convolution GEMMs' depth split as `split_k` says (the
    /// default, [`SplitK::Auto`], splits where a convolution's output tiles are few).
    pub fn with_split_k(mut self, split_k: SplitK) -> Self {
        self.split_k = split_k;
        self
    }

    /// The adapter's name and API.
    pub fn adapter(&self) -> String {
        format!("{} ({:?})", self.ctx.info.name, self.ctx.info.backend)
    }

    /// Whether the adapter runs on the CPU (llvmpipe and other software rasterisers).
    pub fn is_software(&self) -> bool {
        self.ctx.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Device buffers created so far (storage and readback). Once the pools are warm, repeating
    /// a computation creates none.
    pub fn allocations(&self) -> usize {
        self.ctx
            .allocations
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes of device memory held idle in the pool for reuse.
    pub fn pooled_bytes(&self) -> u64 {
        self.ctx.pool.idle_bytes()
    }

    fn out(&self, shape: impl Into<Shape>) -> Result<(Shape, GpuBuffer)> {
        let shape = shape.into();
        let b = self.ctx.alloc(shape.numel())?;
        Ok((shape, b))
    }

    /// Runs a 1-D kernel over `n` invocations producing `shape`.
    /// An activation kernel of `rectifiers` over `inputs` (the activation's input first), its
    /// kind and parameters encoded as the kernel reads them.
    fn activation_op(&self, entry: &'static str, a: Activation, inputs: &[&T]) -> Result<T> {
        let x = inputs[0];
        let (kind, al, be) = a.encode();
        let prm = Params {
            a: [u(x.numel()), kind, 0, 0],
            f: [al, be, 0.0, 0.0],
            ..Default::default()
        };
        self.map(
            "rectifiers",
            entry,
            prm,
            inputs,
            x.shape().clone(),
            x.numel(),
        )
    }

    fn map(
        &self,
        file: &'static str,
        entry: &'static str,
        p: Params,
        inputs: &[&T],
        shape: impl Into<Shape>,
        n: usize,
    ) -> Result<T> {
        let (shape, out) = self.out(shape)?;
        let ins = inputs
            .iter()
            .map(|t| t.buffer().single(entry))
            .collect::<Result<Vec<&GpuBuffer>>>()?;
        if n > 0 {
            self.ctx
                .dispatch(file, entry, p, &ins, &out, self.ctx.grid(n))?;
        }
        Ok(Tensor::from_parts(shape, single(out)))
    }

    fn conv_params(
        x: [usize; 4],
        w: [usize; 4],
        out: [usize; 4],
        p: &Conv2dParams,
        bias: bool,
    ) -> Params {
        Params {
            a: [u(x[0]), u(x[1]), u(x[2]), u(x[3])],
            b: [u(w[0]), u(w[2]), u(w[3]), u(out[2])],
            c: [u(out[3]), u(p.stride[0]), u(p.stride[1]), u(p.padding[0])],
            d: [
                u(p.padding[1]),
                u(p.dilation[0]),
                u(p.dilation[1]),
                u(p.groups),
            ],
            f: [
                if bias { 1.0 } else { 0.0 },
                // 16-byte weight loads when every weight row starts aligned.
                if (w[1] * w[2] * w[3]).is_multiple_of(4) {
                    1.0
                } else {
                    0.0
                },
                0.0,
                0.0,
            ],
        }
    }

    fn lrn_params(count: usize, c: usize, plane: usize, p: &LrnParams) -> Params {
        let (below, above) = p.reach();
        Params {
            a: [u(count), u(c), u(plane), u(below)],
            b: [u(above), 0, 0, 0],
            f: [p.alpha / p.size as f32, p.beta, p.bias, 0.0],
            ..Default::default()
        }
    }

    fn pool_params(x: [usize; 4], y: [usize; 4], p: &Pool2dParams) -> Params {
        Params {
            a: [u(x[0] * x[1]), u(x[2]), u(x[3]), u(y[2])],
            b: [u(y[3]), u(p.kernel[0]), u(p.kernel[1]), u(p.stride[0])],
            c: [
                u(p.stride[1]),
                u(p.padding[0]),
                u(p.padding[1]),
                u(p.dilation[0]),
            ],
            d: [u(p.dilation[1]), u(p.count_include_pad as usize), 0, 0],
            f: [0.0; 4],
        }
    }

    /// Max pooling's backward (pooling.wgsl's `max_backward`), or with `rule` through the
    /// rectifier whose output `x` is, in the same invocation (`max_backward_rectified`).
    fn max_backward(
        &self,
        x: &T,
        dy: &T,
        p: &Pool2dParams,
        rule: Option<(Rectifier, GradMode)>,
    ) -> Result<T> {
        check::pool2d_backward(x.shape(), dy.shape(), p, "max_pool2d backward")?;
        let mut prm = Self::pool_params(
            x.shape().nchw("max_pool2d")?,
            dy.shape().nchw("max_pool2d")?,
            p,
        );
        let entry = match rule {
            None => "max_backward",
            Some((r, mode)) => {
                prm.d[2] = mode_code(mode);
                prm.f = [r.lo, r.hi.min(f32::MAX), 0.0, 0.0];
                "max_backward_rectified"
            }
        };
        self.map(
            "pooling",
            entry,
            prm,
            &[x, dy],
            x.shape().clone(),
            x.numel(),
        )
    }

    /// `out[:, coff..coff+n] (+)= A·B (+ bias[coff..])` for strided `A` (from `a_off`) and `B`,
    /// `out` row-major with `ldc` columns (see linear.wgsl).
    #[allow(clippy::too_many_arguments)]
    fn gemm_into(
        &self,
        a: &GpuBuffer,
        a_off: usize,
        a_strides: [usize; 2],
        b: &GpuBuffer,
        b_strides: [usize; 2],
        bias: Option<&GpuBuffer>,
        [m, n, k]: [usize; 3],
        out: &GpuBuffer,
        [ldc, coff]: [usize; 2],
        accumulate: bool,
    ) -> Result<()> {
        if m == 0 || n == 0 {
            return Ok(());
        }
        // 16-byte loads of A when its rows are contiguous and aligned.
        let vec4 = a_strides[1] == 1
            && a_strides[0].is_multiple_of(4)
            && a_off.is_multiple_of(4)
            && k.is_multiple_of(4);
        let p = Params {
            a: [u(m), u(n), u(k), vec4 as u32],
            b: [
                u(a_strides[0]),
                u(a_strides[1]),
                u(b_strides[0]),
                u(b_strides[1]),
            ],
            c: [u(ldc), u(coff), accumulate as u32, 0],
            d: [u(a_off), 0, 0, 0],
            f: [if bias.is_some() { 1.0 } else { 0.0 }, 0.0, 0.0, 0.0],
        };
        let bias = bias.unwrap_or(self.dummy.as_ref());
        let groups = [u(n.div_ceil(64)), u(m.div_ceil(64)), 1];
        self.ctx
            .dispatch("linear", "gemm", p, &[a, b, bias], out, groups)
    }

    /// `C [m×n] = A·B` for unsplit operands.
    fn gemm(
        &self,
        a: &T,
        a_strides: [usize; 2],
        b: &T,
        b_strides: [usize; 2],
        mnk: [usize; 3],
    ) -> Result<T> {
        let (shape, out) = self.out([mnk[0], mnk[1]])?;
        let (a, b) = (a.buffer().single("linear")?, b.buffer().single("linear")?);
        self.gemm_into(
            a,
            0,
            a_strides,
            b,
            b_strides,
            None,
            mnk,
            &out,
            [mnk[1], 0],
            false,
        )?;
        Ok(Tensor::from_parts(shape, single(out)))
    }
}

impl Backend for WgpuBackend {
    type Buffer = Arc<Storage>;

    fn name(&self) -> String {
        format!("wgpu:{}", self.ctx.info.name)
    }

    fn upload(&self, data: &[f32], shape: Shape) -> Result<T> {
        if data.len() != shape.numel() {
            return Err(Error::shape(
                "upload",
                format!("{} values for {shape}", data.len()),
            ));
        }
        let row = shape.dims().last().copied().unwrap_or(1);
        Ok(Tensor::from_parts(
            shape,
            Arc::new(self.ctx.upload_rows(data, row)?),
        ))
    }

    fn download(&self, x: &T) -> Result<Vec<f32>> {
        self.ctx.download_storage(x.buffer(), x.numel())
    }

    fn synchronize(&self) -> Result<()> {
        self.ctx.submit();
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Backend {
                backend: "wgpu".into(),
                msg: format!("waiting for the device: {e}"),
            })?;
        self.ctx.check()
    }

    fn conv2d(&self, x: &T, w: &T, b: Option<&T>, p: &Conv2dParams) -> Result<T> {
        let out = check::conv2d(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
        let (xs, ws) = (x.shape().nchw("conv2d")?, w.shape().nchw("conv2d")?);
        let (shape, buf) = self.out(out)?;
        let kg = ws[0] / p.groups;
        let bias = b.map(|t| t.buffer().single("conv2d")).transpose()?;
        let prm = Self::conv_params(xs, ws, out, p, b.is_some());
        let ins = [
            x.buffer().single("conv2d")?,
            w.buffer().single("conv2d")?,
            bias.unwrap_or(self.dummy.as_ref()),
        ];
        if shape.numel() == 0 {
        } else if kg < 16 {
            // Few filters per group (depthwise): a GEMM tile would idle most of its rows.
            self.ctx.dispatch(
                "conv",
                "conv_forward_direct",
                prm,
                &ins,
                &buf,
                self.ctx.grid(shape.numel()),
            )?;
        } else {
            let plane = out[2] * out[3];
            let groups = [
                u(plane.div_ceil(64)),
                u(kg.div_ceil(64)),
                u(xs[0] * p.groups),
            ];
            let tiles = groups.iter().map(|&g| g as usize).product();
            let splits = self
                .split_k
                .splits(self.is_software(), tiles, ws[1] * ws[2] * ws[3]);
            splitk::dispatch(
                &self.ctx,
                "conv_forward",
                prm,
                &ins,
                &buf,
                groups,
                splits,
                shape.numel(),
                plane,
                ws[0],
                bias,
            )?;
        }
        Ok(Tensor::from_parts(shape, single(buf)))
    }

    fn conv2d_backward_data(&self, dy: &T, w: &T, p: &Conv2dParams, x_shape: &Shape) -> Result<T> {
        check::conv2d_backward(x_shape, w.shape(), dy.shape(), p)?;
        let (xs, ws, ys) = (
            x_shape.nchw("conv2d")?,
            w.shape().nchw("conv2d")?,
            dy.shape().nchw("conv2d")?,
        );
        let prm = Self::conv_params(xs, ws, ys, p, false);
        let cg = xs[1] / p.groups;
        if cg < 16 {
            // Few input channels per group (depthwise): a gather beats an idle GEMM tile.
            return self.map(
                "conv",
                "conv_backward_data",
                prm,
                &[dy, w],
                xs,
                x_shape.numel(),
            );
        }
        let (shape, buf) = self.out(xs)?;
        if shape.numel() > 0 {
            let plane = xs[2] * xs[3];
            let groups = [
                u(plane.div_ceil(64)),
                u(cg.div_ceil(64)),
                u(xs[0] * p.groups),
            ];
            let tiles = groups.iter().map(|&g| g as usize).product();
            let depth = ws[0] / p.groups * ws[2] * ws[3];
            let splits = self.split_k.splits(self.is_software(), tiles, depth);
            splitk::dispatch(
                &self.ctx,
                "conv_backward_data_gemm",
                prm,
                &[dy.buffer().single("conv2d")?, w.buffer().single("conv2d")?],
                &buf,
                groups,
                splits,
                shape.numel(),
                plane,
                xs[1],
                None,
            )?;
        }
        Ok(Tensor::from_parts(shape, single(buf)))
    }

    fn conv2d_backward_weight(
        &self,
        x: &T,
        dy: &T,
        p: &Conv2dParams,
        w_shape: &Shape,
    ) -> Result<T> {
        check::conv2d_backward(x.shape(), w_shape, dy.shape(), p)?;
        let (xs, ws, ys) = (
            x.shape().nchw("conv2d")?,
            w_shape.nchw("conv2d")?,
            dy.shape().nchw("conv2d")?,
        );
        let prm = Self::conv_params(xs, ws, ys, p, false);
        self.map(
            "conv",
            "conv_backward_weight",
            prm,
            &[x, dy],
            ws,
            w_shape.numel(),
        )
    }

    fn conv2d_backward_bias(&self, dy: &T) -> Result<T> {
        let [n, k, h, w] = dy.shape().nchw("conv2d bias gradient")?;
        let prm = Params {
            a: [u(n), u(k), u(h * w), 0],
            ..Default::default()
        };
        self.map("conv", "conv_backward_bias", prm, &[dy], [k], k)
    }

    fn linear(&self, x: &T, w: &T, b: Option<&T>) -> Result<T> {
        let [n, o] = check::linear(x.shape(), w.shape(), b.map(|b| b.shape()))?;
        let i = w.dims()[1];
        let (shape, out) = self.out([n, o])?;
        let xb = x.buffer().single("linear")?;
        let bias = b.map(|b| b.buffer().single("linear")).transpose()?;
        // A weight larger than one binding is split by rows: each part fills its output columns.
        let rows_per_part = (w.buffer().part_len / i.max(1)).max(1);
        for (j, part) in w.buffer().parts.iter().enumerate() {
            let r0 = j * rows_per_part;
            let rows = rows_per_part.min(o - r0);
            self.gemm_into(
                xb,
                0,
                [i, 1],
                part,
                [1, i],
                bias,
                [n, rows, i],
                &out,
                [o, r0],
                false,
            )?;
        }
        Ok(Tensor::from_parts(shape, single(out)))
    }

    fn linear_backward_data(&self, dy: &T, w: &T) -> Result<T> {
        let [n, i, o] = check::linear_backward_data(dy.shape(), w.shape())?;
        let (shape, out) = self.out([n, i])?;
        let dyb = dy.buffer().single("linear backward")?;
        // dx = Σ over weight parts of dy[:, r0..r1] · w[r0..r1].
        let rows_per_part = (w.buffer().part_len / i.max(1)).max(1);
        for (j, part) in w.buffer().parts.iter().enumerate() {
            let r0 = j * rows_per_part;
            let rows = rows_per_part.min(o - r0);
            self.gemm_into(
                dyb,
                r0,
                [o, 1],
                part,
                [i, 1],
                None,
                [n, i, rows],
                &out,
                [i, 0],
                j > 0,
            )?;
        }
        Ok(Tensor::from_parts(shape, single(out)))
    }

    fn linear_backward_weight(&self, x: &T, dy: &T) -> Result<T> {
        let [n, i, o] = check::linear_backward_weight(x.shape(), dy.shape())?;
        self.gemm(dy, [1, o], x, [i, 1], [o, i, n])
    }

    fn linear_backward_bias(&self, dy: &T) -> Result<T> {
        let [n, o] = dy.shape().matrix("linear backward")?;
        let prm = Params {
            a: [u(n), u(o), 0, 0],
            ..Default::default()
        };
        self.map("linear", "column_sum", prm, &[dy], [o], o)
    }

    fn rectifier(&self, x: &T, r: Rectifier) -> Result<T> {
        let prm = Params {
            a: [u(x.numel()), 0, 0, 0],
            f: [r.lo, r.hi.min(f32::MAX), 0.0, 0.0],
            ..Default::default()
        };
        self.map(
            "rectifiers",
            "rectifier_forward",
            prm,
            &[x],
            x.shape().clone(),
            x.numel(),
        )
    }

    fn rectifier_backward(&self, y: &T, dy: &T, r: Rectifier, mode: GradMode) -> Result<T> {
        check::same("rectifier backward", y.shape(), dy.shape())?;
        let prm = Params {
            a: [u(y.numel()), mode_code(mode), 0, 0],
            f: [r.lo, r.hi.min(f32::MAX), 0.0, 0.0],
            ..Default::default()
        };
        self.map(
            "rectifiers",
            "rectifier_backward",
            prm,
            &[y, dy],
            y.shape().clone(),
            y.numel(),
        )
    }

    fn activation(&self, x: &T, a: Activation) -> Result<T> {
        self.activation_op("activation_forward", a, &[x])
    }

    fn activation_backward(&self, x: &T, dy: &T, a: Activation) -> Result<T> {
        check::same("activation backward", x.shape(), dy.shape())?;
        self.activation_op("activation_backward", a, &[x, dy])
    }

    fn lrn(&self, x: &T, p: &LrnParams) -> Result<T> {
        let [_, c, h, w] = check::lrn(x.shape(), p)?;
        let prm = Self::lrn_params(x.numel(), c, h * w, p);
        self.map(
            "lrn",
            "lrn_forward",
            prm,
            &[x],
            x.shape().clone(),
            x.numel(),
        )
    }

    fn lrn_backward(&self, x: &T, dy: &T, p: &LrnParams) -> Result<T> {
        let [_, c, h, w] = check::lrn(x.shape(), p)?;
        check::same("lrn backward", x.shape(), dy.shape())?;
        let prm = Self::lrn_params(x.numel(), c, h * w, p);
        self.map(
            "lrn",
            "lrn_backward",
            prm,
            &[x, dy],
            x.shape().clone(),
            x.numel(),
        )
    }

    fn max_pool2d(&self, x: &T, p: &Pool2dParams) -> Result<T> {
        let out = check::pool2d(x.shape(), p, "max_pool2d")?;
        let prm = Self::pool_params(x.shape().nchw("max_pool2d")?, out, p);
        self.map(
            "pooling",
            "max_forward",
            prm,
            &[x],
            out,
            out.iter().product(),
        )
    }

    fn max_pool2d_backward(&self, x: &T, dy: &T, p: &Pool2dParams) -> Result<T> {
        self.max_backward(x, dy, p, None)
    }

    fn max_pool2d_backward_rectified(
        &self,
        x: &T,
        dy: &T,
        p: &Pool2dParams,
        r: Rectifier,
        mode: GradMode,
    ) -> Result<T> {
        self.max_backward(x, dy, p, Some((r, mode)))
    }

    fn avg_pool2d(&self, x: &T, p: &Pool2dParams) -> Result<T> {
        let out = check::pool2d(x.shape(), p, "avg_pool2d")?;
        let prm = Self::pool_params(x.shape().nchw("avg_pool2d")?, out, p);
        self.map(
            "pooling",
            "avg_forward",
            prm,
            &[x],
            out,
            out.iter().product(),
        )
    }

    fn avg_pool2d_backward(&self, dy: &T, p: &Pool2dParams, x_shape: &Shape) -> Result<T> {
        check::pool2d_backward(x_shape, dy.shape(), p, "avg_pool2d backward")?;
        let prm = Self::pool_params(
            x_shape.nchw("avg_pool2d")?,
            dy.shape().nchw("avg_pool2d")?,
            p,
        );
        self.map(
            "pooling",
            "avg_backward",
            prm,
            &[dy],
            x_shape.clone(),
            x_shape.numel(),
        )
    }

    fn adaptive_avg_pool2d(&self, x: &T, out: [usize; 2]) -> Result<T> {
        let o = check::adaptive_pool(x.shape(), out)?;
        let prm = Self::pool_params(
            x.shape().nchw("adaptive_avg_pool2d")?,
            o,
            &Pool2dParams::new(1, 1, 0),
        );
        self.map(
            "pooling",
            "adaptive_forward",
            prm,
            &[x],
            o,
            o.iter().product(),
        )
    }

    fn adaptive_avg_pool2d_backward(&self, dy: &T, x_shape: &Shape) -> Result<T> {
        let d = dy.shape().nchw("adaptive_avg_pool2d backward")?;
        let o = check::adaptive_pool(x_shape, [d[2], d[3]])?;
        check::same("adaptive_avg_pool2d backward", dy.shape(), &Shape::from(o))?;
        let prm = Self::pool_params(
            x_shape.nchw("adaptive_avg_pool2d")?,
            o,
            &Pool2dParams::new(1, 1, 0),
        );
        self.map(
            "pooling",
            "adaptive_backward",
            prm,
            &[dy],
            x_shape.clone(),
            x_shape.numel(),
        )
    }

    fn channel_affine(&self, x: &T, scale: &T, shift: &T) -> Result<T> {
        let [_, c, h, w] = check::channel_affine(x.shape(), scale.shape(), Some(shift.shape()))?;
        let prm = Params {
            a: [u(x.numel()), u(c), u(h * w), 0],
            ..Default::default()
        };
        self.map(
            "layout",
            "channel_affine",
            prm,
            &[x, scale, shift],
            x.shape().clone(),
            x.numel(),
        )
    }

    fn channel_affine_backward(&self, dy: &T, scale: &T) -> Result<T> {
        let [_, c, h, w] = check::channel_affine(dy.shape(), scale.shape(), None)?;
        let prm = Params {
            a: [u(dy.numel()), u(c), u(h * w), 0],
            ..Default::default()
        };
        self.map(
            "layout",
            "channel_scale",
            prm,
            &[dy, scale],
            dy.shape().clone(),
            dy.numel(),
        )
    }

    fn add(&self, a: &T, b: &T) -> Result<T> {
        check::same("add", a.shape(), b.shape())?;
        let prm = Params {
            a: [u(a.numel()), 0, 0, 0],
            ..Default::default()
        };
        self.map("layout", "add", prm, &[a, b], a.shape().clone(), a.numel())
    }

    fn mul(&self, a: &T, b: &T) -> Result<T> {
        let plane = check::mul(a.shape(), b.shape())?;
        let prm = Params {
            a: [u(a.numel()), u(plane.max(1)), 0, 0],
            ..Default::default()
        };
        self.map("layout", "mul", prm, &[a, b], a.shape().clone(), a.numel())
    }

    fn mul_plane_sum(&self, dy: &T, a: &T) -> Result<T> {
        let [n, c, h, w] = check::cam_pair("mul_plane_sum", dy.shape(), a.shape())?;
        let prm = Params {
            a: [u(n * c), u(h * w), 0, 0],
            ..Default::default()
        };
        self.map(
            "reductions",
            "mul_plane_sum",
            prm,
            &[dy, a],
            [n, c, 1, 1],
            n * c,
        )
    }

    fn concat_channels(&self, xs: &[&T]) -> Result<T> {
        let shapes: Vec<&Shape> = xs.iter().map(|x| x.shape()).collect();
        let out = check::concat_channels(&shapes)?;
        let (shape, buf) = self.out(out)?;
        let n = out[0].max(1);
        let total = shape.numel() / n;
        let mut off = 0;
        for x in xs {
            let block = x.numel() / n;
            let prm = Params {
                a: [u(x.numel()), u(block), u(block), 0],
                b: [u(total), u(off), 0, 0],
                ..Default::default()
            };
            if x.numel() > 0 {
                self.ctx.dispatch(
                    "layout",
                    "copy_blocks",
                    prm,
                    &[x.buffer().single("concat")?],
                    &buf,
                    self.ctx.grid(x.numel()),
                )?;
            }
            off += block;
        }
        Ok(Tensor::from_parts(shape, single(buf)))
    }

    fn slice_channels(&self, x: &T, start: usize, len: usize) -> Result<T> {
        let out = check::slice_channels(x.shape(), start, len)?;
        let plane = out[2] * out[3];
        let c = x.dims()[1];
        let count: usize = out.iter().product();
        let prm = Params {
            a: [u(count), u(len * plane), u(c * plane), u(start * plane)],
            b: [u(len * plane), 0, 0, 0],
            ..Default::default()
        };
        self.map("layout", "copy_blocks", prm, &[x], out, count)
    }

    fn softmax(&self, x: &T) -> Result<T> {
        let [n, c] = check::softmax(x.shape())?;
        let prm = Params {
            a: [u(n), u(c), 0, 0],
            ..Default::default()
        };
        self.map("layout", "softmax_forward", prm, &[x], x.shape().clone(), n)
    }

    fn softmax_backward(&self, y: &T, dy: &T) -> Result<T> {
        let [n, c] = check::softmax(y.shape())?;
        check::same("softmax backward", y.shape(), dy.shape())?;
        let prm = Params {
            a: [u(n), u(c), 0, 0],
            ..Default::default()
        };
        self.map(
            "layout",
            "softmax_backward",
            prm,
            &[y, dy],
            y.shape().clone(),
            n,
        )
    }

    fn gradient_gap(&self, g: &T) -> Result<T> {
        let [n, k, h, w] = g.shape().nchw("gradient_gap")?;
        let prm = Params {
            a: [u(n * k), u(h * w), 0, 0],
            ..Default::default()
        };
        self.map("reductions", "gradient_gap", prm, &[g], [n, k], n * k)
    }

    fn weighted_channel_sum(&self, a: &T, w: &T, relu: bool) -> Result<T> {
        let [n, k, h, wd] = check::weighted_channel_sum(a.shape(), w.shape())?;
        let prm = Params {
            a: [u(n * h * wd), u(k), u(h * wd), relu as u32],
            ..Default::default()
        };
        self.map(
            "reductions",
            "weighted_channel_sum",
            prm,
            &[a, w],
            [n, h, wd],
            n * h * wd,
        )
    }

    fn elementwise_channel_sum(&self, a: &T, g: &T, relu_grad: bool) -> Result<T> {
        let [n, k, h, w] = check::cam_pair("elementwise_channel_sum", a.shape(), g.shape())?;
        let prm = Params {
            a: [u(n * h * w), u(k), u(h * w), relu_grad as u32],
            ..Default::default()
        };
        self.map(
            "reductions",
            "elementwise_channel_sum",
            prm,
            &[a, g],
            [n, h, w],
            n * h * w,
        )
    }

    fn gradcampp_weights(&self, a: &T, g: &T) -> Result<T> {
        let [n, k, h, w] = check::cam_pair("gradcampp_weights", a.shape(), g.shape())?;
        let prm = Params {
            a: [u(n * k), u(h * w), 0, 0],
            ..Default::default()
        };
        self.map(
            "reductions",
            "gradcampp_weights",
            prm,
            &[a, g],
            [n, k],
            n * k,
        )
    }

    fn xgradcam_weights(&self, a: &T, g: &T) -> Result<T> {
        let [n, k, h, w] = check::cam_pair("xgradcam_weights", a.shape(), g.shape())?;
        let prm = Params {
            a: [u(n * k), u(h * w), 0, 0],
            ..Default::default()
        };
        self.map(
            "reductions",
            "xgradcam_weights",
            prm,
            &[a, g],
            [n, k],
            n * k,
        )
    }

    fn normalize_min_max(&self, x: &T, group: usize, eps: f32) -> Result<T> {
        check::normalize(x.shape(), group)?;
        let groups = x.numel() / group;
        let (shape, out) = self.out(x.shape().clone())?;
        let [gx, gy, _] = self.ctx.grid(groups * 256);
        let prm = Params {
            a: [u(groups), u(group), gx, 0],
            f: [eps, 0.0, 0.0, 0.0],
            ..Default::default()
        };
        if groups > 0 {
            self.ctx.dispatch(
                "normalize",
                "normalize_min_max",
                prm,
                &[x.buffer().single("normalize")?],
                &out,
                [gx, gy, 1],
            )?;
        }
        Ok(Tensor::from_parts(shape, single(out)))
    }

    fn resize_bilinear(&self, x: &T, out: [usize; 2], mode: ResizeMode) -> Result<T> {
        let (planes, [h, w], shape) = check::resize(x.shape(), out)?;
        let count = planes * out[0] * out[1];
        let m = match mode {
            ResizeMode::HalfPixel => 0,
            ResizeMode::AlignCorners => 1,
        };
        let prm = Params {
            a: [u(count), u(h), u(w), u(out[0])],
            b: [u(out[1]), m, 0, 0],
            ..Default::default()
        };
        self.map("resize", "resize_bilinear", prm, &[x], shape, count)
    }

    fn heatmap_fusion(&self, x: &T, maps: &T) -> Result<T> {
        let ([n, c, h, w], m) = check::fusion(x.shape(), maps.shape())?;
        let count = n * m * c * h * w;
        let prm = Params {
            a: [u(count), u(c), u(m), u(h * w)],
            ..Default::default()
        };
        self.map(
            "fusion",
            "heatmap_fusion",
            prm,
            &[x, maps],
            [n * m, c, h, w],
            count,
        )
    }

    fn occlude(&self, x: &T, origins: &[[usize; 2]], size: [usize; 2], baseline: f32) -> Result<T> {
        let [_, c, h, w] = check::occlude(x.shape(), origins, size)?;
        let flat: Vec<f32> = origins
            .iter()
            .flat_map(|o| [o[0] as f32, o[1] as f32])
            .collect();
        let o = self.upload(&flat, Shape::new([origins.len() * 2]))?;
        let count = origins.len() * c * h * w;
        let prm = Params {
            a: [u(count), u(c), u(h), u(w)],
            b: [u(size[0]), u(size[1]), 0, 0],
            f: [baseline, 0.0, 0.0, 0.0],
            ..Default::default()
        };
        self.map(
            "fusion",
            "occlude",
            prm,
            &[x, &o],
            [origins.len(), c, h, w],
            count,
        )
    }
}

/// A rectifier's backward mode as the shaders read it (rectifiers.wgsl, pooling.wgsl): 0 plain,
/// 1 guided, 2 deconvnet.
fn mode_code(mode: GradMode) -> u32 {
    match mode {
        GradMode::Plain => 0,
        GradMode::Guided => 1,
        GradMode::Deconvnet => 2,
    }
}
