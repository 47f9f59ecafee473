//! Convolutions without im2col: the output positions are the GEMM's rows, gathered from a
//! zero-padded copy of the image, and the filters its columns, read from the weight packed
//! once (kept per weight buffer by the backend).
//!
//! On the padded image (`hp × wp` per channel) the output at `(oy, ox)` reads, for channel
//! `ci` and tap `(i, j)`, the element at `ci·hp·wp + (oy·sh + i·dh)·wp + ox·sw + j·dw`: a
//! pointer per output position (`(oy·sh)·wp + ox·sw`) plus an offset per step (`ci·hp·wp +
//! i·dh·wp + j·dw`) shared by all positions. So the micro-kernel ([`super::packed::GatherKernel`])
//! broadcasts its six rows' values straight from the image — whatever the stride, with no
//! column computed and dropped — and loads the filters' packed values as B. The tile it keeps
//! is positions × filters (the bias added by column); the sums of the last block of steps are
//! stored transposed, into the `[k, oh, ow]` output. The steps run in im2col's order and in
//! the blocks the packed GEMM takes over im2col's rows for the same convolution
//! ([`depth_block`]), so the result is the GEMM's, bit for bit: choosing one or the other
//! moves no rectifier mask (Guided Backprop on ResNet-50 moved by 1.6e-4 when the blocks
//! differed). Where the kernel carries sums ([`Kernel::gather_from`]: AVX-512), a 3×3
//! convolution's blocks go to it in chunks of [`Kernel::gather_channels`] channels (16: 144
//! steps, 36 KiB of a 64-filter panel, which then stays in L1 while it serves a group's
//! strips; a block's 72 KiB did not), each strip's sums carried from one chunk to the next as
//! they are: the same bits as whole blocks. On an Intel AVX-512 machine (docs/PERFORMANCE.md,
//! 2026-11-28, 15:30 UTC), interleaved in one process (medians of 100, two runs): ResNet's
//! 3×3 stride-1 layers 1.4–5.8 % faster (64 channels at 56×56 0.930 → 0.917 ms, 256 at
//! 14×14 0.918 → 0.876), a 64 → 128 stride-2 one within 3 % either way; the micro-kernel
//! alone ran 136–139 GFLOP/s on a core with a block's panel from L2, 156–160 with a chunk's
//! from L1 (a core's peak: 206).
//!
//! Against im2col, which copies `c·kh·kw` values per output position and reuses each only
//! for the layer's filters (a fourth of the time of a 64-filter layer), this copies the image
//! once. Small planes gain most: im2col's columns fill the wide panels badly (49 positions at
//! 7×7) and are packed by both threads, while here the positions fill rows of six and the
//! threads split the filters (or, where the weight stays in L2 and is smaller than the
//! image, the positions: `strips_first`).

use super::conv::ConvGeom;
use super::packed::{buffer, Kernel, Store, KC, MR};
use super::{prefetch, ranges, Element, SharedMut};
use rayon::prelude::*;

/// Output positions up to which a 3×3 convolution is computed by [`forward`] with the AVX-512
/// kernel (112×112: 128 filters there 19.0–19.6 ms against im2col's 20.2–21.9). On larger
/// planes im2col's packing, amortised over 64-wide panels, cost less than the direct
/// convolution's scattered reads and stores (64 filters at 224×224: 24.2–24.6 ms against
/// 21.8–22.1). With the AVX2 kernel there is no such limit: at 224×224, 64 filters took 27.5
/// ms against im2col's 38.5 ([`Kernel::direct_plane`]).
pub const MAX_PLANE: usize = 112 * 112;

/// The fewest steps (`c·kh·kw`) of a 3×3 convolution taken by [`forward`]: each tile's sums
/// are stored, transposed, after that many steps (at 3 channels, 27 steps, 64 filters at
/// 224×224 took 6.4 ms against im2col's 1.4 with the AVX-512 kernel, 6.7 against 2.2 with the
/// AVX2 one; at 64 channels, 576 steps, it is the faster).
pub const MIN_DEPTH: usize = 64;

/// The steps per depth block of a convolution the direct convolution may take
/// ([`depth_block`]), in whole channels: as many channels as fit in 288 steps (32 of a 3×3
/// kernel), or one channel of more taps. Blocks of whole channels start each channel's taps at
/// its first, and 288 steps of 16 filters (the AVX2 kernel's panel: 18 KiB of packed weight)
/// stay in L1. Against blocks of [`KC`] steps, with the AVX2 kernel (`gradcam bench --threads
/// 2`, interleaved rounds of 3–7, the median of the rounds' medians): ResNet-18's forward 23.22
/// → 22.67 ms, ResNet-50's 53.21 → 52.33, VGG-16's 163.9 → 162.3; at 252 steps (28 channels)
/// 22.86 and 53.00; at 216 and 360, ResNet-18 22.83 and 23.33 against 288's 22.74 in one
/// round. The AVX-512 kernel takes the same blocks (not measured: no AVX-512 machine since),
/// so that every instruction set gives the same bits.
pub const BLOCK: usize = 288;

/// Strips of [`MR`] positions whose tiles are taken through every block of steps before the
/// next group's: their partial sums stay in a small buffer (16 strips × 16 filters: 6 KiB with
/// the AVX2 kernel; 24 KiB with the AVX-512 one, and as much again for the sums carried
/// between chunks) while each block (or chunk) of the packed weight is used for 96 positions
/// (8 strips were no faster with chunks). All strips at once, the partial sums (positions ×
/// filters) went through the caches at every block: megabytes at 56×56.
const GROUP: usize = 16;

/// Whether [`forward`] computes a convolution of geometry `g` with `kernel`: one group, and a
/// 3×3 kernel (any stride, padding or dilation) of at least [`MIN_DEPTH`] steps with at most
/// [`Kernel::direct_plane`] output positions, or a stem (a kernel of 7×7 or more with a stride
/// of 2 or more). That is where it was measured faster than im2col
/// (`examples/winograd_variants.rs`, `examples/strided_variants.rs`): ResNet-50's 3×3 layers
/// by 6–38 %, its 7×7 stem by 18 %, AlexNet's 11×11 one by 32 %; 1×1 layers (read in place or
/// strided) and, with the AVX-512 kernel, AlexNet's 5×5 one were not faster.
pub fn applies<T>(kernel: Option<Kernel<T>>, g: &ConvGeom) -> bool {
    let Some(kernel) = kernel else {
        return false;
    };
    let three = g.oh * g.ow <= kernel.direct_plane && g.c * g.kh * g.kw >= MIN_DEPTH;
    let empty = [g.n, g.c, g.k, g.h, g.w, g.oh, g.ow].contains(&0);
    shaped(g) && !empty && (three || [g.kh, g.kw] != [3, 3])
}

/// Whether `g` has the shape of a convolution [`applies`] may accept with some kernel: one
/// group, and a 3×3 kernel or a stem (a kernel of 7×7 or more with a stride of 2 or more).
fn shaped(g: &ConvGeom) -> bool {
    let stem = g.kh.min(g.kw) >= 7 && g.p.stride[0].min(g.p.stride[1]) >= 2;
    g.p.groups == 1 && ([g.kh, g.kw] == [3, 3] || stem)
}

/// The steps per depth block of a convolution of geometry `g`, by [`forward`] or by the packed
/// GEMM over im2col's rows (the same blocks, so the same bits): for a geometry `shaped` as the
/// direct convolution's, whole channels up to [`BLOCK`] steps (at least one channel); else
/// [`KC`], the packed GEMM's.
pub fn depth_block(g: &ConvGeom) -> usize {
    if shaped(g) {
        let kk = g.kh * g.kw;
        (BLOCK / kk).max(1) * kk
    } else {
        KC
    }
}

/// The most bytes of packed weight for which [`strips_first`] may hold.
const STRIPS_FIRST_WEIGHT: usize = 384 << 10;

/// Whether [`forward`] splits the output positions among its tasks, each task taking a group of
/// strips through every panel of filters before the next group, rather than the filters: where
/// the packed weight (`weight` bytes) stays in L2 and is smaller than the padded image
/// (`image` bytes), which is then read once rather than once per panel. Not for a stem.
/// ResNet-18's 3×3 layers at 56×56 (64 channels, 144 KiB of weight against 841 KiB of image)
/// ran 1.37 → 1.34 ms, its 64 → 128 stride-2 one 0.77 → 0.72; where the weight was larger
/// (28×28 and below), the same split ran up to 57 % slower (each task read the whole weight), and
/// so did the stem (1.51 → 1.56 ms).
fn strips_first(g: &ConvGeom, weight: usize, image: usize) -> bool {
    let stem = g.kh.min(g.kw) >= 7;
    !stem && weight <= STRIPS_FIRST_WEIGHT && weight < image
}

/// The weight `[k, c, kh, kw]` as [`forward`]'s B: `wᵀ [c·kh·kw, k]` in panels of `nr`
/// filters (`[panel][c·kh·kw][nr]`, the last panel's missing filters zero).
pub fn pack_weight<T: Element>(w: &[T], k: usize, depth: usize, nr: usize) -> Vec<T> {
    let mut out = vec![T::zero(); k.div_ceil(nr) * depth * nr];
    pack_weight_into(w, k, depth, nr, &mut out);
    out
}

/// [`pack_weight`] into `out` (at least `⌈k/nr⌉·depth·nr` values, whatever they held).
pub fn pack_weight_into<T: Element>(w: &[T], k: usize, depth: usize, nr: usize, out: &mut [T]) {
    let out = &mut out[..k.div_ceil(nr) * depth * nr];
    out.par_chunks_mut(depth * nr)
        .enumerate()
        .for_each(|(p, dst)| {
            let filters = nr.min(k - p * nr);
            if filters < nr {
                // The last panel's missing filters: zeros.
                dst.fill(T::zero());
            }
            // Step by step, the panel's filters side by side: its stores run contiguously
            // (filter by filter, each store went to a line of its own, `nr` values apart:
            // ResNet-50's first call spent 64 ms here), and the panel's rows of the weight,
            // read a value at a time, stay in L1.
            let rows = &w[p * nr * depth..(p * nr + filters) * depth];
            for (r, out) in dst.chunks_exact_mut(nr).enumerate() {
                for (o, row) in out.iter_mut().zip(rows.chunks_exact(depth)) {
                    *o = row[r];
                }
            }
        });
}

/// `y = clamp(conv(x, w) + b + residual)` for a geometry [`applies`] accepts, `wt` the weight
/// as [`pack_weight`] gives it for `kern.nr`, `residual` laid out as `y`.
#[allow(clippy::too_many_arguments)]
pub fn forward<T: Element>(
    kern: Kernel<T>,
    x: &[T],
    wt: &[T],
    b: Option<&[T]>,
    residual: Option<&[T]>,
    clamp: Option<(T, T)>,
    g: &ConvGeom,
    y: &mut [T],
) {
    let (in_len, out_len) = (g.c * g.h * g.w, g.k * g.oh * g.ow);
    assert!(g.p.groups == 1 && ![g.c, g.k, g.h, g.w, g.oh, g.ow].contains(&0));
    assert!(
        x.len() >= g.n * in_len && y.len() >= g.n * out_len,
        "conv tensors too short"
    );
    assert!(b.is_none_or(|b| b.len() >= g.k), "conv bias too short");
    let residual_short = residual.is_some_and(|r| r.len() < g.n * out_len);
    assert!(!residual_short, "residual too short");
    let [ph, pw] = g.p.padding;
    let [sh, sw] = g.p.stride;
    let [dh, dw] = g.p.dilation;
    let (hp, wp) = (g.h + 2 * ph, g.w + 2 * pw);
    let pp = hp * wp;
    let taps: Vec<usize> = (0..g.kh)
        .flat_map(|i| (0..g.kw).map(move |j| i * dh * wp + j * dw))
        .collect();
    let kk = taps.len();
    let (depth, nr, plane) = (g.c * kk, kern.nr, g.oh * g.ow);
    let panels = g.k.div_ceil(nr);
    assert!(wt.len() >= panels * depth * nr, "packed weight too short");
    // The farthest read, (c−1)·pp + the last position's offset + the last tap, lies in the
    // copy: the output's shape was checked against the padded input.
    let end = (g.c - 1) * pp + ((g.oh - 1) * sh) * wp + (g.ow - 1) * sw + taps[kk - 1];
    assert!(end < g.c * pp, "convolution reads past its padded input");
    // Tasks: the positions' strips split among the threads where [`strips_first`] (each task
    // takes every panel), else the filters' panels when there are enough (each task reads only
    // its part of the weight), else each panel with a share of the positions.
    let want = 2 * rayon::current_num_threads();
    let strips = plane.div_ceil(MR);
    let size = std::mem::size_of::<T>();
    let by_strips = strips_first(g, panels * depth * nr * size, g.c * pp * size);
    let (by_panel, by_strip) = if by_strips {
        (vec![(0, panels)], ranges(strips, want, 1))
    } else if panels >= want {
        (ranges(panels, want, 1), vec![(0, strips)])
    } else {
        (ranges(panels, panels, 1), ranges(strips, want / panels, 1))
    };
    let tasks: Vec<_> = by_panel
        .iter()
        .flat_map(|&p| by_strip.iter().map(move |&s| (p, s)))
        .collect();
    let mut xpad = buffer::take::<T>(buffer::Slot::Padded, g.c * pp);
    let bk = depth_block(g);
    let blocks = depth.div_ceil(bk);
    // A 3×3 convolution's blocks in chunks of whole channels where the kernel carries sums
    // ([`Kernel::gather_channels`]).
    let ck = match kern.gather_from {
        Some(_) if kk == 9 => bk.min(kern.gather_channels.max(1) * kk),
        _ => bk,
    };
    let chunked = ck < bk;
    // Each output position's first read in a channel of the padded image, computed once, not
    // by a division per row of every tile.
    let offsets: Vec<usize> = (0..plane)
        .map(|pos| (pos / g.ow) * sh * wp + (pos % g.ow) * sw)
        .collect();
    for (n, (img, out)) in x
        .chunks(in_len)
        .zip(y.chunks_mut(out_len))
        .take(g.n)
        .enumerate()
    {
        pad(img, g, &mut xpad, pp, wp);
        let xp: &[T] = &xpad;
        let op = SharedMut(out.as_mut_ptr());
        tasks.par_iter().for_each(|&((pa, pb), (sa, sb))| {
            // The partial sums of a group's tiles over all blocks but the last: a few
            // kilobytes, in L1 (none when one block covers the depth).
            let group = GROUP.min(sb - sa);
            // With chunks, each strip's sums carried from one chunk of a block to the next
            // (as many again).
            let tile = group * MR * nr;
            let grid = if blocks > 1 { tile } else { 0 } + if chunked { tile } else { 0 };
            let mut sums = buffer::take::<T>(buffer::Slot::Grid, grid);
            let sp = sums.as_mut_ptr();
            let cp = sp.wrapping_add(if blocks > 1 { tile } else { 0 });
            // Groups of strips within panels, or (strips first) panels within groups: a
            // group's image lines then serve every panel from L1 and L2, the whole weight
            // staying in L2.
            let (groups, panels_here) = ((sb - sa).div_ceil(group), pb - pa);
            for i in 0..groups * panels_here {
                let (p, s0) = if by_strips {
                    (pa + i % panels_here, sa + i / panels_here * group)
                } else {
                    (pa + i / groups, sa + i % groups * group)
                };
                let cols = nr.min(g.k - p * nr);
                // Blocks of `bk` steps, as the packed GEMM takes them over im2col's
                // rows (the same sums in the same order: the same result, bit for bit), each
                // in chunks of `ck` steps, its strips' sums carried between them.
                for k0 in (0..depth).step_by(bk) {
                    let kc = bk.min(depth - k0);
                    let last = k0 + kc == depth;
                    let block_store = Store {
                        accumulate: k0 > 0,
                        bias: b
                            .filter(|_| k0 == 0)
                            .map_or(std::ptr::null(), |b| b[p * nr..].as_ptr()),
                        by_column: true,
                        clamp: clamp.filter(|_| last),
                        transposed: std::ptr::null_mut(),
                        ldt: plane,
                        residual: std::ptr::null(),
                    };
                    // A chunk's sums go on as they are (no bias, no clamp) to the next.
                    let carry_store = Store {
                        accumulate: false,
                        bias: std::ptr::null(),
                        clamp: None,
                        ..block_store
                    };
                    for c0 in (k0..k0 + kc).step_by(ck) {
                        let cc = ck.min(k0 + kc - c0);
                        let (ci0, first) = (c0 / kk, c0 % kk);
                        let bp = wt[(p * depth + c0) * nr..].as_ptr();
                        // In the first group, the weight's next chunk (this panel's, or the
                        // next panel's first) is asked for ahead of its first use, a part
                        // before each of this chunk's strips: a 512-filter 3×3 layer at 7×7
                        // whose weight came from memory ran 1.545 → 1.483 ms (all in one
                        // burst, it ran slower: 1.646).
                        let ahead = if s0 == sa {
                            let next = (p * depth + c0 + cc) * nr;
                            let end = (pb * depth * nr).min(wt.len());
                            &wt[next.min(end)..(next + ck * nr).min(end)]
                        } else {
                            &[]
                        };
                        let strips_here = (s0 + group).min(sb) - s0;
                        let part = ahead.len().div_ceil(strips_here).div_ceil(16) * 16;
                        let (from_chunk, to_block) = (c0 > k0, c0 + cc == k0 + kc);
                        let mut store = if to_block { block_store } else { carry_store };
                        for s in s0..(s0 + group).min(sb) {
                            let from = ((s - s0) * part).min(ahead.len());
                            prefetch(&ahead[from..(from + part).min(ahead.len())]);
                            let i0 = s * MR;
                            if last && to_block {
                                // The last block's sums go to the output, transposed (the
                                // residual read alike).
                                let at = p * nr * plane + i0;
                                store.transposed = op.ptr().wrapping_add(at);
                                if let Some(r) = residual {
                                    store.residual = r[n * out_len..].as_ptr().wrapping_add(at);
                                }
                            }
                            let rows = MR.min(plane - i0);
                            let rowp =
                                |r: usize| xp[ci0 * pp + offsets[i0 + r.min(rows - 1)]..].as_ptr();
                            let ap = [rowp(0), rowp(1), rowp(2), rowp(3), rowp(4), rowp(5)];
                            // Wrapping: with one block (and no chunks) the buffer is empty,
                            // never read.
                            let partial = sp.wrapping_add((s - s0) * MR * nr);
                            let carried = cp.wrapping_add((s - s0) * MR * nr);
                            let c = if to_block { partial } else { carried };
                            // SAFETY: A's reads end at `end` (asserted inside the copy); B's
                            // at panel p's row c0 + cc − 1 < depth, inside `wt` (asserted);
                            // the tile's partial and carried sums (MR × nr each, rows nr
                            // apart) are this task's own buffer; the output's filters
                            // p·nr.. at positions i0..i0 + rows belong to this task alone
                            // (tasks partition strips × panels); the bias has a value per
                            // filter.
                            unsafe {
                                match kern.gather_from.filter(|_| from_chunk) {
                                    Some(from) => from(
                                        carried, &taps, first, cc, &ap, pp, bp, c, nr, rows, cols,
                                        &store,
                                    ),
                                    None => (kern.gather)(
                                        &taps, first, cc, &ap, pp, bp, c, nr, rows, cols, &store,
                                    ),
                                }
                            };
                        }
                    }
                }
            }
        });
    }
}

/// The image zero-padded to `hp × wp` per channel.
fn pad<T: Element>(img: &[T], g: &ConvGeom, xpad: &mut [T], pp: usize, wp: usize) {
    let [ph, pw] = g.p.padding;
    let plane = g.h * g.w;
    xpad.par_chunks_mut(pp)
        .zip(img.par_chunks(plane))
        .for_each(|(dst, src)| {
            for (r, row) in dst.chunks_mut(wp).enumerate() {
                match r.checked_sub(ph).filter(|&iy| iy < g.h) {
                    Some(iy) => {
                        row[..pw].fill(T::zero());
                        row[pw..pw + g.w].copy_from_slice(&src[iy * g.w..(iy + 1) * g.w]);
                        row[pw + g.w..].fill(T::zero());
                    }
                    None => row.fill(T::zero()),
                }
            }
        });
}
