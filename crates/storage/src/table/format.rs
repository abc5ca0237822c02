//! The JSON the service answers with, in the three formats a client may
//! ask for: nometadata, minimalmetadata (the default) and fullmetadata.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Number, Value as Json};

use super::datetime::{format_datetime, format_timestamp};
use super::edm::{Entity, Value};

/// How responses describe types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    NoMetadata,
    Minimal,
    Full,
}

impl Format {
    /// From `$format` or the `Accept` header (minimal when unspecified).
    pub fn parse(format_param: Option<&str>, accept: Option<&str>) -> Format {
        let s = format_param.or(accept).unwrap_or("").to_ascii_lowercase();
        if s.contains("odata=nometadata") {
            Format::NoMetadata
        } else if s.contains("odata=fullmetadata") {
            Format::Full
        } else {
            Format::Minimal
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::NoMetadata => "application/json;odata=nometadata;streaming=true;charset=utf-8",
            Format::Minimal => {
                "application/json;odata=minimalmetadata;streaming=true;charset=utf-8"
            }
            Format::Full => "application/json;odata=fullmetadata;streaming=true;charset=utf-8",
        }
    }
}

fn json_value(v: &Value) -> Json {
    match v {
        Value::String(s) => Json::String(s.clone()),
        Value::Int32(i) => Json::Number((*i).into()),
        Value::Int64(i) => Json::String(i.to_string()),
        Value::Double(d) => match Number::from_f64(*d) {
            Some(n) => Json::Number(n),
            None if d.is_nan() => Json::String("NaN".into()),
            None if *d > 0.0 => Json::String("Infinity".into()),
            None => Json::String("-Infinity".into()),
        },
        Value::Bool(b) => Json::Bool(*b),
        Value::DateTime(t) => Json::String(format_datetime(*t)),
        Value::Guid(g) => Json::String(g.hyphenated().to_string()),
        Value::Binary(b) => Json::String(STANDARD.encode(b)),
    }
}

/// Whether a value needs its type spelled out for the client to read it back.
fn needs_annotation(v: &Value, format: Format) -> bool {
    match format {
        Format::NoMetadata => false,
        Format::Minimal => match v {
            Value::String(_) | Value::Bool(_) | Value::Int32(_) => false,
            Value::Double(d) => !d.is_finite(),
            _ => true,
        },
        Format::Full => !matches!(v, Value::String(_) | Value::Bool(_) | Value::Int32(_)),
    }
}

/// Where a response entity lives, for the metadata fields.
pub struct Location<'a> {
    /// `http://host/account`
    pub endpoint: &'a str,
    pub account: &'a str,
    pub table: &'a str,
}

fn quote_key(k: &str) -> String {
    let doubled = k.replace('\'', "''");
    percent_encoding::utf8_percent_encode(&doubled, crate::table::keys::KEY_ENCODE).to_string()
}

/// `table(PartitionKey='..',RowKey='..')`
pub fn edit_link(table: &str, pk: &str, rk: &str) -> String {
    format!(
        "{table}(PartitionKey='{}',RowKey='{}')",
        quote_key(pk),
        quote_key(rk)
    )
}

/// One entity as a JSON object; `select` limits the user properties
/// (the keys, Timestamp and ETag always come along unless not selected).
pub fn entity_json(
    e: &Entity,
    format: Format,
    loc: &Location<'_>,
    select: Option<&[String]>,
    single: bool,
) -> Map<String, Json> {
    let mut m = Map::new();
    if single && format != Format::NoMetadata {
        m.insert(
            "odata.metadata".into(),
            Json::String(format!("{}/$metadata#{}/@Element", loc.endpoint, loc.table)),
        );
    }
    if format == Format::Full {
        m.insert(
            "odata.type".into(),
            Json::String(format!("{}.{}", loc.account, loc.table)),
        );
        let link = edit_link(loc.table, &e.partition_key, &e.row_key);
        m.insert(
            "odata.id".into(),
            Json::String(format!("{}/{link}", loc.endpoint)),
        );
        m.insert("odata.etag".into(), Json::String(e.etag()));
        m.insert("odata.editLink".into(), Json::String(link));
    } else if format == Format::Minimal {
        m.insert("odata.etag".into(), Json::String(e.etag()));
    }
    let wanted = |n: &str| select.is_none_or(|s| s.iter().any(|x| x == n));
    if wanted("PartitionKey") {
        m.insert("PartitionKey".into(), Json::String(e.partition_key.clone()));
    }
    if wanted("RowKey") {
        m.insert("RowKey".into(), Json::String(e.row_key.clone()));
    }
    if wanted("Timestamp") {
        if format == Format::Full {
            m.insert(
                "Timestamp@odata.type".into(),
                Json::String("Edm.DateTime".into()),
            );
        }
        m.insert(
            "Timestamp".into(),
            Json::String(format_timestamp(e.timestamp)),
        );
    }
    for (n, v) in &e.props {
        if !wanted(n) {
            continue;
        }
        if needs_annotation(v, format) {
            m.insert(format!("{n}@odata.type"), Json::String(v.edm_type().into()));
        }
        m.insert(n.clone(), json_value(v));
    }
    if let Some(s) = select {
        // Selected properties the entity does not have come back as null.
        for n in s {
            if !m.contains_key(n) && e.get(n).is_none() {
                m.insert(n.clone(), Json::Null);
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_formats_annotate_what_the_client_cannot_infer() {
        let e = Entity {
            partition_key: "p".into(),
            row_key: "r'1".into(),
            timestamp: 0,
            props: vec![
                ("I".into(), Value::Int32(1)),
                ("L".into(), Value::Int64(2)),
                ("D".into(), Value::Double(1.0)),
            ],
        };
        let loc = Location {
            endpoint: "http://h/a",
            account: "a",
            table: "t",
        };
        let min = Json::Object(entity_json(&e, Format::Minimal, &loc, None, true)).to_string();
        assert!(
            min.contains(r#""L@odata.type":"Edm.Int64","L":"2""#)
                || min.contains(r#""L":"2","L@odata.type":"Edm.Int64""#),
            "{min}"
        );
        assert!(
            !min.contains("I@odata.type") && min.contains(r#""D":1.0"#),
            "{min}"
        );
        assert!(
            min.contains(r#""odata.metadata":"http://h/a/$metadata#t/@Element""#),
            "{min}"
        );
        let none = Json::Object(entity_json(&e, Format::NoMetadata, &loc, None, true)).to_string();
        assert!(!none.contains("odata"), "{none}");
        let full = Json::Object(entity_json(&e, Format::Full, &loc, None, false)).to_string();
        assert!(
            full.contains(r#""odata.editLink":"t(PartitionKey='p',RowKey='r''1')""#),
            "{full}"
        );
        assert!(
            full.contains(r#""Timestamp@odata.type":"Edm.DateTime""#),
            "{full}"
        );
        let sel = vec!["I".to_string(), "Missing".to_string()];
        let s =
            Json::Object(entity_json(&e, Format::NoMetadata, &loc, Some(&sel), false)).to_string();
        assert_eq!(s, r#"{"I":1,"Missing":null}"#);
    }
}
