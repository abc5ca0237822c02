//! The form entity properties are stored in: a compact byte string, one
//! record per property — tag (1 byte), name length (u16 LE), name, value
//! (fixed width, or a u32 LE length and bytes for strings and binary).
//!
//! [`find`] reads one property without decoding the others, so a query
//! evaluates its filter on a row without building the entity; only
//! matching rows are decoded whole ([`decode`]).

use super::edm::Value;

const STRING: u8 = b's';
const INT32: u8 = b'i';
const INT64: u8 = b'l';
const DOUBLE: u8 = b'd';
const BOOL: u8 = b'b';
const DATETIME: u8 = b't';
const GUID: u8 = b'g';
const BINARY: u8 = b'x';

/// Stored properties that do not decode (a damaged row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub &'static str);

/// Encodes properties in order.
pub fn encode(props: &[(String, Value)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for (name, v) in props {
        let tag = match v {
            Value::String(_) => STRING,
            Value::Int32(_) => INT32,
            Value::Int64(_) => INT64,
            Value::Double(_) => DOUBLE,
            Value::Bool(_) => BOOL,
            Value::DateTime(_) => DATETIME,
            Value::Guid(_) => GUID,
            Value::Binary(_) => BINARY,
        };
        out.push(tag);
        // Names are at most 255 characters (checked on the way in).
        out.extend_from_slice(&(name.len().min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(&name.as_bytes()[..name.len().min(u16::MAX as usize)]);
        match v {
            Value::String(s) => {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Binary(b) => {
                out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                out.extend_from_slice(b);
            }
            Value::Int32(i) => out.extend_from_slice(&i.to_le_bytes()),
            Value::Int64(i) | Value::DateTime(i) => out.extend_from_slice(&i.to_le_bytes()),
            Value::Double(d) => out.extend_from_slice(&d.to_bits().to_le_bytes()),
            Value::Bool(b) => out.push(u8::from(*b)),
            Value::Guid(g) => out.extend_from_slice(g.as_bytes()),
        }
    }
    out
}

/// One record: type tag, name bytes, value bytes.
type Record<'a> = (u8, &'a [u8], &'a [u8]);

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(Corrupt("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Corrupt> {
        self.take(N)?.try_into().map_err(|_| Corrupt("truncated"))
    }

    fn len32(&mut self) -> Result<usize, Corrupt> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    /// The next record: tag, name, and the value's bytes.
    fn next(&mut self) -> Result<Option<Record<'a>>, Corrupt> {
        if self.pos == self.b.len() {
            return Ok(None);
        }
        let tag = self.take(1)?[0];
        let name_len = u16::from_le_bytes(self.array()?) as usize;
        let name = self.take(name_len)?;
        let value = match tag {
            STRING | BINARY => {
                let n = self.len32()?;
                self.take(n)?
            }
            INT32 => self.take(4)?,
            INT64 | DOUBLE | DATETIME => self.take(8)?,
            BOOL => self.take(1)?,
            GUID => self.take(16)?,
            _ => return Err(Corrupt("unknown type tag")),
        };
        Ok(Some((tag, name, value)))
    }
}

fn value(tag: u8, v: &[u8]) -> Result<Value, Corrupt> {
    let fixed = |n: usize| -> Result<[u8; 8], Corrupt> {
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(v.get(..n).ok_or(Corrupt("truncated"))?);
        Ok(a)
    };
    Ok(match tag {
        STRING => Value::String(
            std::str::from_utf8(v)
                .map_err(|_| Corrupt("string is not UTF-8"))?
                .to_string(),
        ),
        BINARY => Value::Binary(v.to_vec()),
        INT32 => {
            let a = fixed(4)?;
            Value::Int32(i32::from_le_bytes([a[0], a[1], a[2], a[3]]))
        }
        INT64 => Value::Int64(i64::from_le_bytes(fixed(8)?)),
        DATETIME => Value::DateTime(i64::from_le_bytes(fixed(8)?)),
        DOUBLE => Value::Double(f64::from_bits(u64::from_le_bytes(fixed(8)?))),
        BOOL => Value::Bool(v.first().is_some_and(|b| *b != 0)),
        GUID => Value::Guid(uuid::Uuid::from_slice(v).map_err(|_| Corrupt("bad guid"))?),
        _ => return Err(Corrupt("unknown type tag")),
    })
}

/// Decodes every property, in order.
pub fn decode(b: &[u8]) -> Result<Vec<(String, Value)>, Corrupt> {
    let mut r = Reader { b, pos: 0 };
    let mut out = Vec::new();
    while let Some((tag, name, v)) = r.next()? {
        let name = std::str::from_utf8(name).map_err(|_| Corrupt("name is not UTF-8"))?;
        out.push((name.to_string(), value(tag, v)?));
    }
    Ok(out)
}

/// One property, decoded; the others are skipped over.
pub fn find(b: &[u8], name: &str) -> Result<Option<Value>, Corrupt> {
    let mut r = Reader { b, pos: 0 };
    while let Some((tag, n, v)) = r.next()? {
        if n == name.as_bytes() {
            return value(tag, v).map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::datetime::MIN_TICKS;

    #[test]
    fn every_type_round_trips_and_is_found_alone() {
        let props = vec![
            ("s".to_string(), Value::String("x\"y ü".into())),
            ("i".into(), Value::Int32(-5)),
            ("l".into(), Value::Int64(i64::MIN)),
            ("d".into(), Value::Double(f64::NAN)),
            ("d2".into(), Value::Double(-0.1)),
            ("b".into(), Value::Bool(false)),
            ("t".into(), Value::DateTime(MIN_TICKS)),
            ("g".into(), Value::Guid(uuid::Uuid::from_u128(7))),
            ("x".into(), Value::Binary(vec![255, 0])),
            ("empty".into(), Value::String(String::new())),
        ];
        let b = encode(&props);
        let back = decode(&b).unwrap();
        assert_eq!(back.len(), props.len());
        for ((n1, v1), (n2, v2)) in props.iter().zip(&back) {
            assert_eq!(n1, n2);
            match (v1, v2) {
                (Value::Double(a), Value::Double(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                _ => assert_eq!(v1, v2),
            }
            if !matches!(v1, Value::Double(_)) {
                assert_eq!(find(&b, n1).unwrap().as_ref(), Some(v1), "{n1}");
            }
        }
        assert_eq!(find(&b, "missing").unwrap(), None);
        assert_eq!(find(&b, "d2").unwrap(), Some(Value::Double(-0.1)));
        assert!(decode(&[]).unwrap().is_empty());
    }

    #[test]
    fn damaged_rows_are_errors_not_panics() {
        let b = encode(&[("name".into(), Value::String("value".into()))]);
        for cut in 0..b.len() {
            assert!(
                decode(&b[..cut]).is_err() || cut == 0,
                "a row cut at {cut} decoded"
            );
        }
        assert!(decode(&[b'?', 0, 0]).is_err());
        assert!(find(&[b's', 1, 0, b'a', 9, 0, 0, 0], "a").is_err());
    }
}
