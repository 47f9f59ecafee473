//! `gradcam bench`: time the forward pass or an explanation end to end, the way outsiders
//! measure the project (the contract of the speed issue: keep its flags and JSON stable).

use crate::backends::{with_backend, WithBackend};
use clap::Args;
use gradcam_core::{Backend, Error, GradMode, HostTensor, Result, Tensor};
use gradcam_explain::{Classes, Explainer, Method, Options};
use gradcam_runtime::{arch, BackwardSpec, Graph, Model, RectifierRule, Rounding, Stop, Weights};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `gradcam bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Built-in architecture (a named variant such as resnet50 when no weights are given).
    #[arg(long, required_unless_present = "model")]
    arch: Option<String>,
    /// torchvision state dict as safetensors; default seeded random weights.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// An ONNX model instead of --arch/--weights (its input must have a fixed channel count;
    /// --size sets the spatial size).
    #[arg(long, conflicts_with_all = ["arch", "weights"])]
    model: Option<PathBuf>,
    /// What to time, comma separated: forward, gradcam, guided-backprop, guided-gradcam (or any
    /// explain method).
    #[arg(long, default_value = "gradcam")]
    method: String,
    /// Images per batch.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Input side.
    #[arg(long, default_value_t = 224)]
    size: usize,
    /// CPU worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed repetitions.
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Untimed warm-up runs.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Compute backend: cpu (Winograd F(4×4) forward convolutions where no backward reads
    /// the forward's masks, the forward method's included), cpu-winograd (in every forward),
    /// cpu-exact (in none), wgpu, cuda[:N] or cuda-tf32[:N] (in builds with those features).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// wgpu adapter by name.
    #[arg(long)]
    adapter: Option<String>,
    /// Seed of the random weights and input.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Also time the forward pass op by op, waiting for the device after each (medians over
    /// --reps runs, summed by op kind): where the time goes. With a guided method among
    /// --method, the guided backward to the input too (its ops labelled `backward ...`). Then
    /// the forward without waits: when the host had issued every op, and when the device had
    /// finished (where the two are close, the launches, not the device, set the pace; with
    /// wgpu, the last batch of dispatches is submitted by the readback).
    #[arg(long)]
    profile: bool,
}

/// What one measurement timed.
enum Task {
    Forward,
    Explain(Method),
}

struct Job {
    graph: Graph,
    input: HostTensor,
    tasks: Vec<(String, Task)>,
    reps: usize,
    warmup: usize,
    profile: bool,
}

/// Per task: its label, how its forward rounded (`exact` or `fast`) and the milliseconds of
/// each timed run.
type Timings = Vec<(String, &'static str, Vec<f64>)>;

/// Where the time goes: per op kind (label, ops, summed median milliseconds), largest first;
/// and the whole forward without waits between ops, as median milliseconds until the host had
/// issued it and until the device had finished it (launch-bound where the two are close).
struct Profile {
    kinds: Vec<(String, usize, f64)>,
    issued_ms: f64,
    finished_ms: f64,
    /// How the profiled forward rounded.
    forward: Rounding,
}

fn median(t: &mut [f64]) -> f64 {
    t.sort_by(f64::total_cmp);
    let n = t.len();
    if n % 2 == 1 {
        t[n / 2]
    } else {
        (t[n / 2 - 1] + t[n / 2]) / 2.0
    }
}

/// One op-by-op run: the forward rounding as `rounding` allows, then with `guided` the guided
/// backward from class 0's score to the input (Guided Backprop's pass, after an exact
/// forward), each node followed by a device wait.
fn profile_once<B: Backend>(
    model: &Model<B>,
    x: &Tensor<B>,
    guided: bool,
    rounding: Rounding,
) -> Result<Vec<(String, f64)>> {
    let mut times = model.forward_profile(x, rounding)?;
    if guided {
        let spec = BackwardSpec {
            from: model.graph().output(),
            stop: Stop::Input,
            rule: RectifierRule {
                mode: GradMode::Guided,
                relu_only: false,
            },
            weight_grads: false,
        };
        let acts = model.forward(x, &model.backward_needs(&spec)?)?;
        let seed = model.one_hot(model.classes(x.shape())?, &vec![0; x.dims()[0]])?;
        times.extend(model.backward_profile(&acts, &spec, seed)?);
    }
    Ok(times)
}

/// Runs the op-by-op passes `reps` times; each node's median, summed by kind.
fn profile<B: Backend>(
    model: &Model<B>,
    input: &HostTensor,
    reps: usize,
    guided: bool,
    rounding: Rounding,
) -> Result<Profile> {
    let x = model.upload_input(input)?;
    profile_once(model, &x, guided, rounding)?; // warm-up
    let mut per_node: Vec<(String, Vec<f64>)> = Vec::new();
    for _ in 0..reps {
        for (i, (label, ms)) in profile_once(model, &x, guided, rounding)?
            .into_iter()
            .enumerate()
        {
            if i == per_node.len() {
                per_node.push((label, Vec::new()));
            }
            per_node[i].1.push(ms);
        }
    }
    let (mut issued, mut finished) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        let acts = model.forward_with(&x, &BTreeSet::new(), rounding)?;
        issued.push(t.elapsed().as_secs_f64() * 1e3);
        model
            .backend()
            .download(acts.get(model.graph().output())?)?;
        finished.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut kinds: Vec<(String, usize, f64)> = Vec::new();
    for (label, mut t) in per_node {
        let m = median(&mut t);
        match kinds.iter_mut().find(|k| k.0 == label) {
            Some(k) => {
                k.1 += 1;
                k.2 += m;
            }
            None => kinds.push((label, 1, m)),
        }
    }
    kinds.sort_by(|a, b| b.2.total_cmp(&a.2));
    Ok(Profile {
        kinds,
        issued_ms: median(&mut issued),
        finished_ms: median(&mut finished),
        forward: rounding,
    })
}

impl WithBackend for Job {
    type Output = (String, Timings, Option<Profile>);
    fn run<B: Backend + Clone + 'static>(self, backend: B) -> Result<Self::Output> {
        let name = backend.name();
        let explainer = Explainer::new(Model::new(backend, self.graph)?);
        let model = explainer.model();
        // What `gradcam explain` computes for its pictures and summary: the maps, not the
        // intermediate tensors (those only with --save-tensors).
        let opts = Options {
            classes: Classes::Given(vec![0]),
            intermediates: false,
            ..Options::default()
        };
        let mut out = Vec::new();
        // How each task's forward rounds: the explainer's choice, and for the plain forward
        // the fast one (no backward reads it).
        let mut roundings = Vec::with_capacity(self.tasks.len());
        for (_, task) in &self.tasks {
            roundings.push(match task {
                Task::Forward => model.effective_rounding(Rounding::Fast),
                Task::Explain(m) => explainer.forward_rounding(&[*m], &opts)?,
            });
        }
        for ((label, task), rounding) in self.tasks.iter().zip(&roundings) {
            let once = || -> Result<()> {
                match task {
                    Task::Forward => {
                        let x = model.upload_input(&self.input)?;
                        let acts = model.forward_with(&x, &BTreeSet::new(), *rounding)?;
                        model
                            .backend()
                            .download(acts.get(model.graph().output())?)?;
                    }
                    Task::Explain(m) => {
                        explainer.explain(&self.input, &[*m], &opts)?;
                    }
                }
                Ok(())
            };
            for _ in 0..self.warmup {
                once()?;
            }
            let mut times = Vec::with_capacity(self.reps);
            for _ in 0..self.reps {
                let t = Instant::now();
                once()?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            out.push((label.clone(), rounding.name(), times));
        }
        let prof = if self.profile {
            let guided = self.tasks.iter().any(|(_, t)| {
                matches!(
                    t,
                    Task::Explain(Method::GuidedBackprop | Method::GuidedGradCam)
                )
            });
            // Exact if any task's forward is: the profile then shows the slower forward.
            let rounding = if roundings.contains(&Rounding::Exact) {
                Rounding::Exact
            } else {
                Rounding::Fast
            };
            Some(profile(model, &self.input, self.reps, guided, rounding)?)
        } else {
            None
        };
        Ok((name, out, prof))
    }
}

/// Runs `gradcam bench`.
pub fn run(a: BenchArgs) -> Result<()> {
    if let Some(t) = a.threads {
        gradcam_cpu::set_threads(t)?;
    }
    if a.batch == 0 || a.reps == 0 || a.size == 0 {
        return Err(Error::InvalidArgument(
            "--batch, --size and --reps must be positive".into(),
        ));
    }
    let graph = match (&a.model, a.arch.as_deref().unwrap_or_default()) {
        (Some(m), _) => gradcam_onnx::load(m)?,
        (None, name) => {
            let weights = match &a.weights {
                Some(p) => Weights::open(p)?,
                None => arch::random_weights(name, 1000, a.seed)?,
            };
            arch::build(name, &weights)?
        }
    };
    let model_label = match &a.model {
        Some(m) => m.display().to_string(),
        None => a.arch.clone().unwrap_or_default(),
    };
    let graph = graph.fold_batch_norm(&[graph.default_target()?])?;
    let channels = graph.input_channels();
    let tasks = a
        .method
        .split(',')
        .map(|m| {
            let m = m.trim();
            Ok((
                m.to_string(),
                if m == "forward" {
                    Task::Forward
                } else {
                    Task::Explain(Method::parse(m)?)
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let n = a.batch * channels * a.size * a.size;
    let mut state = a.seed ^ 0x5DEE_CE66;
    let data: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let input = HostTensor::new([a.batch, channels, a.size, a.size], data)?;
    let job = Job {
        graph,
        input,
        tasks,
        reps: a.reps,
        warmup: a.warmup,
        profile: a.profile,
    };
    let (backend, timings, prof) = with_backend(&a.backend, a.adapter.as_deref(), job)?;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    for (label, forward, mut t) in timings {
        let median = median(&mut t);
        let (min, max) = (t[0], t[t.len() - 1]);
        if a.json {
            let v = serde_json::json!({
                "arch": model_label, "method": label, "backend": backend, "forward": forward,
                "batch": a.batch, "size": a.size, "threads": threads, "reps": a.reps,
                "median_ms": median, "min_ms": min, "max_ms": max,
                "ms_per_image": median / a.batch as f64,
            });
            println!("{v}");
        } else {
            println!(
                "{} {label} on {backend} ({forward} forward), batch {} at {}×{}, {threads} threads: median {median:.2} ms ({:.2} ms per image), min {min:.2}, max {max:.2} over {} runs",
                model_label, a.batch, a.size, a.size, median / a.batch as f64, a.reps
            );
        }
    }
    if let Some(Profile {
        kinds: prof,
        issued_ms,
        finished_ms,
        forward,
    }) = prof
    {
        let forward = forward.name();
        let total: f64 = prof.iter().map(|k| k.2).sum();
        if a.json {
            let kinds: Vec<_> = prof
                .iter()
                .map(|(l, n, ms)| serde_json::json!({"op": l, "count": n, "ms": ms}))
                .collect();
            let v = serde_json::json!({"arch": model_label, "backend": backend, "batch": a.batch,
                "forward": forward, "profile": kinds, "total_ms": total,
                "forward_issued_ms": issued_ms, "forward_finished_ms": finished_ms});
            println!("{v}");
        } else {
            println!(
                "{forward} forward without waits on {backend}: issued by the host after \
                 {issued_ms:.3} ms, finished by the device after {finished_ms:.3} ms (medians)"
            );
            let what = if prof.iter().any(|k| k.0.starts_with("backward ")) {
                format!("{forward} forward and guided backward")
            } else {
                format!("{forward} forward")
            };
            println!(
                "{what} op by op on {backend} (device waited for after each op), {total:.2} ms:"
            );
            for (l, n, ms) in &prof {
                println!(
                    "  {l:<22} {n:>4} ops {ms:>9.3} ms {:>5.1} %",
                    100.0 * ms / total
                );
            }
        }
    }
    Ok(())
}
