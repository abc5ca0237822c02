//! weft service packages (`.cspkg`): build, read, verify and unpack.
//!
//! A package is one ZIP file holding the service definition verbatim, each
//! role's approot under `roles/<Role>/approot/`, and `manifest.json` (the
//! last entry) listing every file's size, SHA-256 and mode, a digest per role
//! and a package digest. `FORMAT.md` beside this crate is the specification;
//! in short:
//!
//! * **role digest** = SHA-256 of `"weft-cspkg-role/1\n"` followed by one
//!   line per approot entry in byte order of its path:
//!   `"F <mode> <size> <sha256> <path>\n"` for a file (mode `0644`/`0755`,
//!   size in decimal, lower-case hex hash) and `"D <path>\n"` for a directory;
//! * **package digest** = SHA-256 of `"weft-cspkg/1\n"`,
//!   `"S <size> <sha256> ServiceDefinition.csdef\n"`, then `"R <role digest>
//!   <role name>\n"` per role in byte order of the names.
//!
//! Building is reproducible: the same inputs give the same bytes whatever
//! the files' timestamps, owners, directory order or the umask.
//!
//! Reading trusts nothing: [`Package::open`] checks the manifest and the
//! archive's structure, [`Package::verify`] hashes everything, and
//! [`Package::unpack_role`] writes one approot only inside a temporary
//! directory beside its target, verifying as it streams under [`Limits`],
//! then renames it into place.
//!
//! ```no_run
//! use std::path::Path;
//! use weft_package::{BuildOptions, Package, PackageSpec, RoleSource, UnpackOptions};
//!
//! # fn main() -> weft_package::Result<()> {
//! // Build (what `weft package` does).
//! let spec = PackageSpec {
//!     service_definition: std::fs::read("ServiceDefinition.csdef").unwrap(),
//!     roles: vec![RoleSource { name: "WebRole".into(), dir: "./web".into() }],
//! };
//! let manifest = weft_package::build_package(&spec, Path::new("app.cspkg"), &BuildOptions::default())?;
//!
//! // Unpack once per role version into a shared, read-only approot (what the
//! // agent does), keyed on the role digest.
//! let mut package = Package::open(Path::new("app.cspkg"))?;
//! let digest = package.manifest().role("WebRole").unwrap().digest.clone();
//! let approot = Path::new("/var/lib/weft/approots").join(&digest);
//! if !approot.exists() {
//!     package.unpack_role("WebRole", &approot, UnpackOptions { read_only: true })?;
//! }
//! # let _ = manifest;
//! # Ok(())
//! # }
//! ```

mod build;
mod error;
mod limits;
mod manifest;
mod parallel;
mod path;
mod read;
mod unpack;
mod verify;

pub use build::{
    BuildOptions, COMPRESSION_LEVEL, PackageSpec, RoleSource, build_package, write_package,
};
pub use error::{PackageError, Result};
pub use limits::Limits;
pub use manifest::{
    CSDEF_NAME, Entry, FORMAT_NAME, FORMAT_VERSION, FileMode, MANIFEST_NAME, Manifest,
    RoleManifest, ServiceDefinitionRecord, role_entry_name,
};
pub use path::{check_rel_path, check_role_name};
pub use read::Package;
pub use unpack::{UnpackOptions, UnpackedRole, remove_tree, unpack};
pub use verify::VerifyReport;
