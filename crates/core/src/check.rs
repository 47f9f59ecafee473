//! Shape rules of every primitive, shared by all backends so that each rejects the same inputs
//! with the same message.

use crate::{Conv2dParams, Error, LrnParams, Pool2dParams, Result, Shape};

fn expect_same(op: &str, what: &str, a: &Shape, b: &Shape) -> Result<()> {
    if a != b {
        return Err(Error::shape(op, format!("{what}: {a} vs {b}")));
    }
    Ok(())
}

/// Conv2d: returns the output shape; checks the bias length.
pub fn conv2d(x: &Shape, w: &Shape, b: Option<&Shape>, p: &Conv2dParams) -> Result<[usize; 4]> {
    let xs = x.nchw("conv2d input")?;
    let ws = w.nchw("conv2d weight")?;
    if let Some(b) = b {
        if b.dims() != [ws[0]] {
            return Err(Error::shape(
                "conv2d",
                format!("bias {b} for {} filters", ws[0]),
            ));
        }
    }
    p.output_shape(xs, ws, "conv2d")
}

/// Conv2d backward (data or weight): checks `dy` against the forward shapes.
pub fn conv2d_backward(x: &Shape, w: &Shape, dy: &Shape, p: &Conv2dParams) -> Result<()> {
    let out = conv2d(x, w, None, p)?;
    expect_same(
        "conv2d backward",
        "gradient vs output",
        dy,
        &Shape::from(out),
    )
}

/// Linear: x `[n,in]`, w `[out,in]`, b `[out]`; returns `[n,out]`.
pub fn linear(x: &Shape, w: &Shape, b: Option<&Shape>) -> Result<[usize; 2]> {
    let [n, i] = x.matrix("linear input")?;
    let [o, wi] = w.matrix("linear weight")?;
    if i != wi {
        return Err(Error::shape(
            "linear",
            format!("input has {i} features, weight {w} expects {wi}"),
        ));
    }
    if let Some(b) = b {
        if b.dims() != [o] {
            return Err(Error::shape("linear", format!("bias {b} for {o} outputs")));
        }
    }
    Ok([n, o])
}

/// Linear backward-data: dy `[n,o]`, w `[o,i]`; returns `[n, i, o]`.
pub fn linear_backward_data(dy: &Shape, w: &Shape) -> Result<[usize; 3]> {
    let [n, o] = dy.matrix("linear backward")?;
    let [wo, i] = w.matrix("linear weight")?;
    if wo != o {
        return Err(Error::shape(
            "linear backward",
            format!("gradient {dy} for weight {w}"),
        ));
    }
    Ok([n, i, o])
}

/// Linear backward-weight: x `[n,i]`, dy `[n,o]`; returns `[n, i, o]`.
pub fn linear_backward_weight(x: &Shape, dy: &Shape) -> Result<[usize; 3]> {
    let [n, i] = x.matrix("linear input")?;
    let [dn, o] = dy.matrix("linear backward")?;
    if dn != n {
        return Err(Error::shape(
            "linear backward",
            format!("gradient {dy} for input {x}"),
        ));
    }
    Ok([n, i, o])
}

/// Elementwise binary op: equal shapes.
pub fn same(op: &str, a: &Shape, b: &Shape) -> Result<()> {
    expect_same(op, "operands", a, b)
}

/// Product operands: `b` of `a`'s shape, or `[n, c, 1, 1]` for an `[n, c, h, w]` `a`. Returns the
/// number of consecutive elements of `a` each element of `b` multiplies (1 for equal shapes).
pub fn mul(a: &Shape, b: &Shape) -> Result<usize> {
    if a == b {
        return Ok(1);
    }
    let [n, c, h, w] = a.nchw("mul")?;
    if b.dims() == [n, c, 1, 1] {
        return Ok(h * w);
    }
    Err(Error::shape(
        "mul",
        format!("factor {b} is neither {a} nor [{n}, {c}, 1, 1]"),
    ))
}

/// Local response normalisation: an NCHW input, a window of at least one channel, finite
/// parameters and a positive bias (the normaliser must not reach zero).
pub fn lrn(x: &Shape, p: &LrnParams) -> Result<[usize; 4]> {
    let d = x.nchw("lrn")?;
    if p.size == 0 || !(p.alpha >= 0.0 && p.alpha.is_finite() && p.beta.is_finite() && p.bias > 0.0)
    {
        return Err(Error::InvalidArgument(format!(
            "lrn: size {} (≥ 1), alpha {} (≥ 0), beta {} (finite) and bias {} (> 0)",
            p.size, p.alpha, p.beta, p.bias
        )));
    }
    Ok(d)
}

/// Pooling: output shape.
pub fn pool2d(x: &Shape, p: &Pool2dParams, op: &str) -> Result<[usize; 4]> {
    p.output_shape(x.nchw(op)?, op)
}

/// Pooling backward: `dy` matches the forward output.
pub fn pool2d_backward(x: &Shape, dy: &Shape, p: &Pool2dParams, op: &str) -> Result<()> {
    let out = pool2d(x, p, op)?;
    expect_same(op, "gradient vs output", dy, &Shape::from(out))
}

/// Adaptive average pooling: output shape.
pub fn adaptive_pool(x: &Shape, out: [usize; 2]) -> Result<[usize; 4]> {
    let [n, c, h, w] = x.nchw("adaptive_avg_pool2d")?;
    if out[0] == 0 || out[1] == 0 || h == 0 || w == 0 {
        return Err(Error::shape(
            "adaptive_avg_pool2d",
            format!("cannot pool {x} to {}×{}", out[0], out[1]),
        ));
    }
    Ok([n, c, out[0], out[1]])
}

/// Per-channel affine: x NCHW, scale and shift `[c]`.
pub fn channel_affine(x: &Shape, scale: &Shape, shift: Option<&Shape>) -> Result<[usize; 4]> {
    let d = x.nchw("channel_affine")?;
    for s in std::iter::once(scale).chain(shift) {
        if s.dims() != [d[1]] {
            return Err(Error::shape(
                "channel_affine",
                format!("per-channel {s} for {} channels", d[1]),
            ));
        }
    }
    Ok(d)
}

/// Concatenation along channels: returns the output shape.
pub fn concat_channels(xs: &[&Shape]) -> Result<[usize; 4]> {
    let first = xs
        .first()
        .ok_or_else(|| Error::shape("concat", "no operands"))?
        .nchw("concat")?;
    let mut c = 0;
    for s in xs {
        let d = s.nchw("concat")?;
        if d[0] != first[0] || d[2] != first[2] || d[3] != first[3] {
            return Err(Error::shape(
                "concat",
                format!("operands {} and {s} differ outside channels", xs[0]),
            ));
        }
        c += d[1];
    }
    Ok([first[0], c, first[2], first[3]])
}

/// Channel slice: returns the output shape.
pub fn slice_channels(x: &Shape, start: usize, len: usize) -> Result<[usize; 4]> {
    let [n, c, h, w] = x.nchw("slice_channels")?;
    if start + len > c {
        return Err(Error::shape(
            "slice_channels",
            format!("channels {start}..{} of {x}", start + len),
        ));
    }
    Ok([n, len, h, w])
}

/// Activations `a` and gradients `g` of a CAM: equal NCHW shapes.
pub fn cam_pair(op: &str, a: &Shape, g: &Shape) -> Result<[usize; 4]> {
    let d = a.nchw(op)?;
    expect_same(op, "activation vs gradient", a, g)?;
    Ok(d)
}

/// Weighted channel sum: a `[n,k,h,w]`, w `[n,k]`.
pub fn weighted_channel_sum(a: &Shape, w: &Shape) -> Result<[usize; 4]> {
    let d = a.nchw("weighted_channel_sum")?;
    if w.dims() != [d[0], d[1]] {
        return Err(Error::shape(
            "weighted_channel_sum",
            format!("weights {w} for activations {a}"),
        ));
    }
    Ok(d)
}

/// Normalisation groups: `group` divides the element count.
pub fn normalize(x: &Shape, group: usize) -> Result<()> {
    if group == 0 || !x.numel().is_multiple_of(group) {
        return Err(Error::shape(
            "normalize_min_max",
            format!("groups of {group} do not tile {x}"),
        ));
    }
    Ok(())
}

/// Bilinear resize: returns `(planes, [h, w], output shape)`.
pub fn resize(x: &Shape, out: [usize; 2]) -> Result<(usize, [usize; 2], Shape)> {
    let d = x.dims();
    if d.len() < 2 || out.contains(&0) || d[d.len() - 1] == 0 || d[d.len() - 2] == 0 {
        return Err(Error::shape(
            "resize_bilinear",
            format!("cannot resize {x} to {}×{}", out[0], out[1]),
        ));
    }
    let r = d.len();
    let planes = d[..r - 2].iter().product();
    let mut o = d.to_vec();
    o[r - 2] = out[0];
    o[r - 1] = out[1];
    Ok((planes, [d[r - 2], d[r - 1]], Shape::new(o)))
}

/// Heatmap fusion: x `[n,c,h,w]`, maps `[n,m,h,w]` or `[n,h,w]` (one map each); returns
/// `(x dims, maps per image)`.
pub fn fusion(x: &Shape, maps: &Shape) -> Result<([usize; 4], usize)> {
    let d = x.nchw("heatmap_fusion")?;
    let m = match maps.dims() {
        [n, h, w] if [*n, *h, *w] == [d[0], d[2], d[3]] => 1,
        [n, m, h, w] if [*n, *h, *w] == [d[0], d[2], d[3]] => *m,
        _ => {
            return Err(Error::shape(
                "heatmap_fusion",
                format!("maps {maps} do not match images {x}"),
            ))
        }
    };
    Ok((d, m))
}

/// Guided Grad-CAM's fused product: raw maps `[n,h,w]` (non-empty) and guided gradients
/// `[n,c,H,W]` of the same batch; the guided gradients' dims.
pub fn guided_gradcam(raw: &Shape, guided: &Shape) -> Result<[usize; 4]> {
    let d = guided.nchw("guided_gradcam")?;
    match raw.dims() {
        [n, h, w] if *n == d[0] && *h > 0 && *w > 0 && d[2] > 0 && d[3] > 0 => Ok(d),
        _ => Err(Error::shape(
            "guided_gradcam",
            format!("raw maps {raw} do not match guided gradients {guided}"),
        )),
    }
}

/// Occlusion: x `[1,c,h,w]`, windows inside the image.
pub fn occlude(x: &Shape, origins: &[[usize; 2]], size: [usize; 2]) -> Result<[usize; 4]> {
    let d = x.nchw("occlude")?;
    if d[0] != 1 {
        return Err(Error::shape(
            "occlude",
            format!("expects one image, got {x}"),
        ));
    }
    for o in origins {
        if o[0] + size[0] > d[2] || o[1] + size[1] > d[3] {
            return Err(Error::shape(
                "occlude",
                format!("window {size:?} at {o:?} leaves {x}"),
            ));
        }
    }
    Ok(d)
}

/// Softmax: a matrix.
pub fn softmax(x: &Shape) -> Result<[usize; 2]> {
    x.matrix("softmax")
}
