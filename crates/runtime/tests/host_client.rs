//! The runtime endpoint end to end: a `RuntimeHost` serving, the Rust
//! client asking, over a real Unix socket.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

use support::{info, topology, within};
use weft_runtime::client::{ClientError, RoleEnvironment, RuntimeAddress};
use weft_runtime::host::RuntimeHost;
use weft_runtime::protocol::{Change, RoleStatus, RuntimeEvent};

async fn pair() -> (tempfile::TempDir, RuntimeHost, RoleEnvironment) {
    let dir = tempfile::tempdir().unwrap();
    let host = RuntimeHost::bind(&dir.path().join("rt.sock"), info("Web_IN_2"))
        .await
        .unwrap();
    let env = RoleEnvironment::connect_to(host.address().parse().unwrap())
        .await
        .unwrap();
    (dir, host, env)
}

#[tokio::test]
async fn instance_and_its_helpers_round_trip() {
    let (_dir, host, env) = pair().await;
    assert_eq!(env.instance().await.unwrap(), info("Web_IN_2"));
    assert_eq!(env.setting("Greeting").await.unwrap(), "hello from weft");
    assert_eq!(env.local_resource("Scratch").await.unwrap().size_mb, 64);
    assert_eq!(
        env.endpoint("HttpIn").await.unwrap().address,
        "127.0.0.1:20001".parse().unwrap()
    );

    let mut changed = info("Web_IN_2");
    changed
        .settings
        .insert("Greeting".into(), "hello again".into());
    host.set_info(changed);
    assert_eq!(env.setting("Greeting").await.unwrap(), "hello again");
}

#[tokio::test]
async fn missing_names_are_clear_errors() {
    let (_dir, _host, env) = pair().await;
    let cases = [
        (
            env.setting("Nope").await.unwrap_err(),
            "no configuration setting named Nope for this role",
        ),
        (
            env.local_resource("Nope").await.unwrap_err(),
            "no local resource named Nope for this role",
        ),
        (
            env.endpoint("Nope").await.unwrap_err(),
            "no endpoint named Nope for this role instance",
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(error.to_string(), expected);
    }
}

#[tokio::test]
async fn topology_round_trips() {
    let (_dir, host, env) = pair().await;
    assert!(env.topology().await.unwrap().roles.is_empty());
    host.set_topology(topology());
    assert_eq!(env.topology().await.unwrap(), topology());
}

#[tokio::test]
async fn status_round_trips_and_reaches_the_watch() {
    let (_dir, host, env) = pair().await;
    let mut watch = host.status();
    assert_eq!(*watch.borrow_and_update(), None);
    assert_eq!(env.status().await.unwrap(), None);

    for status in [RoleStatus::Busy, RoleStatus::Ready, RoleStatus::Busy] {
        env.set_status(status).await.unwrap();
        within("status change on the watch", watch.changed())
            .await
            .unwrap();
        assert_eq!(*watch.borrow_and_update(), Some(status));
        assert_eq!(env.status().await.unwrap(), Some(status));
    }

    // Saying the same thing again is not a change.
    env.set_status(RoleStatus::Busy).await.unwrap();
    assert!(!watch.has_changed().unwrap());

    // A new process has said nothing yet.
    host.clear_status();
    within("cleared status on the watch", watch.changed())
        .await
        .unwrap();
    assert_eq!(*watch.borrow_and_update(), None);
    assert_eq!(env.status().await.unwrap(), None);
}

#[tokio::test]
async fn events_reach_two_subscribers_in_order() {
    let (_dir, host, env) = pair().await;
    let mut first = env.events().await.unwrap();
    let mut second = env.events().await.unwrap();
    assert_eq!(host.subscribers(), 2);

    let published = vec![
        RuntimeEvent::Changing {
            id: None,
            changes: vec![Change::Setting {
                name: "Greeting".into(),
            }],
        },
        RuntimeEvent::Changed {
            changes: vec![Change::Setting {
                name: "Greeting".into(),
            }],
        },
        RuntimeEvent::Changed {
            changes: vec![Change::Topology { role: "Web".into() }],
        },
        RuntimeEvent::Stopping,
    ];
    for event in &published {
        host.publish(event.clone());
    }
    for events in [&mut first, &mut second] {
        let mut received = Vec::new();
        for _ in &published {
            received.push(within("an event", events.next()).await.unwrap().unwrap());
        }
        assert_eq!(received, published);
    }

    // Shutdown ends the streams.
    host.shutdown().await;
    assert!(within("end of stream", first.next()).await.is_none());
    assert!(within("end of stream", second.next()).await.is_none());
}

#[tokio::test]
async fn a_closed_subscriber_is_forgotten() {
    let (_dir, host, env) = pair().await;
    let events = env.events().await.unwrap();
    assert_eq!(host.subscribers(), 1);
    drop(events);
    within("the host noticing the closed stream", async {
        loop {
            host.publish(RuntimeEvent::Stopping);
            if host.subscribers() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn socket_is_private_and_removed_on_shutdown() {
    let (dir, host, _env) = pair().await;
    let path = dir.path().join("rt.sock");
    assert_eq!(host.address(), format!("unix:{}", path.display()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    host.shutdown().await;
    assert!(!path.exists(), "socket file left behind");
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt.sock");
    // A previous run bound here and died without removing its socket.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let host = RuntimeHost::bind(&path, info("Web_IN_0")).await.unwrap();
    let env = RoleEnvironment::connect_to(host.address().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(env.instance().await.unwrap().instance_id, "Web_IN_0");
}

#[tokio::test]
async fn bind_refuses_what_it_must_not_replace() {
    let dir = tempfile::tempdir().unwrap();

    let live = dir.path().join("live.sock");
    let _host = RuntimeHost::bind(&live, info("Web_IN_0")).await.unwrap();
    let err = RuntimeHost::bind(&live, info("Web_IN_1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        err.to_string().contains("in use by a live endpoint"),
        "{err}"
    );

    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let err = RuntimeHost::bind(&file, info("Web_IN_1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    let long = dir.path().join("x".repeat(120));
    let err = RuntimeHost::bind(&long, info("Web_IN_1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("at most 107 bytes"), "{err}");
}

#[tokio::test]
async fn bad_requests_get_clear_answers() {
    let (dir, _host, _env) = pair().await;
    let path = dir.path().join("rt.sock");
    // (request, expected status line, expected text in the body)
    let cases = [
        (
            "GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 404 Not Found",
            "no such resource: /v1/nope",
        ),
        (
            "DELETE /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
            "use GET, PUT",
        ),
        (
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
            "use GET",
        ),
        (
            "PUT /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 19\r\n\r\n{\"status\":\"asleep\"}",
            "HTTP/1.1 400 Bad Request",
            "invalid status body",
        ),
        (
            "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 404 Not Found",
            "has not reported a status yet",
        ),
    ];
    for (request, status_line, text) in cases {
        let path = path.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        })
        .await
        .unwrap();
        assert!(answer.starts_with(status_line), "{request:?} → {answer}");
        assert!(answer.contains(text), "{request:?} → {answer}");
    }
}

#[tokio::test]
async fn a_gone_endpoint_is_a_clear_error() {
    let (dir, host, env) = pair().await;
    host.shutdown().await;
    let err = env.instance().await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    let expected = format!(
        "failed to connect to the runtime endpoint unix:{}",
        dir.path().join("rt.sock").display()
    );
    assert!(err.to_string().starts_with(&expected), "{err}");
}

#[test]
fn runtime_addresses_parse() {
    let cases: [(&str, Option<RuntimeAddress>); 6] = [
        (
            "unix:/run/weft/0.sock",
            Some(RuntimeAddress::Unix("/run/weft/0.sock".into())),
        ),
        (
            "tcp:127.0.0.1:9000",
            Some(RuntimeAddress::Tcp("127.0.0.1:9000".parse().unwrap())),
        ),
        ("unix:", None),
        ("tcp:localhost", None),
        ("/run/weft/0.sock", None),
        ("http://127.0.0.1:9000", None),
    ];
    for (value, expected) in cases {
        match (value.parse::<RuntimeAddress>(), expected) {
            (Ok(got), Some(expected)) => {
                assert_eq!(got, expected);
                assert_eq!(got.to_string(), value);
            }
            (Err(e), None) => assert!(
                e.to_string()
                    .contains("expected unix:/path or tcp:host:port"),
                "{e}"
            ),
            (got, expected) => panic!("{value}: got {got:?}, expected {expected:?}"),
        }
    }
}
