//! Per-channel affine (inference batch norm), add, channel concatenation and slicing.

use super::Element;
use rayon::prelude::*;

/// `y = x·scale[c] + shift[c]` for NCHW with `c` channels of `plane` elements.
pub fn channel_affine<T: Element>(
    x: &[T],
    scale: &[T],
    shift: Option<&[T]>,
    c: usize,
    plane: usize,
    y: &mut [T],
) {
    y.par_chunks_mut(plane)
        .zip(x.par_chunks(plane))
        .enumerate()
        .for_each(|(i, (y, x))| {
            let (s, b) = (scale[i % c], shift.map_or(T::zero(), |t| t[i % c]));
            for (o, &v) in y.iter_mut().zip(x) {
                *o = v * s + b;
            }
        });
}

/// `y = a + b`.
pub fn add<T: Element>(a: &[T], b: &[T], y: &mut [T]) {
    y.par_chunks_mut(1 << 14)
        .zip(a.par_chunks(1 << 14).zip(b.par_chunks(1 << 14)))
        .for_each(|(y, (a, b))| {
            for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
                *o = u + v;
            }
        });
}

/// `y = clamp(a + b, lo, hi)`: a residual sum and its rectifier in one pass.
pub fn add_clamped<T: Element>(a: &[T], b: &[T], lo: T, hi: T, y: &mut [T]) {
    y.par_chunks_mut(1 << 14)
        .zip(a.par_chunks(1 << 14).zip(b.par_chunks(1 << 14)))
        .for_each(|(y, (a, b))| {
            for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
                *o = (u + v).max(lo).min(hi);
            }
        });
}

/// `y = clamp(y + r, lo, hi)` (no clamp when `None`): [`add_clamped`]'s values, in place.
pub fn add_in_place<T: Element>(y: &mut [T], r: &[T], clamp: Option<(T, T)>) {
    y.par_chunks_mut(1 << 14)
        .zip(r.par_chunks(1 << 14))
        .for_each(|(y, r)| {
            for (o, &v) in y.iter_mut().zip(r) {
                let s = *o + v;
                *o = clamp.map_or(s, |(lo, hi)| s.max(lo).min(hi));
            }
        });
}

/// `y = a ⊙ b`, each element of `b` multiplying `plane` consecutive elements of `a` (1:
/// elementwise).
pub fn mul<T: Element>(a: &[T], b: &[T], plane: usize, y: &mut [T]) {
    let plane = plane.max(1);
    let rows = (1 << 14) / plane;
    let chunk = rows.max(1) * plane;
    y.par_chunks_mut(chunk)
        .zip(a.par_chunks(chunk))
        .enumerate()
        .for_each(|(i, (y, a))| {
            let b = &b[i * (chunk / plane)..];
            for ((y, a), &f) in y.chunks_mut(plane).zip(a.chunks(plane)).zip(b) {
                for (o, &u) in y.iter_mut().zip(a) {
                    *o = u * f;
                }
            }
        });
}

/// `y[i] = Σ_j dy[i·plane + j]·a[i·plane + j]`: the gradient of [`mul`]'s broadcast factor.
pub fn mul_plane_sum<T: Element>(dy: &[T], a: &[T], plane: usize, y: &mut [T]) {
    y.par_iter_mut()
        .zip(dy.par_chunks(plane.max(1)).zip(a.par_chunks(plane.max(1))))
        .for_each(|(o, (d, a))| {
            *o = d.iter().zip(a).fold(T::zero(), |s, (&u, &v)| s + u * v);
        });
}

/// Concatenates per-image blocks: operand `j` contributes `sizes[j]` elements per image.
pub fn concat<T: Element>(xs: &[&[T]], sizes: &[usize], n: usize, y: &mut [T]) {
    let total: usize = sizes.iter().sum();
    y.par_chunks_mut(total)
        .enumerate()
        .take(n)
        .for_each(|(i, out)| {
            let mut off = 0;
            for (x, &s) in xs.iter().zip(sizes) {
                out[off..off + s].copy_from_slice(&x[i * s..(i + 1) * s]);
                off += s;
            }
        });
}

/// Copies elements `start..start+len` of each per-image block of `block` elements.
pub fn slice<T: Element>(x: &[T], block: usize, start: usize, len: usize, y: &mut [T]) {
    y.par_chunks_mut(len.max(1))
        .enumerate()
        .for_each(|(i, out)| {
            out.copy_from_slice(&x[i * block + start..i * block + start + len]);
        });
}
