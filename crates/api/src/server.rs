//! The management API's server: an axum router over the controller.
//!
//! Every route requires `Authorization: Bearer <token>`. Long requests
//! (deploy, delete) answer `202 Accepted` with the operation's id, in the
//! body and in `x-ms-request-id` as Azure does; `GET /v1/operations/{id}`
//! follows it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use weft_agent::protocol::{AgentApi, LogQuery, LogStream};
use weft_fabric::upgrade::{HealthGate, UpgradeMode};
use weft_fabric::view::DeploymentStatus;
use weft_fabric::{
    ChangeConfigurationRequest, Controller, DeployRequest, FabricError, Slot, UpgradeRequest,
};

use crate::token::Token;
use crate::wire::{Accepted, CreateDeployment, ErrorBody, PackageUploaded};

/// The OpenAPI 3.1 document describing every route below.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Packages larger than this are refused on upload.
pub const MAX_PACKAGE_BYTES: usize = 4 << 30;

/// What the server needs besides the controller.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub token: Token,
    /// Where uploaded packages are kept, named by digest.
    pub uploads: PathBuf,
}

struct Shared<A: AgentApi> {
    controller: Controller<A>,
    uploads: PathBuf,
}

/// The management API's routes.
pub fn router<A: AgentApi>(controller: Controller<A>, config: ServerConfig) -> Router {
    let shared = Arc::new(Shared {
        controller,
        uploads: config.uploads,
    });
    let token = Arc::new(config.token);
    Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/services", get(services::<A>))
        .route("/v1/services/{service}", get(service::<A>))
        .route("/v1/services/{service}/swap", post(swap_deployment::<A>))
        .route(
            "/v1/services/{service}/deployments/{slot}",
            put(create_deployment::<A>)
                .get(get_deployment::<A>)
                .delete(delete_deployment::<A>),
        )
        .route(
            "/v1/services/{service}/deployments/{slot}/upgrade",
            post(upgrade_deployment::<A>),
        )
        .route(
            "/v1/services/{service}/deployments/{slot}/configuration",
            post(change_configuration::<A>).get(get_configuration::<A>),
        )
        .route(
            "/v1/services/{service}/deployments/{slot}/status",
            post(update_deployment_status::<A>),
        )
        .route(
            "/v1/services/{service}/deployments/{slot}/walk",
            post(walk_upgrade_domain::<A>),
        )
        .route(
            "/v1/services/{service}/deployments/{slot}/rollback",
            post(rollback_upgrade::<A>),
        )
        .route(
            "/v1/services/{service}/deployments/{slot}/events",
            get(deployment_events::<A>),
        )
        .route(
            "/v1/packages",
            post(upload_package::<A>).layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES)),
        )
        .route("/v1/operations", get(operations::<A>))
        .route("/v1/operations/{id}", get(operation::<A>))
        .route(
            "/v1/services/{service}/deployments/{slot}/roleinstances/{instance}/logs",
            get(logs::<A>),
        )
        .route(
            "/v1/services/{service}/deployments/{slot}/roleinstances/{instance}/reboot",
            post(reboot_role_instance::<A>),
        )
        .route(
            "/v1/services/{service}/deployments/{slot}/roleinstances/{instance}/reimage",
            post(reimage_role_instance::<A>),
        )
        .route(
            "/v1/services/{service}/deployments/{slot}/roleinstances/delete",
            post(delete_role_instances::<A>),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(move |req, next| {
            authenticate(token.clone(), req, next)
        }))
        .with_state(shared)
}

type Shared_<A> = State<Arc<Shared<A>>>;

/// An error answer: status, Azure-style code and a sentence.
#[derive(Debug)]
pub struct ApiFailure {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiFailure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiFailure {
        ApiFailure {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
}

impl From<FabricError> for ApiFailure {
    fn from(e: FabricError) -> ApiFailure {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = match status.as_u16() {
            400 => "BadRequest",
            404 => "ResourceNotFound",
            409 => "ConflictError",
            503 => "ServiceUnavailable",
            _ => "InternalError",
        };
        ApiFailure::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

async fn authenticate(token: Arc<Token>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(secret) if token.matches(secret.trim()) => next.run(req).await,
        Some(_) => ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "the bearer token does not match this fabric's token",
        )
        .into_response(),
        None => ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "every request needs `Authorization: Bearer <token>` (the token is in the fabric's state directory, file `token`)",
        )
        .into_response(),
    }
}

async fn not_found(req: Request) -> ApiFailure {
    ApiFailure::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "no route {} {} (see /v1/openapi.json)",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn services<A: AgentApi>(State(s): Shared_<A>) -> Response {
    Json(s.controller.services()).into_response()
}

async fn service<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiFailure> {
    s.controller
        .services()
        .into_iter()
        .find(|v| v.name == name)
        .map(|v| Json(v).into_response())
        .ok_or_else(|| {
            ApiFailure::new(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("no service `{name}`"),
            )
        })
}

fn parse_slot(slot: &str) -> Result<Slot, ApiFailure> {
    match slot {
        "production" => Ok(Slot::Production),
        "staging" => Ok(Slot::Staging),
        other => Err(FabricError::BadSlot {
            slot: other.to_owned(),
        }
        .into()),
    }
}

async fn get_deployment<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    s.controller
        .services()
        .into_iter()
        .filter(|v| v.name == service)
        .flat_map(|v| v.deployments)
        .find(|d| d.slot == slot)
        .map(|d| Json(d).into_response())
        .ok_or_else(|| FabricError::NoDeployment { service, slot }.into())
}

fn accepted(operation_id: String) -> Response {
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            operation_id: operation_id.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&operation_id) {
        response.headers_mut().insert("x-ms-request-id", v);
    }
    response
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn upload_path(uploads: &Path, digest: &str) -> PathBuf {
    uploads.join(format!("{digest}.cspkg"))
}

/// The file of a package uploaded with `POST /v1/packages`, named by its
/// digest (`sha256:` prefix optional).
fn uploaded_package(uploads: &Path, named: &str) -> Result<PathBuf, ApiFailure> {
    let digest = named.trim_start_matches("sha256:");
    let package = upload_path(uploads, digest);
    if !is_digest(digest) || !package.is_file() {
        return Err(ApiFailure::bad_request(format!(
            "no uploaded package with digest `{named}`: upload it first with POST /v1/packages"
        )));
    }
    Ok(package)
}

async fn create_deployment<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
    body: Result<Json<CreateDeployment>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    let Json(body) = body.map_err(|e| ApiFailure::bad_request(e.body_text()))?;
    let package = uploaded_package(&s.uploads, &body.package)?;
    let id = s
        .controller
        .deploy(DeployRequest {
            service,
            slot,
            package,
            configuration: body.configuration.into_bytes(),
            label: body.label.unwrap_or_default(),
        })
        .await?;
    Ok(accepted(id))
}

async fn delete_deployment<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    let id = s.controller.delete_deployment(&service, slot).await?;
    Ok(accepted(id))
}

/// `POST .../upgrade` body: Azure's Upgrade Deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeDeployment {
    /// The digest of a package uploaded with `POST /v1/packages`.
    pub package: String,
    /// The new service configuration (`.cscfg`) text.
    pub configuration: String,
    pub mode: UpgradeMode,
    /// Upgrade only this role.
    #[serde(default)]
    pub role: Option<String>,
    /// Restore the upgrade domain whose health gate fails.
    #[serde(default)]
    pub auto_rollback: bool,
    /// Answer with the plan (200) instead of upgrading.
    #[serde(default)]
    pub plan: bool,
    /// The fabric's default gate when absent.
    #[serde(default)]
    pub gate: Option<HealthGate>,
}

/// `POST .../configuration` body: Azure's Change Deployment Configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeConfiguration {
    /// The new service configuration (`.cscfg`) text.
    pub configuration: String,
    #[serde(default = "auto")]
    pub mode: UpgradeMode,
    /// Restore the upgrade domain whose health gate fails.
    #[serde(default)]
    pub auto_rollback: bool,
    /// Answer with the plan (200) instead of changing anything.
    #[serde(default)]
    pub plan: bool,
    /// The fabric's default gate when absent.
    #[serde(default)]
    pub gate: Option<HealthGate>,
}

fn auto() -> UpgradeMode {
    UpgradeMode::Auto
}

async fn change_configuration<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    let body: ChangeConfiguration = json_body(&body)?;
    let req = ChangeConfigurationRequest {
        service,
        slot,
        configuration: body.configuration.into_bytes(),
        mode: body.mode,
        auto_rollback: body.auto_rollback,
        gate: body.gate,
    };
    if body.plan {
        let plan = s.controller.plan_configuration_change(req).await?;
        return Ok(Json(plan).into_response());
    }
    Ok(accepted(s.controller.change_configuration(req).await?))
}

/// `POST .../walk` body: Azure's Walk Upgrade Domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalkUpgradeDomain {
    pub upgrade_domain: u32,
}

/// Reads a JSON body whatever its content type (the CLI's client posts
/// bytes); an empty body is `{}`.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiFailure> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiFailure::bad_request(format!("invalid request body: {e}")))
}

async fn upgrade_deployment<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    let body: UpgradeDeployment = json_body(&body)?;
    let package = uploaded_package(&s.uploads, &body.package)?;
    let req = UpgradeRequest {
        service,
        slot,
        package,
        configuration: body.configuration.into_bytes(),
        mode: body.mode,
        role: body.role,
        auto_rollback: body.auto_rollback,
        gate: body.gate,
    };
    if body.plan {
        let plan = s.controller.plan_upgrade(&req).await?;
        return Ok(Json(plan).into_response());
    }
    Ok(accepted(s.controller.upgrade(req).await?))
}

async fn walk_upgrade_domain<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    let body: WalkUpgradeDomain = json_body(&body)?;
    let id = s
        .controller
        .walk(&service, slot, body.upgrade_domain)
        .await?;
    Ok(accepted(id))
}

async fn reboot_role_instance<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot, instance)): UrlPath<(String, String, String)>,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    Ok(accepted(
        s.controller.reboot(&service, slot, &instance).await?,
    ))
}

async fn reimage_role_instance<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot, instance)): UrlPath<(String, String, String)>,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    Ok(accepted(
        s.controller.reimage(&service, slot, &instance).await?,
    ))
}

/// `POST .../roleinstances/delete` body: Azure's Delete Role Instances.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRoleInstances {
    /// The role instances to remove, e.g. `Web_IN_3`.
    pub names: Vec<String>,
}

async fn delete_role_instances<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    let body: DeleteRoleInstances = json_body(&body)?;
    Ok(accepted(
        s.controller
            .delete_instances(&service, slot, &body.names)
            .await?,
    ))
}

/// `POST .../status` body: Azure's Update Deployment Status.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDeploymentStatus {
    /// `Suspended` or `Running`.
    pub status: DeploymentStatus,
}

async fn update_deployment_status<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    let body: UpdateDeploymentStatus = json_body(&body)?;
    Ok(accepted(
        s.controller
            .update_status(&service, slot, body.status)
            .await?,
    ))
}

async fn get_configuration<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    let text = s.controller.configuration(&service, slot)?;
    Ok((
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        text,
    )
        .into_response())
}

async fn swap_deployment<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath(service): UrlPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    // The body is required, as in Azure: a body-less swap could not tell a
    // retry from a second swap, and a retry would swap back.
    let request: weft_fabric::view::SwapRequest = json_body(&body)?;
    Ok(accepted(s.controller.swap(&service, &request).await?))
}

async fn rollback_upgrade<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    Ok(accepted(s.controller.rollback(&service, slot).await?))
}

#[derive(Debug, Deserialize)]
struct EventParams {
    after: Option<u64>,
}

async fn deployment_events<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot)): UrlPath<(String, String)>,
    params: Result<Query<EventParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiFailure> {
    let slot = parse_slot(&slot)?;
    let Query(params) = params.map_err(|e| ApiFailure::bad_request(e.body_text()))?;
    let events: Vec<_> = s
        .controller
        .events(&service, slot)
        .into_iter()
        .filter(|e| params.after.is_none_or(|after| e.seq > after))
        .collect();
    Ok(Json(events).into_response())
}

/// Streams the body to a temporary file beside the uploads, verifies it as a
/// package, and keeps it under its digest. A damaged package is refused and
/// nothing is kept.
async fn upload_package<A: AgentApi>(
    State(s): Shared_<A>,
    body: Body,
) -> Result<Response, ApiFailure> {
    let internal = |what: &str, e: std::io::Error| {
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("failed to {what}: {e}"),
        )
    };
    tokio::fs::create_dir_all(&s.uploads)
        .await
        .map_err(|e| internal("create the upload directory", e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(&s.uploads)
        .map_err(|e| internal("create an upload file", e))?;
    let (std_file, tmp_path) = tmp.into_parts();
    let mut file = tokio::fs::File::from_std(std_file);
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiFailure::bad_request(format!("failed to receive the package: {e}")))?;
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| internal("store the upload", e))?;
    }
    file.flush()
        .await
        .map_err(|e| internal("store the upload", e))?;
    drop(file);
    let uploads = s.uploads.clone();
    let checked = tokio::task::spawn_blocking(move || -> Result<String, ApiFailure> {
        let bad = |m: String| ApiFailure::bad_request(m);
        let mut package = weft_package::Package::open(&tmp_path)
            .map_err(|e| bad(format!("the upload is not a valid package: {e}")))?;
        let report = package.verify();
        if !report.is_ok() {
            let findings: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
            return Err(bad(format!(
                "the uploaded package is damaged: {}",
                findings.join("; ")
            )));
        }
        let digest = package.digest().to_owned();
        drop(package);
        let target = upload_path(&uploads, &digest);
        tmp_path
            .persist(&target)
            .map_err(|e| internal("keep the upload", e.error))?;
        Ok(digest)
    })
    .await
    .map_err(|e| internal("verify the upload", std::io::Error::other(e.to_string())))??;
    Ok((
        StatusCode::CREATED,
        Json(PackageUploaded {
            digest: checked,
            size,
        }),
    )
        .into_response())
}

async fn operations<A: AgentApi>(State(s): Shared_<A>) -> Response {
    Json(s.controller.operations()).into_response()
}

async fn operation<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiFailure> {
    s.controller
        .operation(&id)
        .map(|v| Json(v).into_response())
        .ok_or_else(|| {
            ApiFailure::new(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("no operation `{id}`"),
            )
        })
}

#[derive(Debug, Deserialize)]
struct LogParams {
    stream: Option<String>,
    tail: Option<usize>,
    after: Option<u64>,
}

async fn logs<A: AgentApi>(
    State(s): Shared_<A>,
    UrlPath((service, slot, instance)): UrlPath<(String, String, String)>,
    params: Result<Query<LogParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiFailure> {
    let Query(params) = params.map_err(|e| ApiFailure::bad_request(e.body_text()))?;
    let stream = match params.stream.as_deref() {
        None | Some("both") => LogStream::Both,
        Some("stdout") => LogStream::Stdout,
        Some("stderr") => LogStream::Stderr,
        Some(other) => {
            return Err(ApiFailure::bad_request(format!(
                "invalid stream `{other}`: expected stdout, stderr or both"
            )));
        }
    };
    let page = s
        .controller
        .logs(
            &service,
            parse_slot(&slot)?,
            &instance,
            LogQuery {
                stream,
                tail: params.tail,
                after: params.after,
            },
        )
        .await?;
    Ok(Json(page).into_response())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every route the router serves is in the OpenAPI document, with the
    /// same methods, and nothing else is.
    #[test]
    fn the_openapi_document_describes_exactly_the_routes() {
        let source = include_str!("server.rs");
        let router =
            &source[source.find("Router::new()").unwrap()..source.find(".fallback(").unwrap()];
        let mut served = BTreeSet::new();
        for chunk in router.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).unwrap();
            for method in ["get", "put", "post", "delete"] {
                if chunk.contains(&format!("{method}(")) {
                    served.insert((path.to_owned(), method.to_owned()));
                }
            }
        }
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.insert((path.clone(), method.clone()));
            }
        }
        assert_eq!(served, documented);
        assert!(served.len() >= 9, "{served:?}");
    }
}
