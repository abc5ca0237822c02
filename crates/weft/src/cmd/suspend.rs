//! `weft suspend`: Azure's Update Deployment Status to Suspended — every
//! instance leaves its VIPs, drains and stops, keeping its local storage.

use std::process::ExitCode;

use weft_api::server::UpdateDeploymentStatus;
use weft_api::wire::Accepted;
use weft_fabric::view::DeploymentStatus;

use super::app::Connect;
use super::deploy::follow_operation;
use super::upgrade::pick_service;

/// Names one deployment.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: super::app::ServiceSlot,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    set_status(args, DeploymentStatus::Suspended)
}

/// Posts the new status and follows the operation.
pub fn set_status(args: Args, status: DeploymentStatus) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let service = pick_service(&client, args.target.service)?;
    let body = serde_json::to_vec(&UpdateDeploymentStatus { status })?;
    let accepted: Accepted = client.post_bytes(
        &format!(
            "/v1/services/{service}/deployments/{}/status",
            args.target.slot.as_str()
        ),
        &body,
    )?;
    let (doing, done) = match status {
        DeploymentStatus::Suspended => ("suspending", "suspended: every instance stopped"),
        _ => ("starting", "running: every instance ready"),
    };
    follow_operation(&client, &accepted.operation_id, doing)?;
    println!("{service} ({}) {done}", args.target.slot.as_str());
    Ok(ExitCode::SUCCESS)
}
