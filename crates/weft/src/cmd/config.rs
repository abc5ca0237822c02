//! `weft config set C`: Azure's Change Deployment Configuration — the
//! running package with a new configuration, walked by upgrade domain:
//! changed settings reach the running instances in place (Changing /
//! Changed on the runtime endpoint), a changed instance count scales out or
//! in (draining first). `weft config get` prints the configuration a
//! deployment runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_api::server::ChangeConfiguration;

use super::app::Connect;
use super::upgrade::{GateArgs, ModeArg, Walk, Walked, pick_service, plan_or_walk};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Change a running deployment's configuration to the .cscfg given
    Set(SetArgs),
    /// Print the configuration (.cscfg) a deployment runs
    Get(GetArgs),
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub target: super::app::DeploymentFlags,
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The new service configuration (.cscfg)
    #[arg(value_name = "CSCFG")]
    pub config: PathBuf,
    #[command(flatten)]
    pub target: super::app::DeploymentFlags,
    /// How to walk the upgrade domains
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
    /// Restore an upgrade domain whose health gate fails
    #[arg(long)]
    pub auto_rollback: bool,
    /// Print what each step changes and the Ready capacity left; change
    /// nothing
    #[arg(long)]
    pub plan: bool,
    #[command(flatten)]
    pub gate: GateArgs,
    /// Return once the change is accepted
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::Set(args) => set(args),
        Sub::Get(args) => get(args),
    }
}

fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let service = pick_service(&client, args.target.service)?;
    let text = client.get_text(&format!(
        "/v1/services/{service}/deployments/{}/configuration",
        args.target.slot.as_str()
    ))?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

fn set(args: SetArgs) -> anyhow::Result<ExitCode> {
    let configuration = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {} as text", args.config.display()))?;
    let client = args.connect.client()?;
    let service = pick_service(&client, args.target.service)?;
    let body = serde_json::to_vec(&ChangeConfiguration {
        configuration,
        mode: args.mode.into(),
        auto_rollback: args.auto_rollback,
        plan: args.plan,
        gate: args.gate.gate(),
    })?;
    let path = format!(
        "/v1/services/{service}/deployments/{}/configuration",
        args.target.slot.as_str()
    );
    let walked = plan_or_walk(&Walk {
        client: &client,
        path: &path,
        body: &body,
        service: &service,
        slot: args.target.slot,
        mode: args.mode,
        plan: args.plan,
        no_wait: args.no_wait,
        what: "configuration change",
        doing: "changing the configuration",
    })?;
    if let Walked::Done(took) = walked {
        println!(
            "configuration of {service} ({}) changed in {} ms",
            args.target.slot.as_str(),
            took.as_millis()
        );
    }
    Ok(walked.exit_code())
}
