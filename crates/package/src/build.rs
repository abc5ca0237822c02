//! Building a package: walk each role directory, hash and compress files in
//! parallel, write a reproducible ZIP (fixed timestamps, sorted entries,
//! normalised modes, fixed compression level), manifest last.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::{SimpleFileOptions, ZipFileBuilder};
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::{PackageError, Result};
use crate::manifest::{
    CSDEF_NAME, Entry, FileMode, MANIFEST_NAME, Manifest, ServiceDefinitionRecord, role_entry_name,
};
use crate::parallel::ordered_map;
use crate::path::{check_rel_path, check_role_name};

/// The deflate level every package uses (the same as `zip -6`).
pub const COMPRESSION_LEVEL: i64 = 6;
/// Files up to this size are read whole into memory by a worker.
const WHOLE_FILE_MAX: u64 = 8 << 20;
/// Files larger than this are streamed by the writer thread instead of being
/// compressed into memory by a worker; so are stored (incompressible) files
/// larger than [`WHOLE_FILE_MAX`], which cost nothing but I/O to write.
const IN_MEMORY_MAX: u64 = 128 << 20;
/// Bytes of source files compressed ahead of the writer at most.
const WINDOW_BYTES: u64 = 192 << 20;
/// The sample deflated to decide whether a file is worth compressing.
const SAMPLE: usize = 64 << 10;
/// Read buffer for streamed files.
const CHUNK: usize = 256 << 10;

/// One role to package: its name and the directory that becomes its approot.
#[derive(Debug, Clone)]
pub struct RoleSource {
    pub name: String,
    pub dir: PathBuf,
}

/// What to package.
#[derive(Debug, Clone)]
pub struct PackageSpec {
    /// The service definition, stored verbatim.
    pub service_definition: Vec<u8>,
    pub roles: Vec<RoleSource>,
}

/// How to package.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Worker threads for hashing and compressing; 0 means one per CPU.
    pub threads: usize,
    /// Package what a symlink points to instead of refusing it (`weft up`
    /// and `weft package --follow-symlinks`). The package itself still holds
    /// no symlink; a dangling link or a loop is an error.
    pub follow_symlinks: bool,
}

/// One planned archive entry.
struct Item {
    role: String,
    rel: String,
    src: PathBuf,
    kind: ItemKind,
}

enum ItemKind {
    Dir,
    File { size: u64, mode: FileMode },
}

/// What a worker hands the writer for one item.
enum Prepared {
    Dir,
    File {
        zip: Box<zip::write::PreparedZipFile>,
        sha256: String,
        size: u64,
    },
    /// Too large to hold in memory: the writer streams it.
    Stream,
}

/// Builds a package at `output`. The file is written beside it and renamed
/// into place, so `output` is either the complete package or untouched.
pub fn build_package(
    spec: &PackageSpec,
    output: &Path,
    options: &BuildOptions,
) -> Result<Manifest> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".weft-package-")
        .tempfile_in(dir)
        .map_err(|e| PackageError::io("create a temporary file in", dir, e))?;
    let manifest = write_package(
        spec,
        BufWriter::with_capacity(1 << 20, tmp.as_file()),
        options,
    )?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|e| PackageError::io("set permissions on", tmp.path(), e))?;
    tmp.persist(output)
        .map_err(|e| PackageError::io("write", output, e.error))?;
    tracing::info!(output = %output.display(), digest = %manifest.digest, files = manifest.file_count(), "package built");
    Ok(manifest)
}

/// Writes a package to `writer` and returns its manifest.
pub fn write_package<W: Write + Seek>(
    spec: &PackageSpec,
    writer: W,
    options: &BuildOptions,
) -> Result<Manifest> {
    let mut names = BTreeSet::new();
    for role in &spec.roles {
        check_role_name(&role.name).map_err(|reason| PackageError::InvalidRoleName {
            name: role.name.clone(),
            reason,
        })?;
        if !names.insert(role.name.as_str()) {
            return Err(PackageError::DuplicateRole {
                name: role.name.clone(),
            });
        }
    }
    let mut roles: Vec<&RoleSource> = spec.roles.iter().collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    let mut items = Vec::new();
    for role in roles {
        items.extend(plan_role(role, options.follow_symlinks)?);
    }

    let mut zip = ZipWriter::new(writer);
    let csdef = &spec.service_definition;
    zip.start_file(
        CSDEF_NAME,
        file_options(FileMode::Regular, deflate_pays(csdef)),
    )
    .map_err(|e| PackageError::zip("write the service definition", e))?;
    zip.write_all(csdef)
        .map_err(|e| PackageError::io("write", CSDEF_NAME, e))?;
    let csdef_record = ServiceDefinitionRecord {
        size: csdef.len() as u64,
        sha256: hex::encode(Sha256::digest(csdef)),
    };

    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut role_entries: Vec<(String, Vec<Entry>)> = Vec::new();
    ordered_map(
        &items,
        threads,
        WINDOW_BYTES,
        |item| match item.kind {
            ItemKind::File { size, .. } if size <= IN_MEMORY_MAX => size,
            _ => 0,
        },
        prepare,
        |item, prepared| {
            let entry = write_item(&mut zip, item, prepared?)?;
            match role_entries.last_mut() {
                Some((name, entries)) if *name == item.role => entries.push(entry),
                _ => role_entries.push((item.role.clone(), vec![entry])),
            }
            Ok(())
        },
    )?;
    // Roles with empty approots still belong in the manifest.
    for role in &spec.roles {
        if !role_entries.iter().any(|(n, _)| *n == role.name) {
            role_entries.push((role.name.clone(), Vec::new()));
        }
    }
    role_entries.sort_by(|a, b| a.0.cmp(&b.0));

    let manifest = Manifest::new(csdef_record, role_entries);
    let mut json = serde_json::to_vec_pretty(&manifest).expect("a manifest always serialises");
    json.push(b'\n');
    zip.start_file(MANIFEST_NAME, file_options(FileMode::Regular, true))
        .map_err(|e| PackageError::zip("write the manifest", e))?;
    zip.write_all(&json)
        .map_err(|e| PackageError::io("write", MANIFEST_NAME, e))?;
    let mut inner = zip
        .finish()
        .map_err(|e| PackageError::zip("finish the package", e))?;
    inner
        .flush()
        .map_err(|e| PackageError::io("write", "the package", e))?;
    Ok(manifest)
}

/// The fixed per-entry options: 1980-01-01 timestamps, Unix, mode, level 6.
fn file_options(mode: FileMode, deflate: bool) -> SimpleFileOptions {
    let options = SimpleFileOptions::default()
        .last_modified_time(DateTime::default())
        .system(zip::System::Unix)
        .unix_permissions(mode.bits());
    if deflate {
        options
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(COMPRESSION_LEVEL))
    } else {
        options.compression_method(CompressionMethod::Stored)
    }
}

fn dir_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .last_modified_time(DateTime::default())
        .system(zip::System::Unix)
        .unix_permissions(0o755)
}

/// Whether deflating `sample` saves at least 5 %: a cheap test that spots
/// already-compressed or random data, decided by content alone so the
/// result is reproducible.
fn deflate_pays(sample: &[u8]) -> bool {
    if sample.is_empty() {
        return false;
    }
    let sample = &sample[..sample.len().min(SAMPLE)];
    let mut out = Vec::with_capacity(sample.len() + 64);
    let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
    if c.compress_vec(sample, &mut out, flate2::FlushCompress::Finish)
        .is_err()
    {
        return true;
    }
    (out.len() as u64) * 100 < (sample.len() as u64) * 95
}

/// Lists a role's directories and files, sorted by path, refusing what a
/// package cannot hold.
fn plan_role(role: &RoleSource, follow_symlinks: bool) -> Result<Vec<Item>> {
    let role_err = |e: io::Error| PackageError::RoleDir {
        role: role.name.clone(),
        path: role.dir.clone(),
        cause: e,
    };
    let meta = fs::metadata(&role.dir).map_err(role_err)?;
    if !meta.is_dir() {
        return Err(role_err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let mut items = Vec::new();
    for dent in walkdir::WalkDir::new(&role.dir)
        .min_depth(1)
        .follow_links(follow_symlinks)
    {
        let dent = dent.map_err(|e| {
            let path = e.path().unwrap_or(&role.dir).to_path_buf();
            if let Some(io) = e.io_error()
                && io.kind() == io::ErrorKind::NotFound
                && fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
            {
                return PackageError::DanglingSymlink {
                    role: role.name.clone(),
                    target: fs::read_link(&path).unwrap_or_default(),
                    path,
                };
            }
            PackageError::RoleDir {
                role: role.name.clone(),
                path,
                cause: e.into(),
            }
        })?;
        let path = dent.path();
        let rel = path
            .strip_prefix(&role.dir)
            .expect("walkdir stays under its root");
        let Some(rel_str) = rel.to_str() else {
            return Err(PackageError::InvalidFileName {
                role: role.name.clone(),
                path: path.to_path_buf(),
                reason: "it is not valid UTF-8",
            });
        };
        check_rel_path(rel_str).map_err(|reason| PackageError::InvalidFileName {
            role: role.name.clone(),
            path: path.to_path_buf(),
            reason,
        })?;
        let ft = dent.file_type();
        let kind = if ft.is_dir() {
            ItemKind::Dir
        } else if ft.is_file() {
            let meta = dent.metadata().map_err(|e| PackageError::RoleDir {
                role: role.name.clone(),
                path: path.to_path_buf(),
                cause: e.into(),
            })?;
            ItemKind::File {
                size: meta.len(),
                mode: FileMode::from_source_bits(meta.permissions().mode()),
            }
        } else if ft.is_symlink() {
            return Err(PackageError::Symlink {
                role: role.name.clone(),
                path: path.to_path_buf(),
                target: fs::read_link(path).unwrap_or_default(),
            });
        } else {
            let kind = if ft.is_socket() {
                "socket"
            } else if ft.is_fifo() {
                "named pipe"
            } else if ft.is_block_device() {
                "block device"
            } else if ft.is_char_device() {
                "character device"
            } else {
                "special file"
            };
            return Err(PackageError::UnsupportedFileType {
                role: role.name.clone(),
                path: path.to_path_buf(),
                kind,
            });
        };
        items.push(Item {
            role: role.name.clone(),
            rel: rel_str.to_owned(),
            src: path.to_path_buf(),
            kind,
        });
    }
    items.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(items)
}

/// Whether to deflate a file of `size` bytes that starts with `head` (its
/// first [`SAMPLE`] bytes, or all of it). Depends on content only.
fn should_deflate(size: u64, head: &[u8]) -> bool {
    if size <= SAMPLE as u64 {
        // Small: deflate, and store instead if that did not help.
        size > 0
    } else {
        deflate_pays(head)
    }
}

/// Reads up to `buf.len()` bytes, fewer only at end of file.
fn read_full(file: &mut File, buf: &mut [u8], src: &Path) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(PackageError::io("read", src, e)),
        }
    }
    Ok(filled)
}

/// Worker side: read, hash and compress one file into memory, or leave it
/// to the writer to stream.
fn prepare(item: &Item) -> Result<Prepared> {
    let ItemKind::File { size, mode } = item.kind else {
        return Ok(Prepared::Dir);
    };
    if size > IN_MEMORY_MAX {
        return Ok(Prepared::Stream);
    }
    let changed = |actual: u64| PackageError::FileChanged {
        role: item.role.clone(),
        path: item.src.clone(),
        expected: size,
        actual,
    };
    let name = role_entry_name(&item.role, &item.rel, false);
    let builder = |deflate: bool| {
        ZipFileBuilder::new(&name, file_options(mode, deflate))
            .map_err(|e| PackageError::zip(format!("compress {name}"), e))
    };
    let finish = |b: ZipFileBuilder| {
        b.finish()
            .map_err(|e| PackageError::zip(format!("compress {name}"), e))
    };
    let mut file = File::open(&item.src).map_err(|e| PackageError::io("read", &item.src, e))?;

    if size <= WHOLE_FILE_MAX {
        let mut data = Vec::with_capacity(size as usize + 1);
        (&mut file)
            .take(size + 1)
            .read_to_end(&mut data)
            .map_err(|e| PackageError::io("read", &item.src, e))?;
        if data.len() as u64 != size {
            return Err(changed(data.len() as u64));
        }
        let compress = |deflate: bool| -> Result<zip::write::PreparedZipFile> {
            let mut b = builder(deflate)?;
            b.write_all(&data)
                .map_err(|e| PackageError::io("compress", &item.src, e))?;
            finish(b)
        };
        let deflate = should_deflate(size, &data[..data.len().min(SAMPLE)]);
        let mut zip = compress(deflate)?;
        if deflate && zip.compressed_size() >= zip.uncompressed_size() {
            // Deflate did not help after all (typical for tiny files): store.
            zip = compress(false)?;
        }
        return Ok(Prepared::File {
            zip: Box::new(zip),
            sha256: hex::encode(Sha256::digest(&data)),
            size,
        });
    }

    // Medium files: stream from disk into an in-memory deflate stream.
    let mut buf = vec![0u8; CHUNK];
    let head = read_full(&mut file, &mut buf[..SAMPLE], &item.src)?;
    if !should_deflate(size, &buf[..head]) {
        return Ok(Prepared::Stream);
    }
    let mut b = builder(true)?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut n = head;
    while n > 0 {
        hasher.update(&buf[..n]);
        b.write_all(&buf[..n])
            .map_err(|e| PackageError::io("compress", &item.src, e))?;
        total += n as u64;
        n = read_full(&mut file, &mut buf, &item.src)?;
    }
    if total != size {
        return Err(changed(total));
    }
    Ok(Prepared::File {
        zip: Box::new(finish(b)?),
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

/// Writer side: append one item to the archive and return its manifest entry.
fn write_item<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    item: &Item,
    prepared: Prepared,
) -> Result<Entry> {
    let name_of = |is_dir| role_entry_name(&item.role, &item.rel, is_dir);
    match (prepared, &item.kind) {
        (Prepared::Dir, _) => {
            zip.add_directory(name_of(true), dir_options())
                .map_err(|e| PackageError::zip(format!("write {}", name_of(true)), e))?;
            Ok(Entry::Dir {
                path: item.rel.clone(),
            })
        }
        (
            Prepared::File {
                zip: file,
                sha256,
                size,
            },
            ItemKind::File { mode, .. },
        ) => {
            zip.add_prepared_file(*file)
                .map_err(|e| PackageError::zip(format!("write {}", name_of(false)), e))?;
            Ok(Entry::File {
                path: item.rel.clone(),
                size,
                sha256,
                mode: *mode,
            })
        }
        (Prepared::Stream, ItemKind::File { size, mode }) => stream_file(zip, item, *size, *mode),
        (Prepared::File { .. } | Prepared::Stream, ItemKind::Dir) => {
            unreachable!("workers only prepare files for file items")
        }
    }
}

/// Streams a large file into the archive, hashing as it goes: memory stays
/// bounded by the chunk size.
fn stream_file<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    item: &Item,
    size: u64,
    mode: FileMode,
) -> Result<Entry> {
    let name = role_entry_name(&item.role, &item.rel, false);
    let mut file = File::open(&item.src).map_err(|e| PackageError::io("read", &item.src, e))?;
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    while filled < SAMPLE {
        let n = file
            .read(&mut buf[filled..SAMPLE])
            .map_err(|e| PackageError::io("read", &item.src, e))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let options =
        file_options(mode, deflate_pays(&buf[..filled])).large_file(size >= u32::MAX as u64);
    zip.start_file(&name, options)
        .map_err(|e| PackageError::zip(format!("write {name}"), e))?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut n = filled;
    while n > 0 {
        hasher.update(&buf[..n]);
        zip.write_all(&buf[..n])
            .map_err(|e| PackageError::io("write", &item.src, e))?;
        total += n as u64;
        n = read_full(&mut file, &mut buf, &item.src)?;
    }
    if total != size {
        return Err(PackageError::FileChanged {
            role: item.role.clone(),
            path: item.src.clone(),
            expected: size,
            actual: total,
        });
    }
    Ok(Entry::File {
        path: item.rel.clone(),
        size,
        sha256: hex::encode(hasher.finalize()),
        mode,
    })
}
