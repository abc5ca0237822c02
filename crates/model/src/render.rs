//! Rendering diagnostics: rustc-style text (with codespan-reporting) and JSON.

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::termcolor::{Ansi, NoColor, WriteColor};
use codespan_reporting::term::{self, Chars, Config};

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::SourceFile;

/// The decoded files diagnostics point into, looked up by file name.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, file: SourceFile) {
        self.files.push(file);
    }

    pub fn get(&self, name: &str) -> Option<&SourceFile> {
        self.files.iter().find(|f| f.name() == name)
    }
}

/// Renders diagnostics rustc-style:
///
/// ```text
/// error[E0106]: https endpoint `Https` names no certificate
///   --> ServiceDefinition.csdef:7:30
///    |
///  7 |       <InputEndpoint name="Https" protocol="https" port="443" />
///    |                            ^^^^^
///    |
///    = help: add `certificate="<name>"` ...
/// ```
///
/// With `color`, ANSI colours are used.
pub fn render_text(diags: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let mut files = SimpleFiles::new();
    let ids: Vec<(String, usize)> = sources
        .files
        .iter()
        .map(|f| {
            (
                f.name().to_owned(),
                files.add(f.name().to_owned(), f.text().to_owned()),
            )
        })
        .collect();
    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    let ctx = Ctx {
        sources,
        config: &config,
        ids: &ids,
        files: &files,
    };
    let bytes = if color {
        let mut w = Ansi::new(Vec::new());
        ctx.run(&mut w, diags);
        w.into_inner()
    } else {
        let mut w = NoColor::new(Vec::new());
        ctx.run(&mut w, diags);
        w.into_inner()
    };
    String::from_utf8_lossy(&bytes).into_owned()
}

struct Ctx<'a> {
    sources: &'a Sources,
    config: &'a Config,
    ids: &'a [(String, usize)],
    files: &'a SimpleFiles<String, String>,
}

impl Ctx<'_> {
    fn run<W: WriteColor>(&self, w: &mut W, diags: &[Diagnostic]) {
        for d in diags {
            let mut cs = match d.severity {
                Severity::Error => CsDiagnostic::error(),
                Severity::Warning => CsDiagnostic::warning(),
            }
            .with_code(d.code.as_str())
            .with_message(&d.message);
            if let Some(help) = &d.help {
                cs = cs.with_notes(vec![format!("help: {help}")]);
            }
            let file = self
                .ids
                .iter()
                .find(|(n, _)| *n == d.file)
                .map(|(_, id)| *id);
            let ok = file.is_some_and(|id| {
                let text_len = self.sources.get(&d.file).map_or(0, |f| f.text().len());
                let start = d.span.start.min(text_len);
                let end = d.span.end.clamp(start, text_len);
                let cs = cs.clone().with_labels(vec![Label::primary(id, start..end)]);
                term::emit(w, self.config, self.files, &cs).is_ok()
            });
            if !ok {
                // No source text to show: the plain form still carries the position.
                let sev = if d.is_error() { "error" } else { "warning" };
                let _ = writeln!(w, "{sev}[{}]: {}", d.code.as_str(), d.message);
                let _ = writeln!(w, "  --> {}:{}:{}", d.file, d.line, d.column);
                if let Some(h) = &d.help {
                    let _ = writeln!(w, "  = help: {h}");
                }
                let _ = writeln!(w);
            }
        }
    }
}

/// Renders diagnostics as a JSON array; each element is
/// `{"severity","code","file","line","column","message","help"?}`.
pub fn render_json(diags: &[Diagnostic]) -> String {
    serde_json::to_string_pretty(diags).unwrap_or_else(|_| "[]".to_owned())
}
