//! The gradcam runtime: a graph of the backend's primitives, a forward pass that keeps only what
//! the requested backward passes need, backward passes from any seed to any node, model loading
//! from torchvision state dicts in safetensors, and a builder for other graphs.

pub mod arch;
mod backward;
mod builder;
mod fold;
mod graph;
mod model;
mod train;
mod weights;

pub use backward::{BackwardSpec, Gradients, RectifierRule, Stop};
pub use builder::GraphBuilder;
pub use graph::{Graph, Node, NodeId, Op, Param, ParamId};
pub use model::{Activations, Model, Rounding};
pub use train::{softmax_cross_entropy, AdamConfig, Trainer};
pub use weights::Weights;
