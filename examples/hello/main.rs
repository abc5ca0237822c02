//! The hello example's roles: `hello web` answers HTTP on the `HttpIn`
//! endpoint; `hello worker` does a unit of work every `IntervalSeconds`.
//! Both run under weft, which gives them `WEFT_RUNTIME`.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("usage: hello web | hello worker");
    ExitCode::from(2)
}
