//! From a checked service model to what runs: each instance's
//! [`InstanceSpec`] and each public endpoint's VIP. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weft_agent::protocol::{
    EndpointKind, EndpointProtocol, EndpointSpec, EnvValue, EnvVar, InstanceSpec,
    LocalResourceSpec, PackageRef, ProbeSpec, ResourceLimits, StartupTaskSpec, TaskType,
};
use weft_model::{
    ExecutionContext, FixedPorts, InputProtocol, InternalProtocol, LoadBalancerDistribution,
    LocalPort, ProbeProtocol, ResolvedRole, RoleInstanceXPath, ServiceModel, TransportProtocol,
    VariableValue,
};

use crate::placement;

/// A deployment's roles and public endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentPlan {
    pub roles: Vec<RolePlan>,
    pub vips: Vec<VipPlan>,
    /// The cscfg's endpoint access control lists (`EndpointAcls`), applied
    /// by each VIP to the clients it lets in.
    #[serde(default)]
    pub access: Vec<EndpointAccess>,
    /// What the plan could not honour, in words (shown on the operation).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolePlan {
    pub name: String,
    pub upgrade_domain_count: u32,
    pub instances: Vec<InstanceSpec>,
}

/// The access control list of one endpoint of one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointAccess {
    pub role: String,
    pub endpoint: String,
    /// The `AccessControl`'s name in the cscfg.
    pub access_control: String,
    pub rules: Vec<AccessRule>,
}

/// `Rule order action remoteSubnet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRule {
    pub order: u64,
    pub permit: bool,
    pub remote_subnet: String,
}

impl DeploymentPlan {
    /// The rules for `endpoint` of `role`; `None` when it has no list (open
    /// to everyone).
    pub fn access_for(&self, role: &str, endpoint: &str) -> Option<&EndpointAccess> {
        access_for(&self.access, role, endpoint)
    }
}

/// The list in `access` for `endpoint` of `role`, if any.
pub fn access_for<'a>(
    access: &'a [EndpointAccess],
    role: &str,
    endpoint: &str,
) -> Option<&'a EndpointAccess> {
    access
        .iter()
        .find(|a| a.role == role && a.endpoint == endpoint)
}

/// One load-balanced public port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipPlan {
    pub role: String,
    pub endpoint: String,
    /// For an instance input endpoint: the one instance behind it.
    pub instance: Option<String>,
    pub requested_port: u16,
    pub protocol: String,
    /// `idleTimeoutInMinutes` of an input endpoint (Azure's default 4);
    /// `None` for instance input endpoints (the load balancer's default).
    #[serde(default)]
    pub idle_timeout_minutes: Option<u64>,
    /// `loadBalancerDistribution="sourceIP"` (or `sourceIPProtocol`): each
    /// client address keeps reaching the same instance.
    #[serde(default)]
    pub source_ip_affinity: bool,
}

/// Plans deployment `deployment_id` of `model` from `package`.
pub fn plan(
    deployment_id: &str,
    model: &ServiceModel,
    package: &PackageRef,
    fault_domains: u32,
) -> DeploymentPlan {
    let uds = model.upgrade_domains();
    let mut out = DeploymentPlan {
        roles: Vec::new(),
        vips: Vec::new(),
        access: endpoint_access(model),
        notes: Vec::new(),
    };
    for role in &model.roles {
        let name = role.definition.name.value.clone();
        let endpoints = endpoints(model, role);
        let placed = placement::place(&name, role.instances, uds, fault_domains);
        let instances = placed
            .iter()
            .map(|p| InstanceSpec {
                deployment_id: deployment_id.to_owned(),
                role: name.clone(),
                instance_id: p.instance_id.clone(),
                update_domain: p.update_domain,
                fault_domain: p.fault_domain,
                incarnation: 1,
                reimage: 0,
                stopped: false,
                package: package.clone(),
                startup: startup(role),
                entry_point: role
                    .definition
                    .program_entry_point()
                    .map(|e| e.command_line.value.clone()),
                set_ready_on_process_start: role
                    .definition
                    .program_entry_point()
                    .is_some_and(|e| e.set_ready_on_process_start),
                environment: role
                    .definition
                    .runtime
                    .as_ref()
                    .map(|r| environment(&r.environment))
                    .unwrap_or_default(),
                settings: role.settings.clone(),
                local_resources: role
                    .definition
                    .local_storage
                    .iter()
                    .map(|l| LocalResourceSpec {
                        name: l.name.value.clone(),
                        size_mb: l.size_mb(),
                        clean_on_role_recycle: l.clean_on_role_recycle,
                    })
                    .collect(),
                endpoints: endpoints.clone(),
                elevated: role
                    .definition
                    .runtime
                    .as_ref()
                    .is_some_and(|r| r.execution_context == ExecutionContext::Elevated),
                limits: ResourceLimits {
                    cores: Some(role.limits.cores),
                    memory_mb: Some(u64::from(role.limits.memory_mib)),
                },
            })
            .collect();
        vips(role, &placed, &mut out);
        out.roles.push(RolePlan {
            name,
            upgrade_domain_count: uds,
            instances,
        });
    }
    out
}

fn vips(role: &ResolvedRole, placed: &[placement::Placement], out: &mut DeploymentPlan) {
    let name = &role.definition.name.value;
    for input in &role.definition.endpoints.input {
        if input.protocol.value == InputProtocol::Udp {
            out.notes.push(format!(
                "input endpoint {name}/{}: udp is not load-balanced yet; no VIP",
                input.name.value
            ));
            continue;
        }
        out.vips.push(VipPlan {
            role: name.clone(),
            endpoint: input.name.value.clone(),
            instance: None,
            requested_port: input.port.value,
            protocol: input_protocol(input.protocol.value).to_owned(),
            idle_timeout_minutes: Some(input.idle_timeout_minutes()),
            source_ip_affinity: input.distribution() != LoadBalancerDistribution::FiveTuple,
        });
    }
    for input in &role.definition.endpoints.instance_input {
        if input.protocol.value == TransportProtocol::Udp {
            out.notes.push(format!(
                "instance input endpoint {name}/{}: udp is not load-balanced yet; no VIP",
                input.name.value
            ));
            continue;
        }
        let Some(range) = &input.public_ports else {
            out.notes.push(format!(
                "instance input endpoint {name}/{} has no public port range; no VIP",
                input.name.value
            ));
            continue;
        };
        for p in placed {
            let port = u32::from(range.min.value) + p.index;
            if port > u32::from(range.max.value) {
                out.notes.push(format!(
                    "instance input endpoint {name}/{}: range {}-{} has no port left for {}",
                    input.name.value, range.min.value, range.max.value, p.instance_id
                ));
                continue;
            }
            out.vips.push(VipPlan {
                role: name.clone(),
                endpoint: input.name.value.clone(),
                instance: Some(p.instance_id.clone()),
                requested_port: port as u16,
                protocol: "tcp".to_owned(),
                idle_timeout_minutes: None,
                source_ip_affinity: false,
            });
        }
    }
}

fn input_protocol(p: InputProtocol) -> &'static str {
    match p {
        InputProtocol::Http => "http",
        InputProtocol::Https => "https",
        InputProtocol::Tcp => "tcp",
        InputProtocol::Udp => "udp",
    }
}

fn endpoints(model: &ServiceModel, role: &ResolvedRole) -> Vec<EndpointSpec> {
    let eps = &role.definition.endpoints;
    let mut out = Vec::new();
    for e in &eps.input {
        out.push(EndpointSpec {
            name: e.name.value.clone(),
            kind: EndpointKind::Input,
            protocol: match e.protocol.value {
                InputProtocol::Http => EndpointProtocol::Http,
                InputProtocol::Https => EndpointProtocol::Https,
                InputProtocol::Tcp => EndpointProtocol::Tcp,
                InputProtocol::Udp => EndpointProtocol::Udp,
            },
            local_port: match e.local_port() {
                LocalPort::Port(p) => Some(p),
                LocalPort::Any => None,
            },
            ignore_role_instance_status: e.ignore_role_instance_status,
            probe: e
                .load_balancer_probe
                .as_ref()
                .and_then(|name| model.definition.probe(name))
                .map(|p| ProbeSpec {
                    http_path: (p.protocol.value == ProbeProtocol::Http).then(|| {
                        p.path
                            .as_ref()
                            .map_or_else(|| "/".to_owned(), |path| path.value.clone())
                    }),
                    port: p.port.as_ref().map(|port| port.value),
                    interval_ms: p.interval_seconds().saturating_mul(1000),
                    timeout_ms: p.timeout_seconds().saturating_mul(1000),
                }),
        });
    }
    for e in &eps.internal {
        let fixed = e.fixed_ports.first().map(|f| match f {
            FixedPorts::Port(p) => p.value,
            FixedPorts::Range(r) => r.min.value,
        });
        out.push(EndpointSpec {
            name: e.name.value.clone(),
            kind: EndpointKind::Internal,
            protocol: match e.protocol.value {
                InternalProtocol::Http => EndpointProtocol::Http,
                InternalProtocol::Tcp => EndpointProtocol::Tcp,
                InternalProtocol::Udp => EndpointProtocol::Udp,
                InternalProtocol::Any => EndpointProtocol::Any,
            },
            local_port: e.port.as_ref().map(|p| p.value).or(fixed),
            ignore_role_instance_status: false,
            probe: None,
        });
    }
    for e in &eps.instance_input {
        out.push(EndpointSpec {
            name: e.name.value.clone(),
            kind: EndpointKind::InstanceInput,
            protocol: match e.protocol.value {
                TransportProtocol::Tcp => EndpointProtocol::Tcp,
                TransportProtocol::Udp => EndpointProtocol::Udp,
            },
            local_port: Some(e.local_port.value),
            ignore_role_instance_status: false,
            probe: None,
        });
    }
    out
}

fn startup(role: &ResolvedRole) -> Vec<StartupTaskSpec> {
    role.definition
        .startup
        .iter()
        .map(|t| StartupTaskSpec {
            command_line: t.command_line.value.clone(),
            task_type: match t.task_type {
                weft_model::TaskType::Simple => TaskType::Simple,
                weft_model::TaskType::Background => TaskType::Background,
                weft_model::TaskType::Foreground => TaskType::Foreground,
            },
            elevated: t.execution_context == ExecutionContext::Elevated,
            environment: environment(&t.environment),
        })
        .collect()
}

fn environment(vars: &[weft_model::EnvironmentVariable]) -> Vec<EnvVar> {
    vars.iter()
        .map(|v| EnvVar {
            name: v.name.value.clone(),
            value: match &v.value {
                VariableValue::Literal(s) => EnvValue::Literal(s.value.clone()),
                VariableValue::RoleInstance(x) => EnvValue::XPath(xpath_text(&x.value)),
                VariableValue::UnknownXPath(s) => EnvValue::XPath(s.value.clone()),
            },
        })
        .collect()
}

/// The canonical text of a documented xpath (what
/// [`RoleInstanceXPath::parse`] reads back).
pub fn xpath_text(x: &RoleInstanceXPath) -> String {
    const I: &str = "/RoleEnvironment/CurrentInstance";
    match x {
        RoleInstanceXPath::Emulated => "/RoleEnvironment/Deployment/@emulated".into(),
        RoleInstanceXPath::DeploymentId => "/RoleEnvironment/Deployment/@id".into(),
        RoleInstanceXPath::InstanceId => format!("{I}/@id"),
        RoleInstanceXPath::RoleName => format!("{I}/@roleName"),
        RoleInstanceXPath::UpdateDomain => format!("{I}/@updateDomain"),
        RoleInstanceXPath::FaultDomain => format!("{I}/@faultDomain"),
        RoleInstanceXPath::ConfigurationSetting(n) => {
            format!("{I}/ConfigurationSettings/ConfigurationSetting[@name='{n}']/@value")
        }
        RoleInstanceXPath::LocalResourcePath(n) => {
            format!("{I}/LocalResources/LocalResource[@name='{n}']/@path")
        }
        RoleInstanceXPath::LocalResourceSize(n) => {
            format!("{I}/LocalResources/LocalResource[@name='{n}']/@sizeInMB")
        }
        RoleInstanceXPath::EndpointAddress(n) => {
            format!("{I}/Endpoints/Endpoint[@name='{n}']/@address")
        }
        RoleInstanceXPath::EndpointPort(n) => format!("{I}/Endpoints/Endpoint[@name='{n}']/@port"),
        RoleInstanceXPath::EndpointProtocol(n) => {
            format!("{I}/Endpoints/Endpoint[@name='{n}']/@protocol")
        }
    }
}

/// Every instance id of a plan, for collision checks.
pub fn instance_ids(plan: &DeploymentPlan) -> impl Iterator<Item = &str> {
    plan.roles
        .iter()
        .flat_map(|r| r.instances.iter().map(|i| i.instance_id.as_str()))
}

/// Settings of a plan's roles (role → name → value), for views and tests.
pub fn settings(plan: &DeploymentPlan) -> BTreeMap<&str, &BTreeMap<String, String>> {
    plan.roles
        .iter()
        .filter_map(|r| r.instances.first().map(|i| (r.name.as_str(), &i.settings)))
        .collect()
}

/// The cscfg's `EndpointAcls`, each with its `AccessControl`'s rules. A list
/// naming an access control the cscfg lacks is a validation error before
/// this runs; it is skipped here.
fn endpoint_access(model: &ServiceModel) -> Vec<EndpointAccess> {
    let Some(network) = model.configuration.network.as_ref() else {
        return Vec::new();
    };
    network
        .endpoint_acls
        .iter()
        .filter_map(|acl| {
            let control = network.access_control(&acl.access_control.value)?;
            Some(EndpointAccess {
                role: acl.role.value.clone(),
                endpoint: acl.endpoint.value.clone(),
                access_control: control.name.value.clone(),
                rules: control
                    .rules
                    .iter()
                    .map(|r| AccessRule {
                        order: r.order.value,
                        permit: r.action == weft_model::AclAction::Permit,
                        remote_subnet: r.remote_subnet.value.clone(),
                    })
                    .collect(),
            })
        })
        .collect()
}
