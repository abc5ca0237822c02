use std::path::PathBuf;

use crate::Slot;

#[derive(Debug, thiserror::Error)]
pub enum FabricError {
    #[error(
        "invalid service name `{name}`: use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen"
    )]
    BadServiceName { name: String },
    #[error("invalid deployment slot `{slot}`: expected production or staging")]
    BadSlot { slot: String },
    #[error("failed to read package {}: {source}", path.display())]
    Package {
        path: PathBuf,
        #[source]
        source: weft_package::PackageError,
    },
    #[error("package {} is damaged: {problems}", path.display())]
    PackageDamaged { path: PathBuf, problems: String },
    /// The definition in the package and the configuration do not make a
    /// runnable model; `diagnostics` is the rendered text (file:line:col).
    #[error("the service model is invalid:\n{diagnostics}")]
    InvalidModel { diagnostics: String },
    #[error("the package has no approot for role `{role}` of its service definition")]
    MissingRole { role: String },
    #[error(
        "slot {slot} of service `{service}` already holds deployment {deployment_id}; delete it first"
    )]
    SlotOccupied {
        service: String,
        slot: Slot,
        deployment_id: String,
    },
    #[error("service `{service}` has no deployment in slot {slot}")]
    NoDeployment { service: String, slot: Slot },
    #[error("deployment {deployment_id} is busy with operation {operation}")]
    Busy {
        deployment_id: String,
        operation: String,
    },
    #[error(
        "deployment {deployment_id} is being upgraded (operation {operation}, {state}): {hint}"
    )]
    UpgradeInProgress {
        deployment_id: String,
        operation: String,
        state: String,
        hint: &'static str,
    },
    #[error("the upgrade cannot be done in place: {}", reasons.join("; "))]
    UpgradeRefused { reasons: Vec<String> },
    #[error("cannot swap the deployments of service `{service}`: {}", reasons.join("; "))]
    SwapRefused {
        service: String,
        reasons: Vec<String>,
    },
    #[error("cannot swap the deployments of service `{service}`: {reason}")]
    SwapMismatch { service: String, reason: String },
    #[error("deployment {deployment_id} is {status}: {hint}")]
    NotRunning {
        deployment_id: String,
        status: String,
        hint: String,
    },
    #[error(
        "deployment {deployment_id} has no configuration text kept (it was created before weft kept it, or an edit could not be made in place)"
    )]
    NoConfiguration { deployment_id: String },
    #[error("invalid deployment status `{status}`: expected Running or Suspended")]
    BadStatus { status: String },
    #[error("cannot delete role instances of deployment {deployment_id}: {reason}")]
    DeleteInstancesRefused {
        deployment_id: String,
        reason: String,
    },
    #[error("deployment {deployment_id} has no upgrade in progress")]
    NoUpgrade { deployment_id: String },
    #[error("cannot walk upgrade domain {requested}: {reason}")]
    WalkRefused { requested: u32, reason: String },
    #[error("the {slot} deployment of service `{service}` has no role instance `{instance}`")]
    NoInstance {
        instance: String,
        service: String,
        slot: Slot,
    },
    #[error("failed to {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] weft_store::StoreError),
    #[error("state store key `{key}` holds an unreadable record: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("agent failed to {what}: {message}")]
    Agent { what: &'static str, message: String },
    #[error("failed to bind VIP for endpoint {endpoint}: {source}")]
    Vip {
        endpoint: String,
        #[source]
        source: weft_lb::LbError,
    },
    #[error("the controller is shut down")]
    ShutDown,
    #[error("internal error while trying to {what}: {message}")]
    Internal { what: &'static str, message: String },
}

impl FabricError {
    /// The HTTP status a management API answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            FabricError::BadServiceName { .. }
            | FabricError::BadSlot { .. }
            | FabricError::Package { .. }
            | FabricError::PackageDamaged { .. }
            | FabricError::InvalidModel { .. }
            | FabricError::MissingRole { .. }
            | FabricError::BadStatus { .. }
            | FabricError::UpgradeRefused { .. } => 400,
            FabricError::NoDeployment { .. }
            | FabricError::NoInstance { .. }
            | FabricError::NoConfiguration { .. } => 404,
            FabricError::SlotOccupied { .. }
            | FabricError::Busy { .. }
            | FabricError::UpgradeInProgress { .. }
            | FabricError::NoUpgrade { .. }
            | FabricError::SwapRefused { .. }
            | FabricError::SwapMismatch { .. }
            | FabricError::NotRunning { .. }
            | FabricError::DeleteInstancesRefused { .. }
            | FabricError::WalkRefused { .. } => 409,
            FabricError::ShutDown => 503,
            FabricError::Io { .. }
            | FabricError::Store(_)
            | FabricError::Corrupt { .. }
            | FabricError::Agent { .. }
            | FabricError::Vip { .. }
            | FabricError::Internal { .. } => 500,
        }
    }
}
