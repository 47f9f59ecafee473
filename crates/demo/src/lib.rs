//! The built-in demo: a procedural image set with known ground truth ([`scene`]), a small CNN
//! the project trains on it with its own runtime ([`train`]), its committed weights embedded in
//! the binary ([`model`]), and the held-out checks of what it learned ([`eval`]).

pub mod eval;
pub mod measure;
pub mod model;
pub mod scene;
pub mod train;

pub use scene::{Scene, Split, CLASSES, SIZE};
