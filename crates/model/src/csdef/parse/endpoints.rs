//! A role's `Endpoints`: input, internal and instance input endpoints, with
//! their protocols, ports and port ranges.

use super::named_children;
use crate::csdef::*;
use crate::diagnostic::Code;
use crate::read::Cx;
use crate::xml::Element;

pub(super) fn endpoints(cx: &mut Cx<'_>, el: &Element, out: &mut Endpoints) {
    for e in cx.children(el) {
        match e.name.as_str() {
            "InputEndpoint" => out.input.extend(input_endpoint(cx, e)),
            "InternalEndpoint" => out.internal.extend(internal_endpoint(cx, e)),
            "InstanceInputEndpoint" => out.instance_input.extend(instance_input_endpoint(cx, e)),
            _ => cx.unknown_element(e, &el.name),
        }
    }
}

fn protocol_help(cx: &mut Cx<'_>, el: &Element, attr: &crate::xml::Attr, allowed: &[&str]) {
    let list: Vec<String> = allowed.iter().map(|p| format!("`{p}`")).collect();
    cx.emit(
        Code::E0105,
        attr.value_span,
        format!("protocol `{}` is not allowed on `{}`", attr.value, el.name),
    )
    .help = Some(format!("`{}` allows {}", el.name, list.join(", ")));
}

fn input_endpoint(cx: &mut Cx<'_>, el: &Element) -> Option<InputEndpoint> {
    let mut a = cx.attrs(el);
    let name = cx.required_name(&mut a, "name");
    let protocol = match a.take("protocol") {
        Some(p) => {
            let allowed = [
                ("http", InputProtocol::Http),
                ("https", InputProtocol::Https),
                ("tcp", InputProtocol::Tcp),
                ("udp", InputProtocol::Udp),
            ];
            let found = allowed
                .iter()
                .find(|(s, _)| *s == p.value)
                .map(|(_, v)| Located::new(*v, p.value_span));
            if found.is_none() {
                protocol_help(cx, el, p, &["http", "https", "tcp", "udp"]);
            }
            found
        }
        None => {
            cx.missing(el, "protocol");
            None
        }
    };
    let port = match a.take("port") {
        Some(p) => cx.port(p, &el.name),
        None => {
            cx.missing(el, "port");
            None
        }
    };
    let local_port = a.take("localPort").and_then(|p| {
        if p.value.trim() == "*" {
            return Some(Located::new(LocalPort::Any, p.value_span));
        }
        match p.value.trim().parse::<u16>() {
            Ok(n) if n >= 1 => Some(Located::new(LocalPort::Port(n), p.value_span)),
            _ => {
                cx.emit(
                    Code::E0104,
                    p.value_span,
                    format!(
                        "`localPort` is `{}`, neither a port from 1 to 65535 nor `*`",
                        p.value
                    ),
                )
                .help =
                    Some("write a port number, or `*` to let the fabric pick a free port".into());
                None
            }
        }
    });
    let certificate = a.take_string("certificate");
    let load_balancer = a.take_string("loadBalancer");
    let load_balancer_probe = a.take_string("loadBalancerProbe");
    let ignore_role_instance_status = a
        .take("ignoreRoleInstanceStatus")
        .and_then(|v| cx.boolean(v, &el.name))
        .is_some_and(|v| v.value);
    let idle_timeout_in_minutes = a
        .take("idleTimeoutInMinutes")
        .and_then(|v| cx.uint(v, &el.name));
    let load_balancer_distribution = a.take("loadBalancerDistribution").and_then(|v| {
        cx.choice(
            v,
            &[
                ("sourceIP", LoadBalancerDistribution::SourceIp),
                (
                    "sourceIPProtocol",
                    LoadBalancerDistribution::SourceIpProtocol,
                ),
            ],
            &el.name,
        )
    });
    a.finish(cx);
    for c in cx.children(el) {
        cx.unknown_element(c, &el.name);
    }
    Some(InputEndpoint {
        name: name?,
        protocol: protocol?,
        port: port?,
        local_port,
        certificate,
        load_balancer,
        load_balancer_probe,
        ignore_role_instance_status,
        idle_timeout_in_minutes,
        load_balancer_distribution,
        span: el.span,
    })
}

fn port_range(cx: &mut Cx<'_>, el: &Element) -> Option<PortRange> {
    let mut a = cx.attrs(el);
    let min = match a.take("min") {
        Some(v) => cx.port(v, &el.name),
        None => {
            cx.missing(el, "min");
            None
        }
    };
    let max = match a.take("max") {
        Some(v) => cx.port(v, &el.name),
        None => {
            cx.missing(el, "max");
            None
        }
    };
    a.finish(cx);
    Some(PortRange {
        min: min?,
        max: max?,
        span: el.span,
    })
}

fn internal_endpoint(cx: &mut Cx<'_>, el: &Element) -> Option<InternalEndpoint> {
    let mut a = cx.attrs(el);
    let name = cx.required_name(&mut a, "name");
    let protocol = match a.take("protocol") {
        Some(p) => {
            let allowed = [
                ("http", InternalProtocol::Http),
                ("tcp", InternalProtocol::Tcp),
                ("udp", InternalProtocol::Udp),
                ("any", InternalProtocol::Any),
            ];
            let found = allowed
                .iter()
                .find(|(s, _)| *s == p.value)
                .map(|(_, v)| Located::new(*v, p.value_span));
            if found.is_none() {
                protocol_help(cx, el, p, &["http", "tcp", "udp", "any"]);
            }
            found
        }
        None => {
            cx.missing(el, "protocol");
            None
        }
    };
    let port = a.take("port").and_then(|p| cx.port(p, &el.name));
    a.finish(cx);
    let mut fixed_ports = Vec::new();
    for c in cx.children(el) {
        match c.name.as_str() {
            "FixedPort" => {
                let mut a = cx.attrs(c);
                let p = match a.take("port") {
                    Some(p) => cx.port(p, &c.name),
                    None => {
                        cx.missing(c, "port");
                        None
                    }
                };
                a.finish(cx);
                fixed_ports.extend(p.map(FixedPorts::Port));
            }
            "FixedPortRange" => fixed_ports.extend(port_range(cx, c).map(FixedPorts::Range)),
            _ => cx.unknown_element(c, &el.name),
        }
    }
    Some(InternalEndpoint {
        name: name?,
        protocol: protocol?,
        port,
        fixed_ports,
        span: el.span,
    })
}

fn instance_input_endpoint(cx: &mut Cx<'_>, el: &Element) -> Option<InstanceInputEndpoint> {
    let mut a = cx.attrs(el);
    let name = cx.required_name(&mut a, "name");
    let protocol = match a.take("protocol") {
        Some(p) => {
            let allowed = [
                ("tcp", TransportProtocol::Tcp),
                ("udp", TransportProtocol::Udp),
            ];
            let found = allowed
                .iter()
                .find(|(s, _)| *s == p.value)
                .map(|(_, v)| Located::new(*v, p.value_span));
            if found.is_none() {
                protocol_help(cx, el, p, &["tcp", "udp"]);
            }
            found
        }
        None => {
            cx.missing(el, "protocol");
            None
        }
    };
    let local_port = match a.take("localPort") {
        Some(p) => cx.port(p, &el.name),
        None => {
            cx.missing(el, "localPort");
            None
        }
    };
    a.finish(cx);
    let mut public_ports = None;
    let mut seen = None;
    for c in cx.children(el) {
        if c.name != "AllocatePublicPortFrom" {
            cx.unknown_element(c, &el.name);
            continue;
        }
        if !cx.once(&mut seen, c, &el.name) {
            continue;
        }
        cx.attrs(c).finish(cx);
        for r in named_children(cx, c, "FixedPortRange") {
            if public_ports.is_some() {
                cx.emit(
                    Code::E0009,
                    r.span,
                    "`AllocatePublicPortFrom` holds more than one `FixedPortRange`",
                );
            } else {
                public_ports = port_range(cx, r);
            }
        }
    }
    let name = name?;
    if public_ports.is_none() && seen.is_none() {
        cx.emit(Code::E0112, el.span, format!("instance input endpoint `{}` has no public port range", name.value))
            .help = Some("add `<AllocatePublicPortFrom><FixedPortRange min=\"...\" max=\"...\" /></AllocatePublicPortFrom>`".into());
    }
    Some(InstanceInputEndpoint {
        name,
        protocol: protocol?,
        local_port: local_port?,
        public_ports,
        span: el.span,
    })
}
