//! The 1024-byte dynamic disk header of dynamic and differencing disks, with
//! the parent's identity and the parent locators.

use serde::Serialize;
use uuid::Uuid;

use crate::footer::{FormatError, be32, be64, checksum};

/// Size of the dynamic header on disk.
pub const HEADER_SIZE: usize = 1024;
/// The dynamic header's cookie.
pub const HEADER_COOKIE: &[u8; 8] = b"cxsparse";
/// Default block size (2 MiB), as the specification recommends.
pub const DEFAULT_BLOCK_SIZE: u32 = 2 << 20;
/// Number of parent locator entries in the header.
pub const LOCATOR_COUNT: usize = 8;
/// Bytes available for the parent's Unicode name (UTF-16BE).
const PARENT_NAME_BYTES: usize = 512;

/// Platform code of a locator holding an absolute Windows-style path (UTF-16LE).
pub const PLATFORM_W2KU: [u8; 4] = *b"W2ku";
/// Platform code of a locator holding a relative path (UTF-16LE).
pub const PLATFORM_W2RU: [u8; 4] = *b"W2ru";

/// One parent locator entry: where in the file a path to the parent lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentLocator {
    pub platform_code: [u8; 4],
    /// As stored: the specification counts 512-byte sectors here, some
    /// writers count bytes.
    pub data_space: u32,
    pub data_length: u32,
    pub data_offset: u64,
}

impl ParentLocator {
    pub fn is_empty(&self) -> bool {
        self.platform_code == [0; 4]
    }

    /// Bytes reserved for the locator's data, accepting both the
    /// specification's sector count and the byte count some writers store.
    pub fn reserved_bytes(&self) -> u64 {
        let space = u64::from(self.data_space);
        if space >= u64::from(self.data_length) && space >= 512 {
            space
        } else {
            space * 512
        }
    }
}

/// The decoded dynamic header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DynamicHeader {
    pub table_offset: u64,
    pub max_table_entries: u32,
    pub block_size: u32,
    pub parent_unique_id: Uuid,
    /// Modification time of the parent, seconds since 2000-01-01 UTC.
    pub parent_timestamp: u32,
    pub parent_name: String,
    pub locators: Vec<ParentLocator>,
}

impl DynamicHeader {
    /// Parse a header, verifying cookie, checksum, version and block size.
    pub fn parse(bytes: &[u8]) -> Result<DynamicHeader, FormatError> {
        let err = |r: String| FormatError::new("dynamic header", r);
        if bytes.len() < HEADER_SIZE {
            return Err(err(format!("{} bytes, need {HEADER_SIZE}", bytes.len())));
        }
        let b = &bytes[..HEADER_SIZE];
        if &b[0..8] != HEADER_COOKIE {
            return Err(err(format!(
                "cookie is {:?}, expected \"cxsparse\"",
                String::from_utf8_lossy(&b[0..8])
            )));
        }
        let stored = be32(b, 36);
        let computed = checksum(b, 36);
        if stored != computed {
            return Err(err(format!(
                "checksum is {stored:#010x}, computed {computed:#010x}"
            )));
        }
        let version = be32(b, 24);
        if version >> 16 != 1 {
            return Err(err(format!("header version {version:#010x} is not 1.x")));
        }
        let block_size = be32(b, 32);
        if !block_size.is_power_of_two() || block_size < 512 {
            return Err(err(format!(
                "block size {block_size} is not a power of two of at least 512"
            )));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[40..56]);
        let units: Vec<u16> = b[64..64 + PARENT_NAME_BYTES]
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .take_while(|u| *u != 0)
            .collect();
        let locators = (0..LOCATOR_COUNT)
            .map(|i| {
                let at = 576 + 24 * i;
                let mut code = [0u8; 4];
                code.copy_from_slice(&b[at..at + 4]);
                ParentLocator {
                    platform_code: code,
                    data_space: be32(b, at + 4),
                    data_length: be32(b, at + 8),
                    data_offset: be64(b, at + 16),
                }
            })
            .collect();
        Ok(DynamicHeader {
            table_offset: be64(b, 16),
            max_table_entries: be32(b, 28),
            block_size,
            parent_unique_id: Uuid::from_bytes(id),
            parent_timestamp: be32(b, 56),
            parent_name: String::from_utf16_lossy(&units),
            locators,
        })
    }

    /// Encode the header with a fresh checksum. Fails if the parent name
    /// does not fit in the 256 UTF-16 units the format reserves.
    pub fn to_bytes(&self) -> Result<[u8; HEADER_SIZE], FormatError> {
        let mut b = [0u8; HEADER_SIZE];
        b[0..8].copy_from_slice(HEADER_COOKIE);
        b[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        b[16..24].copy_from_slice(&self.table_offset.to_be_bytes());
        b[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        b[28..32].copy_from_slice(&self.max_table_entries.to_be_bytes());
        b[32..36].copy_from_slice(&self.block_size.to_be_bytes());
        b[40..56].copy_from_slice(self.parent_unique_id.as_bytes());
        b[56..60].copy_from_slice(&self.parent_timestamp.to_be_bytes());
        let name: Vec<u16> = self.parent_name.encode_utf16().collect();
        if name.len() * 2 > PARENT_NAME_BYTES {
            return Err(FormatError::new(
                "dynamic header",
                format!(
                    "parent name {:?} is longer than 256 UTF-16 units",
                    self.parent_name
                ),
            ));
        }
        for (i, u) in name.iter().enumerate() {
            b[64 + 2 * i..66 + 2 * i].copy_from_slice(&u.to_be_bytes());
        }
        if self.locators.len() > LOCATOR_COUNT {
            return Err(FormatError::new(
                "dynamic header",
                "more than 8 parent locators",
            ));
        }
        for (i, l) in self.locators.iter().enumerate() {
            let at = 576 + 24 * i;
            b[at..at + 4].copy_from_slice(&l.platform_code);
            b[at + 4..at + 8].copy_from_slice(&l.data_space.to_be_bytes());
            b[at + 8..at + 12].copy_from_slice(&l.data_length.to_be_bytes());
            b[at + 16..at + 24].copy_from_slice(&l.data_offset.to_be_bytes());
        }
        let sum = checksum(&b, 36);
        b[36..40].copy_from_slice(&sum.to_be_bytes());
        Ok(b)
    }

    /// Bytes of sector bitmap in front of each block (padded to a sector).
    pub fn bitmap_size(&self) -> u64 {
        bitmap_size(self.block_size)
    }
}

/// Bytes of sector bitmap for a block size, padded to a 512-byte sector.
pub fn bitmap_size(block_size: u32) -> u64 {
    (u64::from(block_size) / 512).div_ceil(8).div_ceil(512) * 512
}

/// Decode a UTF-16LE locator path.
pub fn decode_locator_path(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// Encode a locator path as UTF-16LE.
pub fn encode_locator_path(path: &str) -> Vec<u8> {
    path.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DynamicHeader {
        DynamicHeader {
            table_offset: 1536,
            max_table_entries: 5,
            block_size: DEFAULT_BLOCK_SIZE,
            parent_unique_id: Uuid::from_u128(42),
            parent_timestamp: 99,
            parent_name: "base disk ü.vhd".into(),
            locators: vec![ParentLocator {
                platform_code: PLATFORM_W2RU,
                data_space: 1,
                data_length: 20,
                data_offset: 4096,
            }],
        }
    }

    #[test]
    fn round_trips_with_unicode_parent_name() {
        let h = sample();
        let mut parsed = DynamicHeader::parse(&h.to_bytes().unwrap()).unwrap();
        parsed.locators.retain(|l| !l.is_empty());
        assert_eq!(parsed, h);
    }

    #[test]
    fn rejects_corruption() {
        let mut b = sample().to_bytes().unwrap();
        b[30] ^= 0xff;
        assert!(
            DynamicHeader::parse(&b)
                .unwrap_err()
                .reason
                .contains("checksum")
        );
        let mut h = sample();
        h.block_size = 3000;
        assert!(DynamicHeader::parse(&h.to_bytes().unwrap()).is_err());
        h.parent_name = "x".repeat(300);
        assert!(h.to_bytes().is_err());
    }

    #[test]
    fn bitmap_sizes_pad_to_sectors() {
        assert_eq!(bitmap_size(2 << 20), 512);
        assert_eq!(bitmap_size(512), 512);
        assert_eq!(bitmap_size(32 << 20), 8192);
    }

    #[test]
    fn locator_reserved_bytes_accepts_sectors_and_bytes() {
        let mut l = sample().locators[0].clone();
        assert_eq!(l.reserved_bytes(), 512);
        l.data_space = 512;
        assert_eq!(l.reserved_bytes(), 512);
    }
}
