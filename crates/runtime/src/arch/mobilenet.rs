//! torchvision MobileNetV2 (any width multiplier: channels are read from the weights).

use super::common::Ctx;
use crate::{Graph, NodeId, Weights};
use gradcam_core::{Error, Result};

/// Strides of the 17 inverted-residual blocks (torchvision's settings table).
const STRIDES: [usize; 17] = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1];

/// Builds a MobileNetV2.
pub(super) fn build(w: &Weights) -> Result<Graph> {
    let blocks = (1..)
        .take_while(|i| w.has(&format!("features.{i}.conv.0.0.weight")))
        .count();
    if blocks != STRIDES.len() {
        return Err(Error::Model(format!(
            "found {blocks} inverted-residual blocks features.1..; MobileNetV2 has {}",
            STRIDES.len()
        )));
    }
    let mut cx = Ctx::new(w);
    let x = cx.b.input();
    let mut x = conv_bn_relu6(&mut cx, "features.0", x, 2)?;
    for (i, &stride) in STRIDES.iter().enumerate() {
        let p = format!("features.{}", i + 1);
        x = inverted_residual(&mut cx, &p, x, stride)?;
        cx.b.alias(&p, x);
    }
    let x = conv_bn_relu6(&mut cx, "features.18", x, 1)?;
    cx.b.set_default_target(x);
    let x = cx.b.global_avg_pool("avgpool", x)?;
    let x = cx.b.flatten("flatten", x)?;
    let x = cx.b.dropout("classifier.0", x)?;
    let y = cx.linear("classifier.1", x)?;
    cx.b.build(y)
}

/// torchvision's Conv2dNormActivation: conv (`.0`, padding k/2), batch norm (`.1`), ReLU6 (`.2`).
fn conv_bn_relu6(cx: &mut Ctx, p: &str, x: NodeId, stride: usize) -> Result<NodeId> {
    let k = cx.kernel(&format!("{p}.0"))?;
    let y = cx.conv(&format!("{p}.0"), x, stride, k / 2)?;
    let y = cx.bn(&format!("{p}.1"), y)?;
    let y = cx.b.relu6(&format!("{p}.2"), y)?;
    cx.b.alias(p, y);
    Ok(y)
}

fn inverted_residual(cx: &mut Ctx, p: &str, x: NodeId, stride: usize) -> Result<NodeId> {
    let inp = cx.b.channels(x)?;
    let expands = cx.kernel(&format!("{p}.conv.0.0"))? == 1;
    let mut y = x;
    let mut j = 0;
    if expands {
        y = conv_bn_relu6(cx, &format!("{p}.conv.0"), y, 1)?;
        j = 1;
    }
    y = conv_bn_relu6(cx, &format!("{p}.conv.{j}"), y, stride)?;
    y = cx.conv(&format!("{p}.conv.{}", j + 1), y, 1, 0)?;
    y = cx.bn(&format!("{p}.conv.{}", j + 2), y)?;
    if stride == 1 && cx.b.channels(y)? == inp {
        y = cx.b.add(&format!("{p}.add"), x, y)?;
    }
    Ok(y)
}
