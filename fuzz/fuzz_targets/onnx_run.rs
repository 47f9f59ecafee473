//! Any bytes the ONNX loader imports must also run: shape inference at the file's input size
//! (or 12×12, or 1×1), then a CPU forward on a small input, then the default Grad-CAM target's
//! backward — each may fail with an error, never panic.
#![no_main]

use gradcam_core::{Backend, Shape};
use gradcam_runtime::{BackwardSpec, Model, RectifierRule, Stop};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(graph) = gradcam_onnx::from_bytes(data, None) else {
        return;
    };
    // The file's input size, else 12×12, else 1×1 (a classifier of [n, f] features).
    let c = graph.input_channels();
    let sizes = match graph.input_size() {
        Some(hw) => vec![hw],
        None => vec![[12, 12], [1, 1]],
    };
    let Some((shape, shapes)) = sizes.into_iter().find_map(|[h, w]| {
        let shape = Shape::new([1, c, h, w]);
        graph.infer_shapes(&shape).ok().map(|s| (shape, s))
    }) else {
        return;
    };
    // Small graphs only: a fuzzed file may ask for huge (valid) tensors.
    let elements = shapes.iter().try_fold(0usize, |acc, s| {
        let n = s.dims().iter().try_fold(1usize, |p, &d| p.checked_mul(d))?;
        acc.checked_add(n)
    });
    if elements.is_none_or(|n| n > 1 << 22) {
        return;
    }
    let target = graph.default_target().ok();
    let cpu = gradcam_cpu::CpuBackend::new();
    let Ok(model) = Model::new(cpu.clone(), graph) else {
        return;
    };
    let Ok(x) = cpu.upload(&vec![0.25; shape.numel()], shape) else {
        return;
    };
    let out = model.graph().output();
    let Some(t) = target else {
        let _ = model.forward(&x, &Default::default());
        return;
    };
    let spec = BackwardSpec {
        from: out,
        stop: Stop::At(t),
        rule: RectifierRule::default(),
        weight_grads: false,
    };
    let Ok(keep) = model.backward_needs(&spec) else {
        return;
    };
    let Ok(acts) = model.forward(&x, &keep) else {
        return;
    };
    let seed_shape = acts.shapes()[out.0].clone();
    if let Ok(seed) = cpu.upload(&vec![1.0; seed_shape.numel()], seed_shape) {
        let _ = model.backward(&acts, &spec, seed);
    }
});
