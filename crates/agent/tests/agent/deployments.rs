//! Instances are keyed per deployment: production and staging both run a
//! `Worker_IN_0`, each with its own process, directory and logs.

use weft_agent::protocol::{AgentApi, LogQuery, LogStream};

use crate::common::*;

const STAGING: &str = "fedcba9876543210fedcba9876543210";

#[tokio::test]
async fn two_deployments_each_run_their_own_instance_of_the_same_name() {
    let role = package(&[(
        "run.sh",
        r#"echo "$WEFT_DEPLOYMENT_ID" > "$SCRATCH/deployment"; echo "I am $WEFT_DEPLOYMENT_ID"; exec sleep 1000"#,
    )]);
    let (_state, agent) = open();
    let production = spec(&role, "Worker_IN_0", "./run.sh");
    let mut staging = production.clone();
    staging.deployment_id = STAGING.into();
    agent
        .apply(vec![production.clone(), staging.clone()])
        .await
        .unwrap();
    let reports = until(&agent, "both deployments' Worker_IN_0 ready", |r| {
        [DEPLOYMENT, STAGING]
            .iter()
            .all(|d| report_in(r, d, "Worker_IN_0").is_some_and(|x| x.ready))
    })
    .await;
    let prod_pid = report_in(&reports, DEPLOYMENT, "Worker_IN_0")
        .unwrap()
        .pid
        .unwrap();
    let staging_pid = report_in(&reports, STAGING, "Worker_IN_0")
        .unwrap()
        .pid
        .unwrap();
    assert_ne!(prod_pid, staging_pid, "one process per deployment");

    for d in [DEPLOYMENT, STAGING] {
        let file = agent
            .instance_dir(d, "Worker_IN_0")
            .join("local/Scratch/deployment");
        until_file(&file, &format!("{d}\n")).await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let page = agent
                .logs(
                    d,
                    "Worker_IN_0",
                    LogQuery {
                        stream: LogStream::Stdout,
                        tail: None,
                        after: None,
                    },
                )
                .await
                .unwrap();
            if !page.lines.is_empty() {
                let lines: Vec<_> = page.lines.into_iter().map(|l| l.text).collect();
                assert_eq!(lines, [format!("I am {d}")], "the logs of {d}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no log of {d}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    // Removing staging's instance leaves production's alone.
    agent.apply(vec![production]).await.unwrap();
    until(&agent, "staging's Worker_IN_0 gone", |r| {
        report_in(r, STAGING, "Worker_IN_0").is_none()
    })
    .await;
    assert!(
        !alive(staging_pid),
        "staging's process {staging_pid} is gone"
    );
    assert!(
        alive(prod_pid),
        "production's process {prod_pid} still runs"
    );
    assert_eq!(
        processes_of(agent.state_dir(), "Worker_IN_0"),
        [prod_pid],
        "only production's instance has processes"
    );
    shutdown(&agent).await;
}

#[tokio::test]
async fn the_same_deployment_and_instance_twice_is_refused_whole() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    let s = spec(&role, "Worker_IN_0", "./run.sh");
    let err = agent.apply(vec![s.clone(), s]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("instance Worker_IN_0 of deployment {DEPLOYMENT} appears twice in the desired set")
    );
    assert!(agent.reports().borrow().is_empty(), "nothing was started");
    shutdown(&agent).await;
}

#[tokio::test]
async fn opening_removes_instance_directories_of_the_old_layout() {
    let state = tempfile::tempdir().unwrap();
    let old = state.path().join("instances/Web_IN_0");
    std::fs::create_dir_all(old.join("logs")).unwrap();
    std::fs::create_dir_all(old.join("local/Scratch")).unwrap();
    std::fs::write(old.join("logs/stdout.log"), "old\n").unwrap();
    std::fs::write(old.join("local/Scratch/data"), "old\n").unwrap();
    let new = state
        .path()
        .join("instances")
        .join(DEPLOYMENT)
        .join("Web_IN_0");
    std::fs::create_dir_all(new.join("logs")).unwrap();
    std::fs::write(new.join("logs/stdout.log"), "new\n").unwrap();

    let agent = weft_agent::Agent::open(config(state.path())).unwrap();
    assert!(!old.exists(), "the old layout's directory is removed");
    assert_eq!(
        std::fs::read_to_string(new.join("logs/stdout.log")).unwrap(),
        "new\n",
        "a deployment's directory is kept"
    );
    shutdown(&agent).await;
}
