//! A settings change within an incarnation: applied live unless a listener
//! cancels Changing, which recycles the instance with the new settings; the
//! report's settings digest says which settings the process has.

use weft_agent::protocol::{AgentApi, InstanceReport, InstanceStatus, settings_digest};
use weft_runtime::client::RoleEnvironment;
use weft_runtime::protocol::{Change, RuntimeEvent};

use crate::common::*;

const RUN: &str = r#"echo "$WEFT_RUNTIME" > "$SCRATCH/runtime"; exec sleep 1000"#;

/// Starts `Worker_IN_0` and connects to its runtime endpoint.
async fn started(
    role: &Role,
) -> (
    tempfile::TempDir,
    weft_agent::Agent,
    weft_agent::protocol::InstanceSpec,
    RoleEnvironment,
    InstanceReport,
) {
    let (state, agent) = open();
    let s = spec(role, "Worker_IN_0", "./run.sh");
    agent.apply(vec![s.clone()]).await.unwrap();
    let reports = until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let first = report(&reports, "Worker_IN_0").unwrap().clone();
    assert_eq!(
        first.settings_digest,
        settings_digest(&s.settings),
        "the digest of the settings it started with"
    );
    let address = read_when_written(&scratch(&agent, "Worker_IN_0").join("runtime")).await;
    let env = RoleEnvironment::connect_to(address.trim().parse().unwrap())
        .await
        .unwrap();
    (state, agent, s, env, first)
}

fn greeting() -> Vec<Change> {
    vec![Change::Setting {
        name: "Greeting".into(),
    }]
}

#[tokio::test]
async fn a_change_nobody_cancels_is_applied_live_and_the_digest_follows() {
    let role = package(&[("run.sh", RUN)]);
    let (_state, agent, mut s, env, first) = started(&role).await;
    let mut events = env.answering_events().await.unwrap();

    s.settings.insert("Greeting".into(), "bonjour".into());
    agent.apply(vec![s.clone()]).await.unwrap();
    let Some(Ok(RuntimeEvent::Changing {
        id: Some(id),
        changes,
    })) = events.next().await
    else {
        panic!("an answering stream gets Changing with an id");
    };
    assert_eq!(changes, greeting());
    env.answer_changing(id, false).await.unwrap();
    assert_eq!(
        events.next().await.unwrap().unwrap(),
        RuntimeEvent::Changed {
            changes: greeting()
        }
    );
    let new = settings_digest(&s.settings);
    let reports = until(&agent, "the new digest", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.settings_digest == new)
    })
    .await;
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert_eq!(r.pid, first.pid, "no restart");
    assert!(r.ready);
    assert_eq!(env.setting("Greeting").await.unwrap(), "bonjour");
    shutdown(&agent).await;
}

#[tokio::test]
async fn with_no_listener_a_change_is_applied_live() {
    let role = package(&[("run.sh", RUN)]);
    let (_state, agent, mut s, env, first) = started(&role).await;
    s.settings.insert("Greeting".into(), "hola".into());
    agent.apply(vec![s.clone()]).await.unwrap();
    let new = settings_digest(&s.settings);
    let reports = until(&agent, "the new digest", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.settings_digest == new && x.ready)
    })
    .await;
    assert_eq!(report(&reports, "Worker_IN_0").unwrap().pid, first.pid);
    assert_eq!(env.setting("Greeting").await.unwrap(), "hola");
    shutdown(&agent).await;
}

#[tokio::test]
async fn a_cancelled_change_recycles_the_instance_with_the_new_settings() {
    let role = package(&[(
        "run.sh",
        // Ignores SIGTERM: the old process lives out the grace period.
        r#"trap '' TERM; echo "$WEFT_RUNTIME" > "$SCRATCH/runtime"; echo "$GREETING" >> "$SCRATCH/greetings"; exec sleep 1000"#,
    )]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.environment.push(weft_agent::protocol::EnvVar {
        name: "GREETING".into(),
        value: weft_agent::protocol::EnvValue::XPath(
            "/RoleEnvironment/CurrentInstance/ConfigurationSettings/ConfigurationSetting[@name='Greeting']/@value".into(),
        ),
    });
    agent.apply(vec![s.clone()]).await.unwrap();
    let reports = until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let first = report(&reports, "Worker_IN_0").unwrap().clone();
    let greetings = scratch(&agent, "Worker_IN_0").join("greetings");
    until_file(&greetings, "hello\n").await;
    let address = read_when_written(&scratch(&agent, "Worker_IN_0").join("runtime")).await;
    let env = RoleEnvironment::connect_to(address.trim().parse().unwrap())
        .await
        .unwrap();
    // One stream that accepts and one that cancels: any cancel wins.
    let mut accepting = env.answering_events().await.unwrap();
    let mut cancelling = env.answering_events().await.unwrap();
    let mut statuses = agent.reports();

    s.settings.insert("Greeting".into(), "salut".into());
    agent.apply(vec![s.clone()]).await.unwrap();
    for (events, cancel) in [(&mut accepting, false), (&mut cancelling, true)] {
        let Some(Ok(RuntimeEvent::Changing { id: Some(id), .. })) = events.next().await else {
            panic!("Changing with an id");
        };
        env.answer_changing(id, cancel).await.unwrap();
    }
    assert_eq!(
        cancelling.next().await.unwrap().unwrap(),
        RuntimeEvent::Stopping,
        "a cancelled change stops the instance, no Changed"
    );
    // Azure applies a cancelled change only at the restart: the stopping
    // process still reads the old values.
    assert_eq!(env.setting("Greeting").await.unwrap(), "hello");
    let new = settings_digest(&s.settings);
    let mut seen = Vec::new();
    let recycled = tokio::time::timeout(DEADLINE, async {
        loop {
            let done = {
                let reports = statuses.borrow_and_update();
                let r = report(&reports, "Worker_IN_0").unwrap();
                seen.push(r.status);
                r.ready && r.settings_digest == new
            };
            if done {
                break;
            }
            statuses.changed().await.unwrap();
        }
    })
    .await;
    assert!(
        recycled.is_ok(),
        "never ready with the new settings: {seen:?}"
    );
    let reports = agent.reports().borrow().clone();
    let r = report(&reports, "Worker_IN_0").unwrap();
    assert_ne!(r.pid, first.pid, "a new process");
    assert_eq!(r.restarts, 0, "a recycle, not a crash restart");
    assert_eq!(r.incarnation, first.incarnation);
    assert!(
        !seen.iter().any(|s| matches!(
            s,
            InstanceStatus::RestartingRole | InstanceStatus::CyclingRole
        )),
        "reported like a reboot, not a crash: {seen:?}"
    );
    assert!(!alive(first.pid.unwrap()));
    until_file(&greetings, "hello\nsalut\n").await;
    assert_eq!(env.setting("Greeting").await.unwrap(), "salut");
    shutdown(&agent).await;
}

#[tokio::test]
async fn an_entry_point_restarted_after_a_live_change_gets_the_new_values() {
    let role = package(&[(
        "run.sh",
        r#"echo "$GREETING" >> "$SCRATCH/greetings"; exec sleep 1000"#,
    )]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.environment.push(weft_agent::protocol::EnvVar {
        name: "GREETING".into(),
        value: weft_agent::protocol::EnvValue::XPath(
            "/RoleEnvironment/CurrentInstance/ConfigurationSettings/ConfigurationSetting[@name='Greeting']/@value".into(),
        ),
    });
    agent.apply(vec![s.clone()]).await.unwrap();
    let reports = until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let pid = report(&reports, "Worker_IN_0").unwrap().pid.unwrap();
    let greetings = scratch(&agent, "Worker_IN_0").join("greetings");
    until_file(&greetings, "hello\n").await;

    s.settings.insert("Greeting".into(), "hola".into());
    agent.apply(vec![s.clone()]).await.unwrap();
    let new = settings_digest(&s.settings);
    until(&agent, "the change applied live", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.settings_digest == new && x.pid == Some(pid))
    })
    .await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    until(&agent, "restarted", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.ready && x.pid.is_some_and(|p| p != pid))
    })
    .await;
    until_file(&greetings, "hello\nhola\n").await;
    shutdown(&agent).await;
}
