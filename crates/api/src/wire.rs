//! Bodies of the management API that are not the controller's views.

use serde::{Deserialize, Serialize};

/// Every error answer: a stable code and a sentence (Azure's `Error`
/// element, as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// `POST /v1/packages` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageUploaded {
    /// The package digest, to name it in a deployment.
    pub digest: String,
    pub size: u64,
}

/// `PUT /v1/services/{service}/deployments/{slot}` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDeployment {
    /// The digest of a package uploaded with `POST /v1/packages`.
    pub package: String,
    /// The service configuration (`.cscfg`) text.
    pub configuration: String,
    #[serde(default)]
    pub label: Option<String>,
}

/// The answer to every asynchronous request (202 Accepted).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// Poll `GET /v1/operations/{operationId}`.
    pub operation_id: String,
}
