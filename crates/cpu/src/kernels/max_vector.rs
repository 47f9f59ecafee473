//! The vector loops of max pooling ([`super::pool`]), a NaN winning as in PyTorch's kernel.
//!
//! Forward: a running maximum over rows and over a row's even values (stride-2 taps). Through
//! the portable loops (SSE2 code, as the crate is compiled for any x86-64: no blend) the
//! select took about two cycles a value; f32 on an AVX2 CPU takes eight lanes at a time.
//! ResNet's 64 × 112 × 112 pool (3×3, stride 2), a scratch harness, minimum of 400 runs: 0.251
//! → 0.138 ms on two threads, 0.466 → 0.273 on one (with the window's first row copied, not
//! taken as a maximum with −∞).
//!
//! Backward: each window's first maximum, for eight 2×2 or 3×3 windows of stride 2 at once
//! (their taps' even or odd values, the maximum by `max`, the position by integer blends): the
//! same pool's backward 2.00 → 0.63 ms (same harness), VGG-16's five 2×2 pools 10.1 → 5.5 ms
//! (op profile).
//!
//! Each lane selects the very value, or position, the portable loop does (a NaN's payload
//! too), so the bits are the same (tested); `GRADCAM_CPU_KERNEL=portable` keeps to the
//! portable loops.

use super::vector::{as_f32, as_f32_mut, avx2};
use super::Element;

/// The larger of `m` and `v`, a NaN `v` winning (so the last NaN of a scan): PyTorch's
/// `val > max || isnan(val)`, as a select.
#[inline(always)]
pub fn nan_max<T: Element>(m: T, v: T) -> T {
    // `|`, not `||`: no branch, so that the loops over rows vectorise.
    if (v > m) | v.is_nan() {
        v
    } else {
        m
    }
}

/// `m[i] = nan_max(m[i], v[i])` over the shorter length.
pub fn max_into<T: Element>(m: &mut [T], v: &[T]) {
    let len = m.len().min(v.len());
    let (m, v) = (&mut m[..len], &v[..len]);
    #[cfg(target_arch = "x86_64")]
    if let (Some(v32), true) = (as_f32(v), avx2()) {
        let m32 = as_f32_mut(m).expect("same type");
        // SAFETY: AVX2 is present; both slices hold `len` values.
        return unsafe { max_into_avx2(m32, v32) };
    }
    m.iter_mut().zip(v).for_each(|(m, &v)| *m = nan_max(*m, v));
}

/// `m[o] = nan_max(m[o], v[2·o])` for every `o` of `m`.
///
/// # Panics
/// If `v` holds fewer than `2·m.len()` values.
pub fn max_into_even<T: Element>(m: &mut [T], v: &[T]) {
    assert!(v.len() >= 2 * m.len(), "too few values for the even taps");
    #[cfg(target_arch = "x86_64")]
    if let (Some(v32), true) = (as_f32(v), avx2()) {
        let m32 = as_f32_mut(m).expect("same type");
        // SAFETY: AVX2 is present; `v` holds at least `2·m.len()` values (asserted).
        return unsafe { max_into_even_avx2(m32, v32) };
    }
    // Pairs: a loop the compiler vectorises (through `step_by(2)` it did not).
    m.iter_mut()
        .zip(v.chunks_exact(2))
        .for_each(|(m, v)| *m = nan_max(*m, v[0]));
}

/// [`nan_max`] of eight lanes: `max(v, m)` (`v` where `v > m`, else `m`), then `v` where it
/// is a NaN. (As a blend of the loaded `m` under `v > m or NaN`, the compiler made the store a
/// masked store, microcoded on AMD's cores: twice the portable loop's time.)
///
/// # Safety
/// The CPU runs AVX2.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn nan_max8(
    m: std::arch::x86_64::__m256,
    v: std::arch::x86_64::__m256,
) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v))
}

/// [`max_into`] for f32 with AVX2.
///
/// # Safety
/// The CPU runs AVX2; `m` and `v` have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_into_avx2(m: &mut [f32], v: &[f32]) {
    use std::arch::x86_64::*;
    let whole = m.len() / 8 * 8;
    let (pm, pv) = (m.as_mut_ptr(), v.as_ptr());
    for i in (0..whole).step_by(8) {
        let r = nan_max8(_mm256_loadu_ps(pm.add(i)), _mm256_loadu_ps(pv.add(i)));
        _mm256_storeu_ps(pm.add(i), r);
    }
    for (m, &v) in m[whole..].iter_mut().zip(&v[whole..]) {
        *m = nan_max(*m, v);
    }
}

/// [`max_into_even`] for f32 with AVX2: sixteen values, their even ones gathered by a shuffle
/// and a permute ([`tap_s2`]).
///
/// # Safety
/// The CPU runs AVX2; `v` holds at least `2·m.len()` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_into_even_avx2(m: &mut [f32], v: &[f32]) {
    use std::arch::x86_64::*;
    let whole = m.len() / 8 * 8;
    let (pm, pv) = (m.as_mut_ptr(), v.as_ptr());
    for o in (0..whole).step_by(8) {
        let even = tap_s2(pv.add(2 * o), 0);
        _mm256_storeu_ps(pm.add(o), nan_max8(_mm256_loadu_ps(pm.add(o)), even));
    }
    for (o, m) in m.iter_mut().enumerate().skip(whole) {
        *m = nan_max(*m, v[2 * o]);
    }
}

/// The first maximum of each of eight adjacent `K × K` windows of stride 2 (a max pool's; `K`
/// 2 or 3), the first window's top-left value at `x[at]` and the rows `w` apart: for window
/// `l`, the offset from `at` of its first tap (row-major) equal to its maximum, the maximum
/// taken tap by tap in that order as `if v > m { v } else { m }` from −∞ — the dense
/// backward's arithmetic, so the same positions. `None` where a window holds a NaN (the scan
/// decides those), where the CPU has no AVX2 or `T` is not f32, where the sixteen values read
/// per row would pass the end of `x`, or where `w` is `i32::MAX / 4` or more.
pub fn first_max_s2<T: Element, const K: usize>(
    x: &[T],
    at: usize,
    w: usize,
) -> Option<[usize; 8]> {
    const { assert!(K == 2 || K == 3) };
    #[cfg(target_arch = "x86_64")]
    if let (Some(x32), true) = (as_f32(x), avx2()) {
        // The last row is read from its column `K − 1 & 2` through 16 values.
        let fits = at
            .checked_add((K - 1) * w + ((K - 1) & 2) + 16)
            .is_some_and(|end| end <= x.len() && w < i32::MAX as usize / 4);
        // SAFETY: AVX2 is present; every read lies in the range checked.
        return fits
            .then(|| unsafe { first_max_s2_avx2::<K>(x32, at, w) })
            .flatten();
    }
    let _ = (x, at, w);
    None
}

/// [`first_max_s2`] for f32 with AVX2.
///
/// # Safety
/// The CPU runs AVX2; `x[at..at + (K − 1)·w + ((K − 1) & 2) + 16]` is in bounds, and `K·w`
/// fits an `i32`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn first_max_s2_avx2<const K: usize>(x: &[f32], at: usize, w: usize) -> Option<[usize; 8]> {
    use std::arch::x86_64::*;
    let p = x.as_ptr().add(at);
    let mut v = [_mm256_setzero_ps(); 9];
    // A loop, not a closure: a closure would not inherit the target features.
    for (t, v) in v.iter_mut().enumerate().take(K * K) {
        *v = tap_s2(p.add((t / K) * w), t % K);
    }
    let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut nan = _mm256_setzero_ps();
    for v in &v[..K * K] {
        nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(*v, *v));
        // `if v > m { v } else { m }`: maxps gives its second operand unless the first is
        // greater.
        m = _mm256_max_ps(*v, m);
    }
    if _mm256_movemask_ps(nan) != 0 {
        return None;
    }
    let lanes = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    let mut first = lanes;
    for t in (0..K * K).rev() {
        let off = _mm256_add_epi32(lanes, _mm256_set1_epi32(((t / K) * w + t % K) as i32));
        let equal = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_EQ_OQ>(v[t], m));
        first = _mm256_blendv_epi8(first, off, equal);
    }
    let mut out = [0i32; 8];
    _mm256_storeu_si256(out.as_mut_ptr().cast(), first);
    Some(out.map(|o| o as usize))
}

/// Lane `l` of tap column `tx` (0–2) of eight stride-2 windows whose row starts at `q`: the
/// value at `q + 2l + tx`, from sixteen values' even or odd ones.
///
/// # Safety
/// The CPU runs AVX2; `q[(tx & 2)..(tx & 2) + 16]` is readable.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn tap_s2(q: *const f32, tx: usize) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let q = q.add(tx & 2);
    let (a, b) = (_mm256_loadu_ps(q), _mm256_loadu_ps(q.add(8)));
    // [a0 a2 b0 b2 | a4 a6 b4 b6] (odd: a1 a3 …), then its 64-bit pairs reordered.
    let mixed = if tx == 1 {
        _mm256_shuffle_ps::<0xDD>(a, b)
    } else {
        _mm256_shuffle_ps::<0x88>(a, b)
    };
    _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(mixed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with ties, signed zeros, infinities and NaNs of two payloads.
    fn awkward(len: usize, seed: u32) -> Vec<f32> {
        let special = [
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::from_bits(0x7fc0_1234),
            1.5,
            1.5,
        ];
        (0..len as u32)
            .map(|i| {
                let h = i
                    .wrapping_mul(2654435761)
                    .wrapping_add(seed.wrapping_mul(40503));
                if h % 5 == 0 {
                    special[(h / 5 % 8) as usize]
                } else {
                    (h >> 8) as f32 / (1 << 24) as f32 - 0.5
                }
            })
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn the_vector_loops_give_the_scalar_selects_bits() {
        for len in [0, 1, 7, 8, 9, 31, 56, 113] {
            let (m0, v) = (awkward(len, 1), awkward(2 * len + 3, 2));
            let mut got = m0.clone();
            max_into(&mut got, &v);
            let want: Vec<f32> = m0.iter().zip(&v).map(|(&m, &v)| nan_max(m, v)).collect();
            assert_eq!(bits(&got), bits(&want), "rows, {len}");
            let mut got = m0.clone();
            max_into_even(&mut got, &v);
            let want: Vec<f32> = m0
                .iter()
                .enumerate()
                .map(|(o, &m)| nan_max(m, v[2 * o]))
                .collect();
            assert_eq!(bits(&got), bits(&want), "even taps, {len}");
        }
    }

    #[test]
    fn a_nan_wins_and_the_last_one_stays() {
        let payload = f32::from_bits(0x7fc0_1234);
        let mut m = [f32::NAN, 1.0, -0.0];
        max_into(&mut m, &[2.0, payload, 0.0]);
        assert!(m[0].is_nan());
        assert_eq!(m[1].to_bits(), payload.to_bits());
        assert_eq!(m[2].to_bits(), (-0.0f32).to_bits(), "a tie keeps the first");
    }
}
