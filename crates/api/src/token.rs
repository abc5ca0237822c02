//! The management API's bearer token: created on the fabric's first start,
//! kept in `<state>/token` with mode 0600, required on every call.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// A secret the CLI presents as `Authorization: Bearer <token>`.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Reads the token at `path`, creating it (0600, 256 random bits) when
    /// absent. A token file readable by others is refused: anyone who can read
    /// it controls the fabric.
    pub fn load_or_create(path: &Path) -> Result<Token, ApiError> {
        match Self::load(path) {
            Ok(token) => return Ok(token),
            Err(ApiError::TokenIo { ref source, .. })
                if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| ApiError::TokenIo {
            path: path.to_path_buf(),
            source: io::Error::other(e.to_string()),
        })?;
        let secret = hex::encode(bytes);
        let io_err = |source| ApiError::TokenIo {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                file.write_all(secret.as_bytes()).map_err(io_err)?;
                file.write_all(b"\n").map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                Ok(Token(secret))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Reads an existing token file.
    pub fn load(path: &Path) -> Result<Token, ApiError> {
        let io_err = |source| ApiError::TokenIo {
            path: path.to_path_buf(),
            source,
        };
        let meta = fs::metadata(path).map_err(io_err)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ApiError::TokenPermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = fs::read_to_string(path).map_err(io_err)?;
        let secret = text.trim();
        if secret.len() < 32 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::TokenMalformed {
                path: path.to_path_buf(),
            });
        }
        Ok(Token(secret.to_owned()))
    }

    /// A token given directly (`WEFT_TOKEN`).
    pub fn from_secret(secret: &str) -> Token {
        Token(secret.trim().to_owned())
    }

    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Compares a presented secret in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/token");
        let a = Token::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(a.secret().len(), 64);
        let b = Token::load_or_create(&path).unwrap();
        assert_eq!(a.secret(), b.secret());
        assert!(a.matches(b.secret()));
        assert!(!a.matches(&b.secret()[1..]));
        assert!(!a.matches(""));
    }

    #[test]
    fn a_token_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        Token::load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Token::load_or_create(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "token file {} has mode 0644: it must be readable by its owner only (chmod 600 it)",
                path.display()
            )
        );
    }
}
