//! The service configuration (`ServiceConfiguration.*.cscfg`): instance
//! counts, setting values, certificate thumbprints, guest OS and network
//! configuration for each role of a definition.

mod network;
pub(crate) mod parse;

pub use network::*;

use crate::diagnostic::Diagnostic;
use crate::source::{Located, SourceFile, Span};

/// The cscfg namespace.
pub const NAMESPACE: &str =
    "http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceConfiguration";

#[derive(Debug, Clone)]
pub struct ServiceConfiguration {
    pub source: SourceFile,
    pub service_name: Located<String>,
    pub os_family: Option<Located<u32>>,
    pub os_version: Option<Located<OsVersion>>,
    pub schema_version: Option<Located<String>>,
    pub roles: Vec<RoleConfiguration>,
    pub network: Option<NetworkConfiguration>,
    pub span: Span,
}

impl ServiceConfiguration {
    /// Parses a cscfg from its bytes (pure; see [`crate::ServiceDefinition::parse`]).
    pub fn parse(name: &str, bytes: &[u8]) -> (Option<ServiceConfiguration>, Vec<Diagnostic>) {
        parse::parse(name, bytes)
    }

    pub fn role(&self, name: &str) -> Option<&RoleConfiguration> {
        self.roles.iter().find(|r| *r.name == name)
    }

    /// The guest OS family: as written, else the family of a specific
    /// `osVersion`, else 1 (Azure's documented default).
    pub fn os_family(&self) -> u32 {
        match (&self.os_family, self.os_version()) {
            (Some(f), _) => f.value,
            (None, OsVersion::Specific(v)) => v.family,
            (None, OsVersion::Latest) => 1,
        }
    }

    /// The guest OS version; `*` (latest, patched by the fabric) when absent.
    pub fn os_version(&self) -> OsVersion {
        self.os_version
            .as_ref()
            .map_or(OsVersion::Latest, |v| v.value.clone())
    }
}

/// `osVersion`: `*` or a specific guest OS release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsVersion {
    /// `*`: the newest release of the family, upgraded automatically.
    Latest,
    /// `WA-GUEST-OS-<family>.<release>_<yyyymm>-<nn>`.
    Specific(GuestOsVersion),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestOsVersion {
    pub family: u32,
    pub release: u32,
    pub year: u32,
    pub month: u32,
    pub build: u32,
}

impl OsVersion {
    /// Parses `*` or `WA-GUEST-OS-x.y_yyyymm-nn`.
    pub fn parse(s: &str) -> Option<OsVersion> {
        if s == "*" {
            return Some(OsVersion::Latest);
        }
        let rest = s.strip_prefix("WA-GUEST-OS-")?;
        let (fam_rel, date_build) = rest.split_once('_')?;
        let (family, release) = fam_rel.split_once('.')?;
        let (date, build) = date_build.split_once('-')?;
        let digits = |t: &str| {
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u32>().ok())
                .flatten()
        };
        if date.len() != 6 || !date.is_ascii() {
            return None;
        }
        let month = digits(&date[4..])?;
        if !(1..=12).contains(&month) {
            return None;
        }
        Some(OsVersion::Specific(GuestOsVersion {
            family: digits(family)?,
            release: digits(release)?,
            year: digits(&date[..4])?,
            month,
            build: digits(build)?,
        }))
    }
}

/// One `Role` of the configuration.
#[derive(Debug, Clone)]
pub struct RoleConfiguration {
    pub name: Located<String>,
    pub instances: Option<Located<u64>>,
    pub settings: Vec<SettingValue>,
    pub certificates: Vec<CertificateThumbprint>,
    /// `OsImage href`: the image of a VM role.
    pub os_image: Option<Located<String>>,
    /// `vmName` (extended support): the prefix of instance computer names.
    pub vm_name: Option<Located<String>>,
    pub span: Span,
}

impl RoleConfiguration {
    pub fn instance_count(&self) -> u64 {
        self.instances.as_ref().map_or(0, |i| i.value)
    }

    pub fn setting(&self, name: &str) -> Option<&SettingValue> {
        self.settings.iter().find(|s| *s.name == name)
    }
}

/// `ConfigurationSettings/Setting name value`.
#[derive(Debug, Clone)]
pub struct SettingValue {
    pub name: Located<String>,
    pub value: Located<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThumbprintAlgorithm {
    Sha1,
}

/// `Certificates/Certificate name thumbprint thumbprintAlgorithm`.
#[derive(Debug, Clone)]
pub struct CertificateThumbprint {
    pub name: Located<String>,
    pub thumbprint: Located<String>,
    pub algorithm: ThumbprintAlgorithm,
    pub span: Span,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_versions_parse() {
        assert_eq!(OsVersion::parse("*"), Some(OsVersion::Latest));
        assert_eq!(
            OsVersion::parse("WA-GUEST-OS-6.62_202311-01"),
            Some(OsVersion::Specific(GuestOsVersion {
                family: 6,
                release: 62,
                year: 2023,
                month: 11,
                build: 1
            }))
        );
        for bad in [
            "WA-GUEST-OS-6.62_\u{e9}\u{e9}\u{e9}-01",
            "latest",
            "WA-GUEST-OS-6.62",
            "WA-GUEST-OS-6.62_202313-01",
            "WA-GUEST-OS-x.1_201201-01",
            "",
        ] {
            assert_eq!(OsVersion::parse(bad), None, "{bad}");
        }
    }
}
