//! Writing to one image: whole sectors at sector-aligned offsets, with
//! block allocation in a crash-consistent order, and metadata updates.

use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

use super::{FOOTER_SIZE, VhdImage};
use crate::bat::UNALLOCATED;
use crate::error::{Result, VhdError};
use crate::geometry::SECTOR;
use crate::header::DynamicHeader;

/// Alignment of a newly allocated block's data in the file.
const DATA_ALIGN: u64 = 4096;

impl VhdImage {
    fn write_all(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| VhdError::io("write", &self.path, e))
    }

    fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| VhdError::io("sync", &self.path, e))
    }

    fn maybe_sync(&self) -> Result<()> {
        if self.options.sync_allocations {
            self.sync()?;
        }
        Ok(())
    }

    /// Flush written data and metadata to stable storage.
    pub fn flush(&self) -> Result<()> {
        self.sync()
    }

    pub(crate) fn write_footer(&self) -> Result<()> {
        let bytes = self.footer.to_bytes();
        self.write_all(&bytes, self.footer_offset)?;
        if self.footer.disk_type.is_sparse() {
            self.write_all(&bytes, 0)?;
        }
        Ok(())
    }

    pub(crate) fn write_header(&mut self, header: DynamicHeader) -> Result<()> {
        let bytes = header.to_bytes().map_err(|e| e.at(&self.path))?;
        self.write_all(&bytes, self.footer.data_offset)?;
        self.header = Some(header);
        Ok(())
    }

    /// Write whole sectors at a sector-aligned virtual offset. For dynamic
    /// and differencing disks, a new block is allocated in this order: the
    /// file is extended, then data, then the sector bitmap, then the BAT
    /// entry, then the footer (with `fdatasync` between the steps when
    /// [`OpenOptions::sync_allocations`] is set).
    pub fn write_sectors(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        if !self.options.writable {
            return Err(VhdError::ReadOnly {
                path: self.path.clone(),
            });
        }
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len() as u64;
        if !offset.is_multiple_of(SECTOR) || !len.is_multiple_of(SECTOR) {
            return Err(VhdError::InvalidArgument(format!(
                "write of {len} bytes at offset {offset} is not sector aligned"
            )));
        }
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self.size().next_multiple_of(SECTOR))
        {
            return Err(VhdError::OutOfRange {
                path: self.path.clone(),
                offset,
                len,
                size: self.size(),
            });
        }
        let Some(header) = self.header.clone() else {
            // A fixed disk's size need not be a sector multiple: never write
            // into the footer behind the data.
            let n = buf.len().min((self.size() - offset) as usize);
            return self.write_all(&buf[..n], offset);
        };
        let bs = u64::from(header.block_size);
        let bitmap_size = header.bitmap_size();
        let mut done = 0u64;
        while done < len {
            let off = offset + done;
            let block = (off / bs) as usize;
            let within = off % bs;
            let seg = (len - done).min(bs - within);
            let data = &buf[done as usize..(done + seg) as usize];
            let fresh = self.bat[block] == UNALLOCATED;
            let block_start = if fresh {
                // Place the block so its data starts on a 4 KiB boundary:
                // guest pages then map to whole page-cache pages (a 4 KiB
                // read is one page, not two). The gap is under 4 KiB.
                let start =
                    (self.footer_offset + bitmap_size).next_multiple_of(DATA_ALIGN) - bitmap_size;
                if start / SECTOR >= u64::from(UNALLOCATED) {
                    return Err(VhdError::Refused {
                        path: self.path.clone(),
                        reason: "file has grown past the 2 TiB the BAT can address".into(),
                    });
                }
                let new_end = start + bitmap_size + bs;
                self.file
                    .set_len(new_end + FOOTER_SIZE as u64)
                    .map_err(|e| VhdError::io("extend", &self.path, e))?;
                self.bitmaps[block] =
                    OnceLock::from(vec![0u8; bitmap_size as usize].into_boxed_slice());
                // The old trailing footer may sit in the gap: clear it so no
                // stale footer is left inside the file.
                if start > self.footer_offset {
                    self.write_all(
                        &vec![0u8; (start - self.footer_offset) as usize],
                        self.footer_offset,
                    )?;
                }
                start
            } else {
                u64::from(self.bat[block]) * SECTOR
            };
            self.write_all(data, block_start + bitmap_size + within)?;
            // Mark the sectors in the cached bitmap, writing it if it changed.
            self.bitmap(block)?;
            let bm = self.bitmaps[block]
                .get_mut()
                .ok_or_else(|| VhdError::corrupt(&self.path, "sector bitmap", "not loaded"))?;
            let mut changed = fresh;
            for s in within / SECTOR..(within + seg) / SECTOR {
                let (byte, mask) = ((s / 8) as usize, 0x80u8 >> (s % 8));
                if bm[byte] & mask == 0 {
                    bm[byte] |= mask;
                    changed = true;
                }
            }
            if changed {
                let bm = bm.clone();
                self.maybe_sync()?;
                self.write_all(&bm, block_start)?;
            }
            if fresh {
                self.maybe_sync()?;
                let entry = (block_start / SECTOR) as u32;
                self.write_all(&entry.to_be_bytes(), header.table_offset + 4 * block as u64)?;
                self.bat[block] = entry;
                self.maybe_sync()?;
                self.footer_offset = block_start + bitmap_size + bs;
                self.write_all(&self.footer.to_bytes(), self.footer_offset)?;
                self.maybe_sync()?;
                tracing::trace!(path = %self.path.display(), block, offset = block_start, "allocated block");
            }
            done += seg;
        }
        Ok(())
    }

    /// Set the parent timestamp (after the parent changed, e.g. by a merge).
    pub fn set_parent_timestamp(&mut self, timestamp: u32) -> Result<()> {
        if !self.options.writable {
            return Err(VhdError::ReadOnly {
                path: self.path.clone(),
            });
        }
        let Some(mut header) = self.header.clone() else {
            return Ok(());
        };
        header.parent_timestamp = timestamp;
        self.write_header(header)
    }
}
