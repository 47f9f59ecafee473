//! Parameters of the primitive operations, with their output-shape rules.

use crate::{Error, Result};

/// Epsilon of pytorch-grad-cam's per-image min-max normalisation: `x ← x − min; x ← x / (max + eps)`.
pub const NORMALIZE_EPS: f32 = 1e-7;
/// Epsilon of ScoreCAM's per-channel mask normalisation: `(x − min) / (max − min + eps)`.
pub const SCORECAM_EPS: f32 = 1e-8;

/// 2-D convolution parameters (PyTorch `nn.Conv2d` semantics, cross-correlation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Zero padding on both sides (height, width).
    pub padding: [usize; 2],
    /// Dilation (height, width).
    pub dilation: [usize; 2],
    /// Number of groups; input and output channels must both be divisible by it.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl Conv2dParams {
    /// Square stride and padding, no dilation, one group.
    pub fn new(stride: usize, padding: usize) -> Self {
        Conv2dParams {
            stride: [stride; 2],
            padding: [padding; 2],
            ..Default::default()
        }
    }

    /// The same with `groups` groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// The same with dilation `d`.
    pub fn with_dilation(mut self, d: usize) -> Self {
        self.dilation = [d; 2];
        self
    }

    /// Checks an input `[n, c, h, w]` against a weight `[k, c/groups, kh, kw]` and returns the
    /// output `[n, k, oh, ow]`.
    pub fn output_shape(&self, x: [usize; 4], w: [usize; 4], op: &str) -> Result<[usize; 4]> {
        let [n, c, h, wd] = x;
        let [k, cg, kh, kw] = w;
        if self.groups == 0 || self.stride.contains(&0) || self.dilation.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "{op}: groups, stride and dilation must be positive ({self:?})"
            )));
        }
        if c % self.groups != 0 || k % self.groups != 0 || cg * self.groups != c {
            return Err(Error::shape(
                op,
                format!(
                    "input has {c} channels, weight expects {cg}×{} groups and has {k} filters",
                    self.groups
                ),
            ));
        }
        let oh = out_dim(
            h,
            kh,
            self.stride[0],
            self.padding[0],
            self.dilation[0],
            false,
            op,
        )?;
        let ow = out_dim(
            wd,
            kw,
            self.stride[1],
            self.padding[1],
            self.dilation[1],
            false,
            op,
        )?;
        Ok([n, k, oh, ow])
    }
}

/// Output size along one axis of a convolution or pooling window, with PyTorch's ceil-mode rule
/// (the last window must start inside the input or its left padding).
pub fn out_dim(
    size: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    ceil: bool,
    op: &str,
) -> Result<usize> {
    let span = dilation * (kernel.max(1) - 1) + 1;
    let padded = size + 2 * pad;
    if kernel == 0 || padded < span {
        return Err(Error::shape(
            op,
            format!(
                "input size {size} (padding {pad}) is smaller than the window {kernel} (dilation {dilation})"
            ),
        ));
    }
    let num = padded - span;
    let mut out = if ceil {
        num.div_ceil(stride)
    } else {
        num / stride
    } + 1;
    if ceil && (out - 1) * stride >= size + pad {
        out -= 1;
    }
    Ok(out)
}

/// Pooling parameters (PyTorch `nn.MaxPool2d` / `nn.AvgPool2d` semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    /// Window (height, width).
    pub kernel: [usize; 2],
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Implicit padding (−∞ for max pooling, zeros for average pooling).
    pub padding: [usize; 2],
    /// Dilation of the window (max pooling only).
    pub dilation: [usize; 2],
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
    /// Average pooling: count padded zeros in the divisor (PyTorch's default).
    pub count_include_pad: bool,
}

impl Pool2dParams {
    /// Square window `k`, stride `s`, padding `p`, floor mode, padding counted.
    pub fn new(k: usize, s: usize, p: usize) -> Self {
        Pool2dParams {
            kernel: [k; 2],
            stride: [s; 2],
            padding: [p; 2],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// The same in ceil mode.
    pub fn ceil(mut self) -> Self {
        self.ceil_mode = true;
        self
    }

    /// Output `[n, c, oh, ow]` for input `[n, c, h, w]`.
    pub fn output_shape(&self, x: [usize; 4], op: &str) -> Result<[usize; 4]> {
        let [n, c, h, w] = x;
        if self.stride.contains(&0) || self.dilation.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "{op}: stride and dilation must be positive ({self:?})"
            )));
        }
        for a in 0..2 {
            if 2 * self.padding[a] > self.kernel[a] {
                return Err(Error::InvalidArgument(format!(
                    "{op}: padding {} must be at most half the window {}",
                    self.padding[a], self.kernel[a]
                )));
            }
        }
        let oh = out_dim(
            h,
            self.kernel[0],
            self.stride[0],
            self.padding[0],
            self.dilation[0],
            self.ceil_mode,
            op,
        )?;
        let ow = out_dim(
            w,
            self.kernel[1],
            self.stride[1],
            self.padding[1],
            self.dilation[1],
            self.ceil_mode,
            op,
        )?;
        Ok([n, c, oh, ow])
    }
}

/// A rectifier: `clamp(x, lo, hi)`. ReLU is `(0, ∞)`, ReLU6 is `(0, 6)`.
///
/// Local response normalisation across channels (AlexNet, GoogLeNet; ONNX `LRN`):
/// `y_c = x_c / (bias + α/size · Σ_{i ∈ W(c)} x_i²)^β` with the window
/// `W(c) = [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉]` clipped to the channels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnParams {
    /// Channels in the window.
    pub size: usize,
    /// Scale of the sum of squares (ONNX default 1e-4).
    pub alpha: f32,
    /// Exponent (ONNX default 0.75).
    pub beta: f32,
    /// Offset (ONNX default 1).
    pub bias: f32,
}

impl LrnParams {
    /// The window's channels below and above `c`: `(⌊(size−1)/2⌋, ⌈(size−1)/2⌉)`.
    pub fn reach(&self) -> (usize, usize) {
        let s = self.size.max(1) - 1;
        (s / 2, s.div_ceil(2))
    }
}

/// Gradient passes only where the input lies in the open active range `(lo, hi)`; the same test
/// holds for the output, which is what backward reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rectifier {
    /// Lower clamp.
    pub lo: f32,
    /// Upper clamp (`f32::INFINITY` for none).
    pub hi: f32,
}

impl Rectifier {
    /// `max(x, 0)`.
    pub const RELU: Rectifier = Rectifier {
        lo: 0.0,
        hi: f32::INFINITY,
    };
    /// `min(max(x, 0), 6)`.
    pub const RELU6: Rectifier = Rectifier { lo: 0.0, hi: 6.0 };

    /// Whether this is a plain ReLU (no upper clamp, zero floor).
    pub fn is_relu(&self) -> bool {
        self.lo == 0.0 && self.hi == f32::INFINITY
    }
}

/// An elementwise activation other than the rectifiers. Its backward is the plain derivative in
/// every gradient mode: the guided and deconvnet rules apply to rectifiers only, as in the paper
/// and pytorch-grad-cam's `GuidedBackpropReLUModel`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `1 / (1 + e⁻ˣ)`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
    /// `x` for `x ≥ 0`, `α·x` below.
    LeakyRelu(f32),
    /// `x` for `x > 0`, `α·(eˣ − 1)` below.
    Elu(f32),
    /// `clamp(α·x + β, 0, 1)`.
    HardSigmoid(f32, f32),
    /// `x·clamp(x/6 + 1/2, 0, 1)`.
    HardSwish,
    /// `1/x` (a quotient of computed tensors is a product by it); derivative `−1/x²`.
    Reciprocal,
}

impl Activation {
    /// The kernels' encoding: kind number and two parameters.
    pub fn encode(&self) -> (u32, f32, f32) {
        match *self {
            Activation::Sigmoid => (0, 0.0, 0.0),
            Activation::Tanh => (1, 0.0, 0.0),
            Activation::LeakyRelu(a) => (2, a, 0.0),
            Activation::Elu(a) => (3, a, 0.0),
            Activation::HardSigmoid(a, b) => (4, a, b),
            Activation::HardSwish => (5, 0.0, 0.0),
            Activation::Reciprocal => (6, 0.0, 0.0),
        }
    }
}

/// How a rectifier passes gradient backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GradMode {
    /// The true gradient: `dy · [x in active range]`.
    #[default]
    Plain,
    /// Guided backpropagation: `dy · [x in active range] · [dy > 0]`.
    Guided,
    /// Deconvnet: `dy · [dy > 0]`, ignoring the forward input.
    Deconvnet,
}

/// How bilinear resizing maps output pixels to input coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ResizeMode {
    /// Half-pixel centres, clamped edges: OpenCV `INTER_LINEAR`, PyTorch `align_corners=False`.
    #[default]
    HalfPixel,
    /// Corner pixels aligned: PyTorch `UpsamplingBilinear2d` (`align_corners=True`).
    AlignCorners,
}
