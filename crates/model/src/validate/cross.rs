//! Rules between the service definition and the service configuration:
//! the service and its roles match, every declared setting and certificate
//! has a value and nothing undeclared does, instance counts fit public port
//! ranges, and network configuration and load balancers name what exists.

use crate::cscfg::*;
use crate::csdef::*;
use crate::diagnostic::{Code, Sink};

/// The configuration's `serviceName` is the definition's name.
pub(super) fn service_name(c: &mut Sink<'_>, def: &ServiceDefinition, cfg: &ServiceConfiguration) {
    if cfg.service_name.value != def.name.value {
        c.emit_help(
            Code::E0401,
            cfg.service_name.span,
            format!(
                "serviceName is `{}` but the service definition is named `{}`",
                cfg.service_name.value, def.name.value
            ),
            format!("write serviceName=\"{}\"", def.name.value),
        );
    }
}

/// Every role of the definition has a `Role` in the configuration.
pub(super) fn missing_roles(c: &mut Sink<'_>, def: &ServiceDefinition, cfg: &ServiceConfiguration) {
    for role in &def.roles {
        if cfg.role(&role.name).is_none() {
            c.emit_help(
                Code::E0402,
                cfg.span,
                format!(
                    "role `{}` of the service definition has no `Role` in the configuration",
                    role.name.value
                ),
                format!(
                    "add `<Role name=\"{}\"><Instances count=\"1\" /></Role>` (the role is declared at {})",
                    role.name.value,
                    at(&def.source, role.name.span)
                ),
            );
        }
    }
}

/// The definition's role a configuration `Role` configures, if declared.
pub(super) fn declared_role<'d>(
    c: &mut Sink<'_>,
    def: &'d ServiceDefinition,
    rc: &RoleConfiguration,
) -> Option<&'d Role> {
    let Some(role) = def.role(&rc.name) else {
        let known: Vec<&str> = def.roles.iter().map(|r| r.name.value.as_str()).collect();
        c.emit_help(
            Code::E0403,
            rc.name.span,
            format!(
                "role `{}` is not declared in the service definition",
                rc.name.value
            ),
            format!("the service definition declares: {}", known.join(", ")),
        );
        return None;
    };
    Some(role)
}

/// The rules between one role of the definition and its `Role` in the
/// configuration: settings, certificates and public ports per instance.
pub(super) fn role_rules(
    c: &mut Sink<'_>,
    def: &ServiceDefinition,
    role: &Role,
    rc: &RoleConfiguration,
) {
    for s in &role.settings {
        if rc.setting(s).is_none() {
            c.emit_help(
                Code::E0405,
                rc.name.span,
                format!("setting `{}` of role `{}` has no value in the configuration", s.value, rc.name.value),
                format!(
                    "add `<Setting name=\"{}\" value=\"...\" />` to the role's `ConfigurationSettings` (declared at {})",
                    s.value,
                    at(&def.source, s.span)
                ),
            );
        }
    }
    for s in &rc.settings {
        if !role.declares_setting(&s.name) {
            let help = match plugin_module(&s.name) {
                Some(m) => format!(
                    "the setting belongs to the `{m}` plugin: import it in the service definition, or delete the setting"
                ),
                None => format!(
                    "declare `<Setting name=\"{}\" />` in the role of the service definition, or delete it here",
                    s.name.value
                ),
            };
            c.emit_help(
                Code::E0406,
                s.name.span,
                format!(
                    "setting `{}` is not declared by role `{}`",
                    s.name.value, rc.name.value
                ),
                help,
            );
        }
    }
    for cert in &role.certificates {
        if !rc.certificates.iter().any(|t| *t.name == cert.name.value) {
            c.emit_help(
                Code::E0407,
                rc.name.span,
                format!("certificate `{}` of role `{}` has no thumbprint in the configuration", cert.name.value, rc.name.value),
                format!(
                    "add `<Certificate name=\"{}\" thumbprint=\"...\" thumbprintAlgorithm=\"sha1\" />` to the role's `Certificates` (declared at {})",
                    cert.name.value,
                    at(&def.source, cert.name.span)
                ),
            );
        }
    }
    for t in &rc.certificates {
        if !role.declares_certificate(&t.name) {
            c.emit(
                Code::E0408,
                t.name.span,
                format!(
                    "certificate `{}` is not declared by role `{}`",
                    t.name.value, rc.name.value
                ),
            );
        }
    }
    let count = rc.instance_count();
    for e in &role.endpoints.instance_input {
        if let Some(r) = &e.public_ports
            && !r.is_empty()
            && u64::from(r.len()) < count
        {
            c.emit_help(
                Code::E0412,
                rc.instances.as_ref().map_or(rc.name.span, |i| i.span),
                format!(
                    "{count} instances of role `{}` need {count} public ports, but instance input endpoint `{}` has {} ({}-{})",
                    rc.name.value,
                    e.name.value,
                    r.len(),
                    r.min.value,
                    r.max.value
                ),
                "widen the endpoint's FixedPortRange or lower the instance count",
            );
        }
    }
}

/// `AddressAssignments` name declared roles and their input endpoints.
pub(super) fn address_assignments(
    c: &mut Sink<'_>,
    def: &ServiceDefinition,
    net: &NetworkConfiguration,
) {
    for el in net.other.iter().filter(|e| e.name == "AddressAssignments") {
        for ia in el.children.iter().filter(|e| e.name == "InstanceAddress") {
            if let Some(r) = ia.attribute("roleName")
                && def.role(r).is_none()
            {
                c.emit(
                    Code::E0413,
                    ia.span,
                    format!("InstanceAddress names role `{r}`, which is not declared"),
                );
            }
        }
        let vip_endpoints = el
            .children
            .iter()
            .filter(|e| e.name == "VirtualIPs")
            .flat_map(|e| &e.children)
            .filter(|e| e.name == "VirtualIP")
            .flat_map(|e| &e.children)
            .filter(|e| e.name == "Endpoints")
            .flat_map(|e| &e.children)
            .filter(|e| e.name == "Endpoint");
        for ep in vip_endpoints {
            let (Some(r), Some(n)) = (ep.attribute("role"), ep.attribute("name")) else {
                continue;
            };
            match def.role(r) {
                None => {
                    c.emit(
                        Code::E0413,
                        ep.span,
                        format!("VirtualIP endpoint names role `{r}`, which is not declared"),
                    );
                }
                Some(role) if !role.endpoints.input.iter().any(|e| *e.name == n) => {
                    c.emit(
                        Code::E0413,
                        ep.span,
                        format!("role `{r}` has no input endpoint `{n}`"),
                    );
                }
                Some(_) => {}
            }
        }
    }
}

/// Endpoint ACLs name declared roles, their input endpoints, and declared
/// access controls.
pub(super) fn endpoint_acls(c: &mut Sink<'_>, def: &ServiceDefinition, net: &NetworkConfiguration) {
    let acl_names: Vec<&str> = net
        .access_controls
        .iter()
        .map(|a| a.name.value.as_str())
        .collect();
    for acl in &net.endpoint_acls {
        match def.role(&acl.role) {
            None => {
                c.emit(
                    Code::E0413,
                    acl.role.span,
                    format!(
                        "endpoint ACL names role `{}`, which is not declared",
                        acl.role.value
                    ),
                );
            }
            Some(r)
                if !r
                    .endpoints
                    .input
                    .iter()
                    .any(|e| *e.name == acl.endpoint.value) =>
            {
                c.emit(
                    Code::E0413,
                    acl.endpoint.span,
                    format!(
                        "role `{}` has no input endpoint `{}`",
                        acl.role.value, acl.endpoint.value
                    ),
                );
            }
            Some(_) => {}
        }
        if !acl_names.contains(&acl.access_control.value.as_str()) {
            c.emit(
                Code::E0413,
                acl.access_control.span,
                format!(
                    "access control `{}` is not declared under `AccessControls`",
                    acl.access_control.value
                ),
            );
        }
    }
}

/// Input endpoints name load balancers the configuration declares.
pub(super) fn load_balancers(
    s: &mut Sink<'_>,
    def: &ServiceDefinition,
    cfg: &ServiceConfiguration,
) {
    let lbs: Vec<&str> = cfg
        .network
        .as_ref()
        .map(|n| n.load_balancer_names())
        .unwrap_or_default();
    for role in &def.roles {
        for e in &role.endpoints.input {
            if let Some(lb) = &e.load_balancer
                && !lbs.contains(&lb.value.as_str())
            {
                s.emit_help(
                    Code::E0415,
                    lb.span,
                    format!("load balancer `{}` is not declared in the configuration", lb.value),
                    format!("declare `<LoadBalancer name=\"{}\">` under `NetworkConfiguration/LoadBalancers` in the .cscfg", lb.value),
                );
            }
        }
    }
}

/// `file:line:col` of a span, for pointing from one file into the other.
fn at(source: &crate::source::SourceFile, span: crate::source::Span) -> String {
    let p = source.position(span.start);
    format!("{}:{}:{}", source.name(), p.line, p.column)
}

fn plugin_module(setting: &str) -> Option<&str> {
    setting
        .strip_prefix("Microsoft.WindowsAzure.Plugins.")?
        .split('.')
        .next()
}
