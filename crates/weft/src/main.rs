//! `weft`: the one binary. Parses the command line and hands each subcommand
//! to its module under `cmd/`; the work itself lives in the library crates.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cmd;

/// weft runs Azure Cloud Services applications (a package plus its
/// ServiceDefinition.csdef and ServiceConfiguration.cscfg) on your own Linux
/// hosts.
#[derive(Debug, Parser)]
#[command(name = "weft", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the fabric on this host and deploy an application (Ctrl-C stops it)
    Up(cmd::up::Args),
    /// Deploy a package and configuration to a running fabric
    Deploy(cmd::deploy::Args),
    /// Show services, deployments, roles and instances of a running fabric
    Status(cmd::status::Args),
    /// Print a role instance's captured output
    Logs(cmd::logs::Args),
    /// Delete a deployment from a running fabric
    Delete(cmd::delete::Args),
    /// Upgrade a running deployment in place, upgrade domain by upgrade domain
    Upgrade(cmd::upgrade::Args),
    /// Walk the next upgrade domain of a manual upgrade
    Walk(cmd::walk::Args),
    /// Roll back the upgrade in progress, walking back the domains it touched
    Rollback(cmd::rollback::Args),
    /// Swap a service's production and staging deployments (their VIPs)
    Swap(cmd::swap::Args),
    /// Reboot a role instance (restart it; local storage is kept)
    Reboot(cmd::reboot::Args),
    /// Reimage a role instance (restart it fresh: local storage wiped)
    Reimage(cmd::reimage::Args),
    /// Remove role instances from a deployment (its instance count drops)
    DeleteInstances(cmd::delete_instances::Args),
    /// Suspend a deployment: every instance leaves its VIPs and stops
    Suspend(cmd::suspend::Args),
    /// Start a suspended deployment again
    Start(cmd::start::Args),
    /// Print a deployment's event history (what the fabric did and why)
    Events(cmd::events::Args),
    /// Change a running deployment's configuration (settings, instance counts)
    Config(cmd::config::Args),
    /// Check a service definition and configuration; report every problem
    Validate(cmd::validate::Args),
    /// Build, inspect, verify and unpack service packages (.cspkg)
    Package(cmd::package::Args),
    /// Work with VHD disk images: fixed, dynamic and differencing
    Vhd(cmd::vhd::Args),
    /// Run the Azure-compatible storage services (blob, queue, table)
    Storage(cmd::storage::Args),
    /// Print a shell completion script
    Completions(cmd::completions::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => cmd::up::run(args),
        Command::Deploy(args) => cmd::deploy::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Logs(args) => cmd::logs::run(args),
        Command::Delete(args) => cmd::delete::run(args),
        Command::Upgrade(args) => cmd::upgrade::run(args),
        Command::Walk(args) => cmd::walk::run(args),
        Command::Rollback(args) => cmd::rollback::run(args),
        Command::Swap(args) => cmd::swap::run(args),
        Command::Reboot(args) => cmd::reboot::run(args),
        Command::Reimage(args) => cmd::reimage::run(args),
        Command::DeleteInstances(args) => cmd::delete_instances::run(args),
        Command::Suspend(args) => cmd::suspend::run(args),
        Command::Start(args) => cmd::start::run(args),
        Command::Events(args) => cmd::events::run(args),
        Command::Config(args) => cmd::config::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Package(args) => cmd::package::run(args),
        Command::Vhd(args) => cmd::vhd::run(args),
        Command::Storage(args) => cmd::storage::run(args),
        Command::Completions(args) => cmd::completions::run(args, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
