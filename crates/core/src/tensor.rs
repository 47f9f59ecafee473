//! Tensors: a shape plus a backend's device-resident buffer, and host tensors for I/O.

use crate::{Backend, DType, Error, Result, Shape};

/// A tensor living on backend `B`: a shape and a handle to device memory.
///
/// Cloning clones the handle, not the data. Reshaping is free. Only [`Backend::download`] (or
/// [`Backend::download_owned`]) brings the data to the host.
pub struct Tensor<B: Backend + ?Sized> {
    shape: Shape,
    buffer: B::Buffer,
}

impl<B: Backend + ?Sized> Clone for Tensor<B> {
    fn clone(&self) -> Self {
        Tensor {
            shape: self.shape.clone(),
            buffer: self.buffer.clone(),
        }
    }
}

impl<B: Backend + ?Sized> std::fmt::Debug for Tensor<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{}", self.shape)
    }
}

impl<B: Backend + ?Sized> Tensor<B> {
    /// Wraps a buffer holding `shape.numel()` f32 elements. For backend implementations.
    pub fn from_parts(shape: Shape, buffer: B::Buffer) -> Self {
        Tensor { shape, buffer }
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    /// The device buffer. For backend implementations.
    pub fn buffer(&self) -> &B::Buffer {
        &self.buffer
    }

    /// The device buffer, the tensor given up. For backend implementations.
    pub fn into_buffer(self) -> B::Buffer {
        self.buffer
    }

    /// The same data under another shape with as many elements.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        if shape.numel() != self.shape.numel() {
            return Err(Error::shape(
                "reshape",
                format!("cannot view {} as {}", self.shape, shape),
            ));
        }
        Ok(Tensor {
            shape,
            buffer: self.buffer.clone(),
        })
    }
}

/// A tensor in host memory, f32, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// The shape.
    pub shape: Shape,
    /// `shape.numel()` values, row-major.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// A host tensor; errors when the data does not fill the shape.
    pub fn new(shape: impl Into<Shape>, data: Vec<f32>) -> Result<Self> {
        let shape = shape.into();
        if shape.numel() != data.len() {
            return Err(Error::shape(
                "host tensor",
                format!("{} values do not fill {}", data.len(), shape),
            ));
        }
        Ok(HostTensor { shape, data })
    }

    /// Zeros of the given shape.
    pub fn zeros(shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        let data = vec![0.0; shape.numel()];
        HostTensor { shape, data }
    }

    /// Decodes little-endian `dtype` bytes (f32, f16 or bf16) into f32.
    pub fn from_le_bytes(shape: impl Into<Shape>, dtype: DType, bytes: &[u8]) -> Result<Self> {
        let shape = shape.into();
        let width = match dtype {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        };
        if bytes.len() != shape.numel() * width {
            return Err(Error::shape(
                "host tensor",
                format!(
                    "{} bytes of {dtype:?} do not fill {shape} ({} bytes expected)",
                    bytes.len(),
                    shape.numel() * width
                ),
            ));
        }
        let data = match dtype {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            DType::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            DType::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        };
        Ok(HostTensor { shape, data })
    }

    /// The first non-finite value, as an [`Error::NonFinite`] naming `what`.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        match self.data.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(index) => Err(Error::NonFinite {
                what: what.to_string(),
                value: self.data[index].to_string(),
                index,
            }),
        }
    }

    /// Little-endian f32 bytes, for writing safetensors files.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.data.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}
