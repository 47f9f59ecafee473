//! Grad-CAM's Table A1 ablations, composed from the backend's primitives: signed maps (no
//! ReLU), absolute gradients, global max pooling of the gradients. (The guided and deconvnet
//! backward rules are chosen where the backward pass is planned.)

use crate::{GradCamVariant, GradPooling};
use gradcam_core::{
    Backend, Pool2dParams, Rectifier, ResizeMode, Result, Shape, Tensor, NORMALIZE_EPS,
};

/// `(αₖ [n,k], raw map [n,h,w], map at `out` [n,H,W])` of `variant` from the target
/// activation `a` and its gradient `g`.
pub(crate) fn gradcam<B: Backend>(
    b: &B,
    a: &Tensor<B>,
    g: &Tensor<B>,
    variant: &GradCamVariant,
    out: [usize; 2],
) -> Result<(Tensor<B>, Tensor<B>, Tensor<B>)> {
    let [n, k, h, w] = a.shape().nchw("gradcam")?;
    let g = if variant.abs_gradients {
        // |g| = ReLU(g) + ReLU(−g); the negation is a per-channel affine map.
        let minus = b.upload(&vec![-1.0; k], Shape::new([k]))?;
        let zero = b.upload(&vec![0.0; k], Shape::new([k]))?;
        let neg = b.channel_affine(g, &minus, &zero)?;
        b.add(
            &b.rectifier(g, Rectifier::RELU)?,
            &b.rectifier(&neg, Rectifier::RELU)?,
        )?
    } else {
        g.clone()
    };
    let alpha = match variant.pooling {
        GradPooling::Average => b.gradient_gap(&g)?,
        GradPooling::Max => {
            let p = Pool2dParams {
                kernel: [h, w],
                stride: [h, w],
                ..Pool2dParams::new(1, 1, 0)
            };
            b.max_pool2d(&g, &p)?.reshape([n, k])?
        }
    };
    let raw = b.weighted_channel_sum(a, &alpha, variant.relu)?;
    let map = if variant.relu {
        b.cam_postprocess_fused(&raw, out)?
    } else {
        // The signed map, min-max normalised per image, resized, normalised again.
        let m = b.normalize_min_max(&raw, h * w, NORMALIZE_EPS)?;
        let up = b.resize_bilinear(&m, out, ResizeMode::HalfPixel)?;
        b.normalize_min_max(&up, out[0] * out[1], NORMALIZE_EPS)?
    };
    Ok((alpha, raw, map))
}
