//! Create Table, Delete Table, Query Tables.

use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value as Json, json};

use super::edm::Value;
use super::format::Format;
use super::keys::encode_token;
use super::params;
use super::{Need, TableCtx, empty, json_response, prefers_no_content};
use crate::api_error::ApiError;
use crate::blob::body::{self, Body};
use crate::blob::{blocking, hv};

fn table_json(ctx: &TableCtx, name: &str, single: bool) -> Map<String, Json> {
    let mut m = Map::new();
    if single && ctx.format != Format::NoMetadata {
        m.insert(
            "odata.metadata".into(),
            Json::String(format!("{}/$metadata#Tables/@Element", ctx.endpoint)),
        );
    }
    if ctx.format == Format::Full {
        m.insert(
            "odata.type".into(),
            Json::String(format!("{}.Tables", ctx.account)),
        );
        m.insert(
            "odata.id".into(),
            Json::String(format!("{}/Tables('{name}')", ctx.endpoint)),
        );
        m.insert(
            "odata.editLink".into(),
            Json::String(format!("Tables('{name}')")),
        );
    }
    m.insert("TableName".into(), Json::String(name.to_string()));
    m
}

pub(super) async fn create(
    ctx: &TableCtx,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    ctx.allow(Need::CreateTable, None, None)?;
    let raw = body::read_small(body::take(incoming)?, 64 * 1024).await?;
    let json = super::edm::parse_object(&raw)?;
    let name = match json.get("TableName") {
        Some(Json::String(n)) => n.clone(),
        _ => return Err(super::edm::properties_need_value()),
    };
    crate::names::check_table(&name)?;
    let (state, account, n) = (ctx.state.clone(), ctx.account.clone(), name.clone());
    blocking(move || state.store.create_table(&account, &n)).await?;
    let mut r = if prefers_no_content(ctx) == Some(true) {
        let mut r = empty(StatusCode::NO_CONTENT);
        r.headers_mut()
            .insert("preference-applied", hv("return-no-content"));
        r
    } else {
        let body = Json::Object(table_json(ctx, &name, true)).to_string();
        let mut r = json_response(StatusCode::CREATED, ctx.format, body);
        if prefers_no_content(ctx) == Some(false) {
            r.headers_mut()
                .insert("preference-applied", hv("return-content"));
        }
        r
    };
    r.headers_mut().insert(
        hyper::header::LOCATION,
        hv(&format!("{}/Tables('{name}')", ctx.endpoint)),
    );
    Ok(r)
}

pub(super) async fn delete(ctx: &TableCtx, name: String) -> Result<Response<Body>, ApiError> {
    ctx.allow(Need::DeleteTable, Some(&name), None)?;
    let (state, account) = (ctx.state.clone(), ctx.account.clone());
    blocking(move || state.store.delete_table(&account, &name)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Query Tables (`one` for `Tables('name')`).
pub(super) async fn query(ctx: &TableCtx, one: Option<String>) -> Result<Response<Body>, ApiError> {
    ctx.allow(Need::QueryTables, one.as_deref(), None)?;
    if let Some(name) = one {
        let (state, account) = (ctx.state.clone(), ctx.account.clone());
        let name = blocking(move || state.store.table_name(&account, &name)).await?;
        let body = Json::Object(table_json(ctx, &name, true)).to_string();
        return Ok(json_response(StatusCode::OK, ctx.format, body));
    }
    let filter = params::filter(&ctx.query)?;
    let top = params::top(&ctx.query)?;
    let from = params::token(&ctx.query, "NextTableName")?;
    let (state, account) = (ctx.state.clone(), ctx.account.clone());
    let (names, next) = blocking(move || {
        let keep = |n: &str| {
            filter.as_ref().is_none_or(|f| {
                f.matches(&|p| (p == "TableName").then(|| Value::String(n.to_string())))
            })
        };
        state
            .store
            .list_tables(&account, from.as_deref(), &keep, top)
    })
    .await?;
    let mut body = Map::new();
    if ctx.format != Format::NoMetadata {
        body.insert(
            "odata.metadata".into(),
            Json::String(format!("{}/$metadata#Tables", ctx.endpoint)),
        );
    }
    let value: Vec<Json> = names
        .iter()
        .map(|n| Json::Object(table_json(ctx, n, false)))
        .collect();
    body.insert("value".into(), json!(value));
    let mut r = json_response(StatusCode::OK, ctx.format, Json::Object(body).to_string());
    if let Some(n) = next {
        r.headers_mut()
            .insert("x-ms-continuation-NextTableName", hv(&encode_token(&n)));
    }
    Ok(r)
}

/// Get Table ACL: the stored access policies as XML.
pub(super) async fn get_acl(ctx: &TableCtx, name: String) -> Result<Response<Body>, ApiError> {
    let (state, account) = (ctx.state.clone(), ctx.account.clone());
    let acl = blocking(move || state.store.table_acl(&account, &name)).await?;
    let mut r = Response::new(body::full(bytes::Bytes::from(
        crate::xml::write_signed_identifiers(&acl),
    )));
    r.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hv("application/xml"));
    Ok(r)
}

/// Set Table ACL: at most five stored access policies.
pub(super) async fn set_acl(
    ctx: &TableCtx,
    name: String,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let xml = body::read_small(body::take(incoming)?, 64 * 1024).await?;
    let ids = crate::xml::parse_signed_identifiers(&xml)?;
    let (state, account) = (ctx.state.clone(), ctx.account.clone());
    blocking(move || state.store.set_table_acl(&account, &name, &ids)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
