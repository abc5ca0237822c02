//! Captured output: files, rotation, tail and follow.

use std::fs;

use weft_agent::Agent;
use weft_agent::protocol::{AgentApi, LogQuery, LogStream};

use crate::common::*;

#[tokio::test]
async fn output_is_captured_rotated_and_served_by_tail_and_cursor() {
    let role = package(&[(
        "run.sh",
        r#"i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); done
echo "oops" >&2
echo done > "$SCRATCH/written"
while [ ! -e "$SCRATCH/go" ]; do sleep 0.02; done
echo later
exec sleep 1000"#,
    )]);
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(state.path());
    cfg.log_rotate_bytes = 500;
    cfg.log_keep = 2;
    let agent = Agent::open(cfg).unwrap();
    agent
        .apply(vec![spec(&role, "Worker_IN_0", "./run.sh")])
        .await
        .unwrap();
    read_when_written(&scratch(&agent, "Worker_IN_0").join("written")).await;
    // The pipes are read asynchronously: wait for the last lines.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let page = agent
            .logs(
                DEPLOYMENT,
                "Worker_IN_0",
                LogQuery {
                    stream: LogStream::Both,
                    tail: None,
                    after: None,
                },
            )
            .await
            .unwrap();
        let texts: Vec<&str> = page.lines.iter().map(|l| l.text.as_str()).collect();
        if texts.contains(&"line 199") && texts.contains(&"oops") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "last lines never captured: {texts:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let logs = agent.instance_dir(DEPLOYMENT, "Worker_IN_0").join("logs");
    assert!(logs.join("stdout.log.1").exists() && logs.join("stdout.log.2").exists());
    assert!(
        !logs.join("stdout.log.3").exists(),
        "only 2 rotated files are kept"
    );
    for k in ["stdout.log", "stdout.log.1", "stdout.log.2"] {
        assert!(
            fs::metadata(logs.join(k)).unwrap().len() < 500 + 20,
            "{k} rotated at size"
        );
    }
    assert_eq!(
        fs::read_to_string(logs.join("stderr.log")).unwrap(),
        "oops\n"
    );
    let newest = fs::read_to_string(logs.join("stdout.log")).unwrap();
    assert!(newest.ends_with("line 199\n"), "{newest}");

    let tail = agent
        .logs(
            DEPLOYMENT,
            "Worker_IN_0",
            LogQuery {
                stream: LogStream::Stdout,
                tail: Some(3),
                after: None,
            },
        )
        .await
        .unwrap();
    let texts: Vec<&str> = tail.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["line 197", "line 198", "line 199"]);
    assert!(tail.lines.iter().all(|l| l.stream == LogStream::Stdout));

    // Everything kept, across the rotated files, in order.
    let kept = agent
        .logs(
            DEPLOYMENT,
            "Worker_IN_0",
            LogQuery {
                stream: LogStream::Stdout,
                tail: None,
                after: None,
            },
        )
        .await
        .unwrap();
    let numbers: Vec<u32> = kept
        .lines
        .iter()
        .map(|l| l.text.strip_prefix("line ").unwrap().parse().unwrap())
        .collect();
    let first = numbers[0];
    assert_eq!(numbers, (first..200).collect::<Vec<_>>());
    assert!(
        numbers.len() > newest.lines().count(),
        "rotated files are read too"
    );
    assert!(first > 0, "the oldest rotated file was dropped");

    // Following from the cursor: nothing new yet, then only the new lines.
    let all = agent
        .logs(
            DEPLOYMENT,
            "Worker_IN_0",
            LogQuery {
                stream: LogStream::Both,
                tail: None,
                after: None,
            },
        )
        .await
        .unwrap();
    let none = agent
        .logs(
            DEPLOYMENT,
            "Worker_IN_0",
            LogQuery {
                stream: LogStream::Both,
                tail: None,
                after: Some(all.cursor),
            },
        )
        .await
        .unwrap();
    assert_eq!(none.lines, Vec::new());
    assert_eq!(none.cursor, all.cursor);
    fs::write(scratch(&agent, "Worker_IN_0").join("go"), "").unwrap();
    let mut cursor = all.cursor;
    let mut new = Vec::new();
    while new.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new line never came"
        );
        let page = agent
            .logs(
                DEPLOYMENT,
                "Worker_IN_0",
                LogQuery {
                    stream: LogStream::Both,
                    tail: Some(1),
                    after: Some(cursor),
                },
            )
            .await
            .unwrap();
        cursor = page.cursor;
        new.extend(page.lines.into_iter().map(|l| l.text));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(new, ["later"]);

    shutdown(&agent).await;
    // Logs outlive the instance.
    let after = agent
        .logs(
            DEPLOYMENT,
            "Worker_IN_0",
            LogQuery {
                stream: LogStream::Stderr,
                tail: Some(1),
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(after.lines[0].text, "oops");
    let err = agent
        .logs(
            DEPLOYMENT,
            "Nobody_IN_0",
            LogQuery {
                stream: LogStream::Both,
                tail: None,
                after: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no instance Nobody_IN_0 of deployment 0123456789abcdef0123456789abcdef on this host and no logs of it"
    );
}
