//! One VHD file: open and validate it, map virtual offsets to data in the
//! file, and write sectors (allocating blocks in a crash-consistent order).
//!
//! Reads never buffer the file: the footer, header and BAT are held in
//! memory, sector bitmaps are loaded once per block on first use, and data is
//! read with positional I/O straight into the caller's buffer.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::bat::{self, UNALLOCATED};
use crate::error::{Result, VhdError};
use crate::footer::{DiskType, FOOTER_SIZE, Footer};
use crate::geometry::SECTOR;
use crate::header::{DynamicHeader, HEADER_SIZE};

mod write;

/// Largest virtual size accepted for dynamic and differencing disks: the
/// specification's limit of 2040 GiB.
pub const MAX_SPARSE_SIZE: u64 = 2040 << 30;

/// How to open an image.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Open for writing (only the top of a chain is ever written).
    pub writable: bool,
    /// `fdatasync` between the steps of every block allocation (data and
    /// bitmap, then BAT, then footer), so a crash never leaves a BAT entry
    /// pointing at unwritten data. Without it the order is the same but
    /// durability waits for [`VhdImage::flush`].
    pub sync_allocations: bool,
}

/// What backs a run of virtual bytes in one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Stored in this file at this offset.
    Data { file_offset: u64 },
    /// Not stored here: the parent's bytes (or zeros without a parent).
    Absent,
}

/// A run of virtual bytes with one [`RunState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub len: u64,
    pub state: RunState,
}

/// An open VHD file.
#[derive(Debug)]
pub struct VhdImage {
    path: PathBuf,
    file: File,
    options: OpenOptions,
    footer: Footer,
    header: Option<DynamicHeader>,
    bat: Vec<u32>,
    bitmaps: Vec<OnceLock<Box<[u8]>>>,
    /// Where the trailing footer lives; new blocks are placed here.
    footer_offset: u64,
    /// The trailing footer was unreadable and the copy at offset 0 was used.
    footer_recovered: bool,
}

fn read_exact(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            VhdError::corrupt(
                path,
                "file",
                format!(
                    "read of {} bytes at offset {offset} goes past the end of the file",
                    buf.len()
                ),
            )
        } else {
            VhdError::io("read", path, e)
        }
    })
}

impl VhdImage {
    /// Open and validate one VHD file (no parent resolution).
    pub fn open(path: &Path, options: &OpenOptions) -> Result<VhdImage> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(options.writable)
            .open(path)
            .map_err(|e| VhdError::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| VhdError::io("stat", path, e))?
            .len();
        if len < FOOTER_SIZE as u64 {
            return Err(VhdError::NotVhd {
                path: path.into(),
                reason: format!("file is {len} bytes, smaller than the 512-byte footer"),
            });
        }
        let mut buf = [0u8; FOOTER_SIZE];
        read_exact(&file, path, &mut buf, len - FOOTER_SIZE as u64)?;
        let mut footer_offset = len - FOOTER_SIZE as u64;
        let (footer, footer_recovered) = match Footer::parse(&buf) {
            Ok(f) => (f, false),
            Err(end_err) => {
                let end_has_cookie = &buf[..8] == crate::footer::FOOTER_COOKIE;
                // Virtual PC before 2004 wrote 511-byte footers on fixed
                // disks (the specification's note); the checksum is the same.
                let mut old = [0u8; FOOTER_SIZE];
                read_exact(
                    &file,
                    path,
                    &mut old[..FOOTER_SIZE - 1],
                    len - FOOTER_SIZE as u64 + 1,
                )?;
                if let Some(f) = Footer::parse(&old)
                    .ok()
                    .filter(|f| f.disk_type == DiskType::Fixed)
                {
                    footer_offset = len - FOOTER_SIZE as u64 + 1;
                    (f, false)
                } else {
                    Self::recover_footer(&file, path, end_err, end_has_cookie)?
                }
            }
        };
        let mut image = VhdImage {
            path: path.into(),
            file,
            options: options.clone(),
            footer,
            header: None,
            bat: Vec::new(),
            bitmaps: Vec::new(),
            footer_offset,
            footer_recovered,
        };
        if image.footer.disk_type == DiskType::Fixed {
            if image.footer.current_size > footer_offset {
                return Err(VhdError::corrupt(
                    path,
                    "fixed disk",
                    format!(
                        "size is {} bytes but the file holds only {} bytes of data (truncated)",
                        image.footer.current_size, footer_offset
                    ),
                ));
            }
            if footer_recovered {
                return Err(VhdError::corrupt(path, "footer", "missing"));
            }
        } else {
            image.load_sparse(len)?;
            if footer_recovered && options.writable {
                // Put the footer back where it belongs before any write,
                // dropping any block an interrupted allocation left
                // unreferenced after the last referenced one.
                image
                    .file
                    .set_len(image.footer_offset + FOOTER_SIZE as u64)
                    .map_err(|e| VhdError::io("truncate", path, e))?;
                image.write_footer()?;
                image.flush()?;
                tracing::warn!(path = %path.display(), "rewrote the trailing footer from the copy at offset 0");
            }
        }
        tracing::debug!(path = %path.display(), disk_type = %image.footer.disk_type,
            size = image.footer.current_size, "opened vhd");
        Ok(image)
    }

    /// A dynamic disk keeps a copy of the footer at offset 0: a write
    /// interrupted between allocating a block and rewriting the footer
    /// leaves that copy as the only good one.
    fn recover_footer(
        file: &File,
        path: &Path,
        end_err: crate::footer::FormatError,
        end_has_cookie: bool,
    ) -> Result<(Footer, bool)> {
        let mut buf = [0u8; FOOTER_SIZE];
        read_exact(file, path, &mut buf, 0)?;
        match Footer::parse(&buf) {
            Ok(f) if f.disk_type.is_sparse() => {
                tracing::warn!(path = %path.display(), error = %end_err,
                    "trailing footer unreadable, using the copy at offset 0");
                Ok((f, true))
            }
            _ if !end_has_cookie && &buf[..8] != crate::footer::FOOTER_COOKIE => {
                Err(VhdError::NotVhd {
                    path: path.into(),
                    reason: end_err.to_string(),
                })
            }
            _ => Err(end_err.at(path)),
        }
    }

    fn load_sparse(&mut self, len: u64) -> Result<()> {
        let path = self.path.clone();
        let size = self.footer.current_size;
        if size > MAX_SPARSE_SIZE {
            return Err(VhdError::Unsupported {
                path,
                what: "disk size",
                value: format!("{size} bytes (the format's limit is 2040 GiB)"),
            });
        }
        let data_offset = self.footer.data_offset;
        if data_offset
            .checked_add(HEADER_SIZE as u64)
            .is_none_or(|end| end > len)
        {
            return Err(VhdError::corrupt(
                &path,
                "footer",
                format!(
                    "dynamic header offset {data_offset} is past the end of the {len}-byte file"
                ),
            ));
        }
        let mut hbuf = [0u8; HEADER_SIZE];
        read_exact(&self.file, &path, &mut hbuf, data_offset)?;
        let header = DynamicHeader::parse(&hbuf).map_err(|e| e.at(&path))?;
        let bs = u64::from(header.block_size);
        let need = size.div_ceil(bs);
        if u64::from(header.max_table_entries) < need {
            return Err(VhdError::corrupt(
                &path,
                "dynamic header",
                format!(
                    "{} table entries of {bs} bytes cover less than the disk size {size}",
                    header.max_table_entries
                ),
            ));
        }
        let table_len = bat::table_bytes(header.max_table_entries);
        if header
            .table_offset
            .checked_add(table_len)
            .is_none_or(|end| end > len)
        {
            return Err(VhdError::corrupt(
                &path,
                "dynamic header",
                format!(
                    "block allocation table at {} of {table_len} bytes is past the end of the {len}-byte file",
                    header.table_offset
                ),
            ));
        }
        // Bounded by the file length checked above.
        let mut tbuf = vec![0u8; table_len as usize];
        read_exact(&self.file, &path, &mut tbuf, header.table_offset)?;
        let bat = bat::parse(&tbuf, header.max_table_entries).map_err(|e| e.at(&path))?;
        let bitmap = header.bitmap_size();
        let block_span = bitmap + bs;
        // Metadata that blocks must not overlap.
        let mut regions: Vec<(u64, u64, String)> = vec![
            (0, 512, "footer copy".into()),
            (
                data_offset,
                data_offset + HEADER_SIZE as u64,
                "dynamic header".into(),
            ),
            (
                header.table_offset,
                header.table_offset + table_len,
                "block allocation table".into(),
            ),
        ];
        let mut meta_end = regions.iter().map(|r| r.1).max().unwrap_or(0);
        if self.footer.disk_type == DiskType::Differencing {
            for (i, l) in header
                .locators
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.is_empty())
            {
                let end = l
                    .data_offset
                    .saturating_add(l.reserved_bytes().max(u64::from(l.data_length)));
                if end > len {
                    // Only a hint for finding the parent: ignore it for the
                    // layout (`check` reports it).
                    tracing::warn!(path = %path.display(), locator = i, "parent locator data is past the end of the file");
                    continue;
                }
                regions.push((l.data_offset, end, format!("parent locator {i}")));
                meta_end = meta_end.max(end);
            }
        }
        for (i, &e) in bat.iter().enumerate() {
            if e == UNALLOCATED {
                continue;
            }
            let start = u64::from(e) * SECTOR;
            let end = start + block_span;
            if end > len {
                return Err(VhdError::corrupt(
                    &path,
                    "block allocation table",
                    format!(
                        "block {i} at offset {start} extends past the end of the {len}-byte file"
                    ),
                ));
            }
            regions.push((start, end, format!("block {i}")));
        }
        regions.sort_by_key(|r| (r.0, r.1));
        for w in regions.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(VhdError::corrupt(
                    &path,
                    "block allocation table",
                    format!("{} overlaps {}", w[1].2, w[0].2),
                ));
            }
        }
        let data_end = regions.iter().map(|r| r.1).max().unwrap_or(0).max(meta_end);
        self.footer_offset = if self.footer_recovered {
            data_end.next_multiple_of(SECTOR)
        } else {
            (len - FOOTER_SIZE as u64)
                .max(data_end)
                .next_multiple_of(SECTOR)
        };
        self.bitmaps = (0..bat.len()).map(|_| OnceLock::new()).collect();
        self.bat = bat;
        self.header = Some(header);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn footer(&self) -> &Footer {
        &self.footer
    }
    pub fn header(&self) -> Option<&DynamicHeader> {
        self.header.as_ref()
    }
    pub fn disk_type(&self) -> DiskType {
        self.footer.disk_type
    }
    /// Virtual size in bytes (the footer's current size).
    pub fn size(&self) -> u64 {
        self.footer.current_size
    }
    /// Block size for dynamic and differencing disks.
    pub fn block_size(&self) -> Option<u32> {
        self.header.as_ref().map(|h| h.block_size)
    }
    /// The in-memory block allocation table (empty for fixed disks).
    pub fn bat(&self) -> &[u32] {
        &self.bat
    }
    /// Number of allocated blocks.
    pub fn allocated_blocks(&self) -> usize {
        self.bat.iter().filter(|e| **e != UNALLOCATED).count()
    }
    pub fn is_writable(&self) -> bool {
        self.options.writable
    }
    /// True when the trailing footer was damaged and the copy at offset 0 used.
    pub fn footer_recovered(&self) -> bool {
        self.footer_recovered
    }

    fn bitmap(&self, block: usize) -> Result<&[u8]> {
        let lock = &self.bitmaps[block];
        if let Some(b) = lock.get() {
            return Ok(b);
        }
        let size = self.header.as_ref().map_or(0, DynamicHeader::bitmap_size);
        // Bounded: at most 8 KiB per sector-bitmap of a 32 MiB block; the
        // block's span was checked to lie inside the file at open.
        let mut buf = vec![0u8; size as usize].into_boxed_slice();
        read_exact(
            &self.file,
            &self.path,
            &mut buf,
            u64::from(self.bat[block]) * SECTOR,
        )?;
        let _ = lock.set(buf);
        Ok(lock.get().map_or(&[][..], |b| &b[..]))
    }

    /// The longest run starting at virtual `offset` (at most `max_len` bytes,
    /// never crossing a block) whose bytes are all stored here or all absent.
    pub fn map_run(&self, offset: u64, max_len: u64) -> Result<Run> {
        let Some(header) = &self.header else {
            return Ok(Run {
                len: max_len,
                state: RunState::Data {
                    file_offset: offset,
                },
            });
        };
        let bs = u64::from(header.block_size);
        let block = (offset / bs) as usize;
        let within = offset % bs;
        let seg = max_len.min(bs - within);
        let entry = self.bat.get(block).copied().unwrap_or(UNALLOCATED);
        if entry == UNALLOCATED {
            return Ok(Run {
                len: seg,
                state: RunState::Absent,
            });
        }
        let bitmap = self.bitmap(block)?;
        let first = within / SECTOR;
        let last = (within + seg - 1) / SECTOR;
        let bit = |s: u64| bitmap[(s / 8) as usize] & (0x80 >> (s % 8)) != 0;
        let set = bit(first);
        let full = if set { 0xff } else { 0x00 };
        let mut s = first + 1;
        while s <= last {
            if s.is_multiple_of(8) && s + 7 <= last && bitmap[(s / 8) as usize] == full {
                s += 8;
                continue;
            }
            if bit(s) != set {
                break;
            }
            s += 1;
        }
        let len = (s * SECTOR - within).min(seg);
        let state = if set {
            RunState::Data {
                file_offset: u64::from(entry) * SECTOR + header.bitmap_size() + within,
            }
        } else {
            RunState::Absent
        };
        Ok(Run { len, state })
    }

    /// Read stored bytes at a file offset returned by [`VhdImage::map_run`].
    pub fn read_data(&self, buf: &mut [u8], file_offset: u64) -> Result<()> {
        read_exact(&self.file, &self.path, buf, file_offset)
    }

    /// Read a parent locator's path text.
    pub fn locator_path(&self, index: usize) -> Result<Option<String>> {
        let Some(l) = self.header.as_ref().and_then(|h| h.locators.get(index)) else {
            return Ok(None);
        };
        if l.is_empty() || l.data_length == 0 || l.data_length > 64 * 1024 {
            return Ok(None);
        }
        let mut buf = vec![0u8; l.data_length as usize];
        read_exact(&self.file, &self.path, &mut buf, l.data_offset)?;
        Ok(Some(crate::header::decode_locator_path(&buf)))
    }

    pub(crate) fn from_parts(
        path: PathBuf,
        file: File,
        options: OpenOptions,
        footer: Footer,
        header: Option<DynamicHeader>,
        footer_offset: u64,
    ) -> VhdImage {
        let entries = header.as_ref().map_or(0, |h| h.max_table_entries as usize);
        VhdImage {
            path,
            file,
            options,
            footer,
            header,
            bat: vec![UNALLOCATED; entries],
            bitmaps: (0..entries).map(|_| OnceLock::new()).collect(),
            footer_offset,
            footer_recovered: false,
        }
    }
}
