//! The agent against real processes: small shell-script roles packaged
//! with weft-package, run, supervised, probed and stopped.

mod common;

mod changing;
mod deployments;
mod env;
mod lifecycle;
mod limited;
mod logs;
mod orphans;
mod ports;
mod readiness;
mod reimage;
mod restart;
mod runtime;
mod startup;
mod stopped;
mod vmsize;
