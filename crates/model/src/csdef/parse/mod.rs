//! csdef XML tree → [`ServiceDefinition`]: the `ServiceDefinition` root and
//! its roles. Each room below parses one part of a role or of the root.

mod endpoints;
mod network;
mod resources;
mod runtime;

use super::*;
use crate::diagnostic::Code;
use crate::read::Cx;
use crate::vmsize::VmSize;
use crate::xml::Element;

pub(super) fn parse(name: &str, bytes: &[u8]) -> (Option<ServiceDefinition>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let (source, ok) = crate::decode(name, bytes, &mut diags);
    let def = if ok {
        parse_source(&source, &mut diags)
    } else {
        None
    };
    (def, diags)
}

pub(crate) fn parse_source(
    source: &SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Option<ServiceDefinition> {
    let root = crate::parse_root(source, "ServiceDefinition", NAMESPACE, diags)?;
    let mut cx = Cx::new(source, diags, NAMESPACE);
    definition(&mut cx, &root)
}

fn definition(cx: &mut Cx<'_>, root: &Element) -> Option<ServiceDefinition> {
    let mut a = cx.attrs(root);
    let name = cx.required_name(&mut a, "name");
    let schema_version = a.take_string("schemaVersion");
    let upgrade_domain_count = a
        .take("upgradeDomainCount")
        .and_then(|v| cx.uint(v, "ServiceDefinition"));
    let topology_change_discovery = a
        .take("topologyChangeDiscovery")
        .and_then(|v| {
            cx.choice(
                v,
                &[
                    (
                        "UpgradeDomainWalk",
                        TopologyChangeDiscovery::UpgradeDomainWalk,
                    ),
                    ("Blast", TopologyChangeDiscovery::Blast),
                ],
                "ServiceDefinition",
            )
        })
        .map(|v| v.value)
        .unwrap_or_default();
    a.finish(cx);

    let mut roles = Vec::new();
    let mut probes = Vec::new();
    let mut rules = Vec::new();
    for child in cx.children(root) {
        match child.name.as_str() {
            "WebRole" => roles.extend(role(cx, child, RoleKind::Web)),
            "WorkerRole" => roles.extend(role(cx, child, RoleKind::Worker)),
            "VirtualMachineRole" => roles.extend(role(cx, child, RoleKind::VirtualMachine)),
            "LoadBalancerProbes" => {
                for p in cx.children(child) {
                    match p.name.as_str() {
                        "LoadBalancerProbe" => probes.extend(network::probe(cx, p)),
                        _ => cx.unknown_element(p, &child.name),
                    }
                }
            }
            "NetworkTrafficRules" => {
                for r in cx.children(child) {
                    match r.name.as_str() {
                        "OnlyAllowTrafficTo" => rules.push(network::traffic_rule(cx, r)),
                        _ => cx.unknown_element(r, &child.name),
                    }
                }
            }
            _ => cx.unknown_element(child, &root.name),
        }
    }
    Some(ServiceDefinition {
        source: cx.sink.source.clone(),
        name: name?,
        schema_version,
        upgrade_domain_count,
        topology_change_discovery,
        load_balancer_probes: probes,
        network_traffic_rules: rules,
        roles,
        span: root.span,
    })
}

fn role(cx: &mut Cx<'_>, el: &Element, kind: RoleKind) -> Option<Role> {
    let mut a = cx.attrs(el);
    let name = cx.required_name(&mut a, "name");
    let vmsize = a.take("vmsize").map(|v| {
        let size = VmSize::parse(&v.value);
        if let VmSize::Unknown(n) = &size {
            cx.emit(Code::W0119, v.value_span, format!("unknown vmsize `{n}`; weft runs the role with Small's limits (1 core, 1792 MiB)"))
                .help = Some("use a documented Cloud Services size such as `Small`, `Standard_D2_v2` or `Standard_A2_v2`".into());
        }
        Located::new(size, v.value_span)
    });
    let enable_native_code_execution = a
        .take("enableNativeCodeExecution")
        .and_then(|v| cx.boolean(v, &el.name))
        .map(|v| v.value);
    a.finish(cx);

    let mut role = Role {
        kind,
        name: name
            .clone()
            .unwrap_or_else(|| Located::new(String::new(), el.span)),
        vmsize,
        enable_native_code_execution,
        runtime: None,
        startup: Vec::new(),
        settings: Vec::new(),
        endpoints: Endpoints::default(),
        local_storage: Vec::new(),
        certificates: Vec::new(),
        imports: Vec::new(),
        sites: Vec::new(),
        contents: Vec::new(),
        span: el.span,
    };
    let mut seen: [Option<&Element>; 9] = Default::default();
    const ONCE: [&str; 9] = [
        "Runtime",
        "Startup",
        "ConfigurationSettings",
        "Endpoints",
        "LocalResources",
        "Certificates",
        "Imports",
        "Sites",
        "Contents",
    ];
    for child in cx.children(el) {
        // Earlier SDKs allowed LocalStorage directly under the role.
        if child.name == "LocalStorage" {
            role.local_storage
                .extend(resources::local_storage(cx, child));
            continue;
        }
        let Some(slot) = ONCE.iter().position(|n| *n == child.name) else {
            cx.unknown_element(child, &el.name);
            continue;
        };
        if (kind == RoleKind::VirtualMachine
            && matches!(ONCE[slot], "Runtime" | "Startup" | "Sites"))
            || (kind == RoleKind::Worker && ONCE[slot] == "Sites")
        {
            cx.unknown_element(child, &el.name);
            continue;
        }
        if !cx.once(&mut seen[slot], child, &el.name) {
            continue;
        }
        let mut a = cx.attrs(child);
        if child.name == "Startup" {
            // `priority` is documented as "for internal use only".
            let _ = a.take("priority");
        }
        if child.name != "Runtime" {
            a.finish(cx);
        }
        match ONCE[slot] {
            "Runtime" => role.runtime = Some(runtime::runtime(cx, child)),
            "Startup" => {
                for t in cx.children(child) {
                    match t.name.as_str() {
                        "Task" => role.startup.extend(runtime::task(cx, t)),
                        _ => cx.unknown_element(t, &child.name),
                    }
                }
            }
            "ConfigurationSettings" => {
                for s in named_children(cx, child, "Setting") {
                    let mut a = cx.attrs(s);
                    role.settings.extend(cx.required_name(&mut a, "name"));
                    a.finish(cx);
                }
            }
            "Endpoints" => endpoints::endpoints(cx, child, &mut role.endpoints),
            "LocalResources" => {
                for s in named_children(cx, child, "LocalStorage") {
                    role.local_storage.extend(resources::local_storage(cx, s));
                }
            }
            "Certificates" => {
                for c in named_children(cx, child, "Certificate") {
                    role.certificates.extend(resources::certificate(cx, c));
                }
            }
            "Imports" => {
                for i in named_children(cx, child, "Import") {
                    role.imports.extend(resources::import(cx, i));
                }
            }
            "Sites" => role.sites.extend(resources::sites(cx, child)),
            "Contents" => {
                for c in named_children(cx, child, "Content") {
                    role.contents.extend(resources::content(cx, c));
                }
            }
            _ => {}
        }
    }
    name.map(|_| role)
}

/// The children of `el` named `want`; others are reported as unknown.
fn named_children<'e>(cx: &mut Cx<'_>, el: &'e Element, want: &str) -> Vec<&'e Element> {
    let mut out = Vec::new();
    for c in cx.children(el) {
        if c.name == want {
            out.push(c);
        } else {
            cx.unknown_element(c, &el.name);
        }
    }
    out
}
