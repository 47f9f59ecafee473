//! What tf2onnx writes for TensorFlow models, each against a host computation: an NHWC input
//! going into a Transpose to NCHW, `padding="same"` at stride 2 (one more row and column at the
//! end: explicit pads or `auto_pad`), a flatten in NHWC order before the classifier (Transpose
//! 0, 2, 3, 1 and Reshape or Flatten, then MatMul or Gemm), reshapes that change nothing
//! (`[n, c, 1, 1]` and back), the batch entry sliced from a shape; and the errors around them.

mod common;

use common::{ints, model, node, run, tensor, with};
use gradcam_onnx::proto::*;
use prost::Message;

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(v),
        ..Default::default()
    }
}

fn values(n: usize, seed: f32) -> Vec<f32> {
    (0..n).map(|i| ((i as f32 + seed) * 0.37).sin()).collect()
}

/// `y[k, oy, ox]` of a stride-`s` convolution of `x [c, h, w]` padded by `(top, left)` before
/// (anything past the end reads zero), output `oh × ow`.
#[allow(clippy::too_many_arguments)]
fn conv_host(
    x: &[f32],
    [c, h, w]: [usize; 3],
    wt: &[f32],
    k: usize,
    s: usize,
    (top, left): (usize, usize),
    (oh, ow): (usize, usize),
) -> Vec<f32> {
    let mut y = vec![0.0f32; k * oh * ow];
    for kk in 0..k {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = 0.0;
                for ch in 0..c {
                    for u in 0..3 {
                        for v in 0..3 {
                            let (iy, ix) = (
                                (oy * s + u) as isize - top as isize,
                                (ox * s + v) as isize - left as isize,
                            );
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                acc += x[(ch * h + iy as usize) * w + ix as usize]
                                    * wt[((kk * c + ch) * 3 + u) * 3 + v];
                            }
                        }
                    }
                }
                y[(kk * oh + oy) * ow + ox] = acc;
            }
        }
    }
    y
}

fn close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() < 1e-4 * (1.0 + w.abs()),
            "{what} [{i}]: {g} vs {w}"
        );
    }
}

/// NHWC input → Transpose → Conv (stride 2, pads [0, 0, 1, 1]) → Transpose to NHWC → flatten →
/// product with a constant: the importer's NCHW model, the host's NHWC arithmetic.
#[test]
fn an_nhwc_model_with_same_padding_and_an_nhwc_flatten() {
    // Even sizes: TensorFlow pads them [0, 0, 1, 1] at stride 2 (odd ones evenly).
    let (h, w, c, k, classes) = (6usize, 8usize, 3usize, 4usize, 5usize);
    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
    let feats = oh * ow * k;
    let wt = values(k * c * 9, 1.0);
    let fc = values(feats * classes, 2.0); // [feats, classes], rows in HWC order
    let conv = with(
        with(
            node("Conv", &["t", "w"], "conv"),
            attr_ints("strides", &[2, 2]),
        ),
        attr_ints("pads", &[0, 0, 1, 1]),
    );
    let head = |flatten: NodeProto, product: Vec<NodeProto>, extra: Vec<TensorProto>| {
        let mut nodes = vec![
            with(
                node("Transpose", &["x"], "t"),
                attr_ints("perm", &[0, 3, 1, 2]),
            ),
            conv.clone(),
            with(
                node("Transpose", &["conv"], "hwc"),
                attr_ints("perm", &[0, 2, 3, 1]),
            ),
            flatten,
        ];
        nodes.extend(product);
        let mut init = vec![tensor("w", &[k as i64, c as i64, 3, 3], wt.clone())];
        init.extend(extra);
        model(nodes, init, &[1, h as i64, w as i64, c as i64], "y")
    };
    let reshape = node("Reshape", &["hwc", "shape"], "flat");
    let shape = ints("shape", vec![1, -1]);
    let flatten = node("Flatten", &["hwc"], "flat");
    let matmul = vec![node("MatMul", &["flat", "fc"], "y")];
    let fc_t = tensor("fc", &[feats as i64, classes as i64], fc.clone());
    // Gemm with transB: B is [classes, feats].
    let mut fc_tr = vec![0.0f32; feats * classes];
    for f in 0..feats {
        for o in 0..classes {
            fc_tr[o * feats + f] = fc[f * classes + o];
        }
    }
    let gemm = vec![with(
        node("Gemm", &["flat", "fct"], "y"),
        attr_int("transB", 1),
    )];
    let fct = tensor("fct", &[classes as i64, feats as i64], fc_tr);

    // The same image both ways: NCHW for gradcam, NHWC for the host.
    let x_nchw = values(c * h * w, 3.0);
    let conv_out = conv_host(&x_nchw, [c, h, w], &wt, k, 2, (0, 0), (oh, ow));
    let want: Vec<f32> = (0..classes)
        .map(|o| {
            let mut acc = 0.0;
            for y in 0..oh {
                for x in 0..ow {
                    for kk in 0..k {
                        let hwc = (y * ow + x) * k + kk;
                        acc += conv_out[(kk * oh + y) * ow + x] * fc[hwc * classes + o];
                    }
                }
            }
            acc
        })
        .collect();
    for (label, bytes) in [
        (
            "Reshape + MatMul",
            head(
                reshape.clone(),
                matmul.clone(),
                vec![shape.clone(), fc_t.clone()],
            ),
        ),
        (
            "Flatten + MatMul",
            head(flatten.clone(), matmul, vec![fc_t]),
        ),
        (
            "Reshape + Gemm",
            head(reshape, gemm.clone(), vec![shape, fct.clone()]),
        ),
        ("Flatten + Gemm", head(flatten, gemm, vec![fct])),
    ] {
        let got = run(&bytes, &x_nchw, [1, c, h, w]);
        close(&got, &want, label);
    }
}

/// `auto_pad` SAME_UPPER (more at the end) and SAME_LOWER (more at the start) at stride 2 on an
/// even and an odd size, against explicit pads.
#[test]
fn same_auto_padding_at_stride_two() {
    let (c, k) = (2usize, 3usize);
    let wt = values(k * c * 9, 4.0);
    for (h, w) in [(6usize, 7usize), (5, 8)] {
        let x = values(c * h * w, 5.0);
        let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
        for (mode, lower) in [("SAME_UPPER", false), ("SAME_LOWER", true)] {
            let bytes = model(
                vec![with(
                    with(
                        node("Conv", &["x", "w"], "y"),
                        attr_ints("strides", &[2, 2]),
                    ),
                    attr_str("auto_pad", mode),
                )],
                vec![tensor("w", &[k as i64, c as i64, 3, 3], wt.clone())],
                &[1, c as i64, h as i64, w as i64],
                "y",
            );
            let total = |size: usize, out: usize| ((out - 1) * 2 + 3).saturating_sub(size);
            let before = |t: usize| if lower { t - t / 2 } else { t / 2 };
            let (th, tw) = (total(h, oh), total(w, ow));
            let want = conv_host(&x, [c, h, w], &wt, k, 2, (before(th), before(tw)), (oh, ow));
            let got = run(&bytes, &x, [1, c, h, w]);
            close(&got, &want, &format!("{mode} {h}×{w}"));
        }
    }
}

/// A squeeze-and-excitation gate as TensorFlow writes it: the pooled vector flattened, reshaped
/// back to `[n, c, 1, 1]`, multiplying the map; a reshape to the tensor's own shape; the batch
/// entry of a flatten's target sliced from `Shape` and cast.
#[test]
fn reshapes_that_change_nothing_and_a_sliced_shape() {
    let (c, h, w) = (4usize, 3usize, 3usize);
    let x = values(c * h * w, 6.0);
    let bytes = model(
        vec![
            node("GlobalAveragePool", &["x"], "g"),
            node("Flatten", &["g"], "gf"),
            node("Reshape", &["gf", "unit"], "gate"),
            node("Reshape", &["x", "same"], "xs"),
            node("Mul", &["xs", "gate"], "m"),
            node("Shape", &["m"], "shp"),
            node("Slice", &["shp", "zero", "one", "zero"], "batch"),
            with(node("Cast", &["batch"], "b32"), attr_int("to", 6)),
            with(
                node("Concat", &["b32", "minus"], "target"),
                attr_int("axis", 0),
            ),
            node("Reshape", &["m", "target"], "y"),
        ],
        vec![
            ints("unit", vec![-1, c as i64, 1, 1]),
            ints("same", vec![-1, c as i64, h as i64, w as i64]),
            ints("zero", vec![0]),
            ints("one", vec![1]),
            ints("minus", vec![-1]),
        ],
        &[1, c as i64, h as i64, w as i64],
        "y",
    );
    let want: Vec<f32> = (0..c)
        .flat_map(|ch| {
            let plane = &x[ch * h * w..(ch + 1) * h * w];
            let mean = plane.iter().sum::<f32>() / (h * w) as f32;
            plane.iter().map(move |v| v * mean).collect::<Vec<_>>()
        })
        .collect();
    let got = run(&bytes, &x, [1, c, h, w]);
    close(&got, &want, "gate");
}

#[test]
fn nhwc_views_and_inputs_beyond_the_supported_are_errors() {
    let e = |b: Vec<u8>| {
        gradcam_onnx::from_bytes_any_output(&b, None)
            .expect_err("an error")
            .to_string()
    };
    // Anything but per-channel arithmetic before the input's transpose: the input is not taken
    // as NHWC; the error says how to export it.
    let pre = model(
        vec![
            node("Relu", &["x"], "s"),
            with(
                node("Transpose", &["s"], "t"),
                attr_ints("perm", &[0, 3, 1, 2]),
            ),
            node("Relu", &["t"], "y"),
        ],
        vec![],
        &[1, 8, 8, 3],
        "y",
    );
    assert!(e(pre).contains("inputs-as-nchw"));
    // An NHWC view read by anything but a flatten.
    let relu = model(
        vec![
            with(
                node("Transpose", &["x"], "t"),
                attr_ints("perm", &[0, 2, 3, 1]),
            ),
            node("Relu", &["t"], "y"),
        ],
        vec![],
        &[1, 3, 4, 4],
        "y",
    );
    assert!(e(relu).contains("NHWC"));
    // … or reshaped to anything but [n, features].
    let odd = model(
        vec![
            with(
                node("Transpose", &["x"], "t"),
                attr_ints("perm", &[0, 2, 3, 1]),
            ),
            node("Reshape", &["t", "s"], "y"),
        ],
        vec![ints("s", vec![1, 4, 12])],
        &[1, 3, 4, 4],
        "y",
    );
    assert!(e(odd).contains("only a flatten"));
    // SAME padding at a stride without a fixed input size.
    let dynamic = model(
        vec![with(
            with(
                node("Conv", &["x", "w"], "y"),
                attr_ints("strides", &[2, 2]),
            ),
            attr_str("auto_pad", "SAME_UPPER"),
        )],
        vec![tensor("w", &[2, 3, 3, 3], vec![0.0; 54])],
        &[1, 3, 0, 0],
        "y",
    );
    assert!(e(dynamic).contains("input size fixed"));
    // Slicing a constant along another axis, or backwards, is not folded.
    let back = model(
        vec![
            node("Shape", &["x"], "shp"),
            with(
                node("Slice", &["shp", "one", "zero", "zero", "minus"], "y"),
                AttributeProto::default(),
            ),
        ],
        vec![
            ints("zero", vec![0]),
            ints("one", vec![1]),
            ints("minus", vec![-1]),
        ],
        &[1, 3, 4, 4],
        "y",
    );
    assert!(e(back).contains("positive step"));
}

/// SAME padding at a stride and an NHWC flatten are translated for the file's input size: the
/// graph refuses others (ONNX Runtime would pad or flatten them differently). Explicit pads
/// are the file's own at any size: no restriction.
#[test]
fn size_dependent_translations_fix_the_input_size() {
    use gradcam_core::Shape;
    let conv = |attr: AttributeProto| {
        model(
            vec![with(
                with(
                    node("Conv", &["x", "w"], "y"),
                    attr_ints("strides", &[2, 2]),
                ),
                attr,
            )],
            vec![tensor("w", &[2, 3, 3, 3], vec![0.5; 54])],
            &[1, 3, 6, 7],
            "y",
        )
    };
    let same = gradcam_onnx::from_bytes_any_output(&conv(attr_str("auto_pad", "SAME_UPPER")), None)
        .unwrap();
    assert_eq!(same.input_size(), Some([6, 7]));
    assert!(same.infer_shapes(&Shape::new([1, 3, 6, 7])).is_ok());
    let e = same
        .infer_shapes(&Shape::new([1, 3, 8, 8]))
        .expect_err("another size")
        .to_string();
    assert!(e.contains("6×7 inputs only"), "{e}");
    let explicit =
        gradcam_onnx::from_bytes_any_output(&conv(attr_ints("pads", &[0, 0, 1, 1])), None).unwrap();
    assert_eq!(explicit.input_size(), None);
    assert!(explicit.infer_shapes(&Shape::new([1, 3, 9, 9])).is_ok());
    // An NHWC flatten (a 2×2 map: its order matters).
    let flat = model(
        vec![
            with(
                node("Transpose", &["x"], "t"),
                attr_ints("perm", &[0, 2, 3, 1]),
            ),
            node("Flatten", &["t"], "f"),
            node("MatMul", &["f", "m"], "y"),
        ],
        vec![tensor("m", &[12, 2], vec![0.25; 24])],
        &[1, 3, 2, 2],
        "y",
    );
    let g = gradcam_onnx::from_bytes_any_output(&flat, None).unwrap();
    assert_eq!(g.input_size(), Some([2, 2]));
}

/// Keras' preprocessing layers as tf2onnx writes them before the input's Transpose: a scalar
/// rescale, then per-channel constants along NHWC's last axis ([1, 1, 1, c], [c], a constant
/// first); the graph's output is the transposed tensor itself, every channel visible.
#[test]
fn per_channel_arithmetic_before_an_nhwc_inputs_transpose() {
    let (h, w, c) = (5usize, 4usize, 3usize);
    let mean = [0.5f32, -0.25, 1.0];
    let std = [0.5f32, 2.0, 0.25];
    let shift = [1.0f32, -2.0, 3.0];
    let bytes = model(
        vec![
            node("Mul", &["x", "scale"], "s"),
            node("Sub", &["s", "mean"], "centred"),
            node("Div", &["centred", "std"], "normed"),
            node("Sub", &["shift", "normed"], "flipped"),
            with(
                node("Transpose", &["flipped"], "y"),
                attr_ints("perm", &[0, 3, 1, 2]),
            ),
        ],
        vec![
            tensor("scale", &[1, 1, 1, 1], vec![1.0 / 255.0]),
            tensor("mean", &[1, 1, 1, 3], mean.to_vec()),
            tensor("std", &[3], std.to_vec()),
            tensor("shift", &[1, 1, 3], shift.to_vec()),
        ],
        &[1, h as i64, w as i64, c as i64],
        "y",
    );
    let x = values(c * h * w, 7.0)
        .iter()
        .map(|v| v * 255.0)
        .collect::<Vec<_>>();
    let want: Vec<f32> = (0..c * h * w)
        .map(|i| {
            let ch = i / (h * w);
            shift[ch] - (x[i] / 255.0 - mean[ch]) / std[ch]
        })
        .collect();
    close(&run(&bytes, &x, [1, c, h, w]), &want, "preprocessed");
    // A constant of another length than the channels, or a chain tensor the graph also
    // outputs: not taken as an NHWC prefix (errors, with the export hint where it applies).
    let e = |b: Vec<u8>| {
        gradcam_onnx::from_bytes_any_output(&b, None)
            .expect_err("an error")
            .to_string()
    };
    let wrong = model(
        vec![
            node("Mul", &["x", "k"], "s"),
            with(
                node("Transpose", &["s"], "y"),
                attr_ints("perm", &[0, 3, 1, 2]),
            ),
        ],
        vec![tensor("k", &[1, 1, 1, 5], vec![1.0; 5])],
        &[1, 8, 8, 3],
        "y",
    );
    assert!(e(wrong).contains("inputs-as-nchw"));
    let mut both = ModelProto::decode(&bytes[..]).unwrap();
    both.graph.as_mut().unwrap().output.insert(
        0,
        ValueInfoProto {
            name: Some("normed".into()),
            r#type: None,
        },
    );
    assert!(gradcam_onnx::from_bytes_any_output(&both.encode_to_vec(), None).is_err());
}
