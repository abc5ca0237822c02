//! Readiness: probes, the instance's own Busy / Ready, setReadyOnProcessStart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use weft_agent::protocol::{
    AgentApi, EndpointKind, EndpointProtocol, EndpointSpec, InstanceStatus, ProbeSpec,
};
use weft_runtime::client::RoleEnvironment;
use weft_runtime::protocol::RoleStatus;

use crate::common::*;

fn probed(role: &Role, http_path: Option<&str>) -> weft_agent::protocol::InstanceSpec {
    let mut s = spec(role, "Worker_IN_0", "./run.sh");
    s.endpoints.push(EndpointSpec {
        name: "Http".into(),
        kind: EndpointKind::Input,
        protocol: EndpointProtocol::Http,
        local_port: None,
        ignore_role_instance_status: false,
        probe: Some(ProbeSpec {
            http_path: http_path.map(str::to_owned),
            port: None,
            interval_ms: 50,
            timeout_ms: 300,
        }),
    });
    s
}

/// Answers every HTTP request on `listener` with the status in `status`.
fn serve(listener: TcpListener, status: Arc<AtomicU16>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let status = status.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    })
}

#[tokio::test]
async fn a_tcp_probe_decides_readiness() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    agent.apply(vec![probed(&role, None)]).await.unwrap();
    let reports = until(&agent, "running, probe failing", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| {
            x.pid.is_some()
                && x.message
                    .as_deref()
                    .is_some_and(|m| m.contains("probe Http"))
        })
    })
    .await;
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert_eq!((r.status, r.ready), (InstanceStatus::StartingRole, false));
    let addr = r.endpoints["Http"];

    // Something listens on the instance's port: ready.
    let listener = std::net::TcpListener::bind(addr).unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;

    // It stops listening: out of rotation once the probe timeout passes.
    drop(listener);
    let reports = until(&agent, "not ready", |r| !ready(r, "Worker_IN_0")).await;
    assert_eq!(
        report(&reports, "Worker_IN_0").unwrap().status,
        InstanceStatus::UnresponsiveRole
    );
    shutdown(&agent).await;
}

#[tokio::test]
async fn an_http_probe_needs_200() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    agent
        .apply(vec![probed(&role, Some("/healthz"))])
        .await
        .unwrap();
    let reports = until(&agent, "running", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.pid.is_some())
    })
    .await;
    let addr = report(&reports, "Worker_IN_0").unwrap().endpoints["Http"];
    let status = Arc::new(AtomicU16::new(503));
    let server = serve(TcpListener::bind(addr).await.unwrap(), status.clone());
    let reports = until(&agent, "503 reported", |r| {
        report(r, "Worker_IN_0")
            .is_some_and(|x| x.message.as_deref().is_some_and(|m| m.contains("503")))
    })
    .await;
    assert!(!ready(&reports, "Worker_IN_0"));
    status.store(200, Ordering::SeqCst);
    until(&agent, "ready on 200", |r| ready(r, "Worker_IN_0")).await;
    server.abort();
    shutdown(&agent).await;
}

#[tokio::test]
async fn the_instance_reports_ready_and_busy_on_its_runtime_endpoint() {
    let role = package(&[(
        "run.sh",
        r#"echo "$WEFT_RUNTIME" > "$SCRATCH/runtime"; exec sleep 1000"#,
    )]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.set_ready_on_process_start = false;
    agent.apply(vec![s]).await.unwrap();
    let address = read_when_written(&scratch(&agent, "Worker_IN_0").join("runtime")).await;
    let reports = until(&agent, "running", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.pid.is_some())
    })
    .await;
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert_eq!(
        (r.status, r.ready),
        (InstanceStatus::StartingRole, false),
        "waits for the instance's Ready"
    );

    let env = RoleEnvironment::connect_to(address.trim().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(env.instance().await.unwrap().instance_id, "Worker_IN_0");
    env.set_status(RoleStatus::Ready).await.unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    env.set_status(RoleStatus::Busy).await.unwrap();
    let reports = until(&agent, "busy", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.status == InstanceStatus::BusyRole)
    })
    .await;
    assert!(
        !ready(&reports, "Worker_IN_0"),
        "a Busy instance is out of rotation"
    );
    env.set_status(RoleStatus::Ready).await.unwrap();
    until(&agent, "ready again", |r| ready(r, "Worker_IN_0")).await;
    shutdown(&agent).await;
}

#[tokio::test]
async fn an_endpoint_ignoring_the_role_status_serves_on_its_probe_alone() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    let mut s = probed(&role, None);
    // The instance never says Ready, so it is never Ready as a whole...
    s.set_ready_on_process_start = false;
    s.endpoints[0].ignore_role_instance_status = true;
    agent.apply(vec![s]).await.unwrap();
    let reports = until(&agent, "running", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.pid.is_some())
    })
    .await;
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert!(!r.serves("Http"), "served before its probe passed");
    let addr = r.endpoints["Http"];

    // ...but the endpoint serves once its probe passes.
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let reports = until(&agent, "endpoint serving", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.serves("Http"))
    })
    .await;
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert!(!r.ready);
    assert_eq!(r.status, InstanceStatus::StartingRole);
    drop(listener);
    until(&agent, "endpoint out again", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| !x.serves("Http"))
    })
    .await;
}
