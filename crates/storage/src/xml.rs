//! XML request bodies (Put Block List, Set Container ACL) parsed into a
//! small element tree, and escaping for the XML the service writes.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::api_error::ApiError;

/// Deepest nesting a request body may have.
const MAX_DEPTH: usize = 16;
/// Most block ids one block list may name.
pub const MAX_BLOCKS: usize = 50_000;

/// Escapes text and attribute values.
pub fn escape(s: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// An element: its local name, its text, its child elements.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Parses a whole document into its root element; anything malformed is
/// `InvalidXmlDocument`.
pub fn parse_document(body: &[u8]) -> Result<Element, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::invalid_xml())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let ev = reader.read_event().map_err(|_| ApiError::invalid_xml())?;
        match ev {
            Event::Start(e) => {
                if root.is_some() || stack.len() >= MAX_DEPTH {
                    return Err(ApiError::invalid_xml());
                }
                let name = e.local_name().as_ref().to_string();
                stack.push(Element {
                    name,
                    ..Element::default()
                });
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_string();
                let el = Element {
                    name,
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(ApiError::invalid_xml()),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(ApiError::invalid_xml)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content())?,
            Event::CData(t) => {
                let s: &str = t.as_ref();
                push_text(&mut stack, s)?
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|_| ApiError::invalid_xml())? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .ok_or_else(ApiError::invalid_xml)?
                        .to_string(),
                };
                push_text(&mut stack, &resolved)?
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(ApiError::invalid_xml()),
        }
    }
    if !stack.is_empty() {
        return Err(ApiError::invalid_xml());
    }
    root.ok_or_else(ApiError::invalid_xml)
}

fn push_text(stack: &mut [Element], s: &str) -> Result<(), ApiError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(ApiError::invalid_xml()),
    }
}

/// Where Put Block List looks for a block id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSource {
    Committed,
    Uncommitted,
    Latest,
}

/// The body of Put Block List: `<BlockList><Latest>id</Latest>...</BlockList>`.
pub fn parse_block_list(body: &[u8]) -> Result<Vec<(BlockSource, String)>, ApiError> {
    let root = parse_document(body)?;
    if root.name != "BlockList" {
        return Err(ApiError::invalid_xml());
    }
    if root.children.len() > MAX_BLOCKS {
        return Err(ApiError::new(
            hyper::StatusCode::BAD_REQUEST,
            "BlockListTooLong",
            "The block list may not contain more than 50,000 blocks.",
        ));
    }
    root.children
        .iter()
        .map(|c| {
            let src = match c.name.as_str() {
                "Committed" => BlockSource::Committed,
                "Uncommitted" => BlockSource::Uncommitted,
                "Latest" => BlockSource::Latest,
                _ => return Err(ApiError::invalid_xml()),
            };
            Ok((src, c.text.trim().to_string()))
        })
        .collect()
}

/// One stored access policy of a container ACL.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedIdentifier {
    pub id: String,
    pub start: Option<String>,
    pub expiry: Option<String>,
    pub permission: Option<String>,
}

/// The body of Set Container ACL: at most five signed identifiers, ids of
/// at most 64 characters.
pub fn parse_signed_identifiers(body: &[u8]) -> Result<Vec<SignedIdentifier>, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Vec::new());
    }
    let root = parse_document(body)?;
    if root.name != "SignedIdentifiers" {
        return Err(ApiError::invalid_xml());
    }
    if root.children.len() > 5 {
        return Err(ApiError::new(
            hyper::StatusCode::BAD_REQUEST,
            "InvalidXmlDocument",
            "XML specified is not syntactically valid: more than five signed identifiers.",
        ));
    }
    root.children
        .iter()
        .map(|si| {
            if si.name != "SignedIdentifier" {
                return Err(ApiError::invalid_xml());
            }
            let id = si
                .child("Id")
                .map(|e| e.text.trim().to_string())
                .unwrap_or_default();
            if id.is_empty() || id.chars().count() > 64 {
                return Err(ApiError::invalid_xml());
            }
            let policy = si.child("AccessPolicy");
            let field = |n: &str| {
                policy
                    .and_then(|p| p.child(n))
                    .map(|e| e.text.trim().to_string())
                    .filter(|s| !s.is_empty())
            };
            Ok(SignedIdentifier {
                id,
                start: field("Start"),
                expiry: field("Expiry"),
                permission: field("Permission"),
            })
        })
        .collect()
}

/// Writes signed identifiers back as Get Container ACL's body.
pub fn write_signed_identifiers(ids: &[SignedIdentifier]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><SignedIdentifiers>");
    for si in ids {
        s.push_str("<SignedIdentifier><Id>");
        s.push_str(&escape(&si.id));
        s.push_str("</Id><AccessPolicy>");
        for (tag, v) in [
            ("Start", &si.start),
            ("Expiry", &si.expiry),
            ("Permission", &si.permission),
        ] {
            if let Some(v) = v {
                s.push_str(&format!("<{tag}>{}</{tag}>", escape(v)));
            }
        }
        s.push_str("</AccessPolicy></SignedIdentifier>");
    }
    s.push_str("</SignedIdentifiers>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_lists() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<BlockList><Committed>AAA=</Committed><Uncommitted>QkI=</Uncommitted><Latest>a&amp;b</Latest></BlockList>"#;
        assert_eq!(
            parse_block_list(body).unwrap(),
            vec![
                (BlockSource::Committed, "AAA=".to_string()),
                (BlockSource::Uncommitted, "QkI=".to_string()),
                (BlockSource::Latest, "a&b".to_string()),
            ]
        );
        assert_eq!(parse_block_list(b"<BlockList/>").unwrap(), vec![]);
        for bad in [
            &b"<BlockList><Latest>x</Latest>"[..],
            b"<Other/>",
            b"<BlockList><Bogus>x</Bogus></BlockList>",
            b"not xml",
            b"<BlockList></BlockList><BlockList/>",
            b"<!DOCTYPE x [<!ENTITY a 'b'>]><BlockList/>",
            b"\xff\xfe",
        ] {
            assert_eq!(
                parse_block_list(bad).unwrap_err().code,
                "InvalidXmlDocument",
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn signed_identifiers_round_trip() {
        let ids = vec![SignedIdentifier {
            id: "policy<1>".into(),
            start: Some("2026-01-01T00:00:00Z".into()),
            expiry: Some("2027-01-01T00:00:00Z".into()),
            permission: Some("rl".into()),
        }];
        let xml = write_signed_identifiers(&ids);
        assert_eq!(parse_signed_identifiers(xml.as_bytes()).unwrap(), ids);
        assert!(parse_signed_identifiers(b"").unwrap().is_empty());
        let six = format!(
            "<SignedIdentifiers>{}</SignedIdentifiers>",
            "<SignedIdentifier><Id>a</Id></SignedIdentifier>".repeat(6)
        );
        assert!(parse_signed_identifiers(six.as_bytes()).is_err());
    }
}
