//! The AVX2 + FMA micro-kernel: a 6 × 16 tile of C in 12 ymm registers.

use super::{Store, MR};
use std::arch::x86_64::*;

/// Columns per panel: two vectors of 8.
pub const NR: usize = 16;

/// See [`super::MicroKernel`].
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
    let mut s = [[_mm256_setzero_ps(); 2]; MR];
    let mut ap = *a;
    let mut bp = b;
    for _ in 0..kc {
        let bv = [_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8))];
        for i in 0..MR {
            let av = _mm256_set1_ps(*ap[i]);
            for j in 0..2 {
                s[i][j] = _mm256_fmadd_ps(av, bv[j], s[i][j]);
            }
            // Past the last step the pointer may leave A: never read, so wrapping.
            ap[i] = ap[i].wrapping_add(acs);
        }
        bp = bp.wrapping_add(ldb);
    }
    store_tile(&s, c, ldc, rows, cols, store);
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
    let mut s = [[_mm256_setzero_ps(); 2]; MR];
    let mut ap = *a;
    let mut bp = b;
    let mut t = first;
    for _ in 0..steps {
        let bv = [_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8))];
        for i in 0..MR {
            let av = _mm256_set1_ps(*ap[i].add(taps[t]));
            for j in 0..2 {
                s[i][j] = _mm256_fmadd_ps(av, bv[j], s[i][j]);
            }
        }
        bp = bp.add(NR);
        t += 1;
        if t == taps.len() {
            t = 0;
            // Past the last channel the pointers may leave the image: never read, so wrapping.
            ap.iter_mut().for_each(|p| *p = p.wrapping_add(pp));
        }
    }
    store_tile(&s, c, ldc, rows, cols, store);
}

/// Stores a 6 × 16 tile's sums as [`Store`] says: `rows` rows, `cols` columns.
#[inline(always)]
unsafe fn store_tile(
    s: &[[__m256; 2]; MR],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    store: &Store<f32>,
) {
    let mut tile = [0f32; NR];
    for (i, si) in s.iter().enumerate().take(rows) {
        let crow = c.add(i * ldc);
        _mm256_storeu_ps(tile.as_mut_ptr(), si[0]);
        _mm256_storeu_ps(tile.as_mut_ptr().add(8), si[1]);
        for (j, &v) in tile.iter().enumerate().take(cols) {
            let p = crow.add(j);
            let v = if store.accumulate {
                *p + v
            } else if store.bias.is_null() {
                v
            } else {
                v + *store.bias.add(if store.by_column { j } else { i })
            };
            let at = if store.transposed.is_null() {
                i * ldc + j
            } else {
                j * store.ldt + i
            };
            let v = if store.residual.is_null() {
                v
            } else {
                v + *store.residual.add(at)
            };
            let v = match store.clamp {
                Some((lo, hi)) => v.max(lo).min(hi),
                None => v,
            };
            if store.transposed.is_null() {
                *p = v;
            } else {
                *store.transposed.add(at) = v;
            }
        }
    }
}
