//! `gradcam`: explain what a CNN looked at, from the command line.

mod backends;
mod batch_run;
mod bench_cmd;
mod compare_cmd;
mod demo_cmd;
mod eval_cmd;
mod eval_report;
mod explain_cmd;
mod input;
mod labels;
mod layers_cmd;
mod malloc;
mod npy;
mod pictures;
mod sources;
mod summary;
mod train_demo_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Grad-CAM, Guided Backprop, Guided Grad-CAM and relatives, without Python.
#[derive(Parser)]
#[command(name = "gradcam", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Explain a model's decision on an input.
    Explain(Box<explain_cmd::ExplainArgs>),
    /// List the layers a model can be explained at, with their output shapes.
    Layers(layers_cmd::LayersArgs),
    /// Run one explanation on several backends and compare them layer by layer.
    Compare(Box<compare_cmd::CompareArgs>),
    /// Time the forward pass or an explanation end to end.
    Bench(Box<bench_cmd::BenchArgs>),
    /// Explain the built-in demo model on a generated two-object scene (no arguments needed).
    Demo(demo_cmd::DemoArgs),
    /// Measure the methods on held-out procedural scenes (the paper's localization, pointing,
    /// faithfulness and ablation figures) and write docs/EVALUATION.md.
    Eval(eval_cmd::EvalArgs),
    /// Train the built-in demo model on procedural scenes (CPU) and report held-out figures.
    TrainDemo(train_demo_cmd::TrainDemoArgs),
}

fn main() -> ExitCode {
    malloc::tune();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain(a) => match explain_cmd::run(*a) {
            Ok(o) if o.failed.is_empty() => Ok(()),
            Ok(o) => {
                eprintln!(
                    "{} inputs could not be read (listed above); {} input rows explained",
                    o.failed.len(),
                    o.explained
                );
                return ExitCode::from(3);
            }
            Err(e) => Err(e),
        },
        Command::Layers(a) => layers_cmd::run(a),
        Command::Bench(a) => bench_cmd::run(*a),
        Command::TrainDemo(a) => train_demo_cmd::run(a),
        Command::Demo(a) => demo_cmd::run(a),
        Command::Eval(a) => eval_cmd::run(a),
        Command::Compare(a) => match compare_cmd::run(*a) {
            Ok(true) => return ExitCode::SUCCESS,
            Ok(false) => return ExitCode::from(2),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
