//! Errors of the storage crate itself (start-up, persistence), as opposed
//! to the Azure error responses sent to clients ([`crate::api_error`]).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("failed to bind the {service} service to {addr}: {source}")]
    Bind {
        service: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to open the metadata database {path}: {source}")]
    OpenDatabase {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("metadata database error while {action}: {source}")]
    Database {
        action: &'static str,
        source: rusqlite::Error,
    },
    #[error("invalid account {spec:?}: {reason}")]
    InvalidAccount { spec: String, reason: String },
}
