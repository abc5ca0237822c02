//! Unpacking a role's approot: verify as it streams, write only inside a
//! fresh temporary directory beside the target, then rename it into place.
//! The target is either complete and verified or absent.

use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Read, Seek};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{PackageError, Result};
use crate::limits::Limits;
use crate::manifest::{Entry, role_entry_name};
use crate::read::{Package, Slot};
use crate::verify::{Budget, clone_finding};

/// How to unpack.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Strip every write bit once unpacked (files 0444/0555, directories
    /// 0555), for an approot shared by many instances.
    pub read_only: bool,
}

/// A role unpacked and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackedRole {
    pub role: String,
    /// The approot.
    pub path: PathBuf,
    /// The role digest, to key a shared approot cache on.
    pub role_digest: String,
    /// The package digest.
    pub package_digest: String,
    pub files: u64,
    pub bytes: u64,
}

/// Opens the package at `package` and unpacks `role` into `target`.
pub fn unpack(
    package: &Path,
    role: &str,
    target: &Path,
    limits: Limits,
    options: UnpackOptions,
) -> Result<UnpackedRole> {
    let wrap = |e| PackageError::Unpack {
        role: role.to_owned(),
        error: Box::new(e),
    };
    let mut package = Package::open_with_limits(package, limits).map_err(wrap)?;
    package.unpack_role(role, target, options)
}

impl<R: Read + Seek> Package<R> {
    /// Unpacks `role`'s approot into `target`, which must not exist (its
    /// parent is created). Concurrent unpacks into one target are safe: one
    /// wins, the others get [`PackageError::TargetExists`] and can use it. Every file is checked against the manifest while
    /// it is written; any problem anywhere in the package's structure refuses
    /// the whole unpack. On error nothing is left at `target`.
    pub fn unpack_role(
        &mut self,
        role: &str,
        target: &Path,
        options: UnpackOptions,
    ) -> Result<UnpackedRole> {
        self.unpack_role_inner(role, target, options)
            .map_err(|e| match e {
                e @ PackageError::Unpack { .. } => e,
                e => PackageError::Unpack {
                    role: role.to_owned(),
                    error: Box::new(e),
                },
            })
    }

    fn unpack_role_inner(
        &mut self,
        role: &str,
        target: &Path,
        options: UnpackOptions,
    ) -> Result<UnpackedRole> {
        let Some(r) = self.manifest.roles.iter().position(|x| x.name == role) else {
            return Err(PackageError::UnknownRole {
                role: role.to_owned(),
                available: self
                    .manifest
                    .roles
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if let Some(first) = self.findings.first() {
            return Err(clone_finding(first));
        }
        let role_manifest = self.manifest.roles[r].clone();
        let limits = self.limits;
        if role_manifest.entries.len() as u64 > limits.max_entries {
            return Err(PackageError::LimitExceeded {
                what: "the number of entries",
                limit: limits.max_entries,
                detail: format!("role {role} has {}", role_manifest.entries.len()),
            });
        }
        let declared = role_manifest.total_size();
        if declared > limits.max_total_size {
            return Err(PackageError::LimitExceeded {
                what: "the total uncompressed size",
                limit: limits.max_total_size,
                detail: format!("the manifest gives role {role} {declared} bytes"),
            });
        }
        if fs::symlink_metadata(target).is_ok() {
            return Err(PackageError::TargetExists {
                path: target.to_path_buf(),
            });
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::create_dir_all(parent).map_err(|e| PackageError::io("create", parent, e))?;
        let stem = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "approot".to_owned());
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{stem}.unpacking-"))
            .tempdir_in(parent)
            .map_err(|e| PackageError::io("create a temporary directory in", parent, e))?;
        let root = tmp.path().to_path_buf();

        let mut budget = Budget::default();
        let mut files = 0u64;
        for (e, entry) in role_manifest.entries.iter().enumerate() {
            // The path was checked canonical (no `..`, not absolute) when the
            // manifest was parsed, and nothing but plain directories and
            // files is ever created, so the join stays under `root`.
            let dest = root.join(entry.path());
            match entry {
                Entry::Dir { path } => match fs::create_dir(&dest) {
                    Ok(()) => {}
                    Err(err)
                        if err.kind() == std::io::ErrorKind::AlreadyExists && dest.is_dir() => {}
                    Err(err) => {
                        return Err(PackageError::io("create", format!("approot/{path}"), err));
                    }
                },
                Entry::File {
                    path,
                    size,
                    sha256,
                    mode,
                } => {
                    let name = role_entry_name(role, path, false);
                    let index = self
                        .slot_index(Slot::Role { role: r, entry: e })
                        .ok_or_else(|| PackageError::MissingEntry {
                            entry: name.clone(),
                        })?;
                    if let Some(dir) = dest.parent() {
                        fs::create_dir_all(dir)
                            .map_err(|err| PackageError::io("create", dir, err))?;
                    }
                    let file = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(mode.bits())
                        .open(&dest)
                        .map_err(|err| PackageError::io("create", &dest, err))?;
                    let mut out = BufWriter::with_capacity(128 << 10, file);
                    self.copy_entry(index, &name, *size, sha256, &mut budget, &mut out)?;
                    let file = out
                        .into_inner()
                        .map_err(|err| PackageError::io("write", &dest, err.into_error()))?;
                    // The umask may have cleared bits: set the exact mode.
                    let bits = if options.read_only {
                        mode.bits() & 0o555
                    } else {
                        mode.bits()
                    };
                    file.set_permissions(fs::Permissions::from_mode(bits))
                        .map_err(|err| PackageError::io("set permissions on", &dest, err))?;
                    files += 1;
                }
            }
        }
        let dir_bits = if options.read_only { 0o555 } else { 0o755 };
        for entry in role_manifest.entries.iter().rev() {
            if let Entry::Dir { path } = entry {
                let dest = root.join(path);
                fs::set_permissions(&dest, fs::Permissions::from_mode(dir_bits))
                    .map_err(|err| PackageError::io("set permissions on", &dest, err))?;
            }
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(dir_bits))
            .map_err(|err| PackageError::io("set permissions on", &root, err))?;
        if fs::symlink_metadata(target).is_ok() {
            return Err(PackageError::TargetExists {
                path: target.to_path_buf(),
            });
        }
        let root = tmp.keep();
        if let Err(err) = fs::rename(&root, target) {
            remove_tree(&root);
            // Another unpack won the race between the check above and the
            // rename: rename(2) onto a non-empty directory says so.
            if matches!(
                err.kind(),
                std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::AlreadyExists
            ) {
                return Err(PackageError::TargetExists {
                    path: target.to_path_buf(),
                });
            }
            return Err(PackageError::io(
                "move the unpacked approot to",
                target,
                err,
            ));
        }
        tracing::info!(role, target = %target.display(), files, bytes = budget.total, "role unpacked");
        Ok(UnpackedRole {
            role: role.to_owned(),
            path: target.to_path_buf(),
            role_digest: role_manifest.digest.clone(),
            package_digest: self.manifest.digest.clone(),
            files,
            bytes: budget.total,
        })
    }
}

/// Removes an unpacked tree, read-only or not (best effort, for cleanup).
pub fn remove_tree(path: &Path) {
    for dent in walkdir::WalkDir::new(path).into_iter().flatten() {
        if dent.file_type().is_dir() {
            let _ = fs::set_permissions(dent.path(), fs::Permissions::from_mode(0o755));
        }
    }
    let _ = fs::remove_dir_all(path);
}
