//! The measurement driver on a few held-out scenes: structure, and identities the demo CNN's
//! architecture forces (so the driver and the variants are checked against known answers).

use gradcam_cpu::CpuBackend;
use gradcam_demo::measure::{self, MeasureConfig, ABLATION_LAYERS, LAYERS};
use gradcam_demo::model;
use gradcam_explain::{Explainer, GradCamVariant, Method};
use gradcam_runtime::Model;

#[test]
fn a_small_measurement_is_complete_and_consistent() {
    let ex = Explainer::new(Model::new(CpuBackend::reference(), model::graph().unwrap()).unwrap());
    let cfg = MeasureConfig {
        scenes: 8,
        pairs: 4,
        validation: 4,
        batch: 4,
        ..MeasureConfig::quick()
    };
    let mut calls = Vec::new();
    let r = measure::run(&ex, &cfg, &mut |done| calls.push(done)).unwrap();
    assert_eq!(calls.last(), Some(&cfg.total()));
    assert_eq!(r.accuracy, 1.0);
    assert_eq!(r.methods.len(), Method::ALL.len());
    assert_eq!(r.layers.len(), LAYERS.len());
    assert_eq!(
        r.ablations.len(),
        GradCamVariant::NAMES.len() * ABLATION_LAYERS.len()
    );
    let get = |rows: &[measure::Row], n: &str| rows.iter().find(|x| x.name == n).unwrap().clone();
    // Above relu4 lie only global average pooling and the linear layer: Grad-CAM is CAM, max
    // pooling of the constant gradient is its mean, and no rectifier sees the backward pass.
    let paper = get(&r.ablations, "paper @ relu4");
    let mut cam = get(&r.methods, "cam");
    cam.name = paper.name.clone();
    let gc = get(&r.methods, "gradcam");
    assert_eq!(gc.loc_error_top1, paper.loc_error_top1);
    assert_eq!(cam.loc_error_top1, gc.loc_error_top1);
    for v in ["max-pooling", "guided-backward", "deconv-backward"] {
        let mut row = get(&r.ablations, &format!("{v} @ relu4"));
        row.name = paper.name.clone();
        assert_eq!(row, paper, "{v}");
    }
    assert_eq!(get(&r.layers, "relu4").loc_error_top1, gc.loc_error_top1);
    // Every figure is a fraction (or a correlation), occlusion has no faithfulness to itself.
    for row in r.methods.iter().chain(&r.ablations).chain(&r.layers) {
        for v in [row.loc_error_top1, row.loc_error_true, row.pointing_one] {
            assert!((0.0..=1.0).contains(&v), "{row:?}");
        }
        assert!(row.loc_error_top1 >= row.loc_error_true);
    }
    assert!(get(&r.methods, "occlusion").faithfulness.is_none());
    assert!(gc.faithfulness.unwrap() > 0.0);
    // Grad-CAM is class-discriminative on two-object scenes.
    assert!(gc.own_mass.unwrap() > 4.0 * gc.other_mass.unwrap());
    assert_eq!(r.recall.len(), 2);
}

#[test]
fn the_seed_spread_measures_each_model_alike() {
    let model =
        || Explainer::new(Model::new(CpuBackend::reference(), model::graph().unwrap()).unwrap());
    let models = vec![(0, model()), (7, model())];
    let rows = measure::seed_spread(&models, 6, 3, 4, &mut |_| {}).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].seed, rows[1].seed), (0, 7));
    let mut second = rows[1].clone();
    second.seed = 0;
    assert_eq!(rows[0], second, "the same weights give the same figures");
    assert_eq!(rows[0].accuracy, 1.0);
    assert!(rows[0].mass[0] > rows[0].mass[1]);
}
