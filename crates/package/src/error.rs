//! The crate's one error type: every variant says what failed and with what.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong building, reading, verifying or unpacking a
/// package.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A role name that cannot be used as a single, safe path component.
    #[error("invalid role name `{name}`: {reason}")]
    InvalidRoleName { name: String, reason: &'static str },

    /// The same role was given twice to the builder.
    #[error("role {name} is given more than once")]
    DuplicateRole { name: String },

    /// A role directory that does not exist, is not a directory or cannot be read.
    #[error("role {role}: cannot read directory {}: {cause}", path.display())]
    RoleDir {
        role: String,
        path: PathBuf,
        cause: io::Error,
    },

    /// A role's path that is neither a directory nor a readable regular file.
    #[error("role {role}: {} is a {kind}; only regular files and directories can be packaged", path.display())]
    UnsupportedFileType {
        role: String,
        path: PathBuf,
        kind: &'static str,
    },

    /// A followed symlink points nowhere.
    #[error("role {role}: {} is a symlink to {}, which does not exist", path.display(), target.display())]
    DanglingSymlink {
        role: String,
        path: PathBuf,
        target: PathBuf,
    },
    /// Symlinks are refused at build time (see FORMAT.md).
    #[error("role {role}: {} is a symlink to {}; packages do not hold symlinks: replace it with the file or directory it points to", path.display(), target.display())]
    Symlink {
        role: String,
        path: PathBuf,
        target: PathBuf,
    },

    /// A file name that cannot be stored portably.
    #[error("role {role}: file name {} cannot be packaged: {reason}", path.display())]
    InvalidFileName {
        role: String,
        path: PathBuf,
        reason: &'static str,
    },

    /// A file changed size while it was being packaged.
    #[error("role {role}: {} changed while it was being packaged (expected {expected} bytes, read {actual})", path.display())]
    FileChanged {
        role: String,
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    /// Any other I/O failure, with what was being done.
    #[error("failed to {action} {}: {cause}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: io::Error,
    },

    /// The zip writer or reader failed.
    #[error("failed to {action}: {cause}")]
    Zip {
        action: String,
        cause: zip::result::ZipError,
    },

    /// The input is not a readable ZIP file.
    #[error("not a weft package: {reason}")]
    NotAPackage { reason: String },

    /// The manifest is missing, malformed or inconsistent with itself.
    #[error("invalid manifest: {reason}")]
    InvalidManifest { reason: String },

    /// A package written by a newer format.
    #[error("unsupported package format version {found} (this weft reads version {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },

    /// An archive entry name that could write outside its target.
    #[error("entry {entry} {reason}")]
    UnsafePath { entry: String, reason: &'static str },

    /// Two archive entries that name the same file.
    #[error("duplicate entry {entry}{}", other.as_ref().map(|o| format!(" (also stored as {o})")).unwrap_or_default())]
    DuplicateEntry {
        entry: String,
        other: Option<String>,
    },

    /// Entries whose compressed data overlap: a zip-bomb technique.
    #[error("archive entries overlap each other (a zip-bomb technique)")]
    OverlappingEntries,

    /// An archive entry the manifest does not list.
    #[error("entry {entry} is in the archive but not in the manifest")]
    UnlistedEntry { entry: String },

    /// A manifest entry the archive does not hold.
    #[error("entry {entry} is in the manifest but missing from the archive")]
    MissingEntry { entry: String },

    /// An entry whose content hash differs from the manifest.
    #[error("entry {entry} is corrupt: sha-256 is {actual}, the manifest says {expected}")]
    HashMismatch {
        entry: String,
        expected: String,
        actual: String,
    },

    /// An entry whose data cannot be decompressed (bad deflate stream, CRC).
    #[error("entry {entry} is corrupt: {reason}")]
    Corrupt { entry: String, reason: String },

    /// An entry whose size differs from the manifest (or from its zip header).
    #[error("entry {entry} has the wrong size: {actual}, the manifest says {expected} bytes")]
    SizeMismatch {
        entry: String,
        expected: u64,
        actual: String,
    },

    /// An entry whose stored mode or kind differs from the manifest.
    #[error("entry {entry} has the wrong mode: {found}, the manifest says {expected}")]
    WrongMode {
        entry: String,
        expected: String,
        found: String,
    },

    /// An entry the reader will not decode (encryption, exotic compression).
    #[error("entry {entry} is not supported: {reason}")]
    UnsupportedEntry { entry: String, reason: String },

    /// A decompression-bomb guard tripped.
    #[error("{what} exceeds the limit of {limit}: {detail}")]
    LimitExceeded {
        what: &'static str,
        limit: u64,
        detail: String,
    },

    /// The role asked for is not in the package.
    #[error("the package has no role {role} (it has: {available})")]
    UnknownRole { role: String, available: String },

    /// Unpacking never replaces an existing directory.
    #[error("target {} already exists", path.display())]
    TargetExists { path: PathBuf },

    /// A failure while unpacking one role, with the role named.
    /// (The inner error is part of the message, not a separate source, so
    /// `{:#}` chains do not repeat it.)
    #[error("failed to unpack role {role}: {error}")]
    Unpack {
        role: String,
        error: Box<PackageError>,
    },
}

impl PackageError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PackageError::Io {
            action,
            path: path.into(),
            cause: source,
        }
    }

    pub(crate) fn zip(action: impl Into<String>, source: zip::result::ZipError) -> Self {
        PackageError::Zip {
            action: action.into(),
            cause: source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = PackageError> = std::result::Result<T, E>;
