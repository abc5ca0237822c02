//! `stopped`: the instance is kept but does not run (a Suspended
//! deployment); clearing it starts the instance again, as after a reboot.

use weft_agent::protocol::{
    AgentApi, EndpointKind, EndpointProtocol, EndpointSpec, InstanceStatus, LocalResourceSpec,
    TaskType,
};

use crate::common::*;
use crate::startup::task;

#[tokio::test]
async fn a_stopped_instance_keeps_its_storage_and_ports_and_starts_again() {
    let role = package(&[
        ("boot.sh", r#"echo boot >> "$SCRATCH/boots""#),
        (
            "run.sh",
            r#"echo data > "$WEFT_LOCAL_TEMP/file"; echo "$WEFT_ENDPOINT_HTTP" > "$SCRATCH/endpoint"; exec sleep 1000"#,
        ),
    ]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.startup = vec![task("./boot.sh", TaskType::Simple)];
    // A resource Azure would clean on recycle: stopping keeps it anyway.
    s.local_resources.push(LocalResourceSpec {
        name: "Temp".into(),
        size_mb: 1,
        clean_on_role_recycle: true,
    });
    s.environment.push(weft_agent::protocol::EnvVar {
        name: "WEFT_LOCAL_TEMP".into(),
        value: weft_agent::protocol::EnvValue::XPath(
            "/RoleEnvironment/CurrentInstance/LocalResources/LocalResource[@name='Temp']/@path"
                .into(),
        ),
    });
    s.endpoints.push(EndpointSpec {
        name: "Http".into(),
        kind: EndpointKind::Input,
        protocol: EndpointProtocol::Http,
        local_port: None,
        ignore_role_instance_status: false,
        probe: None,
    });
    agent.apply(vec![s.clone()]).await.unwrap();
    let reports = until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let first = report(&reports, "Worker_IN_0").unwrap().clone();
    let pid = first.pid.unwrap();
    let temp = agent
        .instance_dir(DEPLOYMENT, "Worker_IN_0")
        .join("local/Temp/file");
    until_file(&temp, "data\n").await;
    until_file(&scratch(&agent, "Worker_IN_0").join("boots"), "boot\n").await;

    s.stopped = true;
    agent.apply(vec![s.clone()]).await.unwrap();
    let reports = until(&agent, "StoppedVM", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.status == InstanceStatus::StoppedVM)
    })
    .await;
    let stopped = report(&reports, "Worker_IN_0").unwrap();
    assert!(!stopped.ready);
    assert_eq!(stopped.pid, None);
    assert_eq!(stopped.settings_digest, "", "no process has settings");
    assert!(!alive(pid), "the entry point {pid} is gone");
    assert_eq!(
        processes_of(agent.state_dir(), "Worker_IN_0"),
        Vec::<u32>::new()
    );
    assert_eq!(
        std::fs::read_to_string(&temp).unwrap(),
        "data\n",
        "all local storage is kept while stopped"
    );

    s.stopped = false;
    agent.apply(vec![s]).await.unwrap();
    let reports = until(&agent, "ready again", |r| ready(r, "Worker_IN_0")).await;
    let again = report(&reports, "Worker_IN_0").unwrap();
    assert_ne!(again.pid, Some(pid));
    assert_eq!(again.restarts, 0, "a start, not a crash restart");
    assert_eq!(
        again.endpoints, first.endpoints,
        "the remapped port is kept for it"
    );
    until_file(
        &scratch(&agent, "Worker_IN_0").join("boots"),
        "boot\nboot\n",
    )
    .await;
    until_file(
        &scratch(&agent, "Worker_IN_0").join("endpoint"),
        &format!("{}\n", first.endpoints["Http"]),
    )
    .await;
    shutdown(&agent).await;
}

#[tokio::test]
async fn an_instance_desired_stopped_from_the_start_never_runs() {
    let role = package(&[("run.sh", r#"touch "$SCRATCH/ran"; exec sleep 1000"#)]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.stopped = true;
    agent.apply(vec![s]).await.unwrap();
    let reports = until(&agent, "StoppedVM", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.status == InstanceStatus::StoppedVM)
    })
    .await;
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert_eq!((r.ready, r.pid, r.incarnation), (false, None, 1));
    assert!(!scratch(&agent, "Worker_IN_0").join("ran").exists());
    shutdown(&agent).await;
}
