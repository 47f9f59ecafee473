//! `gradcam layers`.

use crate::explain_cmd::ModelArgs;
use clap::Args;
use gradcam_core::{Result, Shape};

/// Arguments of `gradcam layers`.
#[derive(Args)]
pub struct LayersArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Input side used to compute the shapes.
    #[arg(long, default_value_t = 224)]
    size: usize,
}

/// Lists every node with its output shape; module aliases and the default target are marked.
pub fn run(a: LayersArgs) -> Result<()> {
    let g = a.model.graph()?;
    let shapes = g.infer_shapes(&Shape::new([1, g.input_channels(), a.size, a.size]))?;
    let default = g.default_target()?;
    for (i, node) in g.nodes().iter().enumerate() {
        let id = gradcam_runtime::NodeId(i);
        let aliases: Vec<&str> = g
            .aliases()
            .iter()
            .filter(|(_, n)| *n == id)
            .map(|(s, _)| s.as_str())
            .collect();
        println!(
            "{:<32} {:<20} {:<18}{}{}",
            node.name,
            node.op.kind(),
            shapes[i].to_string(),
            if aliases.is_empty() {
                String::new()
            } else {
                format!(" = {}", aliases.join(", "))
            },
            if id == default {
                "  (default target)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
