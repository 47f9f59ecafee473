//! pytorch-grad-cam's post-processing of CAM maps (rectify, min-max normalise, resize with
//! half-pixel centres, normalise again) in two launches, with Guided Grad-CAM's product folded
//! into the second: `cam_stats` finds each map's two ranges (one block per map, the resized
//! values computed but not stored), then `cam_apply` writes every output pixel at once and, with
//! guided gradients, their product with it. The map is never written and read back, and at
//! batch 1 the per-pixel work spreads over the whole device rather than one block.

use super::{u, CudaBackend, T};
use crate::context::{Device, Params};
use gradcam_core::{Error, Result};

/// Threads of a `cam_stats` block (a multiple of 32, at most 1024).
const STATS_BLOCK: u32 = 1024;

impl CudaBackend {
    /// The maps of `raw [n,h,w]` post-processed at `out`, and with `guided [n,c,oh,ow]` the
    /// product `guided ⊙ map`.
    pub(super) fn cam_maps(
        &self,
        raw: &T,
        out: [usize; 2],
        guided: Option<&T>,
    ) -> Result<(T, Option<T>)> {
        let (n, h, w) = match raw.dims() {
            [n, h, w] if *h > 0 && *w > 0 && out[0] > 0 && out[1] > 0 => (*n, *h, *w),
            _ => {
                return Err(Error::shape(
                    "cam_postprocess",
                    format!(
                        "expected a non-empty [n,h,w], got {} to {out:?}",
                        raw.shape()
                    ),
                ))
            }
        };
        let c = guided.map_or(0, |g| g.dims()[1]);
        let too_large = || {
            Error::shape(
                "cam_postprocess",
                format!("{n} maps of {out:?} (and {c} channels) overflow"),
            )
        };
        let op = out[0].checked_mul(out[1]).ok_or_else(too_large)?;
        let maps = n.checked_mul(op).ok_or_else(too_large)?;
        let products = maps.checked_mul(c).ok_or_else(too_large)?;
        let map = self.alloc(maps)?;
        let product = guided.map(|_| self.alloc(products)).transpose()?;
        if n > 0 {
            let stats = self.alloc(4 * n)?;
            let prm = Params {
                a: [u(h), u(w), u(op), u(c)],
                b: [u(out[0]), u(out[1]), u(n), 0],
                f: [gradcam_core::NORMALIZE_EPS, 0.0, 0.0, 0.0],
                ..Default::default()
            };
            let src = Self::buffer(raw)?;
            self.dev.launch(
                "fusion",
                "cam_stats",
                prm,
                &[src],
                &self.dummy,
                &stats,
                None,
                [u(n), 1, 1],
                STATS_BLOCK,
            )?;
            let g = guided.map(Self::buffer).transpose()?;
            let ins: Vec<_> = [Some(src), Some(&stats), g].into_iter().flatten().collect();
            self.dev.launch(
                "fusion",
                "cam_apply",
                prm,
                &ins,
                &self.dummy,
                &map,
                Some(product.as_ref().unwrap_or(&self.dummy)),
                Device::grid(n * op),
                256,
            )?;
        }
        let product = product.map(|p| Self::tensor([n, c, out[0], out[1]], p));
        Ok((Self::tensor([n, out[0], out[1]], map), product))
    }
}
