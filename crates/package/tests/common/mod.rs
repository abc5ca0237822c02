//! Helpers shared by the package tests: source trees, snapshots of unpacked
//! trees, and hand-crafted archives.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use weft_package::{
    BuildOptions, Entry, FileMode, Manifest, PackageSpec, RoleSource, ServiceDefinitionRecord,
};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

pub const CSDEF: &[u8] = b"<ServiceDefinition name=\"hello\"/>\n";

/// Writes files (`path` -> (content, executable)) and empty dirs (`path/`).
pub fn make_tree(root: &Path, files: &[(&str, &[u8], bool)]) {
    fs::create_dir_all(root).unwrap();
    for (path, content, exec) in files {
        let p = root.join(path);
        if path.ends_with('/') {
            fs::create_dir_all(&p).unwrap();
            continue;
        }
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(
            &p,
            fs::Permissions::from_mode(if *exec { 0o755 } else { 0o644 }),
        )
        .unwrap();
    }
}

/// A tree as a user sees it: path -> ("dir" | mode and content).
pub fn snapshot(root: &Path) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for dent in walkdir::WalkDir::new(root).min_depth(1) {
        let dent = dent.unwrap();
        let rel = dent
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let meta = dent.metadata().unwrap();
        if meta.is_dir() {
            out.insert(rel, ("dir".to_owned(), Vec::new()));
        } else {
            let exec = meta.permissions().mode() & 0o111 != 0;
            out.insert(
                rel,
                (
                    if exec { "exec" } else { "file" }.to_owned(),
                    fs::read(dent.path()).unwrap(),
                ),
            );
        }
    }
    out
}

pub fn spec(roles: &[(&str, &Path)]) -> PackageSpec {
    PackageSpec {
        service_definition: CSDEF.to_vec(),
        roles: roles
            .iter()
            .map(|(n, d)| RoleSource {
                name: (*n).to_owned(),
                dir: d.to_path_buf(),
            })
            .collect(),
    }
}

pub fn build(roles: &[(&str, &Path)], out: &Path) -> Manifest {
    weft_package::build_package(&spec(roles), out, &BuildOptions::default()).unwrap()
}

/// Every path under `root`, to prove nothing else was written.
pub fn all_paths(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir_paths(root);
    v.sort();
    v
}

fn walkdir_paths(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|d| d.unwrap().path().strip_prefix(root).unwrap().to_path_buf())
        .collect()
}

pub fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// One entry of a hand-made archive.
pub enum Raw {
    /// name, content, unix permissions
    File(&'static str, Vec<u8>, u32),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
}

/// A manifest entry for a file, from its content.
pub fn file_entry(path: &str, content: &[u8], mode: FileMode) -> Entry {
    Entry::File {
        path: path.to_owned(),
        size: content.len() as u64,
        sha256: sha(content),
        mode,
    }
}

/// A consistent manifest for the role `Web` with `entries`.
pub fn manifest(entries: Vec<Entry>) -> Manifest {
    Manifest::new(
        ServiceDefinitionRecord {
            size: CSDEF.len() as u64,
            sha256: sha(CSDEF),
        },
        vec![("Web".to_owned(), entries)],
    )
}

/// Writes the csdef, `entries` and a manifest (JSON text) into a zip.
pub fn craft(entries: Vec<Raw>, manifest_json: &str) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .last_modified_time(DateTime::default())
        .system(zip::System::Unix)
        .compression_method(CompressionMethod::Deflated);
    zip.start_file("ServiceDefinition.csdef", opts.unix_permissions(0o644))
        .unwrap();
    zip.write_all(CSDEF).unwrap();
    for e in entries {
        match e {
            Raw::File(name, data, mode) => {
                zip.start_file(name, opts.unix_permissions(mode)).unwrap();
                zip.write_all(&data).unwrap();
            }
            Raw::Dir(name) => zip
                .add_directory(name, opts.unix_permissions(0o755))
                .unwrap(),
            Raw::Symlink(name, target) => zip.add_symlink(name, target, opts).unwrap(),
        }
    }
    zip.start_file("manifest.json", opts.unix_permissions(0o644))
        .unwrap();
    zip.write_all(manifest_json.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

pub fn json(m: &Manifest) -> String {
    serde_json::to_string(m).unwrap()
}

/// Replaces every occurrence of `from` by `to` (same length) in raw bytes.
pub fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    n
}
