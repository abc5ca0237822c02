//! `weft reboot <instance>`: Azure's Reboot Role Instance — the instance
//! leaves its VIPs, drains and restarts; local storage with
//! `cleanOnRoleRecycle="false"` is kept.

use std::process::ExitCode;

use weft_api::wire::Accepted;

use super::app::Connect;
use super::deploy::follow_operation;
use super::upgrade::pick_service;

/// Names one role instance of a deployment.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The role instance, e.g. Web_IN_0
    pub instance: String,
    #[command(flatten)]
    pub target: super::app::DeploymentFlags,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    recycle(args, "reboot", "rebooted")
}

/// Posts `.../roleinstances/<instance>/<verb>` and follows the operation.
pub fn recycle(args: Args, verb: &str, done: &str) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let service = pick_service(&client, args.target.service)?;
    let accepted: Accepted = client.post_bytes(
        &format!(
            "/v1/services/{service}/deployments/{}/roleinstances/{}/{verb}",
            args.target.slot.as_str(),
            args.instance
        ),
        b"",
    )?;
    follow_operation(
        &client,
        &accepted.operation_id,
        &format!("{verb}ing {}", args.instance),
    )?;
    println!(
        "{} of {service} ({}) {done} and ready",
        args.instance,
        args.target.slot.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
