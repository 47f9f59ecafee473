//! The AVX2 + FMA micro-kernels: a 6 × 16 tile of C in 12 ymm registers, and a 6 × 8 one for
//! the columns left over.
//!
//! As in the AVX-512 kernels, the loops producing the sums keep them in registers: the stores
//! are vector stores, a residual has a kernel instance of its own, and the transposed store
//! runs out of line on a copy of the sums (inlined, it made the compiler keep every sum on
//! the stack, storing twelve vectors per step: half the speed).

use super::{Store, MR};
use std::arch::x86_64::*;
use std::ptr::null_mut;

/// Columns per panel: two vectors of 8.
pub const NR: usize = 16;

/// See [`super::MicroKernel`] (a [`Store`] without a residual).
///
/// # Safety
/// The CPU must support AVX2 and FMA; pointers as the driver guarantees.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn kernel(
    kc: usize,
    a: &[*const f32; MR],
    acs: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    debug_assert!(store.residual.is_null());
    kernel_body::<false, 2, false>(kc, a, acs, b, ldb, null_mut(), c, ldc, rows, cols, store)
}

/// [`kernel`] with the [`Store`]'s residual added (an instance of its own, so that the plain
/// kernel's store has no residual branch).
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn kernel_residual(
    kc: usize,
    a: &[*const f32; MR],
    acs: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    kernel_body::<true, 2, false>(kc, a, acs, b, ldb, null_mut(), c, ldc, rows, cols, store)
}

/// Columns per panel of the narrow kernel, for the columns left over by the wide one.
pub const NR_TAIL: usize = 8;

/// The narrow kernel: a 6 × 8 tile (six sums, one vector of B per step), its store taking a
/// residual when the [`Store`] has one. For the few columns left over by full panels (a
/// 196-position plane's last 4): a 16-wide tile for them computed four times as many.
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn kernel_tail(
    kc: usize,
    a: &[*const f32; MR],
    acs: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    if store.residual.is_null() {
        kernel_body::<false, 1, false>(kc, a, acs, b, ldb, null_mut(), c, ldc, rows, cols, store)
    } else {
        kernel_body::<true, 1, false>(kc, a, acs, b, ldb, null_mut(), c, ldc, rows, cols, store)
    }
}

/// See [`super::PackingKernel`]: [`kernel`] (with the [`Store`]'s residual when it has one)
/// reading a full panel of B where it lies, `ldb` apart, and copying each step's sixteen
/// values to `dst`, so that the panel is packed by the first row block that uses it.
///
/// # Safety
/// As [`kernel`]; `dst` holds `kc·16` values and overlaps nothing else.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn kernel_packing(
    kc: usize,
    a: &[*const f32; MR],
    acs: usize,
    b: *const f32,
    ldb: usize,
    dst: *mut f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    if store.residual.is_null() {
        kernel_body::<false, 2, true>(kc, a, acs, b, ldb, dst, c, ldc, rows, cols, store)
    } else {
        kernel_body::<true, 2, true>(kc, a, acs, b, ldb, dst, c, ldc, rows, cols, store)
    }
}

/// [`kernel`]'s loop and store for a tile of `V` vectors per row, adding the residual when
/// `RES`, and with `PACK` storing each step's values of B to `dst` (`8·V` apart).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn kernel_body<const RES: bool, const V: usize, const PACK: bool>(
    kc: usize,
    a: &[*const f32; MR],
    acs: usize,
    b: *const f32,
    ldb: usize,
    dst: *mut f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    let mut s = [[_mm256_setzero_ps(); V]; MR];
    let mut ap = *a;
    let mut bp = b;
    let mut dp = dst;
    for _ in 0..kc {
        let bv: [__m256; V] = std::array::from_fn(|j| _mm256_loadu_ps(bp.add(8 * j)));
        if PACK {
            for (j, &v) in bv.iter().enumerate() {
                _mm256_storeu_ps(dp.add(8 * j), v);
            }
            dp = dp.add(8 * V);
        }
        for i in 0..MR {
            let av = _mm256_set1_ps(*ap[i]);
            for j in 0..V {
                s[i][j] = _mm256_fmadd_ps(av, bv[j], s[i][j]);
            }
            // Past the last step the pointer may leave A: never read, so wrapping.
            ap[i] = ap[i].wrapping_add(acs);
        }
        bp = bp.wrapping_add(ldb);
    }
    store_tile::<RES, V>(&s, c, ldc, rows, cols, store);
}

/// See [`super::GatherKernel`]: A's rows gathered from an image through tap offsets, B packed.
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn kernel_gather(
    taps: &[usize],
    first: usize,
    steps: usize,
    a: &[*const f32; MR],
    pp: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    let args = (first, steps, a, pp, b, c, ldc, rows, cols, store);
    match taps.len() {
        1 => gather::<_, false>(&[taps[0]], args),
        // A 3×3 kernel without dilation within a row: three runs of three adjacent values.
        9 if (0..9).all(|t| taps[t] == taps[t / 3 * 3] + t % 3) && taps[0] == 0 => {
            gather::<_, true>(&<[usize; 9]>::try_from(taps).unwrap_or_default(), args)
        }
        9 => gather::<_, false>(&<[usize; 9]>::try_from(taps).unwrap_or_default(), args),
        _ => gather::<_, false>(taps, args),
    }
}

/// [`kernel_gather`]'s arguments after the taps.
type GatherArgs<'a> = (
    usize,
    usize,
    &'a [*const f32; MR],
    usize,
    *const f32,
    *mut f32,
    usize,
    usize,
    usize,
    &'a Store<f32>,
);

/// [`kernel_gather`]'s loop, compiled for one tap, for nine (3×3), for nine in three runs of
/// three adjacent values (`RUNS`: a 3×3 kernel without dilation) and for any, then the store.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn gather<Taps: AsRef<[usize]> + ?Sized, const RUNS: bool>(
    taps: &Taps,
    args: GatherArgs<'_>,
) {
    let (first, steps, a, pp, b, c, ldc, rows, cols, store) = args;
    let taps = taps.as_ref();
    // A strip of three positions or fewer (a plane's last, as at 7×7) at half the cost.
    let s = if rows > MR / 2 {
        gather_sums::<RUNS, MR>(taps, first, steps, a, pp, b)
    } else {
        gather_few::<RUNS>(taps, first, steps, a, pp, b)
    };
    // A residual comes only with the transposed store (the last block's).
    debug_assert!(store.residual.is_null() || !store.transposed.is_null());
    if store.transposed.is_null() {
        store_tile::<false, 2>(&s, c, ldc, rows, cols, store);
    } else {
        store_transposed(&s, c, ldc, rows, cols, store);
    }
}

/// [`gather_sums`] of three rows, out of line (inlined beside the six-row loop, it cost that
/// loop 1 % at 56×56).
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
unsafe fn gather_few<const RUNS: bool>(
    all: &[usize],
    first: usize,
    steps: usize,
    a: &[*const f32; MR],
    pp: usize,
    b: *const f32,
) -> [[__m256; 2]; MR] {
    gather_sums::<RUNS, { MR / 2 }>(all, first, steps, a, pp, b)
}

/// The sums of [`kernel_gather`]'s steps for the tile's first `R` rows (the others zero,
/// unused): the first channel's taps from `first`, whole
/// channels, the last channel's first taps — the packed GEMM's order of steps, so that its
/// blocks of steps are the same. Returned by value: a function of its own, whose sums are only
/// ever indexed by constants, so that they stay in registers (with the store's loops over
/// `rows` in the same function, the compiler kept them on the stack and stored all twelve at
/// every step). With `RUNS` (taps `[0, 1, 2, r, r+1, r+2, 2r, 2r+1, 2r+2]`), a whole channel's
/// addresses are a position's pointer, `0`, `r` or `2r`, and a constant: with nine offsets
/// the compiler kept a pointer per position and tap (54) on the stack and loaded one per
/// value; this way 3×3 layers ran 4–9 % faster. The compiler came back to the 54 pointers by
/// itself (hoisting them out of the loop) until each channel's pointers went through
/// `opaque` (see `next`).
#[inline(always)]
unsafe fn gather_sums<const RUNS: bool, const R: usize>(
    all: &[usize],
    first: usize,
    steps: usize,
    a: &[*const f32; MR],
    pp: usize,
    b: *const f32,
) -> [[__m256; 2]; MR] {
    let kk = all.len();
    let mut s = [[_mm256_setzero_ps(); 2]; MR];
    let mut ap = *a;
    let mut bp = b;
    // One step: a macro, not a closure, so that the sums stay in registers.
    macro_rules! step {
        ($ap:expr, $t:expr) => {{
            let bv = [_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8))];
            for i in 0..R {
                let av = _mm256_set1_ps(*$ap[i].add($t));
                for j in 0..2 {
                    s[i][j] = _mm256_fmadd_ps(av, bv[j], s[i][j]);
                }
            }
            bp = bp.add(NR);
        }};
    }
    // Past the last channel the pointers may leave the image: never read, so wrapping. Each
    // channel's pointers pass through `opaque`: seeing them advance by `pp`, the compiler
    // kept a pointer per position and tap (54 with `RUNS`) on the stack, outside the loop, and
    // loaded one for every value; so it keeps six, and the taps' offsets (ResNet-50's 3×3
    // layers 1.7–2.2 % faster, ResNet-18's forward 0.7 %).
    let next =
        |ap: &mut [*const f32; MR]| ap.iter_mut().for_each(|p| *p = opaque(p.wrapping_add(pp)));
    let head = (kk - first).min(steps);
    if first > 0 {
        for &t in &all[first..first + head] {
            step!(ap, t);
        }
        next(&mut ap);
    }
    let rest = steps - if first > 0 { head } else { 0 };
    for _ in 0..rest / kk {
        if RUNS {
            let (r1, r2) = (all[3], all[6]);
            step!(ap, 0);
            step!(ap, 1);
            step!(ap, 2);
            step!(ap, r1);
            step!(ap, r1 + 1);
            step!(ap, r1 + 2);
            step!(ap, r2);
            step!(ap, r2 + 1);
            step!(ap, r2 + 2);
        } else {
            for &t in all {
                step!(ap, t);
            }
        }
        next(&mut ap);
    }
    for &t in &all[..rest % kk] {
        step!(ap, t);
    }
    s
}

/// `p`, through an empty `asm!` the compiler cannot see into: an address it cannot compute
/// ahead of the loop that uses it.
#[inline(always)]
fn opaque(p: *const f32) -> *const f32 {
    let mut addr = p.addr();
    // SAFETY: the template is empty: no instruction runs, no memory is touched.
    unsafe {
        std::arch::asm!("/* {0} */", inout(reg) addr, options(pure, nomem, nostack, preserves_flags))
    };
    p.with_addr(addr)
}

/// `n` (< 8) values from `p` as a vector, the other lanes zero.
#[inline(always)]
unsafe fn load_part(p: *const f32, n: usize) -> __m256 {
    let mut lanes = [0f32; 8];
    std::ptr::copy_nonoverlapping(p, lanes.as_mut_ptr(), n);
    _mm256_loadu_ps(lanes.as_ptr())
}

/// A vector's first `n` values from `p` (all eight from 8 up), or a part of them.
#[inline(always)]
unsafe fn load(p: *const f32, n: usize) -> __m256 {
    if n >= 8 {
        _mm256_loadu_ps(p)
    } else {
        load_part(p, n)
    }
}

/// Stores a tile's sums (`V` vectors per row) as [`Store`] says: `rows` rows, `cols` columns.
#[inline(always)]
unsafe fn store_tile<const RES: bool, const V: usize>(
    s: &[[__m256; V]; MR],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    if rows == MR && cols >= 8 * V {
        // A whole tile: every index a constant, so that no sum waits on the stack for a row
        // known only at run time.
        for (i, si) in s.iter().enumerate() {
            for (j, &v) in si.iter().enumerate() {
                let p = c.add(i * ldc + 8 * j);
                let res = RES.then(|| _mm256_loadu_ps(store.residual.add(i * ldc + 8 * j)));
                _mm256_storeu_ps(p, finish(v, i, 8 * j, 8, p, res, store));
            }
        }
        return;
    }
    for (i, si) in s.iter().enumerate().take(rows) {
        let crow = c.add(i * ldc);
        for (j, &v) in si.iter().enumerate() {
            let lane = j * 8;
            if lane >= cols {
                break;
            }
            let left = cols - lane;
            let p = crow.add(lane);
            let res = RES.then(|| load(store.residual.add(i * ldc + lane), left));
            let v = finish(v, i, lane, left, p, res, store);
            if left >= 8 {
                _mm256_storeu_ps(p, v);
            } else {
                let mut lanes = [0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                std::ptr::copy_nonoverlapping(lanes.as_ptr(), p, left);
            }
        }
    }
}

/// [`store_tile`] into `store.transposed`: each sum vector finished, then its lanes stored
/// `ldt` apart. Out of line, on a copy of the sums, so that the loop producing them keeps
/// them in registers.
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_transposed(
    s: &[[__m256; 2]; MR],
    c: *const f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    if rows == MR && cols == NR {
        return store_transposed_whole(s, c, ldc, store);
    }
    let mut lanes = [0f32; 8];
    for (i, si) in s.iter().enumerate().take(rows) {
        for (j, &v) in si.iter().enumerate() {
            let lane = j * 8;
            if lane >= cols {
                break;
            }
            let left = (cols - lane).min(8);
            // C is read only when accumulating (it may be an empty buffer otherwise).
            let p = c.wrapping_add(i * ldc + lane);
            let to = store.transposed.add(lane * store.ldt + i);
            // The residual, laid out as the output: its lanes gathered as they are stored.
            let res = (!store.residual.is_null()).then(|| {
                let r = store.residual.add(lane * store.ldt + i);
                lanes = [0f32; 8];
                (0..left).for_each(|l| lanes[l] = *r.add(l * store.ldt));
                _mm256_loadu_ps(lanes.as_ptr())
            });
            _mm256_storeu_ps(lanes.as_mut_ptr(), finish(v, i, lane, left, p, res, store));
            for (l, &x) in lanes.iter().enumerate().take(left) {
                *to.add(l * store.ldt) = x;
            }
        }
    }
}

/// [`store_transposed`] of a whole tile (six positions × sixteen filters): each half's six
/// row vectors transposed in registers (an 8 × 8 transpose, two rows zero), so that a
/// filter's six positions go out as two stores (four values and two), where storing lane by
/// lane took 4 % of a 3×3 layer. The same operations on each value, so the same bits: the
/// bias (or C) is added before the transpose, the residual and the clamp after it.
#[inline(always)]
unsafe fn store_transposed_whole(
    s: &[[__m256; 2]; MR],
    c: *const f32,
    ldc: usize,
    store: &Store<f32>,
) {
    let ldt = store.ldt;
    let no_clamp = Store {
        clamp: None,
        ..*store
    };
    for (j, lane) in [0, 8].into_iter().enumerate() {
        // A loop, not `array::from_fn`: a closure would not inherit the target features.
        let mut r = [_mm256_setzero_ps(); MR];
        for (i, r) in r.iter_mut().enumerate() {
            let p = c.wrapping_add(i * ldc + lane);
            *r = finish(s[i][j], i, lane, 8, p, None, &no_clamp);
        }
        let zero = _mm256_setzero_ps();
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let u = [
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        ];
        let v = [
            _mm256_shuffle_ps::<0x44>(t4, zero),
            _mm256_shuffle_ps::<0xEE>(t4, zero),
            _mm256_shuffle_ps::<0x44>(t5, zero),
            _mm256_shuffle_ps::<0xEE>(t5, zero),
        ];
        // Column l of the half: positions 0–3 in u's half, 4–5 in v's.
        for l in 0..8 {
            let (q, hi) = (l % 4, l >= 4);
            let (mut lo4, mut hi2) = if hi {
                (
                    _mm256_extractf128_ps::<1>(u[q]),
                    _mm256_extractf128_ps::<1>(v[q]),
                )
            } else {
                (_mm256_castps256_ps128(u[q]), _mm256_castps256_ps128(v[q]))
            };
            let to = store.transposed.add((lane + l) * ldt);
            if !store.residual.is_null() {
                let rp = store.residual.add((lane + l) * ldt);
                lo4 = _mm_add_ps(lo4, _mm_loadu_ps(rp));
                // Unaligned 8-byte accesses (`_mm_loadu_si64`, not `_mm_load_sd`, whose `f64`
                // pointer must be aligned).
                hi2 = _mm_add_ps(hi2, _mm_castsi128_ps(_mm_loadu_si64(rp.add(4).cast())));
            }
            if let Some((lo, hi)) = store.clamp {
                let (lo, hi) = (_mm_set1_ps(lo), _mm_set1_ps(hi));
                lo4 = _mm_min_ps(_mm_max_ps(lo4, lo), hi);
                hi2 = _mm_min_ps(_mm_max_ps(hi2, lo), hi);
            }
            _mm_storeu_ps(to, lo4);
            _mm_storeu_si64(to.add(4).cast(), _mm_castps_si128(hi2));
        }
    }
}

/// A sum vector as [`Store`] says, for row `i` of the tile and its `left` columns from
/// `lane` (all eight from 8 up), `p` its place in C, `res` the residual's values there.
#[inline(always)]
unsafe fn finish(
    v: __m256,
    i: usize,
    lane: usize,
    left: usize,
    p: *const f32,
    res: Option<__m256>,
    store: &Store<f32>,
) -> __m256 {
    let v = if store.accumulate {
        _mm256_add_ps(v, load(p, left))
    } else if store.bias.is_null() {
        v
    } else if store.by_column {
        _mm256_add_ps(v, load(store.bias.add(lane), left))
    } else {
        _mm256_add_ps(v, _mm256_set1_ps(*store.bias.add(i)))
    };
    let v = res.map_or(v, |r| _mm256_add_ps(v, r));
    match store.clamp {
        // max(v, lo) gives lo for a NaN v (the second operand), as f32::max does.
        Some((lo, hi)) => _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo)), _mm256_set1_ps(hi)),
        None => v,
    }
}
