//! Diagnostics: every problem found in a service model, with a stable code,
//! the file, line and column it points at, and a message a user can act on.
//!
//! Severity policy (also in `DIAGNOSTICS.md`):
//! - **error**: Azure would reject the model, or the definition and the
//!   configuration contradict each other. `weft validate` exits 1.
//! - **warning**: the model is valid for Azure but part of it is ignored by
//!   weft or cannot run on Linux hosts as written (IIS sites, .NET entry
//!   points, Windows-only imports, `.cmd` command lines), or is unknown to the
//!   schema. `weft validate` exits 0. `load()`, which the fabric calls before
//!   running a service, additionally refuses a role that has nothing it can
//!   run on Linux ([`Code::W0303`]).

use serde::Serialize;

use crate::source::{Position, SourceFile, Span};

/// How bad a problem is; see the module documentation for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($code:ident $sev:ident $meaning:literal,)*) => {
        /// Every diagnostic code weft-model emits. Codes are stable: a code is
        /// never reused for another meaning. `E` codes are errors, `W` codes
        /// warnings.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($code,)* }

        impl Code {
            /// All codes, in order.
            pub const ALL: &'static [Code] = &[$(Code::$code,)*];

            /// The code as written in output, for example `E0101`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$code => stringify!($code),)* }
            }

            /// The severity this code always has.
            pub fn severity(self) -> Severity {
                match self { $(Code::$code => Severity::$sev,)* }
            }

            /// A one-line meaning, as listed in `DIAGNOSTICS.md`.
            pub fn meaning(self) -> &'static str {
                match self { $(Code::$code => $meaning,)* }
            }
        }
    };
}

codes! {
    E0001 Error "the file is not well-formed XML",
    E0002 Error "the file's bytes are not UTF-8 or UTF-16 text",
    E0003 Error "the root element is not ServiceDefinition / ServiceConfiguration",
    E0004 Error "the root element is not in the ServiceHosting 2008/10 namespace",
    W0005 Warning "unknown element; weft ignores it",
    W0006 Warning "unknown attribute; weft ignores it",
    E0007 Error "a required attribute or element is missing",
    E0008 Error "an attribute value is not one the schema allows",
    E0009 Error "an element that may appear once appears more than once",
    E0101 Error "two roles have the same name",
    E0102 Error "two endpoints of one role have the same name",
    E0103 Error "a port is not a number from 1 to 65535",
    E0104 Error "localPort is neither a port from 1 to 65535 nor `*`",
    E0105 Error "the protocol is not allowed for this kind of endpoint",
    E0106 Error "an https input endpoint names no certificate",
    E0107 Error "an endpoint's certificate is not declared in the role's Certificates",
    E0108 Error "loadBalancerProbe names a probe that is not declared",
    E0109 Error "a port range has min greater than max",
    E0110 Error "two endpoints use the same public port on the service's VIP",
    W0111 Warning "a certificate on a non-https input endpoint is not used",
    E0112 Error "an instance input endpoint has no public port range",
    E0113 Error "two internal endpoints of one role use the same fixed port",
    E0114 Error "idleTimeoutInMinutes is not from 4 to 30",
    E0115 Error "two local storage resources of one role have the same name",
    E0116 Error "a local storage size is less than 1 MB",
    E0117 Error "a setting is declared twice in one role",
    E0118 Error "a certificate is declared twice in one role",
    W0119 Warning "unknown vmsize; weft uses the Small size's limits",
    E0120 Error "upgradeDomainCount is not from 1 to 20",
    E0121 Error "two load balancer probes have the same name",
    E0122 Error "an http load balancer probe has no path, or a tcp probe has one",
    E0123 Error "a probe's interval is under 5 s or its timeout under 11 s",
    E0124 Error "a network traffic rule names a role or endpoint that does not exist",
    E0125 Error "the service definition declares no role",
    E0126 Error "a Binding names an endpoint the role does not declare",
    E0127 Error "the service definition declares more than 25 roles",
    E0128 Error "the service declares more than 25 endpoints in all",
    W0129 Warning "a role's local storage adds up to more than its VM size's disk",
    E0201 Error "a RoleInstanceValue xpath names an endpoint the role does not declare",
    E0202 Error "a RoleInstanceValue xpath names a setting the role does not declare",
    E0203 Error "a RoleInstanceValue xpath names a local resource the role does not declare",
    W0204 Warning "a RoleInstanceValue xpath is not one of the documented paths",
    E0205 Error "an environment Variable has neither or both of value and RoleInstanceValue",
    E0206 Error "an environment variable is defined twice in one Environment",
    E0207 Error "a command line is empty",
    W0301 Warning "NetFxEntryPoint (.NET role entry point) cannot run on Linux hosts",
    W0302 Warning "IIS Sites are not run on Linux hosts",
    W0303 Warning "the role has nothing weft can run on Linux (no ProgramEntryPoint)",
    W0304 Warning "a Windows-only Import is ignored on Linux hosts",
    W0305 Warning "a command line runs a Windows program (.cmd, .bat, .exe, .ps1)",
    E0401 Error "serviceName does not match the service definition's name",
    E0402 Error "a role of the definition is missing from the configuration",
    E0403 Error "the configuration has a role the definition does not declare",
    E0404 Error "Instances count is missing or less than 1",
    E0405 Error "a declared setting has no value in the configuration",
    E0406 Error "the configuration sets a setting the role does not declare",
    E0407 Error "a declared certificate has no thumbprint in the configuration",
    E0408 Error "the configuration has a certificate the role does not declare",
    E0409 Error "osVersion is neither `*` nor a guest OS version string",
    W0410 Warning "osFamily is not a known guest OS family",
    E0411 Error "a role or setting appears twice in the configuration",
    E0412 Error "an instance input endpoint's port range is smaller than the instance count",
    E0413 Error "a NetworkConfiguration element names a role, endpoint or access control that does not exist",
    E0414 Error "an access control rule is invalid (remoteSubnet or duplicate order)",
    E0415 Error "an input endpoint's loadBalancer is not declared in the configuration",
    E0416 Error "a role's vmName is longer than 10 characters",
    W0417 Warning "a certificate thumbprint is not 40 hexadecimal digits",
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    #[serde(serialize_with = "serialize_code")]
    pub code: Code,
    /// The file's display name, as given to the parser.
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// Byte range in the decoded text (for renderers).
    #[serde(skip)]
    pub span: Span,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

fn serialize_code<S: serde::Serializer>(code: &Code, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(code.as_str())
}

impl Diagnostic {
    /// A diagnostic pointing at `span` in `source`.
    pub fn new(source: &SourceFile, code: Code, span: Span, message: impl Into<String>) -> Self {
        let Position { line, column } = source.position(span.start);
        Diagnostic {
            severity: code.severity(),
            code,
            file: source.name().to_owned(),
            line,
            column,
            span,
            message: message.into(),
            help: None,
        }
    }

    /// Adds a hint on how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics in the order they are shown: by file (in the order of
/// `files`; files not listed last, by name), then position and code.
pub fn sort(diags: &mut [Diagnostic], files: &[&str]) {
    let rank = |f: &str| files.iter().position(|n| *n == f).unwrap_or(files.len());
    diags.sort_by(|a, b| {
        (rank(&a.file), &a.file, a.line, a.column, a.code, &a.message).cmp(&(
            rank(&b.file),
            &b.file,
            b.line,
            b.column,
            b.code,
            &b.message,
        ))
    });
}

/// Counts errors and warnings: `(errors, warnings)`.
pub fn count(diags: &[Diagnostic]) -> (usize, usize) {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    (errors, diags.len() - errors)
}

/// The one-line summary, for example `2 errors, 3 warnings`.
pub fn summary(diags: &[Diagnostic]) -> String {
    let (e, w) = count(diags);
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!("{}, {}", plural(e, "error"), plural(w, "warning"))
}

/// Collects diagnostics for one source file.
pub(crate) struct Sink<'a> {
    pub source: &'a SourceFile,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl Sink<'_> {
    pub fn emit(&mut self, code: Code, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::new(self.source, code, span, message));
        self.diags.last_mut().expect("just pushed")
    }

    pub fn emit_help(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.emit(code, span, message).help = Some(help.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_documented_with_its_severity() {
        let doc = include_str!("../DIAGNOSTICS.md");
        for code in Code::ALL {
            let sev = if code.severity() == Severity::Error {
                "error"
            } else {
                "warning"
            };
            let row = format!("| {} | {sev} | {} |", code.as_str(), code.meaning());
            assert!(doc.contains(&row), "DIAGNOSTICS.md lacks `{row}`");
            assert_eq!(
                code.as_str().starts_with('E'),
                code.severity() == Severity::Error,
                "{code:?}"
            );
        }
    }

    #[test]
    fn summary_counts_errors_and_warnings() {
        let src = SourceFile::from_text("f", "x");
        let d = |c| Diagnostic::new(&src, c, Span::default(), "m");
        assert_eq!(summary(&[]), "0 errors, 0 warnings");
        assert_eq!(
            summary(&[d(Code::E0101), d(Code::W0005), d(Code::W0006)]),
            "1 error, 2 warnings"
        );
    }
}
