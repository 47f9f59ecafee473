//! End to end: Grad-CAM and Guided Grad-CAM on ResNet-50 (seeded random weights, 224×224),
//! batch 1 and 16, on every backend present. On a software adapter (llvmpipe) only batch 1 runs.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gradcam::core::HostTensor;
use gradcam::{Backend, Classes, CpuBackend, Explainer, Method, Model, Options};

fn end_to_end<B: Backend>(c: &mut Criterion, b: B, batches: &[usize]) {
    let name = b.name();
    let explainer =
        Explainer::new(Model::new(b, common::resnet50().fold_batch_norm(&[]).unwrap()).unwrap());
    let mut g = c.benchmark_group(format!("resnet50/{name}"));
    g.sample_size(10);
    for &n in batches {
        let input =
            HostTensor::new([n, 3, 224, 224], common::random(n * 3 * 224 * 224, 42, 1.0)).unwrap();
        let opts = Options {
            classes: Classes::Given(vec![1]),
            ..Options::default()
        };
        g.throughput(Throughput::Elements(n as u64));
        for (label, methods) in [
            ("gradcam", vec![Method::GradCam]),
            ("guided-gradcam", vec![Method::GuidedGradCam]),
        ] {
            g.bench_function(format!("{label} batch {n}"), |it| {
                it.iter(|| explainer.explain(&input, &methods, &opts).unwrap())
            });
        }
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    end_to_end(c, CpuBackend::new(), &[1, 16]);
    #[cfg(feature = "wgpu")]
    match gradcam::wgpu::WgpuBackend::new() {
        Ok(b) if b.is_software() => end_to_end(c, b, &[1]),
        Ok(b) => end_to_end(c, b, &[1, 16]),
        Err(e) => eprintln!("notice: no wgpu adapter, wgpu not measured: {e}"),
    }
    #[cfg(feature = "cuda")]
    match gradcam::cuda::CudaBackend::new() {
        Ok(b) => end_to_end(c, b, &[1, 16]),
        Err(e) => eprintln!("notice: no CUDA device, CUDA not measured: {e}"),
    }
}

criterion_group!(benches, all);
criterion_main!(benches);
