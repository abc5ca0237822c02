//! Startup tasks with Azure's semantics.

use std::time::Instant;

use weft_agent::protocol::{AgentApi, EnvValue, EnvVar, InstanceStatus, StartupTaskSpec, TaskType};

use crate::common::*;

/// A task with its own `SCRATCH` (tasks do not see the role's
/// `Runtime/Environment`).
pub fn task(command_line: &str, task_type: TaskType) -> StartupTaskSpec {
    StartupTaskSpec {
        command_line: command_line.into(),
        task_type,
        elevated: false,
        environment: vec![EnvVar {
            name: "SCRATCH".into(),
            value: EnvValue::XPath(
                "/RoleEnvironment/CurrentInstance/LocalResources/LocalResource[@name='Scratch']/@path"
                    .into(),
            ),
        }],
    }
}

#[tokio::test]
async fn simple_tasks_run_in_order_before_the_entry_point() {
    let role = package(&[
        ("one.sh", r#"echo one >> "$SCRATCH/order""#),
        ("two.sh", r#"echo two >> "$SCRATCH/order""#),
        (
            "run.sh",
            r#"echo entry >> "$SCRATCH/order"; exec sleep 1000"#,
        ),
    ]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.startup = vec![
        task("./one.sh", TaskType::Simple),
        task("./two.sh", TaskType::Simple),
    ];
    agent.apply(vec![s]).await.unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let order = scratch(&agent, "Worker_IN_0").join("order");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !std::fs::read_to_string(&order)
        .unwrap_or_default()
        .contains("entry")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the entry point never wrote"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        std::fs::read_to_string(&order).unwrap(),
        "one\ntwo\nentry\n"
    );
    shutdown(&agent).await;
}

#[tokio::test]
async fn a_failing_simple_task_fails_the_start_with_its_exit_status() {
    let role = package(&[
        ("prep.sh", "exit 3"),
        ("run.sh", r#"touch "$SCRATCH/entry-ran"; exec sleep 1000"#),
    ]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.startup = vec![task("./prep.sh", TaskType::Simple)];
    agent.apply(vec![s]).await.unwrap();
    let reports = until(&agent, "failed", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.status == InstanceStatus::FailedStartingRole)
    })
    .await;
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert_eq!(
        r.message.as_deref(),
        Some("startup task `./prep.sh` exited with status 3")
    );
    assert!(!r.ready);
    assert!(
        !scratch(&agent, "Worker_IN_0").join("entry-ran").exists(),
        "the entry point never ran"
    );
    shutdown(&agent).await;
}

/// The failure message ends with what the task said: the last lines of
/// its stderr, else of its stdout (at most 5 lines).
#[tokio::test]
async fn a_failing_simple_task_says_why_in_the_report() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let cases = [
        (
            r#"sh -c 'echo doing >&1; echo "no such thing" >&2; exit 3'"#,
            "exited with status 3: no such thing",
        ),
        (
            "sh -c 'echo; echo only stdout; echo; exit 4'",
            "exited with status 4: only stdout",
        ),
        (
            "sh -c 'for i in 1 2 3 4 5 6 7; do echo line $i >&2; done; exit 1'",
            "exited with status 1: line 3\nline 4\nline 5\nline 6\nline 7",
        ),
        (
            "echo nowhere; kill -9 $$",
            "was killed by signal SIGKILL: nowhere",
        ),
    ];
    let (_state, agent) = open();
    let specs: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, (command_line, _))| {
            let mut s = spec(&role, &format!("Worker_IN_{i}"), "./run.sh");
            s.startup = vec![task(command_line, TaskType::Simple)];
            s
        })
        .collect();
    agent.apply(specs).await.unwrap();
    let reports = until(&agent, "all failed", |r| {
        (0..cases.len()).all(|i| {
            report(r, &format!("Worker_IN_{i}"))
                .is_some_and(|x| x.status == InstanceStatus::FailedStartingRole)
        })
    })
    .await;
    for (i, (command_line, expected)) in cases.iter().enumerate() {
        let r = report(&reports, &format!("Worker_IN_{i}")).unwrap();
        assert_eq!(
            r.message.as_deref(),
            Some(format!("startup task `{command_line}` {expected}").as_str()),
        );
    }
    shutdown(&agent).await;
}

#[tokio::test]
async fn a_foreground_task_keeps_the_instance_from_stopping_until_it_exits() {
    // On SIGTERM the task takes a while to finish its work, then exits.
    let role = package(&[
        (
            "fg.sh",
            r#"trap 'sleep 0.3; echo finished > "$SCRATCH/fg"; exit 0' TERM
echo started > "$SCRATCH/fg"
while :; do sleep 0.05; done"#,
        ),
        ("run.sh", "exec sleep 1000"),
    ]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.startup = vec![task("./fg.sh", TaskType::Foreground)];
    agent.apply(vec![s]).await.unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let marker = scratch(&agent, "Worker_IN_0").join("fg");
    assert_eq!(read_when_written(&marker).await, "started\n");

    let stopping = Instant::now();
    shutdown(&agent).await;
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "finished\n",
        "the stop waited for the foreground task (took {:?})",
        stopping.elapsed()
    );
}

#[tokio::test]
async fn a_background_task_does_not_keep_the_instance_alive() {
    let role = package(&[
        (
            "bg.sh",
            r#"echo $$ > "$SCRATCH/bg.pid"; trap '' TERM; while :; do sleep 0.05; done"#,
        ),
        ("run.sh", "exec sleep 1000"),
    ]);
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(state.path());
    cfg.grace_period = std::time::Duration::from_secs(30);
    let agent = weft_agent::Agent::open(cfg).unwrap();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.startup = vec![task("./bg.sh", TaskType::Background)];
    agent.apply(vec![s]).await.unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let bg: u32 = read_when_written(&scratch(&agent, "Worker_IN_0").join("bg.pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    // The task ignores SIGTERM; the stop does not wait the 30 s grace for it.
    let stopping = Instant::now();
    shutdown(&agent).await;
    assert!(
        stopping.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        stopping.elapsed()
    );
    assert!(!alive(bg), "the background task {bg} was killed");
}

#[tokio::test]
async fn a_background_task_that_ends_is_reaped_while_the_instance_runs() {
    let role = package(&[
        ("bg.sh", r#"echo $$ > "$SCRATCH/bg.pid""#),
        ("run.sh", "exec sleep 1000"),
    ]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.startup = vec![task("./bg.sh", TaskType::Background)];
    agent.apply(vec![s]).await.unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let bg = read_when_written(&scratch(&agent, "Worker_IN_0").join("bg.pid")).await;
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", bg.trim()));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while proc_dir.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ended task {} stays a zombie",
            bg.trim()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    shutdown(&agent).await;
}

#[tokio::test]
async fn a_task_gets_its_own_environment_not_the_roles() {
    let role = package(&[
        (
            "task.sh",
            r#"echo "role=${ROLE_ONLY:-unset} task=${TASK_ONLY:-unset} id=$WEFT_INSTANCE_ID" > "$SCRATCH/task-env""#,
        ),
        (
            "run.sh",
            r#"echo "role=${ROLE_ONLY:-unset} task=${TASK_ONLY:-unset}" > "$SCRATCH/entry-env"; exec sleep 1000"#,
        ),
    ]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.environment.push(EnvVar {
        name: "ROLE_ONLY".into(),
        value: EnvValue::Literal("r".into()),
    });
    let mut t = task("./task.sh", TaskType::Simple);
    t.environment.push(EnvVar {
        name: "TASK_ONLY".into(),
        value: EnvValue::Literal("t".into()),
    });
    s.startup = vec![t];
    agent.apply(vec![s]).await.unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let dir = scratch(&agent, "Worker_IN_0");
    assert_eq!(
        read_when_written(&dir.join("task-env")).await,
        "role=unset task=t id=Worker_IN_0\n"
    );
    assert_eq!(
        read_when_written(&dir.join("entry-env")).await,
        "role=r task=unset\n"
    );
    shutdown(&agent).await;
}
