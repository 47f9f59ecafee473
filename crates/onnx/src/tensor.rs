//! `TensorProto` → host values, with every size checked before anything is allocated: a
//! hostile file must not make the loader allocate gigabytes or panic.

use crate::proto::TensorProto;
use gradcam_core::{Error, HostTensor, Result};
use std::path::Path;

/// ONNX element types the importer reads.
const FLOAT: i32 = 1;
const INT32: i32 = 6;
const INT64: i32 = 7;
const DOUBLE: i32 = 11;

/// The bytes of tensor data an import may materialise: a few times the file's size, so that a
/// small file naming one large tensor many times (or one external file region from many
/// tensors) cannot make the loader allocate without bound.
pub struct Budget(std::cell::Cell<usize>);

impl Budget {
    /// A budget for a model file of `file_bytes` bytes.
    pub fn for_file(file_bytes: usize) -> Self {
        Budget(std::cell::Cell::new(
            file_bytes.saturating_mul(4).saturating_add(64 << 20),
        ))
    }

    /// Takes `bytes` from the budget, or fails naming `what`.
    pub fn take(&self, bytes: usize, what: &str) -> Result<()> {
        let left = self.0.get();
        if bytes > left {
            return Err(Error::Model(format!(
                "{what}: the model's tensors would need more memory than its file size allows \
                 (a tensor used too many times, or external data read too often)"
            )));
        }
        self.0.set(left - bytes);
        Ok(())
    }
}

/// A constant: its shape, and its values as f32 (weights) and as i64 (shapes, axes).
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Values as f32.
    pub f: Vec<f32>,
    /// Values as i64 (integer tensors; empty for float tensors).
    pub i: Vec<i64>,
}

impl Const {
    /// The host tensor of a float constant.
    pub fn tensor(&self) -> Result<HostTensor> {
        HostTensor::new(self.dims.clone(), self.f.clone())
    }

    /// Integer values (integer tensors, or float tensors holding whole numbers).
    pub fn ints(&self) -> Vec<i64> {
        if self.i.is_empty() {
            self.f.iter().map(|v| *v as i64).collect()
        } else {
            self.i.clone()
        }
    }
}

fn bad(name: &str, msg: impl std::fmt::Display) -> Error {
    Error::Model(format!("ONNX tensor `{name}`: {msg}"))
}

/// Element count of `dims`, refusing negative dimensions and overflow.
fn numel(name: &str, dims: &[i64]) -> Result<usize> {
    dims.iter().try_fold(1usize, |n, &d| {
        let d = usize::try_from(d).map_err(|_| bad(name, format!("negative dimension {d}")))?;
        n.checked_mul(d)
            .ok_or_else(|| bad(name, "its dimensions overflow"))
    })
}

/// Reads a tensor's values; `dir` is the model file's folder (for external data).
pub fn read(t: &TensorProto, dir: Option<&Path>, budget: &Budget) -> Result<Const> {
    let name = t.name.as_deref().unwrap_or("?");
    let n = numel(name, &t.dims)?;
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let ty = t.data_type.unwrap_or(0);
    let width = match ty {
        FLOAT | INT32 => 4,
        INT64 | DOUBLE => 8,
        other => {
            return Err(bad(
                name,
                format!("element type {other} is not supported (float, double, int32, int64 are)"),
            ))
        }
    };
    let bytes = n
        .checked_mul(width)
        .ok_or_else(|| bad(name, "its size overflows"))?;
    // Embedded data must hold exactly the claimed elements: checked before any allocation.
    if t.data_location != Some(1) {
        let have = match (&t.raw_data, ty) {
            (Some(r), _) => r.len(),
            (None, FLOAT) => t.float_data.len() * 4,
            (None, DOUBLE) => t.double_data.len() * 8,
            (None, INT32) => t.int32_data.len() * 4,
            (None, _) => t.int64_data.len() * 8,
        };
        if have != bytes {
            return Err(bad(
                name,
                format!("{have} bytes of data for {n} elements of {width} bytes"),
            ));
        }
    }
    // The f32 copy, and the i64 copy of an integer tensor.
    budget.take(
        n.saturating_mul(if matches!(ty, INT32 | INT64) { 12 } else { 4 }),
        &format!("ONNX tensor `{name}`"),
    )?;
    let external;
    let raw: Option<&[u8]> = if t.data_location == Some(1) {
        budget.take(bytes, &format!("ONNX tensor `{name}`"))?;
        external = read_external(t, name, dir, bytes)?;
        Some(&external)
    } else {
        t.raw_data.as_deref()
    };
    let (f, i) = if let Some(raw) = raw {
        if raw.len() != bytes {
            return Err(bad(
                name,
                format!(
                    "{} bytes of data for {n} elements of {width} bytes",
                    raw.len()
                ),
            ));
        }
        match ty {
            FLOAT => (
                raw.chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                    .collect(),
                vec![],
            ),
            DOUBLE => (
                raw.chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                    .collect(),
                vec![],
            ),
            INT32 => int(raw
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64)
                .collect()),
            _ => int(raw
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect()),
        }
    } else {
        let (len, vals) = match ty {
            FLOAT => (t.float_data.len(), (t.float_data.clone(), vec![])),
            DOUBLE => (
                t.double_data.len(),
                (t.double_data.iter().map(|&v| v as f32).collect(), vec![]),
            ),
            INT32 => (
                t.int32_data.len(),
                int(t.int32_data.iter().map(|&v| v as i64).collect()),
            ),
            _ => (t.int64_data.len(), int(t.int64_data.clone())),
        };
        if len != n {
            return Err(bad(name, format!("{len} values for {n} elements")));
        }
        vals
    };
    Ok(Const { dims, f, i })
}

fn int(v: Vec<i64>) -> (Vec<f32>, Vec<i64>) {
    (v.iter().map(|&x| x as f32).collect(), v)
}

/// Reads external data: `location` relative to the model's folder (no absolute paths, no
/// `..`), `offset` and `length` within the file, and exactly the tensor's size.
fn read_external(t: &TensorProto, name: &str, dir: Option<&Path>, want: usize) -> Result<Vec<u8>> {
    let get = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key.as_deref() == Some(k))
            .and_then(|e| e.value.clone())
    };
    let location = get("location").ok_or_else(|| bad(name, "external data without a location"))?;
    let rel = Path::new(&location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(bad(
            name,
            format!("external data location `{location}` must be a plain relative path"),
        ));
    }
    let dir = dir.ok_or_else(|| {
        bad(
            name,
            "external data, but the model was not read from a file",
        )
    })?;
    let path = dir.join(rel);
    // A link could point anywhere: external data must be a file beside the model.
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(bad(
            name,
            format!("external data `{location}` is a symbolic link"),
        ));
    }
    let parse = |k: &str| -> Result<Option<u64>> {
        get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| bad(name, format!("external {k} `{v}`")))
            })
            .transpose()
    };
    let offset = parse("offset")?.unwrap_or(0);
    let file_len = std::fs::metadata(&path)
        .map_err(|e| bad(name, format!("{}: {e}", path.display())))?
        .len();
    let length = parse("length")?.unwrap_or(want as u64);
    if length != want as u64 || offset.checked_add(length).is_none_or(|end| end > file_len) {
        return Err(bad(
            name,
            format!(
                "external data {}: {length} bytes at offset {offset} of a {file_len}-byte file, \
                 for {want} bytes of tensor",
                path.display()
            ),
        ));
    }
    use std::io::{Read, Seek, SeekFrom};
    let mut f =
        std::fs::File::open(&path).map_err(|e| bad(name, format!("{}: {e}", path.display())))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| bad(name, format!("{}: {e}", path.display())))?;
    let mut buf = vec![0u8; want];
    f.read_exact(&mut buf)
        .map_err(|e| bad(name, format!("{}: {e}", path.display())))?;
    Ok(buf)
}
