//! Rectifiers (ReLU, ReLU6, clip) in the three backward modes, the smooth and piecewise-linear
//! activations (sigmoid, tanh, leaky ReLU, ELU, hard sigmoid, hard swish), and softmax.

use super::Element;
use gradcam_core::{Activation, GradMode, Rectifier};
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

/// `y = clamp(x, lo, hi)`.
pub fn rectifier<T: Element>(x: &[T], r: Rectifier, y: &mut [T]) {
    let (lo, hi) = (T::of(r.lo), T::of(r.hi));
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = v.max(lo).min(hi);
            }
        });
}

/// Gradient through a rectifier, read from its output `y` (see [`GradMode`]).
pub fn rectifier_backward<T: Element>(
    y: &[T],
    dy: &[T],
    r: Rectifier,
    mode: GradMode,
    dx: &mut [T],
) {
    let (lo, hi) = (T::of(r.lo), T::of(r.hi));
    let zero = T::zero();
    // One loop per mode (the mode tested once, not per element), each a branch-free select
    // the compiler vectorises.
    match mode {
        GradMode::Plain => masked(y, dy, dx, move |v, _| (v > lo) & (v < hi)),
        GradMode::Guided => masked(y, dy, dx, move |v, g| (v > lo) & (v < hi) & (g > zero)),
        GradMode::Deconvnet => masked(y, dy, dx, move |_, g| g > zero),
    }
}

/// [`rectifier_backward`] on one slice in place (`g` holds `dy` and becomes `dx`), on the
/// calling thread: the same selects, so the same bits. For an op that has just written `g`
/// and applies the rectifier's rule while it is in cache (max pooling's backward).
pub fn rectifier_backward_in_place<T: Element>(y: &[T], g: &mut [T], r: Rectifier, mode: GradMode) {
    let (lo, hi) = (T::of(r.lo), T::of(r.hi));
    let zero = T::zero();
    match mode {
        GradMode::Plain => masked_in_place(y, g, move |v, _| (v > lo) & (v < hi)),
        GradMode::Guided => masked_in_place(y, g, move |v, g| (v > lo) & (v < hi) & (g > zero)),
        GradMode::Deconvnet => masked_in_place(y, g, move |_, g| g > zero),
    }
}

/// `g = keep(y, g) ? g : 0`, element by element.
#[inline(always)]
fn masked_in_place<T: Element>(y: &[T], g: &mut [T], keep: impl Fn(T, T) -> bool) {
    debug_assert_eq!(y.len(), g.len());
    for (o, &v) in g.iter_mut().zip(y) {
        *o = if keep(v, *o) { *o } else { T::zero() };
    }
}

/// `dx = keep(y, dy) ? dy : 0`, element by element, in parallel chunks.
#[inline(always)]
fn masked<T: Element>(y: &[T], dy: &[T], dx: &mut [T], keep: impl Fn(T, T) -> bool + Copy + Sync) {
    dx.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (y, dy))| {
            // A copy of the test (its bounds in registers, not read through the capture).
            #[allow(clippy::redundant_locals)]
            let keep = keep;
            for ((o, &v), &g) in dx.iter_mut().zip(y).zip(dy) {
                *o = if keep(v, g) { g } else { T::zero() };
            }
        });
}

/// `f(x)` of an [`Activation`] at one value.
fn act<T: Element>(v: T, a: Activation) -> T {
    let (one, zero) = (T::one(), T::zero());
    match a {
        Activation::Sigmoid => one / (one + (-v).exp()),
        Activation::Tanh => v.tanh(),
        Activation::LeakyRelu(al) => {
            if v >= zero {
                v
            } else {
                T::of(al) * v
            }
        }
        Activation::Elu(al) => {
            if v > zero {
                v
            } else {
                T::of(al) * (v.exp() - one)
            }
        }
        Activation::HardSigmoid(al, be) => (T::of(al) * v + T::of(be)).max(zero).min(one),
        Activation::HardSwish => v * (v / T::of(6.0) + T::of(0.5)).max(zero).min(one),
        Activation::Reciprocal => one / v,
    }
}

/// `f'(x)` of an [`Activation`] at one value (PyTorch's choices at the kinks).
fn act_grad<T: Element>(v: T, a: Activation) -> T {
    let (one, zero) = (T::one(), T::zero());
    match a {
        Activation::Sigmoid => {
            let s = one / (one + (-v).exp());
            s * (one - s)
        }
        Activation::Tanh => {
            let t = v.tanh();
            one - t * t
        }
        Activation::LeakyRelu(al) => {
            if v > zero {
                one
            } else {
                T::of(al)
            }
        }
        Activation::Elu(al) => {
            if v > zero {
                one
            } else {
                T::of(al) * v.exp()
            }
        }
        Activation::HardSigmoid(al, be) => {
            let u = T::of(al) * v + T::of(be);
            if u > zero && u < one {
                T::of(al)
            } else {
                zero
            }
        }
        Activation::HardSwish => {
            if v < T::of(-3.0) {
                zero
            } else if v <= T::of(3.0) {
                v / T::of(3.0) + T::of(0.5)
            } else {
                one
            }
        }
        Activation::Reciprocal => -(one / (v * v)),
    }
}

/// `y = f(x)` elementwise.
pub fn activation<T: Element>(x: &[T], a: Activation, y: &mut [T]) {
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = act(v, a);
            }
        });
}

/// `dx = dy·f'(x)` elementwise, from the input `x`.
pub fn activation_backward<T: Element>(x: &[T], dy: &[T], a: Activation, dx: &mut [T]) {
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (x, dy))| {
            for ((o, &v), &g) in dx.iter_mut().zip(x).zip(dy) {
                *o = g * act_grad(v, a);
            }
        });
}

/// Row-wise softmax of `[n, c]`, max-subtracted.
pub fn softmax<T: Element>(x: &[T], c: usize, y: &mut [T]) {
    for (yr, xr) in y.chunks_mut(c).zip(x.chunks(c)) {
        let m = xr.iter().copied().fold(T::neg_infinity(), T::max);
        let mut s = T::zero();
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = (v - m).exp();
            s += *o;
        }
        yr.iter_mut().for_each(|o| *o = *o / s);
    }
}

/// Softmax backward from the output: `dx = y ⊙ (dy − Σ dy⊙y)`.
pub fn softmax_backward<T: Element>(y: &[T], dy: &[T], c: usize, dx: &mut [T]) {
    for ((o, yr), gr) in dx.chunks_mut(c).zip(y.chunks(c)).zip(dy.chunks(c)) {
        let dot: T = yr.iter().zip(gr).map(|(&a, &b)| a * b).sum();
        for ((d, &yv), &g) in o.iter_mut().zip(yr).zip(gr) {
            *d = yv * (g - dot);
        }
    }
}
