//! Built-in architectures, built from torchvision state dicts: block types, counts, widths and
//! class counts are read from the weights, then checked against the named variant.

mod alexnet;
mod common;
mod demo;
mod mobilenet;
mod random;
mod resnet;
mod squeezenet;
mod vgg;

pub use random::random_weights;

use crate::{Graph, Weights};
use gradcam_core::{Error, Result};

/// Every architecture name [`build`] accepts.
pub const ARCHITECTURES: &[&str] = &[
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "squeezenet1_0",
    "squeezenet1_1",
    "mobilenet_v2",
    "alexnet",
    "demo",
];

/// Builds architecture `arch` from a torchvision-named state dict.
pub fn build(arch: &str, w: &Weights) -> Result<Graph> {
    match arch {
        "resnet" => resnet::build(w, None),
        "resnet18" => resnet::build(w, Some((false, [2, 2, 2, 2]))),
        "resnet34" => resnet::build(w, Some((false, [3, 4, 6, 3]))),
        "resnet50" => resnet::build(w, Some((true, [3, 4, 6, 3]))),
        "resnet101" => resnet::build(w, Some((true, [3, 4, 23, 3]))),
        "resnet152" => resnet::build(w, Some((true, [3, 8, 36, 3]))),
        "vgg11" | "vgg13" | "vgg16" | "vgg19" => vgg::build(w, vgg_convs(arch), false),
        "vgg11_bn" | "vgg13_bn" | "vgg16_bn" | "vgg19_bn" => vgg::build(w, vgg_convs(arch), true),
        "squeezenet1_0" => squeezenet::build(w, squeezenet::Version::V1_0),
        "squeezenet1_1" => squeezenet::build(w, squeezenet::Version::V1_1),
        "mobilenet_v2" => mobilenet::build(w),
        "alexnet" => alexnet::build(w),
        "demo" => demo::build(w),
        other => Err(Error::Unsupported(format!(
            "unknown architecture `{other}`; known: {}",
            ARCHITECTURES.join(", ")
        ))),
    }
    .map_err(|e| match e {
        Error::Model(m) => Error::Model(format!("{arch}: {m}")),
        e => e,
    })
}

fn vgg_convs(arch: &str) -> usize {
    match &arch[..5] {
        "vgg11" => 8,
        "vgg13" => 10,
        "vgg16" => 13,
        _ => 16,
    }
}
