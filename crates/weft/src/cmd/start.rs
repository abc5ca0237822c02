//! `weft start`: Azure's Update Deployment Status to Running — starts a
//! suspended deployment's instances again; done when every one is Ready.

use std::process::ExitCode;

use weft_fabric::view::DeploymentStatus;

pub use super::suspend::Args;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::suspend::set_status(args, DeploymentStatus::Running)
}
