//! `weft events`: the event history of the deployment now in a slot — what
//! the fabric did and why — optionally followed as it grows. The history
//! belongs to the deployment: after a swap, `--slot production` shows the
//! deployment that came from staging, with its past there.

use std::process::ExitCode;
use std::time::Duration;

use weft_fabric::events::{Event, EventKind};

use super::app::Connect;
use super::upgrade::{pick_service, render_event};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: super::app::ServiceSlot,
    /// Keep printing new events until interrupted
    #[arg(long, short)]
    pub follow: bool,
    /// Leave out instance status changes
    #[arg(long)]
    pub no_instances: bool,
    /// Print JSON lines (the API's Event objects)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let service = pick_service(&client, args.target.service)?;
    let path = format!(
        "/v1/services/{service}/deployments/{}/events",
        args.target.slot.as_str()
    );
    let mut after = None;
    loop {
        let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
        let events: Vec<Event> = client.get(&format!("{path}{query}"))?;
        for e in &events {
            after = Some(e.seq);
            if args.no_instances && e.kind == EventKind::InstanceStatus {
                continue;
            }
            if args.json {
                println!("{}", serde_json::to_string(e)?);
            } else {
                println!("{}", render_event(e));
            }
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
