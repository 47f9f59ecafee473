//! 2-D convolution: im2col + GEMM forward, GEMM + col2im backward-data, and the weight and bias
//! gradients. Work is split over images, groups and output columns so that both cores are busy
//! even at batch 1.

use super::{gemm, ranges, Element, Mat, MatMut, SharedMut};
use gradcam_core::Conv2dParams;
use rayon::prelude::*;

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
    let width = g.out_plane();
    let [sh, sw] = g.p.stride;
    let [ph, pw] = g.p.padding;
    let [dh, dw] = g.p.dilation;
    for ci in 0..cc {
        let plane = &mut dx[ci * g.in_plane()..(ci + 1) * g.in_plane()];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let r = (ci * g.kh + ki) * g.kw + kj;
                let row = &cols[r * width..(r + 1) * width];
                for oy in 0..g.oh {
                    let Some(iy) = ConvGeom::src(oy, ki, sh, ph, dh, g.h) else {
                        continue;
                    };
                    for ox in 0..g.ow {
                        if let Some(ix) = ConvGeom::src(ox, kj, sw, pw, dw, g.w) {
                            plane[iy * g.w + ix] += row[oy * g.ow + ox];
                        }
                    }
                }
            }
        }
    }
}

/// `y [n,k,oh,ow] = conv(x, w) + b`.
pub fn forward<T: Element>(x: &[T], w: &[T], b: Option<&[T]>, g: &ConvGeom, y: &mut [T]) {
    let (cg, kg, kk, plane) = (g.cg(), g.kg(), g.kk(), g.out_plane());
    let chunks = ranges(plane, tasks_per_image(g), 64);
    let mut tasks = Vec::with_capacity(g.n * g.p.groups * chunks.len());
    for n in 0..g.n {
        for gi in 0..g.p.groups {
            tasks.extend(chunks.iter().map(|&r| (n, gi, r)));
        }
    }
    let yp = SharedMut(y.as_mut_ptr());
    let y_len = y.len();
    tasks.par_iter().for_each(|&(n, gi, (p0, p1))| {
        let img = &x[n * g.c * g.in_plane()..(n + 1) * g.c * g.in_plane()];
        let width = p1 - p0;
        let local;
        let (bm, boff, brs) = if g.is_pointwise() {
            (img, gi * cg * plane + p0, plane)
        } else {
            let mut cols = vec![T::zero(); cg * kk * width];
            im2col(img, g, gi * cg, cg, p0, p1, &mut cols);
            local = cols;
            (&local[..], 0, width)
        };
        let off = n * g.k * plane + gi * kg * plane + p0;
        assert!(kg == 0 || off + (kg - 1) * plane + width <= y_len);
        let a = Mat::rows(w, gi * kg * cg * kk, cg * kk);
        let bmat = Mat {
            data: bm,
            off: boff,
            rs: brs,
            cs: 1,
        };
        // SAFETY: rows gi·kg..(gi+1)·kg, columns p0..p1 of image n are written by this task
        // alone (tasks partition images × groups × column ranges); the bound is asserted above.
        unsafe {
            T::gemm_raw(
                kg,
                cg * kk,
                width,
                T::one(),
                a.data.as_ptr().add(a.off),
                a.rs as isize,
                1,
                bmat.data.as_ptr().add(bmat.off),
                bmat.rs as isize,
                1,
                T::zero(),
                yp.ptr().add(off),
                plane as isize,
                1,
            );
        }
    });
    if let Some(b) = b {
        y.par_chunks_mut(plane).enumerate().for_each(|(i, row)| {
            let bias = b[i % g.k];
            row.iter_mut().for_each(|v| *v += bias);
        });
    }
}

/// `dx [n,c,h,w]` from `dy [n,k,oh,ow]`.
pub fn backward_data<T: Element>(dy: &[T], w: &[T], g: &ConvGeom, dx: &mut [T]) {
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
    tasks.into_par_iter().for_each(|(n, gi, c0, c1, out)| {
        let cc = c1 - c0;
        let a = Mat::rows_t(w, gi * kg * cg * kk + c0 * kk, cg * kk);
        let b = Mat::rows(dy, n * g.k * oplane + gi * kg * oplane, oplane);
        if g.is_pointwise() {
            gemm(
                cc,
                kg,
                oplane,
                a,
                b,
                T::zero(),
                MatMut::rows(out, 0, oplane),
            );
        } else {
            let mut cols = vec![T::zero(); cc * kk * oplane];
            gemm(
                cc * kk,
                kg,
                oplane,
                a,
                b,
                T::zero(),
                MatMut::rows(&mut cols, 0, oplane),
            );
            out.iter_mut().for_each(|v| *v = T::zero());
            col2im(&cols, g, cc, out);
        }
    });
}

/// Partial sums of the weight gradient: a fixed number of image groups, whatever the thread
/// count, so the result's bits do not depend on it (training reproduces exactly).
const WEIGHT_GRAD_GROUPS: usize = 8;

/// `dw [k,c/groups,kh,kw]`, summed over the batch: images in [`WEIGHT_GRAD_GROUPS`] fixed
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
