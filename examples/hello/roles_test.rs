//! The real `hello` binary under a real runtime endpoint, as the agent runs
//! it: the web role answers with its identity, follows setting changes and
//! goes Busy on request; the worker keeps its count across restarts. Both
//! stop cleanly on Stopping.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use weft_runtime::host::RuntimeHost;
use weft_runtime::protocol::{
    Change, Endpoint, InstanceInfo, LocalResource, RUNTIME_ENV, RoleStatus, RuntimeEvent,
};

const DEADLINE: Duration = Duration::from_secs(10);

async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {DEADLINE:?}"))
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn web_info(http: SocketAddr, greeting: &str) -> InstanceInfo {
    InstanceInfo {
        deployment_id: "0123456789abcdef0123456789abcdef".into(),
        role: "Web".into(),
        instance_id: "Web_IN_2".into(),
        update_domain: 2,
        fault_domain: 0,
        settings: BTreeMap::from([("Greeting".into(), greeting.into())]),
        local_resources: BTreeMap::new(),
        endpoints: BTreeMap::from([(
            "HttpIn".into(),
            Endpoint {
                protocol: "http".into(),
                address: http,
            },
        )]),
    }
}

fn worker_info(work: &Path) -> InstanceInfo {
    InstanceInfo {
        deployment_id: "0123456789abcdef0123456789abcdef".into(),
        role: "Worker".into(),
        instance_id: "Worker_IN_0".into(),
        update_domain: 0,
        fault_domain: 0,
        settings: BTreeMap::from([("IntervalSeconds".into(), "60".into())]),
        local_resources: BTreeMap::from([(
            "Work".into(),
            LocalResource {
                path: work.to_path_buf(),
                size_mb: 16,
            },
        )]),
        endpoints: BTreeMap::new(),
    }
}

fn spawn_hello(role: &str, host: &RuntimeHost) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hello"))
        .arg(role)
        .env(RUNTIME_ENV, host.address())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, stdout)
}

async fn expect_line(stdout: &mut Lines<BufReader<ChildStdout>>, expected: &str) {
    within(&format!("output {expected:?}"), async {
        loop {
            match stdout.next_line().await.unwrap() {
                Some(line) if line == expected => return,
                Some(_) => {}
                None => panic!("hello exited before printing {expected:?}"),
            }
        }
    })
    .await
}

async fn wait_status(host: &RuntimeHost, status: RoleStatus) {
    let mut watch = host.status();
    within(
        &format!("status {status:?}"),
        watch.wait_for(|s| *s == Some(status)),
    )
    .await
    .unwrap();
}

/// One HTTP/1.1 request on a new connection; returns (status, body).
async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: hello\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn web_answers_with_its_identity_and_follows_changes() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let host = RuntimeHost::bind(
        &dir.path().join("rt.sock"),
        web_info(addr, "hello from weft"),
    )
    .await
    .unwrap();
    let (child, mut stdout) = spawn_hello("web", &host);
    wait_status(&host, RoleStatus::Ready).await;
    expect_line(
        &mut stdout,
        &format!("Web_IN_2: listening on http://{addr}"),
    )
    .await;

    assert_eq!(
        http(addr, "GET", "/").await,
        (
            200,
            "hello from Web_IN_2 (upgrade domain 2, fault domain 0): hello from weft\n".into()
        )
    );
    assert_eq!(http(addr, "GET", "/healthz").await, (200, "ok\n".into()));
    assert_eq!(http(addr, "GET", "/nope").await.0, 404);

    // Busy takes it out of rotation, Ready brings it back.
    assert_eq!(
        http(addr, "POST", "/busy?ms=100").await,
        (202, "busy for 100 ms\n".into())
    );
    wait_status(&host, RoleStatus::Busy).await;
    wait_status(&host, RoleStatus::Ready).await;
    assert_eq!(http(addr, "POST", "/busy?ms=lots").await.0, 400);

    // A setting change, in Azure's order.
    let changes = vec![Change::Setting {
        name: "Greeting".into(),
    }];
    host.publish(RuntimeEvent::Changing {
        id: None,
        changes: changes.clone(),
    });
    host.set_info(web_info(addr, "hello again"));
    host.publish(RuntimeEvent::Changed { changes });
    let expected = "hello from Web_IN_2 (upgrade domain 2, fault domain 0): hello again\n";
    within("the new greeting", async {
        while http(addr, "GET", "/").await.1 != expected {
            tokio::task::yield_now().await;
        }
    })
    .await;

    host.publish(RuntimeEvent::Stopping);
    expect_line(&mut stdout, "Web_IN_2: stopping").await;
    let status = within("hello web exit", child.wait_with_output())
        .await
        .unwrap()
        .status;
    assert!(status.success(), "hello web exited with {status}");
}

#[tokio::test]
async fn worker_keeps_its_count_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("Work");
    let host = RuntimeHost::bind(&dir.path().join("rt.sock"), worker_info(&work))
        .await
        .unwrap();

    for (run, item) in [(1, 1), (2, 2), (3, 3)] {
        let (child, mut stdout) = spawn_hello("worker", &host);
        expect_line(&mut stdout, &format!("Worker_IN_0: work item {item}")).await;
        wait_status(&host, RoleStatus::Ready).await;
        host.publish(RuntimeEvent::Stopping);
        expect_line(
            &mut stdout,
            &format!("Worker_IN_0: stopping after {item} work items"),
        )
        .await;
        let status = within("hello worker exit", child.wait_with_output())
            .await
            .unwrap()
            .status;
        assert!(
            status.success(),
            "run {run}: hello worker exited with {status}"
        );
        host.clear_status();
    }
    assert_eq!(
        std::fs::read_to_string(work.join("items/log")).unwrap(),
        "work item 1\nwork item 2\nwork item 3\n"
    );
}

#[tokio::test]
async fn worker_refuses_a_bad_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut info = worker_info(&dir.path().join("Work"));
    info.settings
        .insert("IntervalSeconds".into(), "soon".into());
    let host = RuntimeHost::bind(&dir.path().join("rt.sock"), info)
        .await
        .unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hello"))
        .arg("worker")
        .env(RUNTIME_ENV, host.address())
        .output();
    let output = within("hello worker exit", output).await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("IntervalSeconds=\"soon\" is not a whole number of seconds"),
        "{stderr}"
    );
}

#[tokio::test]
async fn web_cancels_a_generation_change_and_takes_a_greeting_change_live() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let mut info = web_info(addr, "hello from weft");
    info.settings.insert("Generation".into(), "1".into());
    let host = RuntimeHost::bind(&dir.path().join("rt.sock"), info)
        .await
        .unwrap();
    let (child, mut stdout) = spawn_hello("web", &host);
    wait_status(&host, RoleStatus::Ready).await;
    expect_line(
        &mut stdout,
        &format!("Web_IN_2: listening on http://{addr}"),
    )
    .await;
    assert_eq!(
        host.subscribers(),
        2,
        "run_role's stream and follow_changes'"
    );

    let greeting = vec![Change::Setting {
        name: "Greeting".into(),
    }];
    let outcome = within(
        "the answer to a Greeting change",
        host.ask_changing(greeting, DEADLINE),
    )
    .await;
    assert_eq!(
        (outcome.asked, outcome.answered, outcome.cancelled),
        (1, 1, false)
    );

    let both = vec![
        Change::Setting {
            name: "Generation".into(),
        },
        Change::Setting {
            name: "Greeting".into(),
        },
    ];
    let outcome = within(
        "the answer to a Generation change",
        host.ask_changing(both, DEADLINE),
    )
    .await;
    assert_eq!(
        (outcome.asked, outcome.answered, outcome.cancelled),
        (1, 1, true)
    );
    expect_line(
        &mut stdout,
        "Generation changed: cannot apply it live; asking for a recycle",
    )
    .await;

    host.publish(RuntimeEvent::Stopping);
    let status = within("hello web exit", child.wait_with_output())
        .await
        .unwrap()
        .status;
    assert!(status.success(), "hello web exited with {status}");
}

#[tokio::test]
async fn a_stopping_web_role_ends_kept_alive_connections_with_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let host = RuntimeHost::bind(
        &dir.path().join("rt.sock"),
        web_info(addr, "hello from weft"),
    )
    .await
    .unwrap();
    let (child, mut stdout) = spawn_hello("web", &host);
    wait_status(&host, RoleStatus::Ready).await;
    expect_line(
        &mut stdout,
        &format!("Web_IN_2: listening on http://{addr}"),
    )
    .await;
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: hello\r\n\r\n";

    /// Sends `request` and reads one whole answer (hello's bodies are short).
    async fn exchange(conn: &mut tokio::net::TcpStream, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        conn.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed without an answer: {:?}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap();
                if body.len() >= length {
                    return text;
                }
            }
        }
    }

    let first = within("the first answer", exchange(&mut conn, request)).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(
        !first.to_ascii_lowercase().contains("connection: close"),
        "{first}"
    );

    host.publish(RuntimeEvent::Stopping);
    expect_line(&mut stdout, "Web_IN_2: stopping").await;
    // The kept-alive connection still gets its answer, which says it ends.
    let last = within("the last answer", exchange(&mut conn, request)).await;
    assert!(last.starts_with("HTTP/1.1 200"), "{last}");
    assert!(
        last.to_ascii_lowercase().contains("connection: close"),
        "{last}"
    );
    let mut rest = Vec::new();
    use tokio::io::AsyncReadExt;
    within("the close", conn.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty(), "nothing after the last answer");
    let status = within("hello web exit", child.wait_with_output())
        .await
        .unwrap()
        .status;
    assert!(status.success(), "hello web exited with {status}");
}
