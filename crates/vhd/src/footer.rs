//! The 512-byte hard disk footer every VHD ends with (and, for dynamic and
//! differencing disks, also starts with).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use uuid::Uuid;

use crate::geometry::Geometry;

/// Size of the footer on disk.
pub const FOOTER_SIZE: usize = 512;
/// The footer's cookie.
pub const FOOTER_COOKIE: &[u8; 8] = b"conectix";
/// The only format version the specification defines.
pub const FORMAT_VERSION: u32 = 0x0001_0000;
/// Feature bit the specification says must always be set.
pub const FEATURE_RESERVED: u32 = 0x2;
/// Seconds between the Unix epoch and the VHD epoch (2000-01-01 00:00 UTC).
pub const VHD_EPOCH_UNIX: u64 = 946_684_800;
/// Data offset of a fixed disk (no dynamic header).
pub const NO_DATA_OFFSET: u64 = u64::MAX;

/// A structure that failed to parse, and why; the caller adds the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{structure}: {reason}")]
pub struct FormatError {
    pub structure: &'static str,
    pub reason: String,
}

impl FormatError {
    pub(crate) fn new(structure: &'static str, reason: impl Into<String>) -> Self {
        FormatError {
            structure,
            reason: reason.into(),
        }
    }

    /// Attach the file the structure came from.
    pub fn at(self, path: &std::path::Path) -> crate::VhdError {
        crate::VhdError::corrupt(path, self.structure, self.reason)
    }
}

/// The three disk types the specification defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskType {
    Fixed,
    Dynamic,
    Differencing,
}

impl DiskType {
    pub fn code(self) -> u32 {
        match self {
            DiskType::Fixed => 2,
            DiskType::Dynamic => 3,
            DiskType::Differencing => 4,
        }
    }

    pub fn from_code(code: u32) -> Option<DiskType> {
        match code {
            2 => Some(DiskType::Fixed),
            3 => Some(DiskType::Dynamic),
            4 => Some(DiskType::Differencing),
            _ => None,
        }
    }

    /// True for the types with a dynamic header and block allocation table.
    pub fn is_sparse(self) -> bool {
        self != DiskType::Fixed
    }
}

impl std::fmt::Display for DiskType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DiskType::Fixed => "fixed",
            DiskType::Dynamic => "dynamic",
            DiskType::Differencing => "differencing",
        })
    }
}

/// The decoded footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Footer {
    pub features: u32,
    pub data_offset: u64,
    /// Seconds since 2000-01-01 00:00:00 UTC.
    pub timestamp: u32,
    pub creator_app: [u8; 4],
    pub creator_version: u32,
    pub creator_host_os: [u8; 4],
    pub original_size: u64,
    pub current_size: u64,
    pub geometry: Geometry,
    pub disk_type: DiskType,
    pub unique_id: Uuid,
    pub saved_state: bool,
}

/// One's-complement of the byte sum, skipping the 4 checksum bytes at `skip`.
pub fn checksum(bytes: &[u8], skip: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(skip..skip + 4).contains(i))
        .fold(0u32, |acc, (_, b)| acc.wrapping_add(u32::from(*b)));
    !sum
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// Convert a time to a VHD timestamp (saturating outside the format's range).
pub fn vhd_timestamp(t: SystemTime) -> u32 {
    let unix = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(unix.saturating_sub(VHD_EPOCH_UNIX)).unwrap_or(u32::MAX)
}

/// Convert a VHD timestamp back to a time.
pub fn system_time(ts: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(VHD_EPOCH_UNIX + u64::from(ts))
}

impl Footer {
    /// Parse a footer, verifying cookie, checksum and disk type.
    pub fn parse(bytes: &[u8]) -> Result<Footer, FormatError> {
        let err = |r: String| FormatError::new("footer", r);
        if bytes.len() < FOOTER_SIZE {
            return Err(err(format!("{} bytes, need {FOOTER_SIZE}", bytes.len())));
        }
        let b = &bytes[..FOOTER_SIZE];
        if &b[0..8] != FOOTER_COOKIE {
            return Err(err(format!(
                "cookie is {:?}, expected \"conectix\"",
                String::from_utf8_lossy(&b[0..8])
            )));
        }
        let stored = be32(b, 64);
        let computed = checksum(b, 64);
        if stored != computed {
            return Err(err(format!(
                "checksum is {stored:#010x}, computed {computed:#010x}"
            )));
        }
        let version = be32(b, 12);
        if version >> 16 != 1 {
            return Err(err(format!("format version {version:#010x} is not 1.x")));
        }
        let type_code = be32(b, 60);
        let disk_type = DiskType::from_code(type_code).ok_or_else(|| {
            err(format!(
                "disk type {type_code} is not fixed, dynamic or differencing"
            ))
        })?;
        let mut app = [0u8; 4];
        app.copy_from_slice(&b[28..32]);
        let mut os = [0u8; 4];
        os.copy_from_slice(&b[36..40]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[68..84]);
        Ok(Footer {
            features: be32(b, 8),
            data_offset: be64(b, 16),
            timestamp: be32(b, 24),
            creator_app: app,
            creator_version: be32(b, 32),
            creator_host_os: os,
            original_size: be64(b, 40),
            current_size: be64(b, 48),
            geometry: Geometry {
                cylinders: u16::from_be_bytes([b[56], b[57]]),
                heads: b[58],
                sectors_per_track: b[59],
            },
            disk_type,
            unique_id: Uuid::from_bytes(id),
            saved_state: b[84] != 0,
        })
    }

    /// Encode the footer with a fresh checksum.
    pub fn to_bytes(&self) -> [u8; FOOTER_SIZE] {
        let mut b = [0u8; FOOTER_SIZE];
        b[0..8].copy_from_slice(FOOTER_COOKIE);
        b[8..12].copy_from_slice(&self.features.to_be_bytes());
        b[12..16].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        b[16..24].copy_from_slice(&self.data_offset.to_be_bytes());
        b[24..28].copy_from_slice(&self.timestamp.to_be_bytes());
        b[28..32].copy_from_slice(&self.creator_app);
        b[32..36].copy_from_slice(&self.creator_version.to_be_bytes());
        b[36..40].copy_from_slice(&self.creator_host_os);
        b[40..48].copy_from_slice(&self.original_size.to_be_bytes());
        b[48..56].copy_from_slice(&self.current_size.to_be_bytes());
        b[56..58].copy_from_slice(&self.geometry.cylinders.to_be_bytes());
        b[58] = self.geometry.heads;
        b[59] = self.geometry.sectors_per_track;
        b[60..64].copy_from_slice(&self.disk_type.code().to_be_bytes());
        b[68..84].copy_from_slice(self.unique_id.as_bytes());
        b[84] = u8::from(self.saved_state);
        let sum = checksum(&b, 64);
        b[64..68].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// The creator application as text (e.g. `"weft"`, `"qemu"`, `"win "`).
    pub fn creator_app_str(&self) -> String {
        String::from_utf8_lossy(&self.creator_app).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Footer {
        Footer {
            features: FEATURE_RESERVED,
            data_offset: 512,
            timestamp: 12345,
            creator_app: *b"weft",
            creator_version: 0x0001_0000,
            creator_host_os: *b"Wi2k",
            original_size: 1 << 20,
            current_size: 1 << 20,
            geometry: Geometry::from_sectors(2048),
            disk_type: DiskType::Dynamic,
            unique_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
            saved_state: false,
        }
    }

    #[test]
    fn round_trips() {
        let f = sample();
        assert_eq!(Footer::parse(&f.to_bytes()).unwrap(), f);
    }

    #[test]
    fn rejects_bad_checksum_cookie_and_type() {
        let mut b = sample().to_bytes();
        b[40] ^= 1;
        assert!(Footer::parse(&b).unwrap_err().reason.contains("checksum"));
        let mut b = sample().to_bytes();
        b[0] = b'x';
        assert!(Footer::parse(&b).unwrap_err().reason.contains("cookie"));
        let mut f = sample().to_bytes();
        f[63] = 9;
        let sum = checksum(&f, 64);
        f[64..68].copy_from_slice(&sum.to_be_bytes());
        assert!(
            Footer::parse(&f)
                .unwrap_err()
                .reason
                .contains("disk type 9")
        );
        assert!(Footer::parse(&[0u8; 100]).is_err());
    }

    #[test]
    fn timestamps_count_from_2000() {
        assert_eq!(
            vhd_timestamp(UNIX_EPOCH + Duration::from_secs(VHD_EPOCH_UNIX + 7)),
            7
        );
        assert_eq!(vhd_timestamp(UNIX_EPOCH), 0);
    }
}
