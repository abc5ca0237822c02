//! `weft logs`: an instance's captured stdout and stderr, optionally
//! followed.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use weft_fabric::LogPage;

use super::app::Connect;
use super::upgrade::pick_service;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stream {
    Stdout,
    Stderr,
    Both,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The role instance, e.g. Web_IN_0
    pub instance: String,
    /// Keep printing new lines as they come (Ctrl-C to stop)
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Which captured stream
    #[arg(long, value_enum, default_value_t = Stream::Both)]
    pub stream: Stream,
    #[command(flatten)]
    pub target: super::app::DeploymentFlags,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let stream = match args.stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
        Stream::Both => "both",
    };
    let service = pick_service(&client, args.target.service.clone())?;
    let base = format!(
        "/v1/services/{service}/deployments/{}/roleinstances/{}/logs",
        args.target.slot.as_str(),
        args.instance
    );
    let mut query = format!("{base}?stream={stream}");
    if let Some(n) = args.tail {
        query.push_str(&format!("&tail={n}"));
    }
    let mut page: LogPage = client.get(&query)?;
    loop {
        let mut out = std::io::stdout().lock();
        for line in &page.lines {
            writeln!(out, "{}", line.text)?;
        }
        out.flush()?;
        drop(out);
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(250));
        page = client.get(&format!("{base}?stream={stream}&after={}", page.cursor))?;
    }
}
