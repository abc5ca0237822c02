//! `weft swap`: Azure's Swap Deployment — the staging deployment takes over
//! the production VIPs and the production deployment the staging ones.

use std::process::ExitCode;

use weft_api::wire::Accepted;
use weft_fabric::Slot;
use weft_fabric::view::{ServiceView, SwapRequest};

use super::app::Connect;
use super::deploy::follow_operation;
use super::status::endpoint_url;
use super::upgrade::pick_service;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service whose production and staging deployments to swap
    /// (default: the fabric's only one)
    pub service: Option<String>,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let service = pick_service(&client, args.service)?;
    // Name the deployments seen in the slots: if this request is retried
    // after the first went through, the fabric refuses it (409) instead of
    // swapping back.
    let before: ServiceView = client.get(&format!("/v1/services/{service}"))?;
    let in_slot = |slot: Slot| {
        before
            .deployments
            .iter()
            .find(|d| d.slot == slot)
            .map(|d| d.id.clone())
    };
    let Some(source_deployment) = in_slot(Slot::Staging) else {
        anyhow::bail!("service `{service}` has no staging deployment to swap");
    };
    let request = SwapRequest {
        production: in_slot(Slot::Production),
        source_deployment,
    };
    let accepted: Accepted = client.post_bytes(
        &format!("/v1/services/{service}/swap"),
        &serde_json::to_vec(&request)?,
    )?;
    let done = follow_operation(&client, &accepted.operation_id, "swapping")?;
    for m in &done.messages {
        println!("{m}");
    }
    let view: ServiceView = client.get(&format!("/v1/services/{service}"))?;
    for d in &view.deployments {
        println!("{}: deployment {} ({})", d.slot, d.id, d.label);
        for vip in &d.vips {
            println!(
                "  {}/{}: {}",
                vip.role,
                vip.endpoint,
                endpoint_url(&vip.protocol, vip.address)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
