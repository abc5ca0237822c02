//! Helpers that turn the positioned XML tree into typed values, emitting a
//! diagnostic for each missing, unknown or invalid attribute and element.

use crate::diagnostic::{Code, Diagnostic, Sink};
use crate::source::{Located, SourceFile, Span};
use crate::xml::{Attr, Element};

/// The parsing context of one file: where diagnostics go and which
/// namespace its elements must be in.
pub(crate) struct Cx<'a> {
    pub sink: Sink<'a>,
    pub namespace: &'static str,
}

/// The attributes of one element; every attribute not taken is reported as
/// unknown by [`Attrs::finish`].
pub(crate) struct Attrs<'e> {
    el: &'e Element,
    used: Vec<bool>,
}

impl<'a> Cx<'a> {
    pub fn new(
        source: &'a SourceFile,
        diags: &'a mut Vec<Diagnostic>,
        namespace: &'static str,
    ) -> Self {
        Cx {
            sink: Sink { source, diags },
            namespace,
        }
    }

    pub fn emit(&mut self, code: Code, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.sink.emit(code, span, message)
    }

    pub fn attrs<'e>(&self, el: &'e Element) -> Attrs<'e> {
        Attrs {
            el,
            used: vec![false; el.attrs.len()],
        }
    }

    /// The children of `el` that are schema elements; prefixed or foreign
    /// namespace children are reported as unknown and skipped.
    pub fn children<'e>(&mut self, el: &'e Element) -> Vec<&'e Element> {
        let mut out = Vec::new();
        for child in &el.children {
            if child.is_prefixed() || child.namespace.as_deref() != Some(self.namespace) {
                self.unknown_element(child, &el.name);
            } else {
                out.push(child);
            }
        }
        out
    }

    pub fn unknown_element(&mut self, el: &Element, parent: &str) {
        self.emit(
            Code::W0005,
            el.span,
            format!(
                "unknown element `{}` in `{parent}`; weft ignores it",
                el.name
            ),
        )
        .help = Some("check the spelling against Azure's schema for this element".into());
    }

    /// Reports a second occurrence of an element allowed once.
    pub fn once<'e>(
        &mut self,
        slot: &mut Option<&'e Element>,
        el: &'e Element,
        parent: &str,
    ) -> bool {
        if slot.is_some() {
            self.emit(
                Code::E0009,
                el.span,
                format!("`{}` appears more than once in `{parent}`", el.name),
            )
            .help = Some("merge the elements into one".into());
            false
        } else {
            *slot = Some(el);
            true
        }
    }

    pub fn missing(&mut self, el: &Element, attr: &str) {
        self.emit(
            Code::E0007,
            el.span,
            format!("`{}` is missing the required attribute `{attr}`", el.name),
        );
    }

    /// A required string attribute.
    pub fn required(&mut self, a: &mut Attrs<'_>, name: &str) -> Option<Located<String>> {
        match a.take(name) {
            Some(attr) => Some(Located::new(attr.value.clone(), attr.value_span)),
            None => {
                self.missing(a.el, name);
                None
            }
        }
    }

    /// A required attribute whose value must not be empty.
    pub fn required_name(&mut self, a: &mut Attrs<'_>, name: &str) -> Option<Located<String>> {
        let v = self.required(a, name)?;
        if v.value.trim().is_empty() {
            self.emit(
                Code::E0008,
                v.span,
                format!("`{name}` of `{}` is empty", a.el.name),
            );
            return None;
        }
        Some(v)
    }

    /// An enumerated attribute value; `allowed` lists the spellings the
    /// schema allows (matched exactly, as the XML schema does).
    pub fn choice<T: Copy>(
        &mut self,
        attr: &Attr,
        allowed: &[(&str, T)],
        element: &str,
    ) -> Option<Located<T>> {
        if let Some((_, v)) = allowed.iter().find(|(s, _)| *s == attr.value) {
            return Some(Located::new(*v, attr.value_span));
        }
        let names: Vec<String> = allowed.iter().map(|(s, _)| format!("`{s}`")).collect();
        let d = self.emit(
            Code::E0008,
            attr.value_span,
            format!(
                "`{}` of `{element}` is `{}`, which is not allowed",
                attr.name, attr.value
            ),
        );
        d.help = Some(format!("use one of {}", names.join(", ")));
        if let Some((s, _)) = allowed
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(&attr.value))
        {
            d.help = Some(format!("values are case-sensitive: write `{s}`"));
        }
        None
    }

    /// A port number from 1 to 65535.
    pub fn port(&mut self, attr: &Attr, element: &str) -> Option<Located<u16>> {
        match attr.value.trim().parse::<u16>() {
            Ok(p) if p >= 1 => Some(Located::new(p, attr.value_span)),
            _ => {
                self.emit(
                    Code::E0103,
                    attr.value_span,
                    format!(
                        "`{}` of `{element}` is `{}`, not a port from 1 to 65535",
                        attr.name, attr.value
                    ),
                );
                None
            }
        }
    }

    /// A non-negative integer.
    pub fn uint(&mut self, attr: &Attr, element: &str) -> Option<Located<u64>> {
        match attr.value.trim().parse::<u64>() {
            Ok(n) => Some(Located::new(n, attr.value_span)),
            Err(_) => {
                self.emit(
                    Code::E0008,
                    attr.value_span,
                    format!(
                        "`{}` of `{element}` is `{}`, not a whole number",
                        attr.name, attr.value
                    ),
                );
                None
            }
        }
    }

    /// An `xs:boolean`: `true`, `false`, `1` or `0`.
    pub fn boolean(&mut self, attr: &Attr, element: &str) -> Option<Located<bool>> {
        match attr.value.trim() {
            "true" | "1" => Some(Located::new(true, attr.value_span)),
            "false" | "0" => Some(Located::new(false, attr.value_span)),
            _ => {
                self.emit(
                    Code::E0008,
                    attr.value_span,
                    format!(
                        "`{}` of `{element}` is `{}`, not `true` or `false`",
                        attr.name, attr.value
                    ),
                );
                None
            }
        }
    }
}

impl<'e> Attrs<'e> {
    pub fn take(&mut self, name: &str) -> Option<&'e Attr> {
        let i = self.el.attrs.iter().position(|a| a.name == name)?;
        self.used[i] = true;
        Some(&self.el.attrs[i])
    }

    pub fn take_string(&mut self, name: &str) -> Option<Located<String>> {
        self.take(name)
            .map(|a| Located::new(a.value.clone(), a.value_span))
    }

    /// Reports every attribute that was not taken.
    pub fn finish(self, cx: &mut Cx<'_>) {
        for (attr, used) in self.el.attrs.iter().zip(self.used) {
            if !used && !attr.is_meta() {
                cx.emit(
                    Code::W0006,
                    attr.name_span,
                    format!(
                        "unknown attribute `{}` on `{}`; weft ignores it",
                        attr.name, self.el.name
                    ),
                );
            }
        }
    }
}
