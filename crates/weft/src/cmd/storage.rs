//! `weft storage`: run the Azure-compatible storage services in the
//! foreground. The work lives in the `weft-storage` crate.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_storage::{DEV_ACCOUNT, ServerConfig};

/// Run the storage services (blob, queue, table) in the foreground until Ctrl-C or SIGTERM.
///
/// Clients use path-style URLs, e.g. http://127.0.0.1:10000/devstoreaccount1/<container>,
/// or the connection string `UseDevelopmentStorage=true`.
///
/// Example: weft storage --data ./storage-data
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the metadata database and blob bytes are kept
    #[arg(long, value_name = "DIR", default_value = "weft-storage")]
    data: PathBuf,

    /// The address to listen on (loopback by default)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    host: IpAddr,

    #[command(flatten)]
    ports: Ports,

    /// An extra account as NAME:BASE64KEY (repeatable); devstoreaccount1 is always served
    #[arg(long = "account", value_name = "NAME:KEY")]
    accounts: Vec<String>,
}

/// The three services' ports, as `weft storage` and `weft up` take them
/// (the defaults are what `UseDevelopmentStorage=true` means).
#[derive(Debug, clap::Args)]
pub struct Ports {
    /// The blob service port (0 picks a free port)
    #[arg(long, value_name = "PORT", default_value_t = 10000)]
    blob_port: u16,

    /// The queue service port (0 picks a free port)
    #[arg(long, value_name = "PORT", default_value_t = 10001)]
    queue_port: u16,

    /// The table service port (0 picks a free port)
    #[arg(long, value_name = "PORT", default_value_t = 10002)]
    table_port: u16,
}

/// A storage configuration with `data_dir`, `ports`, and the development
/// account plus each `NAME:BASE64KEY` of `accounts`.
pub fn config(
    data_dir: PathBuf,
    ports: &Ports,
    accounts: &[String],
) -> anyhow::Result<ServerConfig> {
    let mut config = ServerConfig::new(data_dir);
    config.blob_port = ports.blob_port;
    config.queue_port = ports.queue_port;
    config.table_port = ports.table_port;
    for spec in accounts {
        config.accounts.add_spec(spec)?;
    }
    Ok(config)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = config(args.data.clone(), &args.ports, &args.accounts)?;
    config.host = args.host;
    weft_storage::run_foreground(config, |addrs| {
        // One line per service, parsed by tests and scripts: keep the shape.
        println!("blob: http://{}/{DEV_ACCOUNT}", addrs.blob);
        println!("queue: http://{}/{DEV_ACCOUNT}", addrs.queue);
        println!("table: http://{}/{DEV_ACCOUNT}", addrs.table);
        let _ = std::io::stdout().flush();
    })
    .with_context(|| format!("storage server with data in {} failed", args.data.display()))?;
    Ok(ExitCode::SUCCESS)
}
