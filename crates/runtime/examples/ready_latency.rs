//! How fast a role program becomes Ready through the runtime endpoint, and
//! how fast it exits on Stopping — the part of "instance killed → its
//! replacement Ready" that the role itself spends.
//!
//! ```text
//! cargo build --release -p hello --example ready_latency -p weft-runtime
//! target/release/examples/ready_latency target/release/hello [rounds]
//! ```
//!
//! Prints, for `hello web` and `hello worker`: spawn → Ready and Stopping →
//! exit (p50, p99, max), next to the floor: spawning `/bin/true` and
//! waiting for it to exit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weft_runtime::host::RuntimeHost;
use weft_runtime::protocol::{Endpoint, InstanceInfo, LocalResource, RoleStatus, RuntimeEvent};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let hello = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: ready_latency <path to hello> [rounds]"))?,
    );
    let rounds: usize = args.next().map_or(Ok(50), |r| r.parse())?;
    let dir = tempfile::tempdir()?;

    let floor = measure_floor(rounds).await?;
    println!("rounds: {rounds}");
    println!(
        "{:<32} {:>10} {:>10} {:>10}",
        "measure", "p50 ms", "p99 ms", "max ms"
    );
    row("/bin/true spawn → exit (floor)", &floor);
    for role in ["web", "worker"] {
        let (ready, exit) = measure_role(&hello, role, dir.path(), rounds).await?;
        row(&format!("hello {role} spawn → Ready"), &ready);
        row(&format!("hello {role} Stopping → exit"), &exit);
    }
    Ok(())
}

async fn measure_floor(rounds: usize) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        tokio::process::Command::new("/bin/true").status().await?;
        times.push(start.elapsed());
    }
    Ok(times)
}

async fn measure_role(
    hello: &Path,
    role: &str,
    dir: &Path,
    rounds: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let host = RuntimeHost::bind(&dir.join(format!("{role}.sock")), info(role, dir)?).await?;
    let mut ready = Vec::with_capacity(rounds);
    let mut exit = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        host.clear_status();
        let mut status = host.status();
        let start = Instant::now();
        let mut child = tokio::process::Command::new(hello)
            .arg(role)
            .env("WEFT_RUNTIME", host.address())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        tokio::time::timeout(
            Duration::from_secs(10),
            status.wait_for(|s| *s == Some(RoleStatus::Ready)),
        )
        .await??;
        ready.push(start.elapsed());
        let stop = Instant::now();
        host.publish(RuntimeEvent::Stopping);
        let code = tokio::time::timeout(Duration::from_secs(10), child.wait()).await??;
        exit.push(stop.elapsed());
        anyhow::ensure!(code.success(), "hello {role} exited with {code}");
    }
    host.shutdown().await;
    Ok((ready, exit))
}

fn info(role: &str, dir: &Path) -> anyhow::Result<InstanceInfo> {
    let port: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    Ok(InstanceInfo {
        deployment_id: "0".repeat(32),
        role: role.into(),
        instance_id: format!("{role}_IN_0"),
        update_domain: 0,
        fault_domain: 0,
        settings: BTreeMap::from([
            ("Greeting".into(), "hello".into()),
            ("IntervalSeconds".into(), "60".into()),
        ]),
        local_resources: BTreeMap::from([(
            "Work".into(),
            LocalResource {
                path: dir.join("Work"),
                size_mb: 16,
            },
        )]),
        endpoints: BTreeMap::from([(
            "HttpIn".into(),
            Endpoint {
                protocol: "http".into(),
                address: port,
            },
        )]),
    })
}

fn row(name: &str, times: &[Duration]) {
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<32} {:>10.2} {:>10.2} {:>10.2}",
        at(0.5),
        at(0.99),
        ms[ms.len() - 1]
    );
}
