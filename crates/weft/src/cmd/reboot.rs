//! `weft reboot <instance>`: Azure's Reboot Role Instance — the instance
//! leaves its VIPs, drains and restarts; local storage with
//! `cleanOnRoleRecycle="false"` is kept.

use std::process::ExitCode;

use weft_api::wire::Accepted;

use super::app::Connect;
use super::deploy::{SlotArg, follow_operation};
use super::upgrade::pick_service;

/// Names one role instance of a deployment.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The role instance, e.g. Web_IN_0
    pub instance: String,
    /// The service (default: the fabric's only one)
    #[arg(long)]
    pub service: Option<String>,
    /// The slot of the deployment the instance belongs to
    #[arg(long, value_enum, default_value_t = SlotArg::Production)]
    pub slot: SlotArg,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    recycle(args, "reboot", "rebooted")
}

/// Posts `.../roleinstances/<instance>/<verb>` and follows the operation.
pub fn recycle(args: Args, verb: &str, done: &str) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let service = pick_service(&client, args.service)?;
    let accepted: Accepted = client.post_bytes(
        &format!(
            "/v1/services/{service}/deployments/{}/roleinstances/{}/{verb}",
            args.slot.as_str(),
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
        args.slot.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
