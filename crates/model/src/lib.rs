//! weft-model: the Azure Cloud Services service model.
//!
//! Parses `ServiceDefinition.csdef` and `ServiceConfiguration.*.cscfg` (as
//! bytes: UTF-8 with or without a byte-order mark, UTF-16) into typed values
//! that remember where each element and attribute was written, validates
//! them against Azure's documented rules and against each other, and reports
//! every problem at once as [`Diagnostic`]s with stable codes (listed in
//! `DIAGNOSTICS.md`).
//!
//! Everything here is pure — bytes in, model and diagnostics out — except
//! [`load()`], the fabric's entry point, which reads the two files.

mod cscfg;
mod csdef;
mod diagnostic;
mod load;
mod read;
mod render;
mod source;
mod validate;
mod vmsize;
mod xml;
mod xpath;

pub use cscfg::{
    AccessControl, AclAction, AclRule, CertificateThumbprint, EndpointAcl, GuestOsVersion,
    KeptElement, NetworkConfiguration, OsVersion, RoleConfiguration, ServiceConfiguration,
    SettingValue, ThumbprintAlgorithm,
};
pub use csdef::{
    Binding, CertificateDecl, Content, DEFAULT_UPGRADE_DOMAIN_COUNT, Endpoints, EntryPoint,
    EnvironmentVariable, ExecutionContext, FixedPorts, Import, ImportModule, InputEndpoint,
    InputProtocol, InstanceInputEndpoint, InternalEndpoint, InternalProtocol,
    LoadBalancerDistribution, LoadBalancerProbe, LocalPort, LocalStorage, NetFxEntryPoint,
    OnlyAllowTrafficTo, PermissionLevel, PortRange, ProbeProtocol, ProgramEntryPoint, Role,
    RoleEndpointRef, RoleKind, Runtime, ServiceDefinition, Site, StartupTask, StoreLocation,
    TaskType, TopologyChangeDiscovery, TrafficSource, TransportProtocol, VariableValue,
};
pub use diagnostic::{Code, Diagnostic, Severity, count, sort, summary};
pub use load::{LoadError, ResolvedRole, ServiceModel, load};
pub use render::{Sources, render_json, render_text};
pub use source::{DecodeError, Located, Position, SourceFile, Span, TextEncoding};
pub use validate::{CheckReport, check, validate, validate_definition};
pub use vmsize::{KnownSize, SIZES, VmLimits, VmSize};
pub use xpath::RoleInstanceXPath;

/// Namespaces of the two file kinds.
pub mod namespace {
    pub use crate::cscfg::NAMESPACE as SERVICE_CONFIGURATION;
    pub use crate::csdef::NAMESPACE as SERVICE_DEFINITION;
}

/// Decodes a file's bytes; on failure the valid prefix is returned with a
/// diagnostic, and `false`.
pub(crate) fn decode(name: &str, bytes: &[u8], diags: &mut Vec<Diagnostic>) -> (SourceFile, bool) {
    match SourceFile::decode(name, bytes) {
        Ok(source) => (source, true),
        Err((prefix, err)) => {
            let at = prefix.text().len();
            diags.push(
                Diagnostic::new(&prefix, Code::E0002, Span::new(at, at), err.message)
                    .with_help("save the file as UTF-8 (or UTF-16 with a byte-order mark)"),
            );
            (prefix, false)
        }
    }
}

/// Parses a decoded file and checks its root element; `None` when the
/// file cannot be read as the expected kind of document at all.
pub(crate) fn parse_root(
    source: &SourceFile,
    root_name: &str,
    namespace: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<xml::Element> {
    let source = source.clone();
    let mut root = match xml::parse(&source) {
        Ok(root) => root,
        Err(diag) => {
            diags.push(diag);
            return None;
        }
    };
    let local = root.name.rsplit(':').next().unwrap_or_default();
    if local != root_name {
        let other = if root_name == "ServiceDefinition" {
            "ServiceConfiguration"
        } else {
            "ServiceDefinition"
        };
        let mut d = Diagnostic::new(
            &source,
            Code::E0003,
            root.span,
            format!(
                "the root element is `{}`, expected `{root_name}`",
                root.name
            ),
        );
        if local == other {
            d = d.with_help(format!(
                "this looks like a {} file; check the order of the files given",
                if other == "ServiceDefinition" {
                    ".csdef"
                } else {
                    ".cscfg"
                }
            ));
        }
        diags.push(d);
        return None;
    }
    if root.namespace.as_deref() != Some(namespace) || root.is_prefixed() {
        let found = root.namespace.clone();
        let span = root
            .attrs
            .iter()
            .find(|a| a.name == "xmlns")
            .map_or(root.span, |a| a.value_span);
        diags.push(
            Diagnostic::new(
                &source,
                Code::E0004,
                span,
                match &found {
                    Some(ns) => {
                        format!("`{root_name}` is in namespace `{ns}`, expected `{namespace}`")
                    }
                    None => format!("`{root_name}` has no namespace, expected `{namespace}`"),
                },
            )
            .with_help(format!("write `<{root_name} xmlns=\"{namespace}\" ...>`")),
        );
        // Read the document as if the namespace were right, so that the
        // rest of it is still checked.
        let mut stack = vec![&mut root];
        while let Some(el) = stack.pop() {
            if el.namespace == found {
                el.namespace = Some(namespace.to_owned());
            }
            if el.is_prefixed() && el.namespace.as_deref() == Some(namespace) {
                el.name = el.name.rsplit(':').next().unwrap_or_default().to_owned();
            }
            stack.extend(el.children.iter_mut());
        }
    }
    Some(root)
}
