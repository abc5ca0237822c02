//! The real `hello` binary run by the real agent, as `weft up` runs it:
//! packaged, started with `setReadyOnProcessStart="false"`, ready only once
//! it says Ready and its `/healthz` probe passes, back after a SIGKILL.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use weft_agent::protocol::{
    AgentApi, EndpointKind, EndpointProtocol, EndpointSpec, InstanceReport, InstanceSpec,
    InstanceStatus, LocalResourceSpec, PackageRef, ProbeSpec, ResourceLimits, settings_digest,
};
use weft_agent::{Agent, AgentConfig};

const DEADLINE: Duration = Duration::from_secs(15);

/// Packages the built `hello` binary as role `Web`.
fn package(dir: &std::path::Path) -> PackageRef {
    let root = dir.join("Web");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_hello"), root.join("hello")).unwrap();
    let path = dir.join("hello.cspkg");
    let manifest = weft_package::build_package(
        &weft_package::PackageSpec {
            service_definition: b"<ServiceDefinition name=\"hello\"/>".to_vec(),
            roles: vec![weft_package::RoleSource {
                name: "Web".into(),
                dir: root,
            }],
        },
        &path,
        &weft_package::BuildOptions::default(),
    )
    .unwrap();
    PackageRef {
        path,
        digest: manifest.digest,
    }
}

fn web(package: &PackageRef, n: u32) -> InstanceSpec {
    InstanceSpec {
        deployment_id: "0123456789abcdef0123456789abcdef".into(),
        role: "Web".into(),
        instance_id: format!("Web_IN_{n}"),
        update_domain: n % 5,
        fault_domain: n % 2,
        incarnation: 1,
        reimage: 0,
        stopped: false,
        package: package.clone(),
        startup: Vec::new(),
        entry_point: Some("./hello web".into()),
        set_ready_on_process_start: false,
        environment: Vec::new(),
        settings: BTreeMap::from([("Greeting".into(), "hello from weft".into())]),
        local_resources: vec![LocalResourceSpec {
            name: "Scratch".into(),
            size_mb: 64,
            clean_on_role_recycle: true,
        }],
        endpoints: vec![EndpointSpec {
            name: "HttpIn".into(),
            kind: EndpointKind::Input,
            protocol: EndpointProtocol::Http,
            // Both instances ask for the same port: the agent remaps one.
            local_port: Some(18080),
            ignore_role_instance_status: false,
            probe: Some(ProbeSpec {
                http_path: Some("/healthz".into()),
                port: None,
                interval_ms: 5000,
                timeout_ms: 11000,
            }),
        }],
        elevated: false,
        limits: ResourceLimits::default(),
    }
}

async fn until(
    agent: &Agent,
    what: &str,
    pred: impl Fn(&[InstanceReport]) -> bool,
) -> Vec<InstanceReport> {
    let mut rx = agent.reports();
    let waited = tokio::time::timeout(DEADLINE, rx.wait_for(|r| pred(r)))
        .await
        .map(|r| r.map(|reports| reports.clone()));
    match waited {
        Ok(Ok(reports)) => reports,
        _ => panic!(
            "timed out waiting for {what}; last reports: {:#?}",
            *rx.borrow()
        ),
    }
}

fn find<'a>(reports: &'a [InstanceReport], id: &str) -> &'a InstanceReport {
    reports.iter().find(|r| r.instance_id == id).unwrap()
}

async fn get(addr: SocketAddr) -> String {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: hello\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.split_once("\r\n\r\n").unwrap().1.to_owned()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn hello_web_under_the_agent_is_ready_answers_and_comes_back_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let package = package(dir.path());
    let mut config = AgentConfig::new(dir.path().join("state"));
    config.grace_period = Duration::from_secs(3);
    let agent = Agent::open(config).unwrap();
    agent
        .apply(vec![web(&package, 0), web(&package, 1)])
        .await
        .unwrap();
    let both = |r: &[InstanceReport]| {
        r.len() == 2
            && r.iter()
                .all(|x| x.ready && x.status == InstanceStatus::ReadyRole)
    };
    let reports = until(&agent, "both instances ready", both).await;

    let mut ports = Vec::new();
    for (n, ud, fd) in [(0, 0, 0), (1, 1, 1)] {
        let id = format!("Web_IN_{n}");
        let addr = find(&reports, &id).endpoints["HttpIn"];
        ports.push(addr.port());
        assert_eq!(
            get(addr).await,
            format!("hello from {id} (upgrade domain {ud}, fault domain {fd}): hello from weft\n")
        );
    }
    assert_ne!(ports[0], ports[1], "two instances on one port");

    let first = find(&reports, "Web_IN_0").pid.unwrap();
    let killed = Instant::now();
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let reports = until(&agent, "Web_IN_0 ready again with a new pid", |r| {
        r.iter()
            .any(|x| x.instance_id == "Web_IN_0" && x.ready && x.pid.is_some_and(|p| p != first))
    })
    .await;
    println!("hello web: SIGKILL → ready again in {:?}", killed.elapsed());
    let again = find(&reports, "Web_IN_0");
    assert_eq!(again.restarts, 1);
    assert!(
        get(again.endpoints["HttpIn"])
            .await
            .starts_with("hello from Web_IN_0 ")
    );

    agent.shutdown().await.unwrap();
}

#[tokio::test]
async fn under_the_agent_a_generation_change_recycles_and_a_greeting_change_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let package = package(dir.path());
    let mut config = AgentConfig::new(dir.path().join("state"));
    config.grace_period = Duration::from_secs(3);
    let agent = Agent::open(config).unwrap();
    let mut spec = web(&package, 0);
    // Any free port: the other test's agent asks for the declared one.
    spec.endpoints[0].local_port = None;
    spec.settings.insert("Generation".into(), "1".into());
    agent.apply(vec![spec.clone()]).await.unwrap();
    let reports = until(&agent, "ready", |r| r.len() == 1 && r[0].ready).await;
    let first = find(&reports, "Web_IN_0").clone();
    let addr = first.endpoints["HttpIn"];

    // Greeting: taken live, same process, new greeting served.
    spec.settings
        .insert("Greeting".into(), "hello again".into());
    agent.apply(vec![spec.clone()]).await.unwrap();
    let digest = settings_digest(&spec.settings);
    let reports = until(&agent, "the Greeting change applied", |r| {
        r[0].ready && r[0].settings_digest == digest
    })
    .await;
    assert_eq!(find(&reports, "Web_IN_0").pid, first.pid, "no recycle");
    // hello re-reads its settings on Changed, just after the agent sent it.
    let expected = "hello from Web_IN_0 (upgrade domain 0, fault domain 0): hello again\n";
    let deadline = Instant::now() + DEADLINE;
    while get(addr).await != expected {
        assert!(
            Instant::now() < deadline,
            "the new greeting is never served"
        );
        tokio::task::yield_now().await;
    }

    // Generation: hello cancels, the agent recycles it with the new value.
    spec.settings.insert("Generation".into(), "2".into());
    agent.apply(vec![spec.clone()]).await.unwrap();
    let digest = settings_digest(&spec.settings);
    let reports = until(&agent, "recycled with Generation 2", |r| {
        r[0].ready && r[0].settings_digest == digest
    })
    .await;
    let again = find(&reports, "Web_IN_0");
    assert_ne!(again.pid, first.pid, "a new process");
    assert_eq!(again.restarts, 0, "a recycle, not a crash");
    assert_eq!(again.status, InstanceStatus::ReadyRole);
    assert_eq!(
        get(again.endpoints["HttpIn"]).await,
        "hello from Web_IN_0 (upgrade domain 0, fault domain 0): hello again\n"
    );
    agent.shutdown().await.unwrap();
}
