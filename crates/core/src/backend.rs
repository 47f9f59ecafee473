//! The backend trait: every primitive the runtime and the explain methods need, on
//! device-resident tensors.

use crate::{
    Activation, Conv2dParams, GradMode, LrnParams, Pool2dParams, Rectifier, ResizeMode, Result,
    Shape, Tensor,
};

/// A compute backend. Tensors stay on the device between calls: only [`Backend::upload`] and
/// [`Backend::download`] (or [`Backend::download_owned`]) move data to or from the host, so a
/// whole explanation runs without an intermediate readback.
///
/// Shapes are checked by every method; a mismatch is an [`crate::Error::Shape`], never a panic.
/// All tensors are f32, NCHW for images. Backward methods compute the gradient with respect to
/// one operand only (`_data`, `_weight`, `_bias`); nothing computes weight gradients unless asked.
///
/// The `*_fused` methods have default implementations composed of the primitives; a backend may
/// override them with a single kernel, and must produce the same numbers within float rounding.
pub trait Backend: Send + Sync {
    /// Device-resident storage of f32 elements; cloning clones a handle, not the data.
    type Buffer: Clone + Send + Sync;

    /// A short name for messages and reports (`cpu`, `cuda:0`, `wgpu:llvmpipe`).
    fn name(&self) -> String;

    // ---------------------------------------------------------------- memory

    /// Copies host data to the device.
    fn upload(&self, data: &[f32], shape: Shape) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Copies a tensor to the host.
    fn download(&self, x: &Tensor<Self>) -> Result<Vec<f32>>
    where
        Self: Sized;
    /// [`Backend::download`] of a tensor the caller gives up: a backend whose memory is the
    /// host's may hand over the buffer itself when nothing else shares it, rather than a copy.
    /// The default downloads a copy.
    fn download_owned(&self, x: Tensor<Self>) -> Result<Vec<f32>>
    where
        Self: Sized,
    {
        self.download(&x)
    }
    /// Waits until all work queued on the device has finished (for timing op by op). The default
    /// does nothing: it suits backends whose calls return when their work is done.
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    /// Runs `pass`, a run of this backend's ops (a forward pass, a backward pass, a whole
    /// explanation), where they start fastest, and returns what it returns. The default runs it
    /// in place; the CPU backend runs it on a worker of its thread pool, so that each parallel
    /// op within starts and ends without waking the calling thread. Nested passes run in place.
    fn run_pass<R: Send>(&self, pass: impl FnOnce() -> R + Send) -> R
    where
        Self: Sized,
    {
        pass()
    }
    /// A handle on the same memory (tensors pass freely between the two) whose forward
    /// convolutions may round more for speed: the CPU's Winograd F(4×4, 3×3), ≈ 1e-5 relative
    /// against the direct product's ≈ 1e-7. For forward passes whose values no later step
    /// turns into a decision, such as a rectifier's mask or a pooling switch a backward pass
    /// reads (`Model::forward_with` and `Rounding::Fast` in the runtime). `None`, the default:
    /// the backend has no such variant, and every forward rounds alike.
    fn fast_forward(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }

    // ---------------------------------------------------------------- convolution

    /// `y = conv2d(x, w) + b`: x `[n,c,h,w]`, w `[k,c/groups,kh,kw]`, b `[k]`.
    fn conv2d(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        b: Option<&Tensor<Self>>,
        p: &Conv2dParams,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `clamp(conv2d(x, w) + b, lo, hi)`: a convolution whose only consumer is a rectifier, in
    /// one pass where the backend can (the default runs the two ops). Bit-identical to them.
    fn conv2d_rectified(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        b: Option<&Tensor<Self>>,
        p: &Conv2dParams,
        r: Rectifier,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized,
    {
        self.rectifier(&self.conv2d(x, w, b, p)?, r)
    }
    /// `clamp(conv2d(x, w) + b + residual, lo, hi)`: a residual block's last convolution, the
    /// sum with the block's other branch and the rectifier after it, in one pass where the
    /// backend can (the default runs [`Backend::conv2d`] and [`Backend::add_rectified`]).
    /// Bit-identical to them.
    fn conv2d_add_rectified(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        b: Option<&Tensor<Self>>,
        p: &Conv2dParams,
        residual: &Tensor<Self>,
        r: Rectifier,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized,
    {
        self.add_rectified(&self.conv2d(x, w, b, p)?, residual, r)
    }
    /// `∂L/∂x` of [`Backend::conv2d`] from `dy`; `x_shape` is the forward input's shape.
    fn conv2d_backward_data(
        &self,
        dy: &Tensor<Self>,
        w: &Tensor<Self>,
        p: &Conv2dParams,
        x_shape: &Shape,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `acc + conv2d_backward_data(dy, w)`: the gradient of an input that another consumer
    /// already gave one (`acc`, of `x_shape`), summed in one pass where the backend can (the
    /// default runs [`Backend::conv2d_backward_data`] and [`Backend::add`]). Bit-identical to
    /// them (NaN payloads aside).
    fn conv2d_backward_data_add(
        &self,
        dy: &Tensor<Self>,
        w: &Tensor<Self>,
        p: &Conv2dParams,
        x_shape: &Shape,
        acc: &Tensor<Self>,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized,
    {
        self.add(acc, &self.conv2d_backward_data(dy, w, p, x_shape)?)
    }
    /// `∂L/∂w` of [`Backend::conv2d`] (training only); summed over the batch.
    fn conv2d_backward_weight(
        &self,
        x: &Tensor<Self>,
        dy: &Tensor<Self>,
        p: &Conv2dParams,
        w_shape: &Shape,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `∂L/∂b` of [`Backend::conv2d`]: `dy` summed over batch and space, `[k]`.
    fn conv2d_backward_bias(&self, dy: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;

    // ---------------------------------------------------------------- linear

    /// `y = x wᵀ + b`: x `[n,in]`, w `[out,in]`, b `[out]`.
    fn linear(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        b: Option<&Tensor<Self>>,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `∂L/∂x = dy w`.
    fn linear_backward_data(&self, dy: &Tensor<Self>, w: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `∂L/∂w = dyᵀ x` (training only).
    fn linear_backward_weight(&self, x: &Tensor<Self>, dy: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `∂L/∂b`: `dy` summed over the batch.
    fn linear_backward_bias(&self, dy: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;

    // ---------------------------------------------------------------- rectifiers

    /// `y = clamp(x, lo, hi)` elementwise.
    fn rectifier(&self, x: &Tensor<Self>, r: Rectifier) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Backward of [`Backend::rectifier`] from its *output* `y` (the active range of `y` equals
    /// that of `x`) in the given mode: plain `dy·[lo<y<hi]`, guided `dy·[lo<y<hi]·[dy>0]`,
    /// deconvnet `dy·[dy>0]`.
    fn rectifier_backward(
        &self,
        y: &Tensor<Self>,
        dy: &Tensor<Self>,
        r: Rectifier,
        mode: GradMode,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;

    /// `y = f(x)` elementwise for a smooth or piecewise-linear [`Activation`].
    fn activation(&self, x: &Tensor<Self>, a: Activation) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `dx = dy·f'(x)`, from the activation's *input* `x`.
    fn activation_backward(
        &self,
        x: &Tensor<Self>,
        dy: &Tensor<Self>,
        a: Activation,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;

    // ---------------------------------------------------------------- pooling

    /// Max pooling with −∞ padding; ties go to the first maximum in scan order (as PyTorch).
    fn max_pool2d(&self, x: &Tensor<Self>, p: &Pool2dParams) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Backward of [`Backend::max_pool2d`] from its input `x`: each window's gradient goes to
    /// its (first) maximum.
    fn max_pool2d_backward(
        &self,
        x: &Tensor<Self>,
        dy: &Tensor<Self>,
        p: &Pool2dParams,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// [`Backend::max_pool2d_backward`] and then [`Backend::rectifier_backward`] through the
    /// rectifier whose output `x` is (a ReLU before a max-pool, as in ResNets' stems and
    /// VGG's blocks): the gradient of the rectifier's input, in one pass where the backend can
    /// (the default runs the two ops). Bit-identical to them.
    fn max_pool2d_backward_rectified(
        &self,
        x: &Tensor<Self>,
        dy: &Tensor<Self>,
        p: &Pool2dParams,
        r: Rectifier,
        mode: GradMode,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized,
    {
        self.rectifier_backward(x, &self.max_pool2d_backward(x, dy, p)?, r, mode)
    }
    /// Average pooling, PyTorch's divisor rules (`count_include_pad`, ceil mode).
    fn avg_pool2d(&self, x: &Tensor<Self>, p: &Pool2dParams) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Backward of [`Backend::avg_pool2d`].
    fn avg_pool2d_backward(
        &self,
        dy: &Tensor<Self>,
        p: &Pool2dParams,
        x_shape: &Shape,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Adaptive average pooling to `out = [oh, ow]` (PyTorch `AdaptiveAvgPool2d` windows).
    fn adaptive_avg_pool2d(&self, x: &Tensor<Self>, out: [usize; 2]) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Backward of [`Backend::adaptive_avg_pool2d`].
    fn adaptive_avg_pool2d_backward(
        &self,
        dy: &Tensor<Self>,
        x_shape: &Shape,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;

    // ---------------------------------------------------------------- elementwise and layout

    /// `y = x·scale[c] + shift[c]` per channel: inference batch norm (scale `γ/√(σ²+ε)`,
    /// shift `β − μ·scale`).
    fn channel_affine(
        &self,
        x: &Tensor<Self>,
        scale: &Tensor<Self>,
        shift: &Tensor<Self>,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Backward of [`Backend::channel_affine`]: `dx = dy·scale[c]`.
    fn channel_affine_backward(
        &self,
        dy: &Tensor<Self>,
        scale: &Tensor<Self>,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `a + b`, same shapes.
    fn add(&self, a: &Tensor<Self>, b: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `clamp(a + b, lo, hi)` (a residual sum and its rectifier) in one pass where the backend
    /// can; the default runs the two ops. Bit-identical to them.
    fn add_rectified(
        &self,
        a: &Tensor<Self>,
        b: &Tensor<Self>,
        r: Rectifier,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized,
    {
        self.rectifier(&self.add(a, b)?, r)
    }
    /// Local response normalisation across channels ([`LrnParams`]).
    fn lrn(&self, x: &Tensor<Self>, p: &LrnParams) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Backward of [`Backend::lrn`] from its input `x`: with `s_c = bias + α/size·Σ_{W(c)} x²`,
    /// `dx_j = dy_j·s_j^−β − (2αβ/size)·x_j·Σ_{c: j ∈ W(c)} dy_c·x_c·s_c^(−β−1)`.
    fn lrn_backward(
        &self,
        x: &Tensor<Self>,
        dy: &Tensor<Self>,
        p: &LrnParams,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `a ⊙ b` elementwise, `b` of `a`'s shape or `[n, c, 1, 1]`: one factor per image and
    /// channel broadcast over the plane (a squeeze-and-excitation gate). Its backward is
    /// `mul(dy, b)` for `a` and `mul(dy, a)` or [`Backend::mul_plane_sum`] for `b`.
    fn mul(&self, a: &Tensor<Self>, b: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `Σ_{h,w} dy ⊙ a` per image and channel, `[n, c, h, w]² → [n, c, 1, 1]`: the gradient of
    /// [`Backend::mul`]'s broadcast factor.
    fn mul_plane_sum(&self, dy: &Tensor<Self>, a: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Concatenation along channels (dimension 1) of NCHW tensors.
    fn concat_channels(&self, xs: &[&Tensor<Self>]) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Channels `start..start+len` of an NCHW tensor (the backward of concatenation; on a
    /// `[1, n, m, 1]` view it selects batch rows).
    fn slice_channels(&self, x: &Tensor<Self>, start: usize, len: usize) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Row-wise softmax of `[n, c]`.
    fn softmax(&self, x: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Backward of [`Backend::softmax`] from its output `y`: `dx = y ⊙ (dy − Σ dy⊙y)`.
    fn softmax_backward(&self, y: &Tensor<Self>, dy: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;

    // ---------------------------------------------------------------- the Grad-CAM kernels

    /// Gradient global average pooling: `[n,k,h,w] → [n,k]`, αₖ = mean over h×w.
    fn gradient_gap(&self, g: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `Σₖ w[n,k]·a[n,k]`, `[n,k,h,w] × [n,k] → [n,h,w]`, rectified when `relu`.
    fn weighted_channel_sum(
        &self,
        a: &Tensor<Self>,
        w: &Tensor<Self>,
        relu: bool,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// `Σₖ f(g)·a` elementwise then over channels, `[n,k,h,w]² → [n,h,w]`, with `f = relu` when
    /// `relu_grad` (LayerCAM) or the identity (HiResCAM).
    fn elementwise_channel_sum(
        &self,
        a: &Tensor<Self>,
        g: &Tensor<Self>,
        relu_grad: bool,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Grad-CAM++ channel weights `[n,k]` (pytorch-grad-cam's closed form with eps 1e-6).
    fn gradcampp_weights(&self, a: &Tensor<Self>, g: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// XGradCAM channel weights `[n,k]`: `Σ g·a / (Σ a + 1e-7)` over h×w.
    fn xgradcam_weights(&self, a: &Tensor<Self>, g: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Min-max normalisation over each consecutive group of `group` elements:
    /// `(x − min) / (max − min + eps)`.
    fn normalize_min_max(&self, x: &Tensor<Self>, group: usize, eps: f32) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Bilinear resize of the last two dimensions to `out = [h, w]`; any leading dimensions.
    fn resize_bilinear(
        &self,
        x: &Tensor<Self>,
        out: [usize; 2],
        mode: ResizeMode,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Heatmap fusion: `x [n,c,h,w]` times maps `m [n,m,h,w]` broadcast over channels, giving
    /// `[n·m, c, h, w]` with row `i·m + j = x[i] ⊙ m[i,j]`. With one map per image this is
    /// Guided Grad-CAM's product; with many it builds ScoreCAM's masked inputs.
    fn heatmap_fusion(&self, x: &Tensor<Self>, maps: &Tensor<Self>) -> Result<Tensor<Self>>
    where
        Self: Sized;
    /// Occlusion inputs: for each window origin `(y, x)`, a copy of `x [1,c,h,w]` with the
    /// `size` window over all channels set to `baseline`; `[windows, c, h, w]`.
    fn occlude(
        &self,
        x: &Tensor<Self>,
        origins: &[[usize; 2]],
        size: [usize; 2],
        baseline: f32,
    ) -> Result<Tensor<Self>>
    where
        Self: Sized;

    // ---------------------------------------------------------------- fused variants

    /// Grad-CAM at feature resolution: `(α [n,k], ReLU(Σₖ αₖ Aₖ) [n,h,w])`.
    fn gradcam_fused(
        &self,
        a: &Tensor<Self>,
        g: &Tensor<Self>,
    ) -> Result<(Tensor<Self>, Tensor<Self>)>
    where
        Self: Sized,
    {
        let alpha = self.gradient_gap(g)?;
        let raw = self.weighted_channel_sum(a, &alpha, true)?;
        Ok((alpha, raw))
    }

    /// pytorch-grad-cam's post-processing of a raw map `[n,h,w]`: rectify, min-max normalise per
    /// image, resize to `out` with half-pixel centres, normalise again.
    fn cam_postprocess_fused(&self, raw: &Tensor<Self>, out: [usize; 2]) -> Result<Tensor<Self>>
    where
        Self: Sized,
    {
        let d = raw.dims();
        if d.len() != 3 || d[1] == 0 || d[2] == 0 || out[0] == 0 || out[1] == 0 {
            return Err(crate::Error::shape(
                "cam_postprocess",
                format!(
                    "expected a non-empty [n,h,w], got {} to {out:?}",
                    raw.shape()
                ),
            ));
        }
        let plane = d[1] * d[2];
        let r = self.rectifier(raw, Rectifier::RELU)?;
        let n = self.normalize_min_max(&r, plane, crate::NORMALIZE_EPS)?;
        let up = self.resize_bilinear(&n, out, ResizeMode::HalfPixel)?;
        self.normalize_min_max(&up, out[0] * out[1], crate::NORMALIZE_EPS)
    }

    /// Grad-CAM's map and Guided Grad-CAM's product at once: `raw [n,h,w]` post-processed as
    /// [`cam_postprocess_fused`](Self::cam_postprocess_fused) at the size of `guided
    /// [n,c,H,W]`, and `guided ⊙ map` ([`heatmap_fusion`](Self::heatmap_fusion)): `(map
    /// [n,H,W], product [n,c,H,W])`. A backend may compute both in one pass.
    fn guided_gradcam_fused(
        &self,
        raw: &Tensor<Self>,
        guided: &Tensor<Self>,
    ) -> Result<(Tensor<Self>, Tensor<Self>)>
    where
        Self: Sized,
    {
        let [_, _, h, w] = crate::check::guided_gradcam(raw.shape(), guided.shape())?;
        let map = self.cam_postprocess_fused(raw, [h, w])?;
        let product = self.heatmap_fusion(guided, &map)?;
        Ok((map, product))
    }
}
