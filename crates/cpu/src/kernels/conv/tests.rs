//! The f32 convolution on every micro-kernel (and the portable path) against the same code in
//! f64 with `matrixmultiply`, on awkward shapes: odd and prime sizes, batch > 1, strides,
//! dilation, groups, padding larger and smaller than the kernel's reach.

use super::*;
use crate::kernels::{packed, winograd4};

fn values(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f64 / (1u64 << 24) as f64) - 0.5
        })
        .collect()
}

fn rel_l2(a: &[f32], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den.max(1e-30)).sqrt()
}

/// Every f32 plan without Winograd: each micro-kernel with im2col and with the direct
/// convolution, the portable GEMM, the reference.
fn every_plan() -> Vec<Plan<f32>> {
    let mut plans: Vec<Plan<f32>> = packed::f32_kernels()
        .into_iter()
        .flat_map(|k| {
            [false, true].map(|direct| Plan {
                kernel: Some(k),
                flip: true,
                winograd: false,
                direct,
            })
        })
        .collect();
    plans.push(Plan {
        kernel: None,
        flip: true,
        winograd: false,
        direct: true,
    });
    plans.push(Plan::reference());
    plans
}

fn case(x: [usize; 4], w: [usize; 4], p: Conv2dParams) {
    let out = p.output_shape(x, w, "test").unwrap();
    let g = ConvGeom::new(x, w, out, p);
    let (xs, ws, bs) = (
        values(x.iter().product(), 1),
        values(w.iter().product(), 2),
        values(w[0], 3),
    );
    let dys = values(out.iter().product(), 4);
    let mut y64 = vec![0f64; out.iter().product()];
    let p64 = Plan::<f64>::reference();
    forward(p64, &xs, &ws, Some(&bs), &g, &mut y64);
    let mut dx64 = vec![0f64; xs.len()];
    backward_data(
        p64,
        &dys,
        &prepare_backward(p64, &ws, &g),
        &g,
        None,
        &mut dx64,
    );
    let f = |v: &[f64]| v.iter().map(|&u| u as f32).collect::<Vec<f32>>();
    let (x32, w32, b32, dy32) = (f(&xs), f(&ws), f(&bs), f(&dys));
    for plan in every_plan() {
        let name = format!(
            "{} flip {} direct {}",
            plan.kernel.map_or("portable", |k| k.name),
            plan.flip,
            plan.direct && direct::applies(plan.kernel, &g)
        );
        let mut y = vec![0f32; y64.len()];
        forward(plan, &x32, &w32, Some(&b32), &g, &mut y);
        let e = rel_l2(&y, &y64);
        assert!(e < 1e-6, "{name} forward {x:?} {w:?} {p:?}: rel L2 {e}");
        // With a rectifier: the clamp of the exact output (in the micro-kernel's store).
        let (lo, hi) = (-0.3, 0.4);
        let want: Vec<f64> = y64.iter().map(|v| v.clamp(lo, hi)).collect();
        let clamp = Some((lo as f32, hi as f32));
        forward_clamped(plan, &x32, &w32, Some(&b32), clamp, &g, &mut y);
        let e = rel_l2(&y, &want);
        assert!(e < 1e-6, "{name} clamped {x:?} {w:?} {p:?}: rel L2 {e}");
        let mut dx = vec![0f32; dx64.len()];
        backward_data(
            plan,
            &dy32,
            &prepare_backward(plan, &w32, &g),
            &g,
            None,
            &mut dx,
        );
        let e = rel_l2(&dx, &dx64);
        assert!(
            e < 1e-6,
            "{name} backward-data {x:?} {w:?} {p:?}: rel L2 {e}"
        );
        // Summed into a gradient already there: the bits of the sum after the product.
        let res = f(&values(dx64.len(), 5));
        let mut sum = vec![0f32; dx64.len()];
        let prepared = prepare_backward(plan, &w32, &g);
        backward_data(plan, &dy32, &prepared, &g, Some(&res), &mut sum);
        let same = sum.iter().zip(dx.iter().zip(&res));
        assert!(
            same.clone()
                .all(|(s, (d, r))| s.to_bits() == (r + d).to_bits()),
            "{name} backward-data + residual {x:?} {w:?} {p:?}: {:?}",
            same.map(|(s, (d, r))| (*s, r + d)).find(|(s, t)| s != t)
        );
    }
}

#[test]
fn f32_kernels_agree_with_f64_on_awkward_convolutions() {
    case([3, 5, 13, 11], [7, 5, 3, 3], Conv2dParams::new(1, 1));
    case([2, 3, 17, 19], [13, 3, 7, 7], Conv2dParams::new(2, 3));
    // One image of three channels: backward-data by ranges of dx's rows, each through bands of
    // output rows (`backward_data_banded`).
    case([1, 3, 101, 97], [13, 3, 7, 7], Conv2dParams::new(2, 3));
    case([1, 16, 23, 23], [29, 16, 1, 1], Conv2dParams::new(1, 0));
    case([2, 16, 23, 23], [29, 16, 1, 1], Conv2dParams::new(2, 0));
    // Backward-data 300 deep (two of the GEMM's depth blocks): a residual in the second's
    // accumulating store.
    case([1, 8, 13, 11], [300, 8, 1, 1], Conv2dParams::new(1, 0));
    case(
        [1, 8, 9, 31],
        [12, 4, 3, 3],
        Conv2dParams::new(1, 1).with_groups(2),
    );
    case(
        [2, 6, 15, 15],
        [6, 1, 3, 3],
        Conv2dParams::new(1, 1).with_groups(6),
    );
    case(
        [1, 4, 19, 17],
        [5, 4, 3, 3],
        Conv2dParams::new(1, 2).with_dilation(2),
    );
    case([1, 4, 11, 11], [5, 4, 3, 3], Conv2dParams::new(1, 0));
    case([1, 4, 7, 7], [3, 4, 3, 3], Conv2dParams::new(1, 3));
    case([1, 64, 14, 14], [67, 64, 3, 3], Conv2dParams::new(1, 1));
    // Wide planes (several column blocks, output rows straddling the panels' edges), a depth
    // over one packed block, strides with padding wider than the stride.
    case([1, 41, 40, 71], [7, 41, 3, 3], Conv2dParams::new(2, 1));
    case([2, 3, 37, 53], [5, 3, 5, 5], Conv2dParams::new(3, 4));
    case(
        [1, 5, 29, 31],
        [6, 5, 3, 3],
        Conv2dParams::new(2, 3).with_dilation(2),
    );
}

#[test]
fn direct_convolutions_agree_with_f64() {
    // 3×3 layers the direct convolution takes (their stride-1 backward-data too, through the
    // flipped weight): several blocks of steps (37 · 9 and 7 · 121 steps: blocks of whole
    // channels, a short last one), filters over one panel and not a multiple of it,
    // positions not a multiple of the tile's six rows, strides 1–4, dilation, padding 0–3,
    // batch 2, 7×7, 11×11 and 17×17 stems; tasks by panels and, where the weight is the
    // smaller, by strips (one panel).
    let cases = [
        ([2, 8, 13, 11], [7, 8, 3, 3], Conv2dParams::new(1, 1)),
        ([1, 37, 17, 19], [70, 37, 3, 3], Conv2dParams::new(1, 1)),
        ([2, 8, 23, 29], [131, 8, 3, 3], Conv2dParams::new(2, 1)),
        ([1, 9, 31, 26], [5, 9, 3, 3], Conv2dParams::new(3, 2)),
        ([1, 8, 7, 7], [9, 8, 3, 3], Conv2dParams::new(1, 0)),
        (
            [2, 8, 19, 21],
            [11, 8, 3, 3],
            Conv2dParams::new(1, 2).with_dilation(2),
        ),
        ([2, 3, 37, 41], [10, 3, 7, 7], Conv2dParams::new(2, 3)),
        ([1, 7, 30, 33], [67, 7, 11, 11], Conv2dParams::new(4, 2)),
        // A channel's taps (289) beyond `direct::BLOCK`: blocks of one channel.
        ([1, 2, 41, 43], [5, 2, 17, 17], Conv2dParams::new(2, 8)),
        // With AVX-512, blocks in chunks of 16 channels (`Kernel::gather_channels`): one
        // block of 24 channels in two chunks (16 + 8); 56 channels, a block of 32 (16 + 16)
        // and one of 24.
        ([1, 24, 15, 17], [70, 24, 3, 3], Conv2dParams::new(1, 1)),
        ([2, 56, 11, 13], [19, 56, 3, 3], Conv2dParams::new(1, 1)),
    ];
    for (x, w, p) in cases {
        let out = p.output_shape(x, w, "test").unwrap();
        let g = ConvGeom::new(x, w, out, p);
        let fast = Plan::<f32>::fast();
        assert!(
            fast.kernel.is_none() || fast.direct_kernel(&g).is_some(),
            "{x:?} {w:?}"
        );
        case(x, w, p);
        same_bits_as_im2col(x, w, p);
    }
}

/// A weight smaller than the image: tasks split the strips, each taking them group by group
/// through every panel (two with AVX2), in two blocks of steps (`direct::strips_first`). In a
/// pool of two threads, so that each task's strips span several groups whatever the cores.
#[test]
fn strips_first_takes_every_group_through_every_panel() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let (x, w, p) = ([1, 40, 30, 31], [20, 40, 3, 3], Conv2dParams::new(1, 1));
        case(x, w, p);
        same_bits_as_im2col(x, w, p);
    });
}

/// F(4×4)'s blocks give the same bits however they are scheduled: each on one thread, its
/// phases serial (a round of full blocks per thread), or one at a time with each phase split
/// over the threads (the rest). At 196 tiles per image (three full blocks and four tiles) and
/// batch 2: one or two threads run every block in rounds (six full, two partial), four run four
/// full ones so and leave two and the partial ones, seven run none so.
#[test]
fn winograd4_blocks_give_the_same_bits_however_scheduled() {
    let p = Conv2dParams::new(1, 1);
    let (x, w) = ([2, 16, 55, 56], [21, 16, 3, 3]);
    let g = ConvGeom::new(x, w, p.output_shape(x, w, "test").unwrap(), p);
    let f = |v: Vec<f64>| v.into_iter().map(|u| u as f32).collect::<Vec<f32>>();
    let (xs, ws, bs) = (
        f(values(x.iter().product(), 11)),
        f(values(w.iter().product(), 12)),
        f(values(w[0], 13)),
    );
    let u = winograd4::transform_weight(&ws, w[0], w[1]);
    let mut kernels: Vec<Option<packed::Kernel<f32>>> =
        packed::f32_kernels().into_iter().map(Some).collect();
    kernels.push(None);
    for k in kernels {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut y = vec![f32::NAN; 2 * 21 * 55 * 56];
            pool.install(|| winograd4::forward(k, &xs, &u, Some(&bs), None, &g, &mut y));
            y.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
        };
        let one = run(1);
        assert!(one.iter().all(|&b| !f32::from_bits(b).is_nan()));
        for threads in [2, 4, 7] {
            assert!(run(threads) == one, "{threads} threads");
        }
    }
}

#[test]
fn direct_convolution_takes_deep_enough_3x3_layers_and_stems() {
    let geom = |x: [usize; 4], w: [usize; 4], p: Conv2dParams| {
        ConvGeom::new(x, w, p.output_shape(x, w, "test").unwrap(), p)
    };
    for kernel in packed::f32_kernels() {
        let takes = |x, w, p| direct::applies(Some(kernel), &geom(x, w, p));
        let three = Conv2dParams::new(1, 1);
        assert!(takes([1, 64, 56, 56], [64, 64, 3, 3], three));
        assert!(takes([1, 8, 9, 9], [4, 8, 3, 3], three), "72 steps");
        assert!(!takes([1, 7, 9, 9], [4, 7, 3, 3], three), "63 steps");
        assert!(!takes([1, 3, 224, 224], [64, 3, 3, 3], three), "27 steps");
        assert!(takes(
            [1, 3, 224, 224],
            [64, 3, 7, 7],
            Conv2dParams::new(2, 3)
        ));
        assert!(!takes(
            [1, 64, 56, 56],
            [64, 64, 1, 1],
            Conv2dParams::new(1, 0)
        ));
        let large = takes([1, 64, 224, 224], [64, 64, 3, 3], three);
        assert_eq!(large, kernel.direct_plane >= 224 * 224, "{}", kernel.name);
    }
    assert!(!direct::applies::<f32>(
        None,
        &geom([1, 64, 9, 9], [4, 64, 3, 3], Conv2dParams::new(1, 1))
    ));
}

#[test]
fn depth_blocks_are_whole_channels_where_the_direct_convolution_may_run() {
    let block = |x: [usize; 4], w: [usize; 4], p: Conv2dParams| {
        direct::depth_block(&ConvGeom::new(
            x,
            w,
            p.output_shape(x, w, "test").unwrap(),
            p,
        ))
    };
    let three = Conv2dParams::new(1, 1);
    assert_eq!(block([1, 64, 9, 9], [8, 64, 3, 3], three), 288);
    assert_eq!(
        block([1, 3, 64, 64], [8, 3, 7, 7], Conv2dParams::new(2, 3)),
        5 * 49
    );
    assert_eq!(
        block([1, 2, 41, 43], [5, 2, 17, 17], Conv2dParams::new(2, 8)),
        289
    );
    let pointwise = block([1, 64, 9, 9], [8, 64, 1, 1], Conv2dParams::new(1, 0));
    let grouped = block([1, 64, 9, 9], [8, 32, 3, 3], three.with_groups(2));
    let unstrided_7x7 = block([1, 8, 9, 9], [8, 8, 7, 7], Conv2dParams::new(1, 3));
    assert_eq!([pointwise, grouped, unstrided_7x7], [packed::KC; 3]);
}

/// The direct convolution gives the im2col GEMM's result bit for bit (same steps, same
/// blocks, bias and clamp at the same points), on every micro-kernel.
fn same_bits_as_im2col(x: [usize; 4], w: [usize; 4], p: Conv2dParams) {
    let out = p.output_shape(x, w, "test").unwrap();
    let g = ConvGeom::new(x, w, out, p);
    let f = |v: Vec<f64>| v.into_iter().map(|u| u as f32).collect::<Vec<f32>>();
    let (xs, ws, bs) = (
        f(values(x.iter().product(), 5)),
        f(values(w.iter().product(), 6)),
        f(values(w[0], 7)),
    );
    for kernel in packed::f32_kernels() {
        let plan = |direct| Plan {
            kernel: Some(kernel),
            flip: true,
            winograd: false,
            direct,
        };
        for clamp in [None, Some((-0.2f32, 0.3f32))] {
            let mut y = [
                vec![0f32; out.iter().product()],
                vec![0f32; out.iter().product()],
            ];
            for (d, y) in y.iter_mut().enumerate() {
                forward_clamped(plan(d == 1), &xs, &ws, Some(&bs), clamp, &g, y);
            }
            let differ = y[0]
                .iter()
                .zip(&y[1])
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(differ, 0, "{} {x:?} {w:?} {p:?} {clamp:?}", kernel.name);
        }
    }
}

/// Winograd F(2×2, 3×3) and F(4×4, 3×3) on every micro-kernel against the direct convolution
/// in f64: odd and even planes (partial tiles), padding 0–2, batch > 1, bias and a clamp, one
/// block of tiles and several (small channel counts, which the backend would not send to
/// Winograd: the arithmetic is the same). F(4×4) also runs in f64, where only the transforms'
/// rounding in f64 separates it from the direct product.
#[test]
fn winograd_agrees_with_f64() {
    for (x, w, pad) in [
        ([2, 16, 15, 17], [19, 16, 3, 3], 1),
        ([1, 17, 16, 16], [16, 17, 3, 3], 0),
        ([1, 16, 14, 15], [23, 16, 3, 3], 2),
        ([1, 7, 37, 41], [5, 7, 3, 3], 1),
        ([1, 16, 32, 32], [70, 16, 3, 3], 1),
        ([3, 5, 6, 3], [4, 5, 3, 3], 2),
        ([1, 256, 28, 28], [256, 256, 3, 3], 1),
        ([1, 16, 12, 12], [20, 16, 3, 3], 1),
    ] {
        for clamp in [None, Some((-0.2, 0.3))] {
            winograd_case(x, w, pad, clamp);
        }
    }
}

/// One geometry of [`winograd_agrees_with_f64`], with or without a clamp.
fn winograd_case(x: [usize; 4], w: [usize; 4], pad: usize, clamp: Option<(f64, f64)>) {
    let p = Conv2dParams::new(1, pad);
    let out = p.output_shape(x, w, "test").unwrap();
    let g = ConvGeom::new(x, w, out, p);
    let (xs, ws, bs) = (
        values(x.iter().product(), 5),
        values(w.iter().product(), 6),
        values(w[0], 7),
    );
    let mut want = vec![0f64; out.iter().product()];
    forward_clamped(
        Plan::<f64>::reference(),
        &xs,
        &ws,
        Some(&bs),
        clamp,
        &g,
        &mut want,
    );
    let mut y64 = vec![f64::NAN; want.len()];
    let u64 = winograd4::transform_weight(&ws, w[0], w[1]);
    winograd4::forward(None, &xs, &u64, Some(&bs), clamp, &g, &mut y64);
    // NaN (an output never written) fails the comparison.
    let e64 = y64
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(
            0f64,
            |m, e| if e.is_nan() { f64::INFINITY } else { m.max(e) },
        );
    assert!(
        e64 < 1e-12,
        "F(4x4) f64 {x:?} {w:?} pad {pad}: max error {e64}"
    );
    let f = |v: &[f64]| v.iter().map(|&u| u as f32).collect::<Vec<f32>>();
    let clamp = clamp.map(|(lo, hi)| (lo as f32, hi as f32));
    let (u2, u4) = (
        winograd::transform_weight(&f(&ws), w[0], w[1]),
        winograd4::transform_weight(&f(&ws), w[0], w[1]),
    );
    let mut kernels: Vec<Option<packed::Kernel<f32>>> =
        packed::f32_kernels().into_iter().map(Some).collect();
    kernels.push(None);
    for k in kernels {
        let mut y = vec![0f32; want.len()];
        winograd::forward(k, &f(&xs), &u2, Some(&f(&bs)), clamp, &g, &mut y);
        let e = rel_l2(&y, &want);
        assert!(e < 2e-6, "F(2x2) {x:?} {w:?} pad {pad}: rel L2 {e}");
        let mut y = vec![f32::NAN; want.len()];
        winograd4::forward(k, &f(&xs), &u4, Some(&f(&bs)), clamp, &g, &mut y);
        let e = rel_l2(&y, &want);
        assert!(e < 3e-5, "F(4x4) {x:?} {w:?} pad {pad}: rel L2 {e}");
    }
}

/// Which algorithm each ResNet-50 and VGG-16 3×3 layer (batch 1) gets, relaxed (backward-data,
/// or a fast or `with_winograd_forward` forward) and not (an exact forward), as measured in
/// docs/PERFORMANCE.md; strided, grouped and RGB layers never take Winograd.
#[test]
fn winograd_choice() {
    use winograd::{choose, Variant::*};
    let geom = |c: usize, k: usize, side: usize, p: Conv2dParams| {
        let (x, w) = ([1, c, side, side], [k, c / p.groups, 3, 3]);
        ConvGeom::new(x, w, p.output_shape(x, w, "test").unwrap(), p)
    };
    let s1 = Conv2dParams::new(1, 1);
    for (c, k, side, p, relaxed, strict) in [
        (64, 64, 56, s1, Some(F4), None),
        (128, 128, 28, s1, Some(F4), None),
        (256, 256, 14, s1, Some(F4), None),
        (512, 512, 7, s1, None, None),
        (64, 64, 224, s1, Some(F4), None),
        (256, 256, 56, s1, Some(F4), Some(F2)),
        (512, 512, 28, s1, Some(F4), Some(F2)),
        (512, 512, 14, s1, Some(F4), Some(F2)),
        (64, 64, 14, s1, Some(F4), None),
        (64, 64, 13, s1, Some(F4), None),
        (64, 64, 12, s1, None, None),
        (3, 64, 224, s1, None, None),
        (64, 3, 224, s1, Some(F4), None),
        (128, 128, 56, Conv2dParams::new(2, 1), None, None),
        (64, 64, 56, s1.with_groups(64), None, None),
    ] {
        let g = geom(c, k, side, p);
        assert_eq!(choose(&g, true), relaxed, "{c} ch {side}: relaxed");
        assert_eq!(choose(&g, false), strict, "{c} ch {side}: exact forward");
    }
}

/// `rule`'s answer on a `c`-channel 3×3 layer of `side`×`side` for each case: `small` without a
/// micro-kernel and with the AVX2 one, `wide` with the AVX-512 one (each checked where this CPU
/// has it).
fn check_f4_rule(
    cases: &[(usize, usize, bool, bool)],
    rule: fn(Option<packed::Kernel<f32>>, &ConvGeom) -> bool,
) {
    let named = |name: &str| packed::f32_kernels().into_iter().find(|k| k.name == name);
    for &(c, side, small, wide) in cases {
        let (x, w, p) = ([1, c, side, side], [c, c, 3, 3], Conv2dParams::new(1, 1));
        let g = ConvGeom::new(x, w, p.output_shape(x, w, "test").unwrap(), p);
        assert_eq!(rule(None, &g), small, "{c} {side}");
        for (name, want) in [("avx2", small), ("avx512", wide)] {
            if let Some(k) = named(name) {
                assert_eq!(rule(Some(k), &g), want, "{} {c} {side}", k.name);
            }
        }
    }
}

/// Which planes a forward that may round as F(4×4) takes it on, by micro-kernel: from 13×13
/// (16 tiles) with the AVX2 kernel and without one; with the AVX-512 kernel from 25×25 (49
/// tiles), and where the direct convolution could take the layer only with products of 4 Mi
/// multiply-adds (tiles × channels × filters), as measured in docs/PERFORMANCE.md; never where
/// [`winograd4::worth`] says no.
#[test]
fn the_forward_takes_f4_from_the_kernels_floor() {
    check_f4_rule(
        &[
            (256, 14, true, false),
            (64, 13, true, false),
            (512, 24, true, false),
            // 49 tiles: 12.8 M multiply-adds per product at 512 channels, 3.2 M at 256.
            (512, 25, true, true),
            (256, 28, true, false),
            (128, 28, true, false),
            (64, 56, true, false),
            (128, 112, true, true),
            // 64 tiles: 4 Mi exactly at 256 channels, just under at 255.
            (256, 32, true, true),
            (255, 32, true, false),
            // 3.2 M where the direct convolution could run it (112×112), 3.4 M where it
            // could not (113×113: over its largest plane).
            (64, 112, true, false),
            (64, 113, true, true),
            (512, 7, false, false),
            (3, 224, false, false),
        ],
        winograd4::pays,
    );
}

/// The forward's multiply-add floor counts tiles × channels × filters: 49 tiles of 128 channels
/// to 512 filters (3.2 M) stay direct with AVX-512, to 1024 (6.4 M) take F(4×4); 512 channels
/// to 128 filters alike.
#[test]
fn the_forward_f4_floor_counts_channels_and_filters() {
    let Some(k) = packed::f32_kernels()
        .into_iter()
        .find(|k| k.name == "avx512")
    else {
        return;
    };
    for (c, filters, want) in [(128, 512, false), (128, 1024, true), (512, 128, false)] {
        let (x, w, p) = ([1, c, 28, 28], [filters, c, 3, 3], Conv2dParams::new(1, 1));
        let g = ConvGeom::new(x, w, p.output_shape(x, w, "test").unwrap(), p);
        assert_eq!(winograd4::pays(Some(k), &g), want, "{c} → {filters}");
    }
}

/// Which planes a backward-data takes F(4×4) on, by micro-kernel: from the forward's tile floor
/// (not its multiply-add floor), and with AVX-512 not below 128 channels where the direct
/// convolution could take it (as measured in docs/PERFORMANCE.md); with AVX2 and without a
/// kernel, wherever it pays.
#[test]
fn backward_data_takes_f4_where_it_pays_in_the_network() {
    check_f4_rule(
        &[
            (256, 14, true, false),
            (64, 56, true, false),
            (127, 28, true, false),
            (128, 28, true, true),
            (64, 224, true, true),
            (512, 7, false, false),
        ],
        winograd4::pays_backward,
    );
}

#[test]
fn column_ranges_cover_every_column_once_in_whole_panels() {
    for n in [1, 10, 63, 64, 100, 196, 784, 3136, 12544] {
        for parts in 1..=8 {
            for nr in [8, 16, 64] {
                let r = column_ranges(n, parts, nr);
                assert!(!r.is_empty() && r.len() <= parts, "{n} {parts} {nr}: {r:?}");
                assert_eq!((r[0].0, r[r.len() - 1].1), (0, n), "{n} {parts} {nr}");
                assert!(r.iter().all(|&(a, b)| b > a), "{n} {parts} {nr}: {r:?}");
                for w in r.windows(2) {
                    assert_eq!(w[0].1, w[1].0);
                    assert_eq!((w[0].1 - w[0].0) % nr, 0, "{n} {parts} {nr}: {r:?}");
                }
            }
        }
    }
    // ResNet's 28×28 plane in four: no sliver left to the last part.
    assert_eq!(
        column_ranges(784, 4, 64),
        [(0, 192), (192, 384), (384, 576), (576, 784)]
    );
}

/// A residual sum and clamp in the store give the bits of the convolution, then the sum, then
/// the clamp — on every path (im2col or direct on each micro-kernel, the portable GEMM, the
/// reference), with one depth block or several, batch 2.
#[test]
fn residual_sum_in_the_store_gives_the_bits_of_the_ops() {
    let cases = [
        ([2, 37, 9, 11], [13, 37, 1, 1], Conv2dParams::new(1, 0)),
        ([2, 37, 9, 11], [70, 37, 3, 3], Conv2dParams::new(1, 1)),
        // 72 steps: the direct convolution's one depth block (its transposed store, no
        // accumulation).
        ([1, 8, 16, 15], [9, 8, 3, 3], Conv2dParams::new(2, 1)),
        ([1, 6, 13, 12], [7, 6, 5, 5], Conv2dParams::new(1, 2)),
    ];
    let f = |v: Vec<f64>| v.into_iter().map(|u| u as f32).collect::<Vec<f32>>();
    for (x, w, p) in cases {
        let out = p.output_shape(x, w, "test").unwrap();
        let g = ConvGeom::new(x, w, out, p);
        let len: usize = out.iter().product();
        let (xs, ws, bs, rs) = (
            f(values(x.iter().product(), 8)),
            f(values(w.iter().product(), 9)),
            f(values(w[0], 10)),
            f(values(len, 11)),
        );
        for plan in every_plan() {
            let (lo, hi) = (-0.1f32, 0.35f32);
            let mut three = vec![0f32; len];
            forward(plan, &xs, &ws, Some(&bs), &g, &mut three);
            three
                .iter_mut()
                .zip(&rs)
                .for_each(|(v, &r)| *v = (*v + r).max(lo).min(hi));
            let mut one = vec![f32::NAN; len];
            forward_fused(
                plan,
                &xs,
                &ws,
                Some(&bs),
                Some(&rs),
                Some((lo, hi)),
                &g,
                &mut one,
            );
            let differ = one
                .iter()
                .zip(&three)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            let name = plan.kernel.map_or("portable", |k| k.name);
            assert_eq!(differ, 0, "{name} direct {} {x:?} {w:?} {p:?}", plan.direct);
        }
    }
}

/// The fold of a channel in parts of whole rows gives the whole plane's fold bit for bit
/// (each value takes its terms in the same order), whatever the parts' size.
#[test]
fn col2im_in_parts_of_rows_gives_the_whole_folds_bits() {
    let cases = [
        ([1, 3, 37, 41], [10, 3, 7, 7], Conv2dParams::new(2, 3)),
        (
            [1, 2, 23, 19],
            [4, 2, 5, 5],
            Conv2dParams::new(1, 4).with_dilation(2),
        ),
        ([1, 1, 30, 33], [3, 1, 11, 11], Conv2dParams::new(4, 2)),
    ];
    for (x, w, p) in cases {
        let out = p.output_shape(x, w, "test").unwrap();
        let g = ConvGeom::new(x, w, out, p);
        let cols: Vec<f32> = values(g.c * g.kk() * g.out_plane(), 12)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let mut whole = vec![0f32; g.c * g.in_plane()];
        col2im(&cols, &g, g.c, &mut whole);
        for rows in [1, 2, 5, g.h] {
            let mut parts = vec![0f32; whole.len()];
            let per = g.kk() * g.out_plane();
            for (ci, plane) in parts.chunks_mut(g.in_plane()).enumerate() {
                for (r, part) in plane.chunks_mut(rows * g.w).enumerate() {
                    col2im_rows(
                        &cols[ci * per..(ci + 1) * per],
                        &g,
                        (0, g.oh),
                        r * rows,
                        part,
                    );
                }
            }
            let differ = whole
                .iter()
                .zip(&parts)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(differ, 0, "{x:?} {w:?} {p:?} rows {rows}");
        }
    }
}

/// A strided backward-data by bands of output rows (`backward_data_banded`: ranges of `dx`'s
/// rows per thread, bands folded from the last up) gives the bits of the whole column matrix's
/// fold (`backward_data_by_channels`): a 7×7 stride-2 stem, 11×11 stride 4, 5×5 stride 3
/// with padding over the stride, dilation, unequal strides, a stride over the kernel (rows of
/// `dx` no output reaches), batch 2, two groups; in pools of 1, 2, 3, 8 and as many threads as
/// rows (row ranges of all rows to one), in bands of 1, 2, 5 and all rows.
#[test]
fn banded_backward_data_gives_the_whole_folds_bits() {
    let mut unequal = Conv2dParams::new(2, 2);
    unequal.stride = [3, 2];
    let cases = [
        ([1, 3, 37, 41], [10, 3, 7, 7], Conv2dParams::new(2, 3)),
        ([2, 3, 30, 33], [7, 3, 11, 11], Conv2dParams::new(4, 2)),
        ([1, 2, 23, 19], [5, 2, 5, 5], Conv2dParams::new(3, 4)),
        (
            [1, 2, 23, 19],
            [4, 2, 3, 3],
            Conv2dParams::new(2, 3).with_dilation(2),
        ),
        ([1, 3, 20, 17], [6, 3, 5, 4], unequal),
        (
            [2, 4, 15, 16],
            [6, 2, 3, 3],
            Conv2dParams::new(2, 1).with_groups(2),
        ),
        ([1, 3, 17, 20], [5, 3, 2, 2], Conv2dParams::new(3, 0)),
    ];
    let plan = Plan::<f32>::fast();
    for (x, w, p) in cases {
        let out = p.output_shape(x, w, "test").unwrap();
        let g = ConvGeom::new(x, w, out, p);
        let f = |v: Vec<f64>| v.into_iter().map(|u| u as f32).collect::<Vec<f32>>();
        let dy = f(values(out.iter().product(), 21));
        let wt = f(values(w.iter().product(), 22));
        let prepared = prepare_backward(plan, &wt, &g);
        let mut whole = vec![f32::NAN; x.iter().product()];
        backward_data_by_channels(plan, &dy, &prepared, &g, &mut whole);
        for threads in [1, 2, 3, 8, x[2]] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for band in [1, 2, 5, g.oh] {
                let mut banded = vec![f32::NAN; whole.len()];
                pool.install(|| backward_data_banded(plan, &dy, &prepared, &g, &mut banded, band));
                let differ = whole
                    .iter()
                    .zip(&banded)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
                assert_eq!(
                    differ, 0,
                    "{x:?} {w:?} {p:?}: {threads} threads, band {band}"
                );
            }
        }
    }
}

/// The fold gives the bits of the plainest one (each tap, each output position, in order,
/// added where it lands), so that a faster fold must keep each value's terms in that order.
/// Odd and even widths, rows of 32 outputs or more, paddings that cut a tap's columns at
/// either edge or pass the kernel, a tap that reaches no column, strides 1 to 3 and unequal
/// ones, dilation, kernels of odd and even width.
#[test]
fn col2im_gives_the_plain_folds_bits() {
    let cases = [
        ([1, 3, 37, 41], [10, 3, 7, 7], Conv2dParams::new(2, 3)),
        ([2, 4, 13, 12], [5, 4, 3, 3], Conv2dParams::new(2, 1)),
        ([1, 2, 9, 10], [3, 2, 4, 4], Conv2dParams::new(2, 0)),
        ([1, 2, 11, 11], [3, 2, 2, 2], Conv2dParams::new(2, 1)),
        ([1, 2, 8, 9], [3, 2, 3, 3], Conv2dParams::new(2, 2)),
        ([1, 2, 10, 10], [3, 2, 1, 1], Conv2dParams::new(2, 0)),
        ([1, 2, 12, 11], [3, 2, 3, 3], Conv2dParams::new(1, 1)),
        ([1, 2, 16, 17], [3, 2, 5, 5], Conv2dParams::new(3, 2)),
        (
            [1, 2, 23, 19],
            [4, 2, 3, 3],
            Conv2dParams::new(2, 2).with_dilation(2),
        ),
        // Rows of 32 outputs or more: 7×7, 3×3 and even kernels, cut by the padding or not.
        ([1, 3, 11, 71], [4, 3, 7, 7], Conv2dParams::new(2, 3)),
        ([2, 2, 7, 66], [3, 2, 3, 3], Conv2dParams::new(2, 1)),
        ([1, 2, 6, 69], [3, 2, 4, 4], Conv2dParams::new(2, 0)),
        ([1, 2, 6, 70], [3, 2, 2, 2], Conv2dParams::new(2, 1)),
        ([1, 2, 5, 67], [3, 2, 5, 5], Conv2dParams::new(2, 4)),
        // A tap that reaches no column; padding wider than the kernel; strides 1 and 2.
        ([1, 2, 5, 1], [3, 2, 3, 3], Conv2dParams::new(2, 2)),
        ([1, 2, 6, 7], [3, 2, 1, 1], Conv2dParams::new(2, 1)),
        (
            [1, 3, 9, 12],
            [2, 3, 3, 5],
            Conv2dParams {
                stride: [1, 2],
                ..Conv2dParams::new(1, 2)
            },
        ),
    ];
    for (x, w, p) in cases {
        let out = p.output_shape(x, w, "test").unwrap();
        let g = ConvGeom::new(x, w, out, p);
        let cols: Vec<f32> = values(x[0] * g.c * g.kk() * g.out_plane(), 14)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let mut got = vec![0f32; x[0] * g.c * g.in_plane()];
        col2im(&cols, &g, x[0] * g.c, &mut got);
        let mut want = vec![0f32; got.len()];
        let [sh, sw] = p.stride;
        let [ph, pw] = p.padding;
        let [dh, dw] = p.dilation;
        for (ci, plane) in want.chunks_mut(g.in_plane()).enumerate() {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let row = (ci * g.kk() + ki * g.kw + kj) * g.out_plane();
                    for oy in 0..g.oh {
                        for ox in 0..g.ow {
                            let iy = ConvGeom::src(oy, ki, sh, ph, dh, g.h);
                            let ix = ConvGeom::src(ox, kj, sw, pw, dw, g.w);
                            if let (Some(iy), Some(ix)) = (iy, ix) {
                                plane[iy * g.w + ix] += cols[row + oy * g.ow + ox];
                            }
                        }
                    }
                }
            }
        }
        let differ = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "{x:?} {w:?} {p:?}");
    }
}

/// An input of no rows whose padding still gives outputs (3×3, stride 2, padding 2): the
/// backward-data through columns folds onto an empty plane without a panic.
#[test]
fn backward_data_onto_an_empty_plane() {
    // No rows; then no channels, on a plane the banded path takes (`backward_data_banded`).
    let cases = [
        ([1, 3, 0, 5], [4, 3, 3, 3], Conv2dParams::new(2, 2)),
        ([1, 0, 64, 64], [4, 0, 7, 7], Conv2dParams::new(2, 3)),
    ];
    for (x, w, p) in cases {
        let out = p.output_shape(x, w, "test").unwrap();
        assert!(out.iter().product::<usize>() > 0, "{out:?}");
        let g = ConvGeom::new(x, w, out, p);
        let ws = vec![0.5f32; w.iter().product()];
        let dy = vec![1f32; out.iter().product()];
        for plan in every_plan() {
            let mut dx = Vec::<f32>::new();
            backward_data(
                plan,
                &dy,
                &prepare_backward(plan, &ws, &g),
                &g,
                None,
                &mut dx,
            );
        }
    }
}
