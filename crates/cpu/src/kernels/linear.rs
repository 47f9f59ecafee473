//! Fully connected layers: `y = x wᵀ + b` and its gradients.

use super::{gemm, vector, Element, Mat, MatMut};
use rayon::prelude::*;

/// `y [n,o] = x [n,i] · wᵀ + b`; rows are computed in parallel blocks.
pub fn forward<T: Element>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    n: usize,
    i: usize,
    o: usize,
    y: &mut [T],
) {
    let blocks = super::ranges(o, 2 * rayon::current_num_threads(), 16);
    // Split the output by column blocks of w's rows: each task owns y[:, o0..o1].
    let cols: Vec<(usize, usize, Vec<T>)> = blocks
        .into_par_iter()
        .map(|(o0, o1)| {
            let mut part = vec![T::zero(); n * (o1 - o0)];
            gemm(
                n,
                i,
                o1 - o0,
                Mat::rows(x, 0, i),
                Mat::rows_t(w, o0 * i, i),
                T::zero(),
                MatMut::rows(&mut part, 0, o1 - o0),
            );
            (o0, o1, part)
        })
        .collect();
    for (o0, o1, part) in cols {
        for r in 0..n {
            y[r * o + o0..r * o + o1].copy_from_slice(&part[r * (o1 - o0)..(r + 1) * (o1 - o0)]);
        }
    }
    if let Some(b) = b {
        y.par_chunks_mut(o)
            .for_each(|row| row.iter_mut().zip(b).for_each(|(v, bb)| *v += *bb));
    }
}

/// Batches up to this size take [`forward_rows`]: at batch 1 a linear layer is a matrix-vector
/// product bound by reading the weights (VGG-16's fc6 is 411 MB).
pub const ROWS_MAX: usize = 8;

/// `y [n,o] = x [n,i] · wᵀ + b` for a small batch: each weight row is read once, from memory,
/// and dotted with every input row while in cache; outputs in parallel blocks. Each dot
/// product sums 16 strided partial sums, then those in order ([`vector::dot`]: fixed,
/// whatever the split or the CPU).
pub fn forward_rows<T: Element>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    n: usize,
    i: usize,
    o: usize,
    y: &mut [T],
) {
    if n == 0 || o == 0 {
        return;
    }
    let mut yt = vec![T::zero(); o * n];
    yt.par_chunks_mut(n * 64)
        .enumerate()
        .for_each(|(blk, out)| {
            for (oo, dst) in out.chunks_mut(n).enumerate() {
                let row = &w[(blk * 64 + oo) * i..][..i];
                for (r, d) in dst.iter_mut().enumerate() {
                    *d = vector::dot(row, &x[r * i..(r + 1) * i]);
                }
            }
        });
    for r in 0..n {
        for q in 0..o {
            y[r * o + q] = yt[q * n + r] + b.map_or(T::zero(), |b| b[q]);
        }
    }
}

/// `dx [n,i] = dy [n,o] · w [o,i]` for a small batch: column blocks of `w` in parallel, each
/// weight row read once and added, scaled, to every row of `dx` (summed over `o` in order).
pub fn backward_data_rows<T: Element>(
    dy: &[T],
    w: &[T],
    n: usize,
    i: usize,
    o: usize,
    dx: &mut [T],
) {
    if n == 0 || i == 0 {
        return;
    }
    // One block of columns per thread: each then reads its weight rows' parts in long runs
    // (VGG-16's fc6 at 30.7 GB/s; in 8 blocks, 26.2; in 32, 16.3).
    let blocks = super::ranges(i, rayon::current_num_threads(), 256);
    let parts: Vec<(usize, usize, Vec<T>)> = blocks
        .into_par_iter()
        .map(|(i0, i1)| {
            let width = i1 - i0;
            let mut part = vec![T::zero(); n * width];
            for q in 0..o {
                let row = &w[q * i + i0..q * i + i1];
                for (r, out) in part.chunks_mut(width).enumerate() {
                    vector::axpy(dy[r * o + q], row, out);
                }
            }
            (i0, i1, part)
        })
        .collect();
    for (i0, i1, part) in parts {
        for r in 0..n {
            dx[r * i + i0..r * i + i1].copy_from_slice(&part[r * (i1 - i0)..(r + 1) * (i1 - i0)]);
        }
    }
}

/// `dx [n,i] = dy [n,o] · w [o,i]`.
pub fn backward_data<T: Element>(dy: &[T], w: &[T], n: usize, i: usize, o: usize, dx: &mut [T]) {
    let blocks = super::ranges(i, 2 * rayon::current_num_threads(), 64);
    let parts: Vec<(usize, usize, Vec<T>)> = blocks
        .into_par_iter()
        .map(|(i0, i1)| {
            let mut part = vec![T::zero(); n * (i1 - i0)];
            gemm(
                n,
                o,
                i1 - i0,
                Mat::rows(dy, 0, o),
                Mat {
                    data: w,
                    off: i0,
                    rs: i,
                    cs: 1,
                },
                T::zero(),
                MatMut::rows(&mut part, 0, i1 - i0),
            );
            (i0, i1, part)
        })
        .collect();
    for (i0, i1, part) in parts {
        for r in 0..n {
            dx[r * i + i0..r * i + i1].copy_from_slice(&part[r * (i1 - i0)..(r + 1) * (i1 - i0)]);
        }
    }
}

/// `dw [o,i] = dyᵀ [o,n] · x [n,i]`.
pub fn backward_weight<T: Element>(x: &[T], dy: &[T], n: usize, i: usize, o: usize, dw: &mut [T]) {
    dw.par_chunks_mut(i * 16)
        .enumerate()
        .for_each(|(blk, out)| {
            let o0 = blk * 16;
            let rows = out.len() / i;
            gemm(
                rows,
                n,
                i,
                Mat {
                    data: dy,
                    off: o0,
                    rs: 1,
                    cs: o,
                },
                Mat::rows(x, 0, i),
                T::zero(),
                MatMut::rows(out, 0, i),
            );
        });
}

/// `db [o]`: `dy` summed over the batch.
pub fn backward_bias<T: Element>(dy: &[T], n: usize, o: usize, db: &mut [T]) {
    for (j, out) in db.iter_mut().enumerate() {
        *out = (0..n).map(|r| dy[r * o + j]).sum();
    }
}
