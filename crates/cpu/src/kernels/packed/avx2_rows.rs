//! The AVX2 kernel for a block's last few columns, eight rows of C per vector.
//!
//! The narrow kernel (6 × 8) spends a vector lane per column: for the one column a 49-position
//! plane leaves after three panels of 16, seven lanes of eight were idle, and that column cost
//! 0.78 of a full panel. Here the lanes are rows: eight rows of A are read eight steps at a
//! time and transposed in registers, and each vector FMA serves eight rows of one column.
//! Every sum is the narrow kernel's chain of FMAs (`a·b + s`, step by step from zero), and the
//! store is [`super::Store`]'s, so the bits are the same (tested against the narrow kernel; a
//! NaN's payload aside, where both factors of a product are NaNs).
//!
//! Measured (one thread, `m 1024, k 512`, B packed; 48 columns took 530 µs): 49 columns 667 →
//! 624 µs, 50 → 629, 51 → 632. In ResNet-50's 1×1 layers at 7×7, 0.78–0.79 → 0.72–0.74 ms
//! (the 1024 → 2048 stride-2 one 1.68 → 1.56). Four columns (a 196-position plane's) were
//! slower in the network (1×1 256 → 1024 at 14×14, 0.617 → 0.636 ms), so [`MAX_COLS`] is 3.
//! Two groups of eight rows per call (two chains of FMAs per column, where one waits on the
//! FMA's latency) took one column 90 → 74 µs at `k 512`, but were slower where A's rows are
//! 4 KiB or more apart (`k` 1024, 2048: sixteen rows in one L1 set).

use super::Store;
use std::arch::x86_64::*;

/// The most columns [`kernel`] takes.
pub const MAX_COLS: usize = 3;

/// Rows per vector.
const LANES: usize = 8;

/// `C[rows × cols] = store(Σ_k A[i][k] · B[k][j])` over `kc` steps for `cols` ≤ [`MAX_COLS`]:
/// A's row `i` at `a + i·ars` (its steps contiguous), B a packed panel (`kc` rows `ldb`
/// apart), C's rows `ldc` apart; `store` as for row 0 (its bias and residual pointers at row
/// 0, by row).
///
/// # Safety
/// The CPU must support AVX2 and FMA; A's rows, B's `kc` rows and C's (and the residual's)
/// `rows × cols` values must be readable (C writable), the bias `rows` long where given.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn kernel(
    kc: usize,
    a: *const f32,
    ars: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    debug_assert!(!store.by_column && store.transposed.is_null());
    let args = (kc, a, ars, b, ldb, c, ldc, rows, store);
    match cols {
        0 => {}
        1 => by_rows::<1>(args),
        2 => by_rows::<2>(args),
        _ => {
            debug_assert_eq!(cols, MAX_COLS);
            by_rows::<MAX_COLS>(args)
        }
    }
}

/// [`kernel`]'s arguments but the columns.
type Args<'a> = (
    usize,
    *const f32,
    usize,
    *const f32,
    usize,
    *mut f32,
    usize,
    usize,
    &'a Store<f32>,
);

/// [`kernel`] for `C` columns: eight rows at a time, their sums then stored.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn by_rows<const C: usize>(args: Args<'_>) {
    let (kc, a, ars, b, ldb, c, ldc, rows, store) = args;
    for r0 in (0..rows).step_by(LANES) {
        let n = LANES.min(rows - r0);
        // A block's last rows repeat its last valid row (computed, never stored).
        let mut ap = [a; LANES];
        for (r, p) in ap.iter_mut().enumerate() {
            *p = a.add((r0 + r.min(n - 1)) * ars);
        }
        let s = sums::<C>(kc, &ap, b, ldb);
        for (j, &v) in s.iter().enumerate() {
            let at = c.add(r0 * ldc + j);
            let v = if store.accumulate {
                _mm256_add_ps(v, column(at, ldc, n))
            } else if store.bias.is_null() {
                v
            } else {
                _mm256_add_ps(v, column(store.bias.add(r0), 1, n))
            };
            let v = if store.residual.is_null() {
                v
            } else {
                _mm256_add_ps(v, column(store.residual.add(r0 * ldc + j), ldc, n))
            };
            let v = match store.clamp {
                // max(v, lo) gives lo for a NaN v, as the other kernels' store does.
                Some((lo, hi)) => {
                    _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo)), _mm256_set1_ps(hi))
                }
                None => v,
            };
            let mut lanes = [0f32; LANES];
            _mm256_storeu_ps(lanes.as_mut_ptr(), v);
            for (r, &x) in lanes.iter().enumerate().take(n) {
                *at.add(r * ldc) = x;
            }
        }
    }
}

/// `n` values `stride` apart as a vector's first lanes (the others zero).
#[inline(always)]
unsafe fn column(p: *const f32, stride: usize, n: usize) -> __m256 {
    let mut lanes = [0f32; LANES];
    for (r, l) in lanes.iter_mut().enumerate().take(n) {
        *l = *p.add(r * stride);
    }
    _mm256_loadu_ps(lanes.as_ptr())
}

/// The sums of eight rows (`ap`) for `C` columns of B, step by step: eight steps at a time
/// from a transposed 8 × 8 block of A, then one at a time. Returned by value, indexed only
/// by constants, so that they stay in registers.
#[inline(always)]
unsafe fn sums<const C: usize>(
    kc: usize,
    ap: &[*const f32; LANES],
    b: *const f32,
    ldb: usize,
) -> [__m256; C] {
    let mut s = [_mm256_setzero_ps(); C];
    let mut k = 0;
    while k + LANES <= kc {
        let mut r = [_mm256_setzero_ps(); LANES];
        for (i, r) in r.iter_mut().enumerate() {
            *r = _mm256_loadu_ps(ap[i].add(k));
        }
        let t = transpose(r);
        for (q, &av) in t.iter().enumerate() {
            let bp = b.add((k + q) * ldb);
            for (j, s) in s.iter_mut().enumerate() {
                *s = _mm256_fmadd_ps(av, _mm256_set1_ps(*bp.add(j)), *s);
            }
        }
        k += LANES;
    }
    for k in k..kc {
        let av = _mm256_setr_ps(
            *ap[0].add(k),
            *ap[1].add(k),
            *ap[2].add(k),
            *ap[3].add(k),
            *ap[4].add(k),
            *ap[5].add(k),
            *ap[6].add(k),
            *ap[7].add(k),
        );
        let bp = b.add(k * ldb);
        for (j, s) in s.iter_mut().enumerate() {
            *s = _mm256_fmadd_ps(av, _mm256_set1_ps(*bp.add(j)), *s);
        }
    }
    s
}

/// The 8 × 8 transpose: lane `i` of result `q` is lane `q` of `r[i]`.
#[inline(always)]
unsafe fn transpose(r: [__m256; LANES]) -> [__m256; LANES] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}
