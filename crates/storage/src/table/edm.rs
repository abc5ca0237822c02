//! Entity data model: typed property values (the `Edm.*` types), the JSON
//! entity bodies clients send (with `@odata.type` annotations), the three
//! response formats (nometadata, minimalmetadata, fullmetadata), the
//! compact form entities are stored in, and Azure's entity limits.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::StatusCode;
use serde_json::{Map, Number, Value as Json};

use crate::api_error::ApiError;

/// One typed property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Int32(i32),
    Int64(i64),
    Double(f64),
    Bool(bool),
    /// 100-nanosecond ticks since 1970-01-01T00:00:00Z.
    DateTime(i64),
    Guid(uuid::Uuid),
    Binary(Vec<u8>),
}

impl Value {
    /// The `Edm.*` type name.
    pub fn edm_type(&self) -> &'static str {
        match self {
            Value::String(_) => "Edm.String",
            Value::Int32(_) => "Edm.Int32",
            Value::Int64(_) => "Edm.Int64",
            Value::Double(_) => "Edm.Double",
            Value::Bool(_) => "Edm.Boolean",
            Value::DateTime(_) => "Edm.DateTime",
            Value::Guid(_) => "Edm.Guid",
            Value::Binary(_) => "Edm.Binary",
        }
    }

    /// Bytes this value counts for in the entity size limit.
    fn size(&self) -> usize {
        match self {
            Value::String(s) => 4 + 2 * utf16_len(s),
            Value::Binary(b) => 4 + b.len(),
            Value::Bool(_) => 1,
            Value::Int32(_) => 4,
            Value::Int64(_) | Value::Double(_) | Value::DateTime(_) => 8,
            Value::Guid(_) => 16,
        }
    }
}

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

/// A stored entity: keys, server timestamp and properties in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub partition_key: String,
    pub row_key: String,
    /// Ticks (see [`Value::DateTime`]); also the ETag.
    pub timestamp: i64,
    pub props: Vec<(String, Value)>,
}

impl Entity {
    pub fn get(&self, name: &str) -> Option<Value> {
        match name {
            "PartitionKey" => Some(Value::String(self.partition_key.clone())),
            "RowKey" => Some(Value::String(self.row_key.clone())),
            "Timestamp" => Some(Value::DateTime(self.timestamp)),
            _ => self
                .props
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone()),
        }
    }

    pub fn etag(&self) -> String {
        etag(self.timestamp)
    }
}

/// Most properties an entity may have, the three system ones included.
pub const MAX_PROPERTIES: usize = 255;
/// Largest entity (keys, names and values as Azure counts them).
pub const MAX_ENTITY: usize = 1024 * 1024;
/// Largest string or binary property value.
pub const MAX_VALUE: usize = 64 * 1024;
/// Longest PartitionKey / RowKey, in bytes as Azure counts them (UTF-16).
pub const MAX_KEY: usize = 1024;

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

pub fn invalid_input(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidInput", message.to_string())
}

fn bad_value(name: &str, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidInput",
        format!("An error occurred while processing this request: property {name} {why}."),
    )
}

pub fn properties_need_value() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "PropertiesNeedValue",
        "The values are not specified for all properties in the entity.",
    )
}

/// An entity as a client sent it: keys (when present) and properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub partition_key: Option<String>,
    pub row_key: Option<String>,
    pub props: Vec<(String, Value)>,
}

/// Parses a JSON entity body, applying the type annotations, and checks
/// Azure's limits on names, values, property count and size.
pub fn parse_entity(body: &[u8]) -> Result<Incoming, ApiError> {
    let json: Json = serde_json::from_slice(body).map_err(|e| {
        invalid_input(&format!(
            "The request body is not valid JSON: {e}. An error occurred while processing this request."
        ))
    })?;
    let Json::Object(map) = json else {
        return Err(invalid_input(
            "The request body must be a JSON object. An error occurred while processing this request.",
        ));
    };
    parse_entity_object(&map)
}

pub fn parse_entity_object(map: &Map<String, Json>) -> Result<Incoming, ApiError> {
    let mut out = Incoming {
        partition_key: None,
        row_key: None,
        props: Vec::new(),
    };
    for (name, raw) in map {
        if name.starts_with("odata.") || name.ends_with("@odata.type") {
            continue;
        }
        let annotation = match map.get(&format!("{name}@odata.type")) {
            None => None,
            Some(Json::String(t)) => Some(t.as_str()),
            Some(_) => {
                return Err(bad_value(
                    name,
                    "has a type annotation that is not a string",
                ));
            }
        };
        if raw.is_null() {
            continue;
        }
        match name.as_str() {
            "PartitionKey" | "RowKey" => {
                let Json::String(k) = raw else {
                    return Err(bad_value(name, "must be a string"));
                };
                check_key(k)?;
                if name == "PartitionKey" {
                    out.partition_key = Some(k.clone());
                } else {
                    out.row_key = Some(k.clone());
                }
            }
            "Timestamp" => {}
            _ => {
                check_property_name(name)?;
                out.props
                    .push((name.clone(), typed(name, raw, annotation)?));
            }
        }
    }
    check_limits(&out)?;
    Ok(out)
}

fn typed(name: &str, raw: &Json, annotation: Option<&str>) -> Result<Value, ApiError> {
    let v = match (annotation, raw) {
        (None | Some("Edm.String"), Json::String(s)) => Value::String(s.clone()),
        (None | Some("Edm.Boolean"), Json::Bool(b)) => Value::Bool(*b),
        (None, Json::Number(n)) => {
            if let Some(i) = n.as_i64() {
                match i32::try_from(i) {
                    Ok(i) => Value::Int32(i),
                    Err(_) => Value::Int64(i),
                }
            } else {
                Value::Double(
                    n.as_f64()
                        .ok_or_else(|| bad_value(name, "is not a number"))?,
                )
            }
        }
        (Some("Edm.Int32"), Json::Number(n)) => Value::Int32(
            n.as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| bad_value(name, "is not a 32-bit integer"))?,
        ),
        (Some("Edm.Int64"), Json::String(s)) => Value::Int64(
            s.parse()
                .map_err(|_| bad_value(name, "is not a 64-bit integer"))?,
        ),
        (Some("Edm.Int64"), Json::Number(n)) => Value::Int64(
            n.as_i64()
                .ok_or_else(|| bad_value(name, "is not a 64-bit integer"))?,
        ),
        (Some("Edm.Double"), Json::Number(n)) => Value::Double(
            n.as_f64()
                .ok_or_else(|| bad_value(name, "is not a number"))?,
        ),
        (Some("Edm.Double"), Json::String(s)) => Value::Double(match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" | "INF" => f64::INFINITY,
            "-Infinity" | "-INF" => f64::NEG_INFINITY,
            other => other
                .parse()
                .map_err(|_| bad_value(name, "is not a double"))?,
        }),
        (Some("Edm.DateTime"), Json::String(s)) => Value::DateTime(
            parse_datetime(s).ok_or_else(|| bad_value(name, "is not a valid Edm.DateTime"))?,
        ),
        (Some("Edm.Guid"), Json::String(s)) => Value::Guid(
            uuid::Uuid::parse_str(s).map_err(|_| bad_value(name, "is not a valid Edm.Guid"))?,
        ),
        (Some("Edm.Binary"), Json::String(s)) => Value::Binary(
            STANDARD
                .decode(s)
                .map_err(|_| bad_value(name, "is not valid base64"))?,
        ),
        (Some(t), _) if !is_edm_type(t) => {
            return Err(bad_value(name, &format!("has the unknown type {t}")));
        }
        _ => return Err(bad_value(name, "does not match its type")),
    };
    match &v {
        Value::String(s) if 2 * utf16_len(s) > MAX_VALUE => Err(value_too_large()),
        Value::Binary(b) if b.len() > MAX_VALUE => Err(value_too_large()),
        _ => Ok(v),
    }
}

fn is_edm_type(t: &str) -> bool {
    matches!(
        t,
        "Edm.String"
            | "Edm.Int32"
            | "Edm.Int64"
            | "Edm.Double"
            | "Edm.Boolean"
            | "Edm.DateTime"
            | "Edm.Guid"
            | "Edm.Binary"
    )
}

fn value_too_large() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "PropertyValueTooLarge",
        "The property value exceeds the maximum allowed size (64KB). If the property value is a string, it is UTF-16 encoded and the maximum number of characters should be 32K or less.",
    )
}

/// Property names are C# identifiers of at most 255 characters.
pub fn check_property_name(name: &str) -> Result<(), ApiError> {
    if name.chars().count() > 255 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "PropertyNameTooLong",
            "The property name exceeds the maximum allowed length (255).",
        ));
    }
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "PropertyNameInvalid",
            "The property name is invalid.",
        ))
    }
}

/// PartitionKey and RowKey: at most 1 KiB, no `/ \ # ?` or control characters.
pub fn check_key(k: &str) -> Result<(), ApiError> {
    if 2 * utf16_len(k) > MAX_KEY {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "KeyValueTooLarge",
            "The size of the key value exceeds the maximum allowed size (1KB).",
        ));
    }
    if k.chars()
        .any(|c| matches!(c, '/' | '\\' | '#' | '?') || c.is_control())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "OutOfRangeInput",
            "One of the request inputs is out of range: the key contains a character that is not permitted.",
        ));
    }
    Ok(())
}

fn check_limits(e: &Incoming) -> Result<(), ApiError> {
    if e.props.len() + 3 > MAX_PROPERTIES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "TooManyProperties",
            "The entity contains more properties than allowed. Each entity can include up to 252 properties to store data. Each entity also has 3 system properties.",
        ));
    }
    let keys = 4
        + 2 * e.partition_key.as_deref().map_or(0, utf16_len)
        + 2 * e.row_key.as_deref().map_or(0, utf16_len);
    let size = keys
        + e.props
            .iter()
            .map(|(n, v)| 8 + 2 * utf16_len(n) + v.size())
            .sum::<usize>();
    if size > MAX_ENTITY {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            "The entity is larger than the maximum allowed size (1MB).",
        ));
    }
    Ok(())
}

// ---- date and time -------------------------------------------------------

const TICKS_PER_SEC: i64 = 10_000_000;
/// 1601-01-01, the earliest Edm.DateTime the service stores.
const MIN_TICKS: i64 = -11_644_473_600 * TICKS_PER_SEC;
/// 9999-12-31T23:59:59.9999999Z.
const MAX_TICKS: i64 = 253_402_300_800 * TICKS_PER_SEC - 1;

/// Parses `YYYY-MM-DDTHH:MM[:SS[.fffffff]]Z` (the `Z` may be left out)
/// into ticks.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let num = |t: &str, len: usize| -> Option<i64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let mut dp = date.split('-');
    let (y, m, d) = (
        num(dp.next()?, 4)?,
        num(dp.next()?, 2)?,
        num(dp.next()?, 2)?,
    );
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (time, None),
    };
    let mut tp = hms.split(':');
    let h = num(tp.next()?, 2)?;
    let mi = num(tp.next()?, 2)?;
    let sec = match tp.next() {
        Some(x) => num(x, 2)?,
        None => 0,
    };
    if tp.next().is_some() || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut ticks = 0;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 7 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        ticks = f.parse::<i64>().ok()? * 10i64.pow(7 - f.len() as u32);
    }
    let days = crate::timefmt::days_from_civil(y, m as u32, d as u32);
    let t = ((days * 86_400 + h * 3600 + mi * 60 + sec) * TICKS_PER_SEC) + ticks;
    (MIN_TICKS..=MAX_TICKS).contains(&t).then_some(t)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `2026-11-24T22:15:02.1234567Z`; the fraction is left out when zero.
pub fn format_datetime(ticks: i64) -> String {
    let secs = ticks.div_euclid(TICKS_PER_SEC);
    let frac = ticks.rem_euclid(TICKS_PER_SEC);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::blob::civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if frac != 0 {
        s.push_str(&format!(".{frac:07}"));
    }
    s.push('Z');
    s
}

/// Timestamps are always printed with seven fraction digits, as Azure does.
pub fn format_timestamp(ticks: i64) -> String {
    let s = format_datetime(ticks);
    if s.contains('.') {
        s
    } else {
        format!("{}.0000000Z", s.trim_end_matches('Z'))
    }
}

/// `W/"datetime'2026-11-24T22%3A15%3A02.1234567Z'"`
pub fn etag(ticks: i64) -> String {
    format!(
        "W/\"datetime'{}'\"",
        format_timestamp(ticks).replace(':', "%3A")
    )
}

static LAST_TICKS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Now in ticks, strictly increasing within the process so that every
/// write gets a distinct ETag.
pub fn now_ticks() -> i64 {
    use std::sync::atomic::Ordering;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_nanos() / 100) as i64)
        .unwrap_or(0);
    let mut prev = LAST_TICKS.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST_TICKS.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

// ---- response JSON --------------------------------------------------------

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

// ---- storage form --------------------------------------------------------

/// Encodes properties for the database: `[[name, tag, value], ...]`.
pub fn encode_props(props: &[(String, Value)]) -> String {
    let arr: Vec<Json> = props
        .iter()
        .map(|(n, v)| {
            let (tag, val) = match v {
                Value::String(s) => ("s", Json::String(s.clone())),
                Value::Int32(i) => ("i", Json::Number((*i).into())),
                Value::Int64(i) => ("l", Json::String(i.to_string())),
                Value::Double(d) => ("d", Json::String(format!("{:?}", d.to_bits()))),
                Value::Bool(b) => ("b", Json::Bool(*b)),
                Value::DateTime(t) => ("t", Json::String(t.to_string())),
                Value::Guid(g) => ("g", Json::String(g.hyphenated().to_string())),
                Value::Binary(b) => ("x", Json::String(STANDARD.encode(b))),
            };
            Json::Array(vec![Json::String(n.clone()), Json::String(tag.into()), val])
        })
        .collect();
    Json::Array(arr).to_string()
}

/// Decodes what [`encode_props`] wrote.
pub fn decode_props(s: &str) -> Result<Vec<(String, Value)>, String> {
    let Json::Array(items) = serde_json::from_str(s).map_err(|e| e.to_string())? else {
        return Err("stored properties are not an array".into());
    };
    items
        .into_iter()
        .map(|item| {
            let Json::Array(mut parts) = item else {
                return Err("stored property is not an array".to_string());
            };
            if parts.len() != 3 {
                return Err("stored property has the wrong shape".into());
            }
            let val = parts.pop().unwrap_or(Json::Null);
            let tag = parts.pop().unwrap_or(Json::Null);
            let name = match parts.pop() {
                Some(Json::String(n)) => n,
                _ => return Err("stored property has no name".into()),
            };
            let text = || val.as_str().map(str::to_string).ok_or("not a string");
            let v = match tag.as_str() {
                Some("s") => Value::String(text()?),
                Some("i") => Value::Int32(
                    val.as_i64()
                        .and_then(|i| i32::try_from(i).ok())
                        .ok_or("bad int32")?,
                ),
                Some("l") => Value::Int64(text()?.parse().map_err(|_| "bad int64")?),
                Some("d") => {
                    Value::Double(f64::from_bits(text()?.parse().map_err(|_| "bad double")?))
                }
                Some("b") => Value::Bool(val.as_bool().ok_or("bad bool")?),
                Some("t") => Value::DateTime(text()?.parse().map_err(|_| "bad datetime")?),
                Some("g") => Value::Guid(uuid::Uuid::parse_str(&text()?).map_err(|_| "bad guid")?),
                Some("x") => Value::Binary(STANDARD.decode(text()?).map_err(|_| "bad binary")?),
                _ => return Err("unknown stored type".into()),
            };
            Ok((name, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotated_values_parse_to_their_types() {
        let body = br#"{"PartitionKey":"p","RowKey":"r","Timestamp":"ignored",
            "odata.etag":"x","Name":"n","Age":23,"Big":3000000000,"Ratio":0.5,
            "N@odata.type":"Edm.Int64","N":"255","D@odata.type":"Edm.DateTime","D":"2008-07-10T00:00:00.1234567Z",
            "G@odata.type":"Edm.Guid","G":"c9da6455-213d-42c9-9a79-3e9149a57833",
            "B@odata.type":"Edm.Binary","B":"AAEC","Inf@odata.type":"Edm.Double","Inf":"Infinity",
            "W@odata.type":"Edm.Double","W":2,"T":true,"Null":null}"#;
        let e = parse_entity(body).unwrap();
        assert_eq!(e.partition_key.as_deref(), Some("p"));
        assert_eq!(e.row_key.as_deref(), Some("r"));
        let get = |n: &str| e.props.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("Name"), Some(Value::String("n".into())));
        assert_eq!(get("Age"), Some(Value::Int32(23)));
        assert_eq!(get("Big"), Some(Value::Int64(3_000_000_000)));
        assert_eq!(get("Ratio"), Some(Value::Double(0.5)));
        assert_eq!(get("N"), Some(Value::Int64(255)));
        assert_eq!(get("W"), Some(Value::Double(2.0)));
        assert_eq!(get("Inf"), Some(Value::Double(f64::INFINITY)));
        assert_eq!(get("B"), Some(Value::Binary(vec![0, 1, 2])));
        assert_eq!(get("T"), Some(Value::Bool(true)));
        assert_eq!(get("Null"), None);
        assert_eq!(get("Timestamp"), None);
        let Some(Value::DateTime(t)) = get("D") else {
            panic!("D is a datetime")
        };
        assert_eq!(format_datetime(t), "2008-07-10T00:00:00.1234567Z");
    }

    #[test]
    fn bad_bodies_and_limits_get_azure_codes() {
        let code = |b: &str| parse_entity(b.as_bytes()).unwrap_err().code;
        assert_eq!(code("{"), "InvalidInput");
        assert_eq!(code("[1]"), "InvalidInput");
        assert_eq!(
            code(r#"{"N@odata.type":"Edm.Int64","N":"x"}"#),
            "InvalidInput"
        );
        assert_eq!(
            code(r#"{"N@odata.type":"Edm.Nope","N":"x"}"#),
            "InvalidInput"
        );
        assert_eq!(
            code(r#"{"N@odata.type":"Edm.Int32","N":3000000000}"#),
            "InvalidInput"
        );
        assert_eq!(code(r#"{"PartitionKey":5}"#), "InvalidInput");
        assert_eq!(code(r#"{"PartitionKey":"a/b"}"#), "OutOfRangeInput");
        assert_eq!(code(r#"{"1abc":1}"#), "PropertyNameInvalid");
        assert_eq!(code(r#"{"a-b":1}"#), "PropertyNameInvalid");
        let long_name = format!(r#"{{"{}":1}}"#, "a".repeat(256));
        assert_eq!(code(&long_name), "PropertyNameTooLong");
        let big = format!(r#"{{"S":"{}"}}"#, "x".repeat(32 * 1024 + 1));
        assert_eq!(code(&big), "PropertyValueTooLarge");
        let many: Vec<String> = (0..253).map(|i| format!(r#""P{i}":1"#)).collect();
        assert_eq!(
            code(&format!("{{{}}}", many.join(","))),
            "TooManyProperties"
        );
        let ok: Vec<String> = (0..252).map(|i| format!(r#""P{i}":1"#)).collect();
        assert!(parse_entity(format!("{{{}}}", ok.join(",")).as_bytes()).is_ok());
        let huge: Vec<String> = (0..20)
            .map(|i| format!(r#""P{i}":"{}""#, "x".repeat(30_000)))
            .collect();
        assert_eq!(code(&format!("{{{}}}", huge.join(","))), "EntityTooLarge");
    }

    #[test]
    fn datetimes_parse_and_format() {
        for (input, out) in [
            ("2008-07-10T00:00:00Z", "2008-07-10T00:00:00Z"),
            ("2008-07-10T00:00:00", "2008-07-10T00:00:00Z"),
            ("2008-07-10T01:02:03.5Z", "2008-07-10T01:02:03.5000000Z"),
            (
                "2024-02-29T23:59:59.9999999Z",
                "2024-02-29T23:59:59.9999999Z",
            ),
            ("1601-01-01T00:00:00Z", "1601-01-01T00:00:00Z"),
            (
                "9999-12-31T23:59:59.9999999Z",
                "9999-12-31T23:59:59.9999999Z",
            ),
        ] {
            let t = parse_datetime(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(format_datetime(t), out);
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "1600-12-31T23:59:59Z",
            "2008-07-10",
            "2008-07-10T25:00:00Z",
            "2008-07-10T00:00:00.12345678Z",
            "x",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(
            etag(parse_datetime("2026-11-24T22:15:02.1234567Z").unwrap()),
            "W/\"datetime'2026-11-24T22%3A15%3A02.1234567Z'\""
        );
        assert!(now_ticks() < now_ticks());
    }

    #[test]
    fn storage_form_round_trips_every_type() {
        let props = vec![
            ("s".to_string(), Value::String("x\"y".into())),
            ("i".into(), Value::Int32(-5)),
            ("l".into(), Value::Int64(i64::MIN)),
            ("d".into(), Value::Double(f64::NAN)),
            ("d2".into(), Value::Double(-0.1)),
            ("b".into(), Value::Bool(false)),
            ("t".into(), Value::DateTime(MIN_TICKS)),
            ("g".into(), Value::Guid(uuid::Uuid::nil())),
            ("x".into(), Value::Binary(vec![255, 0])),
        ];
        let back = decode_props(&encode_props(&props)).unwrap();
        assert_eq!(back.len(), props.len());
        for ((n1, v1), (n2, v2)) in props.iter().zip(&back) {
            assert_eq!(n1, n2);
            match (v1, v2) {
                (Value::Double(a), Value::Double(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                _ => assert_eq!(v1, v2),
            }
        }
    }

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
