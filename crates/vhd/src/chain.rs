//! A chain of images, top (the one written) first, down to a fixed or
//! dynamic base: positional reads and writes over the whole chain.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Result, VhdError};
use crate::footer::DiskType;
use crate::geometry::SECTOR;
use crate::image::{OpenOptions, RunState, VhdImage};
use crate::resolve::find_parent;

/// Default limit on the number of images in a chain.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// How to open a chain.
#[derive(Debug, Clone)]
pub struct ChainOptions {
    /// Directories searched for parents after the locators.
    pub search_dirs: Vec<PathBuf>,
    /// Open the top image for writing (parents are always read-only).
    pub writable: bool,
    pub sync_allocations: bool,
    pub max_depth: usize,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            search_dirs: Vec::new(),
            writable: false,
            sync_allocations: false,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Where the bytes of an extent come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "level")]
pub enum Source {
    /// Stored in the image at this level (0 = top).
    Image(usize),
    /// Stored nowhere in the chain: reads as zeros.
    Zero,
}

/// A run of virtual bytes with one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    pub source: Source,
}

/// An open chain of images.
#[derive(Debug)]
pub struct Chain {
    images: Vec<VhdImage>,
}

impl Chain {
    /// Open `path` and, for differencing disks, every parent down to the
    /// base, checking unique ids, refusing loops and chains deeper than
    /// `max_depth`.
    pub fn open(path: &Path, options: &ChainOptions) -> Result<Chain> {
        let top = VhdImage::open(
            path,
            &OpenOptions {
                writable: options.writable,
                sync_allocations: options.sync_allocations,
            },
        )?;
        let mut seen_paths = HashSet::new();
        let mut seen_ids = HashSet::new();
        seen_paths.insert(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
        seen_ids.insert(top.footer().unique_id);
        let mut images = vec![top];
        while let Some(last) = images
            .last()
            .filter(|i| i.disk_type() == DiskType::Differencing)
        {
            if images.len() >= options.max_depth {
                return Err(VhdError::ChainTooDeep {
                    path: path.to_path_buf(),
                    limit: options.max_depth,
                });
            }
            let parent_path = find_parent(last, &options.search_dirs)?;
            let canon = std::fs::canonicalize(&parent_path).unwrap_or_else(|_| parent_path.clone());
            if !seen_paths.insert(canon) {
                return Err(VhdError::ChainLoop {
                    child: last.path().to_path_buf(),
                    parent: parent_path,
                });
            }
            let parent = VhdImage::open(&parent_path, &OpenOptions::default())?;
            if !seen_ids.insert(parent.footer().unique_id) {
                return Err(VhdError::ChainLoop {
                    child: last.path().to_path_buf(),
                    parent: parent_path,
                });
            }
            if let Some(h) = last.header() {
                let ts = crate::footer::vhd_timestamp(
                    std::fs::metadata(&parent_path)
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH),
                );
                if ts != h.parent_timestamp {
                    tracing::debug!(child = %last.path().display(), parent = %parent_path.display(),
                        recorded = h.parent_timestamp, actual = ts, "parent modified since the child was created");
                }
            }
            images.push(parent);
        }
        Ok(Chain { images })
    }

    /// A chain of already-open images, top first (unchecked order).
    pub fn from_images(images: Vec<VhdImage>) -> Result<Chain> {
        if images.is_empty() {
            return Err(VhdError::InvalidArgument(
                "a chain needs at least one image".into(),
            ));
        }
        Ok(Chain { images })
    }

    /// Virtual size: the top image's.
    pub fn size(&self) -> u64 {
        self.images[0].size()
    }

    /// The images, top first.
    pub fn images(&self) -> &[VhdImage] {
        &self.images
    }

    pub fn top(&self) -> &VhdImage {
        &self.images[0]
    }

    pub fn into_images(self) -> Vec<VhdImage> {
        self.images
    }

    fn check_range(&self, offset: u64, len: u64) -> Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.size()) {
            return Err(VhdError::OutOfRange {
                path: self.top().path().to_path_buf(),
                offset,
                len,
                size: self.size(),
            });
        }
        Ok(())
    }

    /// Read `buf.len()` bytes at virtual `offset` through the chain.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        self.read_level(0, buf, offset)
    }

    fn read_level(&self, level: usize, buf: &mut [u8], offset: u64) -> Result<()> {
        let img = &self.images[level];
        let mut done = 0usize;
        while done < buf.len() {
            let off = offset + done as u64;
            let rest = (buf.len() - done) as u64;
            if off >= img.size() {
                buf[done..].fill(0);
                break;
            }
            let run = img.map_run(off, rest.min(img.size() - off))?;
            let piece = &mut buf[done..done + run.len as usize];
            match run.state {
                RunState::Data { file_offset } => img.read_data(piece, file_offset)?,
                RunState::Absent if level + 1 < self.images.len() => {
                    self.read_level(level + 1, piece, off)?;
                }
                RunState::Absent => piece.fill(0),
            }
            done += run.len as usize;
        }
        Ok(())
    }

    /// Which image (if any) holds each byte of `[offset, offset + len)`.
    /// Adjacent runs with the same source are merged.
    pub fn extents(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        self.check_range(offset, len)?;
        let mut out: Vec<Extent> = Vec::new();
        self.extents_level(0, offset, len, &mut out)?;
        Ok(out)
    }

    fn extents_level(
        &self,
        level: usize,
        offset: u64,
        len: u64,
        out: &mut Vec<Extent>,
    ) -> Result<()> {
        let img = &self.images[level];
        let mut done = 0u64;
        let push = |e: Extent, out: &mut Vec<Extent>| match out.last_mut() {
            Some(last) if last.source == e.source && last.offset + last.len == e.offset => {
                last.len += e.len
            }
            _ => out.push(e),
        };
        while done < len {
            let off = offset + done;
            if off >= img.size() {
                push(
                    Extent {
                        offset: off,
                        len: len - done,
                        source: Source::Zero,
                    },
                    out,
                );
                break;
            }
            let run = img.map_run(off, (len - done).min(img.size() - off))?;
            match run.state {
                RunState::Data { .. } => push(
                    Extent {
                        offset: off,
                        len: run.len,
                        source: Source::Image(level),
                    },
                    out,
                ),
                RunState::Absent if level + 1 < self.images.len() => {
                    let mut sub = Vec::new();
                    self.extents_level(level + 1, off, run.len, &mut sub)?;
                    for e in sub {
                        push(e, out);
                    }
                }
                RunState::Absent => push(
                    Extent {
                        offset: off,
                        len: run.len,
                        source: Source::Zero,
                    },
                    out,
                ),
            }
            done += run.len;
        }
        Ok(())
    }

    /// Write `buf` at virtual `offset` into the top image. Partial sectors
    /// are completed from the chain (read-modify-write).
    pub fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset + buf.len() as u64;
        if offset.is_multiple_of(SECTOR) && end.is_multiple_of(SECTOR) {
            return self.images[0].write_sectors(buf, offset);
        }
        let start = offset / SECTOR * SECTOR;
        let aligned_end = end.next_multiple_of(SECTOR);
        let mut tmp = vec![0u8; (aligned_end - start) as usize];
        let size = self.size();
        // Head and tail sectors come from the chain (the last sector of a
        // disk whose size is not a sector multiple reads short).
        let head_len = SECTOR.min(size - start) as usize;
        self.read_at(&mut tmp[..head_len], start)?;
        let tail_start = aligned_end - SECTOR;
        if tail_start > start {
            let tail_len = SECTOR.min(size - tail_start) as usize;
            let at = (tail_start - start) as usize;
            self.read_at(&mut tmp[at..at + tail_len], tail_start)?;
        }
        let at = (offset - start) as usize;
        tmp[at..at + buf.len()].copy_from_slice(buf);
        self.images[0].write_sectors(&tmp, start)
    }

    /// Flush the top image's writes to stable storage.
    pub fn flush(&self) -> Result<()> {
        self.images[0].flush()
    }
}
