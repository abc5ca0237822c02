//! Validation rules: within the definition (`definition`), within the
//! configuration (`configuration`), and between the two (`cross`).
//! Each rule reports every violation it finds. This room owns the entry
//! points ([`validate`], [`check`]) and the order rules run in.

mod configuration;
mod cross;
mod definition;

use std::collections::HashMap;

pub use definition::validate_definition;

use crate::cscfg::ServiceConfiguration;
use crate::csdef::*;
use crate::diagnostic::{Code, Diagnostic, Sink};
use crate::render::Sources;
use crate::source::Located;

/// Checks a definition and a configuration, each on its own and against
/// each other. Does not repeat parse diagnostics.
pub fn validate(def: &ServiceDefinition, cfg: &ServiceConfiguration) -> Vec<Diagnostic> {
    let mut diags = validate_definition(def);
    let mut d = Vec::new();
    let mut c = Sink {
        source: &cfg.source,
        diags: &mut d,
    };
    cross::service_name(&mut c, def, cfg);
    configuration::role_names(&mut c, cfg);
    cross::missing_roles(&mut c, def, cfg);
    for rc in &cfg.roles {
        let Some(role) = cross::declared_role(&mut c, def, rc) else {
            continue;
        };
        configuration::role_rules(&mut c, rc);
        cross::role_rules(&mut c, def, role, rc);
    }
    if let Some(net) = &cfg.network {
        configuration::access_control_orders(&mut c, net);
        cross::address_assignments(&mut c, def, net);
        cross::endpoint_acls(&mut c, def, net);
    }
    let mut s = Sink {
        source: &def.source,
        diags: &mut diags,
    };
    cross::load_balancers(&mut s, def, cfg);
    diags.extend(d);
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
