//! The table service (port 10002): tables, entities with ETags, OData
//! queries with continuation tokens, and entity group transactions.
//!
//! Its front door differs from blob and queue: errors are JSON
//! (`{"odata.error":...}`), SharedKey signs a shorter string, and SAS
//! tokens may name one table and a key range. Rooms: [`edm`] (typed values,
//! request bodies, limits), [`format`] (response JSON), [`datetime`], [`filter`] (`$filter`), [`keys`] (resource paths,
//! continuation tokens), [`batch`] (multipart `$batch` bodies), and the
//! handlers in `tables` and `entities`.

pub mod batch;
pub mod datetime;
pub mod edm;
mod entities;
pub mod filter;
pub mod format;
pub mod keys;
pub mod params;
pub mod stored;
mod tables;

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::api_error::{ApiError, SasLacks};
use crate::auth::table_sas::TableGrant;
use crate::auth::{self, SignedParts};
use crate::blob::body::{self, Body};
use crate::blob::{iso_now, valid_version};
use crate::request::Query;
use crate::server::ServiceState;
use crate::timefmt::now_millis;
use format::Format;
use keys::Resource;

/// Who is asking, as far as the table service cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// SharedKey / SharedKeyLite: everything in the account.
    Account,
    /// Account SAS: services, resource types, permissions.
    AccountSas {
        services: String,
        resource_types: String,
        permissions: String,
    },
    /// Table SAS: one table, maybe a key range.
    Table(TableGrant),
}

/// What an operation needs from a SAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    QueryTables,
    CreateTable,
    DeleteTable,
    Read,
    Add,
    Update,
    Upsert,
    Delete,
}

/// One table request after authentication.
pub struct TableCtx {
    pub state: Arc<ServiceState>,
    pub method: Method,
    pub headers: hyper::HeaderMap,
    pub query: Query,
    pub account: String,
    pub caller: Caller,
    /// `http://host/account`, for metadata links.
    pub endpoint: String,
    pub format: Format,
}

impl TableCtx {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Checks that the caller may do `need` on `table` (and the entity keys).
    pub fn allow(
        &self,
        need: Need,
        table: Option<&str>,
        keys: Option<(&str, &str)>,
    ) -> Result<(), ApiError> {
        let has = |perms: &str, letters: &str| letters.chars().all(|c| perms.contains(c));
        let denied = |lacks| Err(ApiError::sas_mismatch(lacks));
        match &self.caller {
            Caller::Account => Ok(()),
            Caller::AccountSas {
                services,
                resource_types,
                permissions,
            } => {
                let (kind, ok_perm) = match need {
                    Need::QueryTables => ('c', has(permissions, "l")),
                    Need::CreateTable => ('c', has(permissions, "c") || has(permissions, "w")),
                    Need::DeleteTable => ('c', has(permissions, "d")),
                    Need::Read => ('o', has(permissions, "r")),
                    Need::Add => ('o', has(permissions, "a")),
                    Need::Update => ('o', has(permissions, "u")),
                    Need::Upsert => ('o', has(permissions, "au")),
                    Need::Delete => ('o', has(permissions, "d")),
                };
                if !services.contains('t') {
                    denied(SasLacks::Service)
                } else if !resource_types.contains(kind) {
                    denied(SasLacks::ResourceType)
                } else if !ok_perm {
                    denied(SasLacks::Permission)
                } else {
                    Ok(())
                }
            }
            Caller::Table(g) => {
                let letters = match need {
                    Need::Read => "r",
                    Need::Add => "a",
                    Need::Update => "u",
                    Need::Upsert => "au",
                    Need::Delete => "d",
                    _ => return Err(ApiError::auth_mismatch()),
                };
                if !table.is_some_and(|t| t.eq_ignore_ascii_case(&g.table))
                    || !keys.is_none_or(|(pk, rk)| g.covers(pk, rk))
                {
                    Err(ApiError::auth_mismatch())
                } else if !has(&g.permissions, letters) {
                    denied(SasLacks::Permission)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The table SAS range, to confine query results.
    pub fn grant(&self) -> Option<&TableGrant> {
        match &self.caller {
            Caller::Table(g) if g.has_range() => Some(g),
            _ => None,
        }
    }
}

/// Serves one table request; never fails (errors become Azure JSON errors).
pub async fn handle(state: Arc<ServiceState>, req: Request<Incoming>) -> Response<Body> {
    let request_id = crate::ids::unique().to_string();
    let version = req
        .headers()
        .get("x-ms-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let client_request_id = req.headers().get("x-ms-client-request-id").cloned();
    let is_head = req.method() == Method::HEAD;
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let result = match &version {
        _ if let Err(e) = crate::request::check_head(target_len, req.headers()) => Err(e),
        Some(v) if !valid_version(v) => Err(ApiError::invalid_header("x-ms-version")),
        _ => {
            let (parts, incoming) = req.into_parts();
            let mut unread = Some(incoming);
            let r = route(state, parts, &mut unread).await;
            if r.is_err()
                && let Some(b) = unread
            {
                body::drain(b).await;
            }
            r
        }
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%method, %path, status = e.status.as_u16(), code = e.code, "table request failed");
            error_response(&e, &request_id, is_head)
        }
    };
    let h = resp.headers_mut();
    crate::blob::response_headers(h, &request_id, version.as_deref(), client_request_id);
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    resp
}

/// The JSON error body Azure's table service sends.
pub fn error_json(e: &ApiError, request_id: &str, prefix: &str) -> String {
    serde_json::json!({
        "odata.error": {
            "code": e.code,
            "message": {
                "lang": "en-US",
                "value": format!("{prefix}{}\nRequestId:{request_id}\nTime:{}", e.message, iso_now()),
            }
        }
    })
    .to_string()
}

fn error_response(e: &ApiError, request_id: &str, is_head: bool) -> Response<Body> {
    let body = if is_head {
        body::empty()
    } else {
        body::full(Bytes::from(error_json(e, request_id, "")))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = e.status;
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("x-ms-error-code"),
        HeaderValue::from_static(e.code),
    );
    h.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(Format::Minimal.content_type()),
    );
    resp
}

fn invalid_uri() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidUri",
        "The requested URI does not represent any resource on the server.",
    )
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UnsupportedHttpVerb",
        "The resource doesn't support the specified HTTP verb.",
    )
}

async fn route(
    state: Arc<ServiceState>,
    parts: hyper::http::request::Parts,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let raw_path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let trimmed = raw_path.strip_prefix('/').unwrap_or(&raw_path);
    let (raw_account, raw_rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| invalid_uri())
    };
    let account = decode(raw_account)?;
    if account.is_empty() {
        return Err(invalid_uri());
    }
    let resource = keys::parse_resource(&decode(raw_rest)?).map_err(|_| invalid_uri())?;
    let resource_table = match &resource {
        Resource::Table(t) | Resource::Entities(t) => Some(t.as_str()),
        Resource::Entity { table, .. } => Some(table.as_str()),
        _ => None,
    };
    let caller = authenticate(&state, &parts, &raw_path, &query, &account, resource_table).await?;
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:10002");
    let endpoint = format!("http://{host}/{account}");
    let format = Format::parse(
        query.get("$format"),
        parts
            .headers
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let mut method = parts.method.clone();
    if method == Method::POST
        && let Some(over) = parts
            .headers
            .get("x-http-method")
            .and_then(|v| v.to_str().ok())
    {
        method = Method::from_bytes(over.trim().as_bytes()).map_err(|_| method_not_allowed())?;
    }
    let ctx = TableCtx {
        state,
        method: method.clone(),
        headers: parts.headers,
        query,
        account,
        caller,
        endpoint,
        format,
    };
    let merge = Method::from_bytes(b"MERGE").expect("MERGE is a valid method");
    match resource {
        Resource::Service => Err(invalid_uri()),
        Resource::Tables => match method {
            Method::GET => tables::query(&ctx, None).await,
            Method::POST => tables::create(&ctx, incoming).await,
            _ => Err(method_not_allowed()),
        },
        Resource::Table(name) => match method {
            Method::DELETE => tables::delete(&ctx, name).await,
            Method::GET => tables::query(&ctx, Some(name)).await,
            _ => Err(method_not_allowed()),
        },
        Resource::Entities(table) if ctx.query.get("comp") == Some("acl") => {
            if ctx.caller != Caller::Account {
                return Err(ApiError::auth_mismatch());
            }
            match method {
                Method::GET | Method::HEAD => tables::get_acl(&ctx, table).await,
                Method::PUT => tables::set_acl(&ctx, table, incoming).await,
                _ => Err(method_not_allowed()),
            }
        }
        Resource::Entities(table) => {
            crate::names::check_table(&table)?;
            match method {
                Method::POST => entities::insert(&ctx, table, incoming).await,
                Method::GET => entities::query(&ctx, table).await,
                _ => Err(method_not_allowed()),
            }
        }
        Resource::Entity {
            table,
            partition_key,
            row_key,
        } => {
            crate::names::check_table(&table)?;
            let target = entities::Target {
                table,
                partition_key,
                row_key,
            };
            match method {
                Method::GET => entities::get(&ctx, target).await,
                Method::PUT => entities::update(&ctx, target, false, incoming).await,
                Method::DELETE => entities::delete(&ctx, target).await,
                // MERGE, or PATCH as newer clients send it.
                m if m == merge || m == Method::PATCH => {
                    entities::update(&ctx, target, true, incoming).await
                }
                _ => Err(method_not_allowed()),
            }
        }
        Resource::Batch => match method {
            Method::POST => batch::serve(&ctx, incoming).await,
            _ => Err(method_not_allowed()),
        },
    }
}

async fn authenticate(
    state: &Arc<ServiceState>,
    parts: &hyper::http::request::Parts,
    raw_path: &str,
    query: &Query,
    account: &str,
    table: Option<&str>,
) -> Result<Caller, ApiError> {
    let has_auth = parts.headers.contains_key(hyper::header::AUTHORIZATION);
    if !has_auth && auth::sas::is_sas(query) {
        let acct = state.accounts.get(account).ok_or_else(|| {
            ApiError::auth_failed(format!("The account {account} does not exist."))
        })?;
        if let Some(tn) = query.get("tn") {
            let policy = match query.get("si") {
                None => None,
                Some(si) => {
                    let (st, a, t, si) = (
                        state.clone(),
                        account.to_string(),
                        tn.to_string(),
                        si.to_string(),
                    );
                    let acl = crate::blob::blocking(move || st.store.table_acl(&a, &t))
                        .await
                        .unwrap_or_default();
                    acl.into_iter().find(|p| p.id == si)
                }
            };
            return auth::table_sas::verify(acct, table, query, policy.as_ref(), now_millis())
                .map(Caller::Table);
        }
        let g = auth::sas::verify_account(acct, query, now_millis())?;
        let auth::sas::SasScope::Account {
            services,
            resource_types,
        } = g.scope
        else {
            return Err(ApiError::auth_mismatch());
        };
        return Ok(Caller::AccountSas {
            services,
            resource_types,
            permissions: g.permissions,
        });
    }
    let signed = SignedParts {
        method: parts.method.as_str(),
        raw_path,
        query,
        headers: &parts.headers,
    };
    match auth::authenticate_table(&state.accounts, account, &signed, now_millis())? {
        auth::Principal::Account(_) => Ok(Caller::Account),
        _ => Err(ApiError::no_auth()),
    }
}

/// A JSON response with the format's content type.
pub(crate) fn json_response(status: StatusCode, format: Format, body: String) -> Response<Body> {
    let mut r = Response::new(body::full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    r
}

/// An empty response.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = status;
    r
}

/// Whether `Prefer` asks for no content (`return-no-content`).
pub(crate) fn prefers_no_content(ctx: &TableCtx) -> Option<bool> {
    let p = ctx.header("prefer")?.to_ascii_lowercase();
    if p.contains("return-no-content") {
        Some(true)
    } else if p.contains("return-content") {
        Some(false)
    } else {
        None
    }
}
