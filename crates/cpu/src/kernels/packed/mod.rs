//! A blocked GEMM whose right-hand operand is packed by the caller, so a convolution can pack
//! its im2col columns straight from the image (no im2col buffer) and the weights are read in
//! place (no packing of the left operand: at batch 1 it is the larger one).
//!
//! `C (m×n) = A (m×k) · B (k×n) [+ C]`. B arrives through a [`Pack`] callback in panels of
//! `nr` columns (a row-major B's full panels copied by the first row strip's kernel calls as
//! they compute: [`PackingKernel`]); the micro-kernel keeps an
//! `MR × nr` tile of C in registers, broadcasting six values of A and loading `nr` of B per
//! step. Loop order: column blocks of [`NC`] (the packed
//! block stays in L2), depth blocks of [`KC`] (a convolution's own, whole channels, when it
//! may also run as a direct convolution: `direct::depth_block`), row strips of `MR` (six rows
//! of A, from L1),
//! then the panels. A block's leftover columns go to a narrow kernel (`tail_nr` wide) or, when
//! few (`rows_cols`) and A's steps contiguous, to a kernel with C's rows in the vector lanes
//! ([`RowsKernel`], AVX2: `avx2_rows.rs`), every `ROWS_EVERY` rows. The micro-kernel is
//! chosen at run time (AVX-512F, AVX2 + FMA); elsewhere, and for f64, B is packed as one
//! row-major matrix and handed to `matrixmultiply`.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_rows;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod buffer;
mod pack;

pub use pack::{pack_rows, Pack, Strided};

use super::Element;

/// Rows of C per micro-kernel tile.
pub const MR: usize = 6;
/// Depth of one packed block.
pub const KC: usize = 256;
/// Columns of one packed block (a multiple of every kernel's panel width).
pub const NC: usize = 512;
/// Rows of C per call of a [`RowsKernel`]: a multiple of [`MR`] and of eight, whose A (24 rows
/// of a depth block: 24 KiB at [`KC`] steps, 27 KiB at a 3×3 convolution's 288) is still in L1
/// from the wide panels.
const ROWS_EVERY: usize = 24;

/// A micro-kernel: `C[rows × cols] = store(Σ_k A[i][k] · B[k][j])` over `kc` steps, A's row
/// `i` at `a[i]` advancing by `acs` per step, B a `kc × nr` panel whose rows are `ldb` apart
/// (`nr` when packed; the row stride of B itself when read in place), `store` as [`Store`]
/// says.
pub type MicroKernel<T> = unsafe fn(
    kc: usize,
    a: &[*const T; MR],
    acs: usize,
    b: *const T,
    ldb: usize,
    c: *mut T,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<T>,
);

/// A [`MicroKernel`] for a full panel of a B that lies row-major in memory (`b`, rows `ldb`
/// apart), which also copies each step's `nr` values to `dst` (`kc·nr` values, contiguous):
/// the panel packed by the first row block that uses it, its reads among that block's
/// arithmetic, where a pass of its own before the block waited on memory. The sums, and so
/// the bits, are the plain kernel's.
pub type PackingKernel<T> = unsafe fn(
    kc: usize,
    a: &[*const T; MR],
    acs: usize,
    b: *const T,
    ldb: usize,
    dst: *mut T,
    c: *mut T,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<T>,
);

/// A kernel for a block's last few columns with the rows in the vector lanes:
/// `C[rows × cols] = store(Σ_k A[i][k] · B[k][j])` over `kc` steps for `cols` up to
/// [`Kernel::rows_cols`], A's row `i` at `a + i·ars` (its steps contiguous), B a narrow panel
/// (rows `ldb` apart), `store` as [`Store`] says for row 0 (bias and residual by row).
pub type RowsKernel<T> = unsafe fn(
    kc: usize,
    a: *const T,
    ars: usize,
    b: *const T,
    ldb: usize,
    c: *mut T,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<T>,
);

/// A micro-kernel whose A is gathered from an image (a convolution without im2col): as
/// [`MicroKernel`] over the `steps` steps from `(0, first)` in the order `(ci, t)` — channel
/// `ci`, tap `t` of `taps` — step `(ci, t)` reading A's row `i` at `a[i] + ci·pp + taps[t]`,
/// B's rows packed one after the other (`nr` apart).
pub type GatherKernel<T> = unsafe fn(
    taps: &[usize],
    first: usize,
    steps: usize,
    a: &[*const T; MR],
    pp: usize,
    b: *const T,
    c: *mut T,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<T>,
);

/// A [`GatherKernel`] that continues sums: its tile's sums start from `init` (the full
/// `MR × nr` tile, rows `nr` apart, as a store with neither bias, residual nor clamp left them
/// after the steps before) instead of zero, so that a block of steps taken in two calls gives
/// the bits of one call.
pub type GatherFromKernel<T> = unsafe fn(
    init: *const T,
    taps: &[usize],
    first: usize,
    steps: usize,
    a: &[*const T; MR],
    pp: usize,
    b: *const T,
    c: *mut T,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<T>,
);

/// How a micro-kernel stores its sums `s` at tile element `(i, j)`: `v = C + s` when
/// `accumulate`, else `s + bias[i]` (`bias[j]` when `by_column`; `s` when `bias` is null);
/// then `v + residual` when `residual` is set (laid out as the destination); then `clamp(v,
/// lo, hi)` when `clamp` is set (`max` then `min`, NaN giving `lo`, as `f32::max`); `v` goes
/// to C, or to `transposed[j·ldt + i]` when that is not null (C then only read). A
/// convolution's bias, a residual sum and a rectifier so cost no pass of their own over the
/// output. Not every kernel takes every part: a transposed store only the gather kernels
/// ([`GatherKernel`], which take a residual only with it); a residual, of the others, only
/// [`Kernel::run_residual`], [`Kernel::tail`] and [`Kernel::rows`] (the plain `run` may
/// ignore it).
#[derive(Clone, Copy)]
pub struct Store<T> {
    /// Add to C's values.
    pub accumulate: bool,
    /// The tile's first row's bias (rows follow), or null.
    pub bias: *const T,
    /// `bias` is the first column's (columns follow) instead.
    pub by_column: bool,
    /// Where the tile goes transposed (its element `(0, 0)`), or null: C.
    pub transposed: *mut T,
    /// The row stride of `transposed`.
    pub ldt: usize,
    /// Bounds to clamp to.
    pub clamp: Option<(T, T)>,
    /// The tile's element `(0, 0)` in a tensor added before the clamp, laid out as the
    /// destination (`ldc` apart or, when transposed, `ldt`), or null.
    pub residual: *const T,
}

/// What the GEMM does around the product: `C = clamp(A·B + bias + residual)`, each part
/// optional (`C += A·B` when `accumulate`, which takes no bias).
#[derive(Clone, Copy)]
pub struct Epilogue<'a, T> {
    /// Add the product to C.
    pub accumulate: bool,
    /// One value per row of C, added to the product.
    pub bias: Option<&'a [T]>,
    /// Bounds the result is clamped to.
    pub clamp: Option<(T, T)>,
    /// A tensor laid out as C (row stride `ldc`), added before the clamp.
    pub residual: Option<*const T>,
}

impl<T> Epilogue<'_, T> {
    /// `C = A·B`, or `C += A·B` when `accumulate`.
    pub fn plain(accumulate: bool) -> Self {
        Epilogue {
            accumulate,
            bias: None,
            clamp: None,
            residual: None,
        }
    }
}

/// A micro-kernel and its panel width.
#[derive(Clone, Copy)]
pub struct Kernel<T> {
    /// Name, for benchmarks and tests.
    pub name: &'static str,
    /// Columns per packed panel.
    pub nr: usize,
    /// The kernel.
    pub run: MicroKernel<T>,
    /// The kernel for a [`Store`] with a residual (`run` may take none).
    pub run_residual: MicroKernel<T>,
    /// `run` (or `run_residual`, by the [`Store`]) packing the panel of B it reads in place
    /// ([`PackingKernel`]); without one, a row-major B's full panels are packed by a pass.
    pub run_packing: Option<PackingKernel<T>>,
    /// Columns per panel of the kernel for the columns left over by `run`'s full panels.
    pub tail_nr: usize,
    /// That kernel.
    pub tail: MicroKernel<T>,
    /// A kernel for up to `rows_cols` leftover columns with the rows in the vector lanes
    /// ([`RowsKernel`]), used instead of `tail` where A's steps are contiguous.
    pub rows: Option<RowsKernel<T>>,
    /// The most leftover columns `rows` takes.
    pub rows_cols: usize,
    /// `run` with A gathered from an image ([`GatherKernel`]; B in panels of `nr`).
    pub gather: GatherKernel<T>,
    /// `gather` continuing sums, where this kernel takes a 3×3 convolution's depth blocks in
    /// chunks ([`Kernel::gather_channels`]).
    pub gather_from: Option<GatherFromKernel<T>>,
    /// The most channels of a 3×3 kernel per `gather` call when `gather_from` is set: each
    /// depth block ([`super::direct::depth_block`]) is taken in chunks of that many channels,
    /// the sums carried between them (the same bits as one call), so that a chunk's packed
    /// weight stays in L1 while it serves every strip of a group.
    pub gather_channels: usize,
    /// The largest output plane (positions) of a 3×3 convolution that the direct convolution
    /// takes with this kernel ([`super::direct::applies`]).
    pub direct_plane: usize,
    /// The fewest 4×4 tiles per plane at which a convolution that may round as Winograd F(4×4)
    /// does ([`super::winograd4::pays`]).
    pub f4_forward_tiles: usize,
    /// The fewest multiply-adds per Winograd product (tiles × channels × filters) at which a
    /// forward convolution that may round as F(4×4), and that the direct convolution could
    /// take, runs by F(4×4) ([`super::winograd4::pays`]).
    pub f4_forward_macs: usize,
    /// The fewest channels at which a backward-data that the direct convolution could take
    /// runs by Winograd F(4×4) ([`super::winograd4::pays_backward`]).
    pub f4_backward_channels: usize,
}

/// The f32 micro-kernels this CPU can run, fastest first (empty off x86-64 or without AVX2).
pub fn f32_kernels() -> Vec<Kernel<f32>> {
    #[allow(unused_mut)]
    let mut out: Vec<Kernel<f32>> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            out.push(Kernel {
                name: "avx512",
                nr: avx512::NR,
                run: avx512::kernel,
                run_residual: avx512::kernel_residual,
                run_packing: Some(avx512::kernel_packing),
                tail_nr: avx512::NR_TAIL,
                tail: avx512::kernel_tail,
                rows: None,
                rows_cols: 0,
                gather: avx512::kernel_gather,
                gather_from: Some(avx512::kernel_gather_from),
                gather_channels: 16,
                direct_plane: super::direct::MAX_PLANE,
                f4_forward_tiles: super::winograd4::BLOCK_FROM,
                f4_forward_macs: 4 << 20,
                f4_backward_channels: 128,
            });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            out.push(Kernel {
                name: "avx2",
                nr: avx2::NR,
                run: avx2::kernel,
                run_residual: avx2::kernel_residual,
                run_packing: Some(avx2::kernel_packing),
                tail_nr: avx2::NR_TAIL,
                tail: avx2::kernel_tail,
                rows: Some(avx2_rows::kernel),
                rows_cols: avx2_rows::MAX_COLS,
                gather: avx2::kernel_gather,
                gather_from: None,
                gather_channels: usize::MAX,
                direct_plane: usize::MAX,
                f4_forward_tiles: super::winograd4::SMALL,
                f4_forward_macs: 0,
                f4_backward_channels: 0,
            });
        }
    }
    out
}

/// The f32 kernel used by the backend: the fastest available unless `GRADCAM_CPU_KERNEL`
/// names another (`avx512`, `avx2`, or `portable` for the fallback).
pub fn f32_default() -> Option<Kernel<f32>> {
    static CHOICE: std::sync::OnceLock<Option<Kernel<f32>>> = std::sync::OnceLock::new();
    *CHOICE.get_or_init(|| {
        let all = f32_kernels();
        match std::env::var("GRADCAM_CPU_KERNEL") {
            Ok(name) => all.into_iter().find(|k| k.name == name),
            Err(_) => all.into_iter().next(),
        }
    })
}

/// The name of the kernel [`Element::packed_kernel`] gives for f32 (`portable` when none).
pub fn f32_default_name() -> &'static str {
    f32_default().map_or("portable", |k| k.name)
}

/// `C = A·B` (or `C += A·B` when `accumulate`), A's element `(i, k)` at `a[i·ars + k·acs]`,
/// C's element `(i, j)` at `c[i·ldc + j]`, B given by `pack`.
///
/// # Safety
/// Every A and C index within the sizes must be inside its allocation (B's are checked: by
/// the packer's indexing, or by [`Pack::in_place`]); C must not alias A or anything `pack`
/// reads, and no other thread may touch C's elements meanwhile.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm<T: Element>(
    kernel: Option<Kernel<T>>,
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    ars: usize,
    acs: usize,
    pack: &dyn Pack<T>,
    accumulate: bool,
    c: *mut T,
    ldc: usize,
) {
    gemm_with(
        kernel,
        m,
        k,
        n,
        a,
        ars,
        acs,
        pack,
        Epilogue::plain(accumulate),
        c,
        ldc,
        KC,
    )
}

/// [`gemm`] with an [`Epilogue`]: `C = clamp(A·B + bias + residual)` (a bias needs
/// `!accumulate`; with the portable fallback the bias, residual and clamp are applied after
/// the product), over depth blocks of `kc_block` steps ([`KC`] for [`gemm`]; a convolution
/// the direct convolution may also take passes [`super::direct::depth_block`], so that both
/// give the same bits).
///
/// # Safety
/// As [`gemm`]; a bias has at least `m` values; a residual's `m` rows of `n` values, `ldc`
/// apart, are inside its allocation (read on the last depth block).
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_with<T: Element>(
    kernel: Option<Kernel<T>>,
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    ars: usize,
    acs: usize,
    pack: &dyn Pack<T>,
    epi: Epilogue<'_, T>,
    c: *mut T,
    ldc: usize,
    kc_block: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(epi.bias.is_none_or(|b| b.len() >= m && !epi.accumulate));
    let accumulate = epi.accumulate;
    let Some(kern) = kernel else {
        let mut b = vec![T::zero(); k * n];
        pack.pack(0, k, 0, n, n.max(1), &mut b);
        let beta = if accumulate { T::one() } else { T::zero() };
        T::gemm_raw(
            m,
            k,
            n,
            T::one(),
            a,
            ars as isize,
            acs as isize,
            b.as_ptr(),
            n as isize,
            1,
            beta,
            c,
            ldc as isize,
            1,
        );
        finish(m, n, c, ldc, &epi);
        return;
    };
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                std::slice::from_raw_parts_mut(c.add(i * ldc), n).fill(T::zero());
            }
        }
        finish(m, n, c, ldc, &epi);
        return;
    }
    let (nr, tnr) = (kern.nr, kern.tail_nr);
    // A block's full panels of `nr` columns, then its leftover columns: in panels of `tnr`
    // when they are few, else in one more wide panel, partly masked (the wide kernel keeps
    // more sums in flight: at 7×7, 49 columns run faster as 64 than as 4 × 16).
    let layout = |nc: usize| {
        let full = nc / nr * nr;
        let rem = nc - full;
        if rem > nr / 2 {
            (full + nr, 0)
        } else {
            (full, rem.div_ceil(tnr) * tnr)
        }
    };
    assert!(kc_block > 0, "a depth block of no steps");
    let kc_max = kc_block.min(k);
    let mut buf = buffer::take::<T>(buffer::Slot::Pack, NC.min(n).div_ceil(nr) * nr * kc_max);
    // Full panels of a row-major B are packed, not read where they lie, by every row strip:
    // read in place, the 16-column AVX2 panels' 256 rows, one cache line each and a plane
    // apart, conflict in L1 (3136 values apart, 56×56, they fall into 16 of its 64 sets), and
    // the 64-column AVX-512 panels' rows (3 KiB apart at 28×28, 12 KiB at 56×56) ran slower
    // (Intel AVX-512: ResNet-50's 1×1 layers 8–9 % faster packed by the kernel below,
    // docs/PERFORMANCE.md). Only a B whose rows are exactly one panel wide lies as its packed
    // panel already (Winograd's blocks of 64 tiles with AVX-512, of 16 with AVX2; a 1×1
    // convolution's 8×8 or 4×4 plane): read in place.
    let direct = pack.in_place(k, n).filter(|&(_, ld)| ld == nr);
    // Otherwise, with B row-major in memory and a kernel that packs as it computes, a block's
    // full panels are packed by the first row strip's kernel calls (`PackingKernel`):
    // ResNet-50's 1×1 layers at 56×56 ran 4–15 % faster than after a packing pass (one
    // thread), at 28×28 2–7 %.
    let source = pack
        .in_place(k, n)
        .filter(|_| direct.is_none())
        .zip(kern.run_packing);
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        let (main, tail) = layout(nc);
        // Full panels of a B already laid out as panels are read in place (no copy); the
        // rest is packed.
        let unpacked = if direct.is_some() { nc / nr * nr } else { 0 };
        for k0 in (0..k).step_by(kc_block) {
            let kc = kc_block.min(k - k0);
            let packed_wide = main - unpacked;
            let (wide, narrow) = buf[..(packed_wide + tail) * kc].split_at_mut(packed_wide * kc);
            // Full panels the first row strip packs (none read in place then: `unpacked` 0).
            let fused = if source.is_some() { nc / nr * nr } else { 0 };
            if packed_wide > fused {
                let (cols, dst) = (main.min(nc) - unpacked - fused, &mut wide[fused * kc..]);
                pack.pack(k0, kc, j0 + unpacked + fused, cols, nr, dst);
            }
            if tail > 0 {
                pack.pack(k0, kc, j0 + main, nc - main, tnr, narrow);
            }
            let acc = accumulate || k0 > 0;
            let bias = epi.bias.filter(|_| !acc);
            let last = k0 + kc == k;
            let clamp = epi.clamp.filter(|_| last);
            // Few leftover columns, A's steps contiguous: the rows kernel takes them for every
            // [`ROWS_EVERY`] rows, right after those rows' wide panels (their A still in L1).
            let by_rows = kern
                .rows
                .filter(|_| acs == 1 && tail > 0 && nc - main <= kern.rows_cols);
            let mut rows_done = 0;
            for i0 in (0..m).step_by(MR) {
                let rows = MR.min(m - i0);
                // The next strip's rows of A (contiguous steps: a weight) fetched into L2 while
                // this strip computes: a weight is read once per pass, in runs (a row's steps
                // in a depth block: 1 KiB) too short for the hardware prefetcher to follow.
                // Intel AVX-512, in the network: ResNet-50's five 1×1 layers at 7×7 4.5–4.9 →
                // 3.8–4.2 ms, all 33 1×1 stride-1 layers 0–8 % faster (docs/PERFORMANCE.md).
                if acs == 1 && i0 + MR < m {
                    for r in i0 + MR..(i0 + 2 * MR).min(m) {
                        super::prefetch(std::slice::from_raw_parts(a.add(r * ars + k0), kc));
                    }
                } else if i0 + MR < m && MR * ars * std::mem::size_of::<T>() <= 64 {
                    // Strided steps whose six rows span at most a line (Winograd's transformed
                    // weight, filters contiguous; or its tiles, a partial block's rows): the
                    // next strip's last row's line at every step, when at the block's first
                    // step it is not this strip's (the steps are a whole number of lines
                    // apart in practice). ResNet-50's 3×3 backward-data layers, then all by
                    // F(4×4), 17.0–19.5 → 16.1–17.1 ms in the network, Intel AVX-512.
                    let line = |p: *const T| p as usize / 64;
                    let last = a.add(((i0 + 2 * MR).min(m) - 1) * ars + k0 * acs);
                    if line(last) != line(a.add((i0 + rows - 1) * ars + k0 * acs)) {
                        for st in 0..kc {
                            super::prefetch(std::slice::from_raw_parts(last.add(st * acs), 1));
                        }
                    }
                }
                let rowp = |r: usize| a.add((i0 + r.min(rows - 1)) * ars + k0 * acs);
                let ap = [rowp(0), rowp(1), rowp(2), rowp(3), rowp(4), rowp(5)];
                let cp = c.add(i0 * ldc + j0);
                let store = Store {
                    accumulate: acc,
                    bias: bias.map_or(std::ptr::null(), |b| b.as_ptr().add(i0)),
                    by_column: false,
                    transposed: std::ptr::null_mut(),
                    ldt: 0,
                    clamp,
                    residual: std::ptr::null(),
                };
                // The residual's element at C's column `j` of the block, on the last depth block.
                let residual = |j: usize| {
                    let r = epi.residual.filter(|_| last);
                    r.map_or(std::ptr::null(), |r| r.add(i0 * ldc + j0 + j))
                };
                for p in 0..main / nr {
                    let (b, ldb) = match direct {
                        Some((d, ld)) if p * nr < unpacked => (d.add(k0 * ld + j0 + p * nr), ld),
                        _ => (wide.as_ptr().add((p * nr - unpacked) * kc), nr),
                    };
                    let cols = nr.min(nc - p * nr);
                    let at = cp.add(p * nr);
                    let store = Store {
                        residual: residual(p * nr),
                        ..store
                    };
                    match source {
                        Some(((src, ld), packing)) if i0 == 0 && p * nr < fused => {
                            let from = src.add(k0 * ld + j0 + p * nr);
                            let dst = wide.as_mut_ptr().add(p * nr * kc);
                            packing(kc, &ap, acs, from, ld, dst, at, ldc, rows, cols, &store);
                        }
                        _ => {
                            let run = if store.residual.is_null() {
                                kern.run
                            } else {
                                kern.run_residual
                            };
                            run(kc, &ap, acs, b, ldb, at, ldc, rows, cols, &store);
                        }
                    }
                }
                if let Some(rows_kernel) = by_rows {
                    let end = i0 + rows;
                    if end.is_multiple_of(ROWS_EVERY) || end == m {
                        // The block's store, from row `rows_done`.
                        let store = Store {
                            bias: bias.map_or(std::ptr::null(), |b| b.as_ptr().add(rows_done)),
                            residual: epi
                                .residual
                                .filter(|_| last)
                                .map_or(std::ptr::null(), |r| r.add(rows_done * ldc + j0 + main)),
                            ..store
                        };
                        rows_kernel(
                            kc,
                            a.add(rows_done * ars + k0),
                            ars,
                            narrow.as_ptr(),
                            tnr,
                            c.add(rows_done * ldc + j0 + main),
                            ldc,
                            end - rows_done,
                            nc - main,
                            &store,
                        );
                        rows_done = end;
                    }
                    continue;
                }
                for p in 0..tail / tnr {
                    let cols = tnr.min(nc - main - p * tnr);
                    let b = narrow.as_ptr().add(p * kc * tnr);
                    let at = cp.add(main + p * tnr);
                    let store = Store {
                        residual: residual(main + p * tnr),
                        ..store
                    };
                    (kern.tail)(kc, &ap, acs, b, tnr, at, ldc, rows, cols, &store);
                }
            }
        }
    }
}

/// The epilogue's bias and clamp over a finished product (the paths without a micro-kernel).
unsafe fn finish<T: Element>(m: usize, n: usize, c: *mut T, ldc: usize, epi: &Epilogue<'_, T>) {
    if epi.bias.is_none() && epi.clamp.is_none() && epi.residual.is_none() {
        return;
    }
    for i in 0..m {
        let row = std::slice::from_raw_parts_mut(c.add(i * ldc), n);
        if let Some(b) = epi.bias {
            row.iter_mut().for_each(|v| *v += b[i]);
        }
        if let Some(r) = epi.residual {
            let r = std::slice::from_raw_parts(r.add(i * ldc), n);
            row.iter_mut().zip(r).for_each(|(v, &r)| *v += r);
        }
        if let Some((lo, hi)) = epi.clamp {
            row.iter_mut().for_each(|v| *v = v.max(lo).min(hi));
        }
    }
}

#[cfg(test)]
mod tests;
