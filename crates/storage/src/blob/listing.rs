//! List Blobs: prefix, delimiter (BlobPrefix), marker / NextMarker,
//! maxresults, include=metadata.

use hyper::Response;

use super::body::Body;
use super::enumeration::{
    LIST_BLOBS_INCLUDE, Paging, check_include, close, include, push_metadata, push_tag,
};
use super::{Ctx, blocking};
use crate::api_error::ApiError;
use crate::store::{BlobProps, ListEntry};
use crate::timefmt::rfc1123;

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
    let paging = Paging::parse(ctx)?;
    check_include(ctx, LIST_BLOBS_INCLUDE)?;
    let delimiter = ctx
        .query
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let with_meta = include(ctx, "metadata");
    let with_snapshots = include(ctx, "snapshots");
    let (container, d2) = (ctx.container().to_string(), delimiter.clone());
    let page = paging
        .fetch(ctx, move |store, account, p| {
            store.list_blobs(
                account,
                &container,
                &p.prefix,
                d2.as_deref(),
                &p.marker,
                p.max,
            )
        })
        .await?;
    let mut s = paging.open(ctx, &[("ContainerName", ctx.container())]);
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
    Ok(close(s, page.next_marker.as_deref()))
}
