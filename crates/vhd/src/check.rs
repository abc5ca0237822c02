//! `check`: inspect an image without trusting it and list what is wrong,
//! each finding with a severity.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bat::{self, UNALLOCATED};
use crate::error::{Result, VhdError};
use crate::footer::{DiskType, FEATURE_RESERVED, FOOTER_SIZE, Footer, vhd_timestamp};
use crate::geometry::{Geometry, SECTOR};
use crate::header::{DynamicHeader, HEADER_SIZE};
use crate::image::{OpenOptions, VhdImage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem (or note) about an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable short name of the check (`footer-checksum`, `bat-past-eof`...).
    pub code: &'static str,
    pub message: String,
}

/// All findings about one image.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub path: PathBuf,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
    fn add(&mut self, severity: Severity, code: &'static str, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            code,
            message: message.into(),
        });
    }
}

/// Options for [`check`].
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Where to look for a differencing disk's parent.
    pub search_dirs: Vec<PathBuf>,
}

/// Creators whose images every qemu release and Virtual PC size by the CHS geometry.
const GEOMETRY_CREATORS: [&[u8; 4]; 2] = [b"vpc ", b"qemu"];
/// Creators whose images every qemu release sizes by the footer's current size
/// (older releases used the geometry for every other creator).
const SIZE_TRUSTED_CREATORS: [&[u8; 4]; 6] =
    [b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0", b"wa\0\0"];

/// At most this many findings per repeated kind (e.g. per-block problems).
const MAX_REPEATS: usize = 10;

/// Check the image at `path`. Fails only if the file cannot be read at all.
pub fn check(path: &Path, options: &CheckOptions) -> Result<Report> {
    let file = std::fs::File::open(path).map_err(|e| VhdError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| VhdError::io("stat", path, e))?
        .len();
    let mut r = Report {
        path: path.to_path_buf(),
        findings: Vec::new(),
    };
    let read = |at: u64, n: usize| -> Option<Vec<u8>> {
        let mut b = vec![0u8; n];
        file.read_exact_at(&mut b, at).ok().map(|()| b)
    };
    if len < FOOTER_SIZE as u64 {
        r.add(
            Severity::Error,
            "truncated",
            format!("file is {len} bytes, smaller than a footer"),
        );
        return Ok(r);
    }
    let end = read(len - FOOTER_SIZE as u64, FOOTER_SIZE).unwrap_or_default();
    let copy = read(0, FOOTER_SIZE).unwrap_or_default();
    let end_footer = Footer::parse(&end);
    let copy_footer = Footer::parse(&copy);
    let footer = match (&end_footer, &copy_footer) {
        (Ok(f), _) => f.clone(),
        (Err(e), Ok(c)) if c.disk_type.is_sparse() => {
            r.add(Severity::Error, "footer", format!("trailing {e}; the copy at offset 0 is intact (weft repairs it when opened for writing)"));
            c.clone()
        }
        (Err(e), _) => {
            r.add(
                Severity::Error,
                "footer",
                format!("{e}: not a readable vhd"),
            );
            return Ok(r);
        }
    };
    if footer.features & FEATURE_RESERVED == 0 {
        r.add(
            Severity::Warning,
            "footer-features",
            "the reserved feature bit 0x2 is not set",
        );
    }
    if footer.saved_state {
        r.add(
            Severity::Warning,
            "saved-state",
            "the disk is marked as being in a saved state",
        );
    }
    let chs = footer.geometry.sectors() * SECTOR;
    if footer.geometry != Geometry::MAX && chs != footer.current_size {
        let geometry = format!(
            "{}/{}/{}",
            footer.geometry.cylinders, footer.geometry.heads, footer.geometry.sectors_per_track
        );
        if GEOMETRY_CREATORS.contains(&&footer.creator_app) {
            r.add(
                Severity::Warning,
                "geometry-size",
                format!(
                    "current size is {} bytes but the CHS geometry {geometry} describes {chs}; qemu and Virtual PC size this image by geometry and will see {chs} bytes",
                    footer.current_size
                ),
            );
        } else if !SIZE_TRUSTED_CREATORS.contains(&&footer.creator_app) {
            r.add(
                Severity::Info,
                "geometry-size",
                format!(
                    "current size is {} bytes but the CHS geometry {geometry} describes {chs}; older qemu releases size this image by geometry",
                    footer.current_size
                ),
            );
        }
    }
    if footer.disk_type == DiskType::Fixed {
        if len - FOOTER_SIZE as u64 != footer.current_size {
            r.add(
                if len - (FOOTER_SIZE as u64) < footer.current_size {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                "fixed-size",
                format!(
                    "disk size is {} bytes, the file holds {} bytes of data",
                    footer.current_size,
                    len - FOOTER_SIZE as u64
                ),
            );
        }
    } else {
        check_sparse(&mut r, &footer, &end_footer, &copy_footer, len, &read);
    }
    if !r.has_errors() {
        match VhdImage::open(path, &OpenOptions::default()) {
            Ok(img) => {
                if footer.disk_type == DiskType::Differencing {
                    check_parent(&mut r, &img, options);
                }
                r.add(
                    Severity::Info,
                    "summary",
                    format!(
                        "{} disk of {} bytes, {} allocated blocks",
                        footer.disk_type,
                        footer.current_size,
                        img.allocated_blocks()
                    ),
                );
            }
            Err(e) => r.add(Severity::Error, "open", e.to_string()),
        }
    }
    Ok(r)
}

fn check_sparse(
    r: &mut Report,
    footer: &Footer,
    end_footer: &std::result::Result<Footer, crate::footer::FormatError>,
    copy_footer: &std::result::Result<Footer, crate::footer::FormatError>,
    len: u64,
    read: &dyn Fn(u64, usize) -> Option<Vec<u8>>,
) {
    match (end_footer, copy_footer) {
        (Ok(e), Ok(c)) if e != c => r.add(
            Severity::Error,
            "footer-copy",
            "the footer copy at offset 0 differs from the trailing footer",
        ),
        (Ok(_), Err(e)) => r.add(
            Severity::Error,
            "footer-copy",
            format!("copy at offset 0: {e}"),
        ),
        _ => {}
    }
    let Some(hbuf) = footer
        .data_offset
        .checked_add(HEADER_SIZE as u64)
        .filter(|end| *end <= len)
        .and_then(|_| read(footer.data_offset, HEADER_SIZE))
    else {
        r.add(
            Severity::Error,
            "header-offset",
            format!(
                "dynamic header offset {} is past the end of the file",
                footer.data_offset
            ),
        );
        return;
    };
    let header = match DynamicHeader::parse(&hbuf) {
        Ok(h) => h,
        Err(e) => {
            r.add(Severity::Error, "header", e.to_string());
            return;
        }
    };
    let bs = u64::from(header.block_size);
    if u64::from(header.max_table_entries) < footer.current_size.div_ceil(bs) {
        r.add(
            Severity::Error,
            "bat-too-small",
            format!(
                "{} table entries do not cover the disk size {}",
                header.max_table_entries, footer.current_size
            ),
        );
    }
    let table_len = bat::table_bytes(header.max_table_entries);
    let Some(tbuf) = header
        .table_offset
        .checked_add(table_len)
        .filter(|end| *end <= len)
        .and_then(|_| read(header.table_offset, table_len as usize))
    else {
        r.add(
            Severity::Error,
            "bat-past-eof",
            format!(
                "block allocation table at {} of {table_len} bytes is past the end of the file",
                header.table_offset
            ),
        );
        return;
    };
    let Ok(entries) = bat::parse(&tbuf, header.max_table_entries) else {
        return;
    };
    let span = header.bitmap_size() + bs;
    let mut regions: Vec<(u64, u64, String)> = vec![
        (0, 512, "footer copy".into()),
        (
            footer.data_offset,
            footer.data_offset + HEADER_SIZE as u64,
            "dynamic header".into(),
        ),
        (
            header.table_offset,
            header.table_offset + table_len,
            "block allocation table".into(),
        ),
    ];
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
            r.add(
                Severity::Error,
                "locator-past-eof",
                format!("parent locator {i} data is past the end of the file"),
            );
        }
        regions.push((l.data_offset, end, format!("parent locator {i}")));
    }
    let mut past = 0;
    for (i, &e) in entries.iter().enumerate() {
        if e == UNALLOCATED {
            continue;
        }
        let start = u64::from(e) * SECTOR;
        if start + span > len {
            past += 1;
            if past <= MAX_REPEATS {
                r.add(
                    Severity::Error,
                    "bat-past-eof",
                    format!(
                        "block {i} at offset {start} extends past the end of the {len}-byte file"
                    ),
                );
            }
        }
        regions.push((start, start + span, format!("block {i}")));
    }
    if past > MAX_REPEATS {
        r.add(
            Severity::Error,
            "bat-past-eof",
            format!(
                "{} more blocks past the end of the file",
                past - MAX_REPEATS
            ),
        );
    }
    regions.sort_by_key(|x| (x.0, x.1));
    let mut overlaps = 0;
    let mut furthest: Option<&(u64, u64, String)> = None;
    for reg in &regions {
        if let Some(prev) = furthest
            && reg.0 < prev.1
        {
            overlaps += 1;
            if overlaps <= MAX_REPEATS {
                r.add(
                    Severity::Error,
                    "overlap",
                    format!(
                        "{} (at {}) overlaps {} (at {})",
                        reg.2, reg.0, prev.2, prev.0
                    ),
                );
            }
        }
        if furthest.is_none_or(|p| reg.1 > p.1) {
            furthest = Some(reg);
        }
    }
    if overlaps > MAX_REPEATS {
        r.add(
            Severity::Error,
            "overlap",
            format!("{} more overlapping regions", overlaps - MAX_REPEATS),
        );
    }
}

fn check_parent(r: &mut Report, img: &VhdImage, options: &CheckOptions) {
    let Some(h) = img.header() else { return };
    match crate::resolve::find_parent(img, &options.search_dirs) {
        Ok(p) => {
            let ts = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .map(vhd_timestamp);
            if let Ok(ts) = ts
                && ts != h.parent_timestamp
            {
                r.add(Severity::Warning, "parent-timestamp", format!("parent {} was modified after the child recorded it (recorded {}, now {ts})", p.display(), h.parent_timestamp));
            }
            match VhdImage::open(&p, &OpenOptions::default()) {
                Ok(parent) if parent.size() != img.size() => r.add(
                    Severity::Info,
                    "parent-size",
                    format!(
                        "parent is {} bytes, child {} bytes",
                        parent.size(),
                        img.size()
                    ),
                ),
                Ok(_) => {}
                Err(e) => r.add(Severity::Error, "parent", e.to_string()),
            }
        }
        Err(e) => r.add(Severity::Error, "parent", e.to_string()),
    }
}
