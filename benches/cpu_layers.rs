//! The CPU backend's convolutions at every distinct layer shape of ResNet-50 and VGG-16
//! (batch 1, 224×224), forward and backward-data; 3×3 stride-1 layers also forward on the
//! `cpu-winograd` backend (Winograd forward convolutions). Throughput is in FLOP ("elements") per
//! second, so criterion's `Gelem/s` reads as GFLOP/s. Then the layers bound by memory or by
//! their data rather than by arithmetic: VGG-16's fc6 at batch 1 (throughput in weight bytes
//! read) and the max pools of ResNet-50 (3×3, stride 2) and VGG-16 (2×2) on random values, forward
//! and backward, and backward through the ReLU before them as the networks run it (in input
//! elements). Run:
//! `cargo bench --bench cpu_layers -- [filter]`; `GRADCAM_CPU_KERNEL=avx2|portable` times the
//! other micro-kernels.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gradcam::core::{Conv2dParams, GradMode, Pool2dParams, Rectifier};
use gradcam::{Backend, CpuBackend, Shape};

/// (label, input channels, output channels, kernel, stride, input side).
const LAYERS: &[(&str, usize, usize, usize, usize, usize)] = &[
    ("resnet50 stem 7x7/2", 3, 64, 7, 2, 224),
    ("resnet50 l1 1x1 64->64", 64, 64, 1, 1, 56),
    ("resnet50 l1 3x3 64", 64, 64, 3, 1, 56),
    ("resnet50 l1 1x1 64->256", 64, 256, 1, 1, 56),
    ("resnet50 l1 1x1 256->64", 256, 64, 1, 1, 56),
    ("resnet50 l2 1x1 256->128", 256, 128, 1, 1, 56),
    ("resnet50 l2 3x3/2 128", 128, 128, 3, 2, 56),
    ("resnet50 l2 1x1/2 256->512", 256, 512, 1, 2, 56),
    ("resnet50 l2 3x3 128", 128, 128, 3, 1, 28),
    ("resnet50 l2 1x1 128->512", 128, 512, 1, 1, 28),
    ("resnet50 l2 1x1 512->128", 512, 128, 1, 1, 28),
    ("resnet50 l3 3x3/2 256", 256, 256, 3, 2, 28),
    ("resnet50 l3 1x1/2 512->1024", 512, 1024, 1, 2, 28),
    ("resnet50 l3 3x3 256", 256, 256, 3, 1, 14),
    ("resnet50 l3 1x1 256->1024", 256, 1024, 1, 1, 14),
    ("resnet50 l3 1x1 1024->256", 1024, 256, 1, 1, 14),
    ("resnet50 l4 3x3/2 512", 512, 512, 3, 2, 14),
    ("resnet50 l4 1x1/2 1024->2048", 1024, 2048, 1, 2, 14),
    ("resnet50 l4 3x3 512", 512, 512, 3, 1, 7),
    ("resnet50 l4 1x1 512->2048", 512, 2048, 1, 1, 7),
    ("resnet50 l4 1x1 2048->512", 2048, 512, 1, 1, 7),
    ("vgg16 3x3 3->64 224", 3, 64, 3, 1, 224),
    ("vgg16 3x3 64 224", 64, 64, 3, 1, 224),
    ("vgg16 3x3 128 112", 128, 128, 3, 1, 112),
    ("vgg16 3x3 256 56", 256, 256, 3, 1, 56),
    ("vgg16 3x3 512 28", 512, 512, 3, 1, 28),
    ("vgg16 3x3 512 14", 512, 512, 3, 1, 14),
];

fn layers(c: &mut Criterion) {
    let b = CpuBackend::new();
    let wb = CpuBackend::new().with_winograd_forward(true);
    let mut g = c.benchmark_group("cpu_layers");
    g.sample_size(10);
    for &(label, ci, co, k, stride, side) in LAYERS {
        let xs = [1, ci, side, side];
        let ws = [co, ci, k, k];
        let p = Conv2dParams::new(stride, k / 2);
        let x = b
            .upload(&common::random(ci * side * side, 1, 1.0), Shape::from(xs))
            .unwrap();
        let w = b
            .upload(&common::random(co * ci * k * k, 2, 0.1), Shape::from(ws))
            .unwrap();
        let bias = b
            .upload(&common::random(co, 3, 0.1), Shape::from([co]))
            .unwrap();
        let out = p.output_shape(xs, ws, label).unwrap();
        let dy = b
            .upload(
                &common::random(out.iter().product(), 4, 1.0),
                Shape::from(out),
            )
            .unwrap();
        let flops = 2 * out.iter().product::<usize>() * ci * k * k;
        g.throughput(Throughput::Elements(flops as u64));
        g.bench_function(format!("{label} forward"), |it| {
            it.iter(|| b.conv2d(&x, &w, Some(&bias), &p).unwrap())
        });
        if k == 3 && stride == 1 {
            // The same tensors on the backend with Winograd forward convolutions.
            g.bench_function(format!("{label} forward (cpu-winograd)"), |it| {
                it.iter(|| wb.conv2d(&x, &w, Some(&bias), &p).unwrap())
            });
        }
        let s = Shape::from(xs);
        g.bench_function(format!("{label} backward-data"), |it| {
            it.iter(|| b.conv2d_backward_data(&dy, &w, &p, &s).unwrap())
        });
    }
    g.finish();
    memory_bound(c, &b);
}

/// VGG-16's fc6 (a 411 MB weight read once per call) and ResNet-50's max pool backward, whose
/// window maxima fall where random data puts them (a scan with a branch per tap paid for its
/// mispredictions: docs/PERFORMANCE.md).
fn memory_bound(c: &mut Criterion, b: &CpuBackend) {
    let mut g = c.benchmark_group("cpu_memory_bound");
    g.sample_size(10);
    let (i, o) = (25088, 4096);
    let up = |dims: &[usize], seed, scale| {
        let s = Shape::from(dims);
        b.upload(&common::random(s.numel(), seed, scale), s)
            .unwrap()
    };
    let (x, w, dy) = (
        up(&[1, i], 5, 1.0),
        up(&[o, i], 6, 0.01),
        up(&[1, o], 7, 1.0),
    );
    g.throughput(Throughput::Bytes((4 * i * o) as u64));
    g.bench_function("vgg16 fc6 linear forward", |it| {
        it.iter(|| b.linear(&x, &w, None).unwrap())
    });
    g.bench_function("vgg16 fc6 linear backward-data", |it| {
        it.iter(|| b.linear_backward_data(&dy, &w).unwrap())
    });
    // ResNet-50's pool (3×3, stride 2, padding 1) and VGG-16's first (2×2, stride 2).
    let pools = [
        ("resnet50 max pool", Pool2dParams::new(3, 2, 1), 112),
        ("vgg16 max pool 2x2", Pool2dParams::new(2, 2, 0), 224),
    ];
    for (seed, (label, p, side)) in (8..).step_by(2).zip(pools) {
        let x = up(&[1, 64, side, side], seed, 1.0);
        let dy = up(&[1, 64, side / 2, side / 2], seed + 1, 1.0);
        g.throughput(Throughput::Elements(x.numel() as u64));
        g.bench_function(format!("{label} backward"), |it| {
            it.iter(|| b.max_pool2d_backward(&x, &dy, &p).unwrap())
        });
        g.bench_function(format!("{label} forward"), |it| {
            it.iter(|| b.max_pool2d(&x, &p).unwrap())
        });
        // A guided pass's pool and the ReLU before it, as one op (the pool reads the ReLU's
        // output).
        let (r, guided) = (Rectifier::RELU, GradMode::Guided);
        let xr = b.rectifier(&x, r).unwrap();
        g.bench_function(format!("{label} backward through its relu"), |it| {
            it.iter(|| {
                b.max_pool2d_backward_rectified(&xr, &dy, &p, r, guided)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, layers);
criterion_main!(benches);
