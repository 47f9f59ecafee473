//! The committed demo weights on held-out scenes, and the training loop itself.

use gradcam_cpu::CpuBackend;
use gradcam_demo::train::{train, TrainConfig, METADATA_KEY};
use gradcam_demo::{eval, model, Split};
use gradcam_explain::Explainer;
use gradcam_runtime::{Model, Weights};

fn explainer() -> Explainer<CpuBackend> {
    Explainer::new(Model::new(CpuBackend::reference(), model::graph().unwrap()).unwrap())
}

#[test]
fn committed_weights_classify_held_out_scenes() {
    let acc = eval::accuracy(&explainer(), Split::Test, 1000, 100).unwrap();
    assert!(acc >= 0.95, "held-out accuracy {acc}");
}

#[test]
fn each_class_grad_cam_peaks_on_its_own_object() {
    let p = eval::pointing(&explainer(), Split::Test, 300, 50).unwrap();
    assert!(
        p.own >= 0.90,
        "Grad-CAM peaks inside the class's object in {} of cases",
        p.own
    );
    assert!(
        p.other <= 0.02,
        "Grad-CAM peaks on the other object in {} of cases",
        p.other
    );
}

#[test]
fn committed_weights_record_how_they_were_trained() {
    let st = safetensors::SafeTensors::read_metadata(model::WEIGHTS)
        .unwrap()
        .1;
    let meta = st.metadata().as_ref().unwrap();
    assert_eq!(meta[METADATA_KEY], TrainConfig::default().describe());
}

#[test]
fn training_is_deterministic_and_lowers_the_loss() {
    let cfg = TrainConfig {
        steps: 40,
        batch: 16,
        ..TrainConfig::default()
    };
    let mut losses = Vec::new();
    let a = train(CpuBackend::reference(), &cfg, |_, l| losses.push(l)).unwrap();
    // The same on one thread and on three: the kernels' sums do not depend on the split.
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let b = pool
            .install(|| train(CpuBackend::reference(), &cfg, |_, _| {}))
            .unwrap();
        assert_eq!(
            a.params(),
            b.params(),
            "same seed, same weights on {threads} threads"
        );
    }
    let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = losses[35..].iter().sum::<f32>() / 5.0;
    assert!(last < 0.8 * first, "loss {first} → {last}");
    // The weights survive a safetensors round trip bit for bit.
    let bytes = Weights::from_graph(&a, "t").to_bytes(&[]).unwrap();
    let back = Weights::from_bytes(&bytes, "t").unwrap();
    for p in a.params() {
        assert_eq!(back.get(&p.name).unwrap(), p.value);
    }
}
