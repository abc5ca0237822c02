//! Placeholder until the storage crate lands; replaced by its owner.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft storage is not built yet")
}
