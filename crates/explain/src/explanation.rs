//! [`Explanation`]: the named output tensors of one run, and their safetensors file.

use gradcam_core::{Error, HostTensor, Result};
use gradcam_runtime::Rounding;
use safetensors::tensor::{serialize_to_file, TensorView};
use safetensors::Dtype;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The outputs of one explanation run, named as in the reference fixtures
/// (`logits`, `target_activation`, `gradcam`, `guided_backprop`, ...).
///
/// Row `r` of every per-row tensor explains class `targets[r]` of input image `images[r]`;
/// per-image tensors (`logits`, `target_activation`) have one row per input image.
#[derive(Clone, Debug, Default)]
pub struct Explanation {
    /// Float tensors by name.
    pub tensors: BTreeMap<String, HostTensor>,
    /// The class each explained row is about.
    pub targets: Vec<usize>,
    /// The input image each explained row is about.
    pub images: Vec<usize>,
    /// The target layer's display name, when a method used one.
    pub layer: Option<String>,
    /// How the shared forward rounded ([`Rounding::Fast`]: the backend's faster forward,
    /// where no backward read its masks; see [`crate::Explainer::forward_rounding`]).
    pub forward: Rounding,
}

impl Explanation {
    /// A tensor by name.
    pub fn get(&self, name: &str) -> Option<&HostTensor> {
        self.tensors.get(name)
    }

    /// Writes every tensor as float32, plus `targets` as int64, to a safetensors file; the
    /// metadata records the target layer, the images and the forward's rounding (`forward`:
    /// `exact` or `fast`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.shape.dims().to_vec(), t.to_le_bytes()))
            .collect();
        let targets: Vec<u8> = self
            .targets
            .iter()
            .flat_map(|&t| (t as i64).to_le_bytes())
            .collect();
        let mut views = Vec::with_capacity(bytes.len() + 1);
        let bad = |e: safetensors::SafeTensorError| {
            Error::InvalidArgument(format!("saving {}: {e}", path.display()))
        };
        for (k, shape, data) in &bytes {
            views.push((
                k.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).map_err(bad)?,
            ));
        }
        views.push((
            "targets".to_string(),
            TensorView::new(Dtype::I64, vec![self.targets.len()], &targets).map_err(bad)?,
        ));
        let mut meta = HashMap::new();
        if let Some(l) = &self.layer {
            meta.insert("target_layer".to_string(), l.clone());
        }
        meta.insert("forward".to_string(), self.forward.name().to_string());
        meta.insert(
            "images".to_string(),
            self.images
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        serialize_to_file(views, Some(meta), path).map_err(|e| match e {
            safetensors::SafeTensorError::IoError(io) => Error::io(path, io),
            other => bad(other),
        })
    }
}
