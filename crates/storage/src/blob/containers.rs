//! Container operations: create, delete, properties, metadata, ACL, and
//! List Containers.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::enumeration::{
    LIST_CONTAINERS_INCLUDE, Paging, check_include, close, include, push_metadata, push_tag,
};
use super::headers::{metadata, put_etag, put_metadata};
use super::{Ctx, blocking, hv};
use crate::api_error::ApiError;
use crate::conditions::Conditions;
use crate::store::ContainerProps;
use crate::timefmt::rfc1123;
use crate::xml::{parse_signed_identifiers, write_signed_identifiers};

fn public_access(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    match ctx.header("x-ms-blob-public-access") {
        None | Some("") => Ok(None),
        Some(v @ ("container" | "blob")) => Ok(Some(v.to_string())),
        Some(_) => Err(ApiError::invalid_header("x-ms-blob-public-access")),
    }
}

fn with_status(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = status;
    r
}

pub async fn create(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let meta = metadata(&ctx.headers)?;
    let public = public_access(ctx)?;
    let (state, t) = (ctx.state.clone(), ctx.target());
    let props = blocking(move || {
        state
            .store
            .create_container(&t.account, &t.container, &meta, public.as_deref())
    })
    .await?;
    let mut r = with_status(StatusCode::CREATED);
    put_etag(r.headers_mut(), &props.etag, props.last_modified_ms);
    Ok(r)
}

pub async fn delete(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let conds = Conditions::parse(&ctx.headers)?;
    if conds.if_match.is_some() || conds.if_none_match.is_some() {
        return Err(ApiError::invalid_header("If-Match"));
    }
    let (state, t) = (ctx.state.clone(), ctx.target());
    blocking(move || {
        state
            .store
            .delete_container(&t.account, &t.container, &conds)
    })
    .await?;
    Ok(with_status(StatusCode::ACCEPTED))
}

async fn load(ctx: &Ctx) -> Result<ContainerProps, ApiError> {
    let (state, t) = (ctx.state.clone(), ctx.target());
    blocking(move || state.store.get_container(&t.account, &t.container)).await
}

fn put_container_headers(r: &mut Response<Body>, p: &ContainerProps) {
    let h = r.headers_mut();
    put_etag(h, &p.etag, p.last_modified_ms);
    if let Some(p) = &p.public_access {
        h.insert("x-ms-blob-public-access", hv(p));
    }
}

pub async fn properties(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let p = load(ctx).await?;
    let mut r = with_status(StatusCode::OK);
    put_container_headers(&mut r, &p);
    let h = r.headers_mut();
    put_metadata(h, &p.metadata);
    super::headers::put_lease(h, p.lease.as_ref());
    h.insert("x-ms-has-immutability-policy", hv("false"));
    h.insert("x-ms-has-legal-hold", hv("false"));
    Ok(r)
}

pub async fn set_metadata(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let meta = metadata(&ctx.headers)?;
    let conds = Conditions::parse(&ctx.headers)?;
    if conds.if_match.is_some()
        || conds.if_none_match.is_some()
        || conds.if_unmodified_since.is_some()
    {
        return Err(ApiError::invalid_header("If-Modified-Since"));
    }
    let (state, t) = (ctx.state.clone(), ctx.target());
    let p = blocking(move || {
        state
            .store
            .update_container(&t.account, &t.container, &conds, Some(&meta), None)
    })
    .await?;
    let mut r = with_status(StatusCode::OK);
    put_etag(r.headers_mut(), &p.etag, p.last_modified_ms);
    Ok(r)
}

pub async fn get_acl(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let p = load(ctx).await?;
    let mut r = Response::new(body::full(Bytes::from(write_signed_identifiers(&p.acl))));
    put_container_headers(&mut r, &p);
    r.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hv("application/xml"));
    Ok(r)
}

pub async fn set_acl(
    ctx: &Ctx,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let public = public_access(ctx)?;
    let conds = Conditions::parse(&ctx.headers)?;
    let xml = body::read_small(body::take(incoming)?, 64 * 1024).await?;
    let ids = parse_signed_identifiers(&xml)?;
    let (state, t) = (ctx.state.clone(), ctx.target());
    let p = blocking(move || {
        state.store.update_container(
            &t.account,
            &t.container,
            &conds,
            None,
            Some((public.as_deref(), &ids)),
        )
    })
    .await?;
    let mut r = with_status(StatusCode::OK);
    put_etag(r.headers_mut(), &p.etag, p.last_modified_ms);
    Ok(r)
}

pub async fn list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let paging = Paging::parse(ctx)?;
    check_include(ctx, LIST_CONTAINERS_INCLUDE)?;
    let with_meta = include(ctx, "metadata");
    let page = paging
        .fetch(ctx, |store, account, p| {
            store.list_containers(account, &p.prefix, &p.marker, p.max)
        })
        .await?;
    let mut s = paging.open(ctx, &[]);
    s.push_str("<Containers>");
    for c in &page.items {
        s.push_str("<Container>");
        push_tag(&mut s, "Name", &c.name);
        s.push_str("<Properties>");
        push_tag(&mut s, "Last-Modified", &rfc1123(c.last_modified_ms));
        push_tag(&mut s, "Etag", &c.etag);
        s.push_str(&super::headers::lease_xml(c.lease.as_ref()));
        if let Some(p) = &c.public_access {
            push_tag(&mut s, "PublicAccess", p);
        }
        s.push_str("<HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>false</HasLegalHold></Properties>");
        if with_meta {
            push_metadata(&mut s, &c.metadata);
        }
        s.push_str("</Container>");
    }
    s.push_str("</Containers>");
    Ok(close(s, page.next_marker.as_deref()))
}
