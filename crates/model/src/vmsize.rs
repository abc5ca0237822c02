//! Azure Cloud Services virtual machine sizes (`vmsize`) and the CPU and
//! memory each one gives a role instance; weft turns these into limits.

use serde::Serialize;

/// The CPU cores and memory of one VM size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VmLimits {
    /// Number of CPU cores (ExtraSmall has a shared core, counted as 1).
    pub cores: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Temporary (resource) disk in GiB, where local storage lives.
    pub disk_gib: u32,
}

/// A `vmsize` value: a size Azure documents, or one weft does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmSize {
    Known(&'static KnownSize),
    /// Not in weft's table; weft uses [`VmSize::DEFAULT`]'s limits.
    Unknown(String),
}

/// One row of the size table.
#[derive(Debug, PartialEq, Eq)]
pub struct KnownSize {
    /// The canonical name, as Azure spells it.
    pub name: &'static str,
    /// Other names Azure accepts for the same size (A0..A4 for the classic sizes).
    pub aliases: &'static [&'static str],
    pub limits: VmLimits,
}

const fn size(
    name: &'static str,
    aliases: &'static [&'static str],
    cores: u32,
    memory_mib: u32,
    disk_gib: u32,
) -> KnownSize {
    KnownSize {
        name,
        aliases,
        limits: VmLimits {
            cores,
            memory_mib,
            disk_gib,
        },
    }
}

/// Sizes from Azure's "Sizes for Cloud Services" page (classic A-series,
/// A v2, D, D v2, D v3, G series).
pub static SIZES: &[KnownSize] = &[
    size("ExtraSmall", &["A0"], 1, 768, 19),
    size("Small", &["A1"], 1, 1792, 224),
    size("Medium", &["A2"], 2, 3584, 489),
    size("Large", &["A3"], 4, 7168, 999),
    size("ExtraLarge", &["A4"], 8, 14336, 2039),
    size("A5", &[], 2, 14336, 489),
    size("A6", &[], 4, 28672, 999),
    size("A7", &[], 8, 57344, 2039),
    size("A8", &[], 8, 57344, 382),
    size("A9", &[], 16, 114688, 382),
    size("A10", &[], 8, 57344, 382),
    size("A11", &[], 16, 114688, 382),
    size("Standard_A1_v2", &[], 1, 2048, 10),
    size("Standard_A2_v2", &[], 2, 4096, 20),
    size("Standard_A4_v2", &[], 4, 8192, 40),
    size("Standard_A8_v2", &[], 8, 16384, 80),
    size("Standard_A2m_v2", &[], 2, 16384, 20),
    size("Standard_A4m_v2", &[], 4, 32768, 40),
    size("Standard_A8m_v2", &[], 8, 65536, 80),
    size("Standard_D1", &[], 1, 3584, 50),
    size("Standard_D2", &[], 2, 7168, 100),
    size("Standard_D3", &[], 4, 14336, 200),
    size("Standard_D4", &[], 8, 28672, 400),
    size("Standard_D11", &[], 2, 14336, 100),
    size("Standard_D12", &[], 4, 28672, 200),
    size("Standard_D13", &[], 8, 57344, 400),
    size("Standard_D14", &[], 16, 114688, 800),
    size("Standard_D1_v2", &[], 1, 3584, 50),
    size("Standard_D2_v2", &[], 2, 7168, 100),
    size("Standard_D3_v2", &[], 4, 14336, 200),
    size("Standard_D4_v2", &[], 8, 28672, 400),
    size("Standard_D5_v2", &[], 16, 57344, 800),
    size("Standard_D11_v2", &[], 2, 14336, 100),
    size("Standard_D12_v2", &[], 4, 28672, 200),
    size("Standard_D13_v2", &[], 8, 57344, 400),
    size("Standard_D14_v2", &[], 16, 114688, 800),
    size("Standard_D15_v2", &[], 20, 143360, 1000),
    size("Standard_D2_v3", &[], 2, 8192, 50),
    size("Standard_D4_v3", &[], 4, 16384, 100),
    size("Standard_D8_v3", &[], 8, 32768, 200),
    size("Standard_D16_v3", &[], 16, 65536, 400),
    size("Standard_D32_v3", &[], 32, 131072, 800),
    size("Standard_D64_v3", &[], 64, 262144, 1600),
    size("Standard_E2_v3", &[], 2, 16384, 50),
    size("Standard_E4_v3", &[], 4, 32768, 100),
    size("Standard_E8_v3", &[], 8, 65536, 200),
    size("Standard_E16_v3", &[], 16, 131072, 400),
    size("Standard_E32_v3", &[], 32, 262144, 800),
    size("Standard_G1", &[], 2, 28672, 384),
    size("Standard_G2", &[], 4, 57344, 768),
    size("Standard_G3", &[], 8, 114688, 1536),
    size("Standard_G4", &[], 16, 229376, 3072),
    size("Standard_G5", &[], 32, 458752, 6144),
];

impl VmSize {
    /// Azure's default when a role names no `vmsize`.
    pub const DEFAULT: &'static KnownSize = &SIZES[1];

    /// Looks a name up (case-insensitively, as Azure does).
    pub fn parse(name: &str) -> VmSize {
        SIZES
            .iter()
            .find(|s| {
                s.name.eq_ignore_ascii_case(name)
                    || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
            })
            .map_or_else(|| VmSize::Unknown(name.to_owned()), VmSize::Known)
    }

    /// The limits to apply; an unknown size gets the default size's.
    pub fn limits(&self) -> VmLimits {
        match self {
            VmSize::Known(s) => s.limits,
            VmSize::Unknown(_) => Self::DEFAULT.limits,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            VmSize::Known(s) => s.name,
            VmSize::Unknown(n) => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_map_to_limits() {
        assert_eq!(
            VmSize::parse("Standard_D3_v2").limits(),
            VmLimits {
                cores: 4,
                memory_mib: 14336,
                disk_gib: 200
            }
        );
        assert_eq!(VmSize::parse("a6").name(), "A6");
        assert_eq!(VmSize::parse("A1").name(), "Small");
        assert_eq!(VmSize::parse("Huge"), VmSize::Unknown("Huge".into()));
        assert_eq!(VmSize::parse("Huge").limits(), VmSize::DEFAULT.limits);
    }
}
