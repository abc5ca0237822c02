//! Entity group transactions (`POST /<account>/$batch`): a
//! `multipart/mixed` body holding one changeset of at most 100 insert,
//! update, merge, upsert and delete operations on one table and one
//! partition. They are applied in one database transaction; if one fails,
//! none is kept and the response names the failing operation's index
//! (`"2:The specified entity already exists."`), as Azure does.
//!
//! [`parse`] and [`Response::render`] are pure; [`serve`] runs a batch.

use bytes::Bytes;
use hyper::StatusCode;
use hyper::body::Incoming;
use serde_json::Value as Json;

use super::edm::{self, invalid_input};
use super::entities::{Target, if_match, insert_write, location, update_need, update_write};
use super::format::{self, Format};
use super::keys::{Resource, parse_resource};
use super::{TableCtx, error_json};
use crate::api_error::ApiError;
use crate::blob::body::{self, Body};
use crate::blob::hv;
use crate::store::EntityWrite;

/// Most operations in one changeset.
pub const MAX_OPERATIONS: usize = 100;
/// Largest batch body (Azure allows 4 MiB).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// One operation of a changeset as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRequest {
    pub method: String,
    pub url: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SubRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn malformed(what: &str) -> ApiError {
    invalid_input(&format!(
        "One of the request inputs is not valid: the batch body is malformed ({what})."
    ))
}

/// The `boundary` parameter of a multipart content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let kind = parts.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The parts between `--boundary` lines, up to `--boundary--`.
fn split_parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, ApiError> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut pos = find(body, d, 0).ok_or_else(|| malformed("no boundary"))?;
    let mut parts = Vec::new();
    loop {
        let after = pos + d.len();
        if body[after..].starts_with(b"--") {
            return Ok(parts);
        }
        let next = find(body, d, after).ok_or_else(|| malformed("no closing boundary"))?;
        let mut part = &body[after..next];
        part = part
            .strip_prefix(b"\r\n")
            .or_else(|| part.strip_prefix(b"\n"))
            .unwrap_or(part);
        part = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part);
        parts.push(part);
        pos = next;
    }
}

/// Splits headers from the body at the first empty line.
fn split_head(part: &[u8]) -> (&[u8], &[u8]) {
    let crlf = find(part, b"\r\n\r\n", 0).map(|i| (i, 4));
    let lf = find(part, b"\n\n", 0).map(|i| (i, 2));
    let cut = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match cut {
        Some((i, n)) => (&part[..i], &part[i + n..]),
        None => (part, &[]),
    }
}

fn header_lines(head: &[u8]) -> Result<Vec<String>, ApiError> {
    let text = std::str::from_utf8(head).map_err(|_| malformed("headers are not UTF-8"))?;
    Ok(text
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

fn parse_headers(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// Parses a `$batch` body into the changeset's operations.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<SubRequest>, ApiError> {
    let outer = boundary(content_type).ok_or_else(|| malformed("no multipart boundary"))?;
    let mut ops = Vec::new();
    for part in split_parts(body, &outer)? {
        let (head, inner) = split_head(part);
        let mime = parse_headers(&header_lines(head)?);
        let ct = mime
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let cs = boundary(ct).ok_or_else(|| malformed("a part is not a changeset"))?;
        for op in split_parts(inner, &cs)? {
            ops.push(parse_operation(op)?);
            if ops.len() > MAX_OPERATIONS {
                return Err(too_many());
            }
        }
    }
    if ops.is_empty() {
        return Err(malformed("no operations"));
    }
    Ok(ops)
}

fn too_many() -> ApiError {
    invalid_input("The batch request operation exceeds the maximum 100 changes per change set.")
}

fn parse_operation(part: &[u8]) -> Result<SubRequest, ApiError> {
    let (_mime, http) = split_head(part);
    let (head, body) = split_head(http);
    let lines = header_lines(head)?;
    let request_line = lines.first().ok_or_else(|| malformed("no request line"))?;
    let mut it = request_line.split_whitespace();
    let (Some(method), Some(url)) = (it.next(), it.next()) else {
        return Err(malformed("bad request line"));
    };
    Ok(SubRequest {
        method: method.to_string(),
        url: url.to_string(),
        headers: parse_headers(&lines[1..]),
        body: body.to_vec(),
    })
}

/// The path of an absolute or relative URL, without its query.
fn url_path(url: &str) -> &str {
    let no_scheme = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => url,
    };
    no_scheme.split('?').next().unwrap_or(no_scheme)
}

/// One operation's outcome in the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// The whole batch response body.
pub struct Response {
    pub id: String,
    pub parts: Vec<PartResponse>,
}

impl Response {
    pub fn content_type(&self) -> String {
        format!("multipart/mixed; boundary=batchresponse_{}", self.id)
    }

    pub fn render(&self) -> String {
        let id = &self.id;
        let mut s = format!(
            "--batchresponse_{id}\r\nContent-Type: multipart/mixed; boundary=changesetresponse_{id}\r\n\r\n"
        );
        for p in &self.parts {
            s.push_str(&format!(
                "--changesetresponse_{id}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 {} {}\r\n",
                p.status.as_u16(),
                p.status.canonical_reason().unwrap_or("")
            ));
            s.push_str("X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\nDataServiceVersion: 3.0;\r\n");
            for (k, v) in &p.headers {
                s.push_str(&format!("{k}: {v}\r\n"));
            }
            s.push_str("\r\n");
            if let Some(b) = &p.body {
                s.push_str(b);
                s.push_str("\r\n");
            }
        }
        s.push_str(&format!(
            "--changesetresponse_{id}--\r\n--batchresponse_{id}--\r\n"
        ));
        s
    }
}

fn failed(index: usize, e: &ApiError, request_id: &str) -> PartResponse {
    PartResponse {
        status: e.status,
        headers: vec![
            (
                "Content-Type".into(),
                Format::Minimal.content_type().to_string(),
            ),
            ("x-ms-error-code".into(), e.code.to_string()),
        ],
        body: Some(error_json(e, request_id, &format!("{index}:"))),
    }
}

/// A planned operation: the write and how to answer it.
struct Planned {
    write: EntityWrite,
    content_id: Option<String>,
    no_content: bool,
    format: Format,
}

fn plan(ctx: &TableCtx, op: &SubRequest) -> Result<(String, Planned), ApiError> {
    let path = url_path(&op.url);
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| malformed("an operation URL is not UTF-8"))?;
    let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (account, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    if account != ctx.account {
        return Err(invalid_input(
            "One of the request inputs is not valid: an operation addresses another account.",
        ));
    }
    let resource =
        parse_resource(rest).map_err(|_| malformed("an operation URL names no entity"))?;
    let method = match op.header("x-http-method") {
        Some(m) if op.method.eq_ignore_ascii_case("POST") => m.to_ascii_uppercase(),
        _ => op.method.to_ascii_uppercase(),
    };
    let cond = if_match(op.header("if-match"));
    let (table, write) = match (method.as_str(), resource) {
        ("POST", Resource::Entities(table)) => (table, insert_write(&op.body)?),
        (
            m @ ("PUT" | "MERGE" | "PATCH" | "DELETE"),
            Resource::Entity {
                table,
                partition_key,
                row_key,
            },
        ) => {
            let target = Target {
                table,
                partition_key,
                row_key,
            };
            let write = if m == "DELETE" {
                EntityWrite::Delete {
                    partition_key: target.partition_key.clone(),
                    row_key: target.row_key.clone(),
                    if_match: cond.ok_or_else(|| ApiError::missing_header("If-Match"))?,
                }
            } else {
                update_write(&target, m != "PUT", cond, &op.body)?
            };
            (target.table, write)
        }
        _ => {
            return Err(invalid_input(
                "One of the request inputs is not valid: a batch may only insert, update, merge or delete entities.",
            ));
        }
    };
    crate::names::check_table(&table)?;
    let need = update_need(&write);
    let (pk, rk) = write.keys();
    ctx.allow(need, Some(&table), Some((pk, rk)))?;
    let prefer = op.header("prefer").unwrap_or("").to_ascii_lowercase();
    Ok((
        table,
        Planned {
            write,
            content_id: op.header("content-id").map(str::to_string),
            no_content: prefer.contains("return-no-content"),
            format: Format::parse(None, op.header("accept")),
        },
    ))
}

fn different_partitions() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "CommandsInBatchActOnDifferentPartitions",
        "All commands in a batch must operate on same entity group.",
    )
}

fn duplicate_row() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidDuplicateRow",
        "The batch request contains multiple changes with same row key. An entity can appear only once in a batch request.",
    )
}

/// Runs a `$batch` request.
pub(super) async fn serve(
    ctx: &TableCtx,
    incoming: &mut Option<Incoming>,
) -> Result<hyper::Response<Body>, ApiError> {
    let content_type = ctx.header("content-type").unwrap_or("").to_string();
    let raw = body::read_small(body::take(incoming)?, MAX_BODY).await?;
    let request_id = crate::ids::unique().to_string();
    let id = uuid::Uuid::new_v4().to_string();
    let ops = match parse(&content_type, &raw) {
        Ok(ops) => ops,
        Err(e) if e.code == "InvalidInput" && e.message.contains("maximum 100") => {
            return Ok(reply(Response {
                id,
                parts: vec![failed(MAX_OPERATIONS, &e, &request_id)],
            }));
        }
        Err(e) => return Err(e),
    };
    let mut table: Option<String> = None;
    let mut planned = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let step = plan(ctx, op).and_then(|(t, p)| {
            match &table {
                None => table = Some(t),
                Some(first) if !first.eq_ignore_ascii_case(&t) => {
                    return Err(invalid_input(
                        "One of the request inputs is not valid: all operations of a batch must address the same table.",
                    ));
                }
                Some(_) => {}
            }
            let (pk, rk) = p.write.keys();
            if let Some(first) = planned.first() {
                let first: &Planned = first;
                if first.write.keys().0 != pk {
                    return Err(different_partitions());
                }
            }
            if planned.iter().any(|q: &Planned| q.write.keys().1 == rk) {
                return Err(duplicate_row());
            }
            Ok(p)
        });
        match step {
            Ok(p) => planned.push(p),
            Err(e) => {
                return Ok(reply(Response {
                    id,
                    parts: vec![failed(i, &e, &request_id)],
                }));
            }
        }
    }
    let table = table.unwrap_or_default();
    let writes: Vec<EntityWrite> = planned.iter().map(|p| p.write.clone()).collect();
    let (commit, failed_at) = ctx
        .state
        .store
        .write_batch_async(&ctx.account, &table, writes);
    let result = commit
        .await
        .map_err(|e| (failed_at.load(std::sync::atomic::Ordering::Relaxed), e));
    let parts = match result {
        Err((i, e)) => vec![failed(i, &e, &request_id)],
        Ok(stored) => planned
            .iter()
            .zip(stored)
            .map(|(p, e)| answer(ctx, &table, p, e.as_ref()))
            .collect(),
    };
    Ok(reply(Response { id, parts }))
}

fn answer(ctx: &TableCtx, table: &str, p: &Planned, stored: Option<&edm::Entity>) -> PartResponse {
    let mut headers = Vec::new();
    if let Some(c) = &p.content_id {
        headers.push(("Content-ID".to_string(), c.clone()));
    }
    let Some(e) = stored else {
        return PartResponse {
            status: StatusCode::NO_CONTENT,
            headers,
            body: None,
        };
    };
    headers.push(("ETag".into(), e.etag()));
    let is_insert = matches!(p.write, EntityWrite::Insert { .. });
    if is_insert && !p.no_content {
        headers.push(("Content-Type".into(), p.format.content_type().to_string()));
        headers.push(("Preference-Applied".into(), "return-content".into()));
        let body = Json::Object(format::entity_json(
            e,
            p.format,
            &location(ctx, table),
            None,
            true,
        ))
        .to_string();
        return PartResponse {
            status: StatusCode::CREATED,
            headers,
            body: Some(body),
        };
    }
    if is_insert {
        headers.push(("Preference-Applied".into(), "return-no-content".into()));
    }
    PartResponse {
        status: StatusCode::NO_CONTENT,
        headers,
        body: None,
    }
}

fn reply(r: Response) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(body::full(Bytes::from(r.render())));
    *resp.status_mut() = StatusCode::ACCEPTED;
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hv(&r.content_type()));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "--batch_1\r\nContent-Type: multipart/mixed; boundary=changeset_2\r\n\r\n\
--changeset_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
POST http://127.0.0.1:10002/devstoreaccount1/orders HTTP/1.1\r\nContent-Type: application/json\r\nPrefer: return-no-content\r\nContent-ID: 1\r\n\r\n\
{\"PartitionKey\":\"p\",\"RowKey\":\"1\"}\r\n\
--changeset_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
DELETE http://127.0.0.1:10002/devstoreaccount1/orders(PartitionKey='p',RowKey='2')?sv=x HTTP/1.1\r\nIf-Match: *\r\n\r\n\r\n\
--changeset_2--\r\n--batch_1--\r\n";

    #[test]
    fn a_changeset_parses_into_operations() {
        let ops = parse("multipart/mixed; boundary=batch_1", BODY.as_bytes()).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].method, "POST");
        assert_eq!(ops[0].header("prefer"), Some("return-no-content"));
        assert_eq!(ops[0].body, br#"{"PartitionKey":"p","RowKey":"1"}"#);
        assert_eq!(ops[1].method, "DELETE");
        assert_eq!(
            url_path(&ops[1].url),
            "/devstoreaccount1/orders(PartitionKey='p',RowKey='2')"
        );
        assert_eq!(ops[1].header("if-match"), Some("*"));
        assert!(ops[1].body.is_empty());
    }

    #[test]
    fn malformed_batches_are_invalid_input() {
        for (ct, body) in [
            ("application/json", BODY),
            ("multipart/mixed; boundary=other", BODY),
            (
                "multipart/mixed; boundary=batch_1",
                "--batch_1\r\n\r\nno changeset\r\n--batch_1--",
            ),
            (
                "multipart/mixed; boundary=batch_1",
                "--batch_1\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n--cs--\r\n--batch_1--",
            ),
            (
                "multipart/mixed; boundary=batch_1",
                "--batch_1\r\nunterminated",
            ),
        ] {
            assert_eq!(
                parse(ct, body.as_bytes()).unwrap_err().code,
                "InvalidInput",
                "{body}"
            );
        }
        let one = "--cs\r\nContent-Type: application/http\r\n\r\nDELETE http://h/a/t(PartitionKey='p',RowKey='r') HTTP/1.1\r\nIf-Match: *\r\n\r\n\r\n";
        let body = format!(
            "--b\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n{}--cs--\r\n--b--\r\n",
            one.repeat(101)
        );
        let e = parse("multipart/mixed; boundary=b", body.as_bytes()).unwrap_err();
        assert!(e.message.contains("maximum 100"), "{}", e.message);
    }

    #[test]
    fn responses_render_as_nested_multipart() {
        let r = Response {
            id: "x".into(),
            parts: vec![PartResponse {
                status: StatusCode::NO_CONTENT,
                headers: vec![("ETag".into(), "W/\"e\"".into())],
                body: None,
            }],
        };
        let s = r.render();
        assert!(s.starts_with("--batchresponse_x\r\nContent-Type: multipart/mixed; boundary=changesetresponse_x\r\n\r\n--changesetresponse_x\r\n"));
        assert!(s.contains("HTTP/1.1 204 No Content\r\n"));
        assert!(s.contains("ETag: W/\"e\"\r\n"));
        assert!(s.ends_with("--changesetresponse_x--\r\n--batchresponse_x--\r\n"));
    }
}
