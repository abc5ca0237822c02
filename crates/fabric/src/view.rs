//! What the management API shows (serialized as JSON, camelCase).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use weft_agent::protocol::{InstanceSpec, InstanceStatus};

use crate::Slot;
use crate::controller::{Live, Reports, report_for};
use crate::record::{self, UpgradeRecord};
use crate::upgrade::{ChangeKind, UpgradeMode};

/// The body of Azure's Swap Deployment: which deployments the caller saw in
/// the two slots. A swap whose names no longer match the slots (a retried
/// request after the first one swapped) is refused, so a swap never runs
/// twice by accident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapRequest {
    /// The id of the deployment in production; `None` (or absent) when the
    /// caller saw the production slot empty.
    #[serde(default)]
    pub production: Option<String>,
    /// The id of the deployment in staging, the one that goes to production.
    pub source_deployment: String,
}

/// Azure's Get Operation Status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    pub id: String,
    pub kind: OperationKind,
    pub status: OperationStatus,
    pub service: String,
    pub slot: Slot,
    pub deployment_id: String,
    /// Why it failed, in words (the failing instance and its message).
    pub error: Option<String>,
    /// Things the user should know that did not fail it (a VIP port that was
    /// taken and remapped).
    pub messages: Vec<String>,
    /// RFC 3339, UTC.
    pub started: String,
    pub ended: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OperationKind {
    CreateDeployment,
    DeleteDeployment,
    UpgradeDeployment,
    ChangeDeploymentConfiguration,
    WalkUpgradeDomain,
    RollbackUpdateOrUpgrade,
    /// Swap Deployment: production and staging exchange their VIPs.
    SwapDeployment,
    RebootRoleInstance,
    ReimageRoleInstance,
    DeleteRoleInstances,
    /// Update Deployment Status: suspend (Suspended) or start (Running).
    UpdateDeploymentStatus,
}

/// Azure's operation `Status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationStatus {
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    pub name: String,
    pub deployments: Vec<DeploymentView>,
}

/// Azure's deployment `Status` values that weft uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentStatus {
    /// Being created: instances are starting.
    Deploying,
    Running,
    /// Being suspended: leaving the VIPs, then stopping.
    Suspending,
    /// Every instance stopped (`StoppedVM`), its local storage kept; the
    /// VIPs stay bound with no backend.
    Suspended,
    /// Being started again after a suspend.
    Starting,
    Deleting,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    /// 32 lower-case hex digits.
    pub id: String,
    pub slot: Slot,
    pub label: String,
    pub status: DeploymentStatus,
    pub package_digest: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// The deployment's public endpoints: one per input endpoint and one per
    /// instance for instance input endpoints.
    pub vips: Vec<VipView>,
    pub roles: Vec<RoleView>,
    /// Things the user should know that did not fail anything (a VIP port
    /// that was taken and remapped).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Azure's `UpgradeStatus`: present while an upgrade is under way or
    /// stopped.
    #[serde(default)]
    pub upgrade_status: Option<UpgradeStatus>,
}

/// Azure's `UpgradeStatus`, with what weft adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStatus {
    /// An upgrade, or a configuration change walked the same way.
    #[serde(default)]
    pub change: ChangeKind,
    pub upgrade_type: UpgradeMode,
    /// The upgrade domain being walked, or walked next (the first of the
    /// step's domains when simultaneous).
    pub current_upgrade_domain: u32,
    pub current_upgrade_domain_state: UpgradeDomainState,
    pub upgrade_domain_count: u32,
    /// Upgrade domains walked and healthy.
    pub walked: Vec<u32>,
    pub role: Option<String>,
    pub operation: String,
    pub from_package_digest: String,
    pub to_package_digest: String,
    /// Why it stopped (a failed health gate).
    pub failed: Option<String>,
    /// Walking back; the domains still to restore.
    pub rolling_back: bool,
    pub restoring: Vec<u32>,
}

/// Azure's `CurrentUpgradeDomainState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpgradeDomainState {
    Before,
    During,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VipView {
    pub role: String,
    pub endpoint: String,
    /// Set for an instance input endpoint's per-instance port.
    pub instance: Option<String>,
    /// Where clients connect.
    pub address: SocketAddr,
    /// The port the definition asked for; differs from `address`'s when it
    /// was taken and remapped.
    pub requested_port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    pub name: String,
    pub instance_count: u32,
    pub upgrade_domain_count: u32,
    pub instances: Vec<InstanceView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// `<Role>_IN_<n>`.
    pub id: String,
    /// `RoleStateUnknown` until the agent first reports the instance.
    pub status: InstanceStatus,
    /// In its VIPs' backend sets.
    pub ready: bool,
    pub upgrade_domain: u32,
    pub fault_domain: u32,
    /// Where each endpoint of the instance listens (after remapping).
    pub endpoints: BTreeMap<String, SocketAddr>,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub message: Option<String>,
}

// Building the views from the desired state and the latest reports.

pub(crate) fn deployment_view(live: &Live, reports: &Reports) -> DeploymentView {
    let r = &live.record;
    DeploymentView {
        id: r.id.clone(),
        slot: r.slot,
        label: r.label.clone(),
        status: r.status,
        package_digest: r.package_digest.clone(),
        created: record::rfc3339(r.created_ms),
        vips: r
            .plan
            .vips
            .iter()
            .zip(&live.vips)
            .filter_map(|(plan, vip)| {
                Some(VipView {
                    role: plan.role.clone(),
                    endpoint: plan.endpoint.clone(),
                    instance: plan.instance.clone(),
                    address: vip.as_ref()?.vip.local_addr(),
                    requested_port: plan.requested_port,
                    protocol: plan.protocol.clone(),
                })
            })
            .collect(),
        roles: r
            .plan
            .roles
            .iter()
            .map(|role| RoleView {
                name: role.name.clone(),
                instance_count: role.instances.len() as u32,
                upgrade_domain_count: role.upgrade_domain_count,
                instances: role
                    .instances
                    .iter()
                    .map(|spec| instance_view(spec, reports))
                    .collect(),
            })
            .collect(),
        notes: r.notes.clone(),
        upgrade_status: r.upgrade.as_ref().map(upgrade_status),
    }
}

fn upgrade_status(up: &UpgradeRecord) -> UpgradeStatus {
    let count = up.steps.iter().flatten().max().map_or(1, |m| m + 1);
    let (current, during) = match &up.rollback {
        Some(rb) => (rb.steps.get(rb.done), true),
        None => (up.steps.get(up.done), up.during),
    };
    UpgradeStatus {
        change: up.kind,
        upgrade_type: up.mode,
        current_upgrade_domain: current.and_then(|s| s.first().copied()).unwrap_or(count),
        current_upgrade_domain_state: if during {
            UpgradeDomainState::During
        } else {
            UpgradeDomainState::Before
        },
        upgrade_domain_count: count,
        walked: up.steps[..up.done.min(up.steps.len())]
            .iter()
            .flatten()
            .copied()
            .collect(),
        role: up.role.clone(),
        operation: up.operation.clone(),
        from_package_digest: up.from_digest.clone(),
        to_package_digest: up.to_digest.clone(),
        failed: up.failed.clone(),
        rolling_back: up.rollback.is_some(),
        restoring: up
            .rollback
            .as_ref()
            .map(|rb| {
                rb.steps[rb.done.min(rb.steps.len())..]
                    .iter()
                    .flatten()
                    .copied()
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn instance_view(spec: &InstanceSpec, reports: &Reports) -> InstanceView {
    let report = report_for(reports, spec);
    InstanceView {
        id: spec.instance_id.clone(),
        status: report.map_or(InstanceStatus::RoleStateUnknown, |r| r.status),
        ready: report.is_some_and(|r| r.ready && r.incarnation == spec.incarnation),
        upgrade_domain: spec.update_domain,
        fault_domain: spec.fault_domain,
        endpoints: report.map(|r| r.endpoints.clone()).unwrap_or_default(),
        pid: report.and_then(|r| r.pid),
        restarts: report.map_or(0, |r| r.restarts),
        message: report.and_then(|r| r.message.clone()),
    }
}
