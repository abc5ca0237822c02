//! `weft reimage <instance>`: Azure's Reimage Role Instance — like a
//! reboot, but the instance starts fresh: all its local storage deleted,
//! its approot unpacked and verified again.

use std::process::ExitCode;

pub use super::reboot::Args;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::reboot::recycle(args, "reimage", "reimaged")
}
