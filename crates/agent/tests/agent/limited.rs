//! `executionContext`: limited processes run as the configured user when
//! the agent is root; elevated ones as root.

use std::os::unix::fs::PermissionsExt;

use weft_agent::Agent;
use weft_agent::protocol::{AgentApi, StartupTaskSpec, TaskType};

use crate::common::*;

#[tokio::test]
async fn limited_processes_run_as_the_limited_user_and_elevated_ones_as_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs to run as root"
    );
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a `nobody` user");
    let role = package(&[
        ("task.sh", r#"id -u > "$SCRATCH/task-uid""#),
        (
            "run.sh",
            r#"id -u > "$SCRATCH/entry-uid.tmp"
if [ -r "${WEFT_RUNTIME#unix:}" ] && [ -w "${WEFT_RUNTIME#unix:}" ]; then echo reachable; else echo unreachable; fi > "$SCRATCH/socket"
mv "$SCRATCH/entry-uid.tmp" "$SCRATCH/entry-uid"
exec sleep 1000"#,
        ),
    ]);
    let state = tempfile::tempdir().unwrap();
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cfg = config(state.path());
    cfg.limited_user = Some("nobody".into());
    let agent = Agent::open(cfg).unwrap();
    let mut limited = spec(&role, "Worker_IN_0", "./run.sh");
    limited.startup = vec![StartupTaskSpec {
        elevated: true,
        ..crate::startup::task("./task.sh", TaskType::Simple)
    }];
    let mut elevated = spec(&role, "Worker_IN_1", "./run.sh");
    elevated.elevated = true;
    agent.apply(vec![limited, elevated]).await.unwrap();
    until(&agent, "both ready", |r| {
        ready(r, "Worker_IN_0") && ready(r, "Worker_IN_1")
    })
    .await;

    let read = |id: &str, file: &str| {
        let path = scratch(&agent, id).join(file);
        async move { read_when_written(&path).await.trim().to_owned() }
    };
    assert_eq!(
        read("Worker_IN_0", "entry-uid").await,
        nobody.uid.to_string(),
        "limited entry point"
    );
    assert_eq!(
        read("Worker_IN_0", "task-uid").await,
        "0",
        "elevated startup task"
    );
    assert_eq!(
        read("Worker_IN_0", "socket").await,
        "reachable",
        "the limited instance reaches its runtime endpoint"
    );
    assert_eq!(
        read("Worker_IN_1", "entry-uid").await,
        "0",
        "elevated entry point"
    );
    shutdown(&agent).await;
}
