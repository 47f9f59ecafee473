//! Finite-difference checks, in f64, of the backward of every primitive with one: the very kernels
//! the CPU backend runs in f32, instantiated in f64. Shapes are deliberately awkward: odd and prime
//! sizes, batch > 1, groups > 1, stride 2, dilation, ceil-mode pooling.

use gradcam_core::{Activation, Conv2dParams, GradMode, LrnParams, Pool2dParams, Rectifier};
use gradcam_cpu::kernels::conv::Plan;
use gradcam_cpu::kernels::{activation, conv, layout, linear, lrn, pool};

/// SplitMix64, uniform in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

const H: f64 = 1e-6;

/// Checks `analytic` against the central difference of `L(x) = Σ seed·f(x)`.
fn check(name: &str, f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64], seed: &[f64], analytic: &[f64]) {
    assert_eq!(x.len(), analytic.len(), "{name}: gradient length");
    let loss = |v: &[f64]| -> f64 { f(v).iter().zip(seed).map(|(a, b)| a * b).sum() };
    let mut worst = 0.0f64;
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        xp[i] = x[i] + H;
        let up = loss(&xp);
        xp[i] = x[i] - H;
        let down = loss(&xp);
        xp[i] = x[i];
        let num = (up - down) / (2.0 * H);
        let err = (num - analytic[i]).abs() / (1.0 + analytic[i].abs());
        worst = worst.max(err);
        assert!(
            err < 1e-6,
            "{name}: element {i}: numeric {num} vs analytic {}",
            analytic[i]
        );
    }
    eprintln!(
        "{name}: {} elements, worst relative error {worst:.2e}",
        x.len()
    );
}

fn conv_case(name: &str, x: [usize; 4], w: [usize; 4], p: Conv2dParams, seed: u64) {
    let mut r = Rng(seed);
    let out = p.output_shape(x, w, name).unwrap();
    let g = conv::ConvGeom::new(x, w, out, p);
    let xv = r.vec(x.iter().product(), 1.0);
    let wv = r.vec(w.iter().product(), 0.5);
    let bv = r.vec(w[0], 0.5);
    let dy = r.vec(out.iter().product(), 1.0);
    let fwd = |xv: &[f64], wv: &[f64], bv: &[f64]| {
        let mut y = vec![0.0; out.iter().product()];
        conv::forward(Plan::fast(), xv, wv, Some(bv), &g, &mut y);
        y
    };
    // Both ways of the backward-data: flipped forward convolution and GEMM + col2im.
    for plan in [Plan::fast(), Plan::reference()] {
        let mut dx = vec![0.0; xv.len()];
        conv::backward_data(
            plan,
            &dy,
            &conv::prepare_backward(plan, &wv, &g),
            &g,
            None,
            &mut dx,
        );
        check(&format!("{name} data"), |v| fwd(v, &wv, &bv), &xv, &dy, &dx);
    }
    let mut dw = vec![0.0; wv.len()];
    conv::backward_weight(&xv, &dy, &g, &mut dw);
    check(
        &format!("{name} weight"),
        |v| fwd(&xv, v, &bv),
        &wv,
        &dy,
        &dw,
    );
    let mut db = vec![0.0; bv.len()];
    conv::backward_bias(&dy, out[0], out[1], out[2] * out[3], &mut db);
    check(&format!("{name} bias"), |v| fwd(&xv, &wv, v), &bv, &dy, &db);
}

#[test]
fn conv2d_3x3_padded_batch2() {
    conv_case(
        "conv 3x3",
        [2, 3, 7, 5],
        [4, 3, 3, 3],
        Conv2dParams::new(1, 1),
        1,
    );
}

#[test]
fn conv2d_grouped_stride2() {
    conv_case(
        "conv groups=2 s2",
        [3, 6, 11, 13],
        [4, 3, 3, 3],
        Conv2dParams::new(2, 1).with_groups(2),
        2,
    );
}

#[test]
fn conv2d_dilated() {
    conv_case(
        "conv dilation 2",
        [2, 3, 9, 7],
        [5, 3, 3, 3],
        Conv2dParams::new(1, 2).with_dilation(2),
        3,
    );
}

#[test]
fn conv2d_depthwise() {
    conv_case(
        "conv depthwise",
        [2, 5, 7, 7],
        [5, 1, 3, 3],
        Conv2dParams::new(2, 1).with_groups(5),
        4,
    );
    conv_case(
        "conv depthwise dilated",
        [3, 7, 11, 9],
        [7, 1, 3, 3],
        Conv2dParams::new(1, 2).with_dilation(2).with_groups(7),
        8,
    );
}

#[test]
fn conv2d_pointwise_and_strided_pointwise() {
    conv_case(
        "conv 1x1",
        [2, 7, 5, 3],
        [3, 7, 1, 1],
        Conv2dParams::new(1, 0),
        5,
    );
    conv_case(
        "conv 1x1 s2",
        [2, 5, 7, 5],
        [3, 5, 1, 1],
        Conv2dParams::new(2, 0),
        6,
    );
}

#[test]
fn conv2d_7x7_stem_asymmetric() {
    let p = Conv2dParams {
        stride: [2, 1],
        padding: [3, 2],
        dilation: [1, 1],
        groups: 1,
    };
    conv_case("conv 7x7 stem", [1, 3, 13, 11], [2, 3, 7, 5], p, 7);
}

#[test]
fn linear_all_operands() {
    let (n, i, o) = (3, 7, 5);
    let mut r = Rng(11);
    let (x, w, b, dy) = (
        r.vec(n * i, 1.0),
        r.vec(o * i, 1.0),
        r.vec(o, 1.0),
        r.vec(n * o, 1.0),
    );
    let fwd = |x: &[f64], w: &[f64], b: &[f64]| {
        let mut y = vec![0.0; n * o];
        linear::forward(x, w, Some(b), n, i, o, &mut y);
        y
    };
    let mut dx = vec![0.0; n * i];
    linear::backward_data(&dy, &w, n, i, o, &mut dx);
    check("linear data", |v| fwd(v, &w, &b), &x, &dy, &dx);
    let mut dw = vec![0.0; o * i];
    linear::backward_weight(&x, &dy, n, i, o, &mut dw);
    check("linear weight", |v| fwd(&x, v, &b), &w, &dy, &dw);
    let mut db = vec![0.0; o];
    linear::backward_bias(&dy, n, o, &mut db);
    check("linear bias", |v| fwd(&x, &w, v), &b, &dy, &db);
}

/// The small-batch paths (weights read once) against the GEMM paths, forward and backward-data.
#[test]
fn linear_rows_path_matches_the_gemm() {
    let mut r = Rng(12);
    for (n, i, o) in [
        (1, 37, 131),
        (3, 16, 64),
        (8, 101, 7),
        (5, 1, 65),
        (2, 600, 3),
    ] {
        let (x, w, b) = (r.vec(n * i, 1.0), r.vec(o * i, 1.0), r.vec(o, 1.0));
        let (mut y1, mut y2) = (vec![0.0; n * o], vec![0.0; n * o]);
        linear::forward(&x, &w, Some(&b), n, i, o, &mut y1);
        linear::forward_rows(&x, &w, Some(&b), n, i, o, &mut y2);
        for (a, c) in y1.iter().zip(&y2) {
            assert!((a - c).abs() < 1e-12, "n{n} i{i} o{o}: {a} vs {c}");
        }
        let dy = r.vec(n * o, 1.0);
        let (mut d1, mut d2) = (vec![0.0; n * i], vec![0.0; n * i]);
        linear::backward_data(&dy, &w, n, i, o, &mut d1);
        linear::backward_data_rows(&dy, &w, n, i, o, &mut d2);
        for (a, c) in d1.iter().zip(&d2) {
            assert!((a - c).abs() < 1e-12, "backward n{n} i{i} o{o}: {a} vs {c}");
        }
    }
}

fn rect_fwd(r: Rectifier) -> impl Fn(&[f64]) -> Vec<f64> {
    move |x: &[f64]| {
        let mut y = vec![0.0; x.len()];
        activation::rectifier(x, r, &mut y);
        y
    }
}

#[test]
fn rectifiers_in_all_three_modes() {
    let mut rng = Rng(21);
    for (name, r) in [
        ("relu", Rectifier::RELU),
        ("relu6", Rectifier::RELU6),
        ("clip(-1,2)", Rectifier { lo: -1.0, hi: 2.0 }),
    ] {
        let x = rng.vec(3 * 5 * 7, 8.0);
        let dy = rng.vec(x.len(), 1.0);
        let y = rect_fwd(r)(&x);
        let back = |mode, seed: &[f64]| {
            let mut dx = vec![0.0; x.len()];
            activation::rectifier_backward(&y, seed, r, mode, &mut dx);
            dx
        };
        // Plain: the true gradient.
        check(
            &format!("{name} plain"),
            rect_fwd(r),
            &x,
            &dy,
            &back(GradMode::Plain, &dy),
        );
        // Guided: the true gradient of the positive part of the incoming gradient.
        let pos: Vec<f64> = dy.iter().map(|v| v.max(0.0)).collect();
        check(
            &format!("{name} guided"),
            rect_fwd(r),
            &x,
            &pos,
            &back(GradMode::Guided, &dy),
        );
        // Deconvnet: the identity's gradient of the positive part, ignoring the input.
        check(
            &format!("{name} deconvnet"),
            |v| v.to_vec(),
            &x,
            &pos,
            &back(GradMode::Deconvnet, &dy),
        );
    }
}

fn pool_case(name: &str, x: [usize; 4], p: Pool2dParams, max: bool, seed: u64) {
    let mut r = Rng(seed);
    let out = p.output_shape(x, name).unwrap();
    let g = pool::PoolGeom {
        h: x[2],
        w: x[3],
        oh: out[2],
        ow: out[3],
    };
    let xv = r.vec(x.iter().product(), 1.0);
    let dy = r.vec(out.iter().product(), 1.0);
    let fwd = |v: &[f64]| {
        let mut y = vec![0.0; out.iter().product()];
        if max {
            pool::max_forward(v, &g, &p, &mut y)
        } else {
            pool::avg_forward(v, &g, &p, &mut y)
        }
        y
    };
    let mut dx = vec![0.0; xv.len()];
    if max {
        pool::max_backward(&xv, &dy, &g, &p, &mut dx)
    } else {
        pool::avg_backward(&dy, &g, &p, &mut dx)
    }
    check(name, fwd, &xv, &dy, &dx);
}

#[test]
fn max_pool_padding_ceil_dilation() {
    pool_case(
        "max 3/2/1",
        [2, 3, 9, 7],
        Pool2dParams::new(3, 2, 1),
        true,
        31,
    );
    pool_case(
        "max 3/2 ceil",
        [2, 3, 13, 11],
        Pool2dParams::new(3, 2, 0).ceil(),
        true,
        32,
    );
    pool_case(
        "max 2/2 odd",
        [3, 2, 7, 5],
        Pool2dParams::new(2, 2, 0),
        true,
        33,
    );
    let mut p = Pool2dParams::new(3, 1, 1);
    p.dilation = [2, 2];
    pool_case("max dilated", [1, 2, 11, 7], p, true, 34);
}

#[test]
fn avg_pool_divisors() {
    pool_case(
        "avg 3/2/1 incl",
        [2, 3, 9, 7],
        Pool2dParams::new(3, 2, 1),
        false,
        41,
    );
    let mut p = Pool2dParams::new(3, 2, 1).ceil();
    p.count_include_pad = false;
    pool_case("avg 3/2/1 ceil excl", [2, 2, 10, 7], p, false, 42);
    pool_case(
        "avg 2/2 ceil incl",
        [1, 3, 7, 5],
        Pool2dParams::new(2, 2, 0).ceil(),
        false,
        43,
    );
}

#[test]
fn adaptive_avg_pool_down_and_up() {
    for (i, (hw, out)) in [([7, 5], [3, 2]), ([3, 2], [7, 5]), ([5, 5], [1, 1])]
        .into_iter()
        .enumerate()
    {
        let mut r = Rng(50 + i as u64);
        let g = pool::PoolGeom {
            h: hw[0],
            w: hw[1],
            oh: out[0],
            ow: out[1],
        };
        let x = r.vec(2 * 3 * hw[0] * hw[1], 1.0);
        let dy = r.vec(2 * 3 * out[0] * out[1], 1.0);
        let fwd = |v: &[f64]| {
            let mut y = vec![0.0; dy.len()];
            pool::adaptive_forward(v, &g, &mut y);
            y
        };
        let mut dx = vec![0.0; x.len()];
        pool::adaptive_backward(&dy, &g, &mut dx);
        check(&format!("adaptive {hw:?}->{out:?}"), fwd, &x, &dy, &dx);
    }
}

#[test]
fn batch_norm_add_concat_softmax() {
    let mut r = Rng(61);
    let (n, c, plane) = (2, 3, 5 * 7);
    let x = r.vec(n * c * plane, 1.0);
    let (scale, shift) = (r.vec(c, 1.0), r.vec(c, 1.0));
    let dy = r.vec(x.len(), 1.0);
    let fwd = |v: &[f64]| {
        let mut y = vec![0.0; v.len()];
        layout::channel_affine(v, &scale, Some(&shift), c, plane, &mut y);
        y
    };
    let mut dx = vec![0.0; x.len()];
    layout::channel_affine(&dy, &scale, None, c, plane, &mut dx);
    check("batch norm (channel affine)", fwd, &x, &dy, &dx);

    let other = r.vec(x.len(), 1.0);
    let add = |v: &[f64]| {
        let mut y = vec![0.0; v.len()];
        layout::add(v, &other, &mut y);
        y
    };
    check("add", add, &x, &dy, &dy);

    // Concat of a [n,3,·] and a [n,2,·] block: its backward is the two channel slices.
    let second = r.vec(n * 2 * plane, 1.0);
    let dcat = r.vec(n * 5 * plane, 1.0);
    let cat = |v: &[f64]| {
        let mut y = vec![0.0; n * 5 * plane];
        layout::concat(&[v, &second], &[c * plane, 2 * plane], n, &mut y);
        y
    };
    let mut dfirst = vec![0.0; x.len()];
    layout::slice(&dcat, 5 * plane, 0, c * plane, &mut dfirst);
    check("concat (first operand)", cat, &x, &dcat, &dfirst);

    let (rows, cls) = (3, 7);
    let logits = r.vec(rows * cls, 3.0);
    let seed = r.vec(rows * cls, 1.0);
    let sm = |v: &[f64]| {
        let mut y = vec![0.0; v.len()];
        activation::softmax(v, cls, &mut y);
        y
    };
    let y = sm(&logits);
    let mut dl = vec![0.0; logits.len()];
    activation::softmax_backward(&y, &seed, cls, &mut dl);
    check("softmax", sm, &logits, &seed, &dl);
}

#[test]
fn smooth_and_piecewise_linear_activations() {
    let mut rng = Rng(23);
    for a in [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::LeakyRelu(0.1),
        Activation::Elu(0.7),
        Activation::HardSigmoid(0.2, 0.5),
        Activation::HardSwish,
        Activation::Reciprocal,
    ] {
        // Values away from the kinks (0 for leaky ReLU and ELU, ±2.5 for hard sigmoid, ±3 for
        // hard swish), where the finite difference straddles no corner; and from the
        // reciprocal's pole at 0.
        let pole = if a == Activation::Reciprocal {
            0.2
        } else {
            1e-3
        };
        let x: Vec<f64> = rng
            .vec(4 * 6 * 5, 10.0)
            .into_iter()
            .filter(|v| {
                [0.0f64, -2.5, 2.5, -3.0, 3.0]
                    .iter()
                    .all(|k| (v - k).abs() > pole)
            })
            .collect();
        let dy = rng.vec(x.len(), 1.0);
        let fwd = |v: &[f64]| {
            let mut y = vec![0.0; v.len()];
            activation::activation(v, a, &mut y);
            y
        };
        let mut dx = vec![0.0; x.len()];
        activation::activation_backward(&x, &dy, a, &mut dx);
        check(&format!("{a:?}"), fwd, &x, &dy, &dx);
    }
}

#[test]
fn products_elementwise_and_gated() {
    let mut r = Rng(67);
    let (n, c, plane) = (2, 3, 5 * 7);
    let a = r.vec(n * c * plane, 1.0);
    let dy = r.vec(a.len(), 1.0);
    // Elements of `a` per element of `b`: 1 (same shapes) or a whole plane (a channel gate).
    for (what, bplane) in [("elementwise", 1), ("gate", plane)] {
        let b = r.vec(a.len() / bplane, 1.0);
        let by_a = |v: &[f64]| {
            let mut y = vec![0.0; v.len()];
            layout::mul(v, &b, bplane, &mut y);
            y
        };
        let mut da = vec![0.0; a.len()];
        layout::mul(&dy, &b, bplane, &mut da);
        check(&format!("mul ({what}), first operand"), by_a, &a, &dy, &da);
        let by_b = |v: &[f64]| {
            let mut y = vec![0.0; a.len()];
            layout::mul(&a, v, bplane, &mut y);
            y
        };
        let mut db = vec![0.0; b.len()];
        if bplane == 1 {
            layout::mul(&dy, &a, 1, &mut db);
        } else {
            layout::mul_plane_sum(&dy, &a, bplane, &mut db);
        }
        check(&format!("mul ({what}), second operand"), by_b, &b, &dy, &db);
    }
}

#[test]
fn local_response_normalisation_odd_and_even_windows() {
    let mut r = Rng(71);
    let (n, c, plane) = (2, 7, 3 * 5);
    let x = r.vec(n * c * plane, 2.0);
    let dy = r.vec(x.len(), 1.0);
    for p in [
        LrnParams {
            size: 5,
            alpha: 0.5,
            beta: 0.75,
            bias: 1.0,
        },
        LrnParams {
            size: 4,
            alpha: 2.0,
            beta: 0.6,
            bias: 2.0,
        },
        LrnParams {
            size: 9,
            alpha: 1e-4,
            beta: 0.75,
            bias: 1.0,
        },
    ] {
        let f = |v: &[f64]| {
            let mut y = vec![0.0; v.len()];
            lrn::lrn(v, c, plane, &p, &mut y);
            y
        };
        let mut dx = vec![0.0; x.len()];
        lrn::lrn_backward(&x, &dy, c, plane, &p, &mut dx);
        check(&format!("lrn {p:?}"), f, &x, &dy, &dx);
    }
}
