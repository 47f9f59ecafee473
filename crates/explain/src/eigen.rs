//! EigenCAM's projection on the first principal component, on the host in f64.

/// Projects each image's activations `[k, plane]` (centred per channel over the plane) on their
/// first right singular vector, as pytorch-grad-cam's `get_2d_projection`, and fixes the SVD's
/// arbitrary sign so that the larger-magnitude extreme is positive (pytorch-grad-cam's
/// `get_2d_projection_with_sign_correction`); NaN activations count as 0.
pub fn projection(a: &[f32], n: usize, k: usize, plane: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * plane);
    for img in a.chunks(k * plane).take(n) {
        // M: plane × k, columns centred.
        let mut m = vec![0.0f64; plane * k];
        for c in 0..k {
            let ch = &img[c * plane..(c + 1) * plane];
            let vals: Vec<f64> = ch
                .iter()
                .map(|&v| if v.is_nan() { 0.0 } else { v as f64 })
                .collect();
            let mean = vals.iter().sum::<f64>() / plane as f64;
            for (p, v) in vals.iter().enumerate() {
                m[p * k + c] = v - mean;
            }
        }
        let mut proj = if k < plane {
            // C = Mᵀ M (k × k); M v₁ is the projection.
            let c = gram(plane, k, |i, j| m[i * k + j], true);
            let (v, _) = top_eigen(&c, k);
            (0..plane)
                .map(|p| (0..k).map(|j| m[p * k + j] * v[j]).sum())
                .collect::<Vec<f64>>()
        } else {
            // G = M Mᵀ (plane × plane); its top eigenvector u gives M v₁ = σ₁ u.
            let g = gram(plane, k, |i, j| m[i * k + j], false);
            let (u, lambda) = top_eigen(&g, plane);
            let sigma = lambda.max(0.0).sqrt();
            u.iter().map(|v| v * sigma).collect()
        };
        let (lo, hi) = proj
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        if lo.abs() > hi.abs() {
            proj.iter_mut().for_each(|v| *v = -*v);
        }
        out.extend(proj.iter().map(|&v| v as f32));
    }
    out
}

/// `MᵀM` (`cols`² entries) when `transpose`, else `MMᵀ` (`rows`² entries), for `M` rows × cols.
fn gram(rows: usize, cols: usize, at: impl Fn(usize, usize) -> f64, transpose: bool) -> Vec<f64> {
    let (d, inner) = if transpose {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let get = |i: usize, r: usize| if transpose { at(r, i) } else { at(i, r) };
    let mut g = vec![0.0f64; d * d];
    for i in 0..d {
        for j in i..d {
            let s: f64 = (0..inner).map(|r| get(i, r) * get(j, r)).sum();
            g[i * d + j] = s;
            g[j * d + i] = s;
        }
    }
    g
}

/// Top eigenpair of a symmetric positive semi-definite `d×d` matrix by power iteration.
fn top_eigen(g: &[f64], d: usize) -> (Vec<f64>, f64) {
    let trace: f64 = (0..d).map(|i| g[i * d + i]).sum();
    if trace <= 0.0 {
        return (vec![0.0; d], 0.0);
    }
    // Start from the row of largest norm: never orthogonal to the top eigenvector of a PSD
    // matrix unless that row is zero.
    let best = (0..d)
        .max_by(|&a, &b| g[a * d + a].total_cmp(&g[b * d + b]))
        .unwrap_or(0);
    let mut v: Vec<f64> = g[best * d..(best + 1) * d].to_vec();
    normalise(&mut v);
    let mut lambda = 0.0;
    for _ in 0..20_000 {
        let mut w = vec![0.0; d];
        for i in 0..d {
            w[i] = (0..d).map(|j| g[i * d + j] * v[j]).sum();
        }
        let l: f64 = w.iter().zip(&v).map(|(a, b)| a * b).sum();
        normalise(&mut w);
        let delta: f64 = w
            .iter()
            .zip(&v)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        v = w;
        lambda = l;
        if delta < 1e-13 {
            break;
        }
    }
    (v, lambda)
}

fn normalise(v: &mut [f64]) {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}
