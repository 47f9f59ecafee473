//! [`CudaBackend`]: the shared shape checks, then one launch per primitive (two for a split-K
//! GEMM), all on one stream with no host round trip between ops.

use crate::context::{err, Device, Params};
use crate::pool::DeviceBuffer;
use gradcam_core::{
    check, Activation, Backend, Conv2dParams, Derived, Error, GradMode, LrnParams, Pool2dParams,
    Rectifier, ResizeMode, Result, Shape, Tensor,
};
use std::sync::Arc;

mod cam;
mod phases;

/// The CUDA backend. Cloning shares the device, its compiled kernels and its memory pool.
#[derive(Clone)]
pub struct CudaBackend {
    dev: Arc<Device>,
    /// A one-element buffer bound where a kernel's optional input is absent.
    dummy: Arc<DeviceBuffer>,
    /// Convolutions on the tensor cores in TF32 (see [`CudaBackend::with_tf32`]).
    tf32: bool,
    /// Weights flipped and transposed for backward-data, kept while the weight lives.
    derived: Arc<Derived<DeviceBuffer, DeviceBuffer>>,
}

type T = Tensor<CudaBackend>;

fn u(v: usize) -> u32 {
    v as u32
}

/// A tiled GEMM's kernel entries: 128×128 and 64×64 in f32, then in TF32 (empty where there
/// are none), plain and with the rectifier's clamp in the epilogue.
struct Tiles {
    file: &'static str,
    plain: [&'static str; 4],
    clamped: [&'static str; 4],
}

const CONV_FORWARD: Tiles = Tiles {
    file: "conv",
    plain: [
        "conv_forward_128",
        "conv_forward_64",
        "conv_forward_tf32",
        "conv_forward_tf32_64",
    ],
    clamped: [
        "conv_forward_128_clamp",
        "conv_forward_64_clamp",
        "conv_forward_tf32_clamp",
        "conv_forward_tf32_64_clamp",
    ],
};
const CONV_BACKWARD_DATA: Tiles = Tiles {
    file: "conv",
    plain: [
        "conv_backward_data_128",
        "conv_backward_data_64",
        "conv_backward_data_tf32",
        "conv_backward_data_tf32_64",
    ],
    clamped: ["", "", "", ""],
};
const GEMM: Tiles = Tiles {
    file: "linear",
    plain: ["gemm_128", "gemm_64", "", ""],
    clamped: ["", "", "", ""],
};

/// How a GEMM of `m × nc`, `depth` deep, in `groups` independent groups is tiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// 128×128 tiles (else 64×64).
    pub big: bool,
    /// Depth slices computed by separate blocks and summed after (split-K).
    pub splits: usize,
    /// Depth per slice.
    pub per: usize,
}

/// Large tiles when they alone fill the device (and the rows fill them); else small tiles, and
/// split-K when even those leave most multiprocessors idle (batch 1, deep layers, small maps).
/// In f32 the large tile needs four blocks per multiprocessor (H100, 128ch 28×28 at batch 32:
/// 196 large tiles ran 343 µs, 784 small ones 320 µs); on the tensor cores one wave of them
/// suffices (the same layer: 182 µs against 221 µs). In f32, where small tiles would need
/// split-K but the GEMM is wide and deep enough to fill large ones (≥ 512 rows, ≥ 1024
/// columns, ≥ 1024 deep), large tiles in about one and a half waves of depth slices (H200,
/// batch 32, ResNet-50 layer 4: the 3×3 convolution in both directions 388 → 309 µs, the 1×1
/// 2048→512 forward and 512→2048 backward-data 193 → 160 µs; 52 tiles in 4 slices, where 2, 6
/// and 8 slices ran slower). `forced` overrides the tile size where it applies, the number of
/// depth slices for either size, or both (for measuring).
pub(crate) fn plan(
    m: usize,
    nc: usize,
    depth: usize,
    groups: usize,
    sms: usize,
    tf32: bool,
    forced: Forced,
) -> Plan {
    let blocks = |t: usize| m.div_ceil(t) * nc.div_ceil(t) * groups;
    let waves = if tf32 { 1 } else { 4 };
    let big = match forced.tile {
        Some(128) => m > 64,
        Some(_) => false,
        None => m > 64 && blocks(128) >= waves * sms,
    };
    let wide_and_deep = m >= 512 && nc >= 1024 && depth >= 1024;
    let unforced = forced.tile.is_none() && forced.splits.is_none();
    if !tf32 && !big && unforced && wide_and_deep && blocks(64) < 2 * sms {
        let splits = (3 * sms)
            .div_ceil(2 * blocks(128))
            .clamp(1, depth.div_ceil(16));
        let per = depth.div_ceil(splits).div_ceil(16) * 16;
        return Plan {
            big: true,
            splits: depth.div_ceil(per),
            per,
        };
    }
    if big && forced.splits.is_none() {
        return Plan {
            big,
            splits: 1,
            per: depth,
        };
    }
    let mut splits = 1;
    if let Some(s) = forced.splits {
        splits = s.min(depth.div_ceil(16));
    } else if !big {
        let b64 = blocks(64).max(1);
        if b64 < 2 * sms {
            splits = (2 * sms).div_ceil(b64).min(depth / 128).clamp(1, 64);
        }
    }
    let splits = splits.min(65535 / groups.max(1)).max(1);
    let per = (depth.div_ceil(splits).div_ceil(16) * 16).max(1);
    Plan {
        big,
        splits: depth.div_ceil(per).max(1),
        per,
    }
}

/// What [`plan`] is told to choose instead of choosing itself.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Forced {
    /// The tile size (64 or 128).
    pub tile: Option<usize>,
    /// The number of depth slices (1 to 64).
    pub splits: Option<usize>,
}

impl Forced {
    /// `GRADCAM_CUDA_TILE=64|128` and `GRADCAM_CUDA_SPLITS=1..64`, read once; other values are
    /// ignored.
    pub(crate) fn from_env() -> Self {
        static FORCED: std::sync::OnceLock<Forced> = std::sync::OnceLock::new();
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
        *FORCED.get_or_init(|| Forced {
            tile: var("GRADCAM_CUDA_TILE").filter(|t| [64, 128].contains(t)),
            splits: var("GRADCAM_CUDA_SPLITS").filter(|s| (1..=64).contains(s)),
        })
    }
}

/// For a stride-1 convolution, the parameters of the forward convolution that computes its
/// backward-data from dy with the flipped, transposed weight (padding `d·(k−1) − p`), or `None`
/// where that padding would be negative or the stride is not 1.
pub(crate) fn transposed_conv(p: &Conv2dParams, w: [usize; 4]) -> Option<Conv2dParams> {
    if p.stride != [1, 1] {
        return None;
    }
    let pad = |i: usize| (p.dilation[i] * (w[2 + i] - 1)).checked_sub(p.padding[i]);
    Some(Conv2dParams {
        stride: [1, 1],
        padding: [pad(0)?, pad(1)?],
        dilation: p.dilation,
        groups: p.groups,
    })
}

impl CudaBackend {
    /// Opens CUDA device 0.
    pub fn new() -> Result<Self> {
        Self::with_device(0)
    }

    /// Opens CUDA device `ordinal`. Errors (never panics) when the driver, NVRTC or the device
    /// is missing.
    pub fn with_device(ordinal: usize) -> Result<Self> {
        let dev = Device::get(ordinal)?;
        let dummy = Arc::new(dev.upload(&[0.0])?);
        Ok(CudaBackend {
            dev,
            dummy,
            tf32: false,
            derived: Arc::default(),
        })
    }

    /// Runs the convolutions' tiled GEMMs (forward and backward-data; not the direct depthwise
    /// kernels or the linear layers) on the tensor cores in TF32: operands rounded to 10-bit
    /// mantissas, f32 accumulation. Faster (resnet50 at batch 32: 0.47 against 0.64 ms per
    /// image on an H100), and about 1e-3 relative off the f32 result per layer (tested below
    /// 3e-3; 5e-4 on resnet50's logits, docs/PERFORMANCE.md); f32 stays the default and the
    /// reference. Needs compute capability 8.0 or newer.
    pub fn with_tf32(mut self, on: bool) -> Result<Self> {
        if on && self.dev.arch < 80 {
            return Err(err(format!(
                "TF32 needs compute capability 8.0 or newer; {} is sm_{}",
                self.dev.name, self.dev.arch
            )));
        }
        self.tf32 = on;
        Ok(self)
    }

    /// The device's name and compute capability.
    pub fn device(&self) -> String {
        format!("{} (sm_{})", self.dev.name, self.dev.arch)
    }

    /// Device buffers allocated from the driver so far: flat once the pool is warm.
    pub fn allocations(&self) -> usize {
        self.dev
            .allocations
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes of device memory held idle in the pool for reuse.
    pub fn pooled_bytes(&self) -> usize {
        self.dev.pool.idle_bytes()
    }

    /// A tensor's device buffer, checked to hold its shape (a tensor assembled with
    /// `Tensor::from_parts` could claim more).
    fn buffer(t: &T) -> Result<&DeviceBuffer> {
        let b = t.buffer().as_ref();
        if b.raw().len() < t.numel() {
            return Err(err(format!(
                "a tensor of shape {} on a device buffer of {} values",
                t.shape(),
                b.raw().len()
            )));
        }
        Ok(b)
    }

    /// A device buffer of `len` values. When the device is full, the kept copies of weights
    /// that no longer live are dropped (their memory back to the pool) and it tries once more.
    fn alloc(&self, len: usize) -> Result<DeviceBuffer> {
        self.dev.alloc(len).or_else(|e| {
            if self.derived.purge() > 0 {
                self.dev.alloc(len)
            } else {
                Err(e)
            }
        })
    }

    /// `w` rearranged by conv.cu's `flip_transpose` with `prm` (`len` values), computed once
    /// while `w` lives.
    fn flipped(&self, w: &T, prm: Params, len: usize) -> Result<Arc<DeviceBuffer>> {
        let tag: Vec<usize> = [prm.a, prm.b, prm.c, prm.d]
            .iter()
            .flatten()
            .map(|&v| v as usize)
            .collect();
        let src = Self::buffer(w)?;
        self.derived.try_get(w.buffer(), &tag, |_| {
            let wt = self.alloc(len)?;
            self.launch(
                "conv",
                "flip_transpose",
                prm,
                &[src],
                &wt,
                Device::grid(len),
            )?;
            Ok(wt)
        })
    }

    fn tensor(shape: impl Into<Shape>, b: DeviceBuffer) -> T {
        Tensor::from_parts(shape.into(), Arc::new(b))
    }

    fn launch(
        &self,
        file: &'static str,
        entry: &'static str,
        p: Params,
        inputs: &[&DeviceBuffer],
        out: &DeviceBuffer,
        grid: [u32; 3],
    ) -> Result<()> {
        self.dev
            .launch(file, entry, p, inputs, &self.dummy, out, None, grid, 256)
    }

    /// Runs a 1-D kernel over `n` threads producing `shape`.
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
        let shape = shape.into();
        let out = self.alloc(shape.numel())?;
        let ins = inputs
            .iter()
            .map(|t| Self::buffer(t))
            .collect::<Result<Vec<&DeviceBuffer>>>()?;
        if n > 0 {
            self.launch(file, entry, p, &ins, &out, Device::grid(n))?;
        }
        Ok(Self::tensor(shape, out))
    }

    /// A tiled GEMM (the entries of [`Tiles`]), split-K partials summed after.
    /// `p.f[1..4]` = (1, lo, hi) clamps the output (a fused rectifier) after the bias: in the
    /// tile's epilogue without split-K, in the sum with it.
    /// `bias_index` = (div, modulus) of an output index giving its bias element.
    #[allow(clippy::too_many_arguments)]
    fn tiled(
        &self,
        tiles: &Tiles,
        mut p: Params,
        [m, nc, depth, groups]: [usize; 4],
        vec_a: bool,
        inputs: &[&DeviceBuffer],
        bias: Option<(&DeviceBuffer, [usize; 2])>,
        shape: Shape,
    ) -> Result<T> {
        let file = tiles.file;
        let count = shape.numel();
        let out = self.alloc(count)?;
        if count == 0 {
            return Ok(Self::tensor(shape, out));
        }
        let tf32 = self.tf32 && !tiles.plain[2].is_empty();
        let pl = plan(
            m,
            nc,
            depth,
            groups,
            self.dev.sms as usize,
            tf32,
            Forced::from_env(),
        );
        p.e = [
            u(pl.splits),
            u(pl.per),
            (vec_a && pl.per.is_multiple_of(4)) as u32,
            u(count),
        ];
        p.f[0] = bias.is_some() as u32 as f32;
        let t = if pl.big { 128 } else { 64 };
        let grid = [u(nc.div_ceil(t)), u(m.div_ceil(t)), u(groups * pl.splits)];
        let set = if p.f[1] > 0.5 && pl.splits == 1 {
            &tiles.clamped
        } else {
            &tiles.plain
        };
        let entry = set[2 * tf32 as usize + !pl.big as usize];
        if entry.is_empty() {
            return Err(err(format!("{file}: no tile kernel for this launch")));
        }
        let mut ins = inputs.to_vec();
        if let Some((b, _)) = bias {
            while ins.len() < 2 {
                ins.push(&self.dummy);
            }
            ins.push(b);
        }
        if pl.splits == 1 {
            self.launch(file, entry, p, &ins, &out, grid)?;
            return Ok(Self::tensor(shape, out));
        }
        let parts = self.alloc(count * pl.splits)?;
        self.launch(file, entry, p, &ins, &parts, grid)?;
        let [div, modulus] = bias.map(|(_, i)| i).unwrap_or([1, 1]);
        let r = Params {
            a: [u(count), u(pl.splits), u(div), u(modulus)],
            f: [bias.is_some() as u32 as f32, p.f[1], p.f[2], p.f[3]],
            ..Default::default()
        };
        let bias_in: Vec<&DeviceBuffer> = match bias {
            Some((b, _)) => vec![&parts, &self.dummy, b],
            None => vec![&parts],
        };
        self.launch(
            file,
            "splitk_reduce",
            r,
            &bias_in,
            &out,
            Device::grid(count),
        )?;
        Ok(Self::tensor(shape, out))
    }

    /// The forward convolution, its output clamped to the rectifier's range when one is given
    /// (in the kernel's epilogue, after the bias and the split-K sum).
    fn conv_forward(
        &self,
        x: &T,
        w: &T,
        b: Option<&T>,
        p: &Conv2dParams,
        clamp: Option<Rectifier>,
    ) -> Result<T> {
        let out = check::conv2d(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
        let (xs, ws) = (x.shape().nchw("conv2d")?, w.shape().nchw("conv2d")?);
        let mut prm = Self::conv_params(xs, ws, out, p);
        if let Some(r) = clamp {
            prm.f = [0.0, 1.0, r.lo, r.hi.min(f32::MAX)];
        }
        let kg = ws[0] / p.groups;
        if kg < 16 {
            // Few filters per group (depthwise): a GEMM tile would idle most of its rows.
            prm.f[0] = b.is_some() as u32 as f32;
            let mut ins = vec![x, w];
            if let Some(b) = b {
                ins.push(b);
            }
            let n = out.iter().product();
            return self.map("conv", "conv_forward_direct", prm, &ins, out, n);
        }
        let depth = ws[1] * ws[2] * ws[3];
        self.tiled(
            &CONV_FORWARD,
            prm,
            [kg, xs[0] * out[2] * out[3], depth, p.groups],
            depth.is_multiple_of(4),
            &[Self::buffer(x)?, Self::buffer(w)?],
            b.map(|b| Self::buffer(b).map(|b| (b, [out[2] * out[3], out[1]])))
                .transpose()?,
            Shape::from(out),
        )
    }

    fn conv_params(x: [usize; 4], w: [usize; 4], out: [usize; 4], p: &Conv2dParams) -> Params {
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
            ..Default::default()
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
            ..Default::default()
        }
    }

    /// `C [m×n] = A·B` with strided operands (linear.cu's GEMM).
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        a: &T,
        a_strides: [usize; 2],
        b: &T,
        b_strides: [usize; 2],
        bias: Option<&T>,
        [m, n, k]: [usize; 3],
    ) -> Result<T> {
        let p = Params {
            a: [u(m), u(n), u(k), 0],
            b: [
                u(a_strides[0]),
                u(a_strides[1]),
                u(b_strides[0]),
                u(b_strides[1]),
            ],
            c: [u(n), 0, 0, 0],
            ..Default::default()
        };
        let vec_a = a_strides[1] == 1 && a_strides[0].is_multiple_of(4) && k.is_multiple_of(4);
        self.tiled(
            &GEMM,
            p,
            [m, n, k, 1],
            vec_a,
            &[Self::buffer(a)?, Self::buffer(b)?],
            bias.map(|t| Self::buffer(t).map(|b| (b, [1, n])))
                .transpose()?,
            Shape::new([m, n]),
        )
    }
}

impl Backend for CudaBackend {
    type Buffer = Arc<DeviceBuffer>;

    fn name(&self) -> String {
        let tf32 = if self.tf32 { " (tf32)" } else { "" };
        format!("cuda:{}{tf32}", self.dev.name)
    }

    fn upload(&self, data: &[f32], shape: Shape) -> Result<T> {
        if data.len() != shape.numel() {
            return Err(Error::shape(
                "upload",
                format!("{} values for {shape}", data.len()),
            ));
        }
        let mut b = self.alloc(data.len())?;
        self.dev.write(&mut b, data)?;
        Ok(Self::tensor(shape, b))
    }

    fn download(&self, x: &T) -> Result<Vec<f32>> {
        self.dev.download(x.buffer(), x.numel())
    }

    fn synchronize(&self) -> Result<()> {
        self.dev
            .stream
            .synchronize()
            .map_err(|e| err(format!("waiting for the device: {e}")))
    }

    fn conv2d(&self, x: &T, w: &T, b: Option<&T>, p: &Conv2dParams) -> Result<T> {
        self.conv_forward(x, w, b, p, None)
    }

    fn conv2d_rectified(
        &self,
        x: &T,
        w: &T,
        b: Option<&T>,
        p: &Conv2dParams,
        r: Rectifier,
    ) -> Result<T> {
        self.conv_forward(x, w, b, p, Some(r))
    }

    fn add_rectified(&self, a: &T, b: &T, r: Rectifier) -> Result<T> {
        check::same("add", a.shape(), b.shape())?;
        let prm = Params {
            a: [u(a.numel()), 0, 0, 0],
            f: [r.lo, r.hi.min(f32::MAX), 0.0, 0.0],
            ..Default::default()
        };
        self.map(
            "layout",
            "add_clamped",
            prm,
            &[a, b],
            a.shape().clone(),
            a.numel(),
        )
    }

    fn conv2d_backward_data(&self, dy: &T, w: &T, p: &Conv2dParams, x_shape: &Shape) -> Result<T> {
        check::conv2d_backward(x_shape, w.shape(), dy.shape(), p)?;
        let (xs, ws, ys) = (
            x_shape.nchw("conv2d")?,
            w.shape().nchw("conv2d")?,
            dy.shape().nchw("conv2d")?,
        );
        let prm = Self::conv_params(xs, ws, ys, p);
        let cg = xs[1] / p.groups;
        if cg < 16 {
            // Few input channels per group (the RGB stem, depthwise): a gather beats an idle
            // GEMM tile. One thread per pixel, group and stride phase column (conv.cu).
            let threads = xs[0] * p.groups * xs[2] * p.stride[1] * xs[3].div_ceil(p.stride[1]);
            return self.map(
                "conv",
                "conv_backward_data_direct",
                prm,
                &[dy, w],
                xs,
                threads,
            );
        }
        if let Some(q) = transposed_conv(p, ws) {
            // Stride 1: backward-data is a forward convolution of dy with the flipped,
            // transposed weight, which runs the forward kernel's faster gather.
            let [k, _, kh, kw] = ws;
            let prm = Params {
                a: [u(k), u(xs[1]), u(kh), u(kw)],
                b: [u(kh), u(kw), 0, 0],
                c: [1, 1, 0, 0],
                d: [0, 0, 0, u(p.groups)],
                ..Default::default()
            };
            let wt = self.flipped(w, prm, w.numel())?;
            let wt = Tensor::from_parts(Shape::from([xs[1], k / p.groups, kh, kw]), wt);
            return self.conv2d(dy, &wt, None, &q);
        }
        if let Some(dx) = self.conv_backward_data_phased(dy, w, p, [xs, ws, ys])? {
            return Ok(dx);
        }
        let depth = (ws[0] / p.groups) * ws[2] * ws[3];
        self.tiled(
            &CONV_BACKWARD_DATA,
            prm,
            [cg, xs[0] * xs[2] * xs[3], depth, p.groups],
            false,
            &[Self::buffer(dy)?, Self::buffer(w)?],
            None,
            x_shape.clone(),
        )
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
        let prm = Self::conv_params(xs, ws, ys, p);
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
        self.gemm(x, [i, 1], w, [1, i], b, [n, o, i])
    }

    fn linear_backward_data(&self, dy: &T, w: &T) -> Result<T> {
        let [n, i, o] = check::linear_backward_data(dy.shape(), w.shape())?;
        self.gemm(dy, [o, 1], w, [i, 1], None, [n, i, o])
    }

    fn linear_backward_weight(&self, x: &T, dy: &T) -> Result<T> {
        let [n, i, o] = check::linear_backward_weight(x.shape(), dy.shape())?;
        self.gemm(dy, [1, o], x, [i, 1], None, [o, i, n])
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
        let n = x.numel();
        self.map(
            "rectifiers",
            "rectifier_forward",
            prm,
            &[x],
            x.shape().clone(),
            n,
        )
    }

    fn rectifier_backward(&self, y: &T, dy: &T, r: Rectifier, mode: GradMode) -> Result<T> {
        check::same("rectifier backward", y.shape(), dy.shape())?;
        let m = match mode {
            GradMode::Plain => 0,
            GradMode::Guided => 1,
            GradMode::Deconvnet => 2,
        };
        let prm = Params {
            a: [u(y.numel()), m, 0, 0],
            f: [r.lo, r.hi.min(f32::MAX), 0.0, 0.0],
            ..Default::default()
        };
        let n = y.numel();
        self.map(
            "rectifiers",
            "rectifier_backward",
            prm,
            &[y, dy],
            y.shape().clone(),
            n,
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
        check::pool2d_backward(x.shape(), dy.shape(), p, "max_pool2d backward")?;
        let prm = Self::pool_params(
            x.shape().nchw("max_pool2d")?,
            dy.shape().nchw("max_pool2d")?,
            p,
        );
        // Each window's first maximum once (its index, in a float's bits), then one gather
        // per input element over the windows covering it.
        let arg = self.map(
            "pooling",
            "max_argmax",
            prm,
            &[x],
            dy.shape().clone(),
            dy.numel(),
        )?;
        self.map(
            "pooling",
            "max_backward",
            prm,
            &[&arg, dy],
            x.shape().clone(),
            x.numel(),
        )
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
        let n = x_shape.numel();
        self.map("pooling", "avg_backward", prm, &[dy], x_shape.clone(), n)
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
        let n = x_shape.numel();
        self.map(
            "pooling",
            "adaptive_backward",
            prm,
            &[dy],
            x_shape.clone(),
            n,
        )
    }

    fn channel_affine(&self, x: &T, scale: &T, shift: &T) -> Result<T> {
        let [_, c, h, w] = check::channel_affine(x.shape(), scale.shape(), Some(shift.shape()))?;
        let prm = Params {
            a: [u(x.numel()), u(c), u(h * w), 0],
            ..Default::default()
        };
        let n = x.numel();
        self.map(
            "layout",
            "channel_affine",
            prm,
            &[x, scale, shift],
            x.shape().clone(),
            n,
        )
    }

    fn channel_affine_backward(&self, dy: &T, scale: &T) -> Result<T> {
        let [_, c, h, w] = check::channel_affine(dy.shape(), scale.shape(), None)?;
        let prm = Params {
            a: [u(dy.numel()), u(c), u(h * w), 0],
            ..Default::default()
        };
        let n = dy.numel();
        self.map(
            "layout",
            "channel_scale",
            prm,
            &[dy, scale],
            dy.shape().clone(),
            n,
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
        // One warp per plane.
        self.map(
            "reductions",
            "mul_plane_sum",
            prm,
            &[dy, a],
            [n, c, 1, 1],
            n * c * 32,
        )
    }

    fn concat_channels(&self, xs: &[&T]) -> Result<T> {
        let shapes: Vec<&Shape> = xs.iter().map(|x| x.shape()).collect();
        let out = check::concat_channels(&shapes)?;
        let shape = Shape::from(out);
        let buf = self.alloc(shape.numel())?;
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
                self.launch(
                    "layout",
                    "copy_blocks",
                    prm,
                    &[Self::buffer(x)?],
                    &buf,
                    Device::grid(x.numel()),
                )?;
            }
            off += block;
        }
        Ok(Self::tensor(shape, buf))
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
        // One warp per plane.
        self.map("reductions", "gradient_gap", prm, &[g], [n, k], n * k * 32)
    }

    fn weighted_channel_sum(&self, a: &T, w: &T, relu: bool) -> Result<T> {
        let [n, k, h, wd] = check::weighted_channel_sum(a.shape(), w.shape())?;
        let prm = Params {
            a: [u(n * h * wd), u(k), u(h * wd), relu as u32],
            ..Default::default()
        };
        let count = n * h * wd;
        self.map(
            "reductions",
            "weighted_channel_sum",
            prm,
            &[a, w],
            [n, h, wd],
            count,
        )
    }

    fn elementwise_channel_sum(&self, a: &T, g: &T, relu_grad: bool) -> Result<T> {
        let [n, k, h, w] = check::cam_pair("elementwise_channel_sum", a.shape(), g.shape())?;
        let prm = Params {
            a: [u(n * h * w), u(k), u(h * w), relu_grad as u32],
            ..Default::default()
        };
        let count = n * h * w;
        self.map(
            "reductions",
            "elementwise_channel_sum",
            prm,
            &[a, g],
            [n, h, w],
            count,
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
            n * k * 32,
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
            n * k * 32,
        )
    }

    fn normalize_min_max(&self, x: &T, group: usize, eps: f32) -> Result<T> {
        check::normalize(x.shape(), group)?;
        let groups = x.numel() / group;
        let out = self.alloc(x.numel())?;
        let prm = Params {
            a: [u(groups), u(group), 0, 0],
            f: [eps, 0.0, 0.0, 0.0],
            ..Default::default()
        };
        if groups > 0 {
            self.launch(
                "reductions",
                "normalize_min_max",
                prm,
                &[Self::buffer(x)?],
                &out,
                [u(groups), 1, 1],
            )?;
        }
        Ok(Self::tensor(x.shape().clone(), out))
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
        self.map("fusion", "resize_bilinear", prm, &[x], shape, count)
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

    fn cam_postprocess_fused(&self, raw: &T, out: [usize; 2]) -> Result<T> {
        Ok(self.cam_maps(raw, out, None)?.0)
    }

    fn guided_gradcam_fused(&self, raw: &T, guided: &T) -> Result<(T, T)> {
        let [_, _, h, w] = check::guided_gradcam(raw.shape(), guided.shape())?;
        let (map, product) = self.cam_maps(raw, [h, w], Some(guided))?;
        let product = product.ok_or_else(|| err("guided_gradcam: no product was computed"))?;
        Ok((map, product))
    }
}

#[cfg(test)]
mod tests {
    use super::{plan, transposed_conv, Forced, Plan};
    use gradcam_core::{Backend, Conv2dParams, Shape};

    /// The identity behind the stride-1 backward-data path, on the CPU backend: backward-data
    /// equals a forward convolution of dy with the weight indexed as `flip_transpose` does.
    #[test]
    fn stride_one_backward_data_is_a_flipped_transposed_forward() {
        let cpu = gradcam_cpu::CpuBackend::new();
        let cases = [
            (
                [2, 6, 9, 7],
                [4, 3, 3, 3],
                Conv2dParams::new(1, 1).with_groups(2),
            ),
            (
                [1, 5, 8, 8],
                [7, 5, 3, 3],
                Conv2dParams::new(1, 2).with_dilation(2),
            ),
            ([2, 4, 6, 5], [3, 4, 1, 1], Conv2dParams::new(1, 0)),
            ([1, 3, 11, 9], [2, 3, 5, 3], Conv2dParams::new(1, 1)),
        ];
        let mut rng = gradcam_core::SplitMix64::new(3);
        for (xs, ws, p) in cases {
            let q = transposed_conv(&p, ws).expect("stride 1, small padding");
            let [k, c, kh, kw] = ws;
            let g = p.groups;
            let (cg, kg) = (xs[1] / g, k / g);
            let w: Vec<f32> = (0..k * c * kh * kw)
                .map(|_| rng.uniform(-0.5, 0.5))
                .collect();
            // w'[g·cg + c][kl][ki][kj] = w[g·kg + kl][c][kh−1−ki][kw−1−kj] (conv.cu's flip_transpose).
            let mut wt = vec![0.0; w.len()];
            for (i, v) in wt.iter_mut().enumerate() {
                let (kj, t) = (i % kw, i / kw);
                let (ki, t) = (t % kh, t / kh);
                let (kl, o) = (t % kg, t / kg);
                let (gi, ci) = (o / cg, o % cg);
                *v = w[(((gi * kg + kl) * cg + ci) * kh + (kh - 1 - ki)) * kw + (kw - 1 - kj)];
            }
            let x = Shape::from(xs);
            let y = p.output_shape(xs, ws, "test").unwrap();
            let dy: Vec<f32> = (0..y.iter().product())
                .map(|_| rng.uniform(-0.5, 0.5))
                .collect();
            let dy = cpu.upload(&dy, Shape::from(y)).unwrap();
            let want = cpu
                .conv2d_backward_data(&dy, &cpu.upload(&w, Shape::from(ws)).unwrap(), &p, &x)
                .unwrap();
            let wt = cpu.upload(&wt, Shape::new([xs[1], kg, kh, kw])).unwrap();
            let got = cpu.conv2d(&dy, &wt, None, &q).unwrap();
            assert_eq!(got.shape(), want.shape());
            let (a, b) = (cpu.download(&got).unwrap(), cpu.download(&want).unwrap());
            for (u, v) in a.iter().zip(&b) {
                assert!((u - v).abs() < 1e-5, "{u} vs {v} for {xs:?} {ws:?}");
            }
        }
        // Stride 2, or padding beyond the kernel's reach: the general path.
        assert!(transposed_conv(&Conv2dParams::new(2, 1), [4, 4, 3, 3]).is_none());
        assert!(transposed_conv(&Conv2dParams::new(1, 3), [4, 4, 3, 3]).is_none());
    }

    #[test]
    fn plans_fill_the_device() {
        const NONE: Forced = Forced {
            tile: None,
            splits: None,
        };
        // Batch 32, ResNet-50 layer2 3×3: one wave of 128×128 tiles, enough on the tensor
        // cores, not in f32; layer1's 64 filters would leave half of each tile's rows idle.
        assert!(plan(128, 32 * 28 * 28, 1152, 1, 132, true, NONE).big);
        assert!(!plan(128, 32 * 28 * 28, 1152, 1, 132, false, NONE).big);
        assert!(plan(256, 32 * 56 * 56, 64, 1, 132, false, NONE).big);
        assert!(!plan(64, 32 * 56 * 56, 576, 1, 132, true, NONE).big);
        // Batch 1, layer4 3×3 (512 filters, 7×7): split-K over 64×64 tiles.
        let p = plan(512, 49, 4608, 1, 132, false, NONE);
        assert!(!p.big && p.splits > 1 && p.per.is_multiple_of(16));
        assert!(p.splits * p.per >= 4608 && (p.splits - 1) * p.per < 4608);
        // Batch 32, layer 4 in f32 (512 rows, 32·49 columns): large tiles in 4 slices, the 3×3
        // and the deep 1×1; not in TF32, not where the depth is shallow (512→2048 forward: small
        // tiles fill the device), not at batch 1 (49 columns).
        for depth in [4608, 2048] {
            let p = plan(512, 32 * 49, depth, 1, 132, false, NONE);
            assert_eq!((p.big, p.splits), (true, 4), "depth {depth}");
            assert!(p.per.is_multiple_of(16) && p.splits * p.per >= depth);
            assert!(!plan(512, 32 * 49, depth, 1, 132, true, NONE).big);
        }
        assert_eq!(
            plan(2048, 32 * 49, 512, 1, 132, false, NONE),
            Plan {
                big: false,
                splits: 1,
                per: 512
            }
        );
        assert!(!plan(512, 49, 4608, 1, 132, false, NONE).big);
        // Slices forced alone keep the small tiles there (the tile size is forced apart).
        let forced = Forced {
            tile: None,
            splits: Some(2),
        };
        let p = plan(512, 32 * 49, 4608, 1, 132, false, forced);
        assert_eq!((p.big, p.splits), (false, 2));
        // Shallow depth is never split below 128 per slice.
        assert_eq!(plan(64, 49, 100, 1, 132, false, NONE).splits, 1);
        // Large tiles take the whole depth in one slice unless a split is forced.
        assert_eq!(
            plan(256, 32 * 56 * 56, 64, 1, 132, false, NONE),
            Plan {
                big: true,
                splits: 1,
                per: 64
            }
        );
        // Forced: 128×128 tiles in three depth slices; never more slices than 16-deep steps.
        let p = plan(
            128,
            32 * 28 * 28,
            1152,
            1,
            132,
            false,
            Forced {
                tile: Some(128),
                splits: Some(3),
            },
        );
        assert_eq!((p.big, p.splits, p.per), (true, 3, 384));
        assert_eq!(
            plan(
                64,
                49,
                40,
                1,
                132,
                false,
                Forced {
                    tile: None,
                    splits: Some(8)
                }
            )
            .splits,
            3
        );
    }
}
