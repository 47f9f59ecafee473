//! torchvision VGG (11/13/16/19, with or without batch norm).

use super::common::Ctx;
use crate::{Graph, Weights};
use gradcam_core::{Error, Pool2dParams, Result};

/// Builds a VGG with `convs` conv layers in `features`.
pub(super) fn build(w: &Weights, convs: usize, bn: bool) -> Result<Graph> {
    let mut cx = Ctx::new(w);
    let is_conv = |i: usize| {
        w.has(&format!("features.{i}.weight")) && !w.has(&format!("features.{i}.running_mean"))
    };
    let mut x = cx.b.input();
    let (mut idx, mut found, mut last_relu) = (0, 0, None);
    loop {
        if is_conv(idx) {
            x = cx.conv(&format!("features.{idx}"), x, 1, 1)?;
            found += 1;
            let has_bn = w.has(&format!("features.{}.running_mean", idx + 1));
            if has_bn != bn {
                return Err(Error::Model(format!(
                    "features.{idx} is {} by batch norm, the variant {} it",
                    if has_bn { "followed" } else { "not followed" },
                    if bn { "has" } else { "lacks" },
                )));
            }
            if bn {
                x = cx.bn(&format!("features.{}", idx + 1), x)?;
                idx += 1;
            }
            x = cx.b.relu(&format!("features.{}", idx + 1), x)?;
            last_relu = Some(x);
            idx += 2;
        } else {
            x =
                cx.b.max_pool(&format!("features.{idx}"), x, Pool2dParams::new(2, 2, 0))?;
            idx += 1;
            if !is_conv(idx) {
                break;
            }
        }
    }
    if found != convs {
        return Err(Error::Model(format!(
            "found {found} conv layers in features, the variant has {convs}"
        )));
    }
    if let Some(t) = last_relu {
        cx.b.set_default_target(t);
    }
    let x = cx.b.adaptive_avg_pool("avgpool", x, [7, 7])?;
    let x = cx.b.flatten("flatten", x)?;
    let x = cx.linear("classifier.0", x)?;
    let x = cx.b.relu("classifier.1", x)?;
    let x = cx.b.dropout("classifier.2", x)?;
    let x = cx.linear("classifier.3", x)?;
    let x = cx.b.relu("classifier.4", x)?;
    let x = cx.b.dropout("classifier.5", x)?;
    let y = cx.linear("classifier.6", x)?;
    cx.b.build(y)
}
