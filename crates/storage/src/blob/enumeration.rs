//! The envelope and paging every List operation shares (List Containers,
//! List Blobs, List Queues): `prefix` / `marker` / `maxresults` /
//! `include` query parameters, the `<EnumerationResults>` header and its
//! `<NextMarker>` trailer.

use bytes::Bytes;
use hyper::Response;

use super::body::{self, Body};
use super::{Ctx, blocking, hv};
use crate::api_error::ApiError;
use crate::store::Store;
use crate::xml::escape;

/// `maxresults`: 1 to 5000, default 5000.
pub fn max_results(ctx: &Ctx) -> Result<usize, ApiError> {
    match ctx.query.get("maxresults") {
        None => Ok(5000),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(5000)),
            _ => Err(ApiError::out_of_range_input("maxresults")),
        },
    }
}

/// Refuses an `include` list naming anything but `known` with 400
/// `InvalidQueryParameterValue`, as Azure does. An empty list (the SDKs
/// send `include=`) names nothing. Values this service accepts but has
/// nothing for, such as `tags`, are in `known`.
pub fn check_include(ctx: &Ctx, known: &[&str]) -> Result<(), ApiError> {
    match ctx.query.get("include") {
        Some(v)
            if !v
                .split(',')
                .map(str::trim)
                .all(|p| p.is_empty() || known.iter().any(|k| p.eq_ignore_ascii_case(k))) =>
        {
            Err(ApiError::invalid_query("include"))
        }
        _ => Ok(()),
    }
}

/// The `include` values List Blobs takes.
pub const LIST_BLOBS_INCLUDE: &[&str] = &[
    "snapshots",
    "metadata",
    "uncommittedblobs",
    "copy",
    "deleted",
    "tags",
    "versions",
    "deletedwithversions",
    "immutabilitypolicy",
    "legalhold",
    "permissions",
];
/// The `include` values List Containers takes.
pub const LIST_CONTAINERS_INCLUDE: &[&str] = &["metadata", "deleted", "system"];

/// Whether `include` names `what` (case-insensitively).
pub fn include(ctx: &Ctx, what: &str) -> bool {
    ctx.query
        .get("include")
        .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(what)))
}

pub fn push_tag(s: &mut String, tag: &str, value: &str) {
    s.push('<');
    s.push_str(tag);
    s.push('>');
    s.push_str(&escape(value));
    s.push_str("</");
    s.push_str(tag);
    s.push('>');
}

pub fn push_metadata(s: &mut String, metadata: &[(String, String)]) {
    s.push_str("<Metadata>");
    for (k, v) in metadata {
        push_tag(s, k, v);
    }
    s.push_str("</Metadata>");
}

/// One List request's paging parameters.
#[derive(Debug, Clone)]
pub struct Paging {
    pub prefix: String,
    pub marker: String,
    /// `maxresults`, clamped, 5000 when absent.
    pub max: usize,
    /// Whether the request named `maxresults` (then the listing echoes it).
    explicit_max: bool,
}

impl Paging {
    pub fn parse(ctx: &Ctx) -> Result<Self, ApiError> {
        Ok(Paging {
            prefix: ctx.query.get("prefix").unwrap_or("").to_string(),
            marker: ctx.query.get("marker").unwrap_or("").to_string(),
            max: max_results(ctx)?,
            explicit_max: ctx.query.get("maxresults").is_some(),
        })
    }

    /// Runs the store's page query off the async threads for the request's
    /// account.
    pub async fn fetch<T: Send + 'static>(
        &self,
        ctx: &Ctx,
        query: impl FnOnce(&Store, &str, &Paging) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (state, account, paging) = (ctx.state.clone(), ctx.account().to_string(), self.clone());
        blocking(move || query(&state.store, &account, &paging)).await
    }

    /// The XML declaration, `<EnumerationResults ServiceEndpoint=".." ..>`
    /// with `attrs` appended, then `Prefix`, `Marker` and (when asked for)
    /// `MaxResults`.
    pub fn open(&self, ctx: &Ctx, attrs: &[(&str, &str)]) -> String {
        let mut s = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"{}/\"",
            escape(&ctx.endpoint)
        );
        for (name, value) in attrs {
            s.push_str(&format!(" {name}=\"{}\"", escape(value)));
        }
        s.push('>');
        push_tag(&mut s, "Prefix", &self.prefix);
        push_tag(&mut s, "Marker", &self.marker);
        if self.explicit_max {
            push_tag(&mut s, "MaxResults", &self.max.to_string());
        }
        s
    }
}

/// Ends a listing with `NextMarker` (empty on the last page) and answers it
/// as `application/xml`.
pub fn close(mut s: String, next_marker: Option<&str>) -> Response<Body> {
    push_tag(&mut s, "NextMarker", next_marker.unwrap_or(""));
    s.push_str("</EnumerationResults>");
    let mut r = Response::new(body::full(Bytes::from(s)));
    r.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hv("application/xml"));
    r
}
