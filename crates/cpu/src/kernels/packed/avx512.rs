//! The AVX-512F micro-kernel: a 6 × 64 tile of C in 24 zmm registers.

use super::{Store, MR};
use std::arch::x86_64::*;

/// Columns per panel: four vectors of 16.
pub const NR: usize = 64;

/// See [`super::MicroKernel`].
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
    let mut s = [[_mm512_setzero_ps(); 4]; MR];
    let mut ap = *a;
    let mut bp = b;
    for _ in 0..kc {
        let bv = [
            _mm512_loadu_ps(bp),
            _mm512_loadu_ps(bp.add(16)),
            _mm512_loadu_ps(bp.add(32)),
            _mm512_loadu_ps(bp.add(48)),
        ];
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
    for (i, si) in s.iter().enumerate().take(rows) {
        let crow = c.add(i * ldc);
        for (j, &v) in si.iter().enumerate() {
            let lane = j * 16;
            if lane >= cols {
                break;
            }
            let left = cols - lane;
            let mask: __mmask16 = if left >= 16 {
                0xffff
            } else {
                (1u16 << left) - 1
            };
            let p = crow.add(lane);
            _mm512_mask_storeu_ps(p, mask, finish(v, i, mask, p, store));
        }
    }
}

/// A sum vector as [`Store`] says, for row `i` of the tile, `p` its place in C.
#[inline(always)]
unsafe fn finish(
    v: __m512,
    i: usize,
    mask: __mmask16,
    p: *const f32,
    store: &Store<f32>,
) -> __m512 {
    let v = if store.accumulate {
        _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, p))
    } else if !store.bias.is_null() {
        _mm512_add_ps(v, _mm512_set1_ps(*store.bias.add(i)))
    } else {
        v
    };
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
    let mask: __mmask16 = if cols >= 16 {
        0xffff
    } else {
        (1u16 << cols) - 1
    };
    for (i, &v) in s.iter().enumerate().take(rows) {
        let p = c.add(i * ldc);
        _mm512_mask_storeu_ps(p, mask, finish(v, i, mask, p, store));
    }
}
