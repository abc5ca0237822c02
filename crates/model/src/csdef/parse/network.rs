//! Service-wide networking under the csdef root: `LoadBalancerProbes` and
//! `NetworkTrafficRules`.

use crate::csdef::*;
use crate::read::Cx;
use crate::xml::Element;

pub(super) fn probe(cx: &mut Cx<'_>, el: &Element) -> Option<LoadBalancerProbe> {
    let mut a = cx.attrs(el);
    let name = cx.required_name(&mut a, "name");
    let protocol = match a.take("protocol") {
        Some(v) => cx.choice(
            v,
            &[("tcp", ProbeProtocol::Tcp), ("http", ProbeProtocol::Http)],
            &el.name,
        ),
        None => {
            cx.missing(el, "protocol");
            None
        }
    };
    let path = a.take_string("path");
    let port = a.take("port").and_then(|v| cx.port(v, &el.name));
    let interval_in_seconds = a
        .take("intervalInSeconds")
        .and_then(|v| cx.uint(v, &el.name));
    let timeout_in_seconds = a
        .take("timeoutInSeconds")
        .and_then(|v| cx.uint(v, &el.name));
    a.finish(cx);
    for child in cx.children(el) {
        cx.unknown_element(child, &el.name);
    }
    Some(LoadBalancerProbe {
        name: name?,
        protocol: protocol?,
        path,
        port,
        interval_in_seconds,
        timeout_in_seconds,
        span: el.span,
    })
}

pub(super) fn traffic_rule(cx: &mut Cx<'_>, el: &Element) -> OnlyAllowTrafficTo {
    let a = cx.attrs(el);
    a.finish(cx);
    let mut destinations = Vec::new();
    let mut source = TrafficSource::FromRoles(Vec::new());
    for child in cx.children(el) {
        match child.name.as_str() {
            "Destinations" => {
                for d in cx.children(child) {
                    if d.name != "RoleEndpoint" {
                        cx.unknown_element(d, &child.name);
                        continue;
                    }
                    let mut a = cx.attrs(d);
                    let endpoint = cx.required_name(&mut a, "endpointName");
                    let role = cx.required_name(&mut a, "roleName");
                    a.finish(cx);
                    if let (Some(role), Some(endpoint)) = (role, endpoint) {
                        destinations.push(RoleEndpointRef {
                            role,
                            endpoint,
                            span: d.span,
                        });
                    }
                }
            }
            "AllowAllTraffic" => source = TrafficSource::All,
            "WhenSource" => {
                let mut a = cx.attrs(child);
                match a.take("matches") {
                    Some(m) => {
                        cx.choice(m, &[("AnyRule", ())], &child.name);
                    }
                    None => cx.missing(child, "matches"),
                }
                a.finish(cx);
                let mut roles = Vec::new();
                for f in cx.children(child) {
                    if f.name != "FromRole" {
                        cx.unknown_element(f, &child.name);
                        continue;
                    }
                    let mut a = cx.attrs(f);
                    roles.extend(cx.required_name(&mut a, "roleName"));
                    a.finish(cx);
                }
                source = TrafficSource::FromRoles(roles);
            }
            _ => cx.unknown_element(child, &el.name),
        }
    }
    OnlyAllowTrafficTo {
        destinations,
        source,
        span: el.span,
    }
}
