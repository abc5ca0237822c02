//! `weft validate`: check a service definition (and configuration) and
//! report every problem, rustc-style or as JSON.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// rustc-style text with the source line and a caret
    Text,
    /// A JSON array of {severity, code, file, line, column, message, help?}
    Json,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 no errors (warnings allowed), 1 errors found, 2 a file could not be read.\n\
Every diagnostic code is listed in crates/model/DIAGNOSTICS.md."
)]
pub struct Args {
    /// The service definition (ServiceDefinition.csdef)
    pub csdef: PathBuf,
    /// The service configuration (ServiceConfiguration.*.cscfg), checked against the definition
    pub cscfg: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let read =
        |p: &PathBuf| std::fs::read(p).map_err(|e| format!("failed to read {}: {e}", p.display()));
    let csdef = match read(&args.csdef) {
        Ok(b) => b,
        Err(msg) => return Ok(usage_error(&msg)),
    };
    let cscfg = match args.cscfg.as_ref().map(read).transpose() {
        Ok(b) => b,
        Err(msg) => return Ok(usage_error(&msg)),
    };
    let def_name = args.csdef.display().to_string();
    let cfg_name = args.cscfg.as_ref().map(|p| p.display().to_string());
    let report = weft_model::check(
        (&def_name, &csdef),
        cfg_name.as_deref().zip(cscfg.as_deref()),
    );
    let diags = &report.diagnostics;
    match args.format {
        Format::Json => println!("{}", weft_model::render_json(diags)),
        Format::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print!("{}", weft_model::render_text(diags, &report.sources, color));
            println!("{}", weft_model::summary(diags));
        }
    }
    let (errors, _) = weft_model::count(diags);
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}
