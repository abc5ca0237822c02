//! VHD v1 disk images (Microsoft "Virtual Hard Disk Image Format
//! Specification" 1.0): fixed, dynamic and differencing disks.
//!
//! - [`VhdImage`]: one file; validates footer, dynamic header and BAT on
//!   open; maps virtual offsets ([`VhdImage::map_run`]); writes sectors,
//!   allocating blocks in a crash-consistent order.
//! - [`Chain`]: a differencing chain resolved by parent unique id
//!   ([`ChainOptions::search_dirs`]); [`Chain::read_at`] / [`Chain::write_at`]
//!   are positional, never buffer the file, and [`Chain::extents`] says which
//!   level holds each byte (sparse-aware consumers skip [`Source::Zero`]).
//! - [`create()`], [`create_differencing`], [`merge`], [`flatten`],
//!   [`convert_to_raw`], [`convert_from_raw`], [`check`].
//!
//! ```no_run
//! use std::path::Path;
//! use weft_vhd::{Chain, ChainOptions, Source};
//!
//! # fn main() -> weft_vhd::Result<()> {
//! let opts = ChainOptions { writable: true, search_dirs: vec!["/var/lib/weft/images".into()], ..Default::default() };
//! let mut disk = Chain::open(Path::new("instance.vhd"), &opts)?;
//! let mut sector = [0u8; 512];
//! disk.read_at(&mut sector, 0)?;
//! disk.write_at(&sector, 4096)?;
//! for e in disk.extents(0, disk.size())? {
//!     if e.source != Source::Zero { /* e.offset, e.len hold data */ }
//! }
//! disk.flush()?;
//! # Ok(()) }
//! ```
//!
//! # Sizes and CHS geometry
//!
//! The footer holds both a byte size (current size) and a CHS geometry, and
//! readers disagree on which is the disk size. Virtual PC uses the geometry.
//! qemu's `vpc` driver uses the current size when the geometry is the
//! maximum 65535/16/255; otherwise qemu 10 uses the geometry only for the
//! creator applications `vpc ` and `qemu` (checked with 10.0), and older releases use it for
//! every creator except a list known to use the size (`win `, `qem2`,
//! `d2v `, `CTXS`, `tap`). Hyper-V and libvhdi use the current size. weft
//! reads the current size, as the specification says.
//!
//! When creating, weft by default rounds the requested size up to the
//! smallest size the specification's CHS algorithm describes exactly
//! ([`SizePolicy::RoundUpToGeometry`], what qemu-img does), so every reader,
//! old or new, sees the same disk and it is never smaller than asked.
//! [`SizePolicy::Exact`] keeps the size (rounded up to a sector) and, when
//! the geometry cannot describe it, writes the maximum geometry so that all
//! qemu releases take the current size too (qemu-img's `force_size`
//! convention); the cost is a geometry that BIOS-era guests would find odd.
//! Both are cross-checked against `qemu-img info` and libvhdi in the tests.
//!
//! # Crash consistency
//!
//! A new block is written as: extend the file, data, sector bitmap, BAT
//! entry, footer (then the footer copy at offset 0 is unchanged). A crash
//! at any point leaves either an unreferenced block (wasted space) or a
//! complete one; a lost trailing footer is recovered from the copy at offset
//! 0 on the next open. With [`OpenOptions::sync_allocations`] each step is
//! separated by `fdatasync`; otherwise call `flush` at the guest's flush
//! points.

mod bat;
mod chain;
mod check;
mod create;
mod error;
mod footer;
mod geometry;
mod header;
mod image;
mod ops;
mod resolve;

pub use bat::{UNALLOCATED, parse as parse_bat, to_bytes as bat_to_bytes};
pub use chain::{Chain, ChainOptions, DEFAULT_MAX_DEPTH, Extent, Source};
pub use check::{CheckOptions, Finding, Report, Severity, check};
pub use create::{
    CREATOR_APP, CreateOptions, DiffOptions, SizePolicy, create, create_differencing, resolve_size,
};
pub use error::{Result, VhdError};
pub use footer::{DiskType, FOOTER_SIZE, Footer, FormatError, system_time, vhd_timestamp};
pub use geometry::{Geometry, SECTOR};
pub use header::{DEFAULT_BLOCK_SIZE, DynamicHeader, HEADER_SIZE, ParentLocator, bitmap_size};
pub use image::{MAX_SPARSE_SIZE, OpenOptions, Run, RunState, VhdImage};
pub use ops::{MergeOptions, MergeReport, convert_from_raw, convert_to_raw, flatten, merge};
pub use resolve::{find_parent, parent_candidates, read_unique_id};

/// Whether a file starts or ends with a VHD footer.
pub fn is_vhd(path: &std::path::Path) -> bool {
    read_unique_id(path).is_some()
}
