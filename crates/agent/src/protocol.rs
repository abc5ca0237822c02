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

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything an agent needs to run one role instance. Computed by the
/// controller from the service model; the agent never reads a csdef.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// The deployment's id (32 lower-case hex digits, as Azure's).
    pub deployment_id: String,
    /// The role's name, e.g. `Web`.
    pub role: String,
    /// `<Role>_IN_<n>`, unique across the fabric.
    pub instance_id: String,
    pub update_domain: u32,
    pub fault_domain: u32,
    /// Bumped by the controller whenever the instance must be recycled
    /// (new package, new settings, explicit reboot). A changed incarnation
    /// stops the running process and starts the new spec.
    pub incarnation: u64,
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
    /// From `vmsize`.
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
    pub cores: Option<u32>,
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
    /// Why the instance is not ready, in words (a failed startup task and its
    /// exit code, the last crash, the failing probe).
    pub message: Option<String>,
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
    /// recycled. Returns once the change is accepted, not when it is done.
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

    /// Captured output of an instance.
    fn logs(
        &self,
        instance_id: &str,
        query: LogQuery,
    ) -> impl Future<Output = Result<LogPage, Self::Error>> + Send;

    /// Stops every instance (as if `apply(vec![])`) and waits until no
    /// process of any instance remains.
    fn shutdown(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}
