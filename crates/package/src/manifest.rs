//! The manifest (`manifest.json`): what a package holds, with every file's
//! size, SHA-256 and mode, per-role digests and the package digest. Pure data:
//! no I/O here.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{PackageError, Result};
use crate::path::{check_rel_path, check_role_name};

/// The `format` field of every manifest.
pub const FORMAT_NAME: &str = "weft-cspkg";
/// The manifest format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Archive name of the manifest (the archive's last entry).
pub const MANIFEST_NAME: &str = "manifest.json";
/// Archive name of the service definition (the archive's first entry).
pub const CSDEF_NAME: &str = "ServiceDefinition.csdef";

/// The archive name of a role's approot entry.
pub fn role_entry_name(role: &str, path: &str, is_dir: bool) -> String {
    format!(
        "roles/{role}/approot/{path}{}",
        if is_dir { "/" } else { "" }
    )
}

/// A file's mode, normalised: packages only know these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileMode {
    /// `0644`.
    Regular,
    /// `0755`: any execute bit was set on the source file.
    Executable,
}

impl FileMode {
    /// The Unix permission bits.
    pub fn bits(self) -> u32 {
        match self {
            FileMode::Regular => 0o644,
            FileMode::Executable => 0o755,
        }
    }

    /// The mode for a source file's permission bits.
    pub fn from_source_bits(bits: u32) -> Self {
        if bits & 0o111 != 0 {
            FileMode::Executable
        } else {
            FileMode::Regular
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            FileMode::Regular => "0644",
            FileMode::Executable => "0755",
        }
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FileMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "0644" => Ok(FileMode::Regular),
            "0755" => Ok(FileMode::Executable),
            other => Err(serde::de::Error::custom(format!(
                "mode {other:?} is neither \"0644\" nor \"0755\""
            ))),
        }
    }
}

/// One entry of a role's approot, path relative to the approot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Entry {
    /// A regular file.
    File {
        path: String,
        size: u64,
        sha256: String,
        mode: FileMode,
    },
    /// A directory (every directory is listed, so empty ones survive).
    Dir { path: String },
}

impl Entry {
    /// The path relative to the approot.
    pub fn path(&self) -> &str {
        match self {
            Entry::File { path, .. } | Entry::Dir { path } => path,
        }
    }

    /// The file size, 0 for directories.
    pub fn size(&self) -> u64 {
        match self {
            Entry::File { size, .. } => *size,
            Entry::Dir { .. } => 0,
        }
    }
}

/// The service definition's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDefinitionRecord {
    pub size: u64,
    pub sha256: String,
}

/// One role: its name, digest and approot entries sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleManifest {
    pub name: String,
    pub digest: String,
    pub entries: Vec<Entry>,
}

impl RoleManifest {
    /// Total bytes of the role's files.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(Entry::size).sum()
    }

    /// The role digest over its entries, as FORMAT.md defines it.
    pub fn compute_digest(entries: &[Entry]) -> String {
        let mut h = Sha256::new();
        h.update(b"weft-cspkg-role/1\n");
        for entry in entries {
            let line = match entry {
                Entry::File {
                    path,
                    size,
                    sha256,
                    mode,
                } => format!("F {mode} {size} {sha256} {path}\n"),
                Entry::Dir { path } => format!("D {path}\n"),
            };
            h.update(line.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// The whole manifest, as stored in `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The package digest (see [`Manifest::compute_digest`]).
    pub digest: String,
    pub service_definition: ServiceDefinitionRecord,
    /// Roles sorted by name.
    pub roles: Vec<RoleManifest>,
}

impl Manifest {
    /// Builds a manifest, computing the role digests and the package digest.
    /// `roles` must already be sorted and valid (the builder guarantees it).
    pub fn new(
        service_definition: ServiceDefinitionRecord,
        roles: Vec<(String, Vec<Entry>)>,
    ) -> Self {
        let roles: Vec<RoleManifest> = roles
            .into_iter()
            .map(|(name, entries)| RoleManifest {
                digest: RoleManifest::compute_digest(&entries),
                name,
                entries,
            })
            .collect();
        let digest = Self::compute_digest(&service_definition, &roles);
        Manifest {
            format: FORMAT_NAME.to_owned(),
            version: FORMAT_VERSION,
            digest,
            service_definition,
            roles,
        }
    }

    /// The package digest over the service definition record and the role
    /// digests, as FORMAT.md defines it.
    pub fn compute_digest(csdef: &ServiceDefinitionRecord, roles: &[RoleManifest]) -> String {
        let mut h = Sha256::new();
        h.update(b"weft-cspkg/1\n");
        h.update(format!("S {} {} {CSDEF_NAME}\n", csdef.size, csdef.sha256).as_bytes());
        for role in roles {
            h.update(format!("R {} {}\n", role.digest, role.name).as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The role called `name`.
    pub fn role(&self, name: &str) -> Option<&RoleManifest> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// Number of files over all roles.
    pub fn file_count(&self) -> usize {
        self.roles
            .iter()
            .flat_map(|r| &r.entries)
            .filter(|e| matches!(e, Entry::File { .. }))
            .count()
    }

    /// Total bytes: the service definition plus every role file.
    pub fn total_size(&self) -> u64 {
        self.service_definition.size + self.roles.iter().map(RoleManifest::total_size).sum::<u64>()
    }

    /// Parses and checks a manifest: known format and version, safe and
    /// sorted unique paths, well-formed hashes, digests that match.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let invalid = |reason: String| PackageError::InvalidManifest { reason };
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if manifest.format != FORMAT_NAME {
            return Err(invalid(format!(
                "format is {:?}, expected {FORMAT_NAME:?}",
                manifest.format
            )));
        }
        if manifest.version != FORMAT_VERSION {
            return Err(PackageError::UnsupportedVersion {
                found: manifest.version,
                supported: FORMAT_VERSION,
            });
        }
        check_hash(&manifest.service_definition.sha256)
            .map_err(|r| invalid(format!("service definition sha256 {r}")))?;
        let mut previous_role: Option<&str> = None;
        for role in &manifest.roles {
            check_role_name(&role.name)
                .map_err(|r| invalid(format!("role name {:?}: {r}", role.name)))?;
            if previous_role.is_some_and(|p| p >= role.name.as_str()) {
                return Err(invalid(format!(
                    "roles are not sorted and unique at {}",
                    role.name
                )));
            }
            previous_role = Some(&role.name);
            check_entries(role).map_err(invalid)?;
            let digest = RoleManifest::compute_digest(&role.entries);
            if digest != role.digest {
                return Err(invalid(format!(
                    "role {} digest is {}, its entries give {digest}",
                    role.name, role.digest
                )));
            }
        }
        let digest = Self::compute_digest(&manifest.service_definition, &manifest.roles);
        if digest != manifest.digest {
            return Err(invalid(format!(
                "package digest is {}, its roles give {digest}",
                manifest.digest
            )));
        }
        Ok(manifest)
    }
}

fn check_hash(h: &str) -> Result<(), &'static str> {
    if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err("is not 64 lower-case hex digits")
    }
}

fn check_entries(role: &RoleManifest) -> Result<(), String> {
    let mut previous: Option<&str> = None;
    let mut dirs = BTreeSet::new();
    let mut files = BTreeSet::new();
    for entry in &role.entries {
        let path = entry.path();
        let name = role_entry_name(&role.name, path, false);
        check_rel_path(path).map_err(|r| format!("entry {name} {r}"))?;
        if previous.is_some_and(|p| p >= path) {
            return Err(format!(
                "entries of role {} are not sorted and unique at {name}",
                role.name
            ));
        }
        previous = Some(path);
        if let Entry::File { sha256, .. } = entry {
            check_hash(sha256).map_err(|r| format!("entry {name} sha256 {r}"))?;
            files.insert(path);
        } else {
            dirs.insert(path);
        }
    }
    // A file cannot also be a directory on the way to another entry.
    for entry in &role.entries {
        let path = entry.path();
        let mut parent = path;
        while let Some((p, _)) = parent.rsplit_once('/') {
            if files.contains(p) {
                return Err(format!(
                    "entry {} is inside {}, which is a file",
                    role_entry_name(&role.name, path, false),
                    role_entry_name(&role.name, p, false)
                ));
            }
            parent = p;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let h = "a".repeat(64);
        Manifest::new(
            ServiceDefinitionRecord {
                size: 3,
                sha256: h.clone(),
            },
            vec![(
                "Web".into(),
                vec![
                    Entry::Dir { path: "bin".into() },
                    Entry::File {
                        path: "bin/app".into(),
                        size: 10,
                        sha256: h,
                        mode: FileMode::Executable,
                    },
                ],
            )],
        )
    }

    #[test]
    fn round_trips_through_json() {
        let m = sample();
        let json = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&json).unwrap(), m);
    }

    #[test]
    fn digest_is_pinned() {
        // The digest definition is part of the format: changing it breaks
        // every stored package digest.
        assert_eq!(
            sample().digest,
            Manifest::compute_digest(&sample().service_definition, &sample().roles)
        );
        insta_free_pin(&sample().roles[0].digest);
    }

    fn insta_free_pin(role_digest: &str) {
        let mut h = Sha256::new();
        h.update(b"weft-cspkg-role/1\nD bin\nF 0755 10 ");
        h.update("a".repeat(64).as_bytes());
        h.update(b" bin/app\n");
        assert_eq!(role_digest, hex::encode(h.finalize()));
    }

    #[test]
    fn refuses_tampered_digest_and_bad_paths() {
        let mut m = sample();
        m.digest = "b".repeat(64);
        let err = Manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid manifest: package digest is bbbb"),
            "{err}"
        );

        let mut m = sample();
        m.roles[0].entries[0] = Entry::Dir {
            path: "../bin".into(),
        };
        let err = Manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid manifest: entry roles/Web/approot/../bin escapes the approot"
        );

        let json = serde_json::to_string(&sample())
            .unwrap()
            .replace("0755", "4755");
        let err = Manifest::parse(json.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("mode \"4755\" is neither"),
            "{err}"
        );
    }
}
