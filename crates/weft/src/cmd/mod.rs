//! One module per subcommand. Each exposes `Args` (its clap arguments) and
//! `run(Args) -> anyhow::Result<ExitCode>`; none of them holds logic that a
//! library crate should own.

pub mod app;
pub mod completions;
pub mod config;
pub mod delete;
pub mod delete_instances;
pub mod deploy;
pub mod events;
pub mod logs;
pub mod package;
pub mod reboot;
pub mod reimage;
pub mod rollback;
pub mod start;
pub mod status;
pub mod storage;
pub mod suspend;
pub mod swap;
pub mod up;
pub mod upgrade;
pub mod validate;
pub mod vhd;
pub mod walk;
