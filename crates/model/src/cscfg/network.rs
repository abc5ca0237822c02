//! `NetworkConfiguration` of a cscfg: access control lists typed, everything
//! else (virtual network site, address assignments, load balancers, reserved
//! IPs ...) kept as a positioned element tree.

use crate::source::{Located, Span};

#[derive(Debug, Clone, Default)]
pub struct NetworkConfiguration {
    pub access_controls: Vec<AccessControl>,
    pub endpoint_acls: Vec<EndpointAcl>,
    /// Every other child of `NetworkConfiguration`, as written.
    pub other: Vec<KeptElement>,
    pub span: Span,
}

impl NetworkConfiguration {
    pub fn access_control(&self, name: &str) -> Option<&AccessControl> {
        self.access_controls.iter().find(|a| *a.name == name)
    }

    /// Names of `LoadBalancers/LoadBalancer` (internal load balancers).
    pub fn load_balancer_names(&self) -> Vec<&str> {
        self.other
            .iter()
            .filter(|e| e.name == "LoadBalancers")
            .flat_map(|e| e.children.iter())
            .filter(|e| e.name == "LoadBalancer")
            .filter_map(|e| e.attribute("name"))
            .collect()
    }
}

/// `AccessControls/AccessControl name` with its ordered rules.
#[derive(Debug, Clone)]
pub struct AccessControl {
    pub name: Located<String>,
    pub rules: Vec<AclRule>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclAction {
    Permit,
    Deny,
}

/// `Rule order action remoteSubnet description`.
#[derive(Debug, Clone)]
pub struct AclRule {
    pub order: Located<u64>,
    pub action: AclAction,
    /// An IPv4 CIDR block, for example `10.0.0.0/8`.
    pub remote_subnet: Located<String>,
    pub description: Option<String>,
    pub span: Span,
}

/// `EndpointAcls/EndpointAcl role endpoint accessControl`.
#[derive(Debug, Clone)]
pub struct EndpointAcl {
    pub role: Located<String>,
    pub endpoint: Located<String>,
    pub access_control: Located<String>,
    pub span: Span,
}

/// An element weft keeps but does not interpret.
#[derive(Debug, Clone)]
pub struct KeptElement {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<KeptElement>,
    pub text: String,
    pub span: Span,
}

impl KeptElement {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
