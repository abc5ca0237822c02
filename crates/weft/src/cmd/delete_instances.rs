//! `weft delete-instances <names...>`: Azure's Delete Role Instances — the
//! instances leave their VIPs, drain, stop and are removed; their roles'
//! instance counts drop.

use std::process::ExitCode;

use weft_api::server::DeleteRoleInstances;
use weft_api::wire::Accepted;

use super::app::Connect;
use super::deploy::follow_operation;
use super::upgrade::pick_service;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The role instances to remove, e.g. Web_IN_3 Web_IN_4
    #[arg(required = true, value_name = "INSTANCE")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub target: super::app::DeploymentFlags,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let service = pick_service(&client, args.target.service)?;
    let body = serde_json::to_vec(&DeleteRoleInstances {
        names: args.names.clone(),
    })?;
    let accepted: Accepted = client.post_bytes(
        &format!(
            "/v1/services/{service}/deployments/{}/roleinstances/delete",
            args.target.slot.as_str()
        ),
        &body,
    )?;
    follow_operation(&client, &accepted.operation_id, "deleting role instances")?;
    println!(
        "deleted {} from {service} ({})",
        args.names.join(", "),
        args.target.slot.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
