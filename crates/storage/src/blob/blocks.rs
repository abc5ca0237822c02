//! Block blob staging: Put Block, Put Block List, Get Block List.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::enumeration::push_tag;
use super::headers::{content_from_blob_headers, metadata, put_etag};
use super::{Ctx, blocking, hv};
use crate::api_error::ApiError;
use crate::conditions::Conditions;
use crate::store::{BlockInfo, NewBlob};
use crate::xml::parse_block_list;

/// Largest block (Azure's limit for version 2019-12-12+).
pub const MAX_BLOCK: u64 = 4000 * 1024 * 1024;

/// A block id: base64 of at most 64 bytes.
pub fn check_block_id(id: &str) -> Result<(), ApiError> {
    match STANDARD.decode(id) {
        Ok(raw) if !raw.is_empty() && raw.len() <= 64 => Ok(()),
        _ => Err(ApiError::invalid_query("blockid")),
    }
}

pub async fn put_block(
    ctx: &Ctx,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let id = ctx
        .query
        .get("blockid")
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "MissingRequiredQueryParameter",
                "A query parameter that's mandatory for this request is not specified: blockid.",
            )
        })?
        .to_string();
    check_block_id(&id)?;
    ctx.require_content_length()?;
    {
        let lease_id = ctx.header("x-ms-lease-id").map(str::to_string);
        let (state, t) = (ctx.state.clone(), ctx.target());
        blocking(
            move || match state.store.get_blob(&t.account, &t.container, &t.blob) {
                Ok(b) => crate::lease::check_write(
                    b.lease.as_ref(),
                    lease_id.as_deref(),
                    crate::lease::Target::Blob,
                    true,
                    crate::timefmt::now_millis(),
                ),
                Err(e) if e.code == "BlobNotFound" => Ok(()),
                Err(e) => Err(e),
            },
        )
        .await?;
    }
    let received = body::receive(
        &ctx.state,
        body::take(incoming)?,
        MAX_BLOCK,
        ctx.header("content-md5"),
        0,
    )
    .await?;
    let file = match &received.file {
        Some(f) => f.clone(),
        None => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidHeaderValue",
                "The value for one of the HTTP headers is not in the correct format: Content-Length (a block may not be empty).",
            ));
        }
    };
    let (state, t) = (ctx.state.clone(), ctx.target());
    let size = received.size;
    if let Err(e) = blocking(move || {
        state
            .store
            .put_block(&t.account, &t.container, &t.blob, &id, &file, size)
    })
    .await
    {
        body::discard(&ctx.state.store, &received);
        return Err(e);
    }
    let mut r = Response::new(body::empty());
    *r.status_mut() = StatusCode::CREATED;
    let h = r.headers_mut();
    h.insert("content-md5", hv(&STANDARD.encode(received.md5)));
    h.insert("x-ms-request-server-encrypted", hv("true"));
    Ok(r)
}

pub async fn put_block_list(
    ctx: &Ctx,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let meta = metadata(&ctx.headers)?;
    let conds = Conditions::parse(&ctx.headers)?;
    let content = content_from_blob_headers(&ctx.headers);
    let xml = body::read_small(body::take(incoming)?, 8 * 1024 * 1024).await?;
    let list = parse_block_list(&xml)?;
    let (state, t) = (ctx.state.clone(), ctx.target());
    let p = blocking(move || {
        state.store.put_block_list(
            &t.account,
            &t.container,
            &t.blob,
            &conds,
            &list,
            NewBlob {
                inline: None,
                blob_type: crate::store::BlobType::BlockBlob,
                content,
                metadata: meta,
            },
        )
    })
    .await?;
    let mut r = Response::new(body::empty());
    *r.status_mut() = StatusCode::CREATED;
    let h = r.headers_mut();
    put_etag(h, &p.etag, p.last_modified_ms);
    h.insert("x-ms-request-server-encrypted", hv("true"));
    Ok(r)
}

fn push_blocks(s: &mut String, tag: &str, blocks: &[BlockInfo]) {
    s.push('<');
    s.push_str(tag);
    s.push('>');
    for b in blocks {
        s.push_str("<Block>");
        push_tag(s, "Name", &b.id);
        push_tag(s, "Size", &b.size.to_string());
        s.push_str("</Block>");
    }
    s.push_str("</");
    s.push_str(tag);
    s.push('>');
}

pub async fn get_block_list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let which = ctx
        .query
        .get("blocklisttype")
        .unwrap_or("committed")
        .to_ascii_lowercase();
    let (want_committed, want_uncommitted) = match which.as_str() {
        "committed" => (true, false),
        "uncommitted" => (false, true),
        "all" => (true, true),
        _ => return Err(ApiError::invalid_query("blocklisttype")),
    };
    let (state, t) = (ctx.state.clone(), ctx.target());
    let crate::store::BlockList {
        blob: props,
        committed,
        uncommitted,
    } = blocking(move || {
        state
            .store
            .get_block_list(&t.account, &t.container, &t.blob)
    })
    .await?;
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    if want_committed {
        push_blocks(&mut s, "CommittedBlocks", &committed);
    }
    if want_uncommitted {
        push_blocks(&mut s, "UncommittedBlocks", &uncommitted);
    }
    s.push_str("</BlockList>");
    let mut r = Response::new(body::full(Bytes::from(s)));
    let h = r.headers_mut();
    h.insert(hyper::header::CONTENT_TYPE, hv("application/xml"));
    if let Some(p) = props {
        put_etag(h, &p.etag, p.last_modified_ms);
        h.insert("x-ms-blob-content-length", hv(&p.size.to_string()));
    }
    Ok(r)
}
