//! ONNX import: a CNN classifier exported to ONNX (PyTorch's TorchScript exporter, opset 11–17,
//! or its dynamo exporter, opset 18+) translated into a runtime [`Graph`], so every explain
//! method and every backend works on it unchanged.
//!
//! The file is parsed with prost (the message types in [`proto`] are written from `onnx.proto`'s
//! field numbers, so no `protoc` is needed). External data (`*.onnx.data` beside the model) is
//! read with its offsets checked. Every size is validated before anything is allocated; a
//! malformed or truncated file, an unknown operator or an unsupported attribute is an
//! [`gradcam_core::Error::Model`] naming the node and what is supported, never a panic.
//!
//! Constant subgraphs — shape arithmetic (`Shape`, `Gather`, `Unsqueeze`, `Squeeze`, `Concat`,
//! `Cast`) — are folded at load time; `MatMul` by a constant plus an `Add` of a bias becomes one
//! linear layer; `Sub`/`Mul`/`Div`/`Add` by per-channel constants become a channel affine map.
//!
//! Layers are named by their ONNX output tensor (`/layer4/layer4.1/relu_1/Relu_output_0`,
//! `relu_16`); `Identity` and `Dropout` outputs name the same layer.

pub mod proto;
mod tensor;
mod translate;

use gradcam_core::{Error, HostTensor, Result};
use gradcam_runtime::Graph;
use prost::Message;
use std::path::Path;

pub use translate::SUPPORTED;

/// The largest ONNX file read (2 GiB, protobuf's own limit for one message).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// Reads and translates an ONNX file.
pub fn load(path: &Path) -> Result<Graph> {
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        source: e,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(Error::Model(format!(
            "{}: {len} bytes, more than an ONNX file can hold ({MAX_FILE_BYTES})",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    from_bytes(&bytes, path.parent()).map_err(|e| Error::Model(format!("{}: {e}", path.display())))
}

/// Translates an ONNX model held in memory; `dir` is where its external data files are (none
/// for a self-contained model).
pub fn from_bytes(bytes: &[u8], dir: Option<&Path>) -> Result<Graph> {
    translate::translate(&decode(bytes)?, dir, false, bytes.len(), &[])
}

/// Like [`from_bytes`], for a graph whose output may be any tensor, not only logits: forward
/// passes only (the ONNX operator conformance tests use it); explaining needs logits.
pub fn from_bytes_any_output(bytes: &[u8], dir: Option<&Path>) -> Result<Graph> {
    translate::translate(&decode(bytes)?, dir, true, bytes.len(), &[])
}

/// Like [`from_bytes_any_output`] for a graph with several inputs: the first is the runtime's
/// input, the following ones (in the graph's order) are bound to the constant values `rest`
/// and fold into the graph as if they were initializers.
pub fn from_bytes_bound(bytes: &[u8], dir: Option<&Path>, rest: &[HostTensor]) -> Result<Graph> {
    translate::translate(&decode(bytes)?, dir, true, bytes.len(), rest)
}

fn decode(bytes: &[u8]) -> Result<proto::ModelProto> {
    if bytes.is_empty() {
        return Err(Error::Model("an empty file is not an ONNX model".into()));
    }
    proto::ModelProto::decode(bytes)
        .map_err(|e| Error::Model(format!("not a valid ONNX (protobuf) file: {e}")))
}

/// Reads a serialized `TensorProto` (the `input_*.pb` / `output_*.pb` files of ONNX's test data)
/// as a float tensor.
pub fn read_tensor_pb(bytes: &[u8]) -> Result<gradcam_core::HostTensor> {
    let t = proto::TensorProto::decode(bytes)
        .map_err(|e| Error::Model(format!("not a valid TensorProto: {e}")))?;
    tensor::read(&t, None, &tensor::Budget::for_file(bytes.len()))?.tensor()
}

/// Whether `path` names an ONNX file (by its extension).
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}
