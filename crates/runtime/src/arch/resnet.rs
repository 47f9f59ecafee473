//! torchvision ResNet (BasicBlock and Bottleneck, any depth, width and groups).

use super::common::Ctx;
use crate::{Graph, NodeId, Weights};
use gradcam_core::{Error, Pool2dParams, Result};

/// Builds a ResNet; `expect` is (bottleneck, blocks per stage) of a named variant.
pub(super) fn build(w: &Weights, expect: Option<(bool, [usize; 4])>) -> Result<Graph> {
    let bottleneck = w.has("layer1.0.conv3.weight");
    let counts: Vec<usize> = (1..=4)
        .map(|l| {
            (0..)
                .take_while(|i| w.has(&format!("layer{l}.{i}.conv1.weight")))
                .count()
        })
        .collect();
    if counts.contains(&0) {
        return Err(Error::Model(format!(
            "expected four stages layer1..layer4 of blocks, found {counts:?} blocks"
        )));
    }
    if let Some((bn, blocks)) = expect {
        if bn != bottleneck || counts != blocks {
            return Err(Error::Model(format!(
                "the weights hold {} blocks {counts:?}, the variant has {} blocks {blocks:?}",
                if bottleneck {
                    "Bottleneck"
                } else {
                    "BasicBlock"
                },
                if bn { "Bottleneck" } else { "BasicBlock" },
            )));
        }
    }
    let mut cx = Ctx::new(w);
    let x = cx.b.input();
    let x = cx.conv("conv1", x, 2, 3)?;
    let x = cx.bn("bn1", x)?;
    let x = cx.b.relu("relu", x)?;
    let mut x = cx.b.max_pool("maxpool", x, Pool2dParams::new(3, 2, 1))?;
    for (l, &count) in counts.iter().enumerate() {
        for i in 0..count {
            let stride = if l > 0 && i == 0 { 2 } else { 1 };
            let prefix = format!("layer{}.{i}", l + 1);
            x = block(&mut cx, &prefix, x, stride, bottleneck)?;
            cx.b.alias(&prefix, x);
        }
        cx.b.alias(&format!("layer{}", l + 1), x);
    }
    cx.b.set_default_target(x);
    let x = cx.b.global_avg_pool("avgpool", x)?;
    let x = cx.b.flatten("flatten", x)?;
    let y = cx.linear("fc", x)?;
    cx.b.build(y)
}

fn block(cx: &mut Ctx, p: &str, x: NodeId, stride: usize, bottleneck: bool) -> Result<NodeId> {
    let mut y = x;
    let convs: &[(usize, usize)] = if bottleneck {
        &[(1, 0), (stride, 1), (1, 0)] // torchvision v1.5: stride on the 3×3
    } else {
        &[(stride, 1), (1, 1)]
    };
    for (j, &(s, pad)) in convs.iter().enumerate() {
        y = cx.conv(&format!("{p}.conv{}", j + 1), y, s, pad)?;
        y = cx.bn(&format!("{p}.bn{}", j + 1), y)?;
        if j + 1 < convs.len() {
            y = cx.b.relu(&relu_name(p, j), y)?;
        }
    }
    let identity = if cx.w.has(&format!("{p}.downsample.0.weight")) {
        let d = cx.conv(&format!("{p}.downsample.0"), x, stride, 0)?;
        cx.bn(&format!("{p}.downsample.1"), d)?
    } else {
        x
    };
    let sum = cx.b.add(&format!("{p}.add"), y, identity)?;
    cx.b.relu(&relu_name(p, convs.len() - 1), sum)
}

/// torchvision reuses one `relu` module per block; its calls are `relu`, `relu_1`, `relu_2`.
fn relu_name(p: &str, call: usize) -> String {
    if call == 0 {
        format!("{p}.relu")
    } else {
        format!("{p}.relu_{call}")
    }
}
