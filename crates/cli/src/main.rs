//! `gradcam`: explain what a CNN looked at, from the command line.

mod backends;
mod bench_cmd;
mod compare_cmd;
mod explain_cmd;
mod input;
mod layers_cmd;
mod npy;
mod render;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain(a) => explain_cmd::run(*a),
        Command::Layers(a) => layers_cmd::run(a),
        Command::Bench(a) => bench_cmd::run(*a),
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
