//! How an agent runs: where it keeps state and how it supervises.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// Whether instances get their own cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupMode {
    /// A cgroup v2 `weft-<hash>/<deployment>+<instance>` when a writable
    /// cgroup2 mount exists; process groups plus a `/proc` scan otherwise.
    /// vmsize limits through the v2 `cpu` / `memory` controllers, else
    /// through the cgroup v1 `cpu` / `memory` hierarchies, where present.
    #[default]
    Auto,
    /// Never use cgroups (process groups plus a `/proc` scan); instances
    /// run without vmsize limits.
    Off,
}

/// The agent's configuration. [`AgentConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Approots, instance directories, logs and runtime sockets live here.
    pub state_dir: PathBuf,
    /// Between the Stopping event + SIGTERM and the SIGKILL of everything
    /// an instance started.
    pub grace_period: Duration,
    /// A captured stream is rotated when its file reaches this size.
    pub log_rotate_bytes: u64,
    /// Rotated files kept per stream (`stdout.log.1` .. `stdout.log.N`).
    pub log_keep: usize,
    /// The delay before the second restart in a row; doubled for each
    /// further crash in [`AgentConfig::crash_window`]. The first restart
    /// is immediate.
    pub restart_backoff_base: Duration,
    /// The longest delay between restarts.
    pub restart_backoff_max: Duration,
    /// This many crashes within [`AgentConfig::crash_window`] make the
    /// instance `CyclingRole` (it keeps being restarted at the maximum
    /// backoff).
    pub cycling_crashes: u32,
    pub crash_window: Duration,
    /// The address instances listen on and endpoints are reported with.
    pub host_address: IpAddr,
    pub cgroup: CgroupMode,
    /// The user that instances with `executionContext="limited"` (every
    /// process of the instance whose spec is not `elevated`) run as when the
    /// agent runs as root, e.g. `nobody`. `None`: they run as the agent's
    /// own user. The state directory must then be traversable by that user.
    pub limited_user: Option<String>,
}

impl AgentConfig {
    /// The defaults: 10 s grace, 10 MiB × 5 log files, restarts backing off
    /// from 100 ms to 30 s, cycling after 5 crashes in 60 s, 127.0.0.1.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        AgentConfig {
            state_dir: state_dir.into(),
            grace_period: Duration::from_secs(10),
            log_rotate_bytes: 10 << 20,
            log_keep: 5,
            restart_backoff_base: Duration::from_millis(100),
            restart_backoff_max: Duration::from_secs(30),
            cycling_crashes: 5,
            crash_window: Duration::from_secs(60),
            host_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            cgroup: CgroupMode::Auto,
            limited_user: None,
        }
    }
}
