//! Apply → every instance Ready: N instances of one role (a shell entry
//! point and an 8 MiB file standing in for a program binary), from a cold
//! state directory (the approot is unpacked once) and again warm, then
//! warm with vmsize `Small` limits (1 core, 1792 MiB: cgroup groups and
//! limit files per instance).
//!
//! `cargo run --release -p weft-agent --example start_latency [instances]`

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use weft_agent::protocol::{AgentApi, InstanceSpec, PackageRef, ResourceLimits};
use weft_agent::{Agent, AgentConfig};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let role = dir.path().join("Web");
    std::fs::create_dir_all(&role).unwrap();
    let script = role.join("run.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 1000\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Incompressible, like a binary's worst case.
    let mut blob = vec![0u8; 8 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in blob.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(role.join("program.bin"), &blob).unwrap();
    drop(blob);
    let package = dir.path().join("app.cspkg");
    let manifest = weft_package::build_package(
        &weft_package::PackageSpec {
            service_definition: b"<ServiceDefinition name=\"bench\"/>".to_vec(),
            roles: vec![weft_package::RoleSource {
                name: "Web".into(),
                dir: role,
            }],
        },
        &package,
        &weft_package::BuildOptions::default(),
    )
    .unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = dir.path().join("state");
    let cold = rt.block_on(start(&state, &package, &manifest.digest, n, None));
    let warm = rt.block_on(start(&state, &package, &manifest.digest, n, None));
    let small = ResourceLimits {
        cores: Some(1),
        memory_mb: Some(1792),
    };
    let limited = rt.block_on(start(&state, &package, &manifest.digest, n, Some(small)));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!(
        "apply → {n} instances Ready ({cpus} CPUs, loadavg {})",
        load.trim()
    );
    println!("| state | ms |");
    println!("|---|---|");
    println!("| cold (unpack 8 MiB approot once) | {cold:.1} |");
    println!("| warm (approot already unpacked) | {warm:.1} |");
    println!("| warm, vmsize Small limits | {limited:.1} |");
    println!("goal: deploy → 20 instances Ready < 1000 ms (whole fabric)");
}

/// This process's resident set (the agent, its supervisors, runtime
/// endpoints and log books; not the instances).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn start(
    state: &Path,
    package: &Path,
    digest: &str,
    n: usize,
    limits: Option<ResourceLimits>,
) -> f64 {
    let agent = Agent::open(AgentConfig::new(state)).unwrap();
    let specs: Vec<InstanceSpec> = (0..n)
        .map(|i| InstanceSpec {
            deployment_id: "0".repeat(32),
            role: "Web".into(),
            instance_id: format!("Web_IN_{i}"),
            update_domain: (i % 5) as u32,
            fault_domain: (i % 2) as u32,
            incarnation: 1,
            reimage: 0,
            stopped: false,
            package: PackageRef {
                path: package.to_path_buf(),
                digest: digest.into(),
            },
            startup: Vec::new(),
            entry_point: Some("./run.sh".into()),
            set_ready_on_process_start: true,
            environment: Vec::new(),
            settings: Default::default(),
            local_resources: Vec::new(),
            endpoints: Vec::new(),
            elevated: false,
            limits: limits.unwrap_or_default(),
        })
        .collect();
    let mut rx = agent.reports();
    let before = rss_kib();
    let started = Instant::now();
    agent.apply(specs).await.unwrap();
    rx.wait_for(|r| r.len() == n && r.iter().all(|r| r.ready))
        .await
        .unwrap();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "agent process RSS: {before} KiB before, {} KiB with {n} instances running",
        rss_kib()
    );
    agent.shutdown().await.unwrap();
    ms
}
