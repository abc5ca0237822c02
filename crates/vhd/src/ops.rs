//! Whole-image operations: merge a child into its parent, flatten a chain,
//! convert between raw and VHD. All copy only stored data (never the zeros
//! of unallocated space) in large sequential runs.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::chain::{Chain, ChainOptions, Source};
use crate::create::{CreateOptions, SizePolicy, create};
use crate::error::{Result, VhdError};
use crate::footer::{DiskType, vhd_timestamp};
use crate::geometry::SECTOR;
use crate::image::{OpenOptions, RunState, VhdImage};

/// Copy granularity: large enough for sequential throughput, and the unit
/// in which all-zero data is skipped.
const CHUNK: u64 = 2 << 20;

fn is_zero(buf: &[u8]) -> bool {
    buf.chunks(4096)
        .all(|c| c.iter().fold(0u8, |a, b| a | b) == 0)
}

/// Options for [`merge`].
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    pub search_dirs: Vec<PathBuf>,
    /// Keep the child (now redundant) and update its parent timestamp;
    /// by default it is removed once the parent holds its data.
    pub keep_child: bool,
}

/// What [`merge`] did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    pub parent: PathBuf,
    pub bytes_merged: u64,
    pub child_removed: bool,
}

/// Merge the differencing disk `child` into its immediate parent. The child
/// stays valid until the parent is complete and flushed, so an interrupted
/// merge leaves a chain that still reads the same.
pub fn merge(child: &Path, options: &MergeOptions) -> Result<MergeReport> {
    let chain = Chain::open(
        child,
        &ChainOptions {
            search_dirs: options.search_dirs.clone(),
            ..ChainOptions::default()
        },
    )?;
    let images = chain.into_images();
    if images.len() < 2 {
        return Err(VhdError::Refused {
            path: child.to_path_buf(),
            reason: "not a differencing disk: nothing to merge into".into(),
        });
    }
    let child_img = &images[0];
    let parent_path = images[1].path().to_path_buf();
    let parent_size = images[1].size();
    // Collect the child's stored runs first, refusing before any write.
    let mut runs = Vec::new();
    let bs = u64::from(child_img.block_size().unwrap_or(2 << 20));
    for (block, &e) in child_img.bat().iter().enumerate() {
        if e == crate::bat::UNALLOCATED {
            continue;
        }
        let start = block as u64 * bs;
        let end = (start + bs).min(child_img.size());
        let mut off = start;
        while off < end {
            let run = child_img.map_run(off, end - off)?;
            if let RunState::Data { file_offset } = run.state {
                if off + run.len > parent_size {
                    return Err(VhdError::Refused {
                        path: child.to_path_buf(),
                        reason: format!(
                            "child holds data at offset {off} beyond the parent's size {parent_size}"
                        ),
                    });
                }
                runs.push((off, run.len, file_offset));
            }
            off += run.len;
        }
    }
    drop(images);
    let mut parent = VhdImage::open(
        &parent_path,
        &OpenOptions {
            writable: true,
            sync_allocations: false,
        },
    )?;
    let child_ro = VhdImage::open(child, &OpenOptions::default())?;
    let mut buf = Vec::new();
    let mut merged = 0u64;
    for (off, len, file_offset) in runs {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK);
            buf.resize(n.next_multiple_of(SECTOR) as usize, 0);
            child_ro.read_data(&mut buf, file_offset + done)?;
            parent.write_sectors(&buf, off + done)?;
            done += n;
        }
        merged += len;
    }
    parent.flush()?;
    drop(child_ro);
    let removed = if options.keep_child {
        let mtime = std::fs::metadata(&parent_path)
            .and_then(|m| m.modified())
            .map_err(|e| VhdError::io("stat", &parent_path, e))?;
        let mut c = VhdImage::open(
            child,
            &OpenOptions {
                writable: true,
                sync_allocations: false,
            },
        )?;
        c.set_parent_timestamp(vhd_timestamp(mtime))?;
        c.flush()?;
        false
    } else {
        std::fs::remove_file(child).map_err(|e| VhdError::io("remove", child, e))?;
        true
    };
    tracing::info!(child = %child.display(), parent = %parent_path.display(), bytes = merged, "merged");
    Ok(MergeReport {
        parent: parent_path,
        bytes_merged: merged,
        child_removed: removed,
    })
}

/// Visit every stored, non-zero chunk of the chain (chunks never cross a
/// `CHUNK` boundary).
fn for_each_data_chunk(chain: &Chain, mut f: impl FnMut(&[u8], u64) -> Result<()>) -> Result<()> {
    let size = chain.size();
    let mut buf = vec![0u8; CHUNK as usize];
    let mut window = 0u64;
    while window < size {
        let wlen = CHUNK.min(size - window);
        for e in chain.extents(window, wlen)? {
            if e.source == Source::Zero {
                continue;
            }
            let piece = &mut buf[..e.len as usize];
            chain.read_at(piece, e.offset)?;
            if !is_zero(piece) {
                f(piece, e.offset)?;
            }
        }
        window += wlen;
    }
    Ok(())
}

fn write_padded(out: &mut VhdImage, data: &[u8], offset: u64) -> Result<()> {
    if (data.len() as u64).is_multiple_of(SECTOR) {
        return out.write_sectors(data, offset);
    }
    let mut tmp = data.to_vec();
    tmp.resize((data.len() as u64).next_multiple_of(SECTOR) as usize, 0);
    out.write_sectors(&tmp, offset)
}

/// Flatten the chain at `src` into a new fixed or dynamic image `dst` of the
/// same size (the size is kept exactly, see [`SizePolicy::Exact`]).
pub fn flatten(
    src: &Path,
    dst: &Path,
    disk_type: DiskType,
    block_size: u32,
    search_dirs: &[PathBuf],
) -> Result<VhdImage> {
    let chain = Chain::open(
        src,
        &ChainOptions {
            search_dirs: search_dirs.to_vec(),
            ..ChainOptions::default()
        },
    )?;
    let mut out = create(
        dst,
        &CreateOptions {
            disk_type,
            size: chain.size(),
            block_size,
            size_policy: SizePolicy::Exact,
            unique_id: None,
        },
    )?;
    let result = for_each_data_chunk(&chain, |data, off| write_padded(&mut out, data, off))
        .and_then(|()| out.flush());
    if let Err(e) = result {
        let _ = std::fs::remove_file(dst);
        return Err(e);
    }
    Ok(out)
}

/// Write the chain at `src` as a raw image `dst` (a sparse file: stored
/// zeros and unallocated space become holes).
pub fn convert_to_raw(src: &Path, dst: &Path, search_dirs: &[PathBuf]) -> Result<u64> {
    let chain = Chain::open(
        src,
        &ChainOptions {
            search_dirs: search_dirs.to_vec(),
            ..ChainOptions::default()
        },
    )?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(|e| VhdError::io("create", dst, e))?;
    let result = (|| {
        out.set_len(chain.size())
            .map_err(|e| VhdError::io("extend", dst, e))?;
        for_each_data_chunk(&chain, |data, off| {
            out.write_all_at(data, off)
                .map_err(|e| VhdError::io("write", dst, e))
        })?;
        out.sync_all().map_err(|e| VhdError::io("sync", dst, e))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(dst);
        return Err(e);
    }
    Ok(chain.size())
}

/// Write the raw image `src` as a new fixed or dynamic VHD `dst`, skipping
/// all-zero chunks (they stay unallocated in a dynamic image).
pub fn convert_from_raw(src: &Path, dst: &Path, options: &CreateOptions) -> Result<VhdImage> {
    let input = File::open(src).map_err(|e| VhdError::io("open", src, e))?;
    let size = input
        .metadata()
        .map_err(|e| VhdError::io("stat", src, e))?
        .len();
    let mut out = create(
        dst,
        &CreateOptions {
            size,
            ..options.clone()
        },
    )?;
    // Zero detection works per output block, so a dynamic image keeps every
    // all-zero block unallocated; reads stay large.
    let unit = if options.disk_type == DiskType::Dynamic {
        u64::from(options.block_size)
    } else {
        CHUNK
    };
    let chunk = unit.max(CHUNK);
    let mut buf = vec![0u8; chunk as usize];
    let result = (|| {
        let mut off = 0u64;
        while off < size {
            let n = chunk.min(size - off) as usize;
            input
                .read_exact_at(&mut buf[..n], off)
                .map_err(|e| VhdError::io("read", src, e))?;
            for (i, piece) in buf[..n].chunks(unit as usize).enumerate() {
                if !is_zero(piece) {
                    write_padded(&mut out, piece, off + i as u64 * unit)?;
                }
            }
            off += n as u64;
        }
        out.flush()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(dst);
        return Err(e);
    }
    Ok(out)
}
