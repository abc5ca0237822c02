//! SIGKILL → Ready: how long an instance is out of rotation when its entry
//! point is killed, against the floor of any supervisor (a shell loop that
//! respawns the same command at once), in the same run.
//!
//! `cargo run --release -p weft-agent --example restart_latency [rounds] [hello binary]`
//!
//! With the path of the `hello` example binary, a third row measures the
//! realistic case: `hello web` listening on its endpoint, an HTTP probe on
//! `/healthz`, and the role reporting Ready itself on its runtime endpoint.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use weft_agent::protocol::{
    AgentApi, EndpointKind, EndpointProtocol, EndpointSpec, InstanceSpec, PackageRef, ProbeSpec,
    ResourceLimits,
};
use weft_agent::{Agent, AgentConfig};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let role = dir.path().join("Worker");
    std::fs::create_dir_all(&role).unwrap();
    let script = role.join("run.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 1000\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let package = dir.path().join("app.cspkg");
    let manifest = weft_package::build_package(
        &weft_package::PackageSpec {
            service_definition: b"<ServiceDefinition name=\"bench\"/>".to_vec(),
            roles: vec![weft_package::RoleSource {
                name: "Worker".into(),
                dir: role.clone(),
            }],
        },
        &package,
        &weft_package::BuildOptions::default(),
    )
    .unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let spec = shell_spec(&package, &manifest.digest);
    let agent_ms = rt.block_on(agent_rounds(&dir.path().join("a"), spec, rounds));
    let shell_ms = shell_rounds(&role, rounds);
    let hello_ms = std::env::args().nth(2).map(|hello| {
        let web = dir.path().join("Web");
        std::fs::create_dir_all(&web).unwrap();
        std::fs::copy(&hello, web.join("hello")).unwrap();
        let package = dir.path().join("hello.cspkg");
        let manifest = weft_package::build_package(
            &weft_package::PackageSpec {
                service_definition: b"<ServiceDefinition name=\"hello\"/>".to_vec(),
                roles: vec![weft_package::RoleSource {
                    name: "Web".into(),
                    dir: web,
                }],
            },
            &package,
            &weft_package::BuildOptions::default(),
        )
        .unwrap();
        rt.block_on(agent_rounds(
            &dir.path().join("h"),
            hello_spec(&package, &manifest.digest),
            rounds,
        ))
    });

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "SIGKILL of the entry point → running again ({rounds} rounds, {cpus} CPUs, loadavg {})",
        load.trim()
    );
    println!("| supervisor | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    let (a, s) = (summary(&agent_ms), summary(&shell_ms));
    println!(
        "| shell respawn loop (new pid seen) | {:.1} | {:.1} | {:.1} | {:.1} |",
        s[0], s[1], s[2], s[3]
    );
    println!(
        "| weft-agent (report Ready again) | {:.1} | {:.1} | {:.1} | {:.1} |",
        a[0], a[1], a[2], a[3]
    );
    if let Some(h) = hello_ms.as_deref().map(summary) {
        println!(
            "| weft-agent, hello web (listening, /healthz probe, said Ready) | {:.1} | {:.1} | {:.1} | {:.1} |",
            h[0], h[1], h[2], h[3]
        );
    }
    println!(
        "| ratio agent / shell | {:.2} | {:.2} | {:.2} | {:.2} |",
        a[0] / s[0],
        a[1] / s[1],
        a[2] / s[2],
        a[3] / s[3]
    );
    println!("goal: weft-agent p99 < 300 ms");
}

fn shell_spec(package: &Path, digest: &str) -> InstanceSpec {
    InstanceSpec {
        deployment_id: "0".repeat(32),
        role: "Worker".into(),
        instance_id: "Worker_IN_0".into(),
        update_domain: 0,
        fault_domain: 0,
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
        limits: ResourceLimits::default(),
    }
}

/// `hello web` as examples/hello's csdef declares it.
fn hello_spec(package: &Path, digest: &str) -> InstanceSpec {
    let mut spec = shell_spec(package, digest);
    spec.role = "Web".into();
    spec.instance_id = "Web_IN_0".into();
    spec.entry_point = Some("./hello web".into());
    spec.set_ready_on_process_start = false;
    spec.settings = [("Greeting".to_owned(), "bench".to_owned())].into();
    spec.endpoints = vec![EndpointSpec {
        name: "HttpIn".into(),
        kind: EndpointKind::Input,
        protocol: EndpointProtocol::Http,
        local_port: None,
        ignore_role_instance_status: false,
        probe: Some(ProbeSpec {
            http_path: Some("/healthz".into()),
            port: None,
            interval_ms: 5000,
            timeout_ms: 11000,
        }),
    }];
    spec
}

async fn agent_rounds(dir: &Path, spec: InstanceSpec, rounds: usize) -> Vec<f64> {
    let mut config = AgentConfig::new(dir);
    // Every kill is a first crash: the immediate restart is what is measured.
    config.crash_window = Duration::from_millis(1);
    let agent = Agent::open(config).unwrap();
    agent.apply(vec![spec]).await.unwrap();
    let mut rx = agent.reports();
    let mut times = Vec::new();
    let mut pid = rx
        .wait_for(|r| r.first().is_some_and(|r| r.ready))
        .await
        .unwrap()[0]
        .pid
        .unwrap();
    for _ in 0..rounds {
        let start = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        let r = rx
            .wait_for(|r| {
                r.first()
                    .is_some_and(|r| r.ready && r.pid.is_some_and(|p| p != pid))
            })
            .await
            .unwrap();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        pid = r[0].pid.unwrap();
    }
    agent.shutdown().await.unwrap();
    times
}

/// `while :; do ./run.sh; done`, watching its children in /proc.
fn shell_rounds(role: &Path, rounds: usize) -> Vec<f64> {
    let mut shell = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("while :; do ./run.sh; done")
        .current_dir(role)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let loop_pid = shell.id();
    let child = |not: Option<u32>| loop {
        let children =
            std::fs::read_to_string(format!("/proc/{loop_pid}/task/{loop_pid}/children"))
                .unwrap_or_default();
        if let Some(p) = children
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .find(|p| Some(*p) != not)
        {
            // Counted once the new process runs the command, not the fork.
            if std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.starts_with("sleep"))
            {
                return p;
            }
        }
        std::hint::spin_loop();
    };
    let mut pid = child(None);
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        pid = child(Some(pid));
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = shell.kill();
    let _ = shell.wait();
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    times
}

/// p50, p90, p99, max.
fn summary(ms: &[f64]) -> [f64; 4] {
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    [at(0.5), at(0.9), at(0.99), v[v.len() - 1]]
}
