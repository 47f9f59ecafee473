//! Strided backward-data as stride-1 forward convolutions, one per stride phase.
//!
//! Along one axis (dilation 1) the forward convolution is `y[o] = Σₖ x[o·s + k − p]·w[k]`. Its
//! backward-data at `i = s·m + r` gathers only the taps `k ≡ (r + p) mod s`: with `k = s·t + c`,
//! `dx[s·m + r] = Σₜ dy[m + q − t]·w[s·t + c]` where `q = ⌊(r + p)/s⌋` — a stride-1
//! correlation of dy with those taps flipped (`w'[j] = w[s·(T−1−j) + c]`) and left padding
//! `T − 1 − q` (where that is negative, the correlation runs unpadded and its first
//! `q − (T − 1)` outputs are skipped). So each phase `(ry, rx)` of dx is one forward convolution over dy, which runs
//! the forward tile's gather (no tap a stride skips, no divisibility test per element), and a
//! scatter into dx. A phase no tap reaches (a 1×1 kernel at stride 2) is zero.

use super::{u, CudaBackend, CONV_FORWARD, T};
use crate::context::{Device, Params};
use gradcam_core::{Conv2dParams, Result, Shape};

/// One stride phase of backward-data along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Phase {
    /// Kernel taps that reach the phase (those `≡ first` modulo the stride); 0: dx is zero there.
    pub taps: usize,
    /// The first of them.
    pub first: usize,
    /// Left padding of the stride-1 correlation over dy (the right side is bounded by dy).
    pub pad: usize,
    /// Leading outputs of the correlation that lie before the phase's first position (where
    /// the padding would be negative: a padding reaching past the kernel's first tap).
    pub skip: usize,
    /// Positions of the phase in dx: `r, r + s, …` below the axis' size.
    pub len: usize,
}

/// The `s` phases of an axis with kernel size `k`, padding `pad` and input size `size`
/// (dilation 1).
pub(crate) fn phases(k: usize, s: usize, pad: usize, size: usize) -> Vec<Phase> {
    (0..s)
        .map(|r| {
            let first = (r + pad) % s;
            let taps = if first < k {
                (k - first).div_ceil(s)
            } else {
                0
            };
            let q = (r + pad) / s;
            let reach = taps.saturating_sub(1);
            Phase {
                taps,
                first,
                pad: reach.saturating_sub(q),
                skip: if taps == 0 {
                    0
                } else {
                    q.saturating_sub(reach)
                },
                len: size.saturating_sub(r).div_ceil(s),
            }
        })
        .collect()
}

impl CudaBackend {
    /// Backward-data of a strided convolution with dilation 1 as one forward convolution per
    /// stride phase, scattered into dx; `None` for stride 1 or a dilation.
    /// `xs`, `ws`, `ys`: the input, weight and dy shapes (NCHW).
    pub(super) fn conv_backward_data_phased(
        &self,
        dy: &T,
        w: &T,
        p: &Conv2dParams,
        [xs, ws, ys]: [[usize; 4]; 3],
    ) -> Result<Option<T>> {
        if p.dilation != [1, 1] || p.stride == [1, 1] {
            return Ok(None);
        }
        let py = phases(ws[2], p.stride[0], p.padding[0], xs[2]);
        let px = phases(ws[3], p.stride[1], p.padding[1], xs[3]);
        let [n, c, h, wd] = xs;
        let (k, g) = (ws[0], p.groups);
        let dx = self.alloc(xs.iter().product())?;
        for (ry, fy) in py.iter().enumerate() {
            for (rx, fx) in px.iter().enumerate() {
                if fy.len == 0 || fx.len == 0 {
                    continue;
                }
                let part_size = [fy.len + fy.skip, fx.len + fx.skip];
                let scatter = |src: Option<&T>| {
                    let prm = Params {
                        a: [u(n * c), u(fy.len), u(fx.len), 0],
                        b: [u(h), u(wd), u(p.stride[0]), u(p.stride[1])],
                        c: [u(ry), u(rx), 0, 0],
                        d: [u(part_size[0]), u(part_size[1]), u(fy.skip), u(fx.skip)],
                        f: [src.is_some() as u32 as f32, 0.0, 0.0, 0.0],
                        ..Default::default()
                    };
                    let ins = match src {
                        Some(t) => vec![Self::buffer(t)?],
                        None => vec![],
                    };
                    let count = n * c * fy.len * fx.len;
                    self.launch("conv", "scatter_phase", prm, &ins, &dx, Device::grid(count))
                };
                if fy.taps == 0 || fx.taps == 0 {
                    scatter(None)?;
                    continue;
                }
                let wts = [c, k / g, fy.taps, fx.taps];
                let flip = Params {
                    a: [u(k), u(c), u(ws[2]), u(ws[3])],
                    b: [u(fy.taps), u(fx.taps), u(fy.first), u(fx.first)],
                    c: [u(p.stride[0]), u(p.stride[1]), 0, 0],
                    d: [0, 0, 0, u(g)],
                    ..Default::default()
                };
                let wt = self.flipped(w, flip, wts.iter().product())?;
                let q = Conv2dParams {
                    stride: [1, 1],
                    padding: [fy.pad, fx.pad],
                    dilation: [1, 1],
                    groups: g,
                };
                let out = [n, c, part_size[0], part_size[1]];
                let depth = (k / g) * fy.taps * fx.taps;
                let part = self.tiled(
                    &CONV_FORWARD,
                    Self::conv_params(ys, wts, out, &q),
                    [c / g, n * part_size[0] * part_size[1], depth, g],
                    depth.is_multiple_of(4),
                    &[Self::buffer(dy)?, &*wt],
                    None,
                    Shape::from(out),
                )?;
                scatter(Some(&part))?;
            }
        }
        Ok(Some(Self::tensor(xs, dx)))
    }
}

#[cfg(test)]
mod tests {
    use super::phases;
    use gradcam_core::{Backend, Conv2dParams, Shape, SplitMix64};

    /// The decomposition computed on the host exactly as the CUDA path runs it
    /// (`flip_transpose`'s indexing, the forward tile's bounds, `scatter_phase`), against the
    /// CPU backend's backward-data: odd and even sizes and kernels, strides 2 and 3, groups,
    /// phases no tap reaches.
    #[test]
    fn phases_rebuild_strided_backward_data() {
        let cpu = gradcam_cpu::CpuBackend::new();
        // (input, weight, stride, padding, groups)
        type Case = ([usize; 4], [usize; 4], [usize; 2], [usize; 2], usize);
        let cases: [Case; 14] = [
            ([1, 3, 8, 9], [2, 3, 1, 1], [2, 2], [1, 1], 1),
            ([2, 4, 9, 10], [4, 2, 3, 3], [2, 2], [2, 2], 2),
            ([1, 2, 10, 11], [3, 2, 2, 4], [2, 2], [1, 1], 1),
            ([2, 4, 9, 8], [6, 4, 3, 3], [2, 2], [1, 1], 1),
            ([1, 6, 11, 10], [4, 3, 3, 3], [2, 2], [0, 0], 2),
            ([2, 3, 7, 9], [5, 3, 1, 1], [2, 2], [0, 0], 1),
            ([1, 2, 13, 12], [3, 2, 5, 5], [3, 3], [2, 2], 1),
            ([1, 3, 23, 19], [4, 3, 7, 7], [2, 2], [3, 3], 1),
            ([1, 2, 10, 11], [3, 2, 4, 3], [2, 2], [1, 1], 1),
            ([1, 2, 9, 9], [2, 2, 2, 3], [3, 3], [0, 0], 1),
            ([2, 4, 8, 7], [4, 2, 3, 5], [3, 3], [1, 1], 2),
            // Uneven strides and paddings (one axis a single phase).
            ([1, 3, 9, 8], [4, 3, 3, 3], [2, 1], [1, 0], 1),
            ([2, 2, 7, 10], [3, 2, 1, 3], [1, 3], [0, 1], 1),
            // An input shorter than the stride: phases with no position.
            ([1, 2, 2, 1], [3, 2, 3, 1], [3, 2], [1, 0], 1),
        ];
        let mut rng = SplitMix64::new(5);
        for (xs, ws, st, pd, g) in cases {
            let p = Conv2dParams {
                stride: st,
                padding: pd,
                dilation: [1, 1],
                groups: g,
            };
            let ys = p.output_shape(xs, ws, "test").unwrap();
            let rand = |rng: &mut SplitMix64, n: usize| -> Vec<f32> {
                (0..n).map(|_| rng.uniform(-0.5, 0.5)).collect()
            };
            let w = rand(&mut rng, ws.iter().product());
            let dy = rand(&mut rng, ys.iter().product());
            let want = cpu
                .download(
                    &cpu.conv2d_backward_data(
                        &cpu.upload(&dy, Shape::from(ys)).unwrap(),
                        &cpu.upload(&w, Shape::from(ws)).unwrap(),
                        &p,
                        &Shape::from(xs),
                    )
                    .unwrap(),
                )
                .unwrap();
            let [n, c, h, wd] = xs;
            let [k, _, kh, kw] = ws;
            let (cg, kg) = (c / g, k / g);
            let (py, px) = (phases(kh, st[0], pd[0], h), phases(kw, st[1], pd[1], wd));
            let mut dx = vec![f32::NAN; want.len()];
            for (ry, fy) in py.iter().enumerate() {
                for (rx, fx) in px.iter().enumerate() {
                    if fy.len == 0 || fx.len == 0 {
                        continue;
                    }
                    let (ty, tx) = (fy.taps, fx.taps);
                    let (ph, pw) = (fy.len + fy.skip, fx.len + fx.skip);
                    // flip_transpose: w' [c, kg, ty, tx].
                    let wt = |o: usize, kl: usize, i: usize, j: usize| {
                        let (gi, ci) = (o / cg, o % cg);
                        let ki = st[0] * (ty - 1 - i) + fy.first;
                        let kj = st[1] * (tx - 1 - j) + fx.first;
                        w[(((gi * kg + kl) * cg + ci) * kh + ki) * kw + kj]
                    };
                    // The forward tile: part [n, c, ph, pw], stride 1, left padding, reads of
                    // dy out of range are zeros.
                    let mut part = vec![0.0f32; n * c * ph * pw];
                    for img in 0..n {
                        for o in 0..c {
                            for my in 0..ph {
                                for mx in 0..pw {
                                    let mut sum = 0.0f32;
                                    for kl in 0..kg {
                                        let ch = (o / cg) * kg + kl;
                                        for i in 0..ty {
                                            let iy = (my + i) as isize - fy.pad as isize;
                                            if iy < 0 || iy >= ys[2] as isize {
                                                continue;
                                            }
                                            for j in 0..tx {
                                                let ix = (mx + j) as isize - fx.pad as isize;
                                                if ix < 0 || ix >= ys[3] as isize {
                                                    continue;
                                                }
                                                let d = dy[((img * k + ch) * ys[2] + iy as usize)
                                                    * ys[3]
                                                    + ix as usize];
                                                sum += wt(o, kl, i, j) * d;
                                            }
                                        }
                                    }
                                    part[((img * c + o) * ph + my) * pw + mx] = sum;
                                }
                            }
                        }
                    }
                    // scatter_phase (zeros for a phase no tap reaches).
                    for plane in 0..n * c {
                        for my in 0..fy.len {
                            for mx in 0..fx.len {
                                let v = if ty == 0 || tx == 0 {
                                    0.0
                                } else {
                                    part[(plane * ph + my + fy.skip) * pw + mx + fx.skip]
                                };
                                let (y, x) = (my * st[0] + ry, mx * st[1] + rx);
                                dx[(plane * h + y) * wd + x] = v;
                            }
                        }
                    }
                }
            }
            for (a, b) in dx.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{a} vs {b} for {xs:?} {ws:?} s{st:?} p{pd:?}"
                );
            }
        }
    }

    #[test]
    fn phase_geometry() {
        // 1×1 at stride 2 without padding: every other position only.
        let ph = phases(1, 2, 0, 7);
        assert_eq!((ph[0].taps, ph[0].len, ph[1].taps, ph[1].len), (1, 4, 0, 3));
        // ResNet's strided 3×3: one tap for even positions, two for odd, no padding.
        let ph = phases(3, 2, 1, 56);
        assert_eq!(
            (ph[0].taps, ph[0].first, ph[0].pad, ph[0].skip),
            (1, 1, 0, 0)
        );
        assert_eq!(
            (ph[1].taps, ph[1].first, ph[1].pad, ph[1].skip),
            (2, 0, 0, 0)
        );
        // 1×1 at stride 2 with padding 1: the odd phase reads dy one ahead (a skipped output).
        let ph = phases(1, 2, 1, 8);
        assert_eq!(
            (ph[0].taps, ph[1].taps, ph[1].pad, ph[1].skip),
            (0, 1, 0, 1)
        );
    }
}
