//! Winograd F(2×2, 3×3) for 3×3, stride-1, undilated, ungrouped convolutions: each 2×2 output
//! tile from a 4×4 input tile with 16 multiplications per channel pair instead of 36. The 16
//! products of transformed tiles are 16 GEMMs (`U[ξ] · V[ξ]`: filters × channels by
//! channels × tiles) through the packed GEMM, in parallel; the transforms run in parallel
//! over channels (input) and filters (output, with the bias and a fused rectifier).
//!
//! Rounding differs from the direct product by the transforms' additions (relative error of a
//! few 1e-7 in f32); the fast CPU plan uses it, the reference plan never.

use super::conv::ConvGeom;
use super::packed::buffer::{self, Slot};
use super::packed::{self, Strided};
use super::{Element, SharedMut};
use rayon::prelude::*;

/// Which Winograd algorithm a convolution runs by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// F(2×2, 3×3), this module.
    F2,
    /// F(4×4, 3×3), [`super::winograd4`].
    F4,
}

/// The Winograd variant worth running for `g`, if any. `relaxed` (a backward-data where
/// [`super::winograd4::pays_backward`], or a forward convolution whose caller accepts F(4×4)'s
/// rounding on a plane its micro-kernel takes it on: [`super::winograd4::pays`]): F(4×4) where
/// [`super::winograd4::worth`] (from 13×13 planes: wherever F(2×2) was worth running in a
/// backward pass, F(4×4) is faster). Otherwise only F(2×2), where [`applies`] (its rounding
/// moves the rectifier masks of later layers less than F(4×4)'s: see
/// [`super::winograd4::worth`]).
pub fn choose(g: &ConvGeom, relaxed: bool) -> Option<Variant> {
    if relaxed && super::winograd4::worth(g) {
        Some(Variant::F4)
    } else if applies(g) {
        Some(Variant::F2)
    } else {
        None
    }
}

/// Whether `g` can run, and is worth running, as Winograd F(2×2, 3×3) in an exact forward
/// pass. Measured per layer (`cargo bench --bench cpu_layers`, docs/PERFORMANCE.md): with 256
/// channels and filters or more it beats the direct GEMM (VGG-16's 512-channel layers
/// 1.3–1.8×, 256 channels at 14×14 1.4×), with fewer its transforms cost more than the
/// multiplications saved (64 channels: 3× slower), and at 7×7 (ResNet-50's layer4) it breaks
/// even at best. It keeps the rule it had before F(4×4) came, from 28×28 or with 512 channels:
/// a forward's rounding moves later rectifier masks (see [`super::winograd4::worth`]), which
/// at VGG-16's layers was measured harmless (Guided Backprop 1.5e-7 from PyTorch's), while
/// F(2×2) at ResNet-50's 64- and 128-channel layers moved it by 1.6e-4. (A backward pass, and a
/// forward that accepts F(4×4)'s rounding, take F(4×4) on every plane this rule would accept,
/// except where it does not pay with their micro-kernel: with AVX-512, 512 channels at 14×14
/// to 24×24 (below its tile floor) and 256 at 28×28 in a forward (below its multiply-add
/// floor) run F(2×2) there: [`choose`], [`super::winograd4::pays`].)
pub fn applies(g: &ConvGeom) -> bool {
    let shape = super::winograd4::fits(g);
    let size = g.oh >= 14 && g.ow >= 14 && (g.c >= 512 || g.oh >= 28);
    shape && g.c >= 256 && g.k >= 256 && size
}

/// The transformed weight `U [16][k][c]` (`U[ξ] = G g Gᵀ` at position ξ); it depends only on
/// the weight, so the backend keeps it per weight buffer.
pub fn transform_weight<T: Element>(w: &[T], k: usize, c: usize) -> Vec<T> {
    let mut u = vec![T::zero(); 16 * k * c];
    transform_weight_into(w, k, c, &mut u);
    u
}

/// [`transform_weight`] into `u` (every value written, whatever it held).
pub fn transform_weight_into<T: Element>(w: &[T], k: usize, c: usize, u: &mut [T]) {
    let half = T::of(0.5);
    assert_eq!(u.len(), 16 * k * c, "transformed weight of another length");
    let us = SharedMut(u.as_mut_ptr());
    (0..k).into_par_iter().for_each(|kk| {
        for cc in 0..c {
            let g = &w[(kk * c + cc) * 9..][..9];
            // s = G g (4×3), then U = s Gᵀ (4×4).
            let mut s = [[T::zero(); 3]; 4];
            for j in 0..3 {
                let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
                s[0][j] = g0;
                s[1][j] = (g0 + g1 + g2) * half;
                s[2][j] = (g0 - g1 + g2) * half;
                s[3][j] = g2;
            }
            for (i, si) in s.iter().enumerate() {
                let row = [
                    si[0],
                    (si[0] + si[1] + si[2]) * half,
                    (si[0] - si[1] + si[2]) * half,
                    si[2],
                ];
                for (j, &v) in row.iter().enumerate() {
                    // SAFETY: filter kk writes only its own (ξ, kk, ·) entries.
                    unsafe { *us.ptr().add(((i * 4 + j) * k + kk) * c + cc) = v };
                }
            }
        }
    });
}

/// `y = conv(x, w) + b` (then clamped) with the transformed weight `u`.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
pub fn forward<T: Element>(
    kernel: Option<packed::Kernel<T>>,
    x: &[T],
    u: &[T],
    b: Option<&[T]>,
    clamp: Option<(T, T)>,
    g: &ConvGeom,
    y: &mut [T],
) {
    let (c, k) = (g.c, g.k);
    assert!(u.len() >= 16 * k * c, "Winograd weight too short");
    let (th, tw) = (g.oh.div_ceil(2), g.ow.div_ceil(2));
    let tiles = th * tw;
    let [ph, pw] = g.p.padding;
    // V [c][16][tiles], M [16][k][tiles].
    // Reused per thread (fresh megabytes cost a page fault per page on every call); every
    // element is written before it is read.
    let mut v = buffer::take::<T>(Slot::Tiles, c * 16 * tiles);
    let mut m = buffer::take::<T>(Slot::Products, 16 * k * tiles);
    for n in 0..g.n {
        let img = &x[n * c * g.h * g.w..(n + 1) * c * g.h * g.w];
        v.par_chunks_mut(16 * tiles)
            .enumerate()
            .for_each(|(cc, vc)| {
                let plane = &img[cc * g.h * g.w..(cc + 1) * g.h * g.w];
                for ty in 0..th {
                    for tx in 0..tw {
                        let mut d = [[T::zero(); 4]; 4];
                        for (i, row) in d.iter_mut().enumerate() {
                            let iy = (2 * ty + i) as isize - ph as isize;
                            if iy < 0 || iy >= g.h as isize {
                                continue;
                            }
                            for (j, val) in row.iter_mut().enumerate() {
                                let ix = (2 * tx + j) as isize - pw as isize;
                                if ix >= 0 && ix < g.w as isize {
                                    *val = plane[iy as usize * g.w + ix as usize];
                                }
                            }
                        }
                        // t = Bᵀ d, then V = t B.
                        let mut t = [[T::zero(); 4]; 4];
                        for j in 0..4 {
                            t[0][j] = d[0][j] - d[2][j];
                            t[1][j] = d[1][j] + d[2][j];
                            t[2][j] = d[2][j] - d[1][j];
                            t[3][j] = d[1][j] - d[3][j];
                        }
                        let at = ty * tw + tx;
                        for (i, ti) in t.iter().enumerate() {
                            let row = [ti[0] - ti[2], ti[1] + ti[2], ti[2] - ti[1], ti[1] - ti[3]];
                            for (j, &val) in row.iter().enumerate() {
                                vc[(i * 4 + j) * tiles + at] = val;
                            }
                        }
                    }
                }
            });
        let ms = SharedMut(m.as_mut_ptr());
        (0..16usize).into_par_iter().for_each(|xi| {
            let pack = Strided {
                data: &v[..],
                off: xi * tiles,
                rs: 16 * tiles,
                cs: 1,
            };
            // SAFETY: position ξ writes only M[ξ] (k × tiles); U[ξ] is k × c, in bounds.
            unsafe {
                packed::gemm(
                    kernel,
                    k,
                    c,
                    tiles,
                    u.as_ptr().add(xi * k * c),
                    c,
                    1,
                    &pack,
                    false,
                    ms.ptr().add(xi * k * tiles),
                    tiles,
                )
            };
        });
        let out = &mut y[n * k * g.oh * g.ow..(n + 1) * k * g.oh * g.ow];
        out.par_chunks_mut(g.oh * g.ow)
            .enumerate()
            .for_each(|(kk, yk)| {
                let bias = b.map_or(T::zero(), |b| b[kk]);
                for ty in 0..th {
                    for tx in 0..tw {
                        let at = ty * tw + tx;
                        let e = |i: usize, j: usize| m[((i * 4 + j) * k + kk) * tiles + at];
                        // r = Aᵀ m (2×4), then Y = r A (2×2).
                        let mut r = [[T::zero(); 4]; 2];
                        for j in 0..4 {
                            r[0][j] = e(0, j) + e(1, j) + e(2, j);
                            r[1][j] = e(1, j) - e(2, j) - e(3, j);
                        }
                        for (a, ra) in r.iter().enumerate() {
                            let oy = 2 * ty + a;
                            if oy >= g.oh {
                                continue;
                            }
                            let vals = [ra[0] + ra[1] + ra[2], ra[1] - ra[2] - ra[3]];
                            for (bb, &val) in vals.iter().enumerate() {
                                let ox = 2 * tx + bb;
                                if ox < g.ow {
                                    let mut o = val + bias;
                                    if let Some((lo, hi)) = clamp {
                                        o = o.max(lo).min(hi);
                                    }
                                    yk[oy * g.ow + ox] = o;
                                }
                            }
                        }
                    }
                }
            });
    }
}
