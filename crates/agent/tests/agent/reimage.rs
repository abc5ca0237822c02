//! Reboot (a new incarnation) keeps local storage that is not cleaned on
//! recycle; reimage (a new reimage counter) deletes all of it and gives the
//! instance a freshly unpacked approot.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use weft_agent::Agent;
use weft_agent::protocol::{AgentApi, InstanceStatus};

use crate::common::*;

const RUN: &str = r#"pwd > "$SCRATCH/approot"; echo run >> "$SCRATCH/runs"; exec sleep 1000"#;

#[tokio::test]
async fn reboot_keeps_local_storage_reimage_wipes_it_and_replaces_a_damaged_approot() {
    let role = package(&[("run.sh", RUN)]);
    let state = tempfile::tempdir().unwrap();
    let agent = Agent::open(config(state.path())).unwrap();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    agent.apply(vec![s.clone()]).await.unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let runs = scratch(&agent, "Worker_IN_0").join("runs");
    until_file(&runs, "run\n").await;
    let shared = agent
        .state_dir()
        .join("approots")
        .join(&role.digest)
        .join("Worker");
    assert_eq!(
        read_when_written(&scratch(&agent, "Worker_IN_0").join("approot"))
            .await
            .trim(),
        shared.to_str().unwrap(),
        "runs from the shared approot"
    );

    // Reboot: the Scratch resource (cleanOnRoleRecycle="false") is kept.
    s.incarnation = 2;
    agent.apply(vec![s.clone()]).await.unwrap();
    until(&agent, "incarnation 2 ready", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.incarnation == 2 && x.ready)
    })
    .await;
    until_file(&runs, "run\nrun\n").await;

    // Damage the shared approot: a reboot now fails to start...
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(shared.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(shared.join("run.sh"), "#!/bin/sh\nexit 7\n").unwrap();
    s.incarnation = 3;
    agent.apply(vec![s.clone()]).await.unwrap();
    until(&agent, "the damaged approot crashes", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| {
            x.incarnation == 3
                && x.message
                    .as_deref()
                    .is_some_and(|m| m.contains("exited with status 7"))
        })
    })
    .await;

    // ...a reimage wipes local storage and runs from a fresh approot.
    s.incarnation = 4;
    s.reimage = 1;
    agent.apply(vec![s.clone()]).await.unwrap();
    let reports = until(&agent, "reimaged and ready", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.incarnation == 4 && x.ready)
    })
    .await;
    assert_eq!(
        report(&reports, "Worker_IN_0").unwrap().status,
        InstanceStatus::ReadyRole
    );
    until_file(&runs, "run\n").await;
    let own = agent
        .instance_dir(DEPLOYMENT, "Worker_IN_0")
        .join("approot")
        .join(&role.digest)
        .join("Worker");
    assert_eq!(
        read_when_written(&scratch(&agent, "Worker_IN_0").join("approot"))
            .await
            .trim(),
        own.to_str().unwrap(),
        "runs from its own fresh approot"
    );
    assert_eq!(
        fs::metadata(own.join("run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o222,
        0,
        "the fresh approot is read-only"
    );

    // The reimage is done once: a new agent on the same state directory
    // (weft restarted) keeps what the instance wrote since.
    shutdown(&agent).await;
    drop(agent);
    let agent = Agent::open(config(state.path())).unwrap();
    agent.apply(vec![s]).await.unwrap();
    until(&agent, "ready after reopening", |r| ready(r, "Worker_IN_0")).await;
    until_file(&runs, "run\nrun\n").await;
    shutdown(&agent).await;
}

#[tokio::test]
async fn a_removed_instance_added_again_starts_with_clean_local_storage_and_keeps_its_logs() {
    let role = package(&[(
        "run.sh",
        r#"echo run >> "$SCRATCH/runs"; echo started; exec sleep 1000"#,
    )]);
    let (_state, agent) = open();
    let s = spec(&role, "Worker_IN_1", "./run.sh");
    agent.apply(vec![s.clone()]).await.unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_1")).await;
    let runs = scratch(&agent, "Worker_IN_1").join("runs");
    until_file(&runs, "run\n").await;
    let dir = agent.instance_dir(DEPLOYMENT, "Worker_IN_1");

    // Delete Role Instances: the instance leaves the desired set.
    agent.apply(Vec::new()).await.unwrap();
    until(&agent, "removed", |r| report(r, "Worker_IN_1").is_none()).await;
    // Added again under the same name (a later scale-out): its
    // cleanOnRoleRecycle="false" storage is not the deleted one's.
    agent.apply(vec![s]).await.unwrap();
    until(&agent, "ready again", |r| ready(r, "Worker_IN_1")).await;
    // Its logs are kept: the second run's line follows the first's (and
    // says the second run has written its storage).
    until_file(&dir.join("logs").join("stdout.log"), "started\nstarted\n").await;
    assert_eq!(fs::read_to_string(&runs).unwrap(), "run\n");
    shutdown(&agent).await;
}
