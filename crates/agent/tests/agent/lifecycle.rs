//! Start, ready, recycle, remove, shutdown.

use weft_agent::protocol::{AgentApi, InstanceStatus};

use crate::common::*;

#[tokio::test]
async fn an_instance_starts_becomes_ready_and_stops() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    agent
        .apply(vec![spec(&role, "Worker_IN_0", "./run.sh")])
        .await
        .unwrap();
    let reports = until(&agent, "Worker_IN_0 ready", |r| ready(r, "Worker_IN_0")).await;
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert_eq!(r.status, InstanceStatus::ReadyRole);
    assert_eq!(r.incarnation, 1);
    assert_eq!(r.restarts, 0);
    let pid = r.pid.expect("a ready instance reports its pid");
    assert!(alive(pid), "the entry point {pid} runs");

    shutdown(&agent).await;
    assert!(
        agent.reports().borrow().is_empty(),
        "no instance is reported after shutdown"
    );
    assert!(!alive(pid), "the entry point {pid} is gone after shutdown");
}

#[tokio::test]
async fn removing_an_instance_from_the_desired_set_stops_only_it() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    agent
        .apply(vec![
            spec(&role, "Worker_IN_0", "./run.sh"),
            spec(&role, "Worker_IN_1", "./run.sh"),
        ])
        .await
        .unwrap();
    let reports = until(&agent, "both ready", |r| {
        ready(r, "Worker_IN_0") && ready(r, "Worker_IN_1")
    })
    .await;
    let kept = report(&reports, "Worker_IN_0").unwrap().pid.unwrap();
    let removed = report(&reports, "Worker_IN_1").unwrap().pid.unwrap();

    agent
        .apply(vec![spec(&role, "Worker_IN_0", "./run.sh")])
        .await
        .unwrap();
    until(&agent, "Worker_IN_1 gone", |r| {
        report(r, "Worker_IN_1").is_none()
    })
    .await;
    assert!(
        !alive(removed),
        "the removed instance's process {removed} is gone"
    );
    assert!(alive(kept), "the kept instance's process {kept} still runs");
    assert_eq!(
        report(&agent.reports().borrow(), "Worker_IN_0")
            .unwrap()
            .pid,
        Some(kept)
    );
    shutdown(&agent).await;
}

#[tokio::test]
async fn a_new_incarnation_recycles_the_instance() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    agent.apply(vec![s.clone()]).await.unwrap();
    let reports = until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let first = report(&reports, "Worker_IN_0").unwrap().pid.unwrap();

    s.incarnation = 2;
    agent.apply(vec![s]).await.unwrap();
    let reports = until(&agent, "incarnation 2 ready", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.incarnation == 2 && x.ready)
    })
    .await;
    let second = report(&reports, "Worker_IN_0").unwrap().pid.unwrap();
    assert_ne!(first, second);
    assert!(
        !alive(first),
        "the old incarnation's process {first} is gone"
    );
    shutdown(&agent).await;
}

#[tokio::test]
async fn a_second_agent_on_the_same_state_directory_is_refused() {
    let (state, _agent) = open();
    let err = weft_agent::Agent::open(config(state.path()))
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("is in use by another agent"),
        "{err}"
    );
}

#[tokio::test]
async fn a_spec_with_a_path_in_its_instance_id_is_refused_whole() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    let err = agent
        .apply(vec![
            spec(&role, "Worker_IN_0", "./run.sh"),
            spec(&role, "../x", "./run.sh"),
        ])
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid spec for instance ../x"),
        "{err}"
    );
    assert!(agent.reports().borrow().is_empty(), "nothing was started");
}

#[tokio::test]
async fn a_package_that_does_not_match_its_digest_fails_the_start() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.package.digest = "ab".repeat(32);
    agent.apply(vec![s]).await.unwrap();
    let reports = until(&agent, "failed", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.status == InstanceStatus::FailedStartingRole)
    })
    .await;
    let message = report(&reports, "Worker_IN_0")
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(message.contains("not the abab"), "{message}");
    shutdown(&agent).await;
}

#[tokio::test]
async fn after_shutdown_a_new_agent_takes_the_state_directory_and_the_old_handle_refuses_work() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (state, agent) = open();
    agent
        .apply(vec![spec(&role, "Worker_IN_0", "./run.sh")])
        .await
        .unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    shutdown(&agent).await;

    let next = weft_agent::Agent::open(config(state.path()))
        .expect("the directory is free after shutdown");
    next.apply(vec![spec(&role, "Worker_IN_0", "./run.sh")])
        .await
        .unwrap();
    let reports = until(&next, "ready under the new agent", |r| {
        ready(r, "Worker_IN_0")
    })
    .await;
    let pid = report(&reports, "Worker_IN_0").unwrap().pid.unwrap();

    let err = agent.apply(Vec::new()).await.unwrap_err();
    assert_eq!(err.to_string(), "the agent is shut down");
    drop(agent);
    assert!(
        alive(pid),
        "dropping the old handle leaves the new agent's instance alone"
    );
    assert_eq!(processes_of(state.path(), "Worker_IN_0"), vec![pid]);
    shutdown(&next).await;
}

#[tokio::test]
async fn a_missing_entry_program_fails_the_start_clearly() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    agent
        .apply(vec![spec(&role, "Worker_IN_0", "./hello web")])
        .await
        .unwrap();
    let reports = until(&agent, "failed", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.status == InstanceStatus::FailedStartingRole)
    })
    .await;
    assert_eq!(
        report(&reports, "Worker_IN_0").unwrap().message.as_deref(),
        Some("the entry point `./hello web`: ./hello does not exist in the approot")
    );
    shutdown(&agent).await;
}
