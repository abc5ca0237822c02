//! Placeholder until the vhd crate lands; replaced by its owner.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft vhd is not built yet")
}
