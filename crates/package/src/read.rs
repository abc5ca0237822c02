//! Opening a package: the manifest, and the structural check of the archive
//! against it (names, duplicates, kinds, modes, compression) — everything
//! that can be checked without decompressing file contents.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use zip::{CompressionMethod, ZipArchive};

use crate::error::{PackageError, Result};
use crate::limits::Limits;
use crate::manifest::{CSDEF_NAME, Entry, MANIFEST_NAME, Manifest, role_entry_name};
use crate::path::{check_rel_path, normalize};

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// Where a manifest entry lives in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    ServiceDefinition,
    Manifest,
    Role { role: usize, entry: usize },
}

/// An opened package: its manifest, checked, and the archive's structure
/// checked against it. File contents are checked by [`Package::verify`] and
/// while unpacking.
pub struct Package<R: Read + Seek = BufReader<File>> {
    pub(crate) archive: ZipArchive<R>,
    pub(crate) manifest: Manifest,
    pub(crate) limits: Limits,
    /// Archive index of every manifest slot found in the archive.
    pub(crate) index: HashMap<SlotKey, usize>,
    /// Structural problems, in archive order, then missing entries.
    pub(crate) findings: Vec<PackageError>,
}

pub(crate) type SlotKey = (usize, usize);

fn key(slot: Slot) -> SlotKey {
    match slot {
        Slot::ServiceDefinition => (usize::MAX, 0),
        Slot::Manifest => (usize::MAX, 1),
        Slot::Role { role, entry } => (role, entry),
    }
}

impl Package {
    /// Opens the package at `path` with the default [`Limits`].
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_limits(path, Limits::default())
    }

    /// Opens the package at `path`.
    pub fn open_with_limits(path: &Path, limits: Limits) -> Result<Self> {
        let file = File::open(path).map_err(|e| PackageError::io("open", path, e))?;
        Package::from_reader(BufReader::with_capacity(256 << 10, file), limits)
    }
}

impl<R: Read + Seek> Package<R> {
    /// Reads a package from any seekable reader.
    pub fn from_reader(reader: R, limits: Limits) -> Result<Self> {
        let mut archive = ZipArchive::new(reader).map_err(|e| PackageError::NotAPackage {
            reason: e.to_string(),
        })?;
        if archive.len() as u64 > limits.max_entries {
            return Err(PackageError::LimitExceeded {
                what: "the number of entries",
                limit: limits.max_entries,
                detail: format!("the archive has {}", archive.len()),
            });
        }
        let manifest = read_manifest(&mut archive, &limits)?;
        let mut package = Package {
            archive,
            manifest,
            limits,
            index: HashMap::new(),
            findings: Vec::new(),
        };
        package.check_structure();
        Ok(package)
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The package digest.
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// Structural problems found when opening (empty for a sound package).
    pub fn structural_findings(&self) -> &[PackageError] {
        &self.findings
    }

    pub(crate) fn slot_index(&self, slot: Slot) -> Option<usize> {
        self.index.get(&key(slot)).copied()
    }

    fn check_structure(&mut self) {
        let mut expected: HashMap<String, Slot> = HashMap::new();
        expected.insert(CSDEF_NAME.to_owned(), Slot::ServiceDefinition);
        expected.insert(MANIFEST_NAME.to_owned(), Slot::Manifest);
        for (r, role) in self.manifest.roles.iter().enumerate() {
            for (e, entry) in role.entries.iter().enumerate() {
                expected.insert(
                    role_entry_name(&role.name, entry.path(), false),
                    Slot::Role { role: r, entry: e },
                );
            }
        }
        if self.archive.has_duplicate_names() {
            self.findings.push(PackageError::DuplicateEntry {
                entry: "names in the archive's central directory".to_owned(),
                other: None,
            });
        }
        match self.archive.has_overlapping_entries() {
            Ok(false) => {}
            Ok(true) => self.findings.push(PackageError::OverlappingEntries),
            Err(e) => self.findings.push(PackageError::NotAPackage {
                reason: e.to_string(),
            }),
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        for i in 0..self.archive.len() {
            let entry = match self.archive.by_index_raw(i) {
                Ok(entry) => entry,
                Err(e) => {
                    self.findings.push(PackageError::NotAPackage {
                        reason: format!("entry #{i} is unreadable: {e}"),
                    });
                    continue;
                }
            };
            let Ok(name) = std::str::from_utf8(entry.name_raw()) else {
                self.findings.push(PackageError::UnsafePath {
                    entry: String::from_utf8_lossy(entry.name_raw()).into_owned(),
                    reason: "is not valid UTF-8",
                });
                continue;
            };
            let name = name.to_owned();
            let is_dir_name = name.ends_with('/');
            let bare = name.strip_suffix('/').unwrap_or(&name);
            let Some(norm) = normalize(bare) else {
                let reason = if name.starts_with("roles/") {
                    "escapes the approot"
                } else {
                    "escapes the package"
                };
                self.findings.push(PackageError::UnsafePath {
                    entry: name,
                    reason,
                });
                continue;
            };
            if let Some(first) = seen.get(&norm) {
                self.findings.push(PackageError::DuplicateEntry {
                    entry: first.clone(),
                    other: Some(name),
                });
                continue;
            }
            seen.insert(norm.clone(), name.clone());
            if let Err(reason) = check_rel_path(bare) {
                let reason = if reason == "escapes the approot" && !name.starts_with("roles/") {
                    "escapes the package"
                } else {
                    reason
                };
                self.findings.push(PackageError::UnsafePath {
                    entry: name,
                    reason,
                });
                continue;
            }
            if entry.unix_mode().is_some_and(|m| m & S_IFMT == S_IFLNK) {
                self.findings.push(PackageError::UnsafePath {
                    entry: name,
                    reason: "is a symlink; packages do not hold symlinks",
                });
                continue;
            }
            let Some(&slot) = expected.get(&norm) else {
                self.findings
                    .push(PackageError::UnlistedEntry { entry: name });
                continue;
            };
            let want_dir = match slot {
                Slot::Role { role, entry } => {
                    matches!(self.manifest.roles[role].entries[entry], Entry::Dir { .. })
                }
                _ => false,
            };
            let want_mode = match slot {
                Slot::Role { role, entry } => match &self.manifest.roles[role].entries[entry] {
                    Entry::File { mode, .. } => S_IFREG | mode.bits(),
                    Entry::Dir { .. } => S_IFDIR | 0o755,
                },
                _ => S_IFREG | 0o644,
            };
            let describe = |m: u32| format!("{m:06o}");
            match entry.unix_mode() {
                Some(m) if m == want_mode && is_dir_name == want_dir => {}
                Some(m)
                    if m & S_IFMT == 0 && m == want_mode & 0o7777 && !want_dir && !is_dir_name => {}
                found => {
                    self.findings.push(PackageError::WrongMode {
                        entry: name,
                        expected: describe(want_mode),
                        found: found.map_or_else(
                            || "no unix mode".to_owned(),
                            |m| {
                                if is_dir_name != want_dir {
                                    format!(
                                        "{} {}",
                                        if is_dir_name { "directory" } else { "file" },
                                        describe(m)
                                    )
                                } else {
                                    describe(m)
                                }
                            },
                        ),
                    });
                    continue;
                }
            }
            if entry.encrypted() {
                self.findings.push(PackageError::UnsupportedEntry {
                    entry: name,
                    reason: "it is encrypted".to_owned(),
                });
                continue;
            }
            let method = entry.compression();
            if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
                self.findings.push(PackageError::UnsupportedEntry {
                    entry: name,
                    reason: format!(
                        "compression method {method} (only stored and deflated are read)"
                    ),
                });
                continue;
            }
            let want_size = match slot {
                Slot::Role { role, entry } => self.manifest.roles[role].entries[entry].size(),
                Slot::ServiceDefinition => self.manifest.service_definition.size,
                Slot::Manifest => entry.size(),
            };
            if entry.size() != want_size {
                self.findings.push(PackageError::SizeMismatch {
                    entry: name,
                    expected: want_size,
                    actual: format!("{} bytes in its zip header", entry.size()),
                });
                continue;
            }
            drop(entry);
            self.index.insert(key(slot), i);
        }
        if self.slot_index(Slot::ServiceDefinition).is_none()
            && !self.findings.iter().any(|f| finding_names(f, CSDEF_NAME))
        {
            self.findings.push(PackageError::MissingEntry {
                entry: CSDEF_NAME.to_owned(),
            });
        }
        for (r, role) in self.manifest.roles.iter().enumerate() {
            for (e, entry) in role.entries.iter().enumerate() {
                if !self
                    .index
                    .contains_key(&key(Slot::Role { role: r, entry: e }))
                {
                    let name = role_entry_name(
                        &role.name,
                        entry.path(),
                        matches!(entry, Entry::Dir { .. }),
                    );
                    if !self.findings.iter().any(|f| finding_names(f, &name)) {
                        self.findings
                            .push(PackageError::MissingEntry { entry: name });
                    }
                }
            }
        }
    }
}

/// Whether an earlier finding already concerns the entry `name` (so it is
/// not also reported as missing).
fn finding_names(finding: &PackageError, name: &str) -> bool {
    let bare = name.strip_suffix('/').unwrap_or(name);
    match finding {
        PackageError::WrongMode { entry, .. }
        | PackageError::UnsupportedEntry { entry, .. }
        | PackageError::SizeMismatch { entry, .. }
        | PackageError::UnsafePath { entry, .. } => {
            entry.strip_suffix('/').unwrap_or(entry) == bare
        }
        _ => false,
    }
}

fn read_manifest<R: Read + Seek>(archive: &mut ZipArchive<R>, limits: &Limits) -> Result<Manifest> {
    let missing = || PackageError::InvalidManifest {
        reason: format!("the archive has no {MANIFEST_NAME}"),
    };
    let index = archive.index_for_name(MANIFEST_NAME).ok_or_else(missing)?;
    let mut file = archive
        .by_index(index)
        .map_err(|e| PackageError::InvalidManifest {
            reason: format!("cannot read {MANIFEST_NAME}: {e}"),
        })?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(limits.max_manifest_size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| PackageError::InvalidManifest {
            reason: format!("cannot read {MANIFEST_NAME}: {e}"),
        })?;
    if bytes.len() as u64 > limits.max_manifest_size {
        return Err(PackageError::LimitExceeded {
            what: "the manifest size",
            limit: limits.max_manifest_size,
            detail: format!("{MANIFEST_NAME} is larger"),
        });
    }
    Manifest::parse(&bytes)
}
