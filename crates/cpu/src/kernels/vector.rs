//! The vector loops of the batch-1 linear layers ([`super::linear`]): a dot product and a
//! scaled sum, each bound by reading a weight row from memory. The arithmetic is fixed (each
//! product rounded, then added: no fused multiply-add), so every path gives the same bits (a
//! NaN's payload aside); `GRADCAM_CPU_KERNEL=portable` keeps to the portable loop;
//! f32 on an AVX2 CPU runs it eight lanes at a time: through the portable loop (SSE2 code, as
//! the crate is compiled for any x86-64) VGG-16's three linear layers read their 494 MB of
//! weights at 24.8 GB/s, through the AVX2 one at 32.6, about what the two cores can read
//! (docs/PERFORMANCE.md).

use super::Element;

/// Lanes of partial sums in [`dot`].
pub const LANES: usize = 16;

/// `Σ a[k]·b[k]` over the shorter length: lane `l` sums the products `k ≡ l (mod 16)` of the
/// whole chunks of 16 in order, then the last partial chunk's `k` lands in lane `k mod 16`,
/// and the 16 lanes are summed in order.
pub fn dot<T: Element>(a: &[T], b: &[T]) -> T {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    #[cfg(target_arch = "x86_64")]
    if let Some(a32) = as_f32(a) {
        if avx2() {
            let b32 = as_f32(b).expect("same type");
            // SAFETY: AVX2 is present; both slices hold `len` values.
            return T::of(unsafe { dot_avx2(a32, b32) });
        }
    }
    dot_portable(a, b)
}

/// [`dot`] without vector instructions of its own.
fn dot_portable<T: Element>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (at, bt) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (&x, &y)) in at.iter().zip(bt).enumerate() {
        acc[l] += x * y;
    }
    acc.iter().fold(T::zero(), |s, &v| s + v)
}

/// `d[k] += s·v[k]` over the shorter length (the product rounded, then added).
pub fn axpy<T: Element>(s: T, v: &[T], d: &mut [T]) {
    let len = v.len().min(d.len());
    let (v, d) = (&v[..len], &mut d[..len]);
    #[cfg(target_arch = "x86_64")]
    if let (Some(v32), true) = (as_f32(v), avx2()) {
        let d32 = as_f32_mut(d).expect("same type");
        // SAFETY: AVX2 is present; both slices hold `len` values.
        return unsafe { axpy_avx2(s.to_f32().unwrap_or(f32::NAN), v32, d32) };
    }
    axpy_portable(s, v, d)
}

/// [`axpy`] without vector instructions of its own.
fn axpy_portable<T: Element>(s: T, v: &[T], d: &mut [T]) {
    for (d, &v) in d.iter_mut().zip(v) {
        *d += s * v;
    }
}

/// `a` as `&[f32]` when `T` is f32.
#[cfg(target_arch = "x86_64")]
pub(super) fn as_f32<T: Element>(a: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32 (checked), so the slice is one of f32.
        .then(|| unsafe { std::slice::from_raw_parts(a.as_ptr().cast::<f32>(), a.len()) })
}

/// `a` as `&mut [f32]` when `T` is f32.
#[cfg(target_arch = "x86_64")]
pub(super) fn as_f32_mut<T: Element>(a: &mut [T]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32 (checked), so the slice is one of f32.
        .then(|| unsafe { std::slice::from_raw_parts_mut(a.as_mut_ptr().cast::<f32>(), a.len()) })
}

/// Whether this CPU runs AVX2 (detected once).
#[cfg(target_arch = "x86_64")]
pub(super) fn avx2() -> bool {
    static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX2.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2")
            && std::env::var("GRADCAM_CPU_KERNEL").as_deref() != Ok("portable")
    })
}

/// [`dot`] for f32 with AVX2: lanes 0–7 and 8–15 as two vectors.
///
/// # Safety
/// The CPU runs AVX2; `a` and `b` have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let whole = a.len() / LANES * LANES;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for k in (0..whole).step_by(LANES) {
        let p0 = _mm256_mul_ps(_mm256_loadu_ps(pa.add(k)), _mm256_loadu_ps(pb.add(k)));
        let p1 = _mm256_mul_ps(
            _mm256_loadu_ps(pa.add(k + 8)),
            _mm256_loadu_ps(pb.add(k + 8)),
        );
        s0 = _mm256_add_ps(s0, p0);
        s1 = _mm256_add_ps(s1, p1);
    }
    let mut acc = [0f32; LANES];
    _mm256_storeu_ps(acc.as_mut_ptr(), s0);
    _mm256_storeu_ps(acc.as_mut_ptr().add(8), s1);
    for (l, (&x, &y)) in a[whole..].iter().zip(&b[whole..]).enumerate() {
        acc[l] += x * y;
    }
    acc.iter().fold(0.0, |s, &v| s + v)
}

/// [`axpy`] for f32 with AVX2.
///
/// # Safety
/// The CPU runs AVX2; `v` and `d` have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn axpy_avx2(s: f32, v: &[f32], d: &mut [f32]) {
    use std::arch::x86_64::*;
    let whole = v.len() / 8 * 8;
    let (pv, pd) = (v.as_ptr(), d.as_mut_ptr());
    let sv = _mm256_set1_ps(s);
    for k in (0..whole).step_by(8) {
        let p = _mm256_mul_ps(sv, _mm256_loadu_ps(pv.add(k)));
        _mm256_storeu_ps(pd.add(k), _mm256_add_ps(_mm256_loadu_ps(pd.add(k)), p));
    }
    for (d, &v) in d[whole..].iter_mut().zip(&v[whole..]) {
        *d += s * v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The portable loops, written out: what every path must give, bit for bit.
    fn dot_ref(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0f32; LANES];
        for (k, (&x, &y)) in a.iter().zip(b).enumerate() {
            acc[k % LANES] += x * y;
        }
        acc.iter().fold(0.0, |s, &v| s + v)
    }

    #[test]
    fn the_vector_loops_give_the_bits_of_the_portable_ones() {
        let val = |i: usize, s: usize| ((i * s % 1009) as f32 - 504.0) / 97.0;
        for len in [0, 1, 7, 8, 15, 16, 17, 31, 33, 250, 4099] {
            let a: Vec<f32> = (0..len).map(|i| val(i, 31)).collect();
            let b: Vec<f32> = (0..len).map(|i| val(i, 17)).collect();
            let want = dot_ref(&a, &b).to_bits();
            assert_eq!(dot(&a, &b).to_bits(), want, "dot {len}");
            assert_eq!(dot_portable(&a, &b).to_bits(), want, "portable dot {len}");
            let d0: Vec<f32> = (0..len).map(|i| val(i, 7)).collect();
            let want: Vec<f32> = d0.iter().zip(&a).map(|(&d, &v)| d + 0.37 * v).collect();
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let (mut d, mut e) = (d0.clone(), d0.clone());
            axpy(0.37, &a, &mut d);
            axpy_portable(0.37, &a, &mut e);
            assert_eq!(bits(&d), bits(&want), "axpy {len}");
            assert_eq!(bits(&e), bits(&want), "portable axpy {len}");
            // The shorter length of two.
            let half = &b[..len / 2];
            assert_eq!(
                dot(&a, half).to_bits(),
                dot_ref(&a[..len / 2], half).to_bits()
            );
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is present; the slices have the same length.
                let got = unsafe { dot_avx2(&a, &b) };
                assert_eq!(got.to_bits(), dot_ref(&a, &b).to_bits(), "AVX2 dot {len}");
                let mut d = d0.clone();
                // SAFETY: as above.
                unsafe { axpy_avx2(0.37, &a, &mut d) };
                assert_eq!(bits(&d), bits(&want), "AVX2 axpy {len}");
            }
            // f64 runs the portable loop.
            let (a64, b64): (Vec<f64>, Vec<f64>) = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (x as f64, y as f64))
                .unzip();
            let exact: f64 = a64.iter().zip(&b64).map(|(x, y)| x * y).sum();
            assert!((dot(&a64, &b64) - exact).abs() <= 1e-9 * (1.0 + exact.abs()));
        }
    }
}
