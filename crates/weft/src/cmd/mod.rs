//! One module per subcommand. Each exposes `Args` (its clap arguments) and
//! `run(Args) -> anyhow::Result<ExitCode>`; none of them holds logic that a
//! library crate should own.

pub mod app;
pub mod completions;
pub mod package;
pub mod storage;
pub mod validate;
pub mod vhd;
