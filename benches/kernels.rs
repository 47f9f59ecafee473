//! Per-kernel throughput at ResNet-50 and MobileNetV2 layer sizes, on every backend present
//! (criterion reports FLOP/s as "elements" per second for the convolutions and GEMMs).

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gradcam::core::{Conv2dParams, Rectifier, ResizeMode};
use gradcam::{Backend, CpuBackend, Shape, Tensor};

fn upload<B: Backend>(b: &B, dims: &[usize], seed: u64) -> Tensor<B> {
    let s = Shape::from(dims);
    b.upload(&common::random(s.numel(), seed, 1.0), s).unwrap()
}

/// Waits for the device: each timed iteration ends by copying one element of its result out
/// (a one-element slice, then a download), which waits for the kernels before it.
fn sync<B: Backend>(b: &B, t: &Tensor<B>) {
    let first = b
        .slice_channels(&t.reshape([1, t.numel(), 1, 1]).unwrap(), 0, 1)
        .unwrap();
    let _ = b.download(&first).unwrap();
}

fn kernels<B: Backend>(c: &mut Criterion, b: &B) {
    let name = b.name();
    let mut g = c.benchmark_group(format!("kernels/{name}"));
    g.sample_size(10);
    // (label, input, weight, params): ResNet-50 layer3 3×3 and 1×1, MobileNetV2 depthwise.
    let convs = [
        (
            "conv3x3 256ch 14x14",
            [1, 256, 14, 14],
            [256, 256, 3, 3],
            Conv2dParams::new(1, 1),
        ),
        (
            "conv1x1 1024->256 14x14",
            [1, 1024, 14, 14],
            [256, 1024, 1, 1],
            Conv2dParams::new(1, 0),
        ),
        (
            "depthwise3x3 144ch 56x56",
            [1, 144, 56, 56],
            [144, 1, 3, 3],
            Conv2dParams::new(1, 1).with_groups(144),
        ),
    ];
    // On a GPU, also ResNet-50's 3×3 and 1×1 layers at batch 32 (what scripts/conv_cudnn.py
    // times with cuDNN, and scripts/gpu-sweep.sh under forced plans).
    let batched = [
        (
            "conv3x3 64ch 56x56 b32",
            [32, 64, 56, 56],
            [64, 64, 3, 3],
            1,
        ),
        (
            "conv3x3 128ch 28x28 b32",
            [32, 128, 28, 28],
            [128, 128, 3, 3],
            1,
        ),
        (
            "conv3x3 256ch 14x14 b32",
            [32, 256, 14, 14],
            [256, 256, 3, 3],
            1,
        ),
        (
            "conv3x3 512ch 7x7 b32",
            [32, 512, 7, 7],
            [512, 512, 3, 3],
            1,
        ),
        (
            "conv1x1 1024->256 14x14 b32",
            [32, 1024, 14, 14],
            [256, 1024, 1, 1],
            0,
        ),
        // Layer 4's 1×1 convolutions: few columns (7×7), where the plan splits the depth of one
        // direction of each (2048→512 forward, 512→2048 backward-data).
        (
            "conv1x1 2048->512 7x7 b32",
            [32, 2048, 7, 7],
            [512, 2048, 1, 1],
            0,
        ),
        (
            "conv1x1 512->2048 7x7 b32",
            [32, 512, 7, 7],
            [2048, 512, 1, 1],
            0,
        ),
    ];
    let gpu = !name.starts_with("cpu");
    let convs = convs.into_iter().chain(
        batched
            .into_iter()
            .filter(|_| gpu)
            .map(|(l, x, w, pad)| (l, x, w, Conv2dParams::new(1, pad))),
    );
    for (label, xs, ws, p) in convs {
        let (x, w) = (upload(b, &xs, 1), upload(b, &ws, 2));
        let out = p.output_shape(xs, ws, label).unwrap();
        let flops = 2 * out.iter().product::<usize>() * ws[1] * ws[2] * ws[3];
        g.throughput(Throughput::Elements(flops as u64));
        g.bench_function(format!("{label} forward"), |it| {
            it.iter(|| sync(b, &b.conv2d(&x, &w, None, &p).unwrap()))
        });
        if gpu && label.contains("b32") {
            // The rectifier fused into the convolution's epilogue (the forward pass's path).
            g.bench_function(format!("{label} forward+relu"), |it| {
                it.iter(|| {
                    let y = b.conv2d_rectified(&x, &w, None, &p, Rectifier::RELU);
                    sync(b, &y.unwrap())
                })
            });
        }
        let dy = upload(b, &out, 3);
        let s = Shape::from(xs);
        g.bench_function(format!("{label} backward-data"), |it| {
            it.iter(|| sync(b, &b.conv2d_backward_data(&dy, &w, &p, &s).unwrap()))
        });
    }
    let (x, w) = (upload(b, &[16, 2048], 4), upload(b, &[1000, 2048], 5));
    g.throughput(Throughput::Elements(2 * 16 * 2048 * 1000));
    g.bench_function("gemm 16x2048x1000", |it| {
        it.iter(|| sync(b, &b.linear(&x, &w, None).unwrap()))
    });
    let a = upload(b, &[16, 2048, 7, 7], 6);
    g.throughput(Throughput::Elements(a.numel() as u64));
    g.bench_function("gradient GAP 16x2048x7x7", |it| {
        it.iter(|| sync(b, &b.gradient_gap(&a).unwrap()))
    });
    let (raw, gb) = (upload(b, &[16, 7, 7], 7), upload(b, &[16, 3, 224, 224], 8));
    g.throughput(Throughput::Elements(gb.numel() as u64));
    g.bench_function("resize 7->224 + fusion, 16 images", |it| {
        it.iter(|| {
            let up = b
                .resize_bilinear(&raw, [224, 224], ResizeMode::HalfPixel)
                .unwrap();
            sync(b, &b.heatmap_fusion(&gb, &up).unwrap())
        })
    });
    // Grad-CAM's post-processing and Guided Grad-CAM's product: two ops, or one fused call.
    for n in [1, 32] {
        let (raw, gb) = (upload(b, &[n, 7, 7], 9), upload(b, &[n, 3, 224, 224], 10));
        g.throughput(Throughput::Elements(gb.numel() as u64));
        g.bench_function(
            format!("cam 7->224, then guided product, {n} images"),
            |it| {
                it.iter(|| {
                    let map = b.cam_postprocess_fused(&raw, [224, 224]).unwrap();
                    sync(b, &b.heatmap_fusion(&gb, &map).unwrap())
                })
            },
        );
        g.bench_function(
            format!("cam 7->224 with guided product, {n} images"),
            |it| it.iter(|| sync(b, &b.guided_gradcam_fused(&raw, &gb).unwrap().1)),
        );
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    kernels(c, &CpuBackend::new());
    #[cfg(feature = "wgpu")]
    match gradcam::wgpu::WgpuBackend::new() {
        Ok(b) => kernels(c, &b),
        Err(e) => eprintln!("notice: no wgpu adapter, wgpu kernels not measured: {e}"),
    }
    #[cfg(feature = "cuda")]
    match gradcam::cuda::CudaBackend::new() {
        Ok(b) => {
            kernels(c, &b);
            kernels(c, &b.with_tf32(true).unwrap());
        }
        Err(e) => eprintln!("notice: no CUDA device, CUDA kernels not measured: {e}"),
    }
}

criterion_group!(benches, all);
criterion_main!(benches);
