//! `weft deploy`: upload a package and deploy it with a configuration into
//! a slot of a running fabric, following the operation to its end.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use weft_api::Client;
use weft_api::wire::{Accepted, CreateDeployment, PackageUploaded};
use weft_fabric::view::{OperationStatus, OperationView, ServiceView};

use super::app::{AppArgs, Connect, state_dir};
use super::status::endpoint_url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SlotArg {
    Production,
    Staging,
}

impl SlotArg {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotArg::Production => "production",
            SlotArg::Staging => "staging",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub app: AppArgs,
    /// The slot to deploy into
    #[arg(long, value_enum, default_value_t = SlotArg::Production)]
    pub slot: SlotArg,
    /// A label for the deployment
    #[arg(long)]
    pub label: Option<String>,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let build = state_dir(args.connect.state.as_deref())?.join("build");
    let app = args.app.resolve(&build)?;
    let package = std::fs::read(&app.package)
        .with_context(|| format!("cannot read {}", app.package.display()))?;
    let configuration = std::fs::read_to_string(&app.config)
        .with_context(|| format!("cannot read {} as text", app.config.display()))?;
    let uploaded: PackageUploaded = client.post_bytes("/v1/packages", &package)?;
    let started = Instant::now();
    let accepted: Accepted = client.put_json(
        &format!(
            "/v1/services/{}/deployments/{}",
            app.service,
            args.slot.as_str()
        ),
        &CreateDeployment {
            package: uploaded.digest,
            configuration,
            label: args.label.clone(),
        },
    )?;
    let done = follow_operation(&client, &accepted.operation_id, "deploying")?;
    for m in &done.messages {
        println!("note: {m}");
    }
    let services: Vec<ServiceView> = client.get("/v1/services")?;
    let deployment = services
        .iter()
        .filter(|s| s.name == app.service)
        .flat_map(|s| &s.deployments)
        .find(|d| d.slot.as_str() == args.slot.as_str());
    if let Some(d) = deployment {
        let n: usize = d.roles.iter().map(|r| r.instances.len()).sum();
        println!(
            "deployed {} ({}) to {}: {n} instances ready in {} ms",
            app.service,
            d.id,
            args.slot.as_str(),
            started.elapsed().as_millis()
        );
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

/// Polls an operation until it ends; a failed one is an error with its
/// reason.
pub fn follow_operation(client: &Client, id: &str, doing: &str) -> anyhow::Result<OperationView> {
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        bar.set_message(format!("{doing} (operation {id})"));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let view: OperationView = client.get(&format!("/v1/operations/{id}"))?;
        if let Some(end) = ended(view, id, doing, deadline, "15 minutes") {
            bar.finish_and_clear();
            return end;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Whether a polled operation has ended: `None` while it is in progress and
/// `deadline` (`waited` from the start) has not passed; else the finished
/// view, or an error with the reason it failed or that it took too long.
pub fn ended(
    view: OperationView,
    id: &str,
    doing: &str,
    deadline: Instant,
    waited: &str,
) -> Option<anyhow::Result<OperationView>> {
    match view.status {
        OperationStatus::InProgress if Instant::now() < deadline => None,
        OperationStatus::InProgress => Some(Err(anyhow!(
            "operation {id} still in progress after {waited}"
        ))),
        OperationStatus::Succeeded => Some(Ok(view)),
        OperationStatus::Failed => Some(Err(anyhow!(
            "{doing} failed: {}",
            view.error.as_deref().unwrap_or("no reason given")
        ))),
    }
}
