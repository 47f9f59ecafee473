//! torchvision AlexNet.

use super::common::Ctx;
use crate::{Graph, Weights};
use gradcam_core::{Pool2dParams, Result};

/// Builds AlexNet.
pub(super) fn build(w: &Weights) -> Result<Graph> {
    let mut cx = Ctx::new(w);
    let pool = Pool2dParams::new(3, 2, 0);
    let x = cx.b.input();
    let x = cx.conv("features.0", x, 4, 2)?;
    let x = cx.b.relu("features.1", x)?;
    let x = cx.b.max_pool("features.2", x, pool)?;
    let x = cx.conv("features.3", x, 1, 2)?;
    let x = cx.b.relu("features.4", x)?;
    let x = cx.b.max_pool("features.5", x, pool)?;
    let x = cx.conv("features.6", x, 1, 1)?;
    let x = cx.b.relu("features.7", x)?;
    let x = cx.conv("features.8", x, 1, 1)?;
    let x = cx.b.relu("features.9", x)?;
    let x = cx.conv("features.10", x, 1, 1)?;
    let x = cx.b.relu("features.11", x)?;
    cx.b.set_default_target(x);
    let x = cx.b.max_pool("features.12", x, pool)?;
    let x = cx.b.adaptive_avg_pool("avgpool", x, [6, 6])?;
    let x = cx.b.flatten("flatten", x)?;
    let x = cx.b.dropout("classifier.0", x)?;
    let x = cx.linear("classifier.1", x)?;
    let x = cx.b.relu("classifier.2", x)?;
    let x = cx.b.dropout("classifier.3", x)?;
    let x = cx.linear("classifier.4", x)?;
    let x = cx.b.relu("classifier.5", x)?;
    let y = cx.linear("classifier.6", x)?;
    cx.b.build(y)
}
