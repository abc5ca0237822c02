//! The service definition (`ServiceDefinition.csdef`): roles, their
//! endpoints, settings, storage, startup tasks and runtime, as typed values
//! that remember where in the file they were written.

mod endpoints;
pub(crate) mod parse;
mod role;

pub use endpoints::*;
pub use role::*;

use crate::diagnostic::Diagnostic;
use crate::source::{Located, SourceFile, Span};

/// The csdef namespace.
pub const NAMESPACE: &str = "http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceDefinition";

/// Azure's default `upgradeDomainCount`.
pub const DEFAULT_UPGRADE_DOMAIN_COUNT: u32 = 5;

/// A parsed `ServiceDefinition.csdef`.
#[derive(Debug, Clone)]
pub struct ServiceDefinition {
    /// The decoded file, for rendering diagnostics.
    pub source: SourceFile,
    pub name: Located<String>,
    pub schema_version: Option<Located<String>>,
    pub upgrade_domain_count: Option<Located<u64>>,
    pub topology_change_discovery: TopologyChangeDiscovery,
    pub load_balancer_probes: Vec<LoadBalancerProbe>,
    pub network_traffic_rules: Vec<OnlyAllowTrafficTo>,
    pub roles: Vec<Role>,
    /// The root element's name.
    pub span: Span,
}

impl ServiceDefinition {
    /// Parses a csdef from its bytes. `name` is the file name shown in
    /// diagnostics. Returns the model when the file could be read as a
    /// service definition at all, and every problem found while reading it.
    /// Pure: no I/O.
    pub fn parse(name: &str, bytes: &[u8]) -> (Option<ServiceDefinition>, Vec<Diagnostic>) {
        parse::parse(name, bytes)
    }

    /// The number of upgrade domains (Azure's default 5 when not written).
    pub fn upgrade_domains(&self) -> u32 {
        self.upgrade_domain_count
            .as_ref()
            .map_or(DEFAULT_UPGRADE_DOMAIN_COUNT, |c| {
                c.value.clamp(1, 20) as u32
            })
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| *r.name == name)
    }

    pub fn probe(&self, name: &str) -> Option<&LoadBalancerProbe> {
        self.load_balancer_probes.iter().find(|p| *p.name == name)
    }
}

/// `topologyChangeDiscovery`: how instances learn of topology changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopologyChangeDiscovery {
    /// Changes are sent one upgrade domain at a time (Azure's default).
    #[default]
    UpgradeDomainWalk,
    /// Changes are sent to all instances at once.
    Blast,
}

/// A root-level `LoadBalancerProbe`: a custom health probe.
#[derive(Debug, Clone)]
pub struct LoadBalancerProbe {
    pub name: Located<String>,
    pub protocol: Located<ProbeProtocol>,
    /// Required for http probes: the path that must answer 200 OK.
    pub path: Option<Located<String>>,
    /// The port to probe; the endpoint's own port when absent.
    pub port: Option<Located<u16>>,
    pub interval_in_seconds: Option<Located<u64>>,
    pub timeout_in_seconds: Option<Located<u64>>,
    pub span: Span,
}

impl LoadBalancerProbe {
    pub const DEFAULT_INTERVAL_SECONDS: u64 = 15;
    pub const DEFAULT_TIMEOUT_SECONDS: u64 = 31;

    pub fn interval_seconds(&self) -> u64 {
        self.interval_in_seconds
            .as_ref()
            .map_or(Self::DEFAULT_INTERVAL_SECONDS, |v| v.value)
    }

    pub fn timeout_seconds(&self) -> u64 {
        self.timeout_in_seconds
            .as_ref()
            .map_or(Self::DEFAULT_TIMEOUT_SECONDS, |v| v.value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeProtocol {
    Tcp,
    Http,
}

/// `NetworkTrafficRules/OnlyAllowTrafficTo`: internal endpoints that accept
/// traffic only from the named sources.
#[derive(Debug, Clone)]
pub struct OnlyAllowTrafficTo {
    pub destinations: Vec<RoleEndpointRef>,
    pub source: TrafficSource,
    pub span: Span,
}

/// `RoleEndpoint endpointName roleName`.
#[derive(Debug, Clone)]
pub struct RoleEndpointRef {
    pub role: Located<String>,
    pub endpoint: Located<String>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum TrafficSource {
    /// `AllowAllTraffic`
    All,
    /// `WhenSource matches="AnyRule"` with `FromRole roleName` elements.
    FromRoles(Vec<Located<String>>),
}
