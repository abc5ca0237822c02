//! The behaviour a client of a VIP and the fabric controller rely on.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use common::{Client, NamedEcho, dead_backend, expect_refused_by_vip};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weft_lb::{DrainReport, LbError, Vip, VipConfig};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn vip() -> Vip {
    Vip::bind(any_port(), VipConfig::default()).await.unwrap()
}

#[tokio::test]
async fn connections_go_round_robin_over_the_set() {
    let (a, b, c) = (
        NamedEcho::start("A").await,
        NamedEcho::start("B").await,
        NamedEcho::start("C").await,
    );
    let vip = vip().await;
    vip.set_backends(vec![
        a.backend.clone(),
        b.backend.clone(),
        c.backend.clone(),
    ]);
    let mut per_backend: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..9 {
        let mut client = Client::connect(vip.local_addr()).await;
        client.round_trip("hello").await;
        *per_backend.entry(client.backend.clone()).or_default() += 1;
        client.finish().await;
    }
    assert_eq!(
        per_backend,
        BTreeMap::from([("A".into(), 3), ("B".into(), 3), ("C".into(), 3)])
    );
    let stats = vip.stats();
    assert_eq!((stats.accepted, stats.proxied, stats.no_backend), (9, 9, 0));
}

#[tokio::test]
async fn refused_backend_is_skipped_and_no_client_sees_it() {
    let live = NamedEcho::start("Web_IN_1").await;
    let vip = vip().await;
    vip.set_backends(vec![
        dead_backend("Web_IN_0").await,
        live.backend.clone(),
        dead_backend("Web_IN_2").await,
    ]);
    for i in 0..30 {
        let mut client = Client::connect(vip.local_addr()).await;
        assert_eq!(client.backend, "Web_IN_1");
        client.round_trip(&format!("request {i}")).await;
        client.finish().await;
    }
    let stats = vip.stats();
    assert_eq!(stats.proxied, 30);
    assert_eq!(stats.no_backend, 0);
    // A backend that refused is tried last for a while, so a dead backend
    // costs about one failed connect, not one per client connection.
    assert!(
        (2..=6).contains(&stats.refused_skipped),
        "failed connects to the 2 dead backends: {}",
        stats.refused_skipped
    );
    assert_eq!(live.accepted(), 30);
}

#[tokio::test]
async fn changing_the_set_keeps_open_connections_alive() {
    let (a, b) = (NamedEcho::start("A").await, NamedEcho::start("B").await);
    let vip = vip().await;
    vip.set_backends(vec![a.backend.clone()]);
    let mut old = Client::connect(vip.local_addr()).await;
    old.round_trip("before").await;

    vip.set_backends(vec![b.backend.clone()]);
    old.round_trip("after the switch").await;
    let mut new = Client::connect(vip.local_addr()).await;
    assert_eq!((old.backend.as_str(), new.backend.as_str()), ("A", "B"));
    new.round_trip("new").await;
    assert_eq!(a.accepted(), 1, "a removed backend gets no new connection");

    vip.set_backends(vec![]);
    old.round_trip("with an empty set").await;
    new.round_trip("with an empty set").await;
    assert_eq!(
        vip.open_connections(),
        BTreeMap::from([("A".into(), 1), ("B".into(), 1)])
    );
    old.finish().await;
    new.finish().await;
    assert_eq!(vip.stats().cut, 0);
}

#[tokio::test]
async fn drain_waits_for_an_open_connection_then_returns() {
    let a = NamedEcho::start("Web_IN_0").await;
    let vip = vip().await;
    vip.set_backends(vec![a.backend.clone()]);
    let mut client = Client::connect(vip.local_addr()).await;
    client.round_trip("one").await;
    vip.set_backends(vec![]);

    let draining = tokio::spawn({
        let vip = vip.clone();
        async move { vip.drain("Web_IN_0", Duration::from_secs(30)).await }
    });
    client.round_trip("still served while draining").await;
    assert!(
        !draining.is_finished(),
        "drain returned while a connection was open"
    );
    assert_eq!(
        vip.open_connections(),
        BTreeMap::from([("Web_IN_0".into(), 1)])
    );

    client.finish().await;
    let report = draining.await.unwrap();
    assert_eq!(
        report,
        DrainReport {
            finished: 1,
            cut: 0
        }
    );
    assert_eq!(vip.open_connections(), BTreeMap::new());
}

#[tokio::test]
async fn drain_of_an_idle_backend_returns_at_once() {
    let vip = vip().await;
    let report = tokio::time::timeout(
        Duration::from_secs(5),
        vip.drain("Web_IN_7", Duration::from_secs(3600)),
    )
    .await
    .expect("drain of a backend without connections must not wait");
    assert_eq!(
        report,
        DrainReport {
            finished: 0,
            cut: 0
        }
    );
}

#[tokio::test]
async fn drain_cuts_connections_at_the_timeout() {
    let (a, b) = (NamedEcho::start("A").await, NamedEcho::start("B").await);
    let vip = vip().await;
    vip.set_backends(vec![a.backend.clone(), b.backend.clone()]);
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut client = Client::connect(vip.local_addr()).await;
        client.round_trip("x").await;
        clients.push(client);
    }
    vip.set_backends(vec![b.backend.clone()]);
    let report = vip.drain("A", Duration::from_millis(200)).await;
    assert_eq!(
        report,
        DrainReport {
            finished: 0,
            cut: 2
        }
    );
    assert_eq!(vip.stats().cut, 2);
    let mut survivors = Vec::new();
    for client in clients {
        if client.backend == "A" {
            client.expect_closed().await;
        } else {
            survivors.push(client);
        }
    }
    for mut client in survivors {
        client.round_trip("B's connections are untouched").await;
        client.finish().await;
    }
}

#[tokio::test]
async fn no_backend_closes_the_connection_and_counts_it() {
    let vip = vip().await;
    expect_refused_by_vip(vip.local_addr()).await;
    vip.set_backends(vec![dead_backend("A").await, dead_backend("B").await]);
    expect_refused_by_vip(vip.local_addr()).await;
    let stats = vip.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.proxied,
            stats.no_backend,
            stats.refused_skipped
        ),
        (2, 0, 2, 2)
    );
}

#[tokio::test]
async fn binding_a_taken_port_says_address_in_use() {
    let first = vip().await;
    let err = Vip::bind(first.local_addr(), VipConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, LbError::AddrInUse { addr } if addr == first.local_addr()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "failed to bind vip {}: address already in use",
            first.local_addr()
        )
    );
}

#[tokio::test]
async fn half_close_from_the_client_still_gets_the_whole_answer() {
    // A backend that reads the whole request (until EOF) and only then answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        conn.read_to_end(&mut request).await.unwrap();
        conn.write_all(format!("got {} bytes", request.len()).as_bytes())
            .await
            .unwrap();
    });
    let vip = vip().await;
    vip.set_backends(vec![weft_lb::Backend {
        id: "A".into(),
        addr,
    }]);
    let mut conn = TcpStream::connect(vip.local_addr()).await.unwrap();
    conn.write_all(&[7u8; 100_000]).await.unwrap();
    conn.shutdown().await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert_eq!(answer, "got 100000 bytes");
}

#[tokio::test]
async fn half_close_from_the_backend_lets_the_client_keep_sending() {
    // A backend that greets, closes its sending side, then counts what it receives.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        conn.write_all(b"bye").await.unwrap();
        conn.shutdown().await.unwrap();
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).await.unwrap();
        rest.len()
    });
    let vip = vip().await;
    vip.set_backends(vec![weft_lb::Backend {
        id: "A".into(),
        addr,
    }]);
    let mut conn = TcpStream::connect(vip.local_addr()).await.unwrap();
    let mut greeting = String::new();
    conn.read_to_string(&mut greeting).await.unwrap();
    assert_eq!(greeting, "bye");
    conn.write_all(&[1u8; 50_000]).await.unwrap();
    conn.shutdown().await.unwrap();
    assert_eq!(received.await.unwrap(), 50_000);
}

#[tokio::test]
async fn bulk_data_arrives_unchanged_both_ways() {
    let a = NamedEcho::start("A").await;
    let vip = vip().await;
    vip.set_backends(vec![a.backend.clone()]);
    let payload: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut conn = TcpStream::connect(vip.local_addr()).await.unwrap();
    let (mut r, mut w) = conn.split();
    let send = async {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let receive = async {
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        back
    };
    let ((), back) = tokio::join!(send, receive);
    assert_eq!(&back[..2], b"A\n");
    assert!(
        back[2..] == payload[..],
        "echoed bytes differ from the sent ones"
    );
}

#[tokio::test]
async fn close_frees_the_port_and_waits_for_open_connections() {
    let a = NamedEcho::start("A").await;
    let vip = Vip::bind(
        any_port(),
        VipConfig {
            drain_timeout: Duration::from_secs(30),
            ..VipConfig::default()
        },
    )
    .await
    .unwrap();
    let addr = vip.local_addr();
    vip.set_backends(vec![a.backend.clone()]);
    let mut client = Client::connect(addr).await;
    let closing = tokio::spawn({
        let vip = vip.clone();
        async move { vip.close().await }
    });
    // The listener goes first; the open connection is still served.
    let rebound = loop {
        match Vip::bind(addr, VipConfig::default()).await {
            Ok(v) => break v,
            Err(LbError::AddrInUse { .. }) => tokio::task::yield_now().await,
            Err(e) => panic!("{e}"),
        }
    };
    client.round_trip("served during close").await;
    assert!(
        !closing.is_finished(),
        "close returned while a connection was open"
    );
    client.finish().await;
    closing.await.unwrap();
    assert_eq!(vip.stats().cut, 0);
    drop(rebound);
}

#[tokio::test]
async fn close_cuts_connections_after_the_drain_timeout() {
    let a = NamedEcho::start("A").await;
    let vip = Vip::bind(
        any_port(),
        VipConfig {
            drain_timeout: Duration::from_millis(100),
            ..VipConfig::default()
        },
    )
    .await
    .unwrap();
    vip.set_backends(vec![a.backend.clone()]);
    let mut client = Client::connect(vip.local_addr()).await;
    client.round_trip("x").await;
    vip.close().await;
    client.expect_closed().await;
    assert_eq!(vip.stats().cut, 1);
    assert!(
        TcpStream::connect(vip.local_addr()).await.is_err(),
        "a closed vip refuses connections"
    );
}

#[tokio::test]
async fn open_connections_lists_the_set_and_whoever_still_has_connections() {
    let (a, b) = (NamedEcho::start("A").await, NamedEcho::start("B").await);
    let vip = vip().await;
    vip.set_backends(vec![a.backend.clone(), b.backend.clone()]);
    let mut clients = HashMap::new();
    for _ in 0..2 {
        let client = Client::connect(vip.local_addr()).await;
        clients.insert(client.backend.clone(), client);
    }
    assert_eq!(
        vip.open_connections(),
        BTreeMap::from([("A".into(), 1), ("B".into(), 1)])
    );
    clients.remove("A").unwrap().finish().await;
    let c = NamedEcho::start("C").await;
    vip.set_backends(vec![c.backend.clone()]);
    assert_eq!(
        vip.open_connections(),
        BTreeMap::from([("B".into(), 1), ("C".into(), 0)])
    );
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_not() {
    let a = NamedEcho::start("A").await;
    let idle_timeout = Duration::from_millis(300);
    let vip = Vip::bind(
        any_port(),
        VipConfig {
            idle_timeout: Some(idle_timeout),
            ..VipConfig::default()
        },
    )
    .await
    .unwrap();
    vip.set_backends(vec![a.backend.clone()]);
    let idle = Client::connect(vip.local_addr()).await;
    let mut busy = Client::connect(vip.local_addr()).await;
    // The busy connection talks for three idle timeouts; the idle one is
    // closed meanwhile.
    let started = tokio::time::Instant::now();
    let idle_closed = tokio::spawn(idle.expect_closed());
    while started.elapsed() < idle_timeout * 3 {
        busy.round_trip("still here").await;
        tokio::time::sleep(idle_timeout / 10).await;
    }
    idle_closed.await.unwrap();
    assert!(
        started.elapsed() >= idle_timeout,
        "closed before the idle timeout"
    );
    busy.round_trip("and still served").await;
    assert_eq!(vip.stats().idle_closed, 1);
    busy.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_sees_an_error_while_the_set_keeps_changing() {
    let (a, b) = (NamedEcho::start("A").await, NamedEcho::start("B").await);
    let vip = vip().await;
    vip.set_backends(vec![a.backend.clone()]);
    let addr = vip.local_addr();
    let clients: Vec<_> = (0..8)
        .map(|n| {
            tokio::spawn(async move {
                for i in 0..40 {
                    let mut client = Client::connect(addr).await;
                    client.round_trip(&format!("client {n} request {i}")).await;
                    client.finish().await;
                }
            })
        })
        .collect();
    let sets = [
        vec![b.backend.clone()],
        vec![a.backend.clone(), b.backend.clone()],
        vec![a.backend.clone()],
    ];
    let mut flips = 0;
    while !clients.iter().all(|c| c.is_finished()) {
        vip.set_backends(sets[flips % sets.len()].clone());
        flips += 1;
        tokio::task::yield_now().await;
    }
    for client in clients {
        client.await.expect("a client saw an error");
    }
    let stats = vip.stats();
    assert_eq!(
        (stats.proxied, stats.no_backend, stats.cut),
        (320, 0, 0),
        "after {flips} set changes"
    );
    assert!(a.accepted() > 0 && b.accepted() > 0, "both backends served");
}

#[tokio::test]
async fn source_ip_distribution_keeps_each_client_address_on_one_backend() {
    let backends = [
        NamedEcho::start("A").await,
        NamedEcho::start("B").await,
        NamedEcho::start("C").await,
    ];
    let vip = Vip::bind(
        any_port(),
        VipConfig {
            distribution: weft_lb::Distribution::SourceIp,
            ..VipConfig::default()
        },
    )
    .await
    .unwrap();
    vip.set_backends(backends.iter().map(|b| b.backend.clone()).collect());
    let mut chosen: BTreeMap<u8, std::collections::BTreeSet<String>> = BTreeMap::new();
    for round in 0..3 {
        for host in 1..=12u8 {
            // Every 127.0.0.0/8 address is loopback on Linux.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket
                .bind(SocketAddr::from(([127, 0, 0, host + 10], 0)))
                .unwrap();
            let conn = socket.connect(vip.local_addr()).await.unwrap();
            let mut client = Client::from_stream(conn).await;
            client.round_trip(&format!("round {round}")).await;
            chosen
                .entry(host)
                .or_default()
                .insert(client.backend.clone());
            client.finish().await;
        }
    }
    assert!(
        chosen.values().all(|set| set.len() == 1),
        "a client address moved between backends: {chosen:?}"
    );
    let used: std::collections::BTreeSet<&String> = chosen.values().flatten().collect();
    assert!(
        used.len() > 1,
        "12 client addresses all went to one backend: {chosen:?}"
    );
}

#[tokio::test]
async fn the_access_control_list_keeps_refused_addresses_away_from_the_backends() {
    use weft_lb::{AccessControl, AclAction, AclRule};
    let a = NamedEcho::start("A").await;
    let vip = Vip::bind(
        any_port(),
        VipConfig {
            access_control: AccessControl::new(vec![
                AclRule::parse(100, AclAction::Permit, "127.0.0.0/29").unwrap(),
            ]),
            ..VipConfig::default()
        },
    )
    .await
    .unwrap();
    vip.set_backends(vec![a.backend.clone()]);
    let addr = vip.local_addr();
    let from = |host: u8| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::from(([127, 0, 0, host], 0)))
            .unwrap();
        socket.connect(addr).await.unwrap()
    };
    Client::from_stream(from(2).await).await.finish().await;
    expect_closed_stream(from(9).await).await;
    assert_eq!(
        a.accepted(),
        1,
        "the refused client never reached the backend"
    );

    // A configuration update: now only 127.0.0.9 is refused.
    vip.set_access_control(AccessControl::new(vec![
        AclRule::parse(1, AclAction::Deny, "127.0.0.9").unwrap(),
    ]));
    Client::from_stream(from(3).await).await.finish().await;
    Client::from_stream(from(10).await).await.finish().await;
    expect_closed_stream(from(9).await).await;
    let stats = vip.stats();
    assert_eq!((stats.proxied, stats.denied), (3, 2));
}

async fn expect_closed_stream(mut conn: TcpStream) {
    let mut buf = [0u8; 64];
    match conn.read(&mut buf).await {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("expected the vip to refuse the client, got {:?}", &buf[..n]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_concurrent_close_returns_only_once_the_port_is_free() {
    for _ in 0..20 {
        let vip = vip().await;
        let addr = vip.local_addr();
        let (first, second) = (vip.clone(), vip.clone());
        let mut a = tokio::spawn(async move { first.close().await });
        let mut b = tokio::spawn(async move { second.close().await });
        // Whichever close returns first, the port must be free then.
        let other = tokio::select! {
            done = &mut a => { done.unwrap(); b }
            done = &mut b => { done.unwrap(); a }
        };
        let again = Vip::bind(addr, VipConfig::default())
            .await
            .expect("the port is free once a close returned");
        other.await.unwrap();
        again.close().await;
    }
}

/// A backend that accepts, reads what the client sent, and then dies
/// without a byte of answer (an instance killed with a request queued).
async fn dies_before_answering(id: &str) -> (weft_lb::Backend, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut got = vec![0u8; 64];
        let n = conn.read(&mut got).await.unwrap();
        got.truncate(n);
        // Reset, as a killed process's socket would be.
        conn.set_zero_linger().unwrap();
        drop(conn);
        got
    });
    (
        weft_lb::Backend {
            id: id.into(),
            addr,
        },
        task,
    )
}

/// A backend that answers every request line with `<id>: <line>` and closes.
async fn answers(id: &'static str) -> weft_lb::Backend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                conn.write_all(format!("{id}: {line}").as_bytes())
                    .await
                    .ok();
                conn.shutdown().await.ok();
            });
        }
    });
    weft_lb::Backend {
        id: id.into(),
        addr,
    }
}

#[tokio::test]
async fn a_backend_that_dies_before_answering_is_replaced_and_the_request_replayed() {
    let (dying, got) = dies_before_answering("Dying").await;
    let healthy = answers("Healthy").await;
    let vip = vip().await;
    // The dying backend first in round-robin order.
    vip.set_backends(vec![dying, healthy]);
    let mut client = TcpStream::connect(vip.local_addr()).await.unwrap();
    client.write_all(b"GET /\n").await.unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    assert_eq!(
        got.await.unwrap(),
        b"GET /\n",
        "the first backend got the request"
    );
    assert_eq!(
        answer, "Healthy: GET /\n",
        "the client got the next backend's answer"
    );
    let stats = vip.stats();
    assert_eq!((stats.replayed, stats.no_backend), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn a_backend_that_answered_is_never_replaced() {
    // Answers part of a response, then resets: the client sees the cut.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 64];
        let _ = conn.read(&mut buf).await;
        conn.write_all(b"partial").await.unwrap();
        conn.set_zero_linger().unwrap();
    });
    let healthy = answers("Healthy").await;
    let vip = vip().await;
    vip.set_backends(vec![
        weft_lb::Backend {
            id: "Partial".into(),
            addr,
        },
        healthy,
    ]);
    let mut client = TcpStream::connect(vip.local_addr()).await.unwrap();
    client.write_all(b"GET /\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer).await;
    assert_eq!(answer, b"partial");
    assert_eq!(vip.stats().replayed, 0);
}

/// Answers every line with `<id>: <line>` on the same connection.
async fn answers_each_line(id: &'static str, die_on: Option<usize>) -> weft_lb::Backend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut conn = tokio::io::BufReader::new(conn);
                let mut n = 0;
                loop {
                    let mut line = String::new();
                    if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    n += 1;
                    if Some(n) == die_on {
                        // Killed with this request unanswered.
                        conn.get_ref().set_zero_linger().unwrap();
                        return;
                    }
                    let answer = format!("{id}: {line}");
                    if conn.get_mut().write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    weft_lb::Backend {
        id: id.into(),
        addr,
    }
}

async fn keep_alive_exchange(replay: bool) -> (Vec<String>, weft_lb::VipStats) {
    let dying = answers_each_line("Dying", Some(2)).await;
    let healthy = answers_each_line("Healthy", None).await;
    let vip = Vip::bind(
        any_port(),
        VipConfig {
            replay_in_flight: replay,
            ..VipConfig::default()
        },
    )
    .await
    .unwrap();
    vip.set_backends(vec![dying, healthy]);
    let conn = TcpStream::connect(vip.local_addr()).await.unwrap();
    let mut conn = tokio::io::BufReader::new(conn);
    let mut answers = Vec::new();
    for request in ["one\n", "two\n", "three\n"] {
        use tokio::io::AsyncBufReadExt;
        if conn.get_mut().write_all(request.as_bytes()).await.is_err() {
            break;
        }
        let mut line = String::new();
        match conn.read_line(&mut line).await {
            Ok(n) if n > 0 => answers.push(line),
            _ => break,
        }
    }
    (answers, vip.stats())
}

#[tokio::test]
async fn with_in_flight_replay_a_backend_lost_mid_connection_is_replaced() {
    let (answers, stats) = keep_alive_exchange(true).await;
    assert_eq!(
        answers,
        ["Dying: one\n", "Healthy: two\n", "Healthy: three\n"],
        "the client's connection carried on with the next backend"
    );
    assert_eq!(stats.replayed, 1, "{stats:?}");
}

#[tokio::test]
async fn without_in_flight_replay_a_backend_lost_mid_connection_ends_it() {
    let (answers, stats) = keep_alive_exchange(false).await;
    assert_eq!(answers, ["Dying: one\n"]);
    assert_eq!(stats.replayed, 0, "{stats:?}");
}
