//! The controller ↔ agent interface.
//!
//! The controller tells an agent, declaratively, the whole set of role
//! instances that must run on its host ([`AgentApi::apply`]); the agent
//! prepares, starts, supervises, probes and stops instances to match, and
//! reports what it actually has ([`InstanceReport`]). Status flows back only
//! as reports: the agent never calls the controller.
//!
//! On one host the controller holds the agent in-process. When the fabric
//! spans hosts the same messages travel as JSON (every type here is serde):
//! `PUT /v1/instances` carries a `Vec<InstanceSpec>`, `GET /v1/reports?watch`
//! streams `Vec<InstanceReport>` snapshots, `PUT /v1/topology/{deployment}`
//! carries a [`weft_runtime::protocol::Topology`].
//!
//! # Instance keys
//!
//! Azure names role instances per deployment: a production and a staging
//! deployment of one service both have a `Web_IN_0`. The agent therefore keys
//! every instance by `(deployment_id, instance_id)`, and so do its instance
//! directories, cgroups, log books and runtime sockets. Only the same pair
//! twice in one desired set is a duplicate.
//!
//! # Lifecycle requests carried by a spec
//!
//! | the controller changes | the agent |
//! |---|---|
//! | `incarnation` (Reboot Role Instance, upgrade) | Stopping, SIGTERM, grace, kill; cleans local storage with `cleanOnRoleRecycle`; starts the new spec (startup tasks again) |
//! | `reimage` (and `incarnation`) (Reimage Role Instance) | stops it, deletes ALL its local storage, unpacks and verifies a fresh private approot, starts it |
//! | `stopped: true` (Suspended deployment, stopped instance) | stops it and reports `StoppedVM`; directory, local storage and ports are kept |
//! | `stopped: false` again | starts it (startup tasks again, as on a reboot) |
//! | `settings` only, same `incarnation` | raises Changing; if any listener cancels, recycles the instance with the new settings (reported like a reboot, not a crash); else Changed, the process keeps running |
//!
//! [`InstanceReport::settings_digest`] says which settings the running
//! process has, so the controller can wait until a change has landed.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Everything an agent needs to run one role instance. Computed by the
/// controller from the service model; the agent never reads a csdef.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// The deployment's id (32 lower-case hex digits, as Azure's).
    pub deployment_id: String,
    /// The role's name, e.g. `Web`.
    pub role: String,
    /// `<Role>_IN_<n>`, unique within its deployment (the agent keys
    /// instances by `(deployment_id, instance_id)`).
    pub instance_id: String,
    pub update_domain: u32,
    pub fault_domain: u32,
    /// Bumped by the controller whenever the instance must be recycled
    /// (new package, new settings, explicit reboot). A changed incarnation
    /// stops the running process and starts the new spec.
    pub incarnation: u64,
    /// Bumped (together with `incarnation`) for Reimage Role Instance: the
    /// agent stops the instance, deletes all its local storage (whatever
    /// `cleanOnRoleRecycle` says), gives it a freshly unpacked and verified
    /// approot of its own, and starts it. A plain `incarnation` bump is a
    /// reboot: local storage with `cleanOnRoleRecycle="false"` is kept.
    #[serde(default)]
    pub reimage: u64,
    /// The instance is kept but must not run (Azure's Suspended deployment,
    /// a stopped instance): Stopping event, SIGTERM, grace, kill, then
    /// reported `StoppedVM`, not ready, no pid. Its directory, all its
    /// local storage and (when possible) its remapped ports are kept.
    /// Clearing it starts the instance again, startup tasks included.
    #[serde(default)]
    pub stopped: bool,
    pub package: PackageRef,
    /// Startup tasks in csdef order.
    pub startup: Vec<StartupTaskSpec>,
    /// The `ProgramEntryPoint` command line, run with `/bin/sh -c` in the
    /// approot. `None` only for roles the agent cannot run.
    pub entry_point: Option<String>,
    /// `ProgramEntryPoint setReadyOnProcessStart`.
    pub set_ready_on_process_start: bool,
    /// `Runtime/Environment` variables, in csdef order.
    pub environment: Vec<EnvVar>,
    /// Configuration settings from the cscfg (name → value).
    pub settings: BTreeMap<String, String>,
    pub local_resources: Vec<LocalResourceSpec>,
    pub endpoints: Vec<EndpointSpec>,
    /// `Runtime executionContext="elevated"`; limited runs unprivileged
    /// where the driver can.
    pub elevated: bool,
    /// From `vmsize`: the CPU and memory everything the instance runs
    /// (entry point and startup tasks together) is limited to, through
    /// cgroups where the host has the controllers (see the crate docs).
    pub limits: ResourceLimits,
}

/// A package the agent can read: a local path on one host (the controller
/// keeps it under its state directory), a URL later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRef {
    pub path: PathBuf,
    /// The package digest (`weft_package::Package::digest`); approots are
    /// unpacked once per (digest, role) and shared read-only.
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartupTaskSpec {
    pub command_line: String,
    pub task_type: TaskType,
    pub elevated: bool,
    pub environment: Vec<EnvVar>,
}

/// Azure's startup task types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskType {
    /// Runs to completion before the next task; non-zero exit fails the start.
    Simple,
    /// Started and not waited for; does not keep the instance alive.
    Background,
    /// Started and not waited for; the instance does not stop until it exits.
    Foreground,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: EnvValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EnvValue {
    Literal(String),
    /// A `RoleInstanceValue xpath`, resolved by the agent when it starts the
    /// instance (see `weft_model::RoleInstanceXPath`).
    XPath(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalResourceSpec {
    pub name: String,
    pub size_mb: u64,
    pub clean_on_role_recycle: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    pub name: String,
    pub kind: EndpointKind,
    pub protocol: EndpointProtocol,
    /// The port the instance should listen on (`localPort`, else `port`);
    /// `None` for `*`. The agent may remap it (see [`InstanceReport::endpoints`]).
    pub local_port: Option<u16>,
    /// `ignoreRoleInstanceStatus`: the load balancer uses this endpoint
    /// while its probe (if any) passes, whatever the instance says (Busy,
    /// not yet Ready).
    #[serde(default)]
    pub ignore_role_instance_status: bool,
    /// The health probe named by the endpoint's `loadBalancerProbe`.
    pub probe: Option<ProbeSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndpointKind {
    Input,
    Internal,
    InstanceInput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndpointProtocol {
    Tcp,
    Http,
    Https,
    Udp,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSpec {
    /// `None` probes TCP connect; `Some(path)` expects `200 OK` over HTTP.
    pub http_path: Option<String>,
    /// The port to probe; the endpoint's (remapped) port when `None`.
    pub port: Option<u16>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// CPU cores: a CFS quota of `cores × 100 ms` per 100 ms period.
    pub cores: Option<u32>,
    /// Memory (and memory + swap) in MiB.
    pub memory_mb: Option<u64>,
}

/// Azure's `InstanceStatus` values that a process-backed instance can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InstanceStatus {
    RoleStateUnknown,
    CreatingRole,
    StartingRole,
    ReadyRole,
    BusyRole,
    StoppingRole,
    StoppedVM,
    RestartingRole,
    CyclingRole,
    FailedStartingRole,
    UnresponsiveRole,
}

/// What the agent actually has for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceReport {
    pub instance_id: String,
    pub deployment_id: String,
    pub role: String,
    /// The incarnation this report is about.
    pub incarnation: u64,
    pub status: InstanceStatus,
    /// True when the load balancer may send new connections: running, the
    /// endpoint probe (if any) passes, and not Busy (unless ignored).
    pub ready: bool,
    /// Endpoints the load balancer may use although `ready` is false: those
    /// with `ignoreRoleInstanceStatus` whose probe passes. When `ready` is
    /// true every endpoint may be used.
    #[serde(default)]
    pub ready_endpoints: BTreeSet<String>,
    /// The address each endpoint actually listens on, after remapping.
    pub endpoints: BTreeMap<String, SocketAddr>,
    /// The entry point's process id while it runs.
    pub pid: Option<u32>,
    /// Times the entry point was restarted since this incarnation started.
    pub restarts: u32,
    /// Why the instance is not ready, in words (a failed startup task, its
    /// exit code and the last lines it wrote, newline-separated; the last
    /// crash, with "out of memory" when its memory limit killed it; the
    /// failing probe).
    pub message: Option<String>,
    /// [`settings_digest`] of the settings the running process currently
    /// has: set when the entry point starts and after every Changed; a
    /// cancelled Changing recycles the instance, and the new process then
    /// reports the new digest. Empty while no process runs. A settings
    /// change has landed when `ready` and this equals
    /// `settings_digest(&spec.settings)`.
    #[serde(default)]
    pub settings_digest: String,
}

/// The digest of a set of configuration settings: lower-case hex SHA-256
/// of an unambiguous encoding (for each setting in name order, the name's
/// and the value's byte lengths as 8-byte little-endian integers, each
/// followed by its bytes). Equal maps, and only equal maps, give equal
/// digests.
pub fn settings_digest(settings: &BTreeMap<String, String>) -> String {
    let mut hash = Sha256::new();
    for (name, value) in settings {
        for part in [name, value] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
    }
    hex::encode(hash.finalize())
}

impl InstanceReport {
    /// Whether the load balancer may send new connections for `endpoint`.
    pub fn serves(&self, endpoint: &str) -> bool {
        self.ready || self.ready_endpoints.contains(endpoint)
    }
}

/// Which captured stream to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogStream {
    Stdout,
    Stderr,
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    pub stream: LogStream,
    /// Only the last `tail` lines; all that are kept when `None`.
    pub tail: Option<usize>,
    /// Only lines after this cursor (from a previous [`LogPage::cursor`]),
    /// for `weft logs -f`; `tail` is ignored when set.
    pub after: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub stream: LogStream,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    /// Pass back as [`LogQuery::after`] to get only newer lines.
    pub cursor: u64,
}

/// One agent, as the controller sees it. Implemented in-process by
/// [`crate::Agent`] and, later, by a client of the same messages over HTTP.
pub trait AgentApi: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Replaces the desired set of instances on this host. New instances are
    /// prepared and started, missing ones stopped (Stopping event, SIGTERM,
    /// grace, SIGKILL of everything they started), changed incarnations
    /// recycled, `stopped` / `reimage` / settings changes applied as the
    /// module documentation says. Instances are keyed by `(deployment_id,
    /// instance_id)`; the same pair twice is refused whole
    /// (`DuplicateInstance`). Returns once the change is accepted, not when
    /// it is done.
    fn apply(
        &self,
        desired: Vec<InstanceSpec>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The latest report of every instance the agent has, updated on every
    /// change.
    fn reports(&self) -> tokio::sync::watch::Receiver<Vec<InstanceReport>>;

    /// Every instance's endpoints of a deployment, served to its instances
    /// by their runtime endpoint.
    fn set_topology(
        &self,
        deployment_id: &str,
        topology: weft_runtime::protocol::Topology,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Captured output of instance `instance_id` of deployment
    /// `deployment_id` (kept after the instance is removed).
    fn logs(
        &self,
        deployment_id: &str,
        instance_id: &str,
        query: LogQuery,
    ) -> impl Future<Output = Result<LogPage, Self::Error>> + Send;

    /// Stops every instance (as if `apply(vec![])`) and waits until no
    /// process of any instance remains.
    fn shutdown(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn settings_digest_is_stable_and_unambiguous() {
        // The empty set hashes nothing.
        assert_eq!(
            settings_digest(&BTreeMap::new()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let greeting = map(&[("Greeting", "hello")]);
        assert_eq!(
            settings_digest(&greeting),
            settings_digest(&greeting.clone())
        );
        assert_eq!(settings_digest(&greeting).len(), 64);
        // Moving bytes between name and value, or between settings, changes it.
        let pairs = [
            map(&[("ab", "c")]),
            map(&[("a", "bc")]),
            map(&[("a", "b"), ("c", "")]),
            map(&[("a", ""), ("bc", "")]),
            map(&[("a", "b\0c")]),
            map(&[("Greeting", "hello")]),
            map(&[("Greeting", "hello"), ("Generation", "1")]),
            map(&[("Greeting", "hello"), ("Generation", "2")]),
        ];
        let digests: std::collections::BTreeSet<String> =
            pairs.iter().map(settings_digest).collect();
        assert_eq!(digests.len(), pairs.len(), "every map has its own digest");
    }

    #[test]
    fn old_specs_and_reports_still_parse() {
        let spec: serde_json::Value = serde_json::json!({
            "deployment_id": "d", "role": "Web", "instance_id": "Web_IN_0",
            "update_domain": 0, "fault_domain": 0, "incarnation": 1,
            "package": {"path": "/p", "digest": "ab"}, "startup": [],
            "entry_point": null, "set_ready_on_process_start": true,
            "environment": [], "settings": {}, "local_resources": [],
            "endpoints": [], "elevated": false,
            "limits": {"cores": null, "memory_mb": null}
        });
        let spec: InstanceSpec = serde_json::from_value(spec).unwrap();
        assert_eq!((spec.reimage, spec.stopped), (0, false));
        let report: serde_json::Value = serde_json::json!({
            "instance_id": "Web_IN_0", "deployment_id": "d", "role": "Web",
            "incarnation": 1, "status": "ReadyRole", "ready": true,
            "endpoints": {}, "pid": 4, "restarts": 0, "message": null
        });
        let report: InstanceReport = serde_json::from_value(report).unwrap();
        assert_eq!(report.settings_digest, "");
    }
}
