//! State dicts from safetensors files (PyTorch `state_dict` naming), validated on the way in.

use gradcam_core::{DType, Error, HostTensor, Result, Shape};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::Path;

/// The float tensors of a state dict, by name. Integer tensors (BatchNorm's
/// `num_batches_tracked`) are skipped.
#[derive(Clone, Debug, Default)]
pub struct Weights {
    tensors: BTreeMap<String, HostTensor>,
    source: String,
}

impl Weights {
    /// Reads and validates a safetensors file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses safetensors bytes; `source` names them in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::Model(format!("{source}: not a valid safetensors file ({e})")))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let dtype = match view.dtype() {
                Dtype::F32 => DType::F32,
                Dtype::F16 => DType::F16,
                Dtype::BF16 => DType::BF16,
                Dtype::I64 | Dtype::I32 | Dtype::U8 | Dtype::BOOL => continue,
                other => {
                    return Err(Error::Model(format!(
                        "{source}: tensor {name} has unsupported dtype {other:?}"
                    )))
                }
            };
            let t = HostTensor::from_le_bytes(view.shape().to_vec(), dtype, view.data())
                .map_err(|e| Error::Model(format!("{source}: tensor {name}: {e}")))?;
            if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(Error::Model(format!(
                    "{source}: tensor {name} holds a non-finite value ({}) at index {i}",
                    t.data[i]
                )));
            }
            tensors.insert(name, t);
        }
        Ok(Weights {
            tensors,
            source: source.to_string(),
        })
    }

    /// Wraps tensors already in memory.
    pub fn from_map(tensors: BTreeMap<String, HostTensor>, source: &str) -> Self {
        Weights {
            tensors,
            source: source.to_string(),
        }
    }

    /// A graph's parameters under their names (for a graph built from a state dict without
    /// batch-norm folding, the state dict it was built from).
    pub fn from_graph(g: &crate::Graph, source: &str) -> Self {
        let tensors = g
            .params()
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect();
        Self::from_map(tensors, source)
    }

    /// The tensors as a float32 safetensors file, names sorted; `metadata` goes in its header.
    pub fn to_bytes(&self, metadata: &[(&str, &str)]) -> Result<Vec<u8>> {
        let data: Vec<(&String, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(k, t)| (k, t.to_le_bytes()))
            .collect();
        let views = data
            .iter()
            .map(|(k, bytes)| {
                let shape = self.tensors[*k].shape.dims().to_vec();
                safetensors::tensor::TensorView::new(Dtype::F32, shape, bytes)
                    .map(|v| (k.to_string(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", self.source)))?;
        let meta = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", self.source)))
    }

    /// Where the tensors came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether a tensor is present.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// All tensor names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(|s| s.as_str())
    }

    /// A tensor, or an error naming it.
    pub fn get(&self, name: &str) -> Result<HostTensor> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| Error::Model(format!("{}: tensor `{name}` is missing", self.source)))
    }

    /// A tensor with an expected rank, or an error.
    pub fn get_rank(&self, name: &str, rank: usize) -> Result<HostTensor> {
        let t = self.get(name)?;
        if t.shape.rank() != rank {
            return Err(Error::Model(format!(
                "{}: tensor `{name}` has shape {}, expected {rank} dimensions",
                self.source, t.shape
            )));
        }
        Ok(t)
    }

    /// A tensor with an exact expected shape, or an error.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let t = self.get(name)?;
        if t.shape.dims() != shape {
            return Err(Error::Model(format!(
                "{}: tensor `{name}` has shape {}, expected {}",
                self.source,
                t.shape,
                Shape::from(shape)
            )));
        }
        Ok(t)
    }

    /// The four tensors of a BatchNorm module at `prefix`, each of length `c`.
    pub fn batch_norm(&self, prefix: &str, c: usize) -> Result<[HostTensor; 4]> {
        Ok([
            self.get_shaped(&format!("{prefix}.weight"), &[c])?,
            self.get_shaped(&format!("{prefix}.bias"), &[c])?,
            self.get_shaped(&format!("{prefix}.running_mean"), &[c])?,
            self.get_shaped(&format!("{prefix}.running_var"), &[c])?,
        ])
    }
}
