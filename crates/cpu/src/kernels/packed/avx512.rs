//! The AVX-512F micro-kernel: a 6 × 64 tile of C in 24 zmm registers.

use super::{Store, MR};
use std::arch::x86_64::*;
use std::ptr::null_mut;

/// Columns per panel: four vectors of 16.
pub const NR: usize = 64;

/// See [`super::MicroKernel`] (a [`Store`] without a residual).
///
/// # Safety
/// The CPU must support AVX-512F; pointers as the driver guarantees.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
    kernel_body::<false, false>(kc, a, acs, b, ldb, null_mut(), c, ldc, rows, cols, store)
}

/// [`kernel`] with the [`Store`]'s residual added: a kernel of its own, so that the plain one
/// is compiled exactly as before (a residual branch in its store cost it about 4 %).
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
    kernel_body::<true, false>(kc, a, acs, b, ldb, null_mut(), c, ldc, rows, cols, store)
}

/// See [`super::PackingKernel`]: [`kernel`] (with the [`Store`]'s residual when it has one)
/// reading a full panel of B where it lies, `ldb` apart, and copying each step's 64 values to
/// `dst`, so that the panel is packed by the first row block that uses it.
///
/// # Safety
/// As [`kernel`]; `dst` holds `kc·64` values and overlaps nothing else.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
        kernel_body::<false, true>(kc, a, acs, b, ldb, dst, c, ldc, rows, cols, store)
    } else {
        kernel_body::<true, true>(kc, a, acs, b, ldb, dst, c, ldc, rows, cols, store)
    }
}

/// [`kernel`]'s loop and store, adding the residual when `RES`, and with `PACK` storing each
/// step's 64 values of B to `dst` (64 apart).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn kernel_body<const RES: bool, const PACK: bool>(
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
    let mut s = [[_mm512_setzero_ps(); 4]; MR];
    let mut ap = *a;
    let mut bp = b;
    let mut dp = dst;
    for _ in 0..kc {
        let bv = [
            _mm512_loadu_ps(bp),
            _mm512_loadu_ps(bp.add(16)),
            _mm512_loadu_ps(bp.add(32)),
            _mm512_loadu_ps(bp.add(48)),
        ];
        if PACK {
            for (j, &v) in bv.iter().enumerate() {
                _mm512_storeu_ps(dp.add(16 * j), v);
            }
            dp = dp.add(NR);
        }
        for i in 0..MR {
            let av = _mm512_set1_ps(*ap[i]);
            for j in 0..4 {
                s[i][j] = _mm512_fmadd_ps(av, bv[j], s[i][j]);
            }
            // Past the last step the pointer may leave A: never read, so wrapping.
            ap[i] = ap[i].wrapping_add(acs);
        }
        bp = bp.wrapping_add(ldb);
    }
    store_tile::<RES>(&s, c, ldc, rows, cols, store);
}

/// See [`super::GatherKernel`]: A's rows gathered from an image through tap offsets, B packed.
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
    let args = (
        std::ptr::null(),
        first,
        steps,
        a,
        pp,
        b,
        c,
        ldc,
        rows,
        cols,
        store,
    );
    gather_by_taps::<false>(taps, args)
}

/// See [`super::GatherFromKernel`]: [`kernel_gather`] with the tile's sums starting from
/// `init`.
///
/// # Safety
/// As [`kernel`]; `init` holds a whole 6 × 64 tile (rows 64 apart).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub unsafe fn kernel_gather_from(
    init: *const f32,
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
    let args = (init, first, steps, a, pp, b, c, ldc, rows, cols, store);
    gather_by_taps::<true>(taps, args)
}

/// [`gather`] compiled for one tap, for nine and for any (`FROM`: the sums from `init`).
#[inline(always)]
unsafe fn gather_by_taps<const FROM: bool>(taps: &[usize], args: GatherArgs<'_>) {
    match taps.len() {
        1 => gather::<_, FROM>(&[taps[0]], args),
        9 => gather::<_, FROM>(&<[usize; 9]>::try_from(taps).unwrap_or_default(), args),
        _ => gather::<_, FROM>(taps, args),
    }
}

/// [`kernel_gather_from`]'s arguments after the taps, `init` first (null: sums from zero).
type GatherArgs<'a> = (
    *const f32,
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

/// [`kernel_gather`]'s and [`kernel_gather_from`]'s loop (`FROM`: the sums from `init`, else
/// zero),
/// compiled for one tap, for nine (3×3: whole channels unrolled) and for any: the first channel's taps from `first`, whole channels, the last channel's first
/// taps — the packed GEMM's order of steps, so that its blocks of steps are the same.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn gather<Taps: AsRef<[usize]> + ?Sized, const FROM: bool>(
    taps: &Taps,
    args: GatherArgs<'_>,
) {
    let (init, first, steps, a, pp, b, c, ldc, rows, cols, store) = args;
    let all = taps.as_ref();
    let kk = all.len();
    let mut s = [[_mm512_setzero_ps(); 4]; MR];
    if FROM {
        for (i, row) in s.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(init.add(i * NR + j * 16));
            }
        }
    }
    let mut ap = *a;
    let mut bp = b;
    // One step: a macro, not a closure, so that the sums stay in registers.
    macro_rules! step {
        ($ap:expr, $t:expr) => {{
            let bv = [
                _mm512_loadu_ps(bp),
                _mm512_loadu_ps(bp.add(16)),
                _mm512_loadu_ps(bp.add(32)),
                _mm512_loadu_ps(bp.add(48)),
            ];
            for i in 0..MR {
                let av = _mm512_set1_ps(*$ap[i].add($t));
                for j in 0..4 {
                    s[i][j] = _mm512_fmadd_ps(av, bv[j], s[i][j]);
                }
            }
            bp = bp.add(NR);
        }};
    }
    // Past the last channel the pointers may leave the image: never read, so wrapping.
    let next = |ap: &mut [*const f32; MR]| ap.iter_mut().for_each(|p| *p = p.wrapping_add(pp));
    let head = (kk - first).min(steps);
    if first > 0 {
        for &t in &all[first..first + head] {
            step!(ap, t);
        }
        next(&mut ap);
    }
    let rest = steps - if first > 0 { head } else { 0 };
    for _ in 0..rest / kk {
        for &t in taps.as_ref() {
            step!(ap, t);
        }
        next(&mut ap);
    }
    for &t in &all[..rest % kk] {
        step!(ap, t);
    }
    // A residual comes only with the transposed store (the last block's).
    debug_assert!(store.residual.is_null() || !store.transposed.is_null());
    if store.transposed.is_null() {
        store_tile::<false>(&s, c, ldc, rows, cols, store);
    } else {
        let copy = s;
        store_transposed(&copy, c, ldc, rows, cols, store);
    }
}

/// Stores a 6 × 64 tile's sums as [`Store`] says: `rows` rows, `cols` columns.
#[inline(always)]
unsafe fn store_tile<const RES: bool>(
    s: &[[__m512; 4]; MR],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    for (i, si) in s.iter().enumerate().take(rows) {
        let crow = c.add(i * ldc);
        for (j, &v) in si.iter().enumerate() {
            let lane = j * 16;
            if lane >= cols {
                break;
            }
            let left = cols - lane;
            let mask = lanes_mask(left);
            let p = crow.add(lane);
            let res = residual::<RES>(store.residual, i * ldc + lane, mask);
            _mm512_mask_storeu_ps(p, mask, finish(v, i, lane, mask, p, res, store));
        }
    }
}

/// The mask of a vector's first `n` lanes (all sixteen from 16 up).
#[inline(always)]
fn lanes_mask(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        (1u16 << n) - 1
    }
}

/// The residual's vector at `at` (its first `mask` lanes) when `RES`.
#[inline(always)]
unsafe fn residual<const RES: bool>(r: *const f32, at: usize, mask: __mmask16) -> Option<__m512> {
    RES.then(|| _mm512_maskz_loadu_ps(mask, r.add(at)))
}

/// [`store_tile`] into `store.transposed`: each sixteen filters' row vectors finished (C or
/// the bias added), transposed in registers (an 8 × 16 transpose, the rows past `rows` zero),
/// then each filter's positions stored as one masked store, the residual loaded and the clamp
/// applied alike. Storing lane by lane (a vector to the stack, then a store per value) took
/// 46 % of the 7×7 stem's time and 3 % of a 3×3 layer's. The same operations on each value,
/// so the same bits. Out of line, on a copy of the sums, so that the loop producing them
/// keeps them in registers.
#[inline(never)]
#[target_feature(enable = "avx512f")]
unsafe fn store_transposed(
    s: &[[__m512; 4]; MR],
    c: *const f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    let ldt = store.ldt;
    let no_clamp = Store {
        clamp: None,
        ..*store
    };
    let zero = _mm512_setzero_ps();
    // Lanes 0–3 of a and b's first 128-bit quarters, then of their second: two columns'
    // eight positions, one per 256-bit half.
    let first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    // Their third and fourth quarters.
    let second = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    let rows_mask = lanes_mask(rows);
    for (j, lane) in [0, 16, 32, 48].into_iter().enumerate() {
        if lane >= cols {
            break;
        }
        let mask = lanes_mask(cols - lane);
        let mut r = [zero; 8];
        for (i, r) in r.iter_mut().enumerate().take(rows) {
            // C is read only when accumulating (it may be an empty buffer otherwise).
            let p = c.wrapping_add(i * ldc + lane);
            *r = finish(s[i][j], i, lane, mask, p, None, &no_clamp);
        }
        let t = [
            _mm512_unpacklo_ps(r[0], r[1]),
            _mm512_unpackhi_ps(r[0], r[1]),
            _mm512_unpacklo_ps(r[2], r[3]),
            _mm512_unpackhi_ps(r[2], r[3]),
            _mm512_unpacklo_ps(r[4], r[5]),
            _mm512_unpackhi_ps(r[4], r[5]),
            _mm512_unpacklo_ps(r[6], r[7]),
            _mm512_unpackhi_ps(r[6], r[7]),
        ];
        // u[q]: positions 0–3 of columns 4k + q (quarter k); v[q]: positions 4–7.
        let u = [
            _mm512_shuffle_ps::<0x44>(t[0], t[2]),
            _mm512_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm512_shuffle_ps::<0x44>(t[1], t[3]),
            _mm512_shuffle_ps::<0xEE>(t[1], t[3]),
        ];
        let v = [
            _mm512_shuffle_ps::<0x44>(t[4], t[6]),
            _mm512_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm512_shuffle_ps::<0x44>(t[5], t[7]),
            _mm512_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        for q in 0..4 {
            let pairs = [
                (_mm512_permutex2var_ps(u[q], first, v[q]), q),
                (_mm512_permutex2var_ps(u[q], second, v[q]), 8 + q),
            ];
            for (w, col) in pairs {
                // Column `col` in the low half, `col + 4` in the high one.
                for (half, col) in [(0, col), (8, col + 4)] {
                    if lane + col >= cols {
                        continue;
                    }
                    // The high half's lanes 8.. land at the column's place: the masked-off
                    // lanes before it are neither read nor written.
                    let m = rows_mask << half;
                    let to = store.transposed.add((lane + col) * ldt).wrapping_sub(half);
                    let mut x = w;
                    if !store.residual.is_null() {
                        let rp = store.residual.add((lane + col) * ldt).wrapping_sub(half);
                        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, rp));
                    }
                    if let Some((lo, hi)) = store.clamp {
                        // max(v, lo) gives lo for a NaN v, as f32::max does.
                        x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
                    }
                    _mm512_mask_storeu_ps(to, m, x);
                }
            }
        }
    }
}

/// A sum vector as [`Store`] says, for row `i` of the tile and its columns from `lane`, `p`
/// its place in C, `res` the residual's values there.
#[inline(always)]
unsafe fn finish(
    v: __m512,
    i: usize,
    lane: usize,
    mask: __mmask16,
    p: *const f32,
    res: Option<__m512>,
    store: &Store<f32>,
) -> __m512 {
    let v = if store.accumulate {
        _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, p))
    } else if store.bias.is_null() {
        v
    } else if store.by_column {
        _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, store.bias.add(lane)))
    } else {
        _mm512_add_ps(v, _mm512_set1_ps(*store.bias.add(i)))
    };
    let v = res.map_or(v, |r| _mm512_add_ps(v, r));
    match store.clamp {
        // max(v, lo) gives lo for a NaN v, as f32::max does.
        Some((lo, hi)) => _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(lo)), _mm512_set1_ps(hi)),
        None => v,
    }
}

/// Columns per panel of the narrow kernel, for the columns left over by the wide one.
pub const NR_TAIL: usize = 16;

/// The narrow AVX-512F kernel: a 6 × 16 tile (six accumulators, one vector of B per step).
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
    let mut s = [_mm512_setzero_ps(); MR];
    let mut ap = *a;
    let mut bp = b;
    for _ in 0..kc {
        let bv = _mm512_loadu_ps(bp);
        for i in 0..MR {
            s[i] = _mm512_fmadd_ps(_mm512_set1_ps(*ap[i]), bv, s[i]);
            // Past the last step the pointer may leave A: never read, so wrapping.
            ap[i] = ap[i].wrapping_add(acs);
        }
        bp = bp.wrapping_add(ldb);
    }
    debug_assert!(
        store.transposed.is_null(),
        "the narrow kernel stores into C only"
    );
    let mask = lanes_mask(cols);
    for (i, &v) in s.iter().enumerate().take(rows) {
        let p = c.add(i * ldc);
        let res = (!store.residual.is_null())
            .then(|| _mm512_maskz_loadu_ps(mask, store.residual.add(i * ldc)));
        _mm512_mask_storeu_ps(p, mask, finish(v, i, 0, mask, p, res, store));
    }
}
