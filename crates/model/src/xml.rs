//! A small positioned XML tree built with quick-xml: every element and
//! attribute keeps the byte span of its name and value in the decoded text,
//! so typed parsing can point diagnostics at them.

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::diagnostic::{Code, Diagnostic};
use crate::source::{SourceFile, Span};

/// Deeper nesting than this is refused (service models nest about 6 levels).
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone)]
pub(crate) struct Element {
    /// Qualified name as written (`WebRole`, `xsi:Foo`).
    pub name: String,
    /// The namespace the element is in (default namespace in scope), if any.
    pub namespace: Option<String>,
    /// Span of the element's name in the start tag.
    pub span: Span,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    /// Non-whitespace character data directly inside the element.
    pub text: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub name: String,
    pub value: String,
    pub name_span: Span,
    pub value_span: Span,
}

impl Element {
    /// True for an element written with a namespace prefix (`foo:Bar`).
    pub fn is_prefixed(&self) -> bool {
        self.name.contains(':')
    }
}

impl Attr {
    /// Namespace declarations and prefixed attributes (`xmlns`, `xmlns:xsi`,
    /// `xsi:schemaLocation`) are not part of the service model.
    pub fn is_meta(&self) -> bool {
        self.name == "xmlns" || self.name.contains(':')
    }
}

fn offset_in(text: &str, part: &str) -> Option<usize> {
    let start = text.as_ptr() as usize;
    let p = part.as_ptr() as usize;
    (p >= start && p + part.len() <= start + text.len()).then(|| p - start)
}

/// Parses the whole document; the first well-formedness error ends parsing
/// and is returned as a diagnostic with its position.
pub(crate) fn parse(src: &SourceFile) -> Result<Element, Diagnostic> {
    let text = src.text();
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let malformed = |offset: usize, message: String| {
        Diagnostic::new(src, Code::E0001, Span::new(offset, offset), message)
            .with_help("fix the XML syntax at this position; nothing else in the file was checked")
    };
    loop {
        let before = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(err) => {
                let at = reader.error_position() as usize;
                return Err(malformed(at, format!("malformed XML: {err}")));
            }
        };
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(malformed(
                    before,
                    "malformed XML: content after the root element".into(),
                ));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(
                        before,
                        format!("elements nest deeper than {MAX_DEPTH} levels"),
                    ));
                }
                let el = element(src, &start, stack.last(), before)?;
                stack.push(el);
            }
            Event::Empty(start) => {
                let el = element(src, &start, stack.last(), before)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(malformed(
                        before,
                        "malformed XML: unexpected end tag".into(),
                    ));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let content = t.xml_content(XmlVersion::Implicit1_0);
                let trimmed = content.trim();
                if !trimmed.is_empty() {
                    match stack.last_mut() {
                        Some(el) => el.text.push_str(trimmed),
                        None => {
                            return Err(malformed(
                                before,
                                "malformed XML: text outside the root element".into(),
                            ));
                        }
                    }
                }
            }
            Event::CData(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t);
                }
            }
            Event::GeneralRef(r) => {
                let name = r.to_string();
                let resolved = match name.as_str() {
                    "lt" => Some("<".to_owned()),
                    "gt" => Some(">".to_owned()),
                    "amp" => Some("&".to_owned()),
                    "apos" => Some("'".to_owned()),
                    "quot" => Some("\"".to_owned()),
                    _ => r.resolve_char_ref().ok().flatten().map(String::from),
                };
                match (resolved, stack.last_mut()) {
                    (Some(s), Some(el)) => el.text.push_str(&s),
                    _ => {
                        return Err(malformed(
                            before,
                            format!("malformed XML: unknown entity `&{name};`"),
                        ));
                    }
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(
            text.len(),
            format!("malformed XML: element `{}` is not closed", open.name),
        ));
    }
    root.ok_or_else(|| {
        malformed(
            text.len(),
            "malformed XML: the file has no root element".into(),
        )
    })
}

fn element(
    src: &SourceFile,
    start: &BytesStart<'_>,
    parent: Option<&Element>,
    before: usize,
) -> Result<Element, Diagnostic> {
    let text = src.text();
    let qname = start.name();
    let name: &str = qname.0;
    let name_at = offset_in(text, name).unwrap_or(before);
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|err| {
            let at = match &err {
                quick_xml::events::attributes::AttrError::ExpectedEq(p)
                | quick_xml::events::attributes::AttrError::ExpectedValue(p)
                | quick_xml::events::attributes::AttrError::UnquotedValue(p)
                | quick_xml::events::attributes::AttrError::ExpectedQuote(p, _)
                | quick_xml::events::attributes::AttrError::Duplicated(p, _) => name_at + p,
            };
            Diagnostic::new(
                src,
                Code::E0001,
                Span::new(at, at),
                format!("malformed XML: {err}"),
            )
        })?;
        let key: &str = attr.key.0;
        let key_at = offset_in(text, key).unwrap_or(name_at);
        let raw: &str = &attr.value;
        let value_at = offset_in(text, raw).unwrap_or(key_at);
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| {
                Diagnostic::new(
                    src,
                    Code::E0001,
                    Span::new(value_at, value_at),
                    format!("malformed XML: {err}"),
                )
            })?;
        attrs.push(Attr {
            name: key.to_owned(),
            value: value.into_owned(),
            name_span: Span::new(key_at, key_at + key.len()),
            value_span: Span::new(value_at, value_at + raw.len()),
        });
    }
    let namespace = attrs
        .iter()
        .find(|a| a.name == "xmlns")
        .map(|a| a.value.clone())
        .or_else(|| parent.and_then(|p| p.namespace.clone()));
    Ok(Element {
        name: name.to_owned(),
        namespace,
        span: Span::new(name_at, name_at + name.len()),
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (u32, u32, String) {
        let src = SourceFile::from_text("f", text);
        let d = parse(&src).unwrap_err();
        assert_eq!(d.code, Code::E0001);
        (d.line, d.column, d.message)
    }

    #[test]
    fn spans_point_at_names_and_values() {
        let src = SourceFile::from_text("f", "<a xmlns=\"n\">\r\n  <b x=\"1 &amp; 2\" />\r\n</a>");
        let root = parse(&src).unwrap();
        let b = &root.children[0];
        assert_eq!(b.namespace.as_deref(), Some("n"));
        assert_eq!(src.position(b.span.start), Position { line: 2, column: 4 });
        let x = &b.attrs[0];
        assert_eq!(x.value, "1 & 2");
        assert_eq!(
            &src.text()[x.value_span.start..x.value_span.end],
            "1 &amp; 2"
        );
        assert_eq!(
            src.position(x.name_span.start),
            Position { line: 2, column: 6 }
        );
    }

    #[test]
    fn malformed_documents_report_where() {
        assert_eq!(err("<a>\n  <b>\n</a>").0, 3);
        let (line, _, msg) = err("<a>\n<b></b>");
        assert_eq!(line, 2);
        assert!(msg.contains("not closed"), "{msg}");
        assert!(err("<a/><b/>").2.contains("after the root"));
        assert!(err("").2.contains("no root element"));
        assert!(err("<a b=\"1\" b=\"2\"/>").2.contains("malformed XML"));
        assert!(err("<a>&nope;</a>").2.contains("unknown entity"));
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(err(&deep).2.contains("nest deeper"));
    }

    use crate::source::Position;
}
