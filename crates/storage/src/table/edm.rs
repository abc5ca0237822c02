//! Entity data model: typed property values (the `Edm.*` types), the JSON
//! entity bodies clients send (with `@odata.type` annotations), the
//! compact form entities are stored in, and Azure's entity limits.
//! Responses are written by [`super::format`]; times by [`super::datetime`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::StatusCode;
use serde_json::{Map, Value as Json};

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
        super::datetime::etag(self.timestamp)
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
    parse_entity_object(&parse_object(body)?)
}

/// A request body that must be one JSON object whose property names are
/// unique (OData refuses a repeated name with 400 `InvalidInput`, where a
/// plain JSON parser would keep the last value).
pub fn parse_object(body: &[u8]) -> Result<Map<String, Json>, ApiError> {
    match serde_json::from_slice::<UniqueObject>(body) {
        Ok(UniqueObject(map)) => Ok(map),
        Err(e) if e.is_data() => Err(invalid_input(&format!(
            "The request body must be a JSON object with unique property names: {e}. An error occurred while processing this request."
        ))),
        Err(e) => Err(invalid_input(&format!(
            "The request body is not valid JSON: {e}. An error occurred while processing this request."
        ))),
    }
}

/// A top-level JSON object read with a duplicate-name check.
struct UniqueObject(Map<String, Json>);

impl<'de> serde::Deserialize<'de> for UniqueObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    if map.contains_key(&name) {
                        return Err(serde::de::Error::custom(format_args!(
                            "property {name} appears twice"
                        )));
                    }
                    let value: Json = access.next_value()?;
                    map.insert(name, value);
                }
                Ok(UniqueObject(map))
            }
        }
        d.deserialize_map(Visit)
    }
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
            super::datetime::parse_datetime(s)
                .ok_or_else(|| bad_value(name, "is not a valid Edm.DateTime"))?,
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
    check_entity_limits(e.partition_key.as_deref(), e.row_key.as_deref(), &e.props)
}

/// Azure's limits on a whole entity: at most 252 properties besides the
/// three system ones, and at most 1 MiB as Azure counts it. Checked on
/// the body a client sent and again on the result of a merge, which can
/// grow an entity past either limit.
pub fn check_entity_limits(
    partition_key: Option<&str>,
    row_key: Option<&str>,
    props: &[(String, Value)],
) -> Result<(), ApiError> {
    if props.len() + 3 > MAX_PROPERTIES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "TooManyProperties",
            "The entity contains more properties than allowed. Each entity can include up to 252 properties to store data. Each entity also has 3 system properties.",
        ));
    }
    let keys = 4 + 2 * partition_key.map_or(0, utf16_len) + 2 * row_key.map_or(0, utf16_len);
    let size = keys
        + props
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::datetime::format_datetime;

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
        assert_eq!(code(r#"{"A":1,"B":2,"A":3}"#), "InvalidInput");
        assert_eq!(code(r#"{"RowKey":"a","RowKey":"b"}"#), "InvalidInput");
        assert_eq!(code("{} x"), "InvalidInput");
        assert!(parse_entity(br#"{"A":{"A":1,"A":2}}"#).is_err());
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
}
