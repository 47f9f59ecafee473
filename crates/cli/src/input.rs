//! Inputs: an image (resized and normalised), or an already-normalised N×3×H×W tensor from a
//! `.safetensors` (`file:name` picks a tensor) or `.npy` file.

use gradcam_core::{DType, Error, HostTensor, Result};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Image preprocessing.
pub struct Preprocess {
    /// Side of the square the image is resized to.
    pub size: u32,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

/// Loads `spec` as an input tensor.
pub fn load(spec: &str, pre: &Preprocess) -> Result<HostTensor> {
    let (path, name) = match spec.rfind(".safetensors:") {
        Some(i) => (&spec[..i + 12], Some(&spec[i + 13..])),
        None => (spec, None),
    };
    let p = Path::new(path);
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "safetensors" => {
            let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            from_safetensors(&bytes, path, name)
        }
        "npy" => {
            let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            crate::npy::parse(&bytes, path)
        }
        _ => image(p, pre),
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

fn image(p: &Path, pre: &Preprocess) -> Result<HostTensor> {
    if !p.exists() {
        return Err(Error::io(
            p,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let img = image::open(p)
        .map_err(|e| Error::Input(format!("{}: cannot read as an image ({e})", p.display())))?;
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::Input(format!("{}: the image is empty", p.display())));
    }
    let s = pre.size;
    let rgb = image::imageops::resize(&img.to_rgb8(), s, s, image::imageops::FilterType::Triangle);
    let plane = (s * s) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            data[c * plane + i] = (px[c] as f32 / 255.0 - pre.mean[c]) / pre.std[c];
        }
    }
    HostTensor::new([1, 3, s as usize, s as usize], data)
}
