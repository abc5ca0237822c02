//! A role in the service definition and everything it declares.

use super::Endpoints;
use crate::source::{Located, Span};
use crate::vmsize::VmSize;
use crate::xpath::RoleInstanceXPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    Web,
    Worker,
    VirtualMachine,
}

impl RoleKind {
    /// The element name (`WebRole`, ...).
    pub fn element(self) -> &'static str {
        match self {
            RoleKind::Web => "WebRole",
            RoleKind::Worker => "WorkerRole",
            RoleKind::VirtualMachine => "VirtualMachineRole",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Role {
    pub kind: RoleKind,
    pub name: Located<String>,
    pub vmsize: Option<Located<VmSize>>,
    pub enable_native_code_execution: Option<bool>,
    pub runtime: Option<Runtime>,
    pub startup: Vec<StartupTask>,
    pub settings: Vec<Located<String>>,
    pub endpoints: Endpoints,
    pub local_storage: Vec<LocalStorage>,
    pub certificates: Vec<CertificateDecl>,
    pub imports: Vec<Import>,
    pub sites: Vec<Site>,
    pub contents: Vec<Content>,
    pub span: Span,
}

impl Role {
    /// The VM size, Azure's default (Small) when none is written.
    pub fn vm_size(&self) -> VmSize {
        self.vmsize
            .as_ref()
            .map_or(VmSize::Known(VmSize::DEFAULT), |v| v.value.clone())
    }

    /// The `ProgramEntryPoint`, if the role has one.
    pub fn program_entry_point(&self) -> Option<&ProgramEntryPoint> {
        match self.runtime.as_ref()?.entry_point.as_ref()? {
            EntryPoint::Program(p) => Some(p),
            EntryPoint::NetFx(_) => None,
        }
    }

    pub fn declares_setting(&self, name: &str) -> bool {
        self.settings.iter().any(|s| s.value == name)
            || self.imports.iter().any(|i| i.module.provides_setting(name))
    }

    pub fn declares_certificate(&self, name: &str) -> bool {
        self.certificates.iter().any(|c| *c.name == name)
            || self
                .imports
                .iter()
                .any(|i| i.module.provides_certificate(name))
    }

    pub fn local_storage(&self, name: &str) -> Option<&LocalStorage> {
        self.local_storage.iter().find(|l| *l.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionContext {
    /// Unprivileged (Azure's default).
    #[default]
    Limited,
    /// Administrator / root.
    Elevated,
}

/// `Runtime`: how the role's entry point runs.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    pub execution_context: ExecutionContext,
    pub environment: Vec<EnvironmentVariable>,
    pub entry_point: Option<EntryPoint>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum EntryPoint {
    Program(ProgramEntryPoint),
    /// A .NET assembly; cannot run on Linux.
    NetFx(NetFxEntryPoint),
}

/// `ProgramEntryPoint`: weft runs `command_line` with `/bin/sh -c` in the approot.
#[derive(Debug, Clone)]
pub struct ProgramEntryPoint {
    pub command_line: Located<String>,
    /// Ready as soon as the process starts (else when it reports Ready).
    pub set_ready_on_process_start: bool,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct NetFxEntryPoint {
    pub assembly_name: Located<String>,
    pub target_framework_version: Located<String>,
    pub span: Span,
}

/// `Environment/Variable`.
#[derive(Debug, Clone)]
pub struct EnvironmentVariable {
    pub name: Located<String>,
    pub value: VariableValue,
}

#[derive(Debug, Clone)]
pub enum VariableValue {
    Literal(Located<String>),
    RoleInstance(Located<RoleInstanceXPath>),
    /// An xpath that is not one of the documented paths (a warning); the
    /// agent sets the variable to the empty string.
    UnknownXPath(Located<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskType {
    /// Runs to completion before the next task; non-zero exit fails the start.
    #[default]
    Simple,
    /// Runs alongside; does not block the role.
    Background,
    /// Runs alongside; the instance does not stop until it exits.
    Foreground,
}

/// `Startup/Task`.
#[derive(Debug, Clone)]
pub struct StartupTask {
    pub command_line: Located<String>,
    pub execution_context: ExecutionContext,
    pub task_type: TaskType,
    pub environment: Vec<EnvironmentVariable>,
    pub span: Span,
}

/// `LocalResources/LocalStorage`: a per-instance scratch directory.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    pub name: Located<String>,
    pub size_in_mb: Option<Located<u64>>,
    pub clean_on_role_recycle: bool,
    pub span: Span,
}

impl LocalStorage {
    /// Size when `sizeInMB` is not written (Azure's default).
    pub const DEFAULT_SIZE_MB: u64 = 100;

    pub fn size_mb(&self) -> u64 {
        self.size_in_mb
            .as_ref()
            .map_or(Self::DEFAULT_SIZE_MB, |s| s.value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreLocation {
    LocalMachine,
    CurrentUser,
}

/// `Certificates/Certificate`: a certificate the role needs; its thumbprint
/// comes from the configuration.
#[derive(Debug, Clone)]
pub struct CertificateDecl {
    pub name: Located<String>,
    pub store_location: StoreLocation,
    /// `My`, `Root`, `CA`, ... or a custom store name.
    pub store_name: String,
    pub permission_level: PermissionLevel,
    pub span: Span,
}

/// Which role processes may read the private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PermissionLevel {
    /// Every role process (Azure's default).
    #[default]
    LimitedOrElevated,
    /// Only elevated processes.
    Elevated,
}

/// `Imports/Import moduleName`.
#[derive(Debug, Clone)]
pub struct Import {
    pub module: ImportModule,
    pub span: Span,
}

/// The plugin modules Azure's SDK offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportModule {
    RemoteAccess,
    RemoteForwarder,
    Diagnostics,
    Caching,
    Connect,
    WebDeploy,
    Other(String),
}

impl ImportModule {
    pub fn parse(name: &str) -> Self {
        match name {
            "RemoteAccess" => Self::RemoteAccess,
            "RemoteForwarder" => Self::RemoteForwarder,
            "Diagnostics" => Self::Diagnostics,
            "Caching" => Self::Caching,
            "Connect" => Self::Connect,
            "WebDeploy" => Self::WebDeploy,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::RemoteAccess => "RemoteAccess",
            Self::RemoteForwarder => "RemoteForwarder",
            Self::Diagnostics => "Diagnostics",
            Self::Caching => "Caching",
            Self::Connect => "Connect",
            Self::WebDeploy => "WebDeploy",
            Self::Other(n) => n,
        }
    }

    /// An imported module declares its own settings, named
    /// `Microsoft.WindowsAzure.Plugins.<Module>.<Setting>`, which the
    /// configuration may set without the definition listing them.
    pub fn provides_setting(&self, setting: &str) -> bool {
        setting
            .strip_prefix("Microsoft.WindowsAzure.Plugins.")
            .and_then(|rest| rest.strip_prefix(self.name()))
            .is_some_and(|rest| rest.starts_with('.'))
    }

    /// RemoteAccess declares the certificate that encrypts its password.
    pub fn provides_certificate(&self, name: &str) -> bool {
        *self == Self::RemoteAccess
            && name == "Microsoft.WindowsAzure.Plugins.RemoteAccess.PasswordEncryption"
    }

    /// What weft offers instead on Linux.
    pub fn linux_alternative(&self) -> &'static str {
        match self {
            Self::RemoteAccess | Self::RemoteForwarder => {
                "remote desktop does not exist on Linux hosts; reach instances with `weft logs` or ssh to the host"
            }
            Self::Diagnostics => {
                "weft captures each instance's stdout and stderr: read them with `weft logs <instance>`"
            }
            Self::Caching => {
                "use an external cache (for example Redis) named in a configuration setting"
            }
            Self::Connect => {
                "use the host's own networking (VPN or WireGuard) instead of Azure Connect"
            }
            Self::WebDeploy => "deploy a new package with `weft deploy` instead of Web Deploy",
            Self::Other(_) => "weft does not know this module; the role runs without it",
        }
    }
}

/// `Sites/Site`: an IIS web site (not run on Linux).
#[derive(Debug, Clone)]
pub struct Site {
    pub name: Located<String>,
    pub physical_directory: Option<Located<String>>,
    pub bindings: Vec<Binding>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub name: Option<Located<String>>,
    pub endpoint_name: Located<String>,
    pub host_header: Option<Located<String>>,
    pub span: Span,
}

/// `Contents/Content destination` with its `SourceDirectory path`.
#[derive(Debug, Clone)]
pub struct Content {
    pub destination: Located<String>,
    pub source_directory: Option<Located<String>>,
    pub span: Span,
}
