//! Inputs: images (decoded, resized, cropped and normalised by `gradcam-image`), or an
//! already-normalised N×3×H×W tensor from a `.safetensors` (`file:name` picks a tensor) or
//! `.npy` file. Every input row comes with the picture it shows.

use crate::sources::Source;
use gradcam_core::{DType, Error, HostTensor, Result};
use gradcam_image::{picture, preprocess, Preprocess, RgbImage};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// One input row: where it came from and what it shows.
pub struct Item {
    /// The file (and row, for tensor files), for messages and the summary.
    pub name: String,
    /// A short name for output files.
    pub stem: String,
    /// The picture the model sees (the crop, or the tensor shown back).
    pub picture: RgbImage,
}

/// A batch: the input tensor and one item per row.
pub struct Loaded {
    /// `N×3×H×W`, normalised.
    pub tensor: HostTensor,
    /// Row by row (none for a tensor that is not `N×3×H×W`: it is explained, not pictured).
    pub items: Vec<Item>,
    /// Something the user should know about this input.
    pub warning: Option<String>,
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into())
}

/// Loads one source.
pub fn load(src: &Source, pre: &Preprocess) -> Result<Loaded> {
    match src {
        Source::Image(p) => {
            let img = preprocess::decode(p)?;
            let (pic, data) = pre
                .apply(&img)
                .map_err(|e| Error::Input(format!("{}: {e}", p.display())))?;
            let c = pre.crop as usize;
            Ok(Loaded {
                tensor: HostTensor::new([1, 3, c, c], data)?,
                items: vec![Item {
                    name: p.display().to_string(),
                    stem: stem(p),
                    picture: pic,
                }],
                warning: None,
            })
        }
        Source::Tensor(spec) => {
            let tensor = load_tensor(spec)?;
            let d = tensor.shape.dims().to_vec();
            let mut items = Vec::new();
            let mut warning = None;
            if d.len() != 4 || d[1] != 3 {
                warning = Some(format!(
                    "{spec}: a {} tensor is explained but not pictured (pictures need N×3×H×W)",
                    tensor.shape
                ));
            } else {
                let per = d[1] * d[2] * d[3];
                let lower = spec.to_ascii_lowercase();
                let file = lower
                    .rfind(".safetensors:")
                    .map_or(spec.as_str(), |i| &spec[..i + 12]);
                let base = stem(Path::new(file));
                for r in 0..d[0] {
                    items.push(Item {
                        name: format!("{spec} row {r}"),
                        stem: format!("{base}_{r}"),
                        picture: picture::denormalize(
                            &tensor.data[r * per..(r + 1) * per],
                            d[2],
                            d[3],
                            pre.mean,
                            pre.std,
                        )?,
                    });
                }
            }
            Ok(Loaded {
                tensor,
                items,
                warning,
            })
        }
    }
}

/// Stacks batches of equal row shape into one.
pub fn stack(parts: Vec<Loaded>) -> Result<Loaded> {
    let mut parts = parts.into_iter();
    let mut all = parts
        .next()
        .ok_or_else(|| Error::Input("nothing to stack".into()))?;
    for p in parts {
        let (a, b) = (all.tensor.shape.dims(), p.tensor.shape.dims());
        if a[1..] != b[1..] {
            return Err(Error::shape(
                "input batch",
                format!("{} and {}", all.tensor.shape, p.tensor.shape),
            ));
        }
        let n = a[0] + b[0];
        let mut dims = a.to_vec();
        dims[0] = n;
        let mut data = std::mem::take(&mut all.tensor.data);
        data.extend_from_slice(&p.tensor.data);
        all.tensor = HostTensor::new(dims, data)?;
        all.items.extend(p.items);
        all.warning = all.warning.or(p.warning);
    }
    Ok(all)
}

/// Loads a tensor file spec.
pub fn load_tensor(spec: &str) -> Result<HostTensor> {
    let (path, name) = match spec.to_ascii_lowercase().rfind(".safetensors:") {
        Some(i) => (&spec[..i + 12], Some(&spec[i + 13..])),
        None => (spec, None),
    };
    let p = Path::new(path);
    let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
    if path.to_ascii_lowercase().ends_with(".npy") {
        crate::npy::parse(&bytes, path)
    } else {
        from_safetensors(&bytes, path, name)
    }
}

fn from_safetensors(bytes: &[u8], path: &str, name: Option<&str>) -> Result<HostTensor> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Input(format!("{path}: not a valid safetensors file ({e})")))?;
    let names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    let pick = match name {
        Some(n) => n.to_string(),
        None if names.len() == 1 => names[0].clone(),
        None if names.iter().any(|n| n == "input") => "input".to_string(),
        None => {
            return Err(Error::Input(format!(
                "{path} holds several tensors ({}): pick one with {path}:NAME",
                names.join(", ")
            )))
        }
    };
    let view = st.tensor(&pick).map_err(|_| {
        Error::Input(format!(
            "{path} has no tensor `{pick}`; it has {}",
            names.join(", ")
        ))
    })?;
    let dtype = match view.dtype() {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        d => {
            return Err(Error::Input(format!(
                "{path}:{pick} is {d:?}, not a float tensor"
            )))
        }
    };
    HostTensor::from_le_bytes(view.shape().to_vec(), dtype, view.data())
}
