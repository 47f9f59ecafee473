//! The demo CNN the project trains on its procedural scenes (crate `gradcam-demo`): four 3×3
//! convolutions with ReLU (max pooling after the first two), global average pooling and one
//! linear layer, so CAM applies as well as Grad-CAM. Widths and classes come from the weights.

use super::common::Ctx;
use crate::{Graph, Weights};
use gradcam_core::{Pool2dParams, Result};

/// Builds the demo CNN: `conv1..conv4` (+`relu1..relu4`, `pool1`, `pool2`), `avgpool`, `fc`.
pub(super) fn build(w: &Weights) -> Result<Graph> {
    let mut cx = Ctx::new(w);
    let pool = Pool2dParams::new(2, 2, 0);
    let mut x = cx.b.input();
    for i in 1..=4 {
        if cx.kernel(&format!("conv{i}"))? != 3 {
            return Err(gradcam_core::Error::Model(format!(
                "conv{i} must be a 3×3 convolution"
            )));
        }
        x = cx.conv(&format!("conv{i}"), x, 1, 1)?;
        x = cx.b.relu(&format!("relu{i}"), x)?;
        if i <= 2 {
            x = cx.b.max_pool(&format!("pool{i}"), x, pool)?;
        }
    }
    cx.b.set_default_target(x);
    let x = cx.b.global_avg_pool("avgpool", x)?;
    let x = cx.b.flatten("flatten", x)?;
    let y = cx.linear("fc", x)?;
    cx.b.build(y)
}
