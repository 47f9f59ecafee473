//! Grad-CAM's map, post-processed at once or left raw until Guided Grad-CAM's product can be
//! computed with it in one pass ([`Backend::guided_gradcam_fused`]).

use gradcam_core::{Backend, Result, Tensor};

/// Grad-CAM's map at input size, or the raw map it is post-processed from.
pub(crate) enum CamMap<B: Backend> {
    /// The post-processed map `[n,H,W]`.
    Done(Tensor<B>),
    /// The raw map `[n,h,w]`, post-processed with `Backend::cam_postprocess_fused` when needed.
    Raw(Tensor<B>),
}

impl<B: Backend> CamMap<B> {
    /// `grad [n,c,H,W] ⊙ map`: with a raw map, the map and the product in one call (the map
    /// is kept for the next product and for [`CamMap::into_map`]).
    pub(crate) fn product(&mut self, b: &B, grad: &Tensor<B>) -> Result<Tensor<B>> {
        match self {
            CamMap::Done(map) => b.heatmap_fusion(grad, map),
            CamMap::Raw(raw) => {
                let (map, product) = b.guided_gradcam_fused(raw, grad)?;
                *self = CamMap::Done(map);
                Ok(product)
            }
        }
    }

    /// The post-processed map at `out`.
    pub(crate) fn into_map(self, b: &B, out: [usize; 2]) -> Result<Tensor<B>> {
        match self {
            CamMap::Done(map) => Ok(map),
            CamMap::Raw(raw) => b.cam_postprocess_fused(&raw, out),
        }
    }
}
