//! The Grad-CAM kernels: gradient GAP, weighted channel sums, CAM-family weights, min-max
//! normalisation, bilinear resizing, heatmap fusion and occlusion.

use super::Element;
use gradcam_core::ResizeMode;
use rayon::prelude::*;

/// `out[i] = mean(x[i·plane..(i+1)·plane])`.
pub fn gap<T: Element>(x: &[T], plane: usize, out: &mut [T]) {
    let inv = T::one() / T::of_usize(plane);
    out.par_iter_mut().enumerate().for_each(|(i, o)| {
        *o = x[i * plane..(i + 1) * plane].iter().copied().sum::<T>() * inv;
    });
}

/// `out[n] = Σₖ f(w, a)` over `k` channel planes per image, written as `[n, plane]`.
fn channel_reduce<T: Element>(
    k: usize,
    plane: usize,
    out: &mut [T],
    term: impl Fn(usize, usize, usize) -> T + Sync,
    relu: bool,
) {
    out.par_chunks_mut(plane).enumerate().for_each(|(n, o)| {
        o.iter_mut().for_each(|v| *v = T::zero());
        for ki in 0..k {
            for (p, v) in o.iter_mut().enumerate() {
                *v += term(n, ki, p);
            }
        }
        if relu {
            o.iter_mut().for_each(|v| *v = v.max(T::zero()));
        }
    });
}

/// `Σₖ w[n,k]·a[n,k]`, rectified when `relu`.
pub fn weighted_channel_sum<T: Element>(
    a: &[T],
    w: &[T],
    k: usize,
    plane: usize,
    relu: bool,
    out: &mut [T],
) {
    channel_reduce(
        k,
        plane,
        out,
        |n, ki, p| w[n * k + ki] * a[(n * k + ki) * plane + p],
        relu,
    );
}

/// `Σₖ f(g)·a` with `f = relu` when `relu_grad`.
pub fn elementwise_channel_sum<T: Element>(
    a: &[T],
    g: &[T],
    k: usize,
    plane: usize,
    relu_grad: bool,
    out: &mut [T],
) {
    channel_reduce(
        k,
        plane,
        out,
        |n, ki, p| {
            let i = (n * k + ki) * plane + p;
            let gv = if relu_grad { g[i].max(T::zero()) } else { g[i] };
            gv * a[i]
        },
        false,
    );
}

/// Grad-CAM++ weights per `(n, k)` plane (pytorch-grad-cam 1.5.7's closed form).
pub fn gradcampp_weights<T: Element>(a: &[T], g: &[T], plane: usize, out: &mut [T]) {
    let eps = T::of(1e-6);
    out.par_iter_mut().enumerate().for_each(|(i, o)| {
        let (a, g) = (
            &a[i * plane..(i + 1) * plane],
            &g[i * plane..(i + 1) * plane],
        );
        let sum_a: T = a.iter().copied().sum();
        *o = g
            .iter()
            .map(|&gv| {
                if gv == T::zero() {
                    return T::zero();
                }
                let g2 = gv * gv;
                let aij = g2 / (g2 + g2 + sum_a * g2 * gv + eps);
                gv.max(T::zero()) * aij
            })
            .sum();
    });
}

/// XGradCAM weights per `(n, k)` plane: `Σ g·a / (Σ a + 1e-7)`.
pub fn xgradcam_weights<T: Element>(a: &[T], g: &[T], plane: usize, out: &mut [T]) {
    let eps = T::of(1e-7);
    out.par_iter_mut().enumerate().for_each(|(i, o)| {
        let (a, g) = (
            &a[i * plane..(i + 1) * plane],
            &g[i * plane..(i + 1) * plane],
        );
        let sum_a: T = a.iter().copied().sum();
        *o = a
            .iter()
            .zip(g)
            .map(|(&av, &gv)| gv * av / (sum_a + eps))
            .sum();
    });
}

/// `(x − min) / (max − min + eps)` over each group.
pub fn normalize<T: Element>(x: &[T], group: usize, eps: f32, y: &mut [T]) {
    let eps = T::of(eps);
    y.par_chunks_mut(group)
        .zip(x.par_chunks(group))
        .for_each(|(y, x)| {
            let lo = x.iter().copied().fold(T::infinity(), T::min);
            let mut hi = T::neg_infinity();
            for (o, &v) in y.iter_mut().zip(x) {
                *o = v - lo;
                hi = hi.max(*o);
            }
            let d = hi + eps;
            y.iter_mut().for_each(|v| *v = *v / d);
        });
}

/// Taps of output `o` along one axis: `(i0, i1, λ)` with value `(1−λ)·x[i0] + λ·x[i1]`.
fn taps<T: Element>(o: usize, out: usize, size: usize, mode: ResizeMode) -> (usize, usize, T) {
    match mode {
        ResizeMode::HalfPixel => {
            // OpenCV INTER_LINEAR: coordinates computed in f32, edges clamped.
            let scale = size as f64 / out as f64;
            let f = ((o as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor();
            let mut l = f - s;
            if s < 0.0 {
                s = 0.0;
                l = 0.0;
            }
            let mut i0 = s as usize;
            if i0 >= size - 1 {
                i0 = size - 1;
                l = 0.0;
            }
            (i0, (i0 + 1).min(size - 1), T::of(l))
        }
        ResizeMode::AlignCorners => {
            let scale = if out > 1 {
                (size - 1) as f32 / (out - 1) as f32
            } else {
                0.0
            };
            let src = scale * o as f32;
            let i0 = (src as usize).min(size - 1);
            (i0, (i0 + 1).min(size - 1), T::of(src - i0 as f32))
        }
    }
}

/// Bilinear resize of `planes` planes `[h,w] → [oh,ow]`; horizontal pass then vertical, as
/// OpenCV.
pub fn resize<T: Element>(x: &[T], hw: [usize; 2], out: [usize; 2], mode: ResizeMode, y: &mut [T]) {
    let [h, w] = hw;
    let [oh, ow] = out;
    let xt: Vec<(usize, usize, T)> = (0..ow).map(|o| taps(o, ow, w, mode)).collect();
    let yt: Vec<(usize, usize, T)> = (0..oh).map(|o| taps(o, oh, h, mode)).collect();
    y.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .for_each(|(y, x)| {
            for (oy, &(r0, r1, ly)) in yt.iter().enumerate() {
                for (ox, &(c0, c1, lx)) in xt.iter().enumerate() {
                    let top = x[r0 * w + c0] * (T::one() - lx) + x[r0 * w + c1] * lx;
                    let bot = x[r1 * w + c0] * (T::one() - lx) + x[r1 * w + c1] * lx;
                    y[oy * ow + ox] = top * (T::one() - ly) + bot * ly;
                }
            }
        });
}

/// `y[i·m + j, c] = x[i, c] ⊙ maps[i, j]`, planes of `plane` elements, `c` channels.
pub fn fusion<T: Element>(x: &[T], maps: &[T], c: usize, m: usize, plane: usize, y: &mut [T]) {
    y.par_chunks_mut(plane).enumerate().for_each(|(r, out)| {
        let (row, ci) = (r / c, r % c);
        let (i, j) = (row / m, row % m);
        let xs = &x[(i * c + ci) * plane..(i * c + ci + 1) * plane];
        let ms = &maps[(i * m + j) * plane..(i * m + j + 1) * plane];
        for ((o, &a), &b) in out.iter_mut().zip(xs).zip(ms) {
            *o = a * b;
        }
    });
}

/// Copies of one image `[c,h,w]` with a window of every origin set to `baseline`.
pub fn occlude<T: Element>(
    x: &[T],
    dims: [usize; 3],
    origins: &[[usize; 2]],
    size: [usize; 2],
    baseline: f32,
    y: &mut [T],
) {
    let [c, h, w] = dims;
    let b = T::of(baseline);
    y.par_chunks_mut(c * h * w)
        .zip(origins.par_iter())
        .for_each(|(out, o)| {
            out.copy_from_slice(x);
            for ci in 0..c {
                for iy in o[0]..o[0] + size[0] {
                    let row = (ci * h + iy) * w;
                    out[row + o[1]..row + o[1] + size[1]]
                        .iter_mut()
                        .for_each(|v| *v = b);
                }
            }
        });
}
