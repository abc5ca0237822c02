//! The weft agent: one per host. Prepares role instances from a package,
//! starts them through a driver, supervises, probes and stops them, and
//! reports their status to the controller through [`protocol::AgentApi`].
//!
//! ```text
//! Agent (handle) ── apply(desired) ──► one supervisor task per instance
//!                                       prepare: approot, local storage, ports, runtime endpoint, env
//!                                       run: startup tasks, entry point (driver: /bin/sh -c, own
//!                                            process group, own cgroup), probes, runtime status
//!                                       stop: Stopping, SIGTERM, grace, SIGKILL of the cgroup
//!        ◄── reports() (watch) ──────── every status change
//! ```

mod agent;
mod cgroup;
mod config;
mod driver;
mod env;
mod error;
mod health;
mod instance;
mod logs;
mod ports;
mod prepare;
mod probe;
mod procs;
pub mod protocol;

pub use agent::Agent;
pub use config::{AgentConfig, CgroupMode};
pub use error::AgentError;
