//! What the controller persists: one record per deployment and per
//! operation, as JSON under fixed keys. Instance status is never persisted
//! (the agent reports it).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use weft_store::StateStore;

use crate::spec::DeploymentPlan;
use crate::upgrade::{ChangeKind, HealthGate, UpgradeMode};
use crate::view::{DeploymentStatus, OperationKind, OperationStatus, OperationView};
use crate::{FabricError, Slot};

pub const DEPLOYMENTS: &str = "/weft/deployments/";
pub const OPERATIONS: &str = "/weft/operations/";

pub fn deployment_key(service: &str, slot: Slot) -> String {
    format!("{DEPLOYMENTS}{service}/{slot}")
}

pub fn operation_key(id: &str) -> String {
    format!("{OPERATIONS}{id}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub id: String,
    pub service: String,
    pub slot: Slot,
    pub label: String,
    pub status: DeploymentStatus,
    pub package_digest: String,
    pub created_ms: u64,
    pub plan: DeploymentPlan,
    /// The bound port of each VIP in `plan.vips` (same order) once bound;
    /// a restarted controller binds the same ports again.
    pub vip_ports: Vec<Option<u16>>,
    /// The operation working on this deployment.
    pub operation: Option<String>,
    /// Things the user should know about it (a VIP port remapped when the
    /// controller restarted).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The upgrade under way (or stopped by a failed health gate).
    #[serde(default)]
    pub upgrade: Option<UpgradeRecord>,
    /// The service configuration (`.cscfg`) text the deployment runs, as
    /// Azure keeps it; `None` for deployments recorded before weft kept it.
    #[serde(default)]
    pub configuration: Option<String>,
}

/// An upgrade's persisted progress: every step commits here, so a
/// restarted controller continues where the killed one was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeRecord {
    /// The Upgrade Deployment (or Change Deployment Configuration)
    /// operation.
    pub operation: String,
    /// An upgrade or a configuration change.
    #[serde(default)]
    pub kind: ChangeKind,
    pub mode: UpgradeMode,
    pub role: Option<String>,
    pub auto_rollback: bool,
    pub gate: HealthGate,
    pub started_ms: u64,
    /// The deployment before the upgrade, and its package.
    pub from: DeploymentPlan,
    pub from_digest: String,
    /// The deployment after it.
    pub to: DeploymentPlan,
    pub to_digest: String,
    /// The configuration texts before and after it.
    #[serde(default)]
    pub from_configuration: Option<String>,
    #[serde(default)]
    pub to_configuration: Option<String>,
    /// The upgrade domains each step walks.
    pub steps: Vec<Vec<u32>>,
    /// Steps walked and healthy.
    pub done: usize,
    /// Step `done` has its new specs (it is being walked).
    pub during: bool,
    /// Steps that may be walked (manual mode: those asked for).
    pub allowed: usize,
    /// The Walk Upgrade Domain operation walking step `done` (manual).
    pub walk_operation: Option<String>,
    /// Why the upgrade stopped (a failed health gate without rollback).
    pub failed: Option<String>,
    pub rollback: Option<RollbackRecord>,
}

/// Rolling an upgrade back: the steps already touched, walked in reverse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRecord {
    /// The operation that ends when the rollback does.
    pub operation: String,
    pub steps: Vec<Vec<u32>>,
    pub done: usize,
    /// The health gate failure that started it (auto-rollback).
    pub reason: Option<String>,
}

impl DeploymentRecord {
    pub fn key(&self) -> String {
        deployment_key(&self.service, self.slot)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    pub id: String,
    pub kind: OperationKind,
    pub status: OperationStatus,
    pub service: String,
    pub slot: Slot,
    pub deployment_id: String,
    pub error: Option<String>,
    pub messages: Vec<String>,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    /// The role instances an instance operation works on (rebooted,
    /// reimaged, deleted), so a resumed one waits for those only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
}

impl OperationRecord {
    pub fn key(&self) -> String {
        operation_key(&self.id)
    }

    pub fn view(&self) -> OperationView {
        OperationView {
            id: self.id.clone(),
            kind: self.kind,
            status: self.status,
            service: self.service.clone(),
            slot: self.slot,
            deployment_id: self.deployment_id.clone(),
            error: self.error.clone(),
            messages: self.messages.clone(),
            started: rfc3339(self.started_ms),
            ended: self.ended_ms.map(rfc3339),
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialize")
}

pub fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, FabricError> {
    serde_json::from_slice(bytes).map_err(|source| FabricError::Corrupt {
        key: key.to_owned(),
        source,
    })
}

/// Every record under `prefix`, with its mod revision.
pub fn load_all<T: for<'de> Deserialize<'de>>(
    store: &dyn StateStore,
    prefix: &str,
) -> Result<Vec<T>, FabricError> {
    let (kvs, _) = store.range(prefix)?;
    kvs.iter().map(|kv| decode(&kv.key, &kv.value)).collect()
}
