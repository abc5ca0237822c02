//! `load`: the fabric's entry point. Reads a definition and a configuration,
//! validates them, and returns a checked, resolved model only when nothing
//! is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cscfg::{OsVersion, ServiceConfiguration};
use crate::csdef::{Role, ServiceDefinition};
use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::render::Sources;
use crate::vmsize::VmLimits;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The model has errors (and possibly warnings); render them with
    /// [`crate::render_text`] and `sources`.
    #[error("the service model is invalid: {}", crate::summary(diagnostics))]
    Invalid {
        diagnostics: Vec<Diagnostic>,
        sources: Sources,
    },
}

/// A definition and a configuration that agree, with each role resolved.
#[derive(Debug, Clone)]
pub struct ServiceModel {
    pub definition: ServiceDefinition,
    pub configuration: ServiceConfiguration,
    pub roles: Vec<ResolvedRole>,
    /// Warnings found while checking (there are no errors).
    pub warnings: Vec<Diagnostic>,
}

/// One role as the fabric runs it.
#[derive(Debug, Clone)]
pub struct ResolvedRole {
    /// The role as declared in the definition.
    pub definition: Role,
    pub instances: u32,
    pub limits: VmLimits,
    /// Every setting's effective value (declared settings and the settings
    /// of imported plugins that the configuration sets).
    pub settings: BTreeMap<String, String>,
    /// Certificate name → thumbprint.
    pub certificates: BTreeMap<String, String>,
    /// The VM role's image (`OsImage href`).
    pub os_image: Option<String>,
}

impl ServiceModel {
    /// Checks and resolves already-read files (pure). Errors, and warning
    /// W0303 (a role with nothing runnable on Linux), refuse the model.
    pub fn from_bytes(
        csdef: (&str, &[u8]),
        cscfg: (&str, &[u8]),
    ) -> Result<ServiceModel, LoadError> {
        let report = crate::check(csdef, Some(cscfg));
        let refuse = report
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error || d.code == Code::W0303);
        let (Some(definition), Some(configuration), false) =
            (report.definition, report.configuration, refuse)
        else {
            return Err(LoadError::Invalid {
                diagnostics: report.diagnostics,
                sources: report.sources,
            });
        };
        let roles = definition
            .roles
            .iter()
            .filter_map(|role| {
                let rc = configuration.role(&role.name)?;
                Some(ResolvedRole {
                    definition: role.clone(),
                    instances: u32::try_from(rc.instance_count()).unwrap_or(u32::MAX),
                    limits: role.vm_size().limits(),
                    settings: rc
                        .settings
                        .iter()
                        .map(|s| (s.name.value.clone(), s.value.value.clone()))
                        .collect(),
                    certificates: rc
                        .certificates
                        .iter()
                        .map(|c| (c.name.value.clone(), c.thumbprint.value.clone()))
                        .collect(),
                    os_image: rc.os_image.as_ref().map(|i| i.value.clone()),
                })
            })
            .collect();
        Ok(ServiceModel {
            definition,
            configuration,
            roles,
            warnings: report.diagnostics,
        })
    }

    pub fn role(&self, name: &str) -> Option<&ResolvedRole> {
        self.roles.iter().find(|r| *r.definition.name == name)
    }

    pub fn upgrade_domains(&self) -> u32 {
        self.definition.upgrade_domains()
    }

    pub fn os_version(&self) -> OsVersion {
        self.configuration.os_version()
    }
}

/// Reads, checks and resolves `csdef` and `cscfg`. Diagnostics name the
/// files by the paths given.
pub fn load(csdef: &Path, cscfg: &Path) -> Result<ServiceModel, LoadError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| LoadError::Io {
            path: p.to_owned(),
            source,
        })
    };
    let (def_bytes, cfg_bytes) = (read(csdef)?, read(cscfg)?);
    let (def_name, cfg_name) = (csdef.display().to_string(), cscfg.display().to_string());
    tracing::debug!(csdef = %def_name, cscfg = %cfg_name, "loading service model");
    ServiceModel::from_bytes((&def_name, &def_bytes), (&cfg_name, &cfg_bytes))
}
