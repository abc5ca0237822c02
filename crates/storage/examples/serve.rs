//! The storage services alone, as `weft storage` runs them, for profiling
//! and benchmarking the crate without building the whole binary.
//!
//! cargo run --release -p weft-storage --example serve -- DATA_DIR BLOB_PORT QUEUE_PORT TABLE_PORT

use std::io::Write as _;

use weft_storage::{DEV_ACCOUNT, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, blob, queue, table] = &args[..] else {
        return Err("usage: serve DATA_DIR BLOB_PORT QUEUE_PORT TABLE_PORT".into());
    };
    let mut config = ServerConfig::new(dir.into());
    config.blob_port = blob.parse()?;
    config.queue_port = queue.parse()?;
    config.table_port = table.parse()?;
    weft_storage::run_foreground(config, |a| {
        println!("blob: http://{}/{DEV_ACCOUNT}", a.blob);
        println!("queue: http://{}/{DEV_ACCOUNT}", a.queue);
        println!("table: http://{}/{DEV_ACCOUNT}", a.table);
        let _ = std::io::stdout().flush();
    })?;
    Ok(())
}
