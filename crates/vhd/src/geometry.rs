//! CHS disk geometry, computed with the algorithm in the VHD specification
//! (appendix "CHS Calculation").
//!
//! The geometry the specification derives from a size can describe fewer
//! sectors than the size itself (cylinders are rounded down). Readers such as
//! Virtual PC and qemu's `vpc` driver take the disk size from the geometry
//! for most creator applications, so weft, like qemu-img, rounds a requested
//! size *up* to the smallest size whose geometry describes it exactly; then
//! the footer's current size and the geometry agree and every reader sees the
//! same disk. Sizes beyond what CHS can express (about 127 GiB) get the
//! maximum geometry, which readers recognise as "use the current size".

use serde::Serialize;

/// Sector size of a VHD: every offset and size in the format counts these.
pub const SECTOR: u64 = 512;

/// Largest number of sectors the specification's CHS algorithm describes
/// (65535 cylinders, 16 heads, 255 sectors per track).
pub const MAX_CHS_SECTORS: u64 = 65535 * 16 * 255;

/// Cylinders, heads and sectors per track, as stored in the footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    pub cylinders: u16,
    pub heads: u8,
    pub sectors_per_track: u8,
}

impl Geometry {
    /// The geometry readers take as "the size is in the footer, not here".
    pub const MAX: Geometry = Geometry {
        cylinders: 65535,
        heads: 16,
        sectors_per_track: 255,
    };

    /// The specification's CHS calculation for `total_sectors`.
    pub fn from_sectors(total_sectors: u64) -> Geometry {
        let total = total_sectors.min(MAX_CHS_SECTORS);
        let (spt, heads, cyl_times_heads) = if total >= 65535 * 16 * 63 {
            (255u64, 16u64, total / 255)
        } else {
            let mut spt = 17u64;
            let mut cth = total / spt;
            let mut heads = cth.div_ceil(1024);
            if heads < 4 {
                heads = 4;
            }
            if cth >= heads * 1024 || heads > 16 {
                spt = 31;
                heads = 16;
                cth = total / spt;
            }
            if cth >= heads * 1024 {
                spt = 63;
                heads = 16;
                cth = total / spt;
            }
            (spt, heads, cth)
        };
        Geometry {
            // Bounded: cyl_times_heads / heads <= 65535 for total <= MAX_CHS_SECTORS.
            cylinders: (cyl_times_heads / heads).min(65535) as u16,
            heads: heads as u8,
            sectors_per_track: spt as u8,
        }
    }

    /// Sectors this geometry describes.
    pub fn sectors(&self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors_per_track)
    }

    /// The smallest geometry describing at least `size` bytes, and the size
    /// (in bytes) it describes. Sizes past the CHS range get [`Geometry::MAX`]
    /// and keep their sector-rounded size.
    pub fn covering(size: u64) -> (Geometry, u64) {
        let sectors = size.div_ceil(SECTOR);
        if sectors > MAX_CHS_SECTORS {
            return (Geometry::MAX, sectors * SECTOR);
        }
        // The spec's geometry is at most a few tracks short; step up until it
        // covers the request (bounded: the maximum geometry covers everything).
        let mut probe = sectors;
        loop {
            let g = Geometry::from_sectors(probe);
            if g.sectors() >= sectors {
                return (g, g.sectors() * SECTOR);
            }
            if probe >= MAX_CHS_SECTORS {
                return (Geometry::MAX, sectors * SECTOR);
            }
            probe += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_algorithm_matches_known_geometries() {
        // 10 000 000 bytes: qemu-img writes 288/4/17 for this request.
        assert_eq!(
            Geometry::covering(10_000_000),
            (
                Geometry {
                    cylinders: 288,
                    heads: 4,
                    sectors_per_track: 17
                },
                10_027_008
            )
        );
        // 127 GiB and up: max geometry, size kept.
        let big = 200u64 << 30;
        assert_eq!(Geometry::covering(big), (Geometry::MAX, big));
    }

    #[test]
    fn covering_never_shrinks() {
        for mib in [1u64, 3, 7, 10, 64, 100, 1000, 4096, 50_000] {
            let (g, size) = Geometry::covering(mib << 20);
            assert!(size >= mib << 20, "{mib} MiB rounded down");
            assert_eq!(g.sectors() * SECTOR, size);
        }
    }
}
