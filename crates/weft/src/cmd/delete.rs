//! `weft delete`: drain, stop and forget a deployment.

use std::process::ExitCode;

use weft_api::wire::Accepted;

use super::app::Connect;
use super::deploy::{SlotArg, follow_operation};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service whose deployment to delete
    pub service: String,
    /// The slot
    #[arg(long, value_enum, default_value_t = SlotArg::Production)]
    pub slot: SlotArg,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let accepted: Accepted = client.delete(&format!(
        "/v1/services/{}/deployments/{}",
        args.service,
        args.slot.as_str()
    ))?;
    follow_operation(&client, &accepted.operation_id, "deleting")?;
    println!(
        "deleted the {} deployment of {}",
        args.slot.as_str(),
        args.service
    );
    Ok(ExitCode::SUCCESS)
}
