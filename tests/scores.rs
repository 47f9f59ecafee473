//! The softmax score: its target gradient is the logit gradients combined with the softmax
//! Jacobian row `p_c·(e_c − p)`; and top-k rows are interleaved per image.

mod common;

use gradcam::{Classes, CpuBackend, Explainer, Method, Model, Options, Score};

#[test]
fn softmax_score_combines_logit_gradients() {
    let case = common::load_case("tiny_cam");
    let ex = Explainer::new(Model::new(CpuBackend::new(), case.graph()).unwrap());
    let x = &case.reference["input"];
    let logits = &case.reference["logits"];
    let grad = |c: usize, score| {
        let o = Options {
            classes: Classes::Given(vec![c]),
            score,
            ..Options::default()
        };
        ex.explain(x, &[Method::GradCam], &o)
            .unwrap()
            .get("target_gradient")
            .unwrap()
            .clone()
    };
    let per_class: Vec<_> = (0..5).map(|j| grad(j, Score::Logit)).collect();
    let c = 2;
    let soft = grad(c, Score::Softmax);
    let n = soft.shape.dim(0);
    let row = soft.data.len() / n;
    for i in 0..n {
        let l = &logits.data[i * 5..(i + 1) * 5];
        let e: Vec<f64> = l.iter().map(|v| (*v as f64).exp()).collect();
        let s: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|v| v / s).collect();
        let expect: Vec<f32> = (0..row)
            .map(|k| {
                (0..5)
                    .map(|j| {
                        p[c] * ((j == c) as u8 as f64 - p[j])
                            * per_class[j].data[i * row + k] as f64
                    })
                    .sum::<f64>() as f32
            })
            .collect();
        let got = &soft.data[i * row..(i + 1) * row];
        assert!(
            common::rel_l2(got, &expect) < 1e-5,
            "image {i}: {}",
            common::rel_l2(got, &expect)
        );
    }
}

#[test]
fn top_k_rows_are_interleaved_per_image() {
    let case = common::load_case("tiny_cam");
    let ex = Explainer::new(Model::new(CpuBackend::new(), case.graph()).unwrap());
    let x = &case.reference["input"];
    let o = Options {
        classes: Classes::TopK(3),
        ..Options::default()
    };
    let out = ex.explain(x, &[Method::GradCam], &o).unwrap();
    assert_eq!(out.images, vec![0, 0, 0, 1, 1, 1]);
    let logits = &case.reference["logits"].data;
    for r in 0..6 {
        let img = r / 3;
        let l = &logits[img * 5..img * 5 + 5];
        let better = l.iter().filter(|v| **v > l[out.targets[r]]).count();
        assert_eq!(
            better,
            r % 3,
            "row {r} is image {img}'s class of rank {}",
            r % 3
        );
    }
    // Each row's map equals a single-class run of that class.
    let one = Options {
        classes: Classes::Given(vec![out.targets[4], out.targets[4]]),
        ..Options::default()
    };
    let single = ex.explain(x, &[Method::GradCam], &one).unwrap();
    let plane = 32 * 32;
    assert_eq!(
        &out.get("gradcam").unwrap().data[4 * plane..5 * plane],
        &single.get("gradcam").unwrap().data[plane..2 * plane]
    );
    assert_eq!(out.get("gradcam").unwrap().shape.dims(), [6, 32, 32]);
    assert_eq!(out.get("logits").unwrap().shape.dims(), [2, 5]);
}
