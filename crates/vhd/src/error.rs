//! The crate's error type: every variant says what failed and with what.

use std::path::PathBuf;

/// Everything that can go wrong reading, writing or validating a VHD.
#[derive(Debug, thiserror::Error)]
pub enum VhdError {
    #[error("failed to {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a vhd image: {reason}")]
    NotVhd { path: PathBuf, reason: String },
    #[error("{path}: corrupt {structure}: {reason}")]
    Corrupt {
        path: PathBuf,
        structure: &'static str,
        reason: String,
    },
    #[error("{path}: unsupported {what}: {value}")]
    Unsupported {
        path: PathBuf,
        what: &'static str,
        value: String,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{path}: access of {len} bytes at offset {offset} is outside the disk of {size} bytes")]
    OutOfRange {
        path: PathBuf,
        offset: u64,
        len: u64,
        size: u64,
    },
    #[error("{path}: image is opened read-only")]
    ReadOnly { path: PathBuf },
    #[error(
        "{child}: parent {parent_name:?} with id {parent_id} not found (tried: {})",
        tried.join("; ")
    )]
    ParentNotFound {
        child: PathBuf,
        parent_name: String,
        parent_id: uuid::Uuid,
        tried: Vec<String>,
    },
    #[error("{child}: chain loop: {parent} is already in the chain")]
    ChainLoop { child: PathBuf, parent: PathBuf },
    #[error("{path}: chain is deeper than the limit of {limit} images")]
    ChainTooDeep { path: PathBuf, limit: usize },
    #[error("{path}: {reason}")]
    Refused { path: PathBuf, reason: String },
}

impl VhdError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        VhdError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: &std::path::Path,
        structure: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        VhdError::Corrupt {
            path: path.to_path_buf(),
            structure,
            reason: reason.into(),
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = VhdError> = std::result::Result<T, E>;
