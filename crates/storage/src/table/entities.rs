//! Entity operations: Insert, Update (replace), Merge, Insert-or-Replace,
//! Insert-or-Merge, Delete, point query and filtered queries.

use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value as Json};

use super::edm::{self, Entity, invalid_input};
use super::format::{self, Format, Location};
use super::keys::encode_token;
use super::params;
use super::{Need, TableCtx, empty, json_response, prefers_no_content};
use crate::api_error::ApiError;
use crate::blob::body::{self, Body};
use crate::blob::{blocking, hv};
use crate::store::{EntityQuery, EntityWrite, IfMatch};

/// Largest entity request body read (entities are at most 1 MiB as the
/// service counts them; JSON text can be larger).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// An entity named by its keys.
#[derive(Debug, Clone)]
pub struct Target {
    pub table: String,
    pub partition_key: String,
    pub row_key: String,
}

/// `If-Match`: absent, `*` or an ETag.
pub fn if_match(value: Option<&str>) -> Option<IfMatch> {
    match value.map(str::trim) {
        None | Some("") => None,
        Some("*") => Some(IfMatch::Any),
        Some(e) => Some(IfMatch::Etag(e.to_string())),
    }
}

/// Insert Entity from a JSON body.
pub fn insert_write(body: &[u8]) -> Result<EntityWrite, ApiError> {
    let e = edm::parse_entity(body)?;
    match (e.partition_key, e.row_key) {
        (Some(partition_key), Some(row_key)) => Ok(EntityWrite::Insert {
            partition_key,
            row_key,
            props: e.props,
        }),
        _ => Err(edm::properties_need_value()),
    }
}

/// Update / Merge (or their insert-or- forms without `If-Match`).
pub fn update_write(
    target: &Target,
    merge: bool,
    cond: Option<IfMatch>,
    body: &[u8],
) -> Result<EntityWrite, ApiError> {
    edm::check_key(&target.partition_key)?;
    edm::check_key(&target.row_key)?;
    let e = edm::parse_entity(body)?;
    let mismatch = e
        .partition_key
        .as_ref()
        .is_some_and(|p| *p != target.partition_key)
        || e.row_key.as_ref().is_some_and(|r| *r != target.row_key);
    if mismatch {
        return Err(invalid_input(
            "One of the request inputs is not valid: the keys in the body differ from the keys in the URL.",
        ));
    }
    Ok(EntityWrite::Update {
        partition_key: target.partition_key.clone(),
        row_key: target.row_key.clone(),
        props: e.props,
        merge,
        if_match: cond,
    })
}

/// What an update needs from a SAS: without `If-Match` it may insert.
pub fn update_need(w: &EntityWrite) -> Need {
    match w {
        EntityWrite::Insert { .. } => Need::Add,
        EntityWrite::Update { if_match: None, .. } => Need::Upsert,
        EntityWrite::Update { .. } => Need::Update,
        EntityWrite::Delete { .. } => Need::Delete,
    }
}

pub(super) fn location<'a>(ctx: &'a TableCtx, table: &'a str) -> Location<'a> {
    Location {
        endpoint: &ctx.endpoint,
        account: &ctx.account,
        table,
    }
}

pub(super) async fn insert(
    ctx: &TableCtx,
    table: String,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let raw = body::read_small(body::take(incoming)?, MAX_BODY).await?;
    let write = insert_write(&raw)?;
    let (pk, rk) = write.keys();
    ctx.allow(Need::Add, Some(&table), Some((pk, rk)))?;
    let stored = ctx
        .state
        .store
        .write_entity_async(&ctx.account, &table, write)
        .await?
        .ok_or_else(|| ApiError::internal("insert returned no entity"))?;
    let link = format!(
        "{}/{}",
        ctx.endpoint,
        format::edit_link(&table, &stored.partition_key, &stored.row_key)
    );
    let mut r = if prefers_no_content(ctx) == Some(true) {
        let mut r = empty(StatusCode::NO_CONTENT);
        r.headers_mut()
            .insert("preference-applied", hv("return-no-content"));
        r.headers_mut().insert("dataserviceid", hv(&link));
        r
    } else {
        let body = Json::Object(format::entity_json(
            &stored,
            ctx.format,
            &location(ctx, &table),
            None,
            true,
        ))
        .to_string();
        let mut r = json_response(StatusCode::CREATED, ctx.format, body);
        if prefers_no_content(ctx) == Some(false) {
            r.headers_mut()
                .insert("preference-applied", hv("return-content"));
        }
        r
    };
    r.headers_mut()
        .insert(hyper::header::ETAG, hv(&stored.etag()));
    r.headers_mut().insert(hyper::header::LOCATION, hv(&link));
    Ok(r)
}

pub(super) async fn update(
    ctx: &TableCtx,
    target: Target,
    merge: bool,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let raw = body::read_small(body::take(incoming)?, MAX_BODY).await?;
    let write = update_write(&target, merge, if_match(ctx.header("if-match")), &raw)?;
    ctx.allow(
        update_need(&write),
        Some(&target.table),
        Some((&target.partition_key, &target.row_key)),
    )?;
    let stored = ctx
        .state
        .store
        .write_entity_async(&ctx.account, &target.table, write)
        .await?
        .ok_or_else(|| ApiError::internal("update returned no entity"))?;
    let mut r = empty(StatusCode::NO_CONTENT);
    r.headers_mut()
        .insert(hyper::header::ETAG, hv(&stored.etag()));
    Ok(r)
}

pub(super) async fn delete(ctx: &TableCtx, target: Target) -> Result<Response<Body>, ApiError> {
    let cond =
        if_match(ctx.header("if-match")).ok_or_else(|| ApiError::missing_header("If-Match"))?;
    ctx.allow(
        Need::Delete,
        Some(&target.table),
        Some((&target.partition_key, &target.row_key)),
    )?;
    ctx.state
        .store
        .write_entity_async(
            &ctx.account,
            &target.table,
            EntityWrite::Delete {
                partition_key: target.partition_key,
                row_key: target.row_key,
                if_match: cond,
            },
        )
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub(super) async fn get(ctx: &TableCtx, target: Target) -> Result<Response<Body>, ApiError> {
    ctx.allow(
        Need::Read,
        Some(&target.table),
        Some((&target.partition_key, &target.row_key)),
    )?;
    let e: Entity = crate::blob::quick_read(|| {
        ctx.state.store.get_entity(
            &ctx.account,
            &target.table,
            &target.partition_key,
            &target.row_key,
        )
    })?;
    let sel = params::select(&ctx.query);
    let body = Json::Object(format::entity_json(
        &e,
        ctx.format,
        &location(ctx, &target.table),
        sel.as_deref(),
        true,
    ))
    .to_string();
    let mut r = json_response(StatusCode::OK, ctx.format, body);
    r.headers_mut().insert(hyper::header::ETAG, hv(&e.etag()));
    Ok(r)
}

pub(super) async fn query(ctx: &TableCtx, table: String) -> Result<Response<Body>, ApiError> {
    ctx.allow(Need::Read, Some(&table), None)?;
    let filter = params::filter(&ctx.query)?;
    let top = params::top(&ctx.query)?;
    let token = |name: &str| params::token(&ctx.query, name);
    let resume = match (token("NextPartitionKey")?, token("NextRowKey")?) {
        (Some(p), r) => Some((p, r.unwrap_or_default())),
        (None, _) => None,
    };
    let grant = ctx.grant().cloned();
    let (state, account, t) = (ctx.state.clone(), ctx.account.clone(), table.clone());
    let page = blocking(move || {
        let q = EntityQuery {
            filter: filter.as_ref(),
            top,
            resume,
        };
        state.store.query_entities(&account, &t, &q)
    })
    .await?;
    let sel = params::select(&ctx.query);
    let loc = location(ctx, &table);
    let value: Vec<Json> = page
        .entities
        .iter()
        .filter(|e| {
            grant
                .as_ref()
                .is_none_or(|g| g.covers(&e.partition_key, &e.row_key))
        })
        .map(|e| {
            Json::Object(format::entity_json(
                e,
                ctx.format,
                &loc,
                sel.as_deref(),
                false,
            ))
        })
        .collect();
    let mut body = Map::new();
    if ctx.format != Format::NoMetadata {
        body.insert(
            "odata.metadata".into(),
            Json::String(format!("{}/$metadata#{table}", ctx.endpoint)),
        );
    }
    body.insert("value".into(), Json::Array(value));
    let mut r = json_response(StatusCode::OK, ctx.format, Json::Object(body).to_string());
    if let Some((pk, rk)) = page.next {
        let h = r.headers_mut();
        h.insert("x-ms-continuation-NextPartitionKey", hv(&encode_token(&pk)));
        h.insert("x-ms-continuation-NextRowKey", hv(&encode_token(&rk)));
    }
    Ok(r)
}
