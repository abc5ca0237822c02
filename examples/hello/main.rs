//! The hello example's roles: `hello web` answers HTTP on the `HttpIn`
//! endpoint; `hello worker` does a unit of work every `IntervalSeconds`.
//! Both run under weft, which gives them `WEFT_RUNTIME`.

mod web;
mod worker;

use std::process::ExitCode;

use clap::Parser;
use weft_runtime::run_role;

/// The hello example service's role program.
#[derive(Parser)]
#[command(name = "hello")]
enum Role {
    /// The web role: HTTP on the HttpIn endpoint.
    Web,
    /// The worker role: periodic work in the Work local resource.
    Worker,
}

fn main() -> ExitCode {
    match Role::parse() {
        Role::Web => run_role(web::Web::default()),
        Role::Worker => run_role(worker::Worker::default()),
    }
}
