//! Cancellable Changing: the host asks the streams that answer, waits
//! (bounded) for them, and any cancel wins; silent, closed and plain
//! streams never hold a change up.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::{DEADLINE, info, within};
use weft_runtime::client::{ClientError, RoleEnvironment};
use weft_runtime::host::{ChangingOutcome, RuntimeHost};
use weft_runtime::protocol::{Change, RuntimeEvent};

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

fn generation() -> Vec<Change> {
    vec![Change::Setting {
        name: "Generation".into(),
    }]
}

/// Reads the next Changing and returns its id.
async fn changing_id(events: &mut weft_runtime::client::Events) -> Option<u64> {
    match within("Changing", events.next()).await {
        Some(Ok(RuntimeEvent::Changing { id, changes })) => {
            assert_eq!(changes, generation());
            id
        }
        other => panic!("expected Changing, got {other:?}"),
    }
}

#[tokio::test]
async fn with_no_answering_stream_a_change_is_not_cancelled_and_nobody_is_waited_for() {
    let (_dir, host, env) = pair().await;
    let mut plain = env.events().await.unwrap();
    // Far longer than the test's deadline: returning at all proves nobody
    // was waited for.
    let outcome = within(
        "ask_changing",
        host.ask_changing(generation(), Duration::from_secs(3600)),
    )
    .await;
    assert_eq!(
        outcome,
        ChangingOutcome {
            asked: 0,
            answered: 0,
            cancelled: false
        }
    );
    assert_eq!(
        changing_id(&mut plain).await,
        None,
        "a plain stream gets no id"
    );
}

#[tokio::test]
async fn any_cancel_wins() {
    let (_dir, host, env) = pair().await;
    let mut a = env.answering_events().await.unwrap();
    let mut b = env.answering_events().await.unwrap();
    let asking = tokio::spawn(async move {
        let outcome = host.ask_changing(generation(), DEADLINE * 2).await;
        (host, outcome)
    });
    let id_a = changing_id(&mut a).await.expect("an id");
    let id_b = changing_id(&mut b).await.expect("an id");
    assert_ne!(id_a, id_b, "each stream answers for itself");
    env.answer_changing(id_a, false).await.unwrap();
    env.answer_changing(id_b, true).await.unwrap();
    let (_host, outcome) = within("the outcome", asking).await.unwrap();
    assert_eq!(
        outcome,
        ChangingOutcome {
            asked: 2,
            answered: 2,
            cancelled: true
        }
    );
}

#[tokio::test]
async fn every_stream_accepting_applies_the_change() {
    let (_dir, host, env) = pair().await;
    let mut a = env.answering_events().await.unwrap();
    let asking = tokio::spawn(async move {
        let outcome = host.ask_changing(generation(), DEADLINE * 2).await;
        (host, outcome)
    });
    let id = changing_id(&mut a).await.unwrap();
    env.answer_changing(id, false).await.unwrap();
    let (_host, outcome) = within("the outcome", asking).await.unwrap();
    assert_eq!(
        outcome,
        ChangingOutcome {
            asked: 1,
            answered: 1,
            cancelled: false
        }
    );
    // Answered already: a second answer finds nothing waiting.
    let err = env.answer_changing(id, true).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused { status: 404, message, .. }
            if message == &format!("no Changing {id} is waiting for an answer (unknown, answered, or too late)")),
        "{err}"
    );
}

#[tokio::test]
async fn a_silent_stream_counts_as_not_cancelling_after_the_timeout() {
    let (_dir, host, env) = pair().await;
    let mut silent = env.answering_events().await.unwrap();
    let outcome = host
        .ask_changing(generation(), Duration::from_millis(50))
        .await;
    assert_eq!(
        outcome,
        ChangingOutcome {
            asked: 1,
            answered: 0,
            cancelled: false
        }
    );
    let id = changing_id(&mut silent).await.unwrap();
    let late = env.answer_changing(id, true).await.unwrap_err();
    assert!(
        matches!(late, ClientError::Refused { status: 404, .. }),
        "{late}"
    );
}

#[tokio::test]
async fn a_stream_that_closes_is_not_waited_for() {
    let (_dir, host, env) = pair().await;
    let mut closing = env.answering_events().await.unwrap();
    let asking = tokio::spawn(async move {
        host.ask_changing(generation(), Duration::from_secs(3600))
            .await
    });
    changing_id(&mut closing).await.unwrap();
    drop(closing);
    assert_eq!(
        within("the outcome after the stream closed", asking)
            .await
            .unwrap(),
        ChangingOutcome {
            asked: 1,
            answered: 0,
            cancelled: false
        }
    );
}

/// One raw request on the socket; returns the status line's code and body.
fn raw(socket: &std::path::Path, request: &str) -> (u16, String) {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    (status, answer.split_once("\r\n\r\n").unwrap().1.to_owned())
}

#[tokio::test]
async fn bad_answers_are_clear_errors() {
    let (_dir, host, _env) = pair().await;
    let cases = [
        (
            "POST /v1/changing/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 9\r\n\r\n{\"no\":1}\n",
            400,
            "invalid answer to Changing 7: missing field `cancel`",
        ),
        (
            "POST /v1/changing/seven HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            404,
            "no such resource: /v1/changing/seven (a Changing id is a number)",
        ),
        (
            "GET /v1/changing/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            405,
            "method not allowed; use POST",
        ),
    ];
    for (request, status, message) in cases {
        let socket = host.path().to_path_buf();
        let (got, body) = tokio::task::spawn_blocking(move || raw(&socket, request))
            .await
            .unwrap();
        assert_eq!(got, status, "{request}");
        assert!(body.contains(message), "{request}: {body}");
    }
}

#[tokio::test]
async fn handlers_decide_together_and_none_means_apply_live() {
    let (_dir, _host, env) = pair().await;
    assert!(!env.cancels(&generation()), "no handler: applied live");
    let clone = env.clone();
    clone.on_changing(|changes| {
        changes
            .iter()
            .any(|c| matches!(c, Change::Setting { name } if name == "Generation"))
    });
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    env.on_changing(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        false
    });
    assert!(
        env.cancels(&generation()),
        "a handler registered on a clone counts"
    );
    let greeting = [Change::Setting {
        name: "Greeting".into(),
    }];
    assert!(!env.cancels(&greeting));
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "every handler is called, even after a cancel"
    );
}
