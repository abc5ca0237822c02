//! The controller driving the real weft-agent: processes started from a
//! package, reached through the VIP, killed and replaced without a failed
//! request, and gone after delete. The role program is this test binary
//! itself (`serve_role`), so no external tool is needed.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use weft_agent::{Agent, AgentConfig};
use weft_fabric::view::OperationStatus;
use weft_fabric::{Controller, DeployRequest, FabricConfig, Slot};

const SERVE_ENV: &str = "WEFT_FABRIC_TEST_ROLE";

/// Not a test on its own: the role program the agent runs (does nothing
/// unless started as a role). Serves `<instance id>\n` on `$PORT`.
#[test]
fn serve_role() {
    if std::env::var(SERVE_ENV).is_err() {
        return;
    }
    let port: u16 = std::env::var("PORT").unwrap().parse().unwrap();
    let id = std::env::var("WEFT_INSTANCE_ID").unwrap();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let id = id.clone();
        std::thread::spawn(move || {
            let _ = conn.write_all(format!("{id}\n").as_bytes());
            let mut sink = [0u8; 64];
            while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
        });
    }
}

fn csdef(port: u16) -> String {
    let exe = std::env::current_exe().unwrap();
    format!(
        r#"<ServiceDefinition name="svc" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceDefinition">
  <LoadBalancerProbes><LoadBalancerProbe name="Listening" protocol="tcp" intervalInSeconds="5" timeoutInSeconds="11" /></LoadBalancerProbes>
  <WorkerRole name="Web">
    <Runtime>
      <Environment>
        <Variable name="PORT"><RoleInstanceValue xpath="/RoleEnvironment/CurrentInstance/Endpoints/Endpoint[@name='Tcp']/@port" /></Variable>
        <Variable name="{SERVE_ENV}" value="1" />
        <Variable name="ROLE_EXE" value="{}" />
      </Environment>
      <EntryPoint><ProgramEntryPoint commandLine="./run.sh" setReadyOnProcessStart="true" /></EntryPoint>
    </Runtime>
    <Endpoints><InputEndpoint name="Tcp" protocol="tcp" port="{port}" localPort="*" loadBalancerProbe="Listening" /></Endpoints>
  </WorkerRole>
</ServiceDefinition>"#,
        exe.display()
    )
}

const CSCFG: &str = r#"<ServiceConfiguration serviceName="svc" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceConfiguration"><Role name="Web"><Instances count="2" /></Role></ServiceConfiguration>"#;

async fn who(addr: std::net::SocketAddr) -> String {
    use tokio::io::AsyncReadExt;
    let Ok(mut conn) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(Ok(1)) = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut byte)).await {
        if byte[0] == b'\n' {
            break;
        }
        out.push(byte[0]);
    }
    String::from_utf8(out).unwrap()
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether process `pid` exists at all (a zombie counts: the threads of a
/// killed process may still hold its sockets until it is reaped).
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_kill_and_delete_with_the_real_agent() {
    let dir = tempfile::tempdir().unwrap();
    let role = dir.path().join("src/Web");
    std::fs::create_dir_all(&role).unwrap();
    let run = role.join("run.sh");
    std::fs::write(
        &run,
        "#!/bin/sh\nexec \"$ROLE_EXE\" --exact serve_role --nocapture --test-threads=1\n",
    )
    .unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let package = dir.path().join("svc.cspkg");
    weft_package::build_package(
        &weft_package::PackageSpec {
            service_definition: csdef(port).into_bytes(),
            roles: vec![weft_package::RoleSource {
                name: "Web".into(),
                dir: role,
            }],
        },
        &package,
        &weft_package::BuildOptions::default(),
    )
    .unwrap();

    let mut agent_config = AgentConfig::new(dir.path().join("agent"));
    agent_config.grace_period = Duration::from_secs(2);
    agent_config.restart_backoff_base = Duration::from_millis(10);
    let agent = Agent::open(agent_config).unwrap();
    let state = dir.path().join("fabric");
    std::fs::create_dir_all(&state).unwrap();
    let store = Arc::new(weft_store::SqliteStore::open(&state.join("fabric.db")).unwrap());
    let mut config = FabricConfig::new(&state);
    config.deploy_timeout = Duration::from_secs(20);
    config.drain_timeout = Duration::from_secs(5);
    let c = Controller::open(config, store, agent).await.unwrap();

    let op = c
        .deploy(DeployRequest {
            service: "svc".into(),
            slot: Slot::Production,
            package,
            configuration: CSCFG.as_bytes().to_vec(),
            label: "real".into(),
        })
        .await
        .unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    let d = c.services()[0].deployments[0].clone();
    let addr = d.vips[0].address;
    assert_eq!(addr.port(), port);
    // Ready means the TCP probe connects: every instance listens.
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while seen.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the VIP reached only {seen:?}"
        );
        let id = who(addr).await;
        assert!(
            id.starts_with("Web_IN_"),
            "a request through the VIP failed"
        );
        seen.insert(id);
    }

    // SIGKILL one instance between requests: no request fails, and it
    // comes back with a new process.
    let victim = d.roles[0].instances[0]
        .pid
        .expect("a running instance has a pid");
    let mut failures = 0;
    for i in 0..60 {
        if i == 10 {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(victim as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            // Connections the kernel queues on a dying process's listener are
            // reset when it dies; an L4 balancer cannot hide those. Wait until
            // it is gone, then every request must succeed.
            until("the killed process is gone", || !alive(victim)).await;
        }
        if who(addr).await.is_empty() {
            failures += 1;
        }
    }
    assert_eq!(
        failures, 0,
        "requests failed through the VIP while an instance was replaced"
    );
    until("Web_IN_0 is back with a new process", || {
        let i = &c.services()[0].deployments[0].roles[0].instances[0];
        i.ready && i.pid.is_some_and(|p| p != victim) && i.restarts >= 1
    })
    .await;
    let pids: Vec<u32> = c.services()[0].deployments[0].roles[0]
        .instances
        .iter()
        .filter_map(|i| i.pid)
        .collect();

    let del = c.delete_deployment("svc", Slot::Production).await.unwrap();
    assert_eq!(
        c.wait(&del).await.unwrap().status,
        OperationStatus::Succeeded
    );
    assert!(c.services().is_empty());
    for pid in pids {
        assert!(
            !alive(pid),
            "process {pid} of a deleted deployment is still running"
        );
    }
    c.shutdown().await;
}
