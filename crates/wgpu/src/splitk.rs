//! Split-K for the tiled convolution GEMMs. Where a convolution's 64×64 output tiles are too
//! few to keep a GPU busy (batch 1, small planes: ResNet-50's 7×7 layers make 8 workgroups),
//! its depth is cut into slices of whole 16-deep steps; each workgroup sums one slice of one
//! tile into its own copy of the output, and `splitk_sum` (`shaders/conv.wgsl`) adds the
//! copies in slice order, then the bias. Deterministic: the same sums in the same order on
//! every run.

use crate::context::{Context, Params};
use crate::pool::GpuBuffer;
use gradcam_core::Result;
use std::sync::OnceLock;

/// How the depth of the tiled convolution GEMMs is split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitK {
    /// Split where the output tiles make fewer than 64 workgroups, into enough slices to make
    /// about 128, each of at least 16 steps of 16; never on a software adapter (its invocations
    /// run on the CPU's few cores, which few workgroups already fill).
    /// `GRADCAM_WGPU_SPLITS=N` asks for `N` slices instead (for measuring), as far as the depth
    /// allows.
    #[default]
    Auto,
    /// Always this many slices (1: never split), as far as the depth allows.
    Fixed(usize),
}

/// Workgroups a split aims for.
pub const TARGET: usize = 128;
/// The fewest 16-deep steps of the depth per slice, where the split is chosen.
pub const MIN_STEPS: usize = 16;
/// The most slices.
pub const MAX_SPLITS: usize = 64;

impl SplitK {
    /// Slices for a GEMM of `tiles` output tiles (all images and groups) and `depth` steps.
    pub(crate) fn splits(self, software: bool, tiles: usize, depth: usize) -> usize {
        self.policy(forced(), software, tiles, depth)
    }

    /// [`SplitK::splits`] with `GRADCAM_WGPU_SPLITS` given (`forced`).
    fn policy(self, forced: Option<usize>, software: bool, tiles: usize, depth: usize) -> usize {
        let steps = depth.div_ceil(16).max(1);
        let n = match (self, forced) {
            (SplitK::Fixed(n), _) | (SplitK::Auto, Some(n)) => n,
            (SplitK::Auto, None) if software || tiles >= TARGET / 2 => 1,
            (SplitK::Auto, None) => TARGET.div_ceil(tiles.max(1)).min(steps / MIN_STEPS),
        };
        n.clamp(1, MAX_SPLITS).min(steps)
    }
}

/// `GRADCAM_WGPU_SPLITS`, read once.
fn forced() -> Option<usize> {
    static FORCED: OnceLock<Option<usize>> = OnceLock::new();
    *FORCED.get_or_init(|| {
        std::env::var("GRADCAM_WGPU_SPLITS")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}

/// Runs a tiled convolution GEMM `entry` of `conv.wgsl` into `out` (`count` values): in one
/// dispatch when `splits` is 1, else into `splits` partial copies summed by `splitk_sum`.
/// `groups` is the dispatch without the split (its `z`: images × groups); `bias` (when `Some`)
/// is added per channel of `channels`, planes of `plane` values, by the sum (the GEMM adds it
/// itself when unsplit, as `params` says).
#[allow(clippy::too_many_arguments)]
pub(crate) fn dispatch(
    ctx: &Context,
    entry: &'static str,
    mut params: Params,
    inputs: &[&GpuBuffer],
    out: &GpuBuffer,
    groups: [u32; 3],
    splits: usize,
    count: usize,
    plane: usize,
    channels: usize,
    bias: Option<&GpuBuffer>,
) -> Result<()> {
    // The copies must fit one binding, and the split dispatch the grid's z limit.
    let limit = ctx.largest_binding();
    let z_limit = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let splits = if splits * count > limit || groups[2] as usize * splits > z_limit {
        1
    } else {
        splits
    };
    params.f[2] = splits as f32;
    if splits == 1 {
        return ctx.dispatch("conv", entry, params, inputs, out, groups);
    }
    let parts = ctx.alloc(splits * count)?;
    let z = groups[2] * splits as u32;
    ctx.dispatch(
        "conv",
        entry,
        params,
        inputs,
        &parts,
        [groups[0], groups[1], z],
    )?;
    let sum = Params {
        a: [count as u32, splits as u32, plane as u32, channels as u32],
        f: [if bias.is_some() { 1.0 } else { 0.0 }, 0.0, 0.0, 0.0],
        ..Default::default()
    };
    let bias = bias.unwrap_or(&parts);
    ctx.dispatch(
        "conv",
        "splitk_sum",
        sum,
        &[&parts, bias],
        out,
        ctx.grid(count),
    )
}

#[cfg(test)]
mod tests {
    use super::SplitK;

    /// The policy at ResNet-50's batch-1 sizes, `GRADCAM_WGPU_SPLITS` unset.
    #[test]
    fn auto_splits_where_the_tiles_are_few() {
        let auto = |software, tiles, depth| SplitK::Auto.policy(None, software, tiles, depth);
        // 3×3 512ch 7×7: 8 tiles, 288 steps of 16: 16 slices make 128 workgroups.
        assert_eq!(auto(false, 8, 4608), 16);
        // 3×3 256ch 14×14: 16 tiles, 144 steps: 8 slices (18 steps each).
        assert_eq!(auto(false, 16, 2304), 8);
        // 1×1 2048→512 at 7×7: 8 tiles, 128 steps: at most 8 slices of 16 steps.
        assert_eq!(auto(false, 8, 2048), 8);
        // Shallow: 36 steps make 2 slices at most.
        assert_eq!(auto(false, 16, 576), 2);
        // Enough tiles, a software adapter, or no depth to split: one slice.
        assert_eq!(auto(false, 64, 4608), 1);
        assert_eq!(auto(true, 8, 4608), 1);
        assert_eq!(auto(false, 8, 200), 1);
        // Fixed, or forced: as asked, up to one step of 16 per slice and 64 slices.
        assert_eq!(SplitK::Fixed(5).policy(None, true, 1000, 48), 3);
        assert_eq!(SplitK::Fixed(100).policy(None, false, 1, 1 << 20), 64);
        assert_eq!(SplitK::Fixed(0).policy(None, false, 1, 4608), 1);
        assert_eq!(SplitK::Auto.policy(Some(4), true, 1000, 4608), 4);
        assert_eq!(SplitK::Fixed(2).policy(Some(4), false, 8, 4608), 2);
    }
}
