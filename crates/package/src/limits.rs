//! Limits that keep a hostile package (a decompression bomb) from filling
//! the disk or memory. They are enforced while streaming, on the bytes
//! actually produced, never on the sizes an archive declares.

/// Decompression-bomb guards for reading a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest total of uncompressed bytes read from one package.
    pub max_total_size: u64,
    /// Largest uncompressed size of one entry.
    pub max_entry_size: u64,
    /// Most entries (files and directories) in one archive.
    pub max_entries: u64,
    /// Largest ratio of uncompressed to compressed bytes of one entry, checked
    /// once the entry has produced `ratio_floor` bytes.
    pub max_ratio: u64,
    /// Entries smaller than this are never refused for their ratio.
    pub ratio_floor: u64,
    /// Largest `manifest.json`.
    pub max_manifest_size: u64,
}

impl Default for Limits {
    /// 16 GiB total, 4 GiB per entry, 1,000,000 entries, ratio 200:1 past
    /// 1 MiB, a 256 MiB manifest.
    fn default() -> Self {
        Limits {
            max_total_size: 16 << 30,
            max_entry_size: 4 << 30,
            max_entries: 1_000_000,
            max_ratio: 200,
            ratio_floor: 1 << 20,
            max_manifest_size: 256 << 20,
        }
    }
}
