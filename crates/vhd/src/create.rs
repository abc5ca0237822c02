//! Creating fixed, dynamic and differencing images.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use uuid::Uuid;

use crate::bat;
use crate::error::{Result, VhdError};
use crate::footer::{
    DiskType, FEATURE_RESERVED, FOOTER_SIZE, Footer, NO_DATA_OFFSET, vhd_timestamp,
};
use crate::geometry::{Geometry, SECTOR};
use crate::header::{
    DEFAULT_BLOCK_SIZE, DynamicHeader, HEADER_SIZE, PLATFORM_W2KU, PLATFORM_W2RU, ParentLocator,
    encode_locator_path,
};
use crate::image::{MAX_SPARSE_SIZE, OpenOptions, VhdImage};

/// Creator application weft writes in the footer.
pub const CREATOR_APP: [u8; 4] = *b"weft";
/// Creator host OS weft writes ("Wi2k": the only non-Mac value the
/// specification defines; qemu-img writes the same).
pub const CREATOR_HOST_OS: [u8; 4] = *b"Wi2k";

/// How a requested size maps onto the footer's size and CHS geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SizePolicy {
    /// Round the size up to the smallest size the specification's CHS
    /// geometry describes exactly (what Virtual PC and qemu-img do), so that
    /// readers using the geometry and readers using the footer's current
    /// size agree.
    #[default]
    RoundUpToGeometry,
    /// Keep the size (rounded up to a whole sector). When the geometry cannot
    /// describe it, the maximum geometry (65535/16/255) is written, which
    /// qemu and others read as "take the current size from the footer" (the
    /// convention of `qemu-img create -o force_size=on`).
    Exact,
}

/// Options for a new fixed or dynamic image.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub disk_type: DiskType,
    pub size: u64,
    pub block_size: u32,
    pub size_policy: SizePolicy,
    pub unique_id: Option<Uuid>,
}

impl CreateOptions {
    pub fn dynamic(size: u64) -> CreateOptions {
        CreateOptions {
            disk_type: DiskType::Dynamic,
            size,
            block_size: DEFAULT_BLOCK_SIZE,
            size_policy: SizePolicy::default(),
            unique_id: None,
        }
    }
    pub fn fixed(size: u64) -> CreateOptions {
        CreateOptions {
            disk_type: DiskType::Fixed,
            ..CreateOptions::dynamic(size)
        }
    }
}

/// The size and geometry a request ends up with under a policy.
pub fn resolve_size(size: u64, policy: SizePolicy) -> (Geometry, u64) {
    let (g, rounded) = Geometry::covering(size);
    match policy {
        SizePolicy::RoundUpToGeometry => (g, rounded),
        SizePolicy::Exact => {
            let exact = size.div_ceil(SECTOR) * SECTOR;
            if rounded == exact {
                (g, exact)
            } else {
                (Geometry::MAX, exact)
            }
        }
    }
}

fn new_footer(disk_type: DiskType, size: u64, geometry: Geometry, id: Uuid) -> Footer {
    Footer {
        features: FEATURE_RESERVED,
        data_offset: if disk_type.is_sparse() {
            FOOTER_SIZE as u64
        } else {
            NO_DATA_OFFSET
        },
        timestamp: vhd_timestamp(std::time::SystemTime::now()),
        creator_app: CREATOR_APP,
        creator_version: 0x0001_0000,
        creator_host_os: CREATOR_HOST_OS,
        original_size: size,
        current_size: size,
        geometry,
        disk_type,
        unique_id: id,
        saved_state: false,
    }
}

fn create_new(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| VhdError::io("create", path, e))
}

/// Removes a half-written file unless disarmed.
struct Cleanup<'a>(Option<&'a Path>);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn check_block_size(block_size: u32) -> Result<()> {
    if !block_size.is_power_of_two() || !(512..=(256 << 20)).contains(&block_size) {
        return Err(VhdError::InvalidArgument(format!(
            "block size {block_size} is not a power of two between 512 bytes and 256 MiB"
        )));
    }
    Ok(())
}

/// Create a fixed or dynamic image. The file must not exist yet.
pub fn create(path: &Path, options: &CreateOptions) -> Result<VhdImage> {
    if options.disk_type == DiskType::Differencing {
        return Err(VhdError::InvalidArgument(
            "use create_differencing for differencing disks".into(),
        ));
    }
    if options.size == 0 {
        return Err(VhdError::InvalidArgument(
            "disk size must not be zero".into(),
        ));
    }
    let (geometry, size) = resolve_size(options.size, options.size_policy);
    if options.disk_type == DiskType::Dynamic && size > MAX_SPARSE_SIZE {
        return Err(VhdError::InvalidArgument(format!(
            "dynamic disk size {size} is larger than the format's 2040 GiB"
        )));
    }
    let id = options.unique_id.unwrap_or_else(Uuid::new_v4);
    let footer = new_footer(options.disk_type, size, geometry, id);
    let file = create_new(path)?;
    let mut guard = Cleanup(Some(path));
    let opts = OpenOptions {
        writable: true,
        sync_allocations: false,
    };
    let image = if options.disk_type == DiskType::Fixed {
        size.checked_add(FOOTER_SIZE as u64)
            .ok_or_else(|| VhdError::InvalidArgument(format!("disk size {size} is too large")))?;
        file.set_len(size + FOOTER_SIZE as u64)
            .map_err(|e| VhdError::io("extend", path, e))?;
        let image = VhdImage::from_parts(path.into(), file, opts, footer, None, size);
        image.write_footer()?;
        image
    } else {
        check_block_size(options.block_size)?;
        let header = sparse_header(size, options.block_size, Uuid::nil(), 0, String::new());
        write_sparse(path, file, opts, footer, header, &[])?
    };
    image.flush()?;
    guard.0 = None;
    tracing::info!(path = %path.display(), disk_type = %options.disk_type, size, "created vhd");
    Ok(image)
}

fn sparse_header(size: u64, block_size: u32, parent: Uuid, ts: u32, name: String) -> DynamicHeader {
    DynamicHeader {
        table_offset: (FOOTER_SIZE + HEADER_SIZE) as u64,
        max_table_entries: size.div_ceil(u64::from(block_size)) as u32,
        block_size,
        parent_unique_id: parent,
        parent_timestamp: ts,
        parent_name: name,
        locators: Vec::new(),
    }
}

/// Lay out footer copy, header, BAT, locator data and the trailing footer.
fn write_sparse(
    path: &Path,
    file: File,
    opts: OpenOptions,
    footer: Footer,
    mut header: DynamicHeader,
    locators: &[([u8; 4], Vec<u8>)],
) -> Result<VhdImage> {
    let bat_bytes = bat::to_bytes(&vec![bat::UNALLOCATED; header.max_table_entries as usize]);
    let mut next = header.table_offset + bat_bytes.len() as u64;
    let mut blobs = Vec::new();
    for (code, data) in locators {
        let space = (data.len() as u64).div_ceil(SECTOR).max(1);
        header.locators.push(ParentLocator {
            platform_code: *code,
            data_space: space as u32,
            data_length: data.len() as u32,
            data_offset: next,
        });
        blobs.push((next, data));
        next += space * SECTOR;
    }
    let header_bytes = header.to_bytes().map_err(|e| e.at(path))?;
    let w = |buf: &[u8], at: u64| {
        file.write_all_at(buf, at)
            .map_err(|e| VhdError::io("write", path, e))
    };
    w(&header_bytes, FOOTER_SIZE as u64)?;
    w(&bat_bytes, header.table_offset)?;
    for (at, data) in blobs {
        w(data, at)?;
    }
    file.set_len(next + FOOTER_SIZE as u64)
        .map_err(|e| VhdError::io("extend", path, e))?;
    let image = VhdImage::from_parts(path.into(), file, opts, footer, Some(header), next);
    image.write_footer()?;
    Ok(image)
}

/// Options for a new differencing image.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Block size; defaults to the parent's (or 2 MiB for a fixed parent).
    pub block_size: Option<u32>,
    pub unique_id: Option<Uuid>,
}

/// A relative path from directory `from` to `to` (both absolute).
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// Create a differencing disk `child` over `parent`: the child records the
/// parent's unique id, its modification time, its file name (UTF-16) and two
/// locators: `W2ru` (path relative to the child, `.\`-prefixed with
/// backslashes, as Windows writes it) and `W2ku` (absolute path on this host).
pub fn create_differencing(child: &Path, parent: &Path, options: &DiffOptions) -> Result<VhdImage> {
    let parent_img = VhdImage::open(parent, &OpenOptions::default())?;
    let parent_abs =
        std::fs::canonicalize(parent).map_err(|e| VhdError::io("resolve", parent, e))?;
    let mtime = std::fs::metadata(&parent_abs)
        .and_then(|m| m.modified())
        .map_err(|e| VhdError::io("stat", parent, e))?;
    let block_size = options
        .block_size
        .or(parent_img.block_size())
        .unwrap_or(DEFAULT_BLOCK_SIZE);
    check_block_size(block_size)?;
    let pf = parent_img.footer();
    let size = pf.current_size;
    let name = parent_abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let child_dir = match child.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let child_dir =
        std::fs::canonicalize(&child_dir).map_err(|e| VhdError::io("resolve", &child_dir, e))?;
    let rel = relative_path(&child_dir, &parent_abs);
    let rel_text = {
        let s = rel.to_string_lossy().replace('/', "\\");
        if s.starts_with("..") {
            s
        } else {
            format!(".\\{s}")
        }
    };
    let abs_text = parent_abs.to_string_lossy().into_owned();
    let id = options.unique_id.unwrap_or_else(Uuid::new_v4);
    let mut footer = new_footer(DiskType::Differencing, size, pf.geometry, id);
    footer.original_size = pf.current_size;
    let header = sparse_header(size, block_size, pf.unique_id, vhd_timestamp(mtime), name);
    let file = create_new(child)?;
    let mut guard = Cleanup(Some(child));
    let opts = OpenOptions {
        writable: true,
        sync_allocations: false,
    };
    let image = write_sparse(
        child,
        file,
        opts,
        footer,
        header,
        &[
            (PLATFORM_W2RU, encode_locator_path(&rel_text)),
            (PLATFORM_W2KU, encode_locator_path(&abs_text)),
        ],
    )?;
    image.flush()?;
    guard.0 = None;
    tracing::info!(child = %child.display(), parent = %parent.display(), "created differencing vhd");
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/b/p.vhd")),
            PathBuf::from("p.vhd")
        );
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/c/p.vhd")),
            PathBuf::from("../c/p.vhd")
        );
    }

    #[test]
    fn exact_policy_uses_max_geometry_only_when_needed() {
        assert_eq!(
            resolve_size(10_000_000, SizePolicy::Exact),
            (Geometry::MAX, 10_000_384)
        );
        let (g, s) = resolve_size(10_027_008, SizePolicy::Exact);
        assert_eq!((g.sectors() * 512, s), (10_027_008, 10_027_008));
    }
}
