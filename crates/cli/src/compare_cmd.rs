//! `gradcam compare`: the same explanation on several backends, compared layer by layer.

use crate::backends::{with_backend, WithBackend};
use crate::explain_cmd::{ExplainJob, RunArgs};
use clap::Args;
use gradcam_core::GradMode;
use gradcam_core::{Backend, Error, Result};
use gradcam_explain::{Classes, Explainer};
use gradcam_runtime::{BackwardSpec, Model, NodeId, RectifierRule, Stop};
use std::collections::BTreeSet;

/// Arguments of `gradcam compare`.
#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Backends to compare, the first being the reference (e.g. cpu,wgpu).
    #[arg(long, value_delimiter = ',', default_values_t = ["cpu".to_string(), "wgpu".to_string()])]
    backends: Vec<String>,
    /// Relative L2 difference beyond which a tensor diverges.
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Rectifier rule of the layer-by-layer backward trace: plain (the gradient), guided
    /// (Guided Backprop; with --guided-relu-only as pytorch-grad-cam) or deconvnet.
    #[arg(long, default_value = "plain", value_parser = ["plain", "guided", "deconvnet"])]
    rule: String,
}

/// Every tensor one backend produced: forward outputs and backward gradients per layer, in
/// graph order, then the explanation's outputs.
struct Trace {
    rows: Vec<(&'static str, String, Vec<f32>)>,
    targets: Vec<usize>,
    /// How the explanation's forward rounded (`exact` or `fast`; the traced forward is exact).
    forward: &'static str,
}

struct TraceJob(ExplainJob, RectifierRule);

impl WithBackend for TraceJob {
    type Output = Trace;
    fn run<B: Backend + Clone + 'static>(self, backend: B) -> Result<Trace> {
        let ExplainJob {
            graph,
            input,
            methods,
            opts,
        } = self.0;
        let rule = self.1;
        let model = Model::new(backend, graph)?;
        let g = model.graph();
        let mut rows = Vec::new();
        let x = model.upload_input(&input)?;
        let all: BTreeSet<NodeId> = (0..g.nodes().len()).map(NodeId).collect();
        let acts = model.forward(&x, &all)?;
        for i in 1..g.nodes().len() {
            let t = acts.get(NodeId(i))?;
            rows.push((
                "forward",
                g.nodes()[i].name.clone(),
                model.backend().download(t)?,
            ));
        }
        let explainer = Explainer::new(model);
        let ex = explainer.explain(&input, &methods, &opts)?;
        let model = explainer.model();
        let g = model.graph();
        let classes = model.graph().infer_shapes(x.shape())?[g.output().0].dims()[1];
        let spec = BackwardSpec {
            from: g.output(),
            stop: Stop::Input,
            rule,
            weight_grads: false,
        };
        let grads = model.backward_trace(&acts, &spec, model.one_hot(classes, &ex.targets)?)?;
        for i in (0..g.nodes().len()).rev() {
            if let Some(t) = &grads[i] {
                rows.push((
                    "backward",
                    g.nodes()[i].name.clone(),
                    model.backend().download(t)?,
                ));
            }
        }
        for (name, t) in &ex.tensors {
            rows.push(("output", name.clone(), t.data.clone()));
        }
        Ok(Trace {
            rows,
            targets: ex.targets,
            forward: ex.forward.name(),
        })
    }
}

/// One compared tensor.
struct Row {
    section: &'static str,
    name: String,
    max_abs: f64,
    rel_l2: f64,
}

fn diff(a: &[f32], b: &[f32]) -> (f64, f64) {
    if a.len() != b.len() {
        return (f64::INFINITY, f64::INFINITY);
    }
    let mut max_abs = 0.0f64;
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let d = (*x as f64 - *y as f64).abs();
        max_abs = max_abs.max(if d.is_nan() { f64::INFINITY } else { d });
        num += d * d;
        den += (*y as f64).powi(2);
    }
    let rel = if den == 0.0 {
        if num == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (num / den).sqrt()
    };
    (max_abs, rel)
}

/// Runs `gradcam compare`; `Ok(true)` when every backend agrees within the tolerance.
pub fn run(a: CompareArgs) -> Result<bool> {
    if a.backends.len() < 2 {
        return Err(Error::InvalidArgument(
            "--backends needs at least two backends".into(),
        ));
    }
    let mut job = a.run.prepare()?;
    if matches!(job.opts.classes, Classes::TopK(k) if k > 1) {
        return Err(Error::Unsupported(
            "compare explains one class per row: use --class or the default top-1".into(),
        ));
    }
    let rule = RectifierRule {
        mode: match a.rule.as_str() {
            "guided" => GradMode::Guided,
            "deconvnet" => GradMode::Deconvnet,
            _ => GradMode::Plain,
        },
        relu_only: job.opts.guided_relu_only,
    };
    let reference = with_backend(&a.backends[0], a.run.adapter(), TraceJob(job.clone(), rule))?;
    // Every backend explains the classes the reference chose.
    job.opts.classes = Classes::Given(reference.targets.clone());
    let mut report = Vec::new();
    let mut all_ok = true;
    for name in &a.backends[1..] {
        let trace = with_backend(name, a.run.adapter(), TraceJob(job.clone(), rule))?;
        let mut rows = Vec::new();
        for (section, layer, r) in &reference.rows {
            let other = trace
                .rows
                .iter()
                .find(|(s, l, _)| s == section && l == layer);
            let (max_abs, rel_l2) =
                other.map_or((f64::INFINITY, f64::INFINITY), |(_, _, v)| diff(v, r));
            rows.push(Row {
                section,
                name: layer.clone(),
                max_abs,
                rel_l2,
            });
        }
        let first = rows
            .iter()
            .position(|r| r.rel_l2.is_nan() || r.rel_l2 > a.tol);
        all_ok &= first.is_none();
        report.push((name.clone(), rows, first, trace.forward));
    }
    if a.json {
        let backends: Vec<serde_json::Value> = report
            .iter()
            .map(|(name, rows, first, forward)| {
                serde_json::json!({
                    "backend": name,
                    "forward": forward,
                    "within_tolerance": first.is_none(),
                    "first_divergence": first.map(|i| serde_json::json!({"section": rows[i].section, "name": rows[i].name})),
                    "rows": rows.iter().map(|r| serde_json::json!({
                        "section": r.section, "name": r.name,
                        "max_abs": finite(r.max_abs), "rel_l2": finite(r.rel_l2),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let out = serde_json::json!({"reference": a.backends[0], "reference_forward": reference.forward, "tolerance": a.tol, "targets": reference.targets, "backends": backends});
        println!("{out}");
    } else {
        for (name, rows, first, forward) in &report {
            println!(
                "{name} ({forward} forward) against {} ({} forward; tolerance {:.0e}, relative L2):",
                a.backends[0], reference.forward, a.tol
            );
            println!(
                "{:<9} {:<32} {:>12} {:>12}",
                "section", "tensor", "max |diff|", "rel L2"
            );
            for r in rows {
                println!(
                    "{:<9} {:<32} {:>12.3e} {:>12.3e}",
                    r.section, r.name, r.max_abs, r.rel_l2
                );
            }
            match first {
                None => println!("{name}: every tensor within {:.0e}\n", a.tol),
                Some(i) => println!(
                    "{name}: first divergence at {} {} (rel L2 {:.3e})\n",
                    rows[*i].section, rows[*i].name, rows[*i].rel_l2
                ),
            }
        }
    }
    Ok(all_ok)
}

/// JSON has no infinity: missing tensors report null.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}
