//! `weft delete-instances <names...>`: Azure's Delete Role Instances — the
//! instances leave their VIPs, drain, stop and are removed; their roles'
//! instance counts drop.

use std::process::ExitCode;

use weft_api::server::DeleteRoleInstances;
use weft_api::wire::Accepted;

use super::app::Connect;
use super::deploy::{SlotArg, follow_operation};
use super::upgrade::pick_service;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The role instances to remove, e.g. Web_IN_3 Web_IN_4
    #[arg(required = true, value_name = "INSTANCE")]
    pub names: Vec<String>,
    /// The service (default: the fabric's only one)
    #[arg(long)]
    pub service: Option<String>,
    /// The slot of the deployment the instances belong to
    #[arg(long, value_enum, default_value_t = SlotArg::Production)]
    pub slot: SlotArg,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let service = pick_service(&client, args.service)?;
    let body = serde_json::to_vec(&DeleteRoleInstances {
        names: args.names.clone(),
    })?;
    let accepted: Accepted = client.post_bytes(
        &format!(
            "/v1/services/{service}/deployments/{}/roleinstances/delete",
            args.slot.as_str()
        ),
        &body,
    )?;
    follow_operation(&client, &accepted.operation_id, "deleting role instances")?;
    println!(
        "deleted {} from {service} ({})",
        args.names.join(", "),
        args.slot.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
