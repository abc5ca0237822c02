//! csdef XML tree → [`ServiceDefinition`].

use super::*;
use crate::diagnostic::Code;
use crate::read::Cx;
use crate::vmsize::VmSize;
use crate::xml::Element;
use crate::xpath::RoleInstanceXPath;

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
                        "LoadBalancerProbe" => probes.extend(probe(cx, p)),
                        _ => cx.unknown_element(p, &child.name),
                    }
                }
            }
            "NetworkTrafficRules" => {
                for r in cx.children(child) {
                    match r.name.as_str() {
                        "OnlyAllowTrafficTo" => rules.push(traffic_rule(cx, r)),
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

fn probe(cx: &mut Cx<'_>, el: &Element) -> Option<LoadBalancerProbe> {
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

fn traffic_rule(cx: &mut Cx<'_>, el: &Element) -> OnlyAllowTrafficTo {
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
            role.local_storage.extend(local_storage(cx, child));
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
            "Runtime" => role.runtime = Some(runtime(cx, child)),
            "Startup" => {
                for t in cx.children(child) {
                    match t.name.as_str() {
                        "Task" => role.startup.extend(task(cx, t)),
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
            "Endpoints" => endpoints(cx, child, &mut role.endpoints),
            "LocalResources" => {
                for s in named_children(cx, child, "LocalStorage") {
                    role.local_storage.extend(local_storage(cx, s));
                }
            }
            "Certificates" => {
                for c in named_children(cx, child, "Certificate") {
                    let mut a = cx.attrs(c);
                    let name = cx.required_name(&mut a, "name");
                    let store_location = match a.take("storeLocation") {
                        Some(v) => cx.choice(
                            v,
                            &[
                                ("LocalMachine", StoreLocation::LocalMachine),
                                ("CurrentUser", StoreLocation::CurrentUser),
                            ],
                            &c.name,
                        ),
                        None => {
                            cx.missing(c, "storeLocation");
                            None
                        }
                    };
                    let store_name = cx.required_name(&mut a, "storeName");
                    let permission_level = a
                        .take("permissionLevel")
                        .and_then(|v| {
                            cx.choice(
                                v,
                                &[
                                    ("limitedOrElevated", PermissionLevel::LimitedOrElevated),
                                    ("elevated", PermissionLevel::Elevated),
                                ],
                                &c.name,
                            )
                        })
                        .map(|v| v.value)
                        .unwrap_or_default();
                    a.finish(cx);
                    if let (Some(name), Some(store_location), Some(store_name)) =
                        (name, store_location, store_name)
                    {
                        role.certificates.push(CertificateDecl {
                            name,
                            store_location: store_location.value,
                            store_name: store_name.value,
                            permission_level,
                            span: c.span,
                        });
                    }
                }
            }
            "Imports" => {
                for i in named_children(cx, child, "Import") {
                    let mut a = cx.attrs(i);
                    let module = cx.required_name(&mut a, "moduleName");
                    a.finish(cx);
                    if let Some(m) = module {
                        let module = ImportModule::parse(&m);
                        let d = cx.emit(
                            Code::W0304,
                            m.span,
                            format!("import `{}` is a Windows Azure plugin; it is ignored on Linux hosts", module.name()),
                        );
                        d.help = Some(module.linux_alternative().to_owned());
                        role.imports.push(Import {
                            module,
                            span: i.span,
                        });
                    }
                }
            }
            "Sites" => {
                for s in named_children(cx, child, "Site") {
                    role.sites.extend(site(cx, s));
                }
                if !role.sites.is_empty() {
                    let n = role.sites.len();
                    cx.emit(
                        Code::W0302,
                        child.span,
                        format!("{n} IIS site{} declared here {} not run on Linux hosts", if n == 1 { "" } else { "s" }, if n == 1 { "is" } else { "are" }),
                    )
                    .help = Some("run your own HTTP server from a `ProgramEntryPoint`, listening on the endpoint's port (from a RoleInstanceValue environment variable or the runtime endpoint)".into());
                }
            }
            "Contents" => {
                for c in named_children(cx, child, "Content") {
                    role.contents.extend(content(cx, c));
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

fn execution_context(
    cx: &mut Cx<'_>,
    a: &mut crate::read::Attrs<'_>,
    element: &str,
) -> ExecutionContext {
    a.take("executionContext")
        .and_then(|v| {
            cx.choice(
                v,
                &[
                    ("limited", ExecutionContext::Limited),
                    ("elevated", ExecutionContext::Elevated),
                ],
                element,
            )
        })
        .map(|v| v.value)
        .unwrap_or_default()
}

fn runtime(cx: &mut Cx<'_>, el: &Element) -> Runtime {
    let mut a = cx.attrs(el);
    let execution_context = execution_context(cx, &mut a, &el.name);
    a.finish(cx);
    let mut rt = Runtime {
        execution_context,
        environment: Vec::new(),
        entry_point: None,
        span: el.span,
    };
    let (mut env_seen, mut ep_seen) = (None, None);
    for child in cx.children(el) {
        match child.name.as_str() {
            "Environment" => {
                if cx.once(&mut env_seen, child, &el.name) {
                    rt.environment = environment(cx, child);
                }
            }
            "EntryPoint" => {
                if !cx.once(&mut ep_seen, child, &el.name) {
                    continue;
                }
                cx.attrs(child).finish(cx);
                let mut points = cx.children(child).into_iter();
                let Some(p) = points.next() else {
                    cx.emit(
                        Code::E0007,
                        child.span,
                        "`EntryPoint` has neither `ProgramEntryPoint` nor `NetFxEntryPoint`",
                    );
                    continue;
                };
                for extra in points {
                    cx.emit(
                        Code::E0009,
                        extra.span,
                        "`EntryPoint` holds more than one entry point",
                    );
                }
                rt.entry_point = entry_point(cx, p, &child.name);
            }
            _ => cx.unknown_element(child, &el.name),
        }
    }
    rt
}

fn entry_point(cx: &mut Cx<'_>, p: &Element, parent: &str) -> Option<EntryPoint> {
    let mut a = cx.attrs(p);
    match p.name.as_str() {
        "ProgramEntryPoint" => {
            let command_line = cx.required(&mut a, "commandLine");
            let ready = match a.take("setReadyOnProcessStart") {
                Some(v) => cx.boolean(v, &p.name).is_some_and(|v| v.value),
                None => {
                    cx.missing(p, "setReadyOnProcessStart");
                    false
                }
            };
            a.finish(cx);
            for c in cx.children(p) {
                cx.unknown_element(c, &p.name);
            }
            let command_line = command_line?;
            check_command_line(cx, &command_line, "ProgramEntryPoint");
            Some(EntryPoint::Program(ProgramEntryPoint {
                command_line,
                set_ready_on_process_start: ready,
                span: p.span,
            }))
        }
        "NetFxEntryPoint" => {
            let assembly_name = cx.required(&mut a, "assemblyName");
            let target_framework_version = cx.required(&mut a, "targetFrameworkVersion");
            a.finish(cx);
            cx.emit(
                Code::W0301,
                p.span,
                "`NetFxEntryPoint` runs a .NET Framework assembly, which cannot run on Linux hosts",
            )
            .help = Some(
                "use `<ProgramEntryPoint commandLine=\"...\" setReadyOnProcessStart=\"true\" />` with a Linux command line (for example `dotnet MyRole.dll` built for .NET on Linux)".into(),
            );
            Some(EntryPoint::NetFx(NetFxEntryPoint {
                assembly_name: assembly_name?,
                target_framework_version: target_framework_version?,
                span: p.span,
            }))
        }
        _ => {
            cx.unknown_element(p, parent);
            None
        }
    }
}

/// Empty command lines are errors; Windows programs are warned about.
fn check_command_line(cx: &mut Cx<'_>, cmd: &Located<String>, what: &str) {
    let trimmed = cmd.value.trim();
    if trimmed.is_empty() {
        cx.emit(
            Code::E0207,
            cmd.span,
            format!("the `commandLine` of `{what}` is empty"),
        );
        return;
    }
    let program = trimmed
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_matches('"');
    let lower = program.to_ascii_lowercase();
    let windows = [".cmd", ".bat", ".exe", ".ps1"]
        .iter()
        .find(|ext| lower.ends_with(*ext));
    if let Some(ext) = windows {
        cx.emit(
            Code::W0305,
            cmd.span,
            format!("`{program}` is a Windows program ({ext}); weft runs command lines with `/bin/sh -c` on Linux"),
        )
        .help = Some("ship a Linux equivalent (for example a shell script) and name it in `commandLine`".into());
    }
}

fn environment(cx: &mut Cx<'_>, el: &Element) -> Vec<EnvironmentVariable> {
    cx.attrs(el).finish(cx);
    let mut vars: Vec<EnvironmentVariable> = Vec::new();
    for v in named_children(cx, el, "Variable") {
        let mut a = cx.attrs(v);
        let name = cx.required_name(&mut a, "name");
        let literal = a.take_string("value");
        a.finish(cx);
        let mut xpath = None;
        for c in cx.children(v) {
            if c.name != "RoleInstanceValue" {
                cx.unknown_element(c, &v.name);
                continue;
            }
            let mut a = cx.attrs(c);
            let x = cx.required(&mut a, "xpath");
            a.finish(cx);
            if xpath.is_some() {
                cx.emit(
                    Code::E0009,
                    c.span,
                    "`Variable` holds more than one `RoleInstanceValue`",
                );
            } else {
                xpath = x;
            }
        }
        let Some(name) = name else { continue };
        let value = match (literal, xpath) {
            (Some(l), None) => VariableValue::Literal(l),
            (None, Some(x)) => match RoleInstanceXPath::parse(&x) {
                Some(p) => VariableValue::RoleInstance(Located::new(p, x.span)),
                None => {
                    cx.emit(Code::W0204, x.span, format!("`{}` is not a documented RoleInstanceValue xpath; weft sets `{}` to an empty string", x.value, name.value))
                        .help = Some("see Azure's \"xPath values\" list: /RoleEnvironment/Deployment/@id, /RoleEnvironment/CurrentInstance/@id, .../Endpoints/Endpoint[@name='X']/@port, ...".into());
                    VariableValue::UnknownXPath(x)
                }
            },
            (Some(l), Some(_)) => {
                cx.emit(
                    Code::E0205,
                    name.span,
                    format!(
                        "variable `{}` has both a `value` and a `RoleInstanceValue`",
                        name.value
                    ),
                )
                .help = Some("keep one of them".into());
                VariableValue::Literal(l)
            }
            (None, None) => {
                cx.emit(
                    Code::E0205,
                    name.span,
                    format!(
                        "variable `{}` has neither a `value` nor a `RoleInstanceValue`",
                        name.value
                    ),
                )
                .help = Some(
                    "add `value=\"...\"` or a `<RoleInstanceValue xpath=\"...\" />` child".into(),
                );
                continue;
            }
        };
        if let Some(first) = vars.iter().find(|e| e.name.value == name.value) {
            let line = cx.sink.source.position(first.name.span.start).line;
            cx.emit(
                Code::E0206,
                name.span,
                format!(
                    "variable `{}` is already defined on line {line}",
                    name.value
                ),
            );
        }
        vars.push(EnvironmentVariable { name, value });
    }
    vars
}

fn task(cx: &mut Cx<'_>, el: &Element) -> Option<StartupTask> {
    let mut a = cx.attrs(el);
    let command_line = cx.required(&mut a, "commandLine");
    let execution_context = execution_context(cx, &mut a, &el.name);
    let task_type = a
        .take("taskType")
        .and_then(|v| {
            cx.choice(
                v,
                &[
                    ("simple", TaskType::Simple),
                    ("background", TaskType::Background),
                    ("foreground", TaskType::Foreground),
                ],
                &el.name,
            )
        })
        .map(|v| v.value)
        .unwrap_or_default();
    a.finish(cx);
    let mut environment_vars = Vec::new();
    let mut seen = None;
    for c in cx.children(el) {
        if c.name == "Environment" {
            if cx.once(&mut seen, c, &el.name) {
                environment_vars = environment(cx, c);
            }
        } else {
            cx.unknown_element(c, &el.name);
        }
    }
    let command_line = command_line?;
    check_command_line(cx, &command_line, "Task");
    Some(StartupTask {
        command_line,
        execution_context,
        task_type,
        environment: environment_vars,
        span: el.span,
    })
}

fn endpoints(cx: &mut Cx<'_>, el: &Element, out: &mut Endpoints) {
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

fn local_storage(cx: &mut Cx<'_>, el: &Element) -> Option<LocalStorage> {
    let mut a = cx.attrs(el);
    let name = cx.required_name(&mut a, "name");
    let size_in_mb = a.take("sizeInMB").and_then(|v| cx.uint(v, &el.name));
    let clean = a
        .take("cleanOnRoleRecycle")
        .and_then(|v| cx.boolean(v, &el.name))
        .is_none_or(|v| v.value);
    a.finish(cx);
    for c in cx.children(el) {
        cx.unknown_element(c, &el.name);
    }
    Some(LocalStorage {
        name: name?,
        size_in_mb,
        clean_on_role_recycle: clean,
        span: el.span,
    })
}

fn site(cx: &mut Cx<'_>, el: &Element) -> Option<Site> {
    let mut a = cx.attrs(el);
    let name = cx.required_name(&mut a, "name");
    let physical_directory = a.take_string("physicalDirectory");
    a.finish(cx);
    let mut bindings = Vec::new();
    for c in cx.children(el) {
        match c.name.as_str() {
            "Bindings" => {
                for b in named_children(cx, c, "Binding") {
                    let mut a = cx.attrs(b);
                    let bname = a.take_string("name");
                    let endpoint_name = cx.required_name(&mut a, "endpointName");
                    let host_header = a.take_string("hostHeader");
                    a.finish(cx);
                    if let Some(endpoint_name) = endpoint_name {
                        bindings.push(Binding {
                            name: bname,
                            endpoint_name,
                            host_header,
                            span: b.span,
                        });
                    }
                }
            }
            // IIS applications, virtual directories and the like are kept
            // out of the model: weft does not run IIS.
            "VirtualApplication" | "VirtualDirectory" | "Properties" => {}
            _ => cx.unknown_element(c, &el.name),
        }
    }
    Some(Site {
        name: name?,
        physical_directory,
        bindings,
        span: el.span,
    })
}

fn content(cx: &mut Cx<'_>, el: &Element) -> Option<Content> {
    let mut a = cx.attrs(el);
    let destination = cx.required(&mut a, "destination");
    a.finish(cx);
    let mut source_directory = None;
    for c in cx.children(el) {
        if c.name == "SourceDirectory" {
            let mut a = cx.attrs(c);
            source_directory = cx.required(&mut a, "path");
            a.finish(cx);
        } else {
            cx.unknown_element(c, &el.name);
        }
    }
    Some(Content {
        destination: destination?,
        source_directory,
        span: el.span,
    })
}
