//! The strided convolutions of ResNet-50 (batch 1) by the two CPU algorithms that take them,
//! side by side in one process: im2col packed into the GEMM, and the direct convolution
//! (positions gathered from the padded image). Minimum over interleaved runs, GFLOP/s. Run:
//! `cargo run --release -p gradcam-cpu --example strided_variants`.

use gradcam_core::Conv2dParams;
use gradcam_cpu::kernels::{conv, direct, packed};
use std::time::Instant;

fn main() {
    // (channels, filters, input size, kernel, stride, padding)
    let layers = [
        (3, 64, 224, 7, 2, 3),
        (3, 64, 224, 3, 1, 1),
        (3, 64, 224, 11, 4, 2),
        (64, 192, 27, 5, 1, 2),
        (128, 128, 56, 3, 2, 1),
        (256, 256, 28, 3, 2, 1),
        (512, 512, 14, 3, 2, 1),
        (256, 512, 56, 1, 2, 0),
        (512, 1024, 28, 1, 2, 0),
        (1024, 2048, 14, 1, 2, 0),
        (1024, 256, 14, 1, 1, 0),
        (256, 1024, 14, 1, 1, 0),
        (2048, 512, 7, 1, 1, 0),
        (512, 2048, 7, 1, 1, 0),
        (256, 64, 56, 1, 1, 0),
        (64, 256, 56, 1, 1, 0),
    ];
    let kern = packed::f32_default().expect("a micro-kernel");
    for (c, k, s, ks, stride, pad) in layers {
        let x: Vec<f32> = (0..c * s * s)
            .map(|i| ((i * 7919 % 1000) as f32) / 1000.0 - 0.5)
            .collect();
        let w: Vec<f32> = (0..k * c * ks * ks)
            .map(|i| ((i * 104729 % 1000) as f32) / 10000.0 - 0.05)
            .collect();
        let b: Vec<f32> = vec![0.01; k];
        let p = Conv2dParams::new(stride, pad);
        let out = p.output_shape([1, c, s, s], [k, c, ks, ks], "x").unwrap();
        let g = conv::ConvGeom::new([1, c, s, s], [k, c, ks, ks], out, p);
        // On a cache line, as the backend keeps it.
        let wt = gradcam_cpu::HostBuf::new(direct::pack_weight(&w, k, c * ks * ks, kern.nr));
        let mut y = vec![0f32; out.iter().product()];
        let im2col = conv::Plan::<f32> {
            direct: false,
            ..conv::Plan::fast()
        };
        let mut best = [f64::MAX; 2];
        for _ in 0..20 {
            for (v, best) in best.iter_mut().enumerate() {
                let t = Instant::now();
                match v {
                    0 => conv::forward_clamped(im2col, &x, &w, Some(&b), None, &g, &mut y),
                    _ => direct::forward(kern, &x, &wt, Some(&b), None, None, &g, &mut y),
                }
                *best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let flops = 2.0 * (k * c * ks * ks * out[2] * out[3]) as f64;
        println!(
            "{c:>4}→{k:<4} {ks}×{ks}/{stride} at {s:>3}: gemm {:.3} ms ({:.0} GF/s)  direct {:.3} ms ({:.0})",
            best[0],
            flops / best[0] / 1e6,
            best[1],
            flops / best[1] / 1e6
        );
    }
}
