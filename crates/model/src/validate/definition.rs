//! Rules on the service definition alone: role, endpoint and probe
//! counts and names, certificates and probes an endpoint names, fixed and
//! public port ranges, local storage against the VM size's disk, IIS site
//! bindings, `RoleInstanceValue` xpaths, and ports shared on the VIP.

use std::collections::HashMap;

use super::duplicates;
use crate::csdef::*;
use crate::diagnostic::{Code, Diagnostic, Sink};
use crate::source::Located;
use crate::xpath::RoleInstanceXPath;

/// Checks a definition on its own (what `weft validate X.csdef` reports
/// beyond parsing).
pub fn validate_definition(def: &ServiceDefinition) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut s = Sink {
        source: &def.source,
        diags: &mut diags,
    };
    if def.roles.is_empty() {
        s.emit_help(
            Code::E0125,
            def.span,
            "the service definition declares no role",
            "add a `WebRole`, `WorkerRole` or `VirtualMachineRole`",
        );
    }
    if def.roles.len() > 25 {
        s.emit_help(
            Code::E0127,
            def.roles[25].name.span,
            format!(
                "the service definition declares {} roles; Azure allows 25",
                def.roles.len()
            ),
            "split the service into several services",
        );
    }
    let endpoints: Vec<&Located<String>> =
        def.roles.iter().flat_map(|r| r.endpoints.names()).collect();
    if endpoints.len() > 25 {
        s.emit_help(
            Code::E0128,
            endpoints[25].span,
            format!("the service declares {} endpoints in all; Azure allows 25 (input, internal and instance input together)", endpoints.len()),
            "merge endpoints, or split the service",
        );
    }
    if let Some(c) = &def.upgrade_domain_count
        && !(1..=20).contains(&c.value)
    {
        s.emit_help(
            Code::E0120,
            c.span,
            format!("upgradeDomainCount is {}, outside 1 to 20", c.value),
            "Azure allows 1 to 20 upgrade domains (5 when not written)",
        );
    }
    duplicates(
        &mut s,
        def.load_balancer_probes.iter().map(|p| &p.name),
        Code::E0121,
        "load balancer probe",
    );
    for p in &def.load_balancer_probes {
        if p.protocol.value == ProbeProtocol::Http
            && p.path.as_ref().is_none_or(|x| x.trim().is_empty())
        {
            s.emit_help(
                Code::E0122,
                p.span,
                format!("http probe `{}` has no path", p.name.value),
                "add `path=\"/health\"` (the path must answer 200 OK)",
            );
        }
        if p.protocol.value == ProbeProtocol::Tcp
            && let Some(path) = &p.path
        {
            s.emit_help(
                Code::E0122,
                path.span,
                format!(
                    "tcp probe `{}` has a path; only http probes may",
                    p.name.value
                ),
                "remove `path`, or use `protocol=\"http\"`",
            );
        }
        if let Some(i) = &p.interval_in_seconds
            && i.value < 5
        {
            s.emit_help(
                Code::E0123,
                i.span,
                format!("probe interval is {} s; the minimum is 5 s", i.value),
                "the default is 15 s",
            );
        }
        if let Some(t) = &p.timeout_in_seconds
            && t.value < 11
        {
            s.emit_help(
                Code::E0123,
                t.span,
                format!("probe timeout is {} s; the minimum is 11 s", t.value),
                "the default is 31 s",
            );
        }
    }
    duplicates(
        &mut s,
        def.roles.iter().map(|r| &r.name),
        Code::E0101,
        "role",
    );
    for role in &def.roles {
        role_rules(&mut s, def, role);
    }
    vip_ports(&mut s, def);
    for rule in &def.network_traffic_rules {
        for d in &rule.destinations {
            match def.role(&d.role) {
                None => {
                    s.emit(
                        Code::E0124,
                        d.role.span,
                        format!(
                            "network traffic rule names role `{}`, which is not declared",
                            d.role.value
                        ),
                    );
                }
                Some(r)
                    if !r
                        .endpoints
                        .internal
                        .iter()
                        .any(|e| *e.name == d.endpoint.value) =>
                {
                    s.emit_help(
                        Code::E0124,
                        d.endpoint.span,
                        format!(
                            "role `{}` has no internal endpoint `{}`",
                            d.role.value, d.endpoint.value
                        ),
                        "network traffic rules restrict internal endpoints only",
                    );
                }
                Some(_) => {}
            }
        }
        if let TrafficSource::FromRoles(roles) = &rule.source {
            for r in roles.iter().filter(|r| def.role(r).is_none()) {
                s.emit(
                    Code::E0124,
                    r.span,
                    format!(
                        "network traffic rule allows role `{}`, which is not declared",
                        r.value
                    ),
                );
            }
        }
    }
    diags
}

fn role_rules(s: &mut Sink<'_>, def: &ServiceDefinition, role: &Role) {
    let rn = &role.name.value;
    duplicates(s, role.endpoints.names(), Code::E0102, "endpoint");
    duplicates(
        s,
        role.local_storage.iter().map(|l| &l.name),
        Code::E0115,
        "local storage",
    );
    duplicates(s, role.settings.iter(), Code::E0117, "setting");
    duplicates(
        s,
        role.certificates.iter().map(|c| &c.name),
        Code::E0118,
        "certificate",
    );
    for e in &role.endpoints.input {
        let https = e.protocol.value == InputProtocol::Https;
        match &e.certificate {
            None if https => s.emit_help(
                Code::E0106,
                e.name.span,
                format!("https endpoint `{}` names no certificate", e.name.value),
                "add `certificate=\"<name>\"` naming a certificate declared in the role's `Certificates`",
            ),
            Some(c) if !role.declares_certificate(c) => s.emit_help(
                Code::E0107,
                c.span,
                format!("certificate `{}` is not declared in role `{rn}`", c.value),
                format!("add `<Certificate name=\"{}\" storeLocation=\"LocalMachine\" storeName=\"My\" />` to the role's `Certificates`", c.value),
            ),
            Some(c) if !https => {
                s.emit(Code::W0111, c.span, format!("certificate `{}` is not used: endpoint `{}` is not https", c.value, e.name.value));
            }
            _ => {}
        }
        if let Some(p) = &e.load_balancer_probe
            && def.probe(p).is_none()
        {
            s.emit_help(
                Code::E0108,
                p.span,
                format!("load balancer probe `{}` is not declared", p.value),
                "declare it under `<LoadBalancerProbes>` at the root of the service definition",
            );
        }
        if let Some(t) = &e.idle_timeout_in_minutes
            && !(4..=30).contains(&t.value)
        {
            s.emit_help(
                Code::E0114,
                t.span,
                format!("idleTimeoutInMinutes is {}, outside 4 to 30", t.value),
                "the default is 4 minutes",
            );
        }
    }
    let mut fixed: HashMap<u16, &Located<u16>> = HashMap::new();
    for e in &role.endpoints.internal {
        for f in &e.fixed_ports {
            match f {
                FixedPorts::Range(r) => range_order(s, r),
                FixedPorts::Port(p) => {
                    if let Some(first) = fixed.get(&p.value) {
                        let line = s.source.position(first.span.start).line;
                        s.emit(
                            Code::E0113,
                            p.span,
                            format!("fixed port {} is already used on line {line}", p.value),
                        );
                    } else {
                        fixed.insert(p.value, p);
                    }
                }
            }
        }
    }
    for e in &role.endpoints.instance_input {
        if let Some(r) = &e.public_ports {
            range_order(s, r);
        }
    }
    let total_mb: u64 = role.local_storage.iter().map(|l| l.size_mb()).sum();
    let vm = role.vm_size();
    let disk_mb = u64::from(vm.limits().disk_gib) * 1024;
    if total_mb > disk_mb && matches!(vm, crate::vmsize::VmSize::Known(_)) {
        let at = role
            .local_storage
            .iter()
            .map(|l| l.span)
            .next()
            .unwrap_or(role.name.span);
        s.emit_help(
            Code::W0129,
            at,
            format!(
                "local storage of role `{rn}` adds up to {total_mb} MB, more than the {} GiB disk of size {}",
                vm.limits().disk_gib,
                vm.name()
            ),
            "as on Azure, writes beyond the disk fail; lower sizeInMB or pick a larger vmsize",
        );
    }
    for l in &role.local_storage {
        if let Some(size) = &l.size_in_mb
            && size.value < 1
        {
            s.emit_help(
                Code::E0116,
                size.span,
                format!(
                    "local storage `{}` has size {} MB",
                    l.name.value, size.value
                ),
                "the minimum is 1 MB",
            );
        }
    }
    for site in &role.sites {
        for b in &site.bindings {
            if !role.endpoints.contains(&b.endpoint_name.value) {
                s.emit(
                    Code::E0126,
                    b.endpoint_name.span,
                    format!(
                        "binding names endpoint `{}`, which role `{rn}` does not declare",
                        b.endpoint_name.value
                    ),
                );
            }
        }
    }
    if let Some(rt) = &role.runtime {
        xpath_refs(s, role, &rt.environment);
    }
    for t in &role.startup {
        xpath_refs(s, role, &t.environment);
    }
    if role.kind != RoleKind::VirtualMachine && role.program_entry_point().is_none() {
        let (why, at) = match role.runtime.as_ref().and_then(|r| r.entry_point.as_ref()) {
            Some(EntryPoint::NetFx(n)) => (
                "its only entry point is a NetFxEntryPoint".to_owned(),
                n.span,
            ),
            _ if !role.sites.is_empty() => ("it runs only as IIS sites".to_owned(), role.name.span),
            _ => (
                "it has no ProgramEntryPoint (Azure would load a .NET RoleEntryPoint)".to_owned(),
                role.name.span,
            ),
        };
        s.emit_help(
            Code::W0303,
            at,
            format!("role `{rn}` has nothing weft can run on Linux: {why}"),
            "add `<Runtime><EntryPoint><ProgramEntryPoint commandLine=\"./start.sh\" setReadyOnProcessStart=\"true\" /></EntryPoint></Runtime>`; weft refuses to run the role until then",
        );
    }
}

fn range_order(s: &mut Sink<'_>, r: &PortRange) {
    if r.min.value > r.max.value {
        s.emit_help(
            Code::E0109,
            r.span,
            format!(
                "port range has min {} greater than max {}",
                r.min.value, r.max.value
            ),
            "swap min and max",
        );
    }
}

fn xpath_refs(s: &mut Sink<'_>, role: &Role, env: &[EnvironmentVariable]) {
    let rn = &role.name.value;
    for v in env {
        let VariableValue::RoleInstance(x) = &v.value else {
            continue;
        };
        match &x.value {
            RoleInstanceXPath::EndpointAddress(n)
            | RoleInstanceXPath::EndpointPort(n)
            | RoleInstanceXPath::EndpointProtocol(n)
                if !role.endpoints.contains(n) =>
            {
                s.emit_help(
                    Code::E0201,
                    x.span,
                    format!("xpath names endpoint `{n}`, which role `{rn}` does not declare"),
                    "declare the endpoint under the role's `Endpoints`, or fix the name",
                );
            }
            RoleInstanceXPath::ConfigurationSetting(n) if !role.declares_setting(n) => {
                s.emit_help(
                    Code::E0202,
                    x.span,
                    format!("xpath names setting `{n}`, which role `{rn}` does not declare"),
                    format!("add `<Setting name=\"{n}\" />` to the role's `ConfigurationSettings`"),
                );
            }
            RoleInstanceXPath::LocalResourcePath(n) | RoleInstanceXPath::LocalResourceSize(n)
                if role.local_storage(n).is_none() =>
            {
                s.emit_help(Code::E0203, x.span, format!("xpath names local resource `{n}`, which role `{rn}` does not declare"), format!("add `<LocalStorage name=\"{n}\" sizeInMB=\"...\" />` to the role's `LocalResources`"));
            }
            _ => {}
        }
    }
}

/// Input endpoints share the service's public VIP (or their internal load
/// balancer's): one port per transport protocol.
fn vip_ports(s: &mut Sink<'_>, def: &ServiceDefinition) {
    let mut seen: HashMap<(Option<&str>, bool, u16), (&Role, &InputEndpoint)> = HashMap::new();
    for role in &def.roles {
        for e in &role.endpoints.input {
            let udp = e.protocol.value == InputProtocol::Udp;
            let key = (
                e.load_balancer.as_ref().map(|l| l.value.as_str()),
                udp,
                e.port.value,
            );
            if let Some((r, first)) = seen.get(&key) {
                let line = s.source.position(first.port.span.start).line;
                s.emit_help(
                    Code::E0110,
                    e.port.span,
                    format!(
                        "port {} is already used by input endpoint `{}` of role `{}` (line {line})",
                        e.port.value, first.name.value, r.name.value
                    ),
                    "input endpoints share the service's VIP: give each a different `port`",
                );
            } else {
                seen.insert(key, (role, e));
            }
        }
    }
    // Instance input endpoints take one public port per instance from their
    // range, on the same VIP: a range must not overlap an input endpoint's
    // port or another range of the same transport.
    let mut ranges: Vec<(&Role, &InstanceInputEndpoint, &PortRange)> = Vec::new();
    for role in &def.roles {
        for e in &role.endpoints.instance_input {
            let Some(r) = &e.public_ports else { continue };
            if r.is_empty() {
                continue;
            }
            let udp = e.protocol.value == TransportProtocol::Udp;
            let contains = |p: u16| r.min.value <= p && p <= r.max.value;
            let clash = seen
                .iter()
                .filter(|((lb, u, port), _)| lb.is_none() && *u == udp && contains(*port))
                .min_by_key(|((_, _, port), _)| *port)
                .map(|((_, _, port), (or, oe))| {
                    format!(
                        "port {port} of input endpoint `{}` of role `{}`",
                        oe.name.value, or.name.value
                    )
                })
                .or_else(|| {
                    ranges
                        .iter()
                        .find(|(_, oe, or)| {
                            (oe.protocol.value == TransportProtocol::Udp) == udp
                                && or.min.value <= r.max.value
                                && r.min.value <= or.max.value
                        })
                        .map(|(orole, oe, or)| {
                            format!(
                                "ports {}-{} of instance input endpoint `{}` of role `{}`",
                                or.min.value, or.max.value, oe.name.value, orole.name.value
                            )
                        })
                });
            if let Some(other) = clash {
                s.emit_help(
                    Code::E0110,
                    r.span,
                    format!(
                        "public ports {}-{} of instance input endpoint `{}` overlap {other}",
                        r.min.value, r.max.value, e.name.value
                    ),
                    "every public port on the service's VIP serves one endpoint: move the range",
                );
            }
            ranges.push((role, e, r));
        }
    }
}
