//! torchvision SqueezeNet 1.0 and 1.1: fire modules, ceil-mode pooling, a conv classifier.

use super::common::Ctx;
use crate::{Graph, NodeId, Weights};
use gradcam_core::{Pool2dParams, Result};

/// The two published layouts.
pub(super) enum Version {
    V1_0,
    V1_1,
}

enum L {
    Pool,
    Fire,
}

/// Builds a SqueezeNet.
pub(super) fn build(w: &Weights, v: Version) -> Result<Graph> {
    let mut cx = Ctx::new(w);
    let x = cx.b.input();
    use L::{Fire as F, Pool as P};
    // torchvision's layouts of features.2 onwards, and the stem's kernel size.
    let (layout, stem) = match v {
        Version::V1_0 => ([P, F, F, F, P, F, F, F, F, P, F], 7),
        Version::V1_1 => ([P, F, F, P, F, F, P, F, F, F, F], 3),
    };
    if cx.kernel("features.0")? != stem {
        return Err(gradcam_core::Error::Model(format!(
            "features.0 has a {k}×{k} kernel; this SqueezeNet version has {stem}×{stem}",
            k = cx.kernel("features.0")?
        )));
    }
    let mut x = cx.conv("features.0", x, 2, 0)?;
    x = cx.b.relu("features.1", x)?;
    for (i, l) in layout.iter().enumerate() {
        let name = format!("features.{}", i + 2);
        x = match l {
            L::Pool => cx.b.max_pool(&name, x, Pool2dParams::new(3, 2, 0).ceil())?,
            L::Fire => fire(&mut cx, &name, x)?,
        };
    }
    cx.b.set_default_target(x);
    let x = cx.b.dropout("classifier.0", x)?;
    let x = cx.conv("classifier.1", x, 1, 0)?;
    let x = cx.b.relu("classifier.2", x)?;
    let x = cx.b.adaptive_avg_pool("classifier.3", x, [1, 1])?;
    let y = cx.b.flatten("flatten", x)?;
    cx.b.build(y)
}

fn fire(cx: &mut Ctx, p: &str, x: NodeId) -> Result<NodeId> {
    let s = cx.conv(&format!("{p}.squeeze"), x, 1, 0)?;
    let s = cx.b.relu(&format!("{p}.squeeze_activation"), s)?;
    let e1 = cx.conv(&format!("{p}.expand1x1"), s, 1, 0)?;
    let e1 = cx.b.relu(&format!("{p}.expand1x1_activation"), e1)?;
    let k = cx.kernel(&format!("{p}.expand3x3"))?;
    let e3 = cx.conv(&format!("{p}.expand3x3"), s, 1, k / 2)?;
    let e3 = cx.b.relu(&format!("{p}.expand3x3_activation"), e3)?;
    cx.b.concat(p, &[e1, e3])
}
