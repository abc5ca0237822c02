//! Errors of the API's server side (token handling) and its client.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot read or create token file {}: {source}", path.display())]
    TokenIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {} has mode {mode:04o}: it must be readable by its owner only (chmod 600 it)", path.display())]
    TokenPermissions { path: PathBuf, mode: u32 },
    #[error("token file {} does not hold a token", path.display())]
    TokenMalformed { path: PathBuf },
    #[error("cannot reach the weft management API at {url}: {reason} (is `weft up` running?)")]
    Unreachable { url: String, reason: String },
    #[error("the management API refused the token (401): use the token of the fabric at {url}")]
    Unauthorized { url: String },
    /// The fabric answered with an error body.
    #[error("{message}")]
    Remote {
        status: u16,
        code: String,
        message: String,
    },
    #[error("unexpected answer from {url}: {reason}")]
    Protocol { url: String, reason: String },
}
