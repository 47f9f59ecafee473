//! ResNet-50's 1×1 stride-1 convolutions (batch 1), forward and backward-data, timed one by
//! one: minimum over runs, GFLOP/s. Run:
//! `cargo run --release -p gradcam-cpu --example pointwise_variants`.

use gradcam_core::Conv2dParams;
use gradcam_cpu::kernels::conv;
use std::time::Instant;

fn main() {
    let layers = [
        (64, 64, 56),
        (64, 256, 56),
        (256, 64, 56),
        (256, 128, 56),
        (128, 512, 28),
        (512, 128, 28),
        (512, 256, 28),
        (256, 1024, 14),
        (1024, 256, 14),
        (1024, 512, 14),
        (512, 2048, 7),
        (2048, 512, 7),
    ];
    let plan = conv::Plan::<f32>::fast();
    let (mut tf, mut tb, mut fl) = (0.0, 0.0, 0.0);
    for (c, k, s) in layers {
        let x: Vec<f32> = (0..c * s * s)
            .map(|i| ((i * 7919 % 1000) as f32) / 1000.0 - 0.5)
            .collect();
        let w: Vec<f32> = (0..k * c)
            .map(|i| ((i * 104729 % 1000) as f32) / 10000.0 - 0.05)
            .collect();
        let b: Vec<f32> = vec![0.01; k];
        let p = Conv2dParams::new(1, 0);
        let out = p.output_shape([1, c, s, s], [k, c, 1, 1], "x").unwrap();
        let g = conv::ConvGeom::new([1, c, s, s], [k, c, 1, 1], out, p);
        let prepared = conv::prepare_backward(plan, &w, &g);
        let mut y = vec![0f32; k * s * s];
        let mut dx = vec![0f32; c * s * s];
        let (mut bf, mut bb) = (f64::MAX, f64::MAX);
        for _ in 0..30 {
            let t = Instant::now();
            conv::forward_clamped(plan, &x, &w, Some(&b), Some((0.0, f32::MAX)), &g, &mut y);
            bf = bf.min(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            conv::backward_data(plan, &y, &prepared, &g, None, &mut dx);
            bb = bb.min(t.elapsed().as_secs_f64() * 1e3);
        }
        let flops = 2.0 * (c * k * s * s) as f64;
        println!(
            "{c:5} -> {k:5} at {s:3}: forward {bf:.3} ms ({:.0} GF/s)  backward-data {bb:.3} ms ({:.0})",
            flops / bf / 1e6,
            flops / bb / 1e6
        );
        tf += bf;
        tb += bb;
        fl += flops;
    }
    println!(
        "all: forward {tf:.3} ms ({:.0} GF/s), backward-data {tb:.3} ms ({:.0})",
        fl / tf / 1e6,
        fl / tb / 1e6
    );
}
