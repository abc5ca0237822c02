//! `weft storage`: run the Azure-compatible storage services in the
//! foreground. The work lives in the `weft-storage` crate.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_storage::{Accounts, DEV_ACCOUNT, ServerConfig};

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

    /// The blob service port (0 picks a free port)
    #[arg(long, value_name = "PORT", default_value_t = 10000)]
    blob_port: u16,

    /// The queue service port (0 picks a free port)
    #[arg(long, value_name = "PORT", default_value_t = 10001)]
    queue_port: u16,

    /// The table service port (0 picks a free port)
    #[arg(long, value_name = "PORT", default_value_t = 10002)]
    table_port: u16,

    /// An extra account as NAME:BASE64KEY (repeatable); devstoreaccount1 is always served
    #[arg(long = "account", value_name = "NAME:KEY")]
    accounts: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut accounts = Accounts::development();
    for spec in &args.accounts {
        accounts.add_spec(spec)?;
    }
    let config = ServerConfig {
        data_dir: args.data.clone(),
        host: args.host,
        blob_port: args.blob_port,
        queue_port: args.queue_port,
        table_port: args.table_port,
        accounts,
    };
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
