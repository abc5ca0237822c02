//! Checking contents: stream every entry through SHA-256 under the
//! decompression-bomb limits, with memory bounded by one buffer.

use std::io::{self, Read, Seek, Write};

use sha2::{Digest, Sha256};

use crate::error::{PackageError, Result};
use crate::manifest::{CSDEF_NAME, Entry, role_entry_name};
use crate::read::{Package, Slot};

const BUF: usize = 128 << 10;

/// What `verify` found.
#[derive(Debug)]
pub struct VerifyReport {
    /// The package digest (from the checked manifest).
    pub digest: String,
    /// Files whose contents were hashed.
    pub files_checked: u64,
    /// Uncompressed bytes hashed.
    pub bytes_checked: u64,
    /// Every problem found; empty means the package is sound.
    pub findings: Vec<PackageError>,
}

impl VerifyReport {
    /// Whether the package passed.
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Running total of uncompressed bytes, shared by all entries of one pass.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    pub total: u64,
}

impl<R: Read + Seek> Package<R> {
    /// Checks the whole package: the structure found when opening, then the
    /// size and SHA-256 of the service definition and of every file, reporting
    /// every problem rather than stopping at the first (except when a size
    /// limit trips: then reading stops).
    pub fn verify(&mut self) -> VerifyReport {
        let mut findings: Vec<PackageError> = self.findings.iter().map(clone_finding).collect();
        let mut budget = Budget::default();
        let mut files = 0;
        let mut jobs: Vec<(Slot, String, u64, String)> = vec![(
            Slot::ServiceDefinition,
            CSDEF_NAME.to_owned(),
            self.manifest.service_definition.size,
            self.manifest.service_definition.sha256.clone(),
        )];
        for (r, role) in self.manifest.roles.iter().enumerate() {
            for (e, entry) in role.entries.iter().enumerate() {
                if let Entry::File {
                    path, size, sha256, ..
                } = entry
                {
                    jobs.push((
                        Slot::Role { role: r, entry: e },
                        role_entry_name(&role.name, path, false),
                        *size,
                        sha256.clone(),
                    ));
                }
            }
        }
        for (slot, name, size, sha256) in jobs {
            let Some(index) = self.slot_index(slot) else {
                continue; // already a structural finding
            };
            match self.copy_entry(index, &name, size, &sha256, &mut budget, &mut io::sink()) {
                Ok(()) => files += 1,
                Err(e @ PackageError::LimitExceeded { .. }) => {
                    findings.push(e);
                    break;
                }
                Err(e) => findings.push(e),
            }
        }
        tracing::debug!(digest = %self.manifest.digest, files, findings = findings.len(), "package verified");
        VerifyReport {
            digest: self.manifest.digest.clone(),
            files_checked: files,
            bytes_checked: budget.total,
            findings,
        }
    }

    /// The service definition's bytes, checked against the manifest.
    pub fn service_definition(&mut self) -> Result<Vec<u8>> {
        let index =
            self.slot_index(Slot::ServiceDefinition)
                .ok_or_else(|| PackageError::MissingEntry {
                    entry: CSDEF_NAME.to_owned(),
                })?;
        let record = self.manifest.service_definition.clone();
        let mut out = Vec::new();
        self.copy_entry(
            index,
            CSDEF_NAME,
            record.size,
            &record.sha256,
            &mut Budget::default(),
            &mut out,
        )?;
        Ok(out)
    }

    /// Streams entry `index` into `sink`, checking its size against the
    /// manifest and the limits as bytes arrive, and its SHA-256 at the end.
    pub(crate) fn copy_entry(
        &mut self,
        index: usize,
        name: &str,
        size: u64,
        sha256: &str,
        budget: &mut Budget,
        sink: &mut dyn Write,
    ) -> Result<()> {
        let limits = self.limits;
        if size > limits.max_entry_size {
            return Err(PackageError::LimitExceeded {
                what: "the entry size",
                limit: limits.max_entry_size,
                detail: format!("the manifest gives {name} {size} bytes"),
            });
        }
        let mut file = self
            .archive
            .by_index(index)
            .map_err(|e| PackageError::zip(format!("read {name}"), e))?;
        let compressed = file.compressed_size().max(1);
        let mut hasher = Sha256::new();
        let mut produced: u64 = 0;
        let mut buf = vec![0u8; BUF];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(PackageError::Corrupt {
                        entry: name.to_owned(),
                        reason: e.to_string().to_lowercase(),
                    });
                }
            };
            produced += n as u64;
            budget.total += n as u64;
            if produced > size {
                return Err(PackageError::SizeMismatch {
                    entry: name.to_owned(),
                    expected: size,
                    actual: format!("more than {size} bytes"),
                });
            }
            if budget.total > limits.max_total_size {
                return Err(PackageError::LimitExceeded {
                    what: "the total uncompressed size",
                    limit: limits.max_total_size,
                    detail: format!("reached while reading {name}"),
                });
            }
            if produced > limits.ratio_floor && produced / compressed > limits.max_ratio {
                return Err(PackageError::LimitExceeded {
                    what: "the compression ratio",
                    limit: limits.max_ratio,
                    detail: format!("{name} expands {compressed} bytes to more than {produced}"),
                });
            }
            hasher.update(&buf[..n]);
            sink.write_all(&buf[..n])
                .map_err(|e| PackageError::io("write", name, e))?;
        }
        if produced != size {
            return Err(PackageError::SizeMismatch {
                entry: name.to_owned(),
                expected: size,
                actual: format!("{produced} bytes"),
            });
        }
        let actual = hex::encode(hasher.finalize());
        if actual != sha256 {
            return Err(PackageError::HashMismatch {
                entry: name.to_owned(),
                expected: sha256.to_owned(),
                actual,
            });
        }
        Ok(())
    }
}

/// Findings are plain data; rebuild one for keeping (io errors are not
/// `Clone`, structural findings never hold one).
pub(crate) fn clone_finding(f: &PackageError) -> PackageError {
    use PackageError as E;
    match f {
        E::UnsafePath { entry, reason } => E::UnsafePath {
            entry: entry.clone(),
            reason,
        },
        E::DuplicateEntry { entry, other } => E::DuplicateEntry {
            entry: entry.clone(),
            other: other.clone(),
        },
        E::UnlistedEntry { entry } => E::UnlistedEntry {
            entry: entry.clone(),
        },
        E::MissingEntry { entry } => E::MissingEntry {
            entry: entry.clone(),
        },
        E::OverlappingEntries => E::OverlappingEntries,
        E::WrongMode {
            entry,
            expected,
            found,
        } => E::WrongMode {
            entry: entry.clone(),
            expected: expected.clone(),
            found: found.clone(),
        },
        E::SizeMismatch {
            entry,
            expected,
            actual,
        } => E::SizeMismatch {
            entry: entry.clone(),
            expected: *expected,
            actual: actual.clone(),
        },
        E::UnsupportedEntry { entry, reason } => E::UnsupportedEntry {
            entry: entry.clone(),
            reason: reason.clone(),
        },
        other => E::NotAPackage {
            reason: other.to_string(),
        },
    }
}
