//! `weft rollback`: Azure's Rollback Update Or Upgrade — back to the package
//! and configuration before the upgrade in progress (or stopped), walking
//! back only the upgrade domains it touched.

use std::process::ExitCode;

use weft_api::wire::Accepted;

use super::app::Connect;
use super::upgrade::{follow, last_event, pick_service};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: super::app::ServiceSlot,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let service = pick_service(&client, args.target.service)?;
    let after = last_event(&client, &service, args.target.slot)?;
    let accepted: Accepted = client.post_bytes(
        &format!(
            "/v1/services/{service}/deployments/{}/rollback",
            args.target.slot.as_str()
        ),
        b"",
    )?;
    let done = follow(
        &client,
        &accepted.operation_id,
        &service,
        args.target.slot,
        after,
        "rolling back",
    )?;
    for m in &done.messages {
        println!("note: {m}");
    }
    println!("rolled back {service} ({})", args.target.slot.as_str());
    Ok(ExitCode::SUCCESS)
}
