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
    let mut tile = [0f32; NR];
    for (i, si) in s.iter().enumerate().take(rows) {
        let crow = c.add(i * ldc);
        _mm256_storeu_ps(tile.as_mut_ptr(), si[0]);
        _mm256_storeu_ps(tile.as_mut_ptr().add(8), si[1]);
        for (j, &v) in tile.iter().enumerate().take(cols) {
            let p = crow.add(j);
            let v = if store.accumulate {
                *p + v
            } else if !store.bias.is_null() {
                v + *store.bias.add(i)
            } else {
                v
            };
            *p = match store.clamp {
                Some((lo, hi)) => v.max(lo).min(hi),
                None => v,
            };
        }
    }
}
