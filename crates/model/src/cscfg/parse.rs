//! cscfg XML tree → [`ServiceConfiguration`].

use super::*;
use crate::diagnostic::Code;
use crate::read::Cx;
use crate::xml::Element;

pub(super) fn parse(name: &str, bytes: &[u8]) -> (Option<ServiceConfiguration>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let (source, ok) = crate::decode(name, bytes, &mut diags);
    let cfg = if ok {
        parse_source(&source, &mut diags)
    } else {
        None
    };
    (cfg, diags)
}

pub(crate) fn parse_source(
    source: &SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Option<ServiceConfiguration> {
    let root = crate::parse_root(source, "ServiceConfiguration", NAMESPACE, diags)?;
    let mut cx = Cx::new(source, diags, NAMESPACE);
    configuration(&mut cx, &root)
}

fn configuration(cx: &mut Cx<'_>, root: &Element) -> Option<ServiceConfiguration> {
    let mut a = cx.attrs(root);
    let service_name = cx.required_name(&mut a, "serviceName");
    let os_family = a.take("osFamily").and_then(|v| {
        let n = cx.uint(v, &root.name)?;
        if !(1..=7).contains(&n.value) {
            cx.emit(Code::W0410, v.value_span, format!("osFamily `{}` is not a known guest OS family", v.value))
                .help = Some("Azure's guest OS families are 2 to 7 (1 is retired); weft runs every family on the host's Linux".into());
        }
        Some(Located::new(n.value as u32, n.span))
    });
    let os_version = a.take("osVersion").and_then(|v| match OsVersion::parse(v.value.trim()) {
        Some(ver) => Some(Located::new(ver, v.value_span)),
        None => {
            cx.emit(Code::E0409, v.value_span, format!("osVersion `{}` is neither `*` nor a guest OS version", v.value))
                .help = Some("write `*` for the newest guest OS, or a version such as `WA-GUEST-OS-6.62_202311-01`".into());
            None
        }
    });
    let schema_version = a.take_string("schemaVersion");
    a.finish(cx);
    let mut roles = Vec::new();
    let mut network = None;
    let mut net_seen = None;
    for child in cx.children(root) {
        match child.name.as_str() {
            "Role" => roles.extend(role(cx, child)),
            "NetworkConfiguration" => {
                if cx.once(&mut net_seen, child, &root.name) {
                    network = Some(network_configuration(cx, child));
                }
            }
            _ => cx.unknown_element(child, &root.name),
        }
    }
    Some(ServiceConfiguration {
        source: cx.sink.source.clone(),
        service_name: service_name?,
        os_family,
        os_version,
        schema_version,
        roles,
        network,
        span: root.span,
    })
}

fn role(cx: &mut Cx<'_>, el: &Element) -> Option<RoleConfiguration> {
    let mut a = cx.attrs(el);
    let name = cx.required_name(&mut a, "name");
    let vm_name = a.take_string("vmName");
    a.finish(cx);
    let mut role = RoleConfiguration {
        name: name
            .clone()
            .unwrap_or_else(|| Located::new(String::new(), el.span)),
        instances: None,
        settings: Vec::new(),
        certificates: Vec::new(),
        os_image: None,
        vm_name,
        span: el.span,
    };
    let mut seen: [Option<&Element>; 4] = Default::default();
    for child in cx.children(el) {
        let slot = match child.name.as_str() {
            "Instances" => 0,
            "ConfigurationSettings" => 1,
            "Certificates" => 2,
            "OsImage" => 3,
            _ => {
                cx.unknown_element(child, &el.name);
                continue;
            }
        };
        if !cx.once(&mut seen[slot], child, &el.name) {
            continue;
        }
        let mut a = cx.attrs(child);
        match slot {
            0 => {
                role.instances = match a.take("count") {
                    Some(v) => cx.uint(v, &child.name),
                    None => {
                        cx.missing(child, "count");
                        None
                    }
                };
                a.finish(cx);
            }
            1 => {
                a.finish(cx);
                for s in cx.children(child) {
                    if s.name != "Setting" {
                        cx.unknown_element(s, &child.name);
                        continue;
                    }
                    let mut a = cx.attrs(s);
                    let name = cx.required_name(&mut a, "name");
                    let value = cx.required(&mut a, "value");
                    a.finish(cx);
                    if let (Some(name), Some(value)) = (name, value) {
                        role.settings.push(SettingValue { name, value });
                    }
                }
            }
            2 => {
                a.finish(cx);
                for c in cx.children(child) {
                    if c.name != "Certificate" {
                        cx.unknown_element(c, &child.name);
                        continue;
                    }
                    let mut a = cx.attrs(c);
                    let name = cx.required_name(&mut a, "name");
                    let thumbprint = cx.required(&mut a, "thumbprint");
                    let algorithm = match a.take("thumbprintAlgorithm") {
                        Some(v) => cx
                            .choice(v, &[("sha1", ThumbprintAlgorithm::Sha1)], &c.name)
                            .map(|v| v.value),
                        None => {
                            cx.missing(c, "thumbprintAlgorithm");
                            None
                        }
                    };
                    a.finish(cx);
                    if let (Some(name), Some(thumbprint), Some(algorithm)) =
                        (name, thumbprint, algorithm)
                    {
                        role.certificates.push(CertificateThumbprint {
                            name,
                            thumbprint,
                            algorithm,
                            span: c.span,
                        });
                    }
                }
            }
            _ => {
                role.os_image = cx.required_name(&mut a, "href");
                a.finish(cx);
            }
        }
    }
    name.map(|_| role)
}

fn network_configuration(cx: &mut Cx<'_>, el: &Element) -> NetworkConfiguration {
    cx.attrs(el).finish(cx);
    let mut net = NetworkConfiguration {
        span: el.span,
        ..Default::default()
    };
    for child in cx.children(el) {
        match child.name.as_str() {
            "AccessControls" => {
                for ac in cx.children(child) {
                    if ac.name != "AccessControl" {
                        cx.unknown_element(ac, &child.name);
                        continue;
                    }
                    let mut a = cx.attrs(ac);
                    let name = cx.required_name(&mut a, "name");
                    a.finish(cx);
                    let mut rules = Vec::new();
                    for r in cx.children(ac) {
                        if r.name != "Rule" {
                            cx.unknown_element(r, &ac.name);
                            continue;
                        }
                        rules.extend(rule(cx, r));
                    }
                    if let Some(name) = name {
                        net.access_controls.push(AccessControl {
                            name,
                            rules,
                            span: ac.span,
                        });
                    }
                }
            }
            "EndpointAcls" => {
                for e in cx.children(child) {
                    if e.name != "EndpointAcl" {
                        cx.unknown_element(e, &child.name);
                        continue;
                    }
                    let mut a = cx.attrs(e);
                    let role = cx.required_name(&mut a, "role");
                    let endpoint = cx.required_name(&mut a, "endpoint");
                    let access_control = cx.required_name(&mut a, "accessControl");
                    a.finish(cx);
                    if let (Some(role), Some(endpoint), Some(access_control)) =
                        (role, endpoint, access_control)
                    {
                        net.endpoint_acls.push(EndpointAcl {
                            role,
                            endpoint,
                            access_control,
                            span: e.span,
                        });
                    }
                }
            }
            _ => net.other.push(kept(child)),
        }
    }
    net
}

fn rule(cx: &mut Cx<'_>, el: &Element) -> Option<AclRule> {
    let mut a = cx.attrs(el);
    let order = match a.take("order") {
        Some(v) => cx.uint(v, &el.name),
        None => {
            cx.missing(el, "order");
            None
        }
    };
    let action = match a.take("action") {
        Some(v) => cx.choice(
            v,
            &[("permit", AclAction::Permit), ("deny", AclAction::Deny)],
            &el.name,
        ),
        None => {
            cx.missing(el, "action");
            None
        }
    };
    let remote_subnet = cx.required(&mut a, "remoteSubnet");
    let description = a.take("description").map(|d| d.value.clone());
    a.finish(cx);
    let remote_subnet = remote_subnet?;
    if !is_ipv4_cidr(remote_subnet.value.trim()) {
        cx.emit(
            Code::E0414,
            remote_subnet.span,
            format!(
                "remoteSubnet `{}` is not an IPv4 CIDR block",
                remote_subnet.value
            ),
        )
        .help = Some(
            "write an address and prefix length, for example `10.0.0.0/8` or `0.0.0.0/0`".into(),
        );
    }
    Some(AclRule {
        order: order?,
        action: action?.value,
        remote_subnet,
        description,
        span: el.span,
    })
}

fn is_ipv4_cidr(s: &str) -> bool {
    let Some((addr, len)) = s.split_once('/') else {
        return false;
    };
    addr.parse::<std::net::Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32)
}

fn kept(el: &Element) -> KeptElement {
    KeptElement {
        name: el.name.clone(),
        attributes: el
            .attrs
            .iter()
            .filter(|a| !a.is_meta())
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect(),
        children: el.children.iter().map(kept).collect(),
        text: el.text.clone(),
        span: el.span,
    }
}
