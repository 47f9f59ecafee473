//! One 3×3 stride-1 convolution per layer shape of ResNet-50 and VGG-16 (batch 1), timed by
//! the three CPU algorithms side by side in one process: the packed GEMM (im2col), Winograd
//! F(2×2, 3×3) and F(4×4, 3×3) — the measurements behind `winograd::choose`. Minimum over
//! interleaved runs, effective GFLOP/s (the direct product's FLOPs over the time). Run:
//! `cargo run --release -p gradcam-cpu --example winograd_variants`.

use gradcam_core::Conv2dParams;
use gradcam_cpu::kernels::{conv, direct, packed, winograd, winograd4};
use std::time::Instant;

fn main() {
    let layers = [
        (64, 56),
        (128, 28),
        (256, 14),
        (512, 7),
        (64, 224),
        (128, 112),
        (256, 56),
        (512, 28),
        (512, 14),
        (64, 14),
        (128, 14),
        (128, 20),
    ];
    let kern = packed::f32_default();
    for (c, s) in layers {
        let x: Vec<f32> = (0..c * s * s)
            .map(|i| ((i * 7919 % 1000) as f32) / 1000.0 - 0.5)
            .collect();
        let w: Vec<f32> = (0..c * c * 9)
            .map(|i| ((i * 104729 % 1000) as f32) / 10000.0 - 0.05)
            .collect();
        let b: Vec<f32> = vec![0.01; c];
        let p = Conv2dParams::new(1, 1);
        let out = p.output_shape([1, c, s, s], [c, c, 3, 3], "x").unwrap();
        let g = conv::ConvGeom::new([1, c, s, s], [c, c, 3, 3], out, p);
        let u2 = winograd::transform_weight(&w, c, c);
        let u4 = winograd4::transform_weight(&w, c, c);
        // On a cache line, as the backend keeps it.
        let wt = gradcam_cpu::HostBuf::new(direct::pack_weight(&w, c, c * 9, kern.unwrap().nr));
        let mut y = vec![0f32; c * s * s];
        let plan = conv::Plan::<f32>::fast();
        let mut best = [f64::MAX; 4];
        let im2col = conv::Plan::<f32> {
            direct: false,
            ..plan
        };
        let reps = if s >= 112 { 4 } else { 20 };
        for _ in 0..reps {
            for (v, best) in best.iter_mut().enumerate() {
                let t = Instant::now();
                match v {
                    0 => conv::forward_clamped(im2col, &x, &w, Some(&b), None, &g, &mut y),
                    3 => direct::forward(kern.unwrap(), &x, &wt, Some(&b), None, None, &g, &mut y),
                    1 => winograd::forward(kern, &x, &u2, Some(&b), None, &g, &mut y),
                    2 => winograd4::forward(kern, &x, &u4, Some(&b), None, &g, &mut y),
                    _ => unreachable!(),
                }
                *best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let flops = 2.0 * (c * c * 9 * s * s) as f64;
        println!(
            "{c:>4}ch {s:>3}: gemm {:.3} ms ({:.0} GF/s)  F2 {:.3} ms ({:.0})  F4 {:.3} ms ({:.0})  direct {:.3} ms ({:.0})",
            best[0],
            flops / best[0] / 1e6,
            best[1],
            flops / best[1] / 1e6,
            best[2],
            flops / best[2] / 1e6,
            best[3],
            flops / best[3] / 1e6
        );
    }
}
