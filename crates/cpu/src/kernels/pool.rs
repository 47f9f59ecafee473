//! Max, average and adaptive average pooling, forward and backward, one channel plane per task.

use super::max_vector::{first_max_s2, max_into, max_into_even, nan_max};
use super::Element;
use gradcam_core::Pool2dParams;
use rayon::prelude::*;

/// Plane geometry of a pooling op.
#[derive(Clone, Copy, Debug)]
pub struct PoolGeom {
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

/// Input taps of output `o` along one axis: `(first, end, step)` with PyTorch's rules.
fn taps(
    o: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    size: usize,
) -> impl Iterator<Item = usize> {
    let start = (o * s) as isize - p as isize;
    let end = (start + ((k - 1) * d) as isize + 1).min(size as isize);
    let mut first = start;
    while first < 0 {
        first += d as isize;
    }
    (first..end.max(first)).step_by(d).map(|v| v as usize)
}

/// Index within the plane of the first maximum of output `(oy, ox)`'s window.
fn argmax<T: Element>(
    x: &[T],
    g: &PoolGeom,
    p: &Pool2dParams,
    oy: usize,
    ox: usize,
) -> Option<usize> {
    let mut best: Option<(usize, T)> = None;
    for iy in taps(
        oy,
        p.kernel[0],
        p.stride[0],
        p.padding[0],
        p.dilation[0],
        g.h,
    ) {
        for ix in taps(
            ox,
            p.kernel[1],
            p.stride[1],
            p.padding[1],
            p.dilation[1],
            g.w,
        ) {
            let v = x[iy * g.w + ix];
            if best.is_none_or(|(_, m)| v > m || v.is_nan()) {
                best = Some((iy * g.w + ix, v));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Max pooling.
pub fn max_forward<T: Element>(x: &[T], g: &PoolGeom, p: &Pool2dParams, y: &mut [T]) {
    if p.dilation == [1, 1] {
        return max_forward_dense(x, g, p, y);
    }
    y.par_chunks_mut(g.oh * g.ow)
        .zip(x.par_chunks(g.h * g.w))
        .for_each(|(y, x)| {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    y[oy * g.ow + ox] = argmax(x, g, p, oy, ox).map_or(T::neg_infinity(), |i| x[i]);
                }
            }
        });
}

/// The clipped input range of output `o`'s window along one axis (no dilation).
fn dense_range(o: usize, k: usize, s: usize, pad: usize, size: usize) -> (usize, usize) {
    let start = (o * s) as isize - pad as isize;
    let a = start.clamp(0, size as isize) as usize;
    let b = (start + k as isize).clamp(0, size as isize) as usize;
    (a, b.max(a))
}

/// [`max_backward`] without dilation: the same window maximum as [`argmax`] (a NaN wins, else
/// the first maximum), from ranges computed once per row and column.
fn max_backward_dense<T: Element>(
    x: &[T],
    dy: &[T],
    g: &PoolGeom,
    p: &Pool2dParams,
    dx: &mut [T],
    then: impl Fn(&[T], &mut [T]) + Sync,
) {
    let cols: Vec<(usize, usize)> = (0..g.ow)
        .map(|ox| dense_range(ox, p.kernel[1], p.stride[1], p.padding[1], g.w))
        .collect();
    let s2 = (p.kernel == [2, 2] || p.kernel == [3, 3]) && p.stride == [2, 2];
    dx.par_chunks_mut(g.h * g.w)
        .zip(x.par_chunks(g.h * g.w).zip(dy.par_chunks(g.oh * g.ow)))
        .for_each(|(dx, (x, dy))| {
            dx.iter_mut().for_each(|v| *v = T::zero());
            for oy in 0..g.oh {
                let (y0, y1) = dense_range(oy, p.kernel[0], p.stride[0], p.padding[0], g.h);
                if y0 == y1 {
                    continue;
                }
                let mut ox = 0;
                while ox < g.ow {
                    // Eight whole windows of 2×2 or 3×3, stride 2, at once where the vector
                    // loop takes them (f32 with AVX2, no NaN); their gradients added in the
                    // same order.
                    let (x0, k) = (cols[ox].0, p.kernel[1]);
                    let eight = s2 && y1 - y0 == k && ox + 8 <= g.ow && cols[ox].1 - x0 == k;
                    let eight = eight && cols[ox + 7] == (x0 + 14, x0 + 14 + k);
                    let at = y0 * g.w + x0;
                    let first = match (eight, k) {
                        (true, 2) => first_max_s2::<T, 2>(x, at, g.w),
                        (true, _) => first_max_s2::<T, 3>(x, at, g.w),
                        _ => None,
                    };
                    if let Some(first) = first {
                        for (l, off) in first.into_iter().enumerate() {
                            dx[at + off] += dy[oy * g.ow + ox + l];
                        }
                        ox += 8;
                        continue;
                    }
                    let (x0, x1) = cols[ox];
                    ox += 1;
                    if x0 == x1 {
                        continue;
                    }
                    // Which tap wins is data: scanned with a branch per tap, the
                    // mispredictions cost more than the scan (ResNet-50's pool on random
                    // values 3.24 ms, against 1.41 on a pattern the predictor learns). So the
                    // window's maximum first (a chain of `max`), then its first position
                    // (taps from the last, the position kept where the value equals it):
                    // selects the compiler makes without branches (1.66 ms). A window holding
                    // a NaN takes the scan, whose last NaN wins.
                    let mut m = T::neg_infinity();
                    let mut nan = false;
                    for iy in y0..y1 {
                        for &v in &x[iy * g.w + x0..iy * g.w + x1] {
                            m = if v > m { v } else { m };
                            nan |= v.is_nan();
                        }
                    }
                    let mut at = y0 * g.w + x0;
                    if nan {
                        at = scan_argmax(x, g.w, (y0, y1), (x0, x1));
                    } else {
                        for iy in (y0..y1).rev() {
                            for ix in (x0..x1).rev() {
                                let i = iy * g.w + ix;
                                at = if x[i] == m { i } else { at };
                            }
                        }
                    }
                    dx[at] += dy[oy * g.ow + ox - 1];
                }
            }
            then(x, dx);
        });
}

/// The first maximum's position in a window (rows `y0..y1`, columns `x0..x1` of a plane `w`
/// wide), a NaN counting as larger than anything and the last NaN winning: PyTorch's scan.
fn scan_argmax<T: Element>(
    x: &[T],
    w: usize,
    (y0, y1): (usize, usize),
    (x0, x1): (usize, usize),
) -> usize {
    let mut best: Option<(usize, T)> = None;
    for iy in y0..y1 {
        for ix in x0..x1 {
            let v = x[iy * w + ix];
            if best.is_none_or(|(_, m)| v > m || v.is_nan()) {
                best = Some((iy * w + ix, v));
            }
        }
    }
    best.map_or(y0 * w + x0, |(i, _)| i)
}

/// [`max_forward`] without dilation, separably: for each output row, the maximum over its
/// window's input rows column by column (contiguous, vectorised), then over each window's
/// columns, tap by tap. The same values as a per-window scan — max is associative, a NaN
/// anywhere wins, the −∞ padding changes no maximum — and an empty window is −∞.
fn max_forward_dense<T: Element>(x: &[T], g: &PoolGeom, p: &Pool2dParams, y: &mut [T]) {
    let range = dense_range;
    let [k, s, pad] = [p.kernel[1], p.stride[1], p.padding[1]];
    // The row maxima padded with −∞: `pad` before the row, and after it as far as the last
    // window reaches (and a stride more, so that every tap has a whole last pair).
    let padded = ((g.ow.max(1) - 1) * s + k).max(pad + g.w) + s;

    y.par_chunks_mut(g.oh * g.ow)
        .zip(x.par_chunks(g.h * g.w))
        .for_each(|(y, x)| {
            let mut buf = vec![T::neg_infinity(); padded];
            for oy in 0..g.oh {
                let (y0, y1) = range(oy, p.kernel[0], p.stride[0], p.padding[0], g.h);
                let column = &mut buf[pad..pad + g.w];
                // The first row as it is (the maximum of −∞ and a value is that value, bit for
                // bit), then the others.
                match y0 < y1 {
                    true => column.copy_from_slice(&x[y0 * g.w..(y0 + 1) * g.w]),
                    false => column.fill(T::neg_infinity()),
                }
                for iy in (y0 + 1).min(y1)..y1 {
                    let row = &x[iy * g.w..(iy + 1) * g.w];
                    max_into(column, row);
                }
                let out = &mut y[oy * g.ow..(oy + 1) * g.ow];
                // Tap by tap over all outputs (the padding's −∞ changes no maximum): loops the
                // compiler vectorises, where a scan per window did not.
                out.fill(T::neg_infinity());
                for t in 0..k {
                    if s == 2 {
                        max_into_even(out, &buf[t..]);
                        continue;
                    }
                    let taps = buf[t..].iter().step_by(s);
                    out.iter_mut()
                        .zip(taps)
                        .for_each(|(o, &v)| *o = nan_max(*o, v));
                }
            }
        });
}

/// Max pooling backward: each window's gradient to its first maximum. Writes every value of
/// `dx` (each plane zeroed first), whatever it held.
pub fn max_backward<T: Element>(x: &[T], dy: &[T], g: &PoolGeom, p: &Pool2dParams, dx: &mut [T]) {
    max_backward_then(x, dy, g, p, dx, |_, _| {});
}

/// [`max_backward`], then `then(x, dx)` on each plane (its input and its finished gradient) by
/// the thread that wrote it, while it is in cache: the rectifier before the pool
/// ([`super::activation::rectifier_backward_in_place`]) without a pass of its own.
pub fn max_backward_then<T: Element>(
    x: &[T],
    dy: &[T],
    g: &PoolGeom,
    p: &Pool2dParams,
    dx: &mut [T],
    then: impl Fn(&[T], &mut [T]) + Sync,
) {
    if p.dilation == [1, 1] {
        return max_backward_dense(x, dy, g, p, dx, then);
    }
    dx.par_chunks_mut(g.h * g.w)
        .zip(x.par_chunks(g.h * g.w).zip(dy.par_chunks(g.oh * g.ow)))
        .for_each(|(dx, (x, dy))| {
            dx.iter_mut().for_each(|v| *v = T::zero());
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    if let Some(i) = argmax(x, g, p, oy, ox) {
                        dx[i] += dy[oy * g.ow + ox];
                    }
                }
            }
            then(x, dx);
        });
}

/// The window of output `o` along one axis clipped to the input, and PyTorch's divisor span.
fn avg_window(o: usize, k: usize, s: usize, p: usize, size: usize) -> (usize, usize, usize) {
    let start = (o * s) as isize - p as isize;
    let end = (start + k as isize).min((size + p) as isize);
    let span = (end - start) as usize;
    let (a, b) = (
        start.max(0) as usize,
        end.min(size as isize).max(0) as usize,
    );
    (a, b.max(a), span)
}

fn avg_divisor(p: &Pool2dParams, hy: (usize, usize, usize), wx: (usize, usize, usize)) -> usize {
    if p.count_include_pad {
        hy.2 * wx.2
    } else {
        (hy.1 - hy.0) * (wx.1 - wx.0)
    }
}

/// Average pooling (PyTorch divisor rules).
pub fn avg_forward<T: Element>(x: &[T], g: &PoolGeom, p: &Pool2dParams, y: &mut [T]) {
    y.par_chunks_mut(g.oh * g.ow)
        .zip(x.par_chunks(g.h * g.w))
        .for_each(|(y, x)| {
            for oy in 0..g.oh {
                let hy = avg_window(oy, p.kernel[0], p.stride[0], p.padding[0], g.h);
                for ox in 0..g.ow {
                    let wx = avg_window(ox, p.kernel[1], p.stride[1], p.padding[1], g.w);
                    let mut s = T::zero();
                    for iy in hy.0..hy.1 {
                        for ix in wx.0..wx.1 {
                            s += x[iy * g.w + ix];
                        }
                    }
                    let div = avg_divisor(p, hy, wx).max(1);
                    y[oy * g.ow + ox] = s / T::of_usize(div);
                }
            }
        });
}

/// Average pooling backward. Writes every value of `dx` (each plane zeroed first).
pub fn avg_backward<T: Element>(dy: &[T], g: &PoolGeom, p: &Pool2dParams, dx: &mut [T]) {
    dx.par_chunks_mut(g.h * g.w)
        .zip(dy.par_chunks(g.oh * g.ow))
        .for_each(|(dx, dy)| {
            dx.iter_mut().for_each(|v| *v = T::zero());
            for oy in 0..g.oh {
                let hy = avg_window(oy, p.kernel[0], p.stride[0], p.padding[0], g.h);
                for ox in 0..g.ow {
                    let wx = avg_window(ox, p.kernel[1], p.stride[1], p.padding[1], g.w);
                    let v = dy[oy * g.ow + ox] / T::of_usize(avg_divisor(p, hy, wx).max(1));
                    for iy in hy.0..hy.1 {
                        for ix in wx.0..wx.1 {
                            dx[iy * g.w + ix] += v;
                        }
                    }
                }
            }
        });
}

/// PyTorch's adaptive window `[floor(o·in/out), ceil((o+1)·in/out))`.
fn adaptive(o: usize, out: usize, size: usize) -> (usize, usize) {
    (o * size / out, ((o + 1) * size).div_ceil(out))
}

/// Adaptive average pooling.
pub fn adaptive_forward<T: Element>(x: &[T], g: &PoolGeom, y: &mut [T]) {
    y.par_chunks_mut(g.oh * g.ow)
        .zip(x.par_chunks(g.h * g.w))
        .for_each(|(y, x)| {
            for oy in 0..g.oh {
                let (y0, y1) = adaptive(oy, g.oh, g.h);
                for ox in 0..g.ow {
                    let (x0, x1) = adaptive(ox, g.ow, g.w);
                    let mut s = T::zero();
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            s += x[iy * g.w + ix];
                        }
                    }
                    y[oy * g.ow + ox] = s / T::of_usize((y1 - y0) * (x1 - x0));
                }
            }
        });
}

/// Adaptive average pooling backward. Writes every value of `dx` (each plane zeroed first).
pub fn adaptive_backward<T: Element>(dy: &[T], g: &PoolGeom, dx: &mut [T]) {
    dx.par_chunks_mut(g.h * g.w)
        .zip(dy.par_chunks(g.oh * g.ow))
        .for_each(|(dx, dy)| {
            dx.iter_mut().for_each(|v| *v = T::zero());
            for oy in 0..g.oh {
                let (y0, y1) = adaptive(oy, g.oh, g.h);
                for ox in 0..g.ow {
                    let (x0, x1) = adaptive(ox, g.ow, g.w);
                    let v = dy[oy * g.ow + ox] / T::of_usize((y1 - y0) * (x1 - x0));
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            dx[iy * g.w + ix] += v;
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strides 1, 2 and 3, with padding and with ceil-mode windows cut by the edge.
    fn cases() -> Vec<(Pool2dParams, PoolGeom)> {
        [
            (Pool2dParams::new(3, 2, 1), 13, 12),
            (Pool2dParams::new(2, 2, 0).ceil(), 9, 7),
            (Pool2dParams::new(3, 1, 1), 6, 11),
            (Pool2dParams::new(3, 3, 0).ceil(), 10, 8),
            // Rows of several vectors and a remainder: the AVX2 loops' (53 columns, 27 out).
            (Pool2dParams::new(3, 2, 1), 9, 53),
        ]
        .into_iter()
        .map(|(p, h, w)| {
            let [_, _, oh, ow] = p.output_shape([1, 1, h, w], "test").unwrap();
            (p, PoolGeom { h, w, oh, ow })
        })
        .collect()
    }

    /// The dense max-pool backward sends each window's gradient where [`argmax`] says, on
    /// values full of ties (zeros of both signs among them), NaNs and −∞, with padding and
    /// ceil-mode windows cut by the edge; and on values with one NaN only, so that the AVX2
    /// loop takes most windows of stride 2 (eight at a time, none holding a NaN).
    #[test]
    fn dense_backward_picks_argmax_s_maximum() {
        let wide = [(3, 11, 75), (2, 10, 70)].map(|(k, h, w)| {
            let p = Pool2dParams::new(k, 2, (k - 1) / 2);
            let [_, _, oh, ow] = p.output_shape([1, 1, h, w], "test").unwrap();
            ((p, PoolGeom { h, w, oh, ow }), false)
        });
        for ((p, g), nans) in cases().into_iter().map(|c| (c, true)).chain(wide) {
            let PoolGeom { h, w, oh, ow } = g;
            let x: Vec<f32> = (0..h * w)
                .map(|i| match (i * 7 + i / 5) % 11 {
                    _ if i == 3 * w + 40 => f32::NAN,
                    0 if nans => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    5 => -0.0,
                    v => (v % 4) as f32,
                })
                .collect();
            let dy: Vec<f32> = (0..oh * ow).map(|i| 1.0 + i as f32).collect();
            let mut want = vec![0f32; h * w];
            for oy in 0..oh {
                for ox in 0..ow {
                    if let Some(i) = argmax(&x, &g, &p, oy, ox) {
                        want[i] += dy[oy * ow + ox];
                    }
                }
            }
            let mut got = vec![f32::NAN; h * w];
            max_backward(&x, &dy, &g, &p, &mut got);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{p:?} {h}×{w}");
        }
    }

    /// The separable forward gives each window's maximum, as [`argmax`] finds it (NaN
    /// winning), at strides 1, 2 and 3 with padding and ceil-mode windows.
    #[test]
    fn dense_forward_gives_each_window_s_maximum() {
        for (p, g) in cases() {
            let PoolGeom { h, w, oh, ow } = g;
            let x: Vec<f32> = (0..h * w)
                .map(|i| match (i * 7 + i / 5) % 13 {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    v => ((v * 5) % 9) as f32 - 4.0,
                })
                .collect();
            let mut got = vec![0f32; oh * ow];
            max_forward(&x, &g, &p, &mut got);
            for oy in 0..oh {
                for ox in 0..ow {
                    let want = argmax(&x, &g, &p, oy, ox).map_or(f32::NEG_INFINITY, |i| x[i]);
                    let v = got[oy * ow + ox];
                    assert!(
                        v == want || v.is_nan() && want.is_nan(),
                        "{p:?} {h}×{w} ({oy}, {ox})"
                    );
                }
            }
        }
    }

    /// Ties of zeros of both signs go to the first of them, whichever its sign, and a window
    /// of −∞ only to its first position, as the scan's strict `>` does.
    #[test]
    fn dense_backward_ties_of_signed_zeros_and_minus_infinity() {
        let p = Pool2dParams {
            kernel: [1, 2],
            stride: [1, 2],
            ..Pool2dParams::new(2, 2, 0)
        };
        let g = PoolGeom {
            h: 1,
            w: 8,
            oh: 1,
            ow: 4,
        };
        let ninf = f32::NEG_INFINITY;
        let x = [-0.0, 0.0, 0.0, -0.0, ninf, ninf, -1.0, -0.0];
        let mut got = [f32::NAN; 8];
        max_backward(&x, &[1.0, 2.0, 3.0, 4.0], &g, &p, &mut got);
        assert_eq!(
            got.map(f32::to_bits),
            [1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 0.0, 4.0].map(f32::to_bits)
        );
    }
}
