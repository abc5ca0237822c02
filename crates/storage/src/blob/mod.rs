//! The blob service: request context, authentication and authorization,
//! dispatch to operations, and the headers every response carries.

pub(crate) mod authorize;
mod blobs;
mod blocks;
pub mod body;
pub(crate) mod containers;
pub(crate) mod enumeration;
pub mod headers;
mod leases;
mod listing;

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

pub use body::Body;

use crate::api_error::ApiError;
use crate::auth::{self, Principal, SignedParts};
use crate::request::{Address, Query};
use crate::server::ServiceState;
use crate::timefmt::{now_millis, rfc1123};
use authorize::{Op, authorize_anonymous, authorize_sas, classify, sas_principal};

/// The version this service answers with when a request names none.
pub const DEFAULT_VERSION: &str = "2025-11-05";
/// The oldest version accepted; every later one is, known or not.
pub const OLDEST_VERSION: &str = "2019-02-02";

/// Everything a handler needs about one request.
pub struct Ctx {
    pub state: Arc<ServiceState>,
    pub method: Method,
    pub headers: hyper::HeaderMap,
    pub query: Query,
    pub addr: Address,
    pub principal: Principal,
    /// `http://host/account`, for listings' ServiceEndpoint.
    pub endpoint: String,
}

impl Ctx {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Put Blob, Put Block and Append Block: the body's length must be
    /// declared up front; `Transfer-Encoding: chunked` alone is refused.
    pub fn require_content_length(&self) -> Result<(), ApiError> {
        if self.headers.contains_key(hyper::header::CONTENT_LENGTH) {
            Ok(())
        } else {
            Err(ApiError::missing_content_length())
        }
    }

    pub fn container(&self) -> &str {
        self.addr.container.as_deref().unwrap_or_default()
    }

    pub fn blob(&self) -> &str {
        self.addr.blob.as_deref().unwrap_or_default()
    }

    pub fn account(&self) -> &str {
        &self.addr.account
    }

    /// The account, container and blob the request names, owned so a
    /// blocking store task can take them.
    pub fn target(&self) -> BlobTarget {
        BlobTarget {
            account: self.account().to_string(),
            container: self.container().to_string(),
            blob: self.blob().to_string(),
        }
    }
}

/// What a request addresses: `container` and `blob` are empty when the
/// path does not name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobTarget {
    pub account: String,
    pub container: String,
    pub blob: String,
}

/// Runs a point read of the store (an indexed lookup on one of the
/// store's reader connections, answered from the page cache in
/// microseconds) right on the async thread: handing it to the blocking
/// pool would cost more than the read, in thread wake-ups. Scans and
/// anything that may take longer go through [`blocking`].
pub fn quick_read<T>(read: impl FnOnce() -> Result<T, ApiError>) -> Result<T, ApiError> {
    read()
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
}

pub(crate) fn valid_version(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && v >= OLDEST_VERSION
}

/// Serves one request; never fails (errors become Azure error responses).
pub async fn handle(state: Arc<ServiceState>, req: Request<Incoming>) -> Response<Body> {
    handle_service(state, req, Service::Blob).await
}

/// Which service a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Blob,
    Queue,
}

/// Serves one request of either service; never fails (errors become Azure
/// error responses).
pub async fn handle_service(
    state: Arc<ServiceState>,
    req: Request<Incoming>,
    service: Service,
) -> Response<Body> {
    let request_id = crate::ids::unique().to_string();
    let version = req
        .headers()
        .get("x-ms-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let client_request_id = req.headers().get("x-ms-client-request-id").cloned();
    let is_head = req.method() == Method::HEAD;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let result = match &version {
        _ if let Err(e) = crate::request::check_head(target_len, req.headers()) => Err(e),
        Some(v) if !valid_version(v) => Err(ApiError::invalid_header("x-ms-version")),
        _ => serve(state, req, service).await,
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%method, %path, status = e.status.as_u16(), code = e.code, "request failed");
            error_response(&e, &request_id, is_head)
        }
    };
    response_headers(
        resp.headers_mut(),
        &request_id,
        version.as_deref(),
        client_request_id,
    );
    resp
}

/// The headers every storage response carries: the request id, the version
/// it answers with (the client's when valid), the date, the server, and the
/// client's own request id echoed back.
pub fn response_headers(
    h: &mut hyper::HeaderMap,
    request_id: &str,
    version: Option<&str>,
    client_request_id: Option<HeaderValue>,
) {
    h.insert("x-ms-request-id", hv(request_id));
    h.insert(
        "x-ms-version",
        hv(version
            .filter(|v| valid_version(v))
            .unwrap_or(DEFAULT_VERSION)),
    );
    h.insert(hyper::header::DATE, hv(&rfc1123(now_millis())));
    h.insert(
        hyper::header::SERVER,
        HeaderValue::from_static("weft-storage"),
    );
    if let Some(c) = client_request_id {
        h.insert("x-ms-client-request-id", c);
    }
}

/// A header value from text; characters HTTP cannot carry become `?`.
pub fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| {
        let clean: String = s
            .chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
            .collect();
        HeaderValue::from_str(&clean).unwrap_or(HeaderValue::from_static(""))
    })
}

fn error_response(e: &ApiError, request_id: &str, is_head: bool) -> Response<Body> {
    let time = iso_now();
    let body = if is_head || e.status == StatusCode::NOT_MODIFIED {
        body::empty()
    } else {
        body::full(Bytes::from(e.xml_body(request_id, &time)))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = e.status;
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("x-ms-error-code"),
        HeaderValue::from_static(e.code),
    );
    if e.status != StatusCode::NOT_MODIFIED {
        h.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
    }
    resp
}

/// `2026-11-24T20:15:02.1234567Z`, as Azure's error messages print time.
pub(crate) fn iso_now() -> String {
    let ms = now_millis();
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}0000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Routes a request. A body the handler never read (the request failed
/// first) is drained, up to a limit, so the connection stays usable and the
/// client reads the error instead of a reset.
async fn serve(
    state: Arc<ServiceState>,
    req: Request<Incoming>,
    service: Service,
) -> Result<Response<Body>, ApiError> {
    let (parts, incoming) = req.into_parts();
    let mut unread = Some(incoming);
    let result = route(state, parts, &mut unread, service).await;
    if result.is_err()
        && let Some(b) = unread
    {
        body::drain(b).await;
    }
    result
}

async fn route(
    state: Arc<ServiceState>,
    parts: hyper::http::request::Parts,
    incoming: &mut Option<Incoming>,
    service: Service,
) -> Result<Response<Body>, ApiError> {
    let raw_path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let addr = Address::parse(&raw_path)?;
    let has_auth_header = parts.headers.contains_key(hyper::header::AUTHORIZATION);
    let principal = if !has_auth_header && auth::sas::is_sas(&query) {
        if service == Service::Queue {
            crate::queue::access::sas_principal(&state, &addr, &query).await?
        } else {
            sas_principal(&state, &addr, &query).await?
        }
    } else {
        let signed = SignedParts {
            method: parts.method.as_str(),
            raw_path: &raw_path,
            query: &query,
            headers: &parts.headers,
        };
        auth::authenticate(&state.accounts, &addr.account, &signed, now_millis())?
    };
    if principal == Principal::Anonymous && state.accounts.get(&addr.account).is_none() {
        return Err(ApiError::resource_not_found());
    }
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:10000");
    let endpoint = format!("http://{host}/{}", addr.account);
    if let Some(c) = &addr.container {
        crate::names::check_container(c)?;
    }
    if let Some(b) = &addr.blob
        && service == Service::Blob
    {
        crate::names::check_blob(b)?;
    }
    let ctx = Ctx {
        state,
        method: parts.method,
        headers: parts.headers,
        query,
        addr,
        principal,
        endpoint,
    };
    if service == Service::Queue {
        return crate::queue::dispatch(&ctx, incoming).await;
    }
    let op = classify(&ctx)?;
    match &ctx.principal {
        Principal::Account(_) => {}
        Principal::Sas(grant) => authorize_sas(&ctx, grant, op)?,
        Principal::Anonymous => authorize_anonymous(&ctx, op).await?,
    }
    match op {
        Op::ListContainers => containers::list(&ctx).await,
        Op::AccountInfo => Ok(account_info()),
        Op::CreateContainer => containers::create(&ctx).await,
        Op::DeleteContainer => containers::delete(&ctx).await,
        Op::GetContainerProperties => containers::properties(&ctx).await,
        Op::SetContainerMetadata => containers::set_metadata(&ctx).await,
        Op::GetContainerAcl => containers::get_acl(&ctx).await,
        Op::SetContainerAcl => containers::set_acl(&ctx, incoming).await,
        Op::ListBlobs => listing::list_blobs(&ctx).await,
        Op::PutBlob => blobs::put(&ctx, incoming).await,
        Op::CopyBlob => blobs::copy(&ctx).await,
        Op::AppendBlock => blobs::append_block(&ctx, incoming).await,
        Op::GetBlob => blobs::get(&ctx).await,
        Op::DeleteBlob => blobs::delete(&ctx).await,
        Op::SetBlobProperties => blobs::set_properties(&ctx).await,
        Op::SetBlobMetadata => blobs::set_metadata(&ctx).await,
        Op::GetBlobMetadata => blobs::get_metadata(&ctx).await,
        Op::PutBlock => blocks::put_block(&ctx, incoming).await,
        Op::PutBlockList => blocks::put_block_list(&ctx, incoming).await,
        Op::GetBlockList => blocks::get_block_list(&ctx).await,
        Op::LeaseContainer => leases::lease(&ctx, false).await,
        Op::LeaseBlob => leases::lease(&ctx, true).await,
        Op::SnapshotBlob => blobs::snapshot(&ctx).await,
    }
}

fn account_info() -> Response<Body> {
    let mut r = Response::new(body::empty());
    let h = r.headers_mut();
    h.insert("x-ms-sku-name", HeaderValue::from_static("Standard_LRS"));
    h.insert("x-ms-account-kind", HeaderValue::from_static("StorageV2"));
    h.insert("x-ms-is-hns-enabled", HeaderValue::from_static("false"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_2019_02_02_on_are_accepted_including_unknown_ones() {
        for ok in ["2019-02-02", "2021-08-06", "2025-11-05", "2099-12-31"] {
            assert!(valid_version(ok), "{ok}");
        }
        for bad in [
            "2018-11-09",
            "2015-04-05",
            "latest",
            "2025-1-05",
            "2025/11/05",
        ] {
            assert!(!valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_416), (2025, 11, 24));
    }
}
