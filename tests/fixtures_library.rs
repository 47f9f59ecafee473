//! Every reference case through the library: every tensor of `reference.safetensors` matched
//! within the fixtures' tolerances.

mod common;

use common::{load_case, CASES};
use gradcam::{Backend, CpuBackend};

fn run_case(name: &str) {
    run_on(CpuBackend::new(), name, true);
}

/// Runs every method of case `name` on `backend` and compares with the reference; without
/// `perturbation`, ScoreCAM and occlusion (hundreds of forward passes) are left out.
pub fn run_on<B: Backend>(backend: B, name: &str, perturbation: bool) {
    let case = load_case(name);
    common::run_with(
        backend,
        name,
        case.graph(),
        case.target_layer(),
        perturbation,
    );
}

/// Explains mini_resnet six times on `backend`; `counters` gives (device allocations so far,
/// pooled bytes): allocations must not grow after the first explanation, and the pool must hold
/// buffers.
#[allow(dead_code)]
fn allocates_nothing_once_warm<B: Backend + Clone>(backend: B, counters: impl Fn() -> (u64, u64)) {
    use gradcam::{Classes, Explainer, Method, Model, Options};
    let case = load_case("mini_resnet");
    let ex =
        Explainer::new(Model::new(backend, case.graph().fold_batch_norm(&[]).unwrap()).unwrap());
    let opts = Options {
        classes: Classes::Given(case.targets.clone()),
        ..Options::default()
    };
    let methods = [Method::GradCam, Method::GuidedGradCam];
    let input = &case.reference["input"];
    ex.explain(input, &methods, &opts).unwrap();
    let warm = counters().0;
    for _ in 0..5 {
        ex.explain(input, &methods, &opts).unwrap();
    }
    let (after, pooled) = counters();
    assert_eq!(after, warm, "device memory allocated after warm-up");
    assert!(pooled > 0);
}

#[test]
fn tiny_cam() {
    run_case("tiny_cam");
}

#[test]
fn vgg_like() {
    run_case("vgg_like");
}

#[test]
fn mini_resnet() {
    run_case("mini_resnet");
}

#[test]
fn squeezenet1_1() {
    run_case("squeezenet1_1");
}

#[test]
fn mobilenet_v2_035() {
    run_case("mobilenet_v2_035");
}

/// The same cases on the CUDA backend (skipped with a notice where no device exists, a failure
/// where `GRADCAM_REQUIRE_CUDA=1`).
#[cfg(feature = "cuda")]
mod cuda {
    use super::common::cuda_backend as backend;

    /// Explaining image after image reuses the pooled device memory: once warm, no new allocation.
    #[test]
    fn repeated_explanations_allocate_nothing_new() {
        if let Some(b) = backend() {
            super::allocates_nothing_once_warm(b.clone(), || {
                (b.allocations() as u64, b.pooled_bytes() as u64)
            });
        }
    }

    #[test]
    fn every_case_on_cuda() {
        if let Some(b) = backend() {
            for case in super::CASES {
                let t = std::time::Instant::now();
                super::run_on(b.clone(), case, true);
                eprintln!("{case} on cuda: {:.2} s", t.elapsed().as_secs_f64());
            }
        }
    }
}

/// The same cases on the WebGPU backend (skipped with a notice where no adapter exists, a
/// failure where `GRADCAM_REQUIRE_WGPU=1`).
#[cfg(feature = "wgpu")]
mod wgpu {
    use super::common::wgpu_backend as backend;

    /// Explaining image after image reuses the pooled buffers: once warm, no new allocation.
    #[test]
    fn repeated_explanations_allocate_nothing_new() {
        if let Some(b) = backend() {
            super::allocates_nothing_once_warm(b.clone(), || {
                (b.allocations() as u64, b.pooled_bytes())
            });
        }
    }

    #[test]
    fn every_case_on_wgpu() {
        if let Some(b) = backend() {
            // llvmpipe runs shaders on the CPU: ScoreCAM's and occlusion's hundreds of forward
            // passes (whose primitives tests/backends.rs checks one by one) run on the two
            // small cases only.
            for case in super::CASES {
                let t = std::time::Instant::now();
                let small = matches!(case, "tiny_cam" | "vgg_like");
                super::run_on(b.clone(), case, small);
                eprintln!("{case} on wgpu: {:.1} s", t.elapsed().as_secs_f64());
            }
        }
    }
}
