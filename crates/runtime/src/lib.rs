//! What a role instance sees of the fabric: the runtime endpoint's protocol,
//! the host side the agent serves it with, and a small client for Rust roles.

pub mod client;
pub mod host;
pub mod protocol;

pub use client::{RoleEntryPoint, RoleEnvironment, run_role};
