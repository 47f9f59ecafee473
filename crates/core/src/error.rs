//! The one error type of the workspace.

/// Result with the workspace's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, each with a message a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Operand shapes do not fit the operation.
    #[error("shape mismatch in {op}: {msg}")]
    Shape {
        /// The operation or layer that rejected the shapes.
        op: String,
        /// What was expected and what was found.
        msg: String,
    },
    /// An argument is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A model or weights file is missing, truncated, corrupted or does not fit the architecture.
    #[error("model: {0}")]
    Model(String),
    /// An input file or tensor cannot be used.
    #[error("input: {0}")]
    Input(String),
    /// A layer name that the model does not have.
    #[error("layer `{name}` not found; candidates: {}", candidates.join(", "))]
    LayerNotFound {
        /// The name asked for.
        name: String,
        /// The names the model does have.
        candidates: Vec<String>,
    },
    /// A class index the model does not produce.
    #[error("class {class} out of range: the model has {classes} classes (0..={})", classes.saturating_sub(1))]
    ClassOutOfRange {
        /// The class asked for.
        class: usize,
        /// How many classes the model has.
        classes: usize,
    },
    /// NaN or infinity where finite numbers are required.
    #[error("{what} contains a non-finite value ({value}) at flat index {index}")]
    NonFinite {
        /// Which tensor.
        what: String,
        /// The offending value, printed.
        value: String,
        /// Where it is.
        index: usize,
    },
    /// An operation or configuration this build does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A backend failure: no device, out of memory, a kernel that failed.
    #[error("backend {backend}: {msg}")]
    Backend {
        /// The backend's name.
        backend: String,
        /// What failed.
        msg: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    /// A [`Error::Shape`] for `op`.
    pub fn shape(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Shape {
            op: op.into(),
            msg: msg.into(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
