//! Source text: decoding the bytes a user hands us (UTF-8 with or without a
//! byte-order mark, UTF-16 LE/BE) and mapping byte offsets in the decoded text
//! to the line and column a user sees.

use std::sync::Arc;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE};
use serde::Serialize;

/// A byte range in the decoded text of one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }
}

/// A value read from a file together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Located<T> {
    pub fn new(value: T, span: Span) -> Self {
        Located { value, span }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A 1-based line and column (in characters) in the decoded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// The encoding a file was written in, as detected from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    /// A legacy single-byte encoding named by the XML declaration.
    Declared(&'static str),
}

/// One decoded input file: its display name and its text. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SourceFile {
    inner: Arc<SourceInner>,
}

#[derive(Debug)]
struct SourceInner {
    name: String,
    text: String,
    encoding: TextEncoding,
    line_starts: Vec<usize>,
}

/// Why bytes could not be turned into text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What was wrong, for a user.
    pub message: String,
    /// The valid text before the problem (so a position can be reported).
    pub prefix: String,
}

impl SourceFile {
    /// Builds a source from text that is already decoded.
    pub fn from_text(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self::build(name.into(), text.into(), TextEncoding::Utf8)
    }

    /// Decodes `bytes` as an XML document: a UTF-8 or UTF-16 byte-order mark
    /// wins, then UTF-16 without a mark is sniffed from `<?`, then UTF-8;
    /// a legacy encoding named in the XML declaration is honoured when the
    /// bytes are not valid UTF-8.
    pub fn decode(
        name: impl Into<String>,
        bytes: &[u8],
    ) -> Result<Self, (SourceFile, DecodeError)> {
        let name = name.into();
        let utf16 = |enc: &'static Encoding, body: &[u8], tag| match enc
            .decode_without_bom_handling_and_without_replacement(body)
        {
            Some(text) => Ok((text.into_owned(), tag)),
            None => {
                let (lossy, _) = enc.decode_without_bom_handling(body);
                let prefix: String = lossy
                    .split('\u{FFFD}')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                Err(DecodeError {
                    message: format!("the file is not valid {} text", enc.name()),
                    prefix,
                })
            }
        };
        let decoded = if let Some(body) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
            decode_utf8(body).map(|t| (t, TextEncoding::Utf8Bom))
        } else if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
            utf16(UTF_16LE, body, TextEncoding::Utf16Le)
        } else if let Some(body) = bytes.strip_prefix(&[0xFE, 0xFF]) {
            utf16(UTF_16BE, body, TextEncoding::Utf16Be)
        } else if bytes.starts_with(&[b'<', 0, b'?', 0]) {
            utf16(UTF_16LE, bytes, TextEncoding::Utf16Le)
        } else if bytes.starts_with(&[0, b'<', 0, b'?']) {
            utf16(UTF_16BE, bytes, TextEncoding::Utf16Be)
        } else {
            match decode_utf8(bytes) {
                Ok(text) => Ok((text, TextEncoding::Utf8)),
                Err(err) => match declared_legacy_encoding(bytes) {
                    Some(enc) => {
                        let (text, _) = enc.decode_without_bom_handling(bytes);
                        Ok((text.into_owned(), TextEncoding::Declared(enc.name())))
                    }
                    None => Err(err),
                },
            }
        };
        match decoded {
            Ok((text, encoding)) => Ok(Self::build(name, text, encoding)),
            Err(err) => Err((
                Self::build(name, err.prefix.clone(), TextEncoding::Utf8),
                err,
            )),
        }
    }

    fn build(name: String, text: String, encoding: TextEncoding) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            inner: Arc::new(SourceInner {
                name,
                text,
                encoding,
                line_starts,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn text(&self) -> &str {
        &self.inner.text
    }

    pub fn encoding(&self) -> TextEncoding {
        self.inner.encoding
    }

    /// The 1-based line and column of a byte offset (clamped to the text).
    /// Columns count characters; a `\r` before `\n` is not counted.
    pub fn position(&self, offset: usize) -> Position {
        let text = &self.inner.text;
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.inner.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.inner.line_starts[line];
        let column = text[start..offset].chars().filter(|&c| c != '\r').count() + 1;
        Position {
            line: line as u32 + 1,
            column: column as u32,
        }
    }
}

fn decode_utf8(bytes: &[u8]) -> Result<String, DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(err) => {
            let valid = err.valid_up_to();
            Err(DecodeError {
                message: format!(
                    "the file is neither UTF-8 nor UTF-16: invalid UTF-8 at byte {}",
                    valid
                ),
                prefix: String::from_utf8_lossy(&bytes[..valid]).into_owned(),
            })
        }
    }
}

/// The encoding named by `<?xml ... encoding="..."?>` when it is a
/// single-byte legacy encoding encoding_rs knows (for example windows-1252).
fn declared_legacy_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(200)];
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let rest = &decl[decl.find("encoding")? + "encoding".len()..];
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let label = rest[1..].split(quote).next()?;
    let enc = Encoding::for_label(label.as_bytes())?;
    (enc != encoding_rs::UTF_8 && enc != UTF_16LE && enc != UTF_16BE).then_some(enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_and_ignore_cr() {
        let src = SourceFile::from_text("f", "ab\r\ncé d\nx");
        assert_eq!(src.position(0), Position { line: 1, column: 1 });
        assert_eq!(src.position(4), Position { line: 2, column: 1 });
        assert_eq!(src.position(8), Position { line: 2, column: 4 });
        assert_eq!(src.position(10), Position { line: 3, column: 1 });
    }

    #[test]
    fn decodes_boms_and_utf16() {
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("<?xml?><a/>".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        let src = SourceFile::decode("f", &le).unwrap();
        assert_eq!(src.text(), "<?xml?><a/>");
        assert_eq!(src.encoding(), TextEncoding::Utf16Le);
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("<a/>".encode_utf16().flat_map(|u| u.to_be_bytes()))
            .collect();
        assert_eq!(SourceFile::decode("f", &be).unwrap().text(), "<a/>");
        let bom = SourceFile::decode("f", b"\xEF\xBB\xBF<a/>").unwrap();
        assert_eq!(
            (bom.text(), bom.encoding()),
            ("<a/>", TextEncoding::Utf8Bom)
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_with_the_valid_prefix() {
        let (src, err) = SourceFile::decode("f", b"<a>\n\xFF</a>").unwrap_err();
        assert_eq!(src.text(), "<a>\n");
        assert!(err.message.contains("byte 4"), "{}", err.message);
    }

    #[test]
    fn a_declaration_without_quotes_is_not_an_encoding() {
        // Found by fuzzing (cscfg): a multi-byte character where the quote
        // of `encoding=` belongs.
        let bytes = b"<?xml version=\"1.0\" encoding=\xEF\xBB\xBF<?xml?>\xFF";
        let (_, err) = SourceFile::decode("f", bytes).unwrap_err();
        assert!(err.message.contains("invalid UTF-8"), "{}", err.message);
    }

    #[test]
    fn declared_legacy_encoding_is_honoured() {
        let src = SourceFile::decode(
            "f",
            b"<?xml version=\"1.0\" encoding=\"windows-1252\"?><a b=\"\xE9\"/>",
        )
        .unwrap();
        assert!(src.text().contains("b=\"\u{e9}\""));
    }
}
