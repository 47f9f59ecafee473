//! Bad input gets a clear error, never a panic or a wrong answer.

mod common;

use gradcam::core::{Conv2dParams, HostTensor};
use gradcam::{
    arch, Classes, CpuBackend, Error, Explainer, GraphBuilder, Method, Model, Options, Weights,
};
use std::collections::BTreeMap;

fn resnet_weights() -> Weights {
    Weights::open(common::load_case("mini_resnet").weights_path()).unwrap()
}

fn explainer(case: &str) -> (Explainer<CpuBackend>, HostTensor) {
    let c = common::load_case(case);
    let input = c.reference["input"].clone();
    (
        Explainer::new(Model::new(CpuBackend::new(), c.graph()).unwrap()),
        input,
    )
}

fn err_of<T>(r: gradcam::Result<T>) -> Error {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gradcam-errors-{}-{name}", std::process::id()))
}

#[test]
fn missing_weights_file() {
    let e = err_of(Weights::open("/nonexistent/weights.safetensors"));
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(
        e.to_string().contains("/nonexistent/weights.safetensors"),
        "{e}"
    );
}

#[test]
fn truncated_and_corrupted_weights_files() {
    let bytes = std::fs::read(common::load_case("mini_resnet").weights_path()).unwrap();
    for (name, data) in [
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("header-only", bytes[..20].to_vec()),
        ("empty", vec![]),
        ("garbage", b"this is not a safetensors file at all".to_vec()),
        ("huge-header", {
            let mut v = u64::MAX.to_le_bytes().to_vec();
            v.extend(b"{}");
            v
        }),
        ("bad-json", {
            let mut v = bytes.clone();
            v[8] = b'#';
            v
        }),
    ] {
        let p = tmp(name);
        std::fs::write(&p, &data).unwrap();
        let e = err_of(Weights::open(&p));
        assert!(matches!(e, Error::Model(_)), "{name}: {e}");
        assert!(
            e.to_string().contains("not a valid safetensors file"),
            "{name}: {e}"
        );
        std::fs::remove_file(&p).unwrap();
    }
}

fn with(w: &Weights, name: &str, t: Option<HostTensor>) -> Weights {
    let mut map: BTreeMap<String, HostTensor> = w
        .names()
        .map(|n| (n.to_string(), w.get(n).unwrap()))
        .collect();
    match t {
        Some(t) => map.insert(name.to_string(), t),
        None => map.remove(name),
    };
    Weights::from_map(map, "edited")
}

#[test]
fn missing_or_misshapen_tensor() {
    let w = resnet_weights();
    let e = err_of(arch::build(
        "resnet",
        &with(&w, "layer2.0.bn1.running_var", None),
    ));
    assert!(
        e.to_string()
            .contains("`layer2.0.bn1.running_var` is missing"),
        "{e}"
    );
    let e = err_of(arch::build(
        "resnet",
        &with(&w, "fc.weight", Some(HostTensor::zeros([10, 100]))),
    ));
    assert!(e.to_string().contains("fc"), "{e}");
    let e = err_of(arch::build(
        "resnet",
        &with(
            &w,
            "layer3.1.conv1.weight",
            Some(HostTensor::zeros([64, 60, 3, 3])),
        ),
    ));
    assert!(e.to_string().contains("layer3.1.conv1"), "{e}");
    let e = err_of(arch::build(
        "resnet",
        &with(&w, "bn1.weight", Some(HostTensor::zeros([3]))),
    ));
    assert!(e.to_string().contains("bn1"), "{e}");
    // A named variant checks the block layout it reads from the weights (mini_resnet has
    // resnet18's layout at other widths).
    assert!(arch::build("resnet18", &w).is_ok());
    let e = err_of(arch::build("resnet34", &w));
    assert!(e.to_string().contains("BasicBlock"), "{e}");
    let e = err_of(arch::build("resnet50", &w));
    assert!(e.to_string().contains("Bottleneck"), "{e}");
}

#[test]
fn non_finite_weights() {
    let w = resnet_weights();
    let mut t = w.get("fc.bias").unwrap();
    t.data[3] = f32::NAN;
    let mut map = BTreeMap::new();
    map.insert("fc.bias".to_string(), t);
    let bytes = {
        use safetensors::tensor::{serialize, TensorView};
        let raw = map["fc.bias"].to_le_bytes();
        serialize(
            [(
                "fc.bias",
                TensorView::new(safetensors::Dtype::F32, vec![10], &raw).unwrap(),
            )],
            None,
        )
        .unwrap()
    };
    let e = err_of(Weights::from_bytes(&bytes, "nan.safetensors"));
    assert!(e.to_string().contains("non-finite"), "{e}");
}

#[test]
fn squeezenet_version_mismatch() {
    let w = Weights::open(common::load_case("squeezenet1_1").weights_path()).unwrap();
    assert!(arch::build("squeezenet1_1", &w).is_ok());
    let e = err_of(arch::build("squeezenet1_0", &w));
    assert!(e.to_string().contains("3×3 kernel"), "{e}");
}

#[test]
fn unknown_architecture() {
    let e = err_of(arch::build("resnet51", &resnet_weights()));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert!(
        e.to_string().contains("resnet50"),
        "the message lists known architectures: {e}"
    );
}

#[test]
fn layer_not_found_lists_candidates() {
    let (ex, input) = explainer("mini_resnet");
    let opts = Options {
        layer: Some("layer9.1".into()),
        ..Options::default()
    };
    let e = err_of(ex.explain(&input, &[Method::GradCam], &opts));
    match &e {
        Error::LayerNotFound { name, candidates } => {
            assert_eq!(name, "layer9.1");
            assert!(candidates.iter().any(|c| c == "layer4.1"));
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("layer4.1"), "{e}");
}

#[test]
fn class_out_of_range() {
    let (ex, input) = explainer("mini_resnet");
    let opts = Options {
        classes: Classes::Given(vec![3, 10]),
        ..Options::default()
    };
    let e = err_of(ex.explain(&input, &[Method::GradCam], &opts));
    assert!(
        matches!(
            e,
            Error::ClassOutOfRange {
                class: 10,
                classes: 10
            }
        ),
        "{e}"
    );
    let opts = Options {
        classes: Classes::Given(vec![1, 2, 3]),
        ..Options::default()
    };
    let e = err_of(ex.explain(&input, &[Method::GradCam], &opts));
    assert!(
        e.to_string().contains("3 classes given for 2 input rows"),
        "{e}"
    );
    let opts = Options {
        classes: Classes::TopK(11),
        ..Options::default()
    };
    assert!(ex.explain(&input, &[Method::GradCam], &opts).is_err());
}

#[test]
fn nan_or_inf_in_input() {
    let (ex, input) = explainer("tiny_cam");
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = input.clone();
        x.data[77] = bad;
        let e = err_of(ex.explain(&x, &[Method::GradCam], &Options::default()));
        assert!(matches!(e, Error::NonFinite { index: 77, .. }), "{e}");
    }
}

#[test]
fn input_of_wrong_rank_channels_or_size() {
    let (ex, _) = explainer("vgg_like");
    let m = [Method::GradCam];
    let o = Options::default();
    let e = err_of(ex.explain(&HostTensor::zeros([3, 32, 32]), &m, &o));
    assert!(matches!(e, Error::Input(_)), "{e}");
    let e = err_of(ex.explain(&HostTensor::zeros([1, 4, 32, 32]), &m, &o));
    assert!(e.to_string().contains("3 input channels"), "{e}");
    let e = err_of(ex.explain(&HostTensor::zeros([0, 3, 32, 32]), &m, &o));
    assert!(e.to_string().contains("empty"), "{e}");
    // vgg_like's classifier takes 16×8×8 features: a 36×36 input gives 16×9×9.
    let e = err_of(ex.explain(&HostTensor::zeros([1, 3, 36, 36]), &m, &o));
    assert!(e.to_string().contains("classifier.0"), "{e}");
    // Too small for squeezenet's unpadded 3×3 stem.
    let (ex, _) = explainer("squeezenet1_1");
    let e = err_of(ex.explain(&HostTensor::zeros([1, 3, 2, 2]), &m, &o));
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}

#[test]
fn unknown_method_name() {
    let e = err_of(Method::parse("gradkam"));
    assert!(e.to_string().contains("gradcam++"), "{e}");
}

/// A class whose evidence is all negative gives an all-zero map, never NaN.
#[test]
fn all_negative_evidence_gives_zero_maps() {
    // conv (identity on one channel) → ReLU → GAP → fc with a negative weight for class 1.
    let mut b = GraphBuilder::new(1);
    let x = b.input();
    let c = b
        .conv2d(
            "conv",
            x,
            HostTensor::new([1, 1, 1, 1], vec![1.0]).unwrap(),
            None,
            Conv2dParams::default(),
        )
        .unwrap();
    let r = b.relu("relu", c).unwrap();
    let p = b.global_avg_pool("pool", r).unwrap();
    let f = b.flatten("flatten", p).unwrap();
    let y = b
        .linear(
            "fc",
            f,
            HostTensor::new([2, 1], vec![1.0, -1.0]).unwrap(),
            None,
        )
        .unwrap();
    let ex = Explainer::new(Model::new(CpuBackend::new(), b.build(y).unwrap()).unwrap());
    let input = HostTensor::new(
        [1, 1, 3, 3],
        vec![0.5, 1.0, 2.0, 0.1, 0.2, 0.3, 3.0, 1.0, 0.7],
    )
    .unwrap();
    let opts = Options {
        classes: Classes::Given(vec![1]),
        ..Options::default()
    };
    let methods = [
        Method::GradCam,
        Method::GuidedGradCam,
        Method::GradCamPlusPlus,
        Method::LayerCam,
        Method::Cam,
    ];
    let out = ex.explain(&input, &methods, &opts).unwrap();
    for name in [
        "gradcam_raw",
        "gradcam",
        "guided_gradcam",
        "gradcampp",
        "layercam",
        "cam",
    ] {
        let t = out.get(name).unwrap();
        assert!(
            t.data.iter().all(|v| *v == 0.0),
            "{name} should be all zero: {:?}",
            t.data
        );
    }
    // The same model's class 0 has positive evidence: the map is not zero.
    let opts = Options {
        classes: Classes::Given(vec![0]),
        ..Options::default()
    };
    let out = ex.explain(&input, &[Method::GradCam], &opts).unwrap();
    assert!(out.get("gradcam").unwrap().data.iter().any(|v| *v > 0.5));
}

#[test]
fn cam_requires_gap_then_linear() {
    let (ex, input) = explainer("vgg_like");
    let opts = Options {
        layer: Some("features.8".into()),
        ..Options::default()
    };
    let e = err_of(ex.explain(&input, &[Method::Cam], &opts));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
}
