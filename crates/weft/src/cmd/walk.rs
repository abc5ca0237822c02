//! `weft walk <ud>`: Azure's Walk Upgrade Domain — walks the next upgrade
//! domain of a manual upgrade (in order) and follows it until it is healthy.

use std::process::ExitCode;

use weft_api::server::WalkUpgradeDomain;
use weft_api::wire::Accepted;

use super::app::Connect;
use super::upgrade::{follow, last_event, pick_service};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The upgrade domain to walk (the next one: they go in order)
    #[arg(value_name = "UD")]
    pub upgrade_domain: u32,
    #[command(flatten)]
    pub target: super::app::DeploymentFlags,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let service = pick_service(&client, args.target.service)?;
    let after = last_event(&client, &service, args.target.slot)?;
    let body = serde_json::to_vec(&WalkUpgradeDomain {
        upgrade_domain: args.upgrade_domain,
    })?;
    let accepted: Accepted = client.post_bytes(
        &format!(
            "/v1/services/{service}/deployments/{}/walk",
            args.target.slot.as_str()
        ),
        &body,
    )?;
    let doing = format!("walking upgrade domain {}", args.upgrade_domain);
    follow(
        &client,
        &accepted.operation_id,
        &service,
        args.target.slot,
        after,
        &doing,
    )?;
    println!(
        "upgrade domain {} of {service} ({}) walked and healthy",
        args.upgrade_domain,
        args.target.slot.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
