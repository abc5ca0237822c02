//! What a table request addresses — `Tables`, `Tables('name')`, `name`,
//! `name()`, `name(PartitionKey='..',RowKey='..')`, `$batch` — and the
//! opaque continuation tokens of paged queries.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, CONTROLS};

/// Characters percent-encoded inside a key in a link.
pub const KEY_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The resource named by the path after the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `/` (service-level requests).
    Service,
    /// `Tables` (query, create).
    Tables,
    /// `Tables('name')` (delete, get one table).
    Table(String),
    /// `name` or `name()`: insert, query entities.
    Entities(String),
    /// `name(PartitionKey='..',RowKey='..')`.
    Entity {
        table: String,
        partition_key: String,
        row_key: String,
    },
    /// `$batch`.
    Batch,
}

/// Why a resource path did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath;

/// Parses the decoded path after `/<account>/`.
pub fn parse_resource(rest: &str) -> Result<Resource, BadPath> {
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Ok(Resource::Service);
    }
    if rest == "$batch" {
        return Ok(Resource::Batch);
    }
    let Some(open) = rest.find('(') else {
        if rest.contains('/') {
            return Err(BadPath);
        }
        return Ok(if rest == "Tables" {
            Resource::Tables
        } else {
            Resource::Entities(rest.to_string())
        });
    };
    let (name, args) = (&rest[..open], &rest[open + 1..]);
    let args = args.strip_suffix(')').ok_or(BadPath)?;
    if name.is_empty() || name.contains('/') {
        return Err(BadPath);
    }
    if name == "Tables" {
        let t = single_quoted(args.trim()).ok_or(BadPath)?;
        return Ok(Resource::Table(t));
    }
    if args.trim().is_empty() {
        return Ok(Resource::Entities(name.to_string()));
    }
    let pairs = split_args(args).ok_or(BadPath)?;
    let mut pk = None;
    let mut rk = None;
    for (k, v) in pairs {
        match k.trim() {
            "PartitionKey" if pk.is_none() => pk = Some(v),
            "RowKey" if rk.is_none() => rk = Some(v),
            _ => return Err(BadPath),
        }
    }
    match (pk, rk) {
        (Some(partition_key), Some(row_key)) => Ok(Resource::Entity {
            table: name.to_string(),
            partition_key,
            row_key,
        }),
        _ => Err(BadPath),
    }
}

/// `'text'` with `''` for a quote.
fn single_quoted(s: &str) -> Option<String> {
    let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next() != Some('\'') {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// `A='x',B='y'`, respecting quotes.
fn split_args(args: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = args;
    loop {
        let eq = rest.find('=')?;
        let key = rest[..eq].to_string();
        let after = rest[eq + 1..].trim_start();
        if !after.starts_with('\'') {
            return None;
        }
        let b = after.as_bytes();
        let mut i = 1;
        loop {
            if i >= b.len() {
                return None;
            }
            if b[i] == b'\'' {
                if i + 1 < b.len() && b[i + 1] == b'\'' {
                    i += 2;
                    continue;
                }
                break;
            }
            i += 1;
        }
        out.push((key, single_quoted(&after[..=i])?));
        let tail = after[i + 1..].trim_start();
        if tail.is_empty() {
            return Some(out);
        }
        rest = tail.strip_prefix(',')?;
    }
}

/// Encodes a key for a continuation header (`1!<n>!<base64>`, like Azure's).
pub fn encode_token(key: &str) -> String {
    let b = URL_SAFE_NO_PAD.encode(key.as_bytes());
    format!("1!{}!{b}", b.len())
}

/// Decodes a continuation token written by [`encode_token`].
pub fn decode_token(token: &str) -> Option<String> {
    let mut parts = token.splitn(3, '!');
    if parts.next()? != "1" {
        return None;
    }
    let len: usize = parts.next()?.parse().ok()?;
    let b = parts.next()?;
    if b.len() != len {
        return None;
    }
    String::from_utf8(URL_SAFE_NO_PAD.decode(b).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources() {
        let entity = |t: &str, p: &str, r: &str| Resource::Entity {
            table: t.into(),
            partition_key: p.into(),
            row_key: r.into(),
        };
        let cases = [
            ("", Resource::Service),
            ("Tables", Resource::Tables),
            ("Tables('abc')", Resource::Table("abc".into())),
            ("$batch", Resource::Batch),
            ("orders", Resource::Entities("orders".into())),
            ("orders()", Resource::Entities("orders".into())),
            (
                "orders(PartitionKey='p',RowKey='r')",
                entity("orders", "p", "r"),
            ),
            (
                "orders(PartitionKey='a''b,c)',RowKey='')",
                entity("orders", "a'b,c)", ""),
            ),
            (
                "orders(RowKey='r', PartitionKey='p')",
                entity("orders", "p", "r"),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(parse_resource(path), Ok(want), "{path}");
        }
        for bad in [
            "orders(PartitionKey='p')",
            "orders(PartitionKey='p',RowKey='r'",
            "orders(PartitionKey=p,RowKey='r')",
            "orders(PartitionKey='p',RowKey='r',X='y')",
            "orders(PartitionKey='p'x,RowKey='r')",
            "Tables(abc)",
            "a/b",
            "(x)",
        ] {
            assert_eq!(parse_resource(bad), Err(BadPath), "{bad}");
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for k in ["", "p1", "ü/?#'"] {
            assert_eq!(decode_token(&encode_token(k)).as_deref(), Some(k));
        }
        for bad in ["", "1!3!abcd", "2!4!cDE", "x", "1!x!ab"] {
            assert_eq!(decode_token(bad), None, "{bad}");
        }
    }
}
