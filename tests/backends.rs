//! One test body per primitive, run on every backend present and compared with the CPU
//! backend (relative L2 < 1e-4; 3e-3 for CUDA's TF32 option) on random inputs of awkward
//! sizes: odd and prime spatial sizes, channels not a multiple of 4 or of a workgroup,
//! batch > 1, stride 2, groups > 1, dilation.
//!
//! A backend whose device is absent is skipped with a notice, except where
//! `GRADCAM_REQUIRE_WGPU=1` (set by CI) makes a missing adapter a failure, or
//! `GRADCAM_REQUIRE_CUDA=1` (set by scripts/gpu-check.sh) a missing CUDA device.

mod common;

use gradcam::core::{
    Activation, Conv2dParams, GradMode, LrnParams, Pool2dParams, Rectifier, ResizeMode,
};
use gradcam::{Backend, CpuBackend, Shape, Tensor};

/// SplitMix64 values in [-1, 1).
struct Rng(u64);
impl Rng {
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
                ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }
}

/// A tensor uploaded to both backends.
struct Pair<B: Backend> {
    cpu: Tensor<CpuBackend>,
    dev: Tensor<B>,
}

struct Check<'a, B: Backend> {
    b: &'a B,
    cpu: CpuBackend,
    rng: Rng,
}

impl<'a, B: Backend> Check<'a, B> {
    fn new(b: &'a B, seed: u64) -> Self {
        Check {
            b,
            cpu: CpuBackend::new(),
            rng: Rng(seed),
        }
    }
    fn rand(&mut self, dims: &[usize]) -> Pair<B> {
        let s = Shape::from(dims);
        let v = self.rng.vec(s.numel());
        self.pair(&v, s)
    }
    fn pair(&self, v: &[f32], s: Shape) -> Pair<B> {
        Pair {
            cpu: self.cpu.upload(v, s.clone()).unwrap(),
            dev: self.b.upload(v, s).unwrap(),
        }
    }
    /// Checks that a fused primitive gives the bits of the two ops it replaces on the device.
    fn bits(&self, what: &str, one: gradcam::Result<Tensor<B>>, two: gradcam::Result<Tensor<B>>) {
        let (one, two) = (one.unwrap_or_else(|e| panic!("{what}: {e}")), two.unwrap());
        assert_eq!(one.shape(), two.shape(), "{what}: shape");
        let (a, b) = (
            self.b.download(&one).unwrap(),
            self.b.download(&two).unwrap(),
        );
        let differ = a
            .iter()
            .zip(&b)
            .filter(|(u, v)| u.to_bits() != v.to_bits())
            .count();
        assert_eq!(
            differ,
            0,
            "{what}: {differ} elements differ on {}",
            self.b.name()
        );
    }
    /// Compares a device result with the CPU's.
    fn same(
        &self,
        what: &str,
        dev: gradcam::Result<Tensor<B>>,
        cpu: gradcam::Result<Tensor<CpuBackend>>,
    ) {
        let (dev, cpu) = (dev.unwrap_or_else(|e| panic!("{what}: {e}")), cpu.unwrap());
        assert_eq!(dev.shape(), cpu.shape(), "{what}: shape");
        let (d, c) = (
            self.b.download(&dev).unwrap(),
            self.cpu.download(&cpu).unwrap(),
        );
        let num: f64 = d
            .iter()
            .zip(&c)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum();
        let den: f64 = c.iter().map(|b| (*b as f64).powi(2)).sum();
        let rel = (num / den.max(1e-30)).sqrt();
        // TF32 rounds the convolutions' operands to 10-bit mantissas (2⁻¹¹ relative each).
        let tol = if self.b.name().contains("tf32") {
            3e-3
        } else {
            1e-4
        };
        assert!(
            rel < tol || (den == 0.0 && num == 0.0),
            "{what}: relative L2 {rel:.3e} on {}",
            self.b.name()
        );
    }
}

fn conv<B: Backend>(b: &B) {
    let mut k = Check::new(b, 1);
    // Filters (input channels) per group below 16 take the direct (gather) kernel forward
    // (backward-data), the rest the tiled implicit GEMM. The last three reach the CUDA GEMM's
    // other paths: 128×128 tiles (many output tiles), split-K (batch 1, deep, 7×7), and split-K
    // across groups.
    // The rest: strided backward-data as one forward convolution per stride phase (1×1 at
    // stride 2 with its all-zero phases, stride 3, a phase whose padding would be negative);
    // the direct gather at stride 2 and 3 for 1, 3, 10 channels per group, with dilation;
    // uneven strides, and an input shorter than the stride (phases with no position). Then a
    // 1×7 kernel and a 7×7 one of 17 channels, whose tap positions wrap within a depth slice,
    // through the tiled GEMMs both ways; last, the gathers with a stride and a dilation that
    // share a factor (the taps that land on an output recur every stride / gcd: 1, then 2 of
    // 4 rows, with uneven strides).
    let cases: [([usize; 4], [usize; 4], Conv2dParams); 26] = [
        (
            [2, 8, 9, 7],
            [34, 4, 3, 3],
            Conv2dParams::new(1, 1).with_groups(2),
        ),
        (
            [2, 38, 11, 9],
            [20, 19, 3, 3],
            Conv2dParams::new(2, 1).with_groups(2),
        ),
        (
            [1, 67, 7, 7],
            [33, 67, 3, 3],
            Conv2dParams::new(1, 2).with_dilation(2),
        ),
        ([2, 3, 13, 11], [5, 3, 3, 3], Conv2dParams::new(1, 1)),
        (
            [3, 6, 17, 7],
            [10, 3, 3, 3],
            Conv2dParams::new(2, 1).with_groups(2),
        ),
        (
            [2, 5, 11, 13],
            [5, 1, 3, 3],
            Conv2dParams::new(1, 1).with_groups(5),
        ),
        ([2, 7, 9, 9], [3, 7, 1, 1], Conv2dParams::new(1, 0)),
        ([1, 3, 23, 19], [70, 3, 7, 7], Conv2dParams::new(2, 3)),
        (
            [2, 4, 13, 13],
            [6, 4, 3, 3],
            Conv2dParams::new(1, 2).with_dilation(2),
        ),
        ([3, 37, 75, 75], [130, 37, 3, 3], Conv2dParams::new(1, 1)),
        ([1, 160, 7, 7], [200, 160, 3, 3], Conv2dParams::new(1, 1)),
        (
            [2, 64, 9, 9],
            [96, 32, 3, 3],
            Conv2dParams::new(1, 1).with_groups(2),
        ),
        ([2, 32, 15, 13], [24, 32, 1, 1], Conv2dParams::new(2, 0)),
        ([1, 20, 10, 12], [16, 20, 5, 5], Conv2dParams::new(3, 2)),
        ([2, 17, 9, 8], [40, 17, 3, 3], Conv2dParams::new(2, 0)),
        ([1, 16, 8, 9], [16, 16, 1, 1], Conv2dParams::new(2, 1)),
        (
            [2, 40, 9, 9],
            [32, 20, 3, 3],
            Conv2dParams::new(2, 2).with_groups(2),
        ),
        ([2, 3, 17, 21], [16, 3, 7, 7], Conv2dParams::new(2, 3)),
        (
            [1, 6, 14, 15],
            [4, 3, 3, 3],
            Conv2dParams::new(3, 2).with_dilation(2).with_groups(2),
        ),
        ([1, 10, 11, 9], [6, 10, 3, 3], Conv2dParams::new(2, 1)),
        (
            [1, 16, 9, 8],
            [20, 16, 3, 3],
            Conv2dParams {
                stride: [2, 1],
                padding: [1, 0],
                ..Conv2dParams::new(1, 0)
            },
        ),
        (
            [2, 16, 2, 1],
            [16, 16, 3, 1],
            Conv2dParams {
                stride: [3, 2],
                padding: [1, 0],
                ..Conv2dParams::new(1, 0)
            },
        ),
        (
            [1, 16, 12, 12],
            [16, 16, 1, 7],
            Conv2dParams {
                padding: [0, 3],
                ..Conv2dParams::new(1, 0)
            },
        ),
        ([1, 17, 11, 13], [18, 17, 7, 7], Conv2dParams::new(1, 3)),
        (
            [2, 6, 13, 11],
            [4, 6, 3, 3],
            Conv2dParams::new(2, 2).with_dilation(2),
        ),
        (
            [1, 4, 15, 13],
            [4, 4, 3, 3],
            Conv2dParams {
                stride: [4, 2],
                padding: [2, 1],
                dilation: [2, 1],
                ..Conv2dParams::new(1, 0)
            },
        ),
    ];
    for (i, (xs, ws, p)) in cases.into_iter().enumerate() {
        let (x, w, bias) = (k.rand(&xs), k.rand(&ws), k.rand(&[ws[0]]));
        let y = k.cpu.conv2d(&x.cpu, &w.cpu, Some(&bias.cpu), &p).unwrap();
        k.same(
            &format!("conv2d #{i}"),
            b.conv2d(&x.dev, &w.dev, Some(&bias.dev), &p),
            Ok(y.clone()),
        );
        k.same(
            &format!("conv2d no bias #{i}"),
            b.conv2d(&x.dev, &w.dev, None, &p),
            k.cpu.conv2d(&x.cpu, &w.cpu, None, &p),
        );
        // The convolution fused with its rectifier: the bits of the two ops, every path.
        let r = [
            Rectifier::RELU,
            Rectifier::RELU6,
            Rectifier { lo: -0.5, hi: 0.25 },
        ][i % 3];
        let bias_i = (i % 2 == 0).then_some(&bias.dev);
        k.bits(
            &format!("conv2d_rectified #{i}"),
            b.conv2d_rectified(&x.dev, &w.dev, bias_i, &p, r),
            b.rectifier(&b.conv2d(&x.dev, &w.dev, bias_i, &p).unwrap(), r),
        );
        let res = k.rand(y.dims());
        k.bits(
            &format!("conv2d_add_rectified #{i}"),
            b.conv2d_add_rectified(&x.dev, &w.dev, bias_i, &p, &res.dev, r),
            b.add_rectified(&b.conv2d(&x.dev, &w.dev, bias_i, &p).unwrap(), &res.dev, r),
        );
        let dy = k.rand(y.dims());
        let xsh = Shape::from(xs);
        k.same(
            &format!("conv2d data #{i}"),
            b.conv2d_backward_data(&dy.dev, &w.dev, &p, &xsh),
            k.cpu.conv2d_backward_data(&dy.cpu, &w.cpu, &p, &xsh),
        );
        // Summed into a gradient the input already has: the bits of the two ops, every path.
        let acc = k.rand(&xs);
        k.bits(
            &format!("conv2d_backward_data_add #{i}"),
            b.conv2d_backward_data_add(&dy.dev, &w.dev, &p, &xsh, &acc.dev),
            b.add(
                &acc.dev,
                &b.conv2d_backward_data(&dy.dev, &w.dev, &p, &xsh).unwrap(),
            ),
        );
        let wsh = Shape::from(ws);
        k.same(
            &format!("conv2d weight #{i}"),
            b.conv2d_backward_weight(&x.dev, &dy.dev, &p, &wsh),
            k.cpu.conv2d_backward_weight(&x.cpu, &dy.cpu, &p, &wsh),
        );
        k.same(
            &format!("conv2d bias #{i}"),
            b.conv2d_backward_bias(&dy.dev),
            k.cpu.conv2d_backward_bias(&dy.cpu),
        );
    }
}

fn linear<B: Backend>(b: &B) {
    let mut k = Check::new(b, 2);
    for (n, i, o) in [(3, 7, 5), (5, 131, 67), (1, 300, 10), (1, 2048, 1000)] {
        let (x, w, bias, dy) = (
            k.rand(&[n, i]),
            k.rand(&[o, i]),
            k.rand(&[o]),
            k.rand(&[n, o]),
        );
        k.same(
            "linear",
            b.linear(&x.dev, &w.dev, Some(&bias.dev)),
            k.cpu.linear(&x.cpu, &w.cpu, Some(&bias.cpu)),
        );
        k.same(
            "linear data",
            b.linear_backward_data(&dy.dev, &w.dev),
            k.cpu.linear_backward_data(&dy.cpu, &w.cpu),
        );
        k.same(
            "linear weight",
            b.linear_backward_weight(&x.dev, &dy.dev),
            k.cpu.linear_backward_weight(&x.cpu, &dy.cpu),
        );
        k.same(
            "linear bias",
            b.linear_backward_bias(&dy.dev),
            k.cpu.linear_backward_bias(&dy.cpu),
        );
    }
}

fn rectifiers<B: Backend>(b: &B) {
    let mut k = Check::new(b, 3);
    let x = {
        let v: Vec<f32> = k.rng.vec(3 * 5 * 7 * 11).iter().map(|v| v * 9.0).collect();
        k.pair(&v, Shape::new([3, 5, 7, 11]))
    };
    let dy = k.rand(&[3, 5, 7, 11]);
    for r in [
        Rectifier::RELU,
        Rectifier::RELU6,
        Rectifier { lo: -1.0, hi: 2.0 },
    ] {
        let y = k.cpu.rectifier(&x.cpu, r).unwrap();
        k.same("rectifier", b.rectifier(&x.dev, r), Ok(y.clone()));
        let yd = b.rectifier(&x.dev, r).unwrap();
        for m in [GradMode::Plain, GradMode::Guided, GradMode::Deconvnet] {
            k.same(
                &format!("rectifier backward {m:?} {r:?}"),
                b.rectifier_backward(&yd, &dy.dev, r, m),
                k.cpu.rectifier_backward(&y, &dy.cpu, r, m),
            );
        }
    }
    for a in [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::LeakyRelu(0.1),
        Activation::Elu(0.7),
        Activation::HardSigmoid(0.2, 0.5),
        Activation::HardSwish,
        Activation::Reciprocal,
    ] {
        k.same(
            &format!("{a:?}"),
            b.activation(&x.dev, a),
            k.cpu.activation(&x.cpu, a),
        );
        k.same(
            &format!("{a:?} backward"),
            b.activation_backward(&x.dev, &dy.dev, a),
            k.cpu.activation_backward(&x.cpu, &dy.cpu, a),
        );
    }
}

fn pooling<B: Backend>(b: &B) {
    let mut k = Check::new(b, 4);
    // Local response normalisation: odd and even windows, more channels than the window.
    for (i, size) in [5, 4, 1].into_iter().enumerate() {
        let p = LrnParams {
            size,
            alpha: 0.3,
            beta: 0.75,
            bias: 1.5,
        };
        let x = k.rand(&[3, 11, 5, 7]);
        let dy = k.rand(&[3, 11, 5, 7]);
        k.same(
            &format!("lrn #{i}"),
            b.lrn(&x.dev, &p),
            k.cpu.lrn(&x.cpu, &p),
        );
        k.same(
            &format!("lrn backward #{i}"),
            b.lrn_backward(&x.dev, &dy.dev, &p),
            k.cpu.lrn_backward(&x.cpu, &dy.cpu, &p),
        );
    }
    let mut dil = Pool2dParams::new(3, 1, 1);
    dil.dilation = [2, 2];
    let mut excl = Pool2dParams::new(3, 2, 1).ceil();
    excl.count_include_pad = false;
    for (i, p) in [
        Pool2dParams::new(3, 2, 1),
        Pool2dParams::new(3, 2, 0).ceil(),
        Pool2dParams::new(2, 2, 0),
        dil,
        excl,
    ]
    .into_iter()
    .enumerate()
    {
        let x = k.rand(&[2, 5, 13, 11]);
        let y = k.cpu.max_pool2d(&x.cpu, &p).unwrap();
        k.same(
            &format!("max_pool #{i}"),
            b.max_pool2d(&x.dev, &p),
            Ok(y.clone()),
        );
        let dy = k.rand(y.dims());
        k.same(
            &format!("max_pool backward #{i}"),
            b.max_pool2d_backward(&x.dev, &dy.dev, &p),
            k.cpu.max_pool2d_backward(&x.cpu, &dy.cpu, &p),
        );
        // Through the rectifier whose output the pool reads (ties at its bounds): the CPU's
        // within tolerance, and the bits of the two ops on the device.
        let r = [
            Rectifier::RELU,
            Rectifier::RELU6,
            Rectifier { lo: -0.5, hi: 0.25 },
        ][i % 3];
        let (xr, xr_dev) = (
            k.cpu.rectifier(&x.cpu, r).unwrap(),
            b.rectifier(&x.dev, r).unwrap(),
        );
        for m in [GradMode::Plain, GradMode::Guided, GradMode::Deconvnet] {
            let what = format!("max_pool backward rectified #{i} {m:?}");
            k.same(
                &what,
                b.max_pool2d_backward_rectified(&xr_dev, &dy.dev, &p, r, m),
                k.cpu.max_pool2d_backward_rectified(&xr, &dy.cpu, &p, r, m),
            );
            let two = b.max_pool2d_backward(&xr_dev, &dy.dev, &p).unwrap();
            k.bits(
                &what,
                b.max_pool2d_backward_rectified(&xr_dev, &dy.dev, &p, r, m),
                b.rectifier_backward(&xr_dev, &two, r, m),
            );
        }
        if p.dilation == [1, 1] {
            k.same(
                &format!("avg_pool #{i}"),
                b.avg_pool2d(&x.dev, &p),
                k.cpu.avg_pool2d(&x.cpu, &p),
            );
            let s = x.cpu.shape().clone();
            k.same(
                &format!("avg_pool backward #{i}"),
                b.avg_pool2d_backward(&dy.dev, &p, &s),
                k.cpu.avg_pool2d_backward(&dy.cpu, &p, &s),
            );
        }
    }
    for (hw, out) in [([13, 11], [3, 2]), ([3, 5], [7, 7]), ([7, 7], [1, 1])] {
        let x = k.rand(&[2, 3, hw[0], hw[1]]);
        k.same(
            "adaptive",
            b.adaptive_avg_pool2d(&x.dev, out),
            k.cpu.adaptive_avg_pool2d(&x.cpu, out),
        );
        let dy = k.rand(&[2, 3, out[0], out[1]]);
        let s = x.cpu.shape().clone();
        k.same(
            "adaptive backward",
            b.adaptive_avg_pool2d_backward(&dy.dev, &s),
            k.cpu.adaptive_avg_pool2d_backward(&dy.cpu, &s),
        );
    }
}

fn layout<B: Backend>(b: &B) {
    let mut k = Check::new(b, 5);
    let (x, s, t) = (k.rand(&[3, 7, 5, 3]), k.rand(&[7]), k.rand(&[7]));
    k.same(
        "channel_affine",
        b.channel_affine(&x.dev, &s.dev, &t.dev),
        k.cpu.channel_affine(&x.cpu, &s.cpu, &t.cpu),
    );
    k.same(
        "channel_affine backward",
        b.channel_affine_backward(&x.dev, &s.dev),
        k.cpu.channel_affine_backward(&x.cpu, &s.cpu),
    );
    let y = k.rand(&[3, 7, 5, 3]);
    k.same("add", b.add(&x.dev, &y.dev), k.cpu.add(&x.cpu, &y.cpu));
    for r in [Rectifier::RELU, Rectifier { lo: -0.5, hi: 0.25 }] {
        k.bits(
            "add_rectified",
            b.add_rectified(&x.dev, &y.dev, r),
            b.rectifier(&b.add(&x.dev, &y.dev).unwrap(), r),
        );
    }
    // Products: elementwise, and by a per-image, per-channel gate broadcast over the plane.
    k.same("mul", b.mul(&x.dev, &y.dev), k.cpu.mul(&x.cpu, &y.cpu));
    let gate = k.rand(&[3, 7, 1, 1]);
    k.same(
        "mul by a gate",
        b.mul(&x.dev, &gate.dev),
        k.cpu.mul(&x.cpu, &gate.cpu),
    );
    k.same(
        "mul_plane_sum",
        b.mul_plane_sum(&y.dev, &x.dev),
        k.cpu.mul_plane_sum(&y.cpu, &x.cpu),
    );
    let z = k.rand(&[3, 2, 5, 3]);
    k.same(
        "concat",
        b.concat_channels(&[&x.dev, &z.dev, &y.dev]),
        k.cpu.concat_channels(&[&x.cpu, &z.cpu, &y.cpu]),
    );
    k.same(
        "slice",
        b.slice_channels(&x.dev, 2, 3),
        k.cpu.slice_channels(&x.cpu, 2, 3),
    );
    let l = k.rand(&[5, 13]);
    let dl = k.rand(&[5, 13]);
    k.same("softmax", b.softmax(&l.dev), k.cpu.softmax(&l.cpu));
    let (yd, yc) = (b.softmax(&l.dev).unwrap(), k.cpu.softmax(&l.cpu).unwrap());
    k.same(
        "softmax backward",
        b.softmax_backward(&yd, &dl.dev),
        k.cpu.softmax_backward(&yc, &dl.cpu),
    );
}

fn cam_kernels<B: Backend>(b: &B) {
    let mut k = Check::new(b, 6);
    let (a, g, w) = (
        k.rand(&[3, 37, 7, 5]),
        k.rand(&[3, 37, 7, 5]),
        k.rand(&[3, 37]),
    );
    let apos = {
        let v: Vec<f32> = k
            .cpu
            .download(&a.cpu)
            .unwrap()
            .iter()
            .map(|v| v.abs())
            .collect();
        k.pair(&v, Shape::new([3, 37, 7, 5]))
    };
    k.same(
        "gradient_gap",
        b.gradient_gap(&g.dev),
        k.cpu.gradient_gap(&g.cpu),
    );
    for relu in [false, true] {
        k.same(
            "weighted_channel_sum",
            b.weighted_channel_sum(&a.dev, &w.dev, relu),
            k.cpu.weighted_channel_sum(&a.cpu, &w.cpu, relu),
        );
        k.same(
            "elementwise_channel_sum",
            b.elementwise_channel_sum(&a.dev, &g.dev, relu),
            k.cpu.elementwise_channel_sum(&a.cpu, &g.cpu, relu),
        );
    }
    k.same(
        "gradcampp_weights",
        b.gradcampp_weights(&apos.dev, &g.dev),
        k.cpu.gradcampp_weights(&apos.cpu, &g.cpu),
    );
    k.same(
        "xgradcam_weights",
        b.xgradcam_weights(&apos.dev, &g.dev),
        k.cpu.xgradcam_weights(&apos.cpu, &g.cpu),
    );
    for group in [35, 7 * 5 * 37, 5] {
        k.same(
            "normalize",
            b.normalize_min_max(&a.dev, group, 1e-7),
            k.cpu.normalize_min_max(&a.cpu, group, 1e-7),
        );
    }
    let m = k.rand(&[2, 7, 5]);
    for mode in [ResizeMode::HalfPixel, ResizeMode::AlignCorners] {
        for out in [[29, 31], [3, 2], [7, 5], [1, 1]] {
            k.same(
                &format!("resize {mode:?} {out:?}"),
                b.resize_bilinear(&m.dev, out, mode),
                k.cpu.resize_bilinear(&m.cpu, out, mode),
            );
        }
    }
    let (img, one, three) = (
        k.rand(&[2, 3, 11, 13]),
        k.rand(&[2, 11, 13]),
        k.rand(&[2, 3, 11, 13]),
    );
    k.same(
        "fusion",
        b.heatmap_fusion(&img.dev, &one.dev),
        k.cpu.heatmap_fusion(&img.cpu, &one.cpu),
    );
    k.same(
        "fusion m=3",
        b.heatmap_fusion(&img.dev, &three.dev),
        k.cpu.heatmap_fusion(&img.cpu, &three.cpu),
    );
    // The CAM post-processing, alone and with Guided Grad-CAM's product: up, down and from a
    // single value; a map with no positive value (its range is eps alone).
    let negative = k.pair(
        &[-0.5, -1.0, -0.25, -2.0, -0.75, -1.5],
        Shape::new([2, 1, 3]),
    );
    for (raw, out) in [
        (k.rand(&[3, 5, 7]), [13, 11]),
        (k.rand(&[2, 7, 7]), [37, 41]),
        (k.rand(&[2, 9, 6]), [4, 5]),
        (k.rand(&[1, 1, 1]), [3, 2]),
        (negative, [5, 3]),
    ] {
        let what = format!("cam {} to {out:?}", raw.cpu.shape());
        k.same(
            &what,
            b.cam_postprocess_fused(&raw.dev, out),
            k.cpu.cam_postprocess_fused(&raw.cpu, out),
        );
        let guided = k.rand(&[raw.cpu.dims()[0], 3, out[0], out[1]]);
        let (map, product) = b.guided_gradcam_fused(&raw.dev, &guided.dev).unwrap();
        let (cpu_map, cpu_product) = k.cpu.guided_gradcam_fused(&raw.cpu, &guided.cpu).unwrap();
        k.same(&format!("{what}: map"), Ok(map.clone()), Ok(cpu_map));
        k.same(
            &format!("{what}: product"),
            Ok(product.clone()),
            Ok(cpu_product),
        );
        // On the device: the product is the bits of `heatmap_fusion` of the map, and the map
        // the bits of Grad-CAM's alone (the same map whether Guided Grad-CAM is asked or not).
        let apart = b.heatmap_fusion(&guided.dev, &map);
        k.bits(&format!("{what}: product, fused"), Ok(product), apart);
        k.bits(
            &format!("{what}: map, with the product"),
            Ok(map),
            b.cam_postprocess_fused(&raw.dev, out),
        );
    }
    let x1 = k.rand(&[1, 3, 11, 13]);
    let origins = [[0, 0], [3, 5], [7, 9]];
    k.same(
        "occlude",
        b.occlude(&x1.dev, &origins, [4, 4], 0.25),
        k.cpu.occlude(&x1.cpu, &origins, [4, 4], 0.25),
    );
}

/// VGG-16's fc6 (25088×4096 f32, 411 MB) is above wgpu's default binding limits: the backend
/// asks for the adapter's own limits and splits what still does not fit (llvmpipe binds at most
/// 128 MiB) into row blocks, one GEMM dispatch each.
fn vgg16_fc6<B: Backend>(b: &B) {
    let mut k = Check::new(b, 7);
    let (x, w, bias) = (k.rand(&[2, 25088]), k.rand(&[4096, 25088]), k.rand(&[4096]));
    k.same(
        "fc6",
        b.linear(&x.dev, &w.dev, Some(&bias.dev)),
        k.cpu.linear(&x.cpu, &w.cpu, Some(&bias.cpu)),
    );
    let dy = k.rand(&[2, 4096]);
    k.same(
        "fc6 backward-data",
        b.linear_backward_data(&dy.dev, &w.dev),
        k.cpu.linear_backward_data(&dy.cpu, &w.cpu),
    );
    assert_eq!(
        b.download(&w.dev).unwrap(),
        k.cpu.download(&w.cpu).unwrap(),
        "fc6 round trip"
    );
}

/// Shape errors are the same on every backend.
fn rejects_bad_shapes<B: Backend>(b: &B) {
    let x = b.upload(&[0.0; 12], Shape::new([1, 3, 2, 2])).unwrap();
    let w = b.upload(&[0.0; 16], Shape::new([2, 2, 2, 2])).unwrap();
    assert!(b.conv2d(&x, &w, None, &Conv2dParams::default()).is_err());
    assert!(b.add(&x, &w).is_err());
    // A factor neither of the same shape nor [n, c, 1, 1].
    assert!(b.mul(&x, &w).is_err());
    let g = b.upload(&[0.0; 3], Shape::new([1, 3, 1, 1])).unwrap();
    assert!(b.mul(&g, &x).is_err() && b.mul_plane_sum(&x, &g).is_err());
    assert!(b.upload(&[0.0; 5], Shape::new([2, 3])).is_err());
    // Guided Grad-CAM's product: raw maps of another batch, not [n,h,w], or empty.
    let raw = b.upload(&[0.0; 8], Shape::new([2, 2, 2])).unwrap();
    assert!(b.guided_gradcam_fused(&raw, &x).is_err());
    assert!(b.guided_gradcam_fused(&x, &x).is_err());
    let empty = b.upload(&[], Shape::new([1, 0, 2])).unwrap();
    assert!(b.guided_gradcam_fused(&empty, &x).is_err());
    assert!(b.cam_postprocess_fused(&empty, [2, 2]).is_err());
    assert!(b.cam_postprocess_fused(&x, [2, 2]).is_err());
}

/// Uploads come back unchanged, by `download` or `download_owned` (a tensor given up, or one
/// whose buffer a reshaped view still shares), small or pooled (≥ 64 Ki values on the CPU: a
/// tensor of that length dropped first, its buffer recycled for the upload, its old values
/// overwritten).
fn downloads<B: Backend>(b: &B) {
    let mut rng = Rng(8);
    for n in [13, 70_001] {
        for _ in 0..2 {
            drop(b.upload(&rng.vec(n), Shape::new([n])).unwrap());
            let v = rng.vec(n);
            let t = b.upload(&v, Shape::new([n])).unwrap();
            assert_eq!(b.download(&t).unwrap(), v, "download of {n}");
            let view = t.reshape([1, n]).unwrap();
            assert_eq!(b.download_owned(t).unwrap(), v, "shared buffer of {n}");
            assert_eq!(b.download(&view).unwrap(), v, "the view after");
            assert_eq!(b.download_owned(view).unwrap(), v, "the view given up, {n}");
        }
    }
}

/// Work issued and not yet run still reads the values its inputs had when it was issued: an
/// input dropped right after, its buffer taken by an upload of the same size (wgpu records
/// dispatches and submits them in batches; the upload's write must land after them), then a
/// second op issued on the new values.
fn issued_work_keeps_its_inputs<B: Backend>(b: &B) {
    let mut rng = Rng(9);
    let n = 70_001;
    let shape = || Shape::new([1, 1, 1, n]);
    let v = rng.vec(n);
    let x = b.upload(&v, shape()).unwrap();
    let y = b.rectifier(&x, Rectifier::RELU).unwrap();
    drop(x);
    let w = rng.vec(n);
    let x2 = b.upload(&w, shape()).unwrap();
    let y2 = b.rectifier(&x2, Rectifier::RELU).unwrap();
    let relu = |v: &[f32]| v.iter().map(|a| a.max(0.0)).collect::<Vec<f32>>();
    assert_eq!(
        b.download(&y).unwrap(),
        relu(&v),
        "the first op, on the first values"
    );
    assert_eq!(
        b.download(&y2).unwrap(),
        relu(&w),
        "the second op, on the new values"
    );
}

macro_rules! backend_tests {
    ($backend:ident: $make:expr) => {
        mod $backend {
            use super::*;
            fn backend() -> Option<impl Backend> {
                $make
            }
            #[test]
            fn conv2d() {
                if let Some(b) = backend() {
                    conv(&b)
                }
            }
            #[test]
            fn linear() {
                if let Some(b) = backend() {
                    super::linear(&b)
                }
            }
            #[test]
            fn rectifier_modes() {
                if let Some(b) = backend() {
                    rectifiers(&b)
                }
            }
            #[test]
            fn pooling() {
                if let Some(b) = backend() {
                    super::pooling(&b)
                }
            }
            #[test]
            fn layout_and_softmax() {
                if let Some(b) = backend() {
                    layout(&b)
                }
            }
            #[test]
            fn gradcam_kernels() {
                if let Some(b) = backend() {
                    cam_kernels(&b)
                }
            }
            #[test]
            fn shape_errors() {
                if let Some(b) = backend() {
                    rejects_bad_shapes(&b)
                }
            }
            #[test]
            fn download_and_upload() {
                if let Some(b) = backend() {
                    downloads(&b)
                }
            }
            #[test]
            fn issued_work_reads_its_inputs_as_they_were() {
                if let Some(b) = backend() {
                    issued_work_keeps_its_inputs(&b)
                }
            }
            #[test]
            fn vgg16_fc6_fits() {
                if let Some(b) = backend() {
                    vgg16_fc6(&b)
                }
            }
        }
    };
}

backend_tests!(cpu_winograd: Some(CpuBackend::new().with_winograd_forward(true)));
#[cfg(feature = "wgpu")]
backend_tests!(wgpu: common::wgpu_backend());

/// The wgpu tiled convolution GEMMs with their depth split (split-K: slices summed by
/// `splitk_sum`), which the default policy never does on a software adapter: every
/// convolution case, forward and backward-data, in 3 and in 5 slices (a depth of fewer steps
/// takes as many slices as it has).
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_split_k_conv2d() {
    for n in [3, 5] {
        if let Some(b) = common::wgpu_backend() {
            conv(&b.with_split_k(gradcam::wgpu::SplitK::Fixed(n)));
        }
    }
}
#[cfg(feature = "cuda")]
backend_tests!(cuda: common::cuda_backend());
#[cfg(feature = "cuda")]
backend_tests!(cuda_tf32: common::cuda_tf32_backend());

/// The CPU backend's Winograd paths (F(4×4) for backward-data where it pays, and for forward
/// convolutions with `with_winograd_forward`; F(2×2) at 256 channels) against its reference
/// kernels (the direct product), on geometries that take them: batch 2, odd and prime planes
/// (partial tiles, a partial last block of tiles, a single block), padding 0–2, channels not a
/// multiple of 16. (With AVX-512, backward-data takes F(4×4) only from 128 filters where the
/// direct convolution could run it, and from 49 tiles: the 128-filter case; a forward that may
/// round so, only where the direct convolution could not run it at these sizes: the 115×117
/// case, over its largest plane.)
#[test]
fn cpu_winograd_paths_agree_with_the_reference_kernels() {
    let reference = CpuBackend::reference();
    let fast = CpuBackend::new();
    let winograd = CpuBackend::new().with_winograd_forward(true);
    let mut r = Rng(21);
    let cases: [([usize; 4], usize, usize); 8] = [
        ([2, 20, 29, 31], 24, 1),
        ([1, 19, 115, 117], 21, 1),
        ([1, 20, 26, 26], 24, 1),
        ([1, 17, 41, 37], 19, 0),
        ([2, 33, 27, 26], 40, 2),
        ([1, 64, 56, 56], 64, 1),
        ([1, 256, 14, 14], 256, 1),
        ([1, 37, 29, 30], 128, 1),
    ];
    for (xs, k, pad) in cases {
        let ws = [k, xs[1], 3, 3];
        let p = Conv2dParams::new(1, pad);
        let up = |b: &CpuBackend, v: &[f32], s: &[usize]| b.upload(v, Shape::from(s)).unwrap();
        let (x, w, bias) = (
            r.vec(xs.iter().product()),
            r.vec(ws.iter().product()),
            r.vec(k),
        );
        let run = |b: &CpuBackend| {
            let (xt, wt, bt) = (up(b, &x, &xs), up(b, &w, &ws), up(b, &bias, &[k]));
            let y = b
                .conv2d_rectified(&xt, &wt, Some(&bt), &p, Rectifier::RELU)
                .unwrap();
            let dx = b
                .conv2d_backward_data(&y, &wt, &p, &Shape::from(xs))
                .unwrap();
            (b.download(&y).unwrap(), b.download(&dx).unwrap())
        };
        let (y0, dx0) = run(&reference);
        for (name, b) in [("cpu", &fast), ("cpu-winograd", &winograd)] {
            let (y, dx) = run(b);
            let (ey, edx) = (common::rel_l2(&y, &y0), common::rel_l2(&dx, &dx0));
            eprintln!("{name} {xs:?} k {k} pad {pad}: forward {ey:.1e}, backward-data {edx:.1e}");
            assert!(ey < 1e-4 && edx < 1e-4, "{name} {xs:?}: {ey:.1e} {edx:.1e}");
            // The option really changes the forward's arithmetic (the transforms' rounding):
            // not the bits of the default backend's forward. (Except where this CPU's
            // micro-kernel runs no F(4×4) forward: `winograd4::pays`.)
            let out = p.output_shape(xs, ws, "x").unwrap();
            let g = gradcam::cpu::kernels::conv::ConvGeom::new(xs, ws, out, p);
            let kernel = gradcam::cpu::kernels::packed::f32_default();
            let f4 = gradcam::cpu::kernels::winograd4::pays(kernel, &g);
            if name == "cpu-winograd" {
                let (y1, _) = run(&fast);
                let same = y.iter().zip(&y1).all(|(a, b)| a.to_bits() == b.to_bits());
                if f4 {
                    assert!(!same, "{name} {xs:?}: forward not by Winograd");
                } else {
                    assert!(
                        same,
                        "{name} {xs:?}: forward by F(4×4) where it does not pay"
                    );
                }
            }
        }
    }
}

/// Out of device memory is an error, not a panic, and the backend works on after it: maps of
/// 1 Gi values (4 GiB) resized from one value, kept until an allocation fails. A weight's
/// flipped copy for backward-data is left behind its dropped weight first, so the failing
/// allocation also runs the path that drops kept copies (`Derived::purge`) before it gives up
/// (not observed here: the copy is small). Ignored by default: it fills the GPU, which would
/// fail the tests running beside it; `scripts/gpu-check.sh` runs it alone (`--ignored`).
#[cfg(feature = "cuda")]
#[test]
#[ignore = "fills the GPU: run alone, as scripts/gpu-check.sh does"]
fn cuda_out_of_memory_is_an_error() {
    let Some(b) = common::cuda_backend() else {
        return;
    };
    let mut r = Rng(13);
    let (xs, ws) = ([1, 8, 9, 9], [16, 8, 3, 3]);
    let w = b.upload(&r.vec(16 * 8 * 9), Shape::from(ws)).unwrap();
    let dy = b
        .upload(&r.vec(16 * 81), Shape::new([1, 16, 9, 9]))
        .unwrap();
    let p = Conv2dParams::new(1, 1);
    b.conv2d_backward_data(&dy, &w, &p, &Shape::from(xs))
        .unwrap();
    drop(w);
    let one = b.upload(&[0.5], Shape::new([1, 1, 1])).unwrap();
    let mut held = Vec::new();
    let error = loop {
        match b.resize_bilinear(&one, [32_768, 32_768], ResizeMode::HalfPixel) {
            Ok(t) => held.push(t),
            Err(e) => break e.to_string(),
        }
        assert!(held.len() < 4096, "no allocation failed in 16 TiB");
    };
    println!("after {} maps of 4 GiB: {error}", held.len());
    assert!(error.contains("allocating"), "{error}");
    // The backend works on once the memory is back.
    drop(held);
    let y = b
        .resize_bilinear(&one, [2, 3], ResizeMode::HalfPixel)
        .unwrap();
    assert_eq!(b.download(&y).unwrap(), vec![0.5; 6]);
}

/// The TF32 option really runs the tensor cores on large convolutions: its result differs from
/// the f32 kernels' by TF32's rounding (more than f32 rounding, less than 3e-3 relative L2).
#[cfg(feature = "cuda")]
#[test]
fn cuda_tf32_differs_from_f32_by_its_rounding() {
    let Some(f32b) = common::cuda_backend() else {
        return;
    };
    let tf32 = f32b.clone().with_tf32(true).unwrap();
    let mut r = Rng(12);
    let (xs, ws) = ([3, 37, 75, 75], [130, 37, 3, 3]);
    let x = r.vec(xs.iter().product());
    let w = r.vec(ws.iter().product());
    let p = Conv2dParams::new(1, 1);
    let run = |b: &gradcam::cuda::CudaBackend| {
        let y = b
            .conv2d(
                &b.upload(&x, Shape::from(xs)).unwrap(),
                &b.upload(&w, Shape::from(ws)).unwrap(),
                None,
                &p,
            )
            .unwrap();
        b.download(&y).unwrap()
    };
    let (a, b) = (run(&f32b), run(&tf32));
    let num: f64 = a
        .iter()
        .zip(&b)
        .map(|(u, v)| ((u - v) as f64).powi(2))
        .sum();
    let den: f64 = a.iter().map(|u| (*u as f64).powi(2)).sum();
    let rel = (num / den).sqrt();
    eprintln!("TF32 against f32 on a 130×333×16875 convolution: relative L2 {rel:.2e}");
    assert!(rel > 1e-5 && rel < 3e-3, "relative L2 {rel:.2e}");
}
