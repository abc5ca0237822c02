//! What a role instance sees of the fabric: the runtime endpoint's protocol
//! ([`protocol`]), the host side the agent serves it with ([`host`]), and a
//! small client for Rust roles ([`client`]).
//!
//! The agent gives every instance `WEFT_RUNTIME=unix:/path` and serves one
//! [`host::RuntimeHost`] there. A Rust role links this crate:
//!
//! ```no_run
//! use weft_runtime::{RoleEntryPoint, RoleEnvironment, run_role};
//!
//! struct Worker;
//!
//! impl RoleEntryPoint for Worker {
//!     async fn run(&mut self, env: &RoleEnvironment) -> anyhow::Result<()> {
//!         let me = env.instance().await?;
//!         let interval: u64 = env.setting("IntervalSeconds").await?.parse()?;
//!         loop {
//!             println!("{}: working", me.instance_id);
//!             tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
//!         }
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     run_role(Worker)
//! }
//! ```
//!
//! Roles in other languages speak [`protocol`] directly: HTTP/1.1 and JSON
//! over the socket (`curl --unix-socket "${WEFT_RUNTIME#unix:}"
//! http://runtime/v1/instance`).

pub mod client;
pub mod host;
pub mod protocol;

pub use client::{RoleEntryPoint, RoleEnvironment, run_role};
