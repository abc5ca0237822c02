//! The block allocation table: one big-endian sector offset per block,
//! `0xFFFFFFFF` for a block that is not allocated.

use crate::footer::FormatError;

/// BAT entry of an unallocated block.
pub const UNALLOCATED: u32 = u32::MAX;

/// Decode `entries` BAT entries from `bytes`.
pub fn parse(bytes: &[u8], entries: u32) -> Result<Vec<u32>, FormatError> {
    let need = u64::from(entries) * 4;
    if (bytes.len() as u64) < need {
        return Err(FormatError::new(
            "block allocation table",
            format!("{} bytes, need {need} for {entries} entries", bytes.len()),
        ));
    }
    Ok(bytes[..need as usize]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Encode a BAT padded with unallocated entries to a whole sector.
pub fn to_bytes(bat: &[u32]) -> Vec<u8> {
    let len = (bat.len() * 4).div_ceil(512) * 512;
    let mut out = vec![0xff; len];
    for (i, e) in bat.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&e.to_be_bytes());
    }
    out
}

/// Bytes the on-disk BAT of `entries` entries occupies.
pub fn table_bytes(entries: u32) -> u64 {
    (u64::from(entries) * 4).div_ceil(512) * 512
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads() {
        let bat = vec![UNALLOCATED, 3, 7000];
        let b = to_bytes(&bat);
        assert_eq!(b.len(), 512);
        assert_eq!(parse(&b, 3).unwrap(), bat);
        assert_eq!(parse(&b, 128).unwrap()[127], UNALLOCATED);
        assert!(parse(&b, 129).is_err());
    }
}
