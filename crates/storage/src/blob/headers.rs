//! Request headers into stored properties, stored properties into
//! response headers.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use super::hv;
use crate::api_error::ApiError;
use crate::store::{BlobProps, ContentHeaders};
use crate::timefmt::rfc1123;

/// `x-ms-meta-*` headers as (name, value) pairs, names validated and in
/// the case they were sent with (see [`crate::meta_case`]). Names are
/// case-insensitive, so two headers naming one entry (`x-ms-meta-a` and
/// `x-ms-meta-A`) are 400 `InvalidMetadata`, as Azure refuses them.
pub fn metadata(headers: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let sent = crate::meta_case::sent_names(headers);
    let mut out: Vec<(String, String)> = Vec::new();
    for name in headers.keys() {
        if let Some(key) = name.as_str().strip_prefix("x-ms-meta-") {
            let mut values = headers.get_all(name).iter();
            let value = values.next().map(|v| String::from_utf8_lossy(v.as_bytes()));
            if values.next().is_some() {
                return Err(ApiError::new(
                    hyper::StatusCode::BAD_REQUEST,
                    "InvalidMetadata",
                    format!(
                        "The metadata specified is invalid: the name {key} is given more than once."
                    ),
                ));
            }
            out.push((
                crate::meta_case::as_sent(key, &sent),
                value.unwrap_or_default().trim().to_string(),
            ));
        }
    }
    crate::names::check_metadata(&out)?;
    Ok(out)
}

/// `x-ms-meta-*` response headers; names with capitals are listed in the
/// [`crate::meta_case::MARKER`] header so the connection writes them in
/// their stored case.
pub fn put_metadata(h: &mut HeaderMap, metadata: &[(String, String)]) {
    for (k, v) in metadata {
        if let Ok(name) = HeaderName::from_bytes(format!("x-ms-meta-{k}").as_bytes()) {
            h.insert(name, hv(v));
        }
    }
    if let Some(names) = crate::meta_case::response_marker(metadata.iter().map(|(k, _)| k.as_str()))
    {
        h.insert(crate::meta_case::MARKER, hv(&names));
    }
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// Content headers for Put Blob: `x-ms-blob-content-*` win over the
/// request's own `Content-*`.
pub fn content_for_put(headers: &HeaderMap) -> ContentHeaders {
    let pick = |blob: &str, plain: &str| text(headers, blob).or_else(|| text(headers, plain));
    ContentHeaders {
        content_type: pick("x-ms-blob-content-type", "content-type"),
        content_encoding: pick("x-ms-blob-content-encoding", "content-encoding"),
        content_language: pick("x-ms-blob-content-language", "content-language"),
        content_md5: text(headers, "x-ms-blob-content-md5"),
        cache_control: pick("x-ms-blob-cache-control", "cache-control"),
        content_disposition: text(headers, "x-ms-blob-content-disposition"),
    }
}

/// Content headers from `x-ms-blob-*` only (Put Block List, Set Blob
/// Properties: a header left out clears the property).
pub fn content_from_blob_headers(headers: &HeaderMap) -> ContentHeaders {
    ContentHeaders {
        content_type: text(headers, "x-ms-blob-content-type"),
        content_encoding: text(headers, "x-ms-blob-content-encoding"),
        content_language: text(headers, "x-ms-blob-content-language"),
        content_md5: text(headers, "x-ms-blob-content-md5"),
        cache_control: text(headers, "x-ms-blob-cache-control"),
        content_disposition: text(headers, "x-ms-blob-content-disposition"),
    }
}

pub fn put_etag(h: &mut HeaderMap, etag: &str, last_modified_ms: i64) {
    h.insert(hyper::header::ETAG, hv(etag));
    h.insert(hyper::header::LAST_MODIFIED, hv(&rfc1123(last_modified_ms)));
}

/// The headers Get Blob and Get Blob Properties return.
pub fn put_blob_properties(h: &mut HeaderMap, p: &BlobProps) {
    put_etag(h, &p.etag, p.last_modified_ms);
    let c = &p.content;
    h.insert(
        hyper::header::CONTENT_TYPE,
        hv(c.content_type
            .as_deref()
            .unwrap_or("application/octet-stream")),
    );
    for (name, v) in [
        ("content-encoding", &c.content_encoding),
        ("content-language", &c.content_language),
        ("cache-control", &c.cache_control),
        ("content-disposition", &c.content_disposition),
    ] {
        if let Some(v) = v {
            h.insert(HeaderName::from_static(name), hv(v));
        }
    }
    h.insert("x-ms-blob-type", hv(&p.blob_type));
    h.insert("x-ms-creation-time", hv(&rfc1123(p.created_ms)));
    put_lease(h, p.lease.as_ref());
    h.insert("x-ms-server-encrypted", HeaderValue::from_static("true"));
    h.insert("accept-ranges", HeaderValue::from_static("bytes"));
    put_metadata(h, &p.metadata);
}

/// `x-ms-lease-state`, `x-ms-lease-status` and (for a held lease)
/// `x-ms-lease-duration`.
pub fn put_lease(h: &mut HeaderMap, lease: Option<&crate::lease::Lease>) {
    let now = crate::timefmt::now_millis();
    let st = crate::lease::state(lease, now);
    h.insert("x-ms-lease-state", HeaderValue::from_static(st.as_str()));
    h.insert("x-ms-lease-status", HeaderValue::from_static(st.status()));
    if let Some(d) = crate::lease::duration_header(lease, now) {
        h.insert("x-ms-lease-duration", HeaderValue::from_static(d));
    }
}

/// Lease elements of a listing's `<Properties>`.
pub fn lease_xml(lease: Option<&crate::lease::Lease>) -> String {
    let now = crate::timefmt::now_millis();
    let st = crate::lease::state(lease, now);
    let mut s = format!(
        "<LeaseStatus>{}</LeaseStatus><LeaseState>{}</LeaseState>",
        st.status(),
        st.as_str()
    );
    if let Some(d) = crate::lease::duration_header(lease, now) {
        s.push_str(&format!("<LeaseDuration>{d}</LeaseDuration>"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_once_each() {
        let mut h = HeaderMap::new();
        h.append("x-ms-meta-owner", HeaderValue::from_static(" me "));
        h.append("x-ms-meta-a_1", HeaderValue::from_static("x,y"));
        h.append("content-type", HeaderValue::from_static("text/plain"));
        assert_eq!(
            metadata(&h).unwrap(),
            vec![
                ("owner".to_string(), "me".to_string()),
                ("a_1".to_string(), "x,y".to_string())
            ]
        );
        // `x-ms-meta-Owner` and `x-ms-meta-owner` arrive as one name twice
        h.append("x-ms-meta-owner", HeaderValue::from_static("you"));
        assert_eq!(metadata(&h).unwrap_err().code, "InvalidMetadata");
    }

    #[test]
    fn metadata_names_keep_the_case_sent() {
        let mut h = HeaderMap::new();
        h.append("x-ms-meta-owner", HeaderValue::from_static("x"));
        h.append("x-ms-meta-camelcase", HeaderValue::from_static("y"));
        h.append("x-ms-meta-plain", HeaderValue::from_static("z"));
        h.append(
            crate::meta_case::MARKER,
            HeaderValue::from_static("Owner,camelCase"),
        );
        let m = metadata(&h).unwrap();
        let names: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["Owner", "camelCase", "plain"]);
        let mut out = HeaderMap::new();
        put_metadata(&mut out, &m);
        assert_eq!(out["x-ms-meta-owner"], "x");
        assert_eq!(out[crate::meta_case::MARKER], "Owner,camelCase");
    }
}
