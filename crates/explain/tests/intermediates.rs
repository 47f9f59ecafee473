//! `Options::intermediates`: off, an explanation leaves out the target layer's activations and
//! gradients and Grad-CAM's weights and raw map, and its maps are the same bits.

use gradcam_cpu::CpuBackend;
use gradcam_explain::{Classes, Explainer, Method, Options};
use gradcam_runtime::{arch, Model};

#[test]
fn without_intermediates_the_maps_are_unchanged_and_the_rest_is_left_out() {
    let w = arch::random_weights("demo", 4, 9).unwrap();
    let ex =
        Explainer::new(Model::new(CpuBackend::new(), arch::build("demo", &w).unwrap()).unwrap());
    let mut r = gradcam_core::SplitMix64::new(11);
    let data = (0..2 * 3 * 24 * 24).map(|_| r.uniform(-1.0, 1.0)).collect();
    let x = gradcam_core::HostTensor::new([2, 3, 24, 24], data).unwrap();
    let methods = [
        Method::GradCam,
        Method::GuidedGradCam,
        Method::GradCamPlusPlus,
    ];
    let full = Options {
        classes: Classes::Given(vec![1, 3]),
        ..Options::default()
    };
    let lean = Options {
        intermediates: false,
        ..full.clone()
    };
    let (a, b) = (
        ex.explain(&x, &methods, &full).unwrap(),
        ex.explain(&x, &methods, &lean).unwrap(),
    );
    let intermediates = [
        "target_activation",
        "target_gradient",
        "gradcam_weights",
        "gradcam_raw",
        "captum_layer_gradcam",
    ];
    for name in intermediates {
        assert!(a.get(name).is_some(), "{name} with intermediates");
        assert!(b.get(name).is_none(), "{name} without intermediates");
    }
    for name in [
        "logits",
        "gradcam",
        "guided_backprop",
        "guided_gradcam",
        "gradcampp",
    ] {
        assert_eq!(
            a.get(name).unwrap().data,
            b.get(name).unwrap().data,
            "{name} differs"
        );
    }
}
