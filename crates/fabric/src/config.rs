//! What the controller is configured with and what a deploy asks for.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An operation's request id (32 lower-case hex digits).
pub type OperationId = String;

#[derive(Debug, Clone)]
pub struct FabricConfig {
    /// Holds `packages/<digest>.cspkg` (the controller's copies).
    pub state_dir: PathBuf,
    /// The address VIPs listen on (127.0.0.1 on one host).
    pub vip_host: IpAddr,
    /// How long a leaving instance's open connections may take to finish.
    pub drain_timeout: Duration,
    /// Upgrade steps: how long the walked instances' open connections may
    /// finish before the instances are told to stop (which closes
    /// kept-alive connections gracefully); the rest may take until
    /// `drain_timeout`.
    pub drain_before_stop: Duration,
    /// A deploy fails when its instances are not all Ready by then.
    pub deploy_timeout: Duration,
    /// Fault domains instances are spread over (Azure's default is two).
    pub fault_domain_count: u32,
    /// Passed to every VIP.
    pub vip: weft_lb::VipConfig,
    /// The health gate of upgrades that do not bring their own.
    pub upgrade_gate: crate::upgrade::HealthGate,
}

impl FabricConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> FabricConfig {
        FabricConfig {
            state_dir: state_dir.into(),
            vip_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            drain_timeout: Duration::from_secs(30),
            drain_before_stop: Duration::from_secs(1),
            deploy_timeout: Duration::from_secs(300),
            fault_domain_count: 2,
            vip: weft_lb::VipConfig::default(),
            upgrade_gate: crate::upgrade::HealthGate::default(),
        }
    }
}

/// Azure's deployment slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Slot {
    Production,
    Staging,
}

impl Slot {
    /// `production` / `staging`, as in Azure's REST paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Production => "production",
            Slot::Staging => "staging",
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Slot {
    type Err = crate::FabricError;

    /// Case-insensitive `production` or `staging`.
    fn from_str(s: &str) -> Result<Slot, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "production" => Ok(Slot::Production),
            "staging" => Ok(Slot::Staging),
            _ => Err(crate::FabricError::BadSlot { slot: s.to_owned() }),
        }
    }
}

/// Azure's Create Deployment, for one host.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The cloud service's name: letters, digits and hyphens, 1 to 63.
    pub service: String,
    pub slot: Slot,
    /// A `.cspkg` built by `weft package`; the controller copies it.
    pub package: PathBuf,
    /// The `.cscfg` bytes.
    pub configuration: Vec<u8>,
    /// Shown in views; defaults to the service name when empty.
    pub label: String,
}

/// Azure's Upgrade Deployment, for one host.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    pub service: String,
    pub slot: Slot,
    /// The new `.cspkg`; the controller copies it.
    pub package: PathBuf,
    /// The new `.cscfg` bytes.
    pub configuration: Vec<u8>,
    pub mode: crate::upgrade::UpgradeMode,
    /// Upgrade only this role (Azure's `RoleToUpgrade`).
    pub role: Option<String>,
    /// Restore the upgrade domain whose health gate failed.
    pub auto_rollback: bool,
    /// The controller's [`FabricConfig::upgrade_gate`] when `None`.
    pub gate: Option<crate::upgrade::HealthGate>,
}

/// Azure's Change Deployment Configuration: the running package with a new
/// configuration. Changed settings reach running instances in place
/// (Changing / Changed on the runtime endpoint); a changed instance count
/// adds instances (scale out) or drains and removes them (scale in), upgrade
/// domain by upgrade domain.
#[derive(Debug, Clone)]
pub struct ChangeConfigurationRequest {
    pub service: String,
    pub slot: Slot,
    /// The new `.cscfg` bytes.
    pub configuration: Vec<u8>,
    pub mode: crate::upgrade::UpgradeMode,
    /// Restore the upgrade domain whose health gate fails.
    pub auto_rollback: bool,
    /// The controller's [`FabricConfig::upgrade_gate`] when `None`.
    pub gate: Option<crate::upgrade::HealthGate>,
}
