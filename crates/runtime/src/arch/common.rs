//! Helpers shared by the architecture builders: layers whose parameters come from the weights.

use crate::{GraphBuilder, NodeId, Weights};
use gradcam_core::{Conv2dParams, Error, Result};

/// A builder reading parameters from a state dict.
pub(super) struct Ctx<'w> {
    pub b: GraphBuilder,
    pub w: &'w Weights,
}

impl<'w> Ctx<'w> {
    pub fn new(w: &'w Weights) -> Self {
        Ctx {
            b: GraphBuilder::new(3),
            w,
        }
    }

    /// Convolution `name` with its weight (and bias if present); groups are read from the
    /// weight's shape against the input's channels.
    pub fn conv(&mut self, name: &str, x: NodeId, stride: usize, pad: usize) -> Result<NodeId> {
        let weight = self.w.get_rank(&format!("{name}.weight"), 4)?;
        let c = self.b.channels(x)?;
        let cg = weight.shape.dim(1);
        if cg == 0 || c % cg != 0 {
            return Err(Error::Model(format!(
                "tensor `{name}.weight` has shape {}, which does not fit {c} input channels",
                weight.shape
            )));
        }
        let bias_name = format!("{name}.bias");
        let bias = if self.w.has(&bias_name) {
            Some(self.w.get_shaped(&bias_name, &[weight.shape.dim(0)])?)
        } else {
            None
        };
        let p = Conv2dParams::new(stride, pad).with_groups(c / cg);
        self.b.conv2d(name, x, weight, bias, p)
    }

    /// Batch norm `name` (eps 1e-5) over `x`'s channels.
    pub fn bn(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        let c = self.b.channels(x)?;
        let t = self.w.batch_norm(name, c)?;
        self.b.batch_norm(name, x, t, 1e-5)
    }

    /// Linear `name` with weight and bias.
    pub fn linear(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        let weight = self.w.get_rank(&format!("{name}.weight"), 2)?;
        let bias = self
            .w
            .get_shaped(&format!("{name}.bias"), &[weight.shape.dim(0)])?;
        self.b.linear(name, x, weight, Some(bias))
    }

    /// Kernel size of conv `name` from its weight.
    pub fn kernel(&self, name: &str) -> Result<usize> {
        Ok(self.w.get_rank(&format!("{name}.weight"), 4)?.shape.dim(2))
    }
}
