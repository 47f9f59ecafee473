//! Local response normalisation across channels and its backward, per image and pixel.

use super::Element;
use gradcam_core::LrnParams;
use rayon::prelude::*;

/// The normaliser `s_c = bias + α/size·Σ_{i ∈ W(c)} x_i²` of every element, NCHW with `c`
/// channels of `plane` pixels, one image per chunk.
fn normalisers<T: Element>(x: &[T], c: usize, plane: usize, p: &LrnParams) -> Vec<T> {
    let (below, above) = p.reach();
    let k = T::of(p.alpha) / T::of_usize(p.size.max(1));
    let mut s = vec![T::zero(); x.len()];
    s.par_chunks_mut(c * plane)
        .zip(x.par_chunks(c * plane))
        .for_each(|(s, x)| {
            for ch in 0..c {
                let (lo, hi) = (ch.saturating_sub(below), (ch + above).min(c - 1));
                let out = &mut s[ch * plane..(ch + 1) * plane];
                out.iter_mut().for_each(|v| *v = T::zero());
                for i in lo..=hi {
                    for (o, &v) in out.iter_mut().zip(&x[i * plane..(i + 1) * plane]) {
                        *o += v * v;
                    }
                }
                for o in out.iter_mut() {
                    *o = T::of(p.bias) + k * *o;
                }
            }
        });
    s
}

/// `y = x / s^β`.
pub fn lrn<T: Element>(x: &[T], c: usize, plane: usize, p: &LrnParams, y: &mut [T]) {
    if x.is_empty() {
        return;
    }
    let s = normalisers(x, c, plane, p);
    let beta = T::of(p.beta);
    y.par_iter_mut()
        .zip(x.par_iter().zip(&s))
        .for_each(|(o, (&v, &s))| *o = v / s.powf(beta));
}

/// `dx_j = dy_j·s_j^−β − (2αβ/size)·x_j·Σ_{c: j ∈ W(c)} dy_c·x_c·s_c^(−β−1)`.
pub fn lrn_backward<T: Element>(
    x: &[T],
    dy: &[T],
    c: usize,
    plane: usize,
    p: &LrnParams,
    dx: &mut [T],
) {
    if x.is_empty() {
        return;
    }
    let s = normalisers(x, c, plane, p);
    let (below, above) = p.reach();
    let beta = T::of(p.beta);
    let k = T::of(2.0) * T::of(p.alpha) * beta / T::of_usize(p.size.max(1));
    // t_c = dy_c·x_c·s_c^(−β−1), then dx_j gathers t over {c : j ∈ W(c)} = [j − above, j + below].
    let t: Vec<T> = dy
        .par_iter()
        .zip(x.par_iter().zip(&s))
        .map(|(&g, (&v, &s))| g * v * s.powf(-beta - T::one()))
        .collect();
    dx.par_chunks_mut(c * plane)
        .enumerate()
        .for_each(|(img, dx)| {
            let base = img * c * plane;
            for j in 0..c {
                let (lo, hi) = (j.saturating_sub(above), (j + below).min(c - 1));
                for q in 0..plane {
                    let e = base + j * plane + q;
                    let sum = (lo..=hi).fold(T::zero(), |a, ch| a + t[base + ch * plane + q]);
                    dx[j * plane + q] = dy[e] * s[e].powf(-beta) - k * x[e] * sum;
                }
            }
        });
}
