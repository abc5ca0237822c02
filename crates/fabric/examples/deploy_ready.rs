//! Measures the controller + real agent path: deploy N instances of a
//! trivial role (`exec sleep`, ready on process start) until the operation
//! succeeds, then delete them. Prints a table.
//!
//! `cargo run --release -p weft-fabric --example deploy_ready -- 1 5 20 50`

use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_agent::{Agent, AgentConfig};
use weft_fabric::view::OperationStatus;
use weft_fabric::{Controller, DeployRequest, FabricConfig, Slot};

const CSDEF: &str = r#"<ServiceDefinition name="bench" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceDefinition">
  <WorkerRole name="Worker">
    <Runtime><EntryPoint><ProgramEntryPoint commandLine="exec sleep 1000" setReadyOnProcessStart="true" /></EntryPoint></Runtime>
  </WorkerRole>
</ServiceDefinition>"#;

fn cscfg(n: u32) -> Vec<u8> {
    format!(r#"<ServiceConfiguration serviceName="bench" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceConfiguration"><Role name="Worker"><Instances count="{n}" /></Role></ServiceConfiguration>"#).into_bytes()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let counts: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let counts = if counts.is_empty() {
        vec![1, 5, 20]
    } else {
        counts
    };
    let dir = tempfile::tempdir()?;
    let role = dir.path().join("src/Worker");
    std::fs::create_dir_all(&role)?;
    std::fs::write(role.join("README"), "a role that only sleeps\n")?;
    let package = dir.path().join("bench.cspkg");
    weft_package::build_package(
        &weft_package::PackageSpec {
            service_definition: CSDEF.as_bytes().to_vec(),
            roles: vec![weft_package::RoleSource {
                name: "Worker".into(),
                dir: role,
            }],
        },
        &package,
        &weft_package::BuildOptions::default(),
    )?;
    let mut agent_config = AgentConfig::new(dir.path().join("agent"));
    agent_config.grace_period = Duration::from_secs(2);
    let agent = Agent::open(agent_config)?;
    let state = dir.path().join("fabric");
    std::fs::create_dir_all(&state)?;
    let store = Arc::new(weft_store::SqliteStore::open(&state.join("fabric.db"))?);
    let c = Controller::open(FabricConfig::new(&state), store, agent).await?;

    println!("| instances | deploy → all Ready (ms) | delete → all stopped (ms) |");
    println!("|---:|---:|---:|");
    for n in counts {
        let t = Instant::now();
        let op = c
            .deploy(DeployRequest {
                service: "bench".into(),
                slot: Slot::Production,
                package: package.clone(),
                configuration: cscfg(n),
                label: String::new(),
            })
            .await?;
        let done = c.wait(&op).await.expect("operation");
        anyhow::ensure!(
            done.status == OperationStatus::Succeeded,
            "deploy failed: {done:?}"
        );
        let deployed = t.elapsed();
        let t = Instant::now();
        let op = c.delete_deployment("bench", Slot::Production).await?;
        let done = c.wait(&op).await.expect("operation");
        anyhow::ensure!(
            done.status == OperationStatus::Succeeded,
            "delete failed: {done:?}"
        );
        println!(
            "| {n} | {:.1} | {:.1} |",
            deployed.as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    c.shutdown().await;
    Ok(())
}
