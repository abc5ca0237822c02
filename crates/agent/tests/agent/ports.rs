//! Endpoint ports: the declared one when free, else remapped.

use std::net::TcpListener;

use weft_agent::protocol::{AgentApi, EndpointKind, EndpointProtocol, EndpointSpec};

use crate::common::*;

#[tokio::test]
async fn two_instances_declaring_the_same_port_get_different_ones() {
    let wanted = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let role = package(&[(
        "run.sh",
        r#"echo "$WEFT_ENDPOINT_HTTP" > "$SCRATCH/endpoint"; exec sleep 1000"#,
    )]);
    let (_state, agent) = open();
    let with_endpoint = |id: &str| {
        let mut s = spec(&role, id, "./run.sh");
        s.endpoints.push(EndpointSpec {
            name: "Http".into(),
            kind: EndpointKind::Input,
            protocol: EndpointProtocol::Http,
            local_port: Some(wanted),
            ignore_role_instance_status: false,
            probe: None,
        });
        s
    };
    agent
        .apply(vec![
            with_endpoint("Worker_IN_0"),
            with_endpoint("Worker_IN_1"),
        ])
        .await
        .unwrap();
    let reports = until(&agent, "both ready", |r| {
        ready(r, "Worker_IN_0") && ready(r, "Worker_IN_1")
    })
    .await;
    let a = report(&reports, "Worker_IN_0").unwrap().endpoints["Http"];
    let b = report(&reports, "Worker_IN_1").unwrap().endpoints["Http"];
    assert_ne!(a.port(), b.port());
    assert!(
        a.port() == wanted || b.port() == wanted,
        "one keeps {wanted}: {a} {b}"
    );
    for (id, addr) in [("Worker_IN_0", a), ("Worker_IN_1", b)] {
        let seen = read_when_written(&scratch(&agent, id).join("endpoint")).await;
        assert_eq!(
            seen.trim(),
            addr.to_string(),
            "{id} is told its real address"
        );
    }
    shutdown(&agent).await;
}
