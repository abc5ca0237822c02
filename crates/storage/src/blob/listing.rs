//! List Blobs: prefix, delimiter (BlobPrefix), marker / NextMarker,
//! maxresults, include=metadata.

use bytes::Bytes;
use hyper::Response;

use super::body::{self, Body};
use super::containers::{include, max_results, push_metadata, push_tag};
use super::{Ctx, blocking, hv};
use crate::api_error::ApiError;
use crate::store::{BlobProps, ListEntry};
use crate::timefmt::rfc1123;
use crate::xml::escape;

fn push_blob(s: &mut String, b: &BlobProps, snapshot: Option<&str>, with_meta: bool) {
    s.push_str("<Blob>");
    push_tag(s, "Name", &b.name);
    if let Some(snap) = snapshot {
        push_tag(s, "Snapshot", snap);
    }
    s.push_str("<Properties>");
    push_tag(s, "Creation-Time", &rfc1123(b.created_ms));
    push_tag(s, "Last-Modified", &rfc1123(b.last_modified_ms));
    push_tag(s, "Etag", &b.etag);
    push_tag(s, "Content-Length", &b.size.to_string());
    let c = &b.content;
    push_tag(
        s,
        "Content-Type",
        c.content_type
            .as_deref()
            .unwrap_or("application/octet-stream"),
    );
    for (tag, v) in [
        ("Content-Encoding", &c.content_encoding),
        ("Content-Language", &c.content_language),
        ("Content-MD5", &c.content_md5),
        ("Cache-Control", &c.cache_control),
        ("Content-Disposition", &c.content_disposition),
    ] {
        push_tag(s, tag, v.as_deref().unwrap_or(""));
    }
    push_tag(s, "BlobType", &b.blob_type);
    s.push_str(
        "<AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred>\
         <ServerEncrypted>true</ServerEncrypted>",
    );
    s.push_str(&super::headers::lease_xml(b.lease.as_ref()));
    s.push_str("</Properties>");
    if with_meta {
        push_metadata(s, &b.metadata);
    }
    s.push_str("</Blob>");
}

pub async fn list_blobs(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let prefix = ctx.query.get("prefix").unwrap_or("").to_string();
    let marker = ctx.query.get("marker").unwrap_or("").to_string();
    let delimiter = ctx
        .query
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let max = max_results(ctx)?;
    let with_meta = include(ctx, "metadata");
    let with_snapshots = include(ctx, "snapshots");
    let (state, account, container) = (
        ctx.state.clone(),
        ctx.account().to_string(),
        ctx.container().to_string(),
    );
    let (p2, m2, d2) = (prefix.clone(), marker.clone(), delimiter.clone());
    let page = blocking(move || {
        state
            .store
            .list_blobs(&account, &container, &p2, d2.as_deref(), &m2, max)
    })
    .await?;
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"{}/\" ContainerName=\"{}\">",
        escape(&ctx.endpoint),
        escape(ctx.container())
    );
    push_tag(&mut s, "Prefix", &prefix);
    push_tag(&mut s, "Marker", &marker);
    if ctx.query.get("maxresults").is_some() {
        push_tag(&mut s, "MaxResults", &max.to_string());
    }
    if let Some(d) = &delimiter {
        push_tag(&mut s, "Delimiter", d);
    }
    s.push_str("<Blobs>");
    for e in &page.entries {
        match e {
            ListEntry::Blob(b) => {
                if with_snapshots {
                    let (state, account, container, name) = (
                        ctx.state.clone(),
                        ctx.account().to_string(),
                        ctx.container().to_string(),
                        b.name.clone(),
                    );
                    let snaps =
                        blocking(move || state.store.list_snapshots(&account, &container, &name))
                            .await?;
                    for (snap, props) in &snaps {
                        push_blob(&mut s, props, Some(snap), with_meta);
                    }
                }
                push_blob(&mut s, b, None, with_meta)
            }
            ListEntry::Prefix(p) => {
                s.push_str("<BlobPrefix>");
                push_tag(&mut s, "Name", p);
                s.push_str("</BlobPrefix>");
            }
        }
    }
    s.push_str("</Blobs>");
    push_tag(
        &mut s,
        "NextMarker",
        page.next_marker.as_deref().unwrap_or(""),
    );
    s.push_str("</EnumerationResults>");
    let mut r = Response::new(body::full(Bytes::from(s)));
    r.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hv("application/xml"));
    Ok(r)
}
