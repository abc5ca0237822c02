//! Role endpoints: input (load-balanced on the VIP), internal (instance to
//! instance) and instance input (one public port per instance).

use crate::source::{Located, Span};

#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub input: Vec<InputEndpoint>,
    pub internal: Vec<InternalEndpoint>,
    pub instance_input: Vec<InstanceInputEndpoint>,
}

impl Endpoints {
    /// Names of every endpoint with its span, in file order per kind.
    pub fn names(&self) -> impl Iterator<Item = &Located<String>> {
        self.input
            .iter()
            .map(|e| &e.name)
            .chain(self.internal.iter().map(|e| &e.name))
            .chain(self.instance_input.iter().map(|e| &e.name))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names().any(|n| n.value == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputProtocol {
    Http,
    Https,
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalProtocol {
    Http,
    Tcp,
    Udp,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportProtocol {
    Tcp,
    Udp,
}

/// `localPort`: a fixed port or `*` (any free port, chosen by the fabric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalPort {
    Port(u16),
    Any,
}

/// `InputEndpoint`: load-balanced on the service's VIP.
#[derive(Debug, Clone)]
pub struct InputEndpoint {
    pub name: Located<String>,
    pub protocol: Located<InputProtocol>,
    /// The public port on the VIP.
    pub port: Located<u16>,
    /// The port instances listen on; `port` when absent.
    pub local_port: Option<Located<LocalPort>>,
    pub certificate: Option<Located<String>>,
    /// An internal load balancer declared in the configuration.
    pub load_balancer: Option<Located<String>>,
    pub load_balancer_probe: Option<Located<String>>,
    pub ignore_role_instance_status: bool,
    pub idle_timeout_in_minutes: Option<Located<u64>>,
    /// `loadBalancerDistribution`: how the VIP spreads new connections.
    pub load_balancer_distribution: Option<Located<LoadBalancerDistribution>>,
    pub span: Span,
}

/// Azure's `loadBalancerDistribution` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadBalancerDistribution {
    /// No attribute: every new connection may go to any instance (Azure
    /// hashes the 5-tuple; weft goes round-robin).
    #[default]
    FiveTuple,
    /// `sourceIP`: a client address always reaches the same instance.
    SourceIp,
    /// `sourceIPProtocol`: the same, per protocol.
    SourceIpProtocol,
}

impl InputEndpoint {
    /// Azure's default TCP idle timeout.
    pub const DEFAULT_IDLE_TIMEOUT_MINUTES: u64 = 4;

    pub fn local_port(&self) -> LocalPort {
        self.local_port
            .as_ref()
            .map_or(LocalPort::Port(*self.port), |p| p.value)
    }

    pub fn distribution(&self) -> LoadBalancerDistribution {
        self.load_balancer_distribution
            .as_ref()
            .map_or_else(LoadBalancerDistribution::default, |d| d.value)
    }

    pub fn idle_timeout_minutes(&self) -> u64 {
        self.idle_timeout_in_minutes
            .as_ref()
            .map_or(Self::DEFAULT_IDLE_TIMEOUT_MINUTES, |v| v.value)
    }
}

/// `InternalEndpoint`: reachable from the service's other instances.
#[derive(Debug, Clone)]
pub struct InternalEndpoint {
    pub name: Located<String>,
    pub protocol: Located<InternalProtocol>,
    /// A fixed port; the fabric picks one when absent.
    pub port: Option<Located<u16>>,
    pub fixed_ports: Vec<FixedPorts>,
    pub span: Span,
}

/// `FixedPort` or `FixedPortRange` under an internal endpoint.
#[derive(Debug, Clone)]
pub enum FixedPorts {
    Port(Located<u16>),
    Range(PortRange),
}

/// `FixedPortRange min max` (inclusive).
#[derive(Debug, Clone)]
pub struct PortRange {
    pub min: Located<u16>,
    pub max: Located<u16>,
    pub span: Span,
}

impl PortRange {
    /// Number of ports in the range (0 when min > max).
    pub fn len(&self) -> u32 {
        (u32::from(*self.max) + 1).saturating_sub(u32::from(*self.min))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `InstanceInputEndpoint`: each instance gets its own public port from
/// `AllocatePublicPortFrom/FixedPortRange`.
#[derive(Debug, Clone)]
pub struct InstanceInputEndpoint {
    pub name: Located<String>,
    pub protocol: Located<TransportProtocol>,
    pub local_port: Located<u16>,
    pub public_ports: Option<PortRange>,
    pub span: Span,
}
