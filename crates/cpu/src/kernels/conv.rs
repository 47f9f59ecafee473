//! 2-D convolution: im2col + GEMM forward (or the direct convolution of [`direct`] where it
//! applies), GEMM + col2im backward-data, and the weight and bias gradients. Work is split over images, groups and output columns so that both cores are busy
//! even at batch 1.

use super::packed::{self, pack_rows, Pack, Strided};
use super::{direct, winograd};
use super::{gemm, ranges, Element, Mat, MatMut, SharedMut};
use gradcam_core::Conv2dParams;
use rayon::prelude::*;
use subsampled::Subsampled;

/// Geometry of one convolution, derived once from the checked shapes.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Filters (output channels).
    pub k: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Parameters.
    pub p: Conv2dParams,
}

impl ConvGeom {
    /// Geometry from input dims, weight dims and parameters (already checked).
    pub fn new(x: [usize; 4], wt: [usize; 4], out: [usize; 4], p: Conv2dParams) -> Self {
        ConvGeom {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            k: wt[0],
            kh: wt[2],
            kw: wt[3],
            oh: out[2],
            ow: out[3],
            p,
        }
    }
    fn cg(&self) -> usize {
        self.c / self.p.groups
    }
    fn kg(&self) -> usize {
        self.k / self.p.groups
    }
    fn kk(&self) -> usize {
        self.kh * self.kw
    }
    fn out_plane(&self) -> usize {
        self.oh * self.ow
    }
    fn in_plane(&self) -> usize {
        self.h * self.w
    }
    /// A 1×1, stride-1, unpadded convolution is a plain GEMM on the input.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.p.stride == [1, 1] && self.p.padding == [0, 0]
    }
    /// Input coordinate of output `o` and kernel tap `t` along one axis, if inside.
    #[inline]
    fn src(
        o: usize,
        t: usize,
        stride: usize,
        pad: usize,
        dil: usize,
        size: usize,
    ) -> Option<usize> {
        let v = (o * stride + t * dil) as isize - pad as isize;
        (v >= 0 && (v as usize) < size).then_some(v as usize)
    }
}

fn tasks_per_image(g: &ConvGeom) -> usize {
    let threads = rayon::current_num_threads();
    (2 * threads).div_ceil(g.n * g.p.groups).max(1)
}

/// Unfolds channels `c0..c0+cc` of one image into `cols [cc·kh·kw, p1−p0]` for output columns
/// `p0..p1`.
fn im2col<T: Element>(
    x: &[T],
    g: &ConvGeom,
    c0: usize,
    cc: usize,
    p0: usize,
    p1: usize,
    cols: &mut [T],
) {
    let width = p1 - p0;
    let [sh, sw] = g.p.stride;
    let [ph, pw] = g.p.padding;
    let [dh, dw] = g.p.dilation;
    for ci in 0..cc {
        let plane = &x[(c0 + ci) * g.in_plane()..(c0 + ci + 1) * g.in_plane()];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let r = (ci * g.kh + ki) * g.kw + kj;
                let row = &mut cols[r * width..(r + 1) * width];
                for (slot, pp) in row.iter_mut().zip(p0..p1) {
                    let (oy, ox) = (pp / g.ow, pp % g.ow);
                    *slot = match (
                        ConvGeom::src(oy, ki, sh, ph, dh, g.h),
                        ConvGeom::src(ox, kj, sw, pw, dw, g.w),
                    ) {
                        (Some(iy), Some(ix)) => plane[iy * g.w + ix],
                        _ => T::zero(),
                    };
                }
            }
        }
    }
}

/// Folds `cols [cc·kh·kw, oh·ow]` back onto `cc` channel planes, accumulating.
fn col2im<T: Element>(cols: &[T], g: &ConvGeom, cc: usize, dx: &mut [T]) {
    if g.in_plane() == 0 {
        return;
    }
    let rows = g.kk() * g.out_plane();
    for (ci, plane) in dx.chunks_mut(g.in_plane()).take(cc).enumerate() {
        col2im_rows(&cols[ci * rows..(ci + 1) * rows], g, (0, g.oh), 0, plane);
    }
}

/// [`col2im`] of one channel's columns for output rows `oy0..oy1` (`cols [kh·kw, (oy1 − oy0)·ow]`)
/// onto rows `iy0..` of its plane (`part`, whole rows), accumulating. Each value of `part`
/// takes its terms in the order it takes them from the whole plane's fold, so a plane folded in
/// parts has the same bits (and so does one folded band by band from the last output rows up:
/// a value's taps reach it from descending output rows).
fn col2im_rows<T: Element>(
    cols: &[T],
    g: &ConvGeom,
    (oy0, oy1): (usize, usize),
    iy0: usize,
    part: &mut [T],
) {
    let width = (oy1 - oy0) * g.ow;
    let [sh, sw] = g.p.stride;
    let [ph, pw] = g.p.padding;
    let [dh, dw] = g.p.dilation;
    debug_assert!(
        g.w > 0 && part.len().is_multiple_of(g.w),
        "a part of whole rows"
    );
    let iy1 = iy0 + part.len() / g.w;
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let row = &cols[(ki * g.kw + kj) * width..][..width];
            // ix = ox·sw + kj·dw − pw lies in 0..w for ox in lo..hi.
            let shift = (kj * dw) as isize - pw as isize;
            let lo = ((-shift).max(0) as usize).div_ceil(sw);
            let hi = ((g.w as isize - shift).max(0) as usize)
                .div_ceil(sw)
                .min(g.ow);
            if lo >= hi {
                continue;
            }
            for oy in oy0..oy1 {
                let Some(iy) =
                    ConvGeom::src(oy, ki, sh, ph, dh, g.h).filter(|iy| (iy0..iy1).contains(iy))
                else {
                    continue;
                };
                let at = (oy - oy0) * g.ow;
                let src = &row[at + lo..at + hi];
                let first = (lo * sw) as isize + shift;
                let dst = part[(iy - iy0) * g.w..(iy - iy0 + 1) * g.w][first as usize..]
                    .iter_mut()
                    .step_by(sw);
                dst.zip(src).for_each(|(d, &v)| *d += v);
            }
        }
    }
}

/// Row `(ci, ki, kj)` of one image's im2col matrix, columns `p0..p0 + out.len()`.
fn im2col_row<T: Element>(
    plane: &[T],
    g: &ConvGeom,
    ki: usize,
    kj: usize,
    p0: usize,
    out: &mut [T],
) {
    let [sh, sw] = g.p.stride;
    let [ph, pw] = g.p.padding;
    let [dh, dw] = g.p.dilation;
    let (mut oy, mut ox) = (p0 / g.ow, p0 % g.ow);
    let shift = (kj * dw) as isize - pw as isize;
    let mut at = 0;
    while at < out.len() {
        let seg = (g.ow - ox).min(out.len() - at);
        let dst = &mut out[at..at + seg];
        match ConvGeom::src(oy, ki, sh, ph, dh, g.h) {
            None => dst.fill(T::zero()),
            Some(iy) => {
                let row = &plane[iy * g.w..(iy + 1) * g.w];
                if sw == 1 {
                    // ix = ox + t + shift must lie in 0..w.
                    let first = ox as isize + shift;
                    let lo = (-first).clamp(0, seg as isize) as usize;
                    let hi = (g.w as isize - first).clamp(lo as isize, seg as isize) as usize;
                    dst[..lo].fill(T::zero());
                    if hi > lo {
                        let from = (first + lo as isize) as usize;
                        dst[lo..hi].copy_from_slice(&row[from..from + (hi - lo)]);
                    }
                    dst[hi..].fill(T::zero());
                } else {
                    // ix = first + t·sw must lie in 0..w: t in lo..hi.
                    let first = (ox * sw) as isize + shift;
                    let (s, w) = (sw as isize, g.w as isize);
                    let lo = ((-first).max(0) + s - 1) / s;
                    let hi = ((w - first).max(0) + s - 1) / s;
                    let (lo, hi) = (lo.min(seg as isize) as usize, hi.min(seg as isize) as usize);
                    let hi = hi.max(lo);
                    dst[..lo].fill(T::zero());
                    if hi > lo {
                        let from = (first + (lo * sw) as isize) as usize;
                        let src = row[from..].iter().step_by(sw);
                        dst[lo..hi].iter_mut().zip(src).for_each(|(d, &v)| *d = v);
                    }
                    dst[hi..].fill(T::zero());
                }
            }
        }
        at += seg;
        ox = 0;
        oy += 1;
    }
}

/// One image's im2col matrix for channels `c0..`, output columns from `p0`, packed on demand.
struct Im2col<'a, T> {
    img: &'a [T],
    g: &'a ConvGeom,
    c0: usize,
    p0: usize,
}

impl<T: Element> Pack<T> for Im2col<'_, T> {
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, dst: &mut [T]) {
        let (g, kk, ip) = (self.g, self.g.kk(), self.g.in_plane());
        pack_rows(k0, kc, j0, nc, nr, dst, |r, j0, out| {
            let (ci, t) = (r / kk, r % kk);
            let plane = &self.img[(self.c0 + ci) * ip..(self.c0 + ci + 1) * ip];
            im2col_row(plane, g, t / g.kw, t % g.kw, self.p0 + j0, out);
        });
    }
}

/// Contiguous index ranges.
type Ranges = Vec<(usize, usize)>;

/// Up to `parts` ranges of `n` columns (no more than one per 64), each but the last a whole
/// number of `nr`-column panels, the last taking the rest (a 784-position plane in four 196-column parts
/// left 4 columns of each to a panel of their own; in 16-column panels it is now 192, 192, 192
/// and 208).
fn column_ranges(n: usize, parts: usize, nr: usize) -> Ranges {
    let nr = nr.max(1);
    let parts = parts.min(n.div_ceil(64)).max(1);
    // Whole panels per part, rounded down, so that no part is left a sliver.
    let step = (n / parts / nr).max(1) * nr;
    let k = parts.min(n.div_ceil(step));
    (0..k)
        .map(|i| (i * step, if i + 1 == k { n } else { (i + 1) * step }))
        .collect()
}

/// How one image-and-group's GEMM (`kg` rows × `plane` columns) is split into tasks: by
/// columns when there are many (each task packs its own columns), else by rows (each task
/// reads only its rows of the weights: at 7×7 the weights dominate).
fn splits<T>(g: &ConvGeom, kernel: Option<packed::Kernel<T>>) -> (Ranges, Ranges) {
    let parts = tasks_per_image(g);
    let plane = g.out_plane();
    let Some(kernel) = kernel else {
        return (ranges(plane, parts, 64), vec![(0, g.kg())]);
    };
    if parts == 1 {
        (vec![(0, plane)], vec![(0, g.kg())])
    } else if plane >= 128 * parts {
        (column_ranges(plane, parts, kernel.nr), vec![(0, g.kg())])
    } else {
        // One task per thread: each packs the whole plane, so more would pack it again.
        let threads = rayon::current_num_threads();
        let rows = threads.div_ceil(g.n * g.p.groups).max(1);
        (vec![(0, plane)], ranges(g.kg(), rows, packed::MR))
    }
}

/// `y [n,k,oh,ow] = conv(x, w) + b`: B is packed from the image directly (im2col on the fly),
/// or [`direct::forward`] runs where [`Plan::direct_kernel`] says (its weight packed per call
/// here; the backend keeps it).
/// With a micro-kernel the bias is added to each tile's sums as they are stored; the reference
/// path adds it afterwards (its rounding, kept).
pub fn forward<T: Element>(
    plan: Plan<T>,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    g: &ConvGeom,
    y: &mut [T],
) {
    forward_clamped(plan, x, w, b, None, g, y)
}

/// [`forward`] followed by `clamp(·, lo, hi)`: in the micro-kernel's store (the reference path:
/// a pass after the bias), so a convolution and its rectifier are one pass.
pub fn forward_clamped<T: Element>(
    plan: Plan<T>,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    clamp: Option<(T, T)>,
    g: &ConvGeom,
    y: &mut [T],
) {
    forward_fused(plan, x, w, b, None, clamp, g, y)
}

/// [`forward`], plus `residual` (laid out as `y`), then `clamp(·, lo, hi)`: in the
/// micro-kernel's store (the reference path: a pass after the bias), so a residual block's
/// last convolution, its sum and its rectifier are one pass. The bits of the three ops.
#[allow(clippy::too_many_arguments)]
pub fn forward_fused<T: Element>(
    plan: Plan<T>,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    residual: Option<&[T]>,
    clamp: Option<(T, T)>,
    g: &ConvGeom,
    y: &mut [T],
) {
    assert!(
        residual.is_none_or(|r| r.len() >= y.len()),
        "residual too short"
    );
    if let Some(k) = plan.direct_kernel(g) {
        // On a cache line, as the backend's kept copy is (`HostBuf`).
        let depth = g.c * g.kk();
        let mut wt = packed::buffer::take::<T>(
            packed::buffer::Slot::Weight,
            g.k.div_ceil(k.nr) * depth * k.nr,
        );
        direct::pack_weight_into(w, g.k, depth, k.nr, &mut wt);
        return direct::forward(k, x, &wt, b, residual, clamp, g, y);
    }
    let (cg, kg, kk, plane) = (g.cg(), g.kg(), g.kk(), g.out_plane());
    let fused_bias = b.filter(|_| plan.kernel.is_some());
    let late_bias = b.filter(|_| plan.kernel.is_none());
    let (cols, rows) = splits(g, plan.kernel);
    let mut tasks = Vec::with_capacity(g.n * g.p.groups * cols.len() * rows.len());
    for n in 0..g.n {
        for gi in 0..g.p.groups {
            for &c in &cols {
                tasks.extend(rows.iter().map(|&r| (n, gi, c, r)));
            }
        }
    }
    let kernel = plan.kernel;
    let yp = SharedMut(y.as_mut_ptr());
    let y_len = y.len();
    assert!(w.len() >= g.k * cg * kk, "conv weight too short");
    tasks.par_iter().for_each(|&(n, gi, (p0, p1), (r0, r1))| {
        let img = &x[n * g.c * g.in_plane()..(n + 1) * g.c * g.in_plane()];
        let width = p1 - p0;
        let off = n * g.k * plane + (gi * kg + r0) * plane + p0;
        assert!(r1 == r0 || off + (r1 - r0 - 1) * plane + width <= y_len);
        // SAFETY: rows gi·kg + r0..r1, columns p0..p1 of image n are written by this task
        // alone (tasks partition images × groups × column ranges × row ranges); the output
        // bound is asserted above and the weight rows lie within `w` (asserted before).
        unsafe {
            let out = yp.ptr().add(off);
            let a = w.as_ptr().add((gi * kg + r0) * cg * kk);
            let (m, k) = (r1 - r0, cg * kk);
            // B: the image itself for a 1×1 stride-1 convolution, its subsampled planes for
            // a strided one, else its im2col columns.
            let (strided, subsampled, columns);
            let pack: &dyn Pack<T> = if g.is_pointwise() {
                strided = Strided {
                    data: img,
                    off: gi * cg * plane + p0,
                    rs: plane,
                    cs: 1,
                };
                &strided
            } else if let Some(s) = Subsampled::new(img, g, gi * cg, p0, width) {
                subsampled = s;
                &subsampled
            } else {
                columns = Im2col {
                    img,
                    g,
                    c0: gi * cg,
                    p0,
                };
                &columns
            };
            // With a micro-kernel, the bias and the clamp are its store's (no pass of their own).
            let epi = packed::Epilogue {
                accumulate: false,
                bias: fused_bias.map(|b| &b[gi * kg + r0..gi * kg + r1]),
                clamp: clamp.filter(|_| kernel.is_some()),
                // Laid out as y: the same offset (its length asserted at the start).
                residual: residual
                    .filter(|_| kernel.is_some())
                    .map(|r| r.as_ptr().add(off)),
            };
            let kc = direct::depth_block(g);
            packed::gemm_with(kernel, m, k, width, a, k, 1, pack, epi, out, plane, kc);
        }
    });
    let late = plan.kernel.is_none();
    if late_bias.is_some() || (late && (clamp.is_some() || residual.is_some())) {
        y.par_chunks_mut(plane).enumerate().for_each(|(i, row)| {
            if let Some(b) = late_bias {
                let bias = b[i % g.k];
                row.iter_mut().for_each(|v| *v += bias);
            }
            if let Some(r) = residual {
                let r = &r[i * plane..(i + 1) * plane];
                row.iter_mut().zip(r).for_each(|(v, &r)| *v += r);
            }
            if let Some((lo, hi)) = clamp {
                row.iter_mut().for_each(|v| *v = v.max(lo).min(hi));
            }
        });
    }
}

/// The flipped, transposed weight `w' [c, k/groups, kh, kw]` with
/// `w'[g·cg + c][j][kh−1−u][kw−1−v] = w[g·kg + j][c][u][v]`: a stride-1 convolution's
/// backward-data is the forward convolution of `dy` with it.
fn flip_transpose<T: Element>(w: &[T], g: &ConvGeom, out: &mut [T]) {
    let (cg, kg, kk) = (g.cg(), g.kg(), g.kk());
    out.par_chunks_mut(kg * kk)
        .enumerate()
        .for_each(|(row, dst)| {
            let (gi, c) = (row / cg, row % cg);
            for j in 0..kg {
                let src = &w[((gi * kg + j) * cg + c) * kk..][..kk];
                for (t, &v) in src.iter().enumerate() {
                    dst[j * kk + kk - 1 - t] = v;
                }
            }
        });
}

/// The geometry of the forward convolution that computes a stride-1 convolution's
/// backward-data, if the padding allows it (`pad ≤ dilation·(kernel − 1)` on both axes).
pub fn transposed_geom(g: &ConvGeom) -> Option<ConvGeom> {
    let [dh, dw] = g.p.dilation;
    let ph = (dh * (g.kh - 1)).checked_sub(g.p.padding[0])?;
    let pw = (dw * (g.kw - 1)).checked_sub(g.p.padding[1])?;
    (g.p.stride == [1, 1] && g.p.groups < g.c).then_some(ConvGeom {
        n: g.n,
        c: g.k,
        h: g.oh,
        w: g.ow,
        k: g.c,
        kh: g.kh,
        kw: g.kw,
        oh: g.h,
        ow: g.w,
        p: Conv2dParams {
            stride: [1, 1],
            padding: [ph, pw],
            dilation: g.p.dilation,
            groups: g.p.groups,
        },
    })
}

/// How the convolutions run: the GEMM micro-kernel, and whether a stride-1 backward-data may
/// run as a forward convolution with the flipped weight.
#[derive(Clone, Copy)]
pub struct Plan<T> {
    /// The packed GEMM's micro-kernel (`None`: B packed whole and `matrixmultiply`).
    pub kernel: Option<packed::Kernel<T>>,
    /// Stride-1 backward-data as a forward convolution (else always GEMM + col2im).
    pub flip: bool,
    /// 3×3 stride-1 convolutions by Winograd where [`winograd::choose`] picks a variant.
    pub winograd: bool,
    /// Convolutions with one group gathered from the padded image ([`direct`]) where
    /// [`direct::applies`].
    pub direct: bool,
}

impl<T: Element> Plan<T> {
    /// The fastest: this CPU's micro-kernel, flipped backward-data.
    pub fn fast() -> Self {
        Plan {
            kernel: T::packed_kernel(),
            flip: true,
            winograd: true,
            direct: true,
        }
    }
    /// The reference: im2col + `matrixmultiply` forward, GEMM + col2im backward-data, whose
    /// results do not change when the fast kernels do (the demo model's training reproduces
    /// its committed weights bit for bit with it).
    pub fn reference() -> Self {
        Plan {
            kernel: None,
            flip: false,
            winograd: false,
            direct: false,
        }
    }
    /// Whether [`backward_data`] runs as a forward convolution with the flipped weight.
    pub fn flips(&self, g: &ConvGeom) -> bool {
        self.flip && transposed_geom(g).is_some() && !g.is_pointwise()
    }
    /// The micro-kernel a forward convolution of geometry `g` runs [`direct::forward`] with,
    /// if it runs by it.
    pub fn direct_kernel(&self, g: &ConvGeom) -> Option<packed::Kernel<T>> {
        self.kernel
            .filter(|_| self.direct && direct::applies(self.kernel, g))
    }
    /// The Winograd variant a forward convolution of geometry `g` runs by, if any (with the
    /// weight that variant's `transform_weight` gives); `relaxed` as [`winograd::choose`]
    /// says (a stride-1 backward-data with the flipped weight, or a fast or requested forward).
    pub fn winograd(&self, g: &ConvGeom, relaxed: bool) -> Option<winograd::Variant> {
        winograd::choose(g, relaxed).filter(|_| self.winograd)
    }
}

/// The weight rearranged for [`backward_data`]: flipped and transposed when [`Plan::flips`], else
/// each group's `[kg, cg·kh·kw]` block transposed to `[cg·kh·kw, kg]` (so the GEMM reads `wᵀ`
/// by rows). Depends only on `w` and the geometry: the backend keeps it while `w` lives.
pub fn prepare_backward<T: Element>(plan: Plan<T>, w: &[T], g: &ConvGeom) -> Vec<T> {
    let mut out = vec![T::zero(); w.len()];
    prepare_backward_into(plan, w, g, &mut out);
    out
}

/// [`prepare_backward`] into `out` (as long as `w`; every value written, whatever it held).
pub fn prepare_backward_into<T: Element>(plan: Plan<T>, w: &[T], g: &ConvGeom, out: &mut [T]) {
    assert_eq!(out.len(), w.len(), "rearranged weight of another length");
    if plan.flips(g) {
        return flip_transpose(w, g, out);
    }
    let (cg, kg, kk) = (g.cg(), g.kg(), g.kk());
    let block = kg * cg * kk;
    let depth = cg * kk;
    // Per group, `[kg][depth]` to `[depth][kg]` in blocks of 64 filters: each block's rows
    // (64 lines) stay in L1 while its columns are written as contiguous runs. Row by row, each
    // store went to a line of its own (ResNet-50's first call spent 99 ms here).
    let total = out.len();
    let transpose = |src: &[T], dst: SharedMut<T>, j0: usize, j1: usize| {
        debug_assert!(j1 <= kg && depth * kg <= total);
        for r in 0..depth {
            for j in j0..j1 {
                // SAFETY: `dst` points to a group's `depth·kg` values of `out`, of which the
                // caller writes columns j0..j1 of each row alone.
                unsafe { *dst.ptr().add(r * kg + j) = src[j * depth + r] };
            }
        }
    };
    if g.p.groups == 1 {
        // One group: its blocks of filters in parallel, each writing its own columns.
        let blocks: Vec<(usize, usize)> =
            (0..kg).step_by(64).map(|j| (j, (j + 64).min(kg))).collect();
        let dp = SharedMut(out.as_mut_ptr());
        blocks
            .par_iter()
            .for_each(|&(j0, j1)| transpose(w, dp, j0, j1));
    } else {
        out.par_chunks_mut(block)
            .zip(w.par_chunks(block))
            .for_each(|(dst, src)| transpose(src, SharedMut(dst.as_mut_ptr()), 0, kg));
    }
}

/// `dx [n,c,h,w]` from `dy [n,k,oh,ow]` and the weight as [`prepare_backward`] gives it, plus
/// `residual` (laid out as `dx`: a gradient already summed for the same input) when given —
/// `residual + dx`, the bits of the sum after the product. When [`Plan::flips`]: the forward
/// convolution of `dy` with the flipped, transposed weight (as [`forward_fused`] computes it,
/// no col2im). Else `wᵀ · dy` through the packed GEMM into columns, folded back with col2im
/// (1×1 stride-1: straight into `dx`, the residual in the GEMM's store).
pub fn backward_data<T: Element>(
    plan: Plan<T>,
    dy: &[T],
    prepared: &[T],
    g: &ConvGeom,
    residual: Option<&[T]>,
    dx: &mut [T],
) {
    assert!(
        residual.is_none_or(|r| r.len() >= g.n * g.c * g.in_plane()),
        "residual too short"
    );
    if let (Some(t), true) = (transposed_geom(g), plan.flips(g)) {
        return forward_fused(plan, dy, prepared, None, residual, None, &t, dx);
    }
    if g.is_pointwise() {
        return backward_data_pointwise(plan, dy, prepared, g, residual, dx);
    }
    backward_data_columns(plan, dy, prepared, g, dx);
    if let Some(r) = residual {
        super::layout::add_in_place(dx, r, None);
    }
}

/// [`backward_data`] through columns and col2im (strided, padded or dilated convolutions).
fn backward_data_columns<T: Element>(
    plan: Plan<T>,
    dy: &[T],
    prepared: &[T],
    g: &ConvGeom,
    dx: &mut [T],
) {
    let per_group = ranges(g.cg(), tasks_per_image(g), 1);
    let threads = rayon::current_num_threads();
    if g.n * g.p.groups * per_group.len() < 2 * threads && g.out_plane() >= 128 * threads {
        let band = BAND_BYTES / std::mem::size_of::<T>() / (g.cg() * g.kk() * g.ow).max(1);
        return backward_data_banded(plan, dy, prepared, g, dx, band.max(1));
    }
    backward_data_by_channels(plan, dy, prepared, g, dx);
}

/// [`backward_data_columns`] by tasks of (image, group, channel range), each with its whole
/// column matrix.
fn backward_data_by_channels<T: Element>(
    plan: Plan<T>,
    dy: &[T],
    prepared: &[T],
    g: &ConvGeom,
    dx: &mut [T],
) {
    let (cg, kg, kk, oplane, iplane) = (g.cg(), g.kg(), g.kk(), g.out_plane(), g.in_plane());
    let per_group = ranges(cg, tasks_per_image(g), 1);
    // Tasks in dx order: (image, group, channel range); each owns a contiguous slice of dx.
    let mut tasks = Vec::new();
    let mut rest: &mut [T] = dx;
    for n in 0..g.n {
        for gi in 0..g.p.groups {
            for &(c0, c1) in &per_group {
                let (head, tail) = rest.split_at_mut((c1 - c0) * iplane);
                rest = tail;
                tasks.push((n, gi, c0, c1, head));
            }
        }
    }
    assert!(prepared.len() >= g.k * cg * kk && dy.len() >= g.n * g.k * oplane);
    tasks.into_par_iter().for_each(|(n, gi, c0, c1, out)| {
        let cc = c1 - c0;
        // A = wᵀ by rows: element (r, j) = prepared[gi·cg·kk·kg + (c0·kk + r)·kg + j].
        let a = &prepared[gi * kg * cg * kk + c0 * kk * kg..];
        // Every element is written by the GEMM (no accumulation): a reused buffer.
        let mut cols = packed::buffer::take::<T>(packed::buffer::Slot::Tiles, cc * kk * oplane);
        // SAFETY: A's cc·kk rows of kg lie in `prepared` (asserted); `cols` (cc·kk × oplane)
        // is this task's own.
        unsafe {
            wt_dy(
                plan,
                g,
                dy,
                a,
                cc * kk,
                (n, gi),
                (0, oplane),
                cols.as_mut_ptr(),
                oplane,
                None,
            )
        };
        out.iter_mut().for_each(|v| *v = T::zero());
        col2im(&cols, g, cc, out);
    });
}

/// The GEMM of every backward-data: `out (m × (p1 − p0), rows ldc apart) = A · dy (+ residual,
/// laid out as out)`, A's `m` rows of `kg` values from `a` (the prepared `wᵀ`), `dy`'s columns
/// p0..p1 of image `n`, group `gi` (packed by the GEMM).
///
/// # Safety
/// `a` holds `m·kg` values; `out`'s `m` rows of `p1 − p0` values, `ldc` apart, are inside one
/// allocation that nothing else touches meanwhile; the residual's, laid out alike, are inside
/// its allocation, which nothing writes meanwhile; `dy` holds image `n`'s gradient.
#[allow(clippy::too_many_arguments)]
unsafe fn wt_dy<T: Element>(
    plan: Plan<T>,
    g: &ConvGeom,
    dy: &[T],
    a: &[T],
    m: usize,
    (n, gi): (usize, usize),
    (p0, p1): (usize, usize),
    out: *mut T,
    ldc: usize,
    residual: Option<*const T>,
) {
    let (kg, plane) = (g.kg(), g.out_plane());
    assert!(a.len() >= m * kg, "backward weight too short");
    let pack = Strided {
        data: dy,
        off: (n * g.k + gi * kg) * plane + p0,
        rs: plane,
        cs: 1,
    };
    let epi = packed::Epilogue {
        residual,
        ..packed::Epilogue::plain(false)
    };
    packed::gemm_with(
        plan.kernel,
        m,
        kg,
        p1 - p0,
        a.as_ptr(),
        kg,
        1,
        &pack,
        epi,
        out,
        ldc,
        packed::KC,
    )
}

/// The column matrix's bytes per band of output rows in [`backward_data_banded`] (at least
/// one row): about a quarter of a core's L2.
const BAND_BYTES: usize = 512 << 10;

/// [`backward_data`] through columns for an input of few channels (an RGB stem at batch 1),
/// without the whole column matrix: each task takes a range of `dx`'s rows (per image and
/// group; as many ranges as threads) and the output rows whose columns reach them, in bands of
/// [`BAND_BYTES`] from the last band up — `wᵀ · dy` for the band's positions, then folded into
/// the task's rows while it is in L2. The whole matrix (ResNet's stem: 7.4 MB) went to memory
/// and back. The same bits as [`col2im`] over the whole matrix: each value of `dx` gets one
/// column value per tap, from the output row that tap reaches it from, and the taps' rows lie
/// in descending output rows, so bands taken from the last up, each folded tap by tap, add
/// them in the taps' order (tested). Output rows next to a range's edge are computed by both
/// tasks that reach them (the same values). `band`: output rows per band (at least one).
fn backward_data_banded<T: Element>(
    plan: Plan<T>,
    dy: &[T],
    prepared: &[T],
    g: &ConvGeom,
    dx: &mut [T],
    band: usize,
) {
    let (cg, kg, kk, oplane, iplane) = (g.cg(), g.kg(), g.kk(), g.out_plane(), g.in_plane());
    assert!(prepared.len() >= g.k * cg * kk && dy.len() >= g.n * g.k * oplane);
    assert!(dx.len() >= g.n * g.c * iplane, "dx too short");
    if iplane == 0 || cg == 0 {
        return;
    }
    let [sh, ph, dh] = [g.p.stride[0], g.p.padding[0], g.p.dilation[0]];
    let parts = rayon::current_num_threads().clamp(1, g.h);
    let rows = g.h.div_ceil(parts);
    let band = band.max(1);
    // Tasks: (image, group, first row, rows of each channel's plane).
    let mut tasks: Vec<(usize, usize, usize, Vec<&mut [T]>)> = Vec::new();
    for (n, image) in dx[..g.n * g.c * iplane]
        .chunks_mut(g.c * iplane)
        .enumerate()
    {
        for (gi, group) in image.chunks_mut(cg * iplane).enumerate() {
            let first = tasks.len();
            for r in 0..g.h.div_ceil(rows) {
                tasks.push((n, gi, r * rows, Vec::new()));
            }
            for plane in group.chunks_mut(iplane) {
                for (r, part) in plane.chunks_mut(rows * g.w).enumerate() {
                    tasks[first + r].3.push(part);
                }
            }
        }
    }
    tasks.into_par_iter().for_each(|(n, gi, iy0, mut out)| {
        let iy1 = (iy0 + rows).min(g.h);
        // Output rows whose taps reach rows iy0..iy1: oy·sh + ki·dh − ph in that range.
        let oy0 = (iy0 + ph).saturating_sub((g.kh - 1) * dh).div_ceil(sh);
        let oy1 = ((iy1 - 1 + ph) / sh + 1).min(g.oh);
        out.iter_mut()
            .for_each(|p| p.iter_mut().for_each(|v| *v = T::zero()));
        if oy0 >= oy1 {
            return;
        }
        let a = &prepared[gi * kg * cg * kk..];
        let mut cols = packed::buffer::take::<T>(
            packed::buffer::Slot::Tiles,
            cg * kk * band.min(oy1 - oy0) * g.ow,
        );
        let mut top = oy1;
        while top > oy0 {
            let b0 = top.saturating_sub(band).max(oy0);
            let width = (top - b0) * g.ow;
            // SAFETY: A's cg·kk rows of kg lie in `prepared` (asserted); `cols` holds cg·kk
            // rows of `width` and is this task's own.
            unsafe {
                wt_dy(
                    plan,
                    g,
                    dy,
                    a,
                    cg * kk,
                    (n, gi),
                    (b0 * g.ow, top * g.ow),
                    cols.as_mut_ptr(),
                    width,
                    None,
                )
            };
            for (ci, part) in out.iter_mut().enumerate() {
                let cols = &cols[ci * kk * width..(ci + 1) * kk * width];
                col2im_rows(cols, g, (b0, top), iy0, part);
            }
            top = b0;
        }
    });
}

/// [`backward_data`] of a 1×1 stride-1 convolution: `dx = wᵀ · dy` straight into `dx`, split
/// as the forward splits its GEMM: by positions on large planes, so that each task packs only
/// its own columns of `dy` (split by channels, every task packed all of them: with 16-column
/// panels, which are always packed, ResNet-50's 64-channel layers ran at 87–92 GFLOP/s
/// instead of 140), else by channels, one task per thread.
fn backward_data_pointwise<T: Element>(
    plan: Plan<T>,
    dy: &[T],
    prepared: &[T],
    g: &ConvGeom,
    residual: Option<&[T]>,
    dx: &mut [T],
) {
    let (cg, kg, plane) = (g.cg(), g.kg(), g.out_plane());
    let parts = tasks_per_image(g);
    let (cols, rows) = if plane >= 128 * parts {
        let nr = plan.kernel.map_or(64, |k| k.nr);
        (column_ranges(plane, parts, nr), vec![(0, cg)])
    } else {
        let threads = rayon::current_num_threads().div_ceil(g.n * g.p.groups);
        (vec![(0, plane)], ranges(cg, threads, packed::MR))
    };
    let mut tasks = Vec::with_capacity(g.n * g.p.groups * cols.len() * rows.len());
    for n in 0..g.n {
        for gi in 0..g.p.groups {
            for &c in &cols {
                tasks.extend(rows.iter().map(|&r| (n, gi, c, r)));
            }
        }
    }
    assert!(prepared.len() >= g.k * cg && dy.len() >= g.n * g.k * plane);
    assert!(dx.len() >= g.n * g.c * plane, "dx too short");
    let dxp = SharedMut(dx.as_mut_ptr());
    tasks.par_iter().for_each(|&(n, gi, (p0, p1), (r0, r1))| {
        // A = wᵀ by rows: element (r, j) = prepared[gi·cg·kg + r·kg + j].
        let a = &prepared[gi * kg * cg + r0 * kg..];
        // SAFETY: A's rows r0..r1 of kg lie in `prepared` (asserted); this task alone writes
        // columns p0..p1 of image n's channels gi·cg + r0..r1 (tasks partition images ×
        // groups × column ranges × channel ranges), rows `plane` apart, inside `dx`
        // (asserted), and reads the residual's same elements (its length asserted by
        // `backward_data`).
        unsafe {
            let at = (n * g.c + gi * cg + r0) * plane + p0;
            let res = residual.map(|r| r.as_ptr().add(at));
            wt_dy(
                plan,
                g,
                dy,
                a,
                r1 - r0,
                (n, gi),
                (p0, p1),
                dxp.ptr().add(at),
                plane,
                res,
            )
        };
    });
}

/// Partial sums of the weight gradient: a fixed number of image groups, whatever the thread
/// count, so the result's bits do not depend on it (training reproduces exactly).
const WEIGHT_GRAD_GROUPS: usize = 8;

/// `dw [k,c/groups,kh,kw]`, summed over the batch: images in `WEIGHT_GRAD_GROUPS` fixed
/// groups in parallel, each summed in image order, then the groups summed in order.
pub fn backward_weight<T: Element>(x: &[T], dy: &[T], g: &ConvGeom, dw: &mut [T]) {
    let (cg, kg, kk, oplane) = (g.cg(), g.kg(), g.kk(), g.out_plane());
    let wlen = dw.len();
    let groups = ranges(g.n, WEIGHT_GRAD_GROUPS, 1);
    let parts: Vec<Vec<T>> = groups
        .into_par_iter()
        .map(|(n0, n1)| {
            let mut part = vec![T::zero(); wlen];
            let mut cols = vec![
                T::zero();
                if g.is_pointwise() {
                    0
                } else {
                    cg * kk * oplane
                }
            ];
            for n in n0..n1 {
                let img = &x[n * g.c * g.in_plane()..(n + 1) * g.c * g.in_plane()];
                for gi in 0..g.p.groups {
                    let a = Mat::rows(dy, n * g.k * oplane + gi * kg * oplane, oplane);
                    let b = if g.is_pointwise() {
                        Mat {
                            data: img,
                            off: gi * cg * oplane,
                            rs: 1,
                            cs: oplane,
                        }
                    } else {
                        im2col(img, g, gi * cg, cg, 0, oplane, &mut cols);
                        Mat::rows_t(&cols, 0, oplane)
                    };
                    let c = MatMut::rows(&mut part, gi * kg * cg * kk, cg * kk);
                    gemm(kg, oplane, cg * kk, a, b, T::one(), c);
                }
            }
            part
        })
        .collect();
    dw.iter_mut().for_each(|v| *v = T::zero());
    for part in parts {
        dw.iter_mut().zip(&part).for_each(|(a, p)| *a += *p);
    }
}

/// `db [k]`: `dy` summed over batch and space.
pub fn backward_bias<T: Element>(dy: &[T], n: usize, k: usize, plane: usize, db: &mut [T]) {
    db.par_iter_mut().enumerate().for_each(|(ki, out)| {
        *out = (0..n)
            .map(|ni| {
                dy[(ni * k + ki) * plane..(ni * k + ki + 1) * plane]
                    .iter()
                    .copied()
                    .sum::<T>()
            })
            .sum();
    });
}

mod subsampled;
#[cfg(test)]
mod tests;
