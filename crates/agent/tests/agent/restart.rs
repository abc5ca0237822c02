//! Supervision: restarts after a crash, cycling on a crash loop.

use std::time::Instant;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use weft_agent::protocol::{AgentApi, InstanceStatus};

use crate::common::*;

#[tokio::test]
async fn a_sigkilled_entry_point_is_restarted_with_a_new_pid_and_ready_again() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    agent
        .apply(vec![spec(&role, "Worker_IN_0", "./run.sh")])
        .await
        .unwrap();
    let reports = until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let first = report(&reports, "Worker_IN_0").unwrap().pid.unwrap();

    let killed = Instant::now();
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let reports = until(&agent, "ready with a new pid", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.ready && x.pid.is_some_and(|p| p != first))
    })
    .await;
    let elapsed = killed.elapsed();
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert_eq!(r.restarts, 1);
    assert_eq!(r.status, InstanceStatus::ReadyRole);
    println!("SIGKILL to ready again: {elapsed:?}");
    shutdown(&agent).await;
}

#[tokio::test]
async fn a_crash_loop_makes_the_instance_cycling_and_it_keeps_being_restarted() {
    let role = package(&[("run.sh", "echo crashing >&2; exit 1")]);
    let (_state, agent) = open();
    agent
        .apply(vec![spec(&role, "Worker_IN_0", "./run.sh")])
        .await
        .unwrap();
    let reports = until(&agent, "cycling", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.status == InstanceStatus::CyclingRole)
    })
    .await;
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert!(!r.ready);
    assert!(
        r.restarts >= 4,
        "restarted {} times before cycling",
        r.restarts
    );
    assert_eq!(
        r.message.as_deref(),
        Some("the entry point `./run.sh` exited with status 1")
    );
    let restarts = r.restarts;
    until(&agent, "another restart while cycling", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.restarts > restarts)
    })
    .await;
    shutdown(&agent).await;
}
