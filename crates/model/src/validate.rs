//! Validation rules: within the definition, within the configuration, and
//! between the two. Each rule reports every violation it finds.

use std::collections::HashMap;

use crate::cscfg::ServiceConfiguration;
use crate::csdef::*;
use crate::diagnostic::{Code, Diagnostic, Sink};
use crate::render::Sources;
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

fn duplicates<'a>(
    s: &mut Sink<'_>,
    names: impl Iterator<Item = &'a Located<String>>,
    code: Code,
    what: &str,
) {
    let mut seen: HashMap<&str, &Located<String>> = HashMap::new();
    for n in names {
        if let Some(first) = seen.get(n.value.as_str()) {
            let line = s.source.position(first.span.start).line;
            s.emit_help(
                code,
                n.span,
                format!("{what} `{}` is already declared on line {line}", n.value),
                format!("give each {what} a unique name"),
            );
        } else {
            seen.insert(&n.value, n);
        }
    }
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

/// Checks a definition and a configuration, each on its own and against
/// each other. Does not repeat parse diagnostics.
pub fn validate(def: &ServiceDefinition, cfg: &ServiceConfiguration) -> Vec<Diagnostic> {
    let mut diags = validate_definition(def);
    let mut d = Vec::new();
    let mut c = Sink {
        source: &cfg.source,
        diags: &mut d,
    };
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
    duplicates(
        &mut c,
        cfg.roles.iter().map(|r| &r.name),
        Code::E0411,
        "role",
    );
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
    let acl_names: Vec<&str> = cfg
        .network
        .iter()
        .flat_map(|n| n.access_controls.iter().map(|a| a.name.value.as_str()))
        .collect();
    for rc in &cfg.roles {
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
            continue;
        };
        match &rc.instances {
            None => c.emit_help(
                Code::E0404,
                rc.name.span,
                format!("role `{}` has no `Instances count`", rc.name.value),
                "add `<Instances count=\"1\" />`",
            ),
            Some(n) if n.value < 1 => c.emit_help(
                Code::E0404,
                n.span,
                format!("role `{}` has {} instances", rc.name.value, n.value),
                "a role needs at least 1 instance",
            ),
            _ => {}
        }
        duplicates(
            &mut c,
            rc.settings.iter().map(|s| &s.name),
            Code::E0411,
            "setting",
        );
        if let Some(vm) = &rc.vm_name
            && vm.value.chars().count() > 10
        {
            c.emit_help(
                Code::E0416,
                vm.span,
                format!(
                    "vmName `{}` is {} characters long; the maximum is 10",
                    vm.value,
                    vm.value.chars().count()
                ),
                "shorten the name",
            );
        }
        for t in &rc.certificates {
            let tp = t.thumbprint.value.trim();
            if tp.len() != 40 || !tp.bytes().all(|b| b.is_ascii_hexdigit()) {
                c.emit_help(
                    Code::W0417,
                    t.thumbprint.span,
                    format!("thumbprint of certificate `{}` is not 40 hexadecimal digits", t.name.value),
                    "write the certificate's SHA-1 thumbprint, for example `0123456789ABCDEF0123456789ABCDEF01234567`",
                );
            }
        }
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
    if let Some(net) = &cfg.network {
        for ac in &net.access_controls {
            let mut orders: HashMap<u64, ()> = HashMap::new();
            for r in &ac.rules {
                if orders.insert(r.order.value, ()).is_some() {
                    c.emit(
                        Code::E0414,
                        r.order.span,
                        format!(
                            "access control `{}` has two rules with order {}",
                            ac.name.value, r.order.value
                        ),
                    );
                }
            }
        }
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
    let lbs: Vec<&str> = cfg
        .network
        .as_ref()
        .map(|n| n.load_balancer_names())
        .unwrap_or_default();
    let mut s = Sink {
        source: &def.source,
        diags: &mut diags,
    };
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
    diags.extend(d);
    diags
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

/// Parses and validates a definition and, optionally, a configuration, in
/// one call: every diagnostic sorted, plus the decoded sources for
/// rendering. Pure.
pub fn check(csdef: (&str, &[u8]), cscfg: Option<(&str, &[u8])>) -> CheckReport {
    let mut sources = Sources::default();
    let mut diags = Vec::new();
    let (source, ok) = crate::decode(csdef.0, csdef.1, &mut diags);
    let def = if ok {
        crate::csdef::parse::parse_source(&source, &mut diags)
    } else {
        None
    };
    sources.add(source);
    let mut cfg = None;
    if let Some((name, bytes)) = cscfg {
        let (source, ok) = crate::decode(name, bytes, &mut diags);
        cfg = if ok {
            crate::cscfg::parse::parse_source(&source, &mut diags)
        } else {
            None
        };
        sources.add(source);
    }
    match (&def, &cfg) {
        (Some(def), Some(cfg)) => diags.extend(validate(def, cfg)),
        (Some(def), None) => diags.extend(validate_definition(def)),
        _ => {}
    }
    let files: Vec<&str> = std::iter::once(csdef.0).chain(cscfg.map(|c| c.0)).collect();
    crate::diagnostic::sort(&mut diags, &files);
    diags.dedup();
    CheckReport {
        definition: def,
        configuration: cfg,
        diagnostics: diags,
        sources,
    }
}

/// What [`check`] found.
#[derive(Debug)]
pub struct CheckReport {
    pub definition: Option<ServiceDefinition>,
    pub configuration: Option<ServiceConfiguration>,
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Sources,
}
