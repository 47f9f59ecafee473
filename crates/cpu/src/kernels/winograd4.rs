//! Winograd F(4×4, 3×3) for 3×3, stride-1, undilated, ungrouped convolutions: each 4×4 output
//! tile from a 6×6 input tile with 36 multiplications per channel pair instead of 144
//! (Lavin & Gray, interpolation points 0, ±1, ±2, ∞).
//!
//! The tiles are processed in blocks of `B` tiles ([`BLOCK`], one panel of the AVX-512
//! micro-kernel; [`SMALL`] on planes of fewer than [`BLOCK_FROM`] tiles): a block's
//! transformed input `V [36][c][B]`, its 36 products `M[ξ] = U[ξ] · V[ξ]` (filters ×
//! channels by channels × tiles, through the packed GEMM, `V[ξ]` read in place) and the output
//! transform run back to back while the block is in cache. Blocks of one size (the full ones;
//! the images' partial ones) run in parallel in whole rounds (as many as a multiple of the
//! threads), a block per task; the rest (blocks short of a round: at batch 1, a plane's partial
//! block, and its full ones when fewer than the threads) run one at a time, each of the three
//! phases in parallel over channels, positions and filters.
//!
//! The transforms run on all of a block's tiles at once (loops over the tile index, which the
//! compiler vectorises).
//!
//! Rounding: relative error ≈ 1e-5 in f32 (F(2×2): ≈ 1e-6, the direct product ≈ 1e-7), which
//! is why the CPU backend runs it for backward-data, and for forward convolutions only in the
//! forwards no backward reads a mask of (its `fast_forward` handle) or when asked
//! (`CpuBackend::with_winograd_forward`; see [`worth`]); the reference plan never.

// The transforms index rows and lanes of small fixed matrices by position, as the formulas
// are written.
#![allow(clippy::needless_range_loop)]

use super::conv::ConvGeom;
use super::packed::buffer::{self, Slot};
use super::packed::{self, Strided};
use super::{Element, SharedMut};
use rayon::prelude::*;

/// Tiles per block: the wide micro-kernel's panel width, so a full block's `V[ξ]` is read by
/// the GEMM in place.
pub const BLOCK: usize = 64;
/// Tiles per block on planes of fewer than [`BLOCK_FROM`] tiles: a 13×13 to 16×16 plane's make
/// one full block (filters as the products' rows), not a partial one of 64 (tiles as the rows,
/// their few rows a panel's height): 256 channels 1.05 → 0.65 ms, 512 channels 7.36 → 2.89
/// (`examples/winograd_variants.rs`, two threads).
pub const SMALL: usize = 16;
/// The fewest tiles that [`forward`] takes in blocks of [`BLOCK`] rather than [`SMALL`].
pub const BLOCK_FROM: usize = 49;
/// Transform positions (6 × 6).
pub const P: usize = 36;

/// Whether `g` has the shape both Winograd variants compute (3×3, stride 1, undilated,
/// ungrouped, padding ≤ 2); [`worth`] says whether F(4×4) pays.
pub fn fits(g: &ConvGeom) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.p.stride == [1, 1]
        && g.p.dilation == [1, 1]
        && g.p.groups == 1
        && g.p.padding[0] <= 2
        && g.p.padding[1] <= 2
}

/// Whether `g` [`fits`] and is worth running as F(4×4, 3×3). Measured per layer against the
/// GEMM, the direct convolution and F(2×2) (docs/PERFORMANCE.md, 64–512 channels and filters):
/// with at least 49 tiles (planes from about 28×28) it is 1.4–2.6× faster than the GEMM and
/// faster than F(2×2); from 16 tiles (13×13 planes up) in blocks of [`SMALL`] too (256
/// channels at 14×14 0.66 ms against F(2×2)'s 0.93 and the direct convolution's 1.26; 64
/// channels 0.097 against 0.100; 128 at 20×20 0.42 against 0.65). At 7×7 (four tiles) the 4×
/// larger transformed weight and the narrow products make it slower than both (512 channels
/// 4.2 against 1.4 ms). With few filters it still wins (VGG-16's first layer's backward-data,
/// 64 channels to 3 at 224×224: 5.8 → 3.9 ms). The 16-channel floor keeps it
/// off the RGB stem (3 channels), where the GEMM's depth is too small for it; 16–63 channels
/// were not measured.
///
/// The backend uses it for backward-data where it pays ([`pays_backward`]), and for the forward
/// (from the micro-kernel's floor, [`pays`]) only where no backward reads
/// the forward's masks (its `fast_forward` handle) or on request
/// (`CpuBackend::with_winograd_forward`). In a forward pass its error (≈ 1e-5 relative)
/// moves near-zero rectifier inputs across zero, and every rectifier mask downstream with them:
/// ResNet-50's Guided Backprop drifted 3.3e-4 from PyTorch's (1.7e-7 with the direct product;
/// recomputing the near-zero outputs of the layer itself did not help, the error reaches the
/// later layers' masks). In a backward pass a sign flipped by rounding is that of a near-zero
/// gradient, which changes the result by about as little: Guided Backprop with it 2.6e-7.
pub fn worth(g: &ConvGeom) -> bool {
    let tiles = g.oh.div_ceil(4) * g.ow.div_ceil(4);
    fits(g) && g.c >= 16 && tiles >= SMALL
}

/// The floor below which no convolution that may round as F(4×4) runs by it with `kernel`
/// (a backward-data, or a forward that may: [`pays`], [`pays_backward`]): where [`worth`], on
/// planes of at least the kernel's [`packed::Kernel::f4_forward_tiles`]
/// tiles. With the AVX-512 kernel that is [`BLOCK_FROM`] (planes from about 25×25): on an
/// Intel AVX-512 machine (docs/PERFORMANCE.md, 2026-11-28) F(4×4) at 14×14 planes, faster than
/// the direct convolution and F(2×2) one layer at a time, made the forward slower in the
/// network: ResNet-50's 3×3 layers 18.0–18.1 ms with it, 16.3 without it at 14×14 (15.4–15.7
/// with no F(4×4) at all); VGG-16's forward 121–135 ms against 116–118. Likely, though not
/// shown, its 4× larger transformed weight (9.4 MB at 256 channels), read per layer for work
/// the twice as wide kernel does fast anyway. Backward-data kept every plane [`worth`] takes
/// until the direct convolution's transposed store got faster; then, in the network,
/// ResNet-50's five 256-channel 14×14 backward-data layers took 1.26–1.48 ms each by F(4×4)
/// and 1.03–1.15 directly. With the AVX2 kernel and without one, every plane [`worth`] takes.
fn above_floor<T: Element>(kernel: Option<packed::Kernel<T>>, g: &ConvGeom) -> bool {
    let tiles = g.oh.div_ceil(4) * g.ow.div_ceil(4);
    worth(g) && kernel.is_none_or(|k| tiles >= k.f4_forward_tiles)
}

/// Whether a forward convolution that may round as F(4×4) (the `fast_forward` handle's, or
/// `CpuBackend::with_winograd_forward`'s) runs by it with `kernel`: above the kernel's tile
/// floor ([`packed::Kernel::f4_forward_tiles`]), and where the direct convolution could take
/// the layer only if each of F(4×4)'s 36 products has at least the kernel's
/// [`packed::Kernel::f4_forward_macs`] multiply-adds (tiles × channels × filters). On an
/// Intel AVX-512 machine (docs/PERFORMANCE.md, 2026-11-28, 15:30 UTC), in the network, F(4×4)
/// lost to the direct convolution where its products were small: ResNet-50's 64-channel
/// 56×56 layers (0.8 M multiply-adds per product) 1.29–1.39 ms against 1.05–1.07, its
/// 128-channel 28×28 ones (0.8 M) 0.97–1.06 against 0.95–1.01 (ResNet-18's alike, whose
/// Grad-CAM ran 5 % faster without F(4×4)); it won where they were large: VGG-16's 128 channels
/// at 112×112, 256 at 56×56 and 512 at 28×28 (12.8 M each) 9.6 against 15.4 ms, 8.2 against
/// 11.4 and 8.6 against 11.2.
pub fn pays<T: Element>(kernel: Option<packed::Kernel<T>>, g: &ConvGeom) -> bool {
    let tiles = g.oh.div_ceil(4) * g.ow.div_ceil(4);
    above_floor(kernel, g)
        && kernel.is_none_or(|k| {
            tiles * g.c * g.k >= k.f4_forward_macs || !super::direct::applies(Some(k), g)
        })
}

/// Whether a backward-data (the forward convolution `g` of the output's gradient with the
/// flipped weight) runs by F(4×4) with `kernel`: above the forward's tile floor (not its
/// multiply-add floor: [`pays`]), and where the direct
/// convolution could not take it or it has at least the kernel's
/// [`packed::Kernel::f4_backward_channels`] channels (128 with AVX-512, any with AVX2). In
/// ResNet-50's backward on an Intel AVX-512 machine (docs/PERFORMANCE.md, 2026-11-28) its
/// three 64-channel 56×56 layers took 1.18–1.30 ms each by F(4×4) and 0.99–1.10 directly, its
/// 128-channel 28×28 ones 0.90–1.08 and 0.91–1.03; one at a time F(4×4) was the faster of the
/// two, and VGG-16's larger planes (the direct convolution takes none above 112×112) run it
/// twice as fast.
pub fn pays_backward<T: Element>(kernel: Option<packed::Kernel<T>>, g: &ConvGeom) -> bool {
    above_floor(kernel, g)
        && kernel
            .is_none_or(|k| g.c >= k.f4_backward_channels || !super::direct::applies(Some(k), g))
}

/// The transformed weight `U [36][c][k]` (`U[ξ] = G g Gᵀ` at position ξ, filters contiguous);
/// it depends only on the weight, so the backend keeps it per weight buffer.
pub fn transform_weight<T: Element>(w: &[T], k: usize, c: usize) -> Vec<T> {
    let mut u = vec![T::zero(); P * k * c];
    transform_weight_into(w, k, c, &mut u);
    u
}

/// [`transform_weight`] into `u` (every value written, whatever it held).
pub fn transform_weight_into<T: Element>(w: &[T], k: usize, c: usize, u: &mut [T]) {
    assert!(w.len() >= k * c * 9, "weight too short");
    assert_eq!(u.len(), P * k * c, "transformed weight of another length");
    let us = SharedMut(u.as_mut_ptr());
    // Computed in f64 and rounded once: the fractions of G are not exact in f32.
    let gt = |v: [f64; 3]| -> [f64; 6] {
        let (a, b, c) = (v[0], v[1], v[2]);
        [
            a / 4.0,
            -(a + b + c) / 6.0,
            -(a - b + c) / 6.0,
            a / 24.0 + b / 12.0 + c / 6.0,
            a / 24.0 - b / 12.0 + c / 6.0,
            c,
        ]
    };
    // By channel, the filters innermost: each of the 36 positions' stores run contiguously
    // (`U[ξ][cc][·]`), and each task writes rows of its own. By filter, every store went to a
    // line of its own, which the other threads' filters shared (ResNet-50's first call spent
    // 120 ms here).
    (0..c).into_par_iter().for_each(|cc| {
        for kk in 0..k {
            let g = &w[(kk * c + cc) * 9..][..9];
            let g = |i: usize| g[i].to_f64().unwrap_or(f64::NAN);
            // s = G g (6×3, by columns), then U = s Gᵀ (6×6, by rows).
            let cols: [[f64; 6]; 3] = std::array::from_fn(|j| gt([g(j), g(3 + j), g(6 + j)]));
            for i in 0..6 {
                let row = gt([cols[0][i], cols[1][i], cols[2][i]]);
                for (j, &v) in row.iter().enumerate() {
                    // SAFETY: channel cc writes only its own (ξ, cc, ·) entries.
                    let at = ((i * 6 + j) * c + cc) * k + kk;
                    unsafe { *us.ptr().add(at) = T::from(v).unwrap_or(T::nan()) };
                }
            }
        }
    });
}

/// One block of tiles: image `n`, tiles `t0..t0 + len` (row-major over the tile grid).
#[derive(Clone, Copy)]
struct Block {
    n: usize,
    t0: usize,
    len: usize,
}

/// Sizes shared by every block.
struct Geo<'a, T> {
    g: &'a ConvGeom,
    /// Tiles per row.
    tw: usize,
    kernel: Option<packed::Kernel<T>>,
}

/// `y = conv(x, w) + b` (then clamped) with `u`, the weight `w` transformed by
/// [`transform_weight`].
#[allow(clippy::too_many_arguments)]
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
    assert!(fits(g), "not a Winograd geometry");
    assert!(u.len() >= P * k * c, "Winograd weight too short");
    assert!(x.len() >= g.n * c * g.h * g.w && y.len() >= g.n * k * g.oh * g.ow);
    assert!(b.is_none_or(|b| b.len() >= k));
    let (th, tw) = (g.oh.div_ceil(4), g.ow.div_ceil(4));
    let geo = Geo { g, tw, kernel };
    let out = Out {
        y: SharedMut(y.as_mut_ptr()),
        b,
        clamp,
    };
    if th * tw < BLOCK_FROM {
        blocks::<T, SMALL>(&geo, x, u, &out)
    } else {
        blocks::<T, BLOCK>(&geo, x, u, &out)
    }
}

/// [`forward`] in blocks of `B` tiles, into `out` (`y`, checked long enough by [`forward`]).
fn blocks<T: Element, const B: usize>(geo: &Geo<T>, x: &[T], u: &[T], out: &Out<T>) {
    let g = geo.g;
    let (c, k) = (g.c, g.k);
    let tiles = g.oh.div_ceil(4) * geo.tw;
    let blocks: Vec<Block> = (0..g.n)
        .flat_map(|n| {
            (0..tiles).step_by(B).map(move |t0| Block {
                n,
                t0,
                len: B.min(tiles - t0),
            })
        })
        .collect();
    // The block's tiles and products, reused per thread (every element read is written first).
    let scratch = || {
        (
            buffer::take::<T>(Slot::Tiles, P * c * B),
            buffer::take::<T>(Slot::Products, P * k * B),
        )
    };
    // Blocks of one size (full ones; the images' partial ones, all as long) in whole rounds of
    // as many as the threads, one block per task, its phases serial; then the rest one at a
    // time, each phase split over the threads. Every block's sums are the same either way. At
    // 56×56 (196 tiles: three full blocks and four tiles) on two threads, all four blocks in
    // parallel left one thread two full blocks and the other one and the four tiles.
    let threads = rayon::current_num_threads();
    let (mut rounds, mut rest): (Vec<Block>, Vec<Block>) = (Vec::new(), Vec::new());
    for mut same in [true, false].map(|f| {
        blocks
            .iter()
            .copied()
            .filter(|b| (b.len == B) == f)
            .collect::<Vec<_>>()
    }) {
        let alone = same.split_off(same.len() / threads * threads);
        rounds.append(&mut same);
        rest.extend(alone);
    }
    rounds.into_par_iter().for_each(|blk| {
        let (mut v, mut m) = scratch();
        input::<T, B>(geo, x, blk, 0..c, v.as_mut_ptr());
        products::<T, B>(geo, u, blk, 0..P, &v, m.as_mut_ptr());
        output::<T, B>(geo, out, blk, 0..k, &m);
    });
    if rest.is_empty() {
        return;
    }
    let (mut v, mut m) = scratch();
    for blk in rest {
        let vs = SharedMut(v.as_mut_ptr());
        par_ranges(c, 8, |r| input::<T, B>(geo, x, blk, r, vs.ptr()));
        let ms = SharedMut(m.as_mut_ptr());
        par_ranges(P, 1, |r| products::<T, B>(geo, u, blk, r, &v, ms.ptr()));
        par_ranges(k, 8, |r| output::<T, B>(geo, out, blk, r, &m));
    }
}

/// `f` over about twice as many ranges of `0..n` (each at least `min` long) as rayon has
/// threads, in parallel.
fn par_ranges(n: usize, min: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    super::ranges(n, 2 * rayon::current_num_threads(), min)
        .into_par_iter()
        .for_each(|(a, b)| f(a..b));
}

/// Where the output goes.
struct Out<'a, T> {
    y: SharedMut<T>,
    b: Option<&'a [T]>,
    clamp: Option<(T, T)>,
}

/// The 6×6 input tiles of `blk` for channels `chans`, transformed (`Bᵀ d B`) into
/// `v[(ξ·c + cc)·B + t]`.
fn input<T: Element, const B: usize>(
    geo: &Geo<T>,
    x: &[T],
    blk: Block,
    chans: std::ops::Range<usize>,
    v: *mut T,
) {
    let g = geo.g;
    let [ph, pw] = g.p.padding;
    let plane = g.h * g.w;
    let mut d = [[T::zero(); B]; P];
    for cc in chans {
        let src = &x[(blk.n * g.c + cc) * plane..][..plane];
        for t in 0..blk.len {
            let (ty, tx) = ((blk.t0 + t) / geo.tw, (blk.t0 + t) % geo.tw);
            let (y0, x0) = (
                (4 * ty) as isize - ph as isize,
                (4 * tx) as isize - pw as isize,
            );
            if y0 >= 0 && x0 >= 0 && y0 as usize + 6 <= g.h && x0 as usize + 6 <= g.w {
                let at = y0 as usize * g.w + x0 as usize;
                for i in 0..6 {
                    let row = &src[at + i * g.w..][..6];
                    for j in 0..6 {
                        d[i * 6 + j][t] = row[j];
                    }
                }
            } else {
                for i in 0..6 {
                    for j in 0..6 {
                        let (iy, ix) = (y0 + i as isize, x0 + j as isize);
                        let inside =
                            iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w;
                        d[i * 6 + j][t] = if inside {
                            src[iy as usize * g.w + ix as usize]
                        } else {
                            T::zero()
                        };
                    }
                }
            }
        }
        // Columns (Bᵀ d), in place, then rows (· B) into V.
        for j in 0..6 {
            bt_in_place(&mut d, |i| i * 6 + j);
        }
        for i in 0..6 {
            bt_in_place(&mut d, |j| i * 6 + j);
            for j in 0..6 {
                // SAFETY: (ξ, cc) rows are this call's own (channels are split between calls);
                // v holds P·c·B elements.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(v.add(((i * 6 + j) * g.c + cc) * B), B)
                };
                dst.copy_from_slice(&d[i * 6 + j]);
            }
        }
    }
}

/// `Bᵀ` applied to the six rows `d[at(0..6)]`, each a vector over the block's tiles.
#[inline(always)]
fn bt_in_place<T: Element, const B: usize>(d: &mut [[T; B]; P], at: impl Fn(usize) -> usize) {
    let (two, four, five) = (T::of(2.0), T::of(4.0), T::of(5.0));
    for t in 0..B {
        let e: [T; 6] = std::array::from_fn(|i| d[at(i)][t]);
        d[at(0)][t] = four * e[0] - five * e[2] + e[4];
        d[at(1)][t] = e[3] + e[4] - four * (e[1] + e[2]);
        d[at(2)][t] = four * (e[1] - e[2]) + e[4] - e[3];
        d[at(3)][t] = two * (e[3] - e[1]) + e[4] - e[2];
        d[at(4)][t] = two * (e[1] - e[3]) + e[4] - e[2];
        d[at(5)][t] = four * e[1] - five * e[3] + e[5];
    }
}

/// `M[ξ] = U[ξ] · V[ξ]` for the positions `xis`. A full block has tiles as the product's
/// columns (`m[(ξ·k + kk)·B + t]`, `V[ξ]` read in place: at [`BLOCK`], one panel of the
/// AVX-512 kernel); a partial one has them as its rows (`m[(ξ·B + t)·k + kk]`, `U[ξ]` read in
/// place), so that few tiles still fill the micro-kernel's wide panels with filters rather
/// than leaving them mostly masked.
fn products<T: Element, const B: usize>(
    geo: &Geo<T>,
    u: &[T],
    blk: Block,
    xis: std::ops::Range<usize>,
    v: &[T],
    m: *mut T,
) {
    let (c, k) = (geo.g.c, geo.g.k);
    // (rows, columns) of M[ξ]; A (read in place, its column stride) and B.
    let (rows, cols, a, acs, b, b_rs) = if blk.len == B {
        (k, B, u, k, v, B)
    } else {
        (blk.len, k, v, B, u, k)
    };
    let (a_step, b_step) = if blk.len == B {
        (c * k, c * B)
    } else {
        (c * B, c * k)
    };
    for xi in xis {
        let pack = Strided {
            data: b,
            off: xi * b_step,
            rs: b_rs,
            cs: 1,
        };
        // SAFETY: A (rows × c, element (i, j) at i + j·acs) starts at ξ's U or V, inside `u`
        // (size checked in `forward`) or `v` (P·c·B, taken so); M[ξ] (k·B elements) is
        // inside `m` (P·k·B) and written only by position ξ's call.
        unsafe {
            let (ap, out) = (a.as_ptr().add(xi * a_step), m.add(xi * k * B));
            packed::gemm(
                geo.kernel, rows, c, cols, ap, 1, acs, &pack, false, out, cols,
            )
        };
    }
}

/// The output tiles of `blk` for filters `filters`: `Aᵀ M A`, plus the bias, clamped, into y.
/// The transform runs over the block's tiles for one filter at a time (a full block), or over
/// up to `B` filters for one tile at a time (a partial block, whose M has the filters
/// contiguous).
fn output<T: Element, const B: usize>(
    geo: &Geo<T>,
    out: &Out<T>,
    blk: Block,
    filters: std::ops::Range<usize>,
    m: &[T],
) {
    let k = geo.g.k;
    let mut e = [[T::zero(); B]; P];
    if blk.len == B {
        for kk in filters {
            for (xi, row) in e.iter_mut().enumerate() {
                row.copy_from_slice(&m[(xi * k + kk) * B..][..B]);
            }
            output_transform(&mut e);
            for t in 0..B {
                store(geo, out, blk.n, blk.t0 + t, kk, |i, j| e[i * 6 + j][t]);
            }
        }
    } else {
        for k0 in filters.clone().step_by(B) {
            let kc = B.min(filters.end - k0);
            for t in 0..blk.len {
                for (xi, row) in e.iter_mut().enumerate() {
                    row[..kc].copy_from_slice(&m[(xi * B + t) * k + k0..][..kc]);
                }
                output_transform(&mut e);
                for f in 0..kc {
                    store(geo, out, blk.n, blk.t0 + t, k0 + f, |i, j| e[i * 6 + j][f]);
                }
            }
        }
    }
}

/// `Aᵀ e A` on every lane of the 6×6 rows `e[i·6 + j]`: the 4×4 result in `e[i·6 + j]`,
/// `i, j < 4`.
fn output_transform<T: Element, const B: usize>(e: &mut [[T; B]; P]) {
    for j in 0..6 {
        at_in_place(e, |i| i * 6 + j);
    }
    for i in 0..4 {
        at_in_place(e, |j| i * 6 + j);
    }
}

/// Tile `tile`'s outputs of filter `kk` in image `n` (`val(i, j)`, row i, column j), plus the
/// bias, clamped, into y.
fn store<T: Element>(
    geo: &Geo<T>,
    out: &Out<T>,
    n: usize,
    tile: usize,
    kk: usize,
    val: impl Fn(usize, usize) -> T,
) {
    let g = geo.g;
    let oplane = g.oh * g.ow;
    let bias = out.b.map_or(T::zero(), |b| b[kk]);
    let (ty, tx) = (tile / geo.tw, tile % geo.tw);
    let (rows, cols) = (4.min(g.oh - 4 * ty), 4.min(g.ow - 4 * tx));
    for i in 0..rows {
        let at = (n * g.k + kk) * oplane + (4 * ty + i) * g.ow + 4 * tx;
        // SAFETY: inside y (n·k·oh·ow elements, checked in `forward`); filter kk's outputs of
        // this tile are written by this call only (filters are split between calls, blocks
        // cover disjoint tiles).
        let dst = unsafe { std::slice::from_raw_parts_mut(out.y.ptr().add(at), cols) };
        for (j, o) in dst.iter_mut().enumerate() {
            let mut v = val(i, j) + bias;
            if let Some((lo, hi)) = out.clamp {
                v = v.max(lo).min(hi);
            }
            *o = v;
        }
    }
}

/// `Aᵀ` applied to the six rows `e[at(0..6)]`, results in `e[at(0..4)]`.
#[inline(always)]
fn at_in_place<T: Element, const B: usize>(e: &mut [[T; B]; P], at: impl Fn(usize) -> usize) {
    let (two, four, eight) = (T::of(2.0), T::of(4.0), T::of(8.0));
    for t in 0..B {
        let v: [T; 6] = std::array::from_fn(|i| e[at(i)][t]);
        let (s12, d12, s34, d34) = (v[1] + v[2], v[1] - v[2], v[3] + v[4], v[3] - v[4]);
        e[at(0)][t] = v[0] + s12 + s34;
        e[at(1)][t] = d12 + two * d34;
        e[at(2)][t] = s12 + four * s34;
        e[at(3)][t] = d12 + eight * d34 + v[5];
    }
}
