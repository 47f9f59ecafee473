//! Tensor shapes (row-major, NCHW for images) and element types.

use crate::{Error, Result};
use std::fmt;

/// Element type of stored data. Compute is f32 on every backend today; f16 and bf16 are storage
/// formats (weights files often hold them) converted to f32 on upload through `half`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float, the compute type.
    F32,
    /// 16-bit IEEE float (storage).
    F16,
    /// bfloat16 (storage).
    BF16,
}

/// A row-major shape. Image tensors are NCHW.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// Dimension `i`; panics when out of range (use only after checking the rank).
    pub fn dim(&self, i: usize) -> usize {
        self.0[i]
    }

    /// The four dimensions of an NCHW tensor, or a shape error naming `op`.
    pub fn nchw(&self, op: &str) -> Result<[usize; 4]> {
        match self.0[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(Error::shape(
                op,
                format!("expected a 4-D NCHW tensor, got {self}"),
            )),
        }
    }

    /// The two dimensions of a matrix, or a shape error naming `op`.
    pub fn matrix(&self, op: &str) -> Result<[usize; 2]> {
        match self.0[..] {
            [r, c] => Ok([r, c]),
            _ => Err(Error::shape(
                op,
                format!("expected a 2-D tensor, got {self}"),
            )),
        }
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}

impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|d| d.to_string()).collect();
        write!(f, "[{}]", parts.join("×"))
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
