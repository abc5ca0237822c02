//! SqliteStore behaviour: revisions, compare-and-swap, atomic transactions,
//! watches, and durability across SIGKILL.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use weft_store::{Compare, EventKind, Op, SqliteStore, StateStore, StoreError};

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("fabric.db")).unwrap();
    (dir, store)
}

fn put(key: &str, value: &str) -> Op {
    Op::Put(key.into(), value.as_bytes().to_vec())
}

#[test]
fn revisions_count_transactions_and_keys_remember_create_and_mod() {
    let (_dir, s) = store();
    assert_eq!(s.revision().unwrap(), 0);
    let r1 = s.txn(vec![], vec![put("/a", "1"), put("/b", "1")]).unwrap();
    assert_eq!((r1.succeeded, r1.revision), (true, 1));
    let r2 = s.txn(vec![], vec![put("/a", "2")]).unwrap();
    assert_eq!(r2.revision, 2);
    let a = s.get("/a").unwrap().unwrap();
    assert_eq!(
        (a.value.as_slice(), a.create_revision, a.mod_revision),
        (&b"2"[..], 1, 2)
    );
    // Deleting an absent key changes nothing, so no new revision.
    let r3 = s.txn(vec![], vec![Op::Delete("/zzz".into())]).unwrap();
    assert_eq!((r3.succeeded, r3.revision), (true, 2));
    // A re-created key gets a new create revision.
    s.txn(vec![], vec![Op::Delete("/b".into())]).unwrap();
    s.txn(vec![], vec![put("/b", "again")]).unwrap();
    let b = s.get("/b").unwrap().unwrap();
    assert_eq!((b.create_revision, b.mod_revision), (4, 4));
}

#[test]
fn compare_and_swap_conflicts_write_nothing() {
    let (_dir, s) = store();
    assert!(
        s.txn(vec![Compare::Absent("/k".into())], vec![put("/k", "first")])
            .unwrap()
            .succeeded
    );
    // A second create loses.
    let lost = s
        .txn(
            vec![Compare::Absent("/k".into())],
            vec![put("/k", "second"), put("/other", "x")],
        )
        .unwrap();
    assert!(!lost.succeeded);
    assert_eq!(s.get("/k").unwrap().unwrap().value, b"first");
    assert!(
        s.get("/other").unwrap().is_none(),
        "a failed txn wrote an op"
    );
    // Update only from the revision read.
    let rev = s.get("/k").unwrap().unwrap().mod_revision;
    assert!(
        !s.txn(
            vec![Compare::ModRevision("/k".into(), rev + 7)],
            vec![put("/k", "stale")]
        )
        .unwrap()
        .succeeded
    );
    assert!(
        s.txn(
            vec![Compare::ModRevision("/k".into(), rev)],
            vec![put("/k", "fresh")]
        )
        .unwrap()
        .succeeded
    );
    assert!(
        !s.txn(
            vec![Compare::ModRevision("/k".into(), rev)],
            vec![put("/k", "stale")]
        )
        .unwrap()
        .succeeded
    );
    assert!(
        !s.txn(
            vec![Compare::ModRevision("/missing".into(), 0)],
            vec![put("/k", "x")]
        )
        .unwrap()
        .succeeded
    );
    assert_eq!(s.get("/k").unwrap().unwrap().value, b"fresh");
}

#[test]
fn duplicate_keys_in_one_transaction_are_refused() {
    let (_dir, s) = store();
    let err = s
        .txn(vec![], vec![put("/k", "1"), Op::Delete("/k".into())])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateKey { ref key } if key == "/k"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "transaction names key `/k` in more than one operation"
    );
    assert_eq!(s.revision().unwrap(), 0);
}

#[test]
fn range_returns_exactly_the_prefix_in_key_order() {
    let (_dir, s) = store();
    s.txn(
        vec![],
        vec![
            put("/d/b", "2"),
            put("/d/a", "1"),
            put("/d", "root"),
            put("/e/a", "x"),
            put("/c/z", "y"),
            put("/d/é", "3"),
        ],
    )
    .unwrap();
    let (kvs, rev) = s.range("/d/").unwrap();
    let keys: Vec<_> = kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/d/a", "/d/b", "/d/é"]);
    assert_eq!(rev, 1);
    assert_eq!(s.range("").unwrap().0.len(), 6);
}

#[tokio::test]
async fn watch_delivers_changes_in_order_from_a_past_revision() {
    let (_dir, s) = store();
    s.txn(vec![], vec![put("/w/1", "a")]).unwrap(); // rev 1
    s.txn(vec![], vec![put("/x/1", "ignored")]).unwrap(); // rev 2
    s.txn(vec![], vec![put("/w/2", "b"), Op::Delete("/w/1".into())])
        .unwrap(); // rev 3
    let mut from_start = s.watch("/w/", 1).unwrap();
    let mut live = s.watch("/w/", 0).unwrap();
    s.txn(vec![], vec![put("/w/3", "c")]).unwrap(); // rev 4
    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = from_start.next().await.unwrap();
        seen.push((e.kind, e.kv.key, e.kv.mod_revision));
    }
    assert_eq!(
        seen,
        [
            (EventKind::Put, "/w/1".to_string(), 1),
            (EventKind::Put, "/w/2".to_string(), 3),
            (EventKind::Delete, "/w/1".to_string(), 3),
            (EventKind::Put, "/w/3".to_string(), 4),
        ]
    );
    let e = live.next().await.unwrap();
    assert_eq!(
        (e.kv.key.as_str(), e.kv.value.as_slice()),
        ("/w/3", &b"c"[..])
    );
    assert!(live.try_next().is_none());
}

#[test]
fn reopened_store_keeps_keys_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fabric.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.txn(vec![], vec![put("/a", "1")]).unwrap();
        s.txn(vec![], vec![put("/a", "2")]).unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.revision().unwrap(), 2);
    assert_eq!(s.get("/a").unwrap().unwrap().value, b"2");
}

#[test]
fn open_on_a_directory_says_which_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "failed to open the state store {}",
            dir.path().display()
        )),
        "{err}"
    );
}

const CHILD_ENV: &str = "WEFT_STORE_CRASH_CHILD";

/// Not a test on its own: the writer process of
/// `every_acknowledged_write_survives_sigkill` (does nothing unless asked).
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let s = SqliteStore::open(std::path::Path::new(&path)).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let key = format!("/crash/{i:08}");
        let r = s
            .txn(
                vec![Compare::Absent(key.clone())],
                vec![
                    Op::Put(key, i.to_le_bytes().to_vec()),
                    put("/crash-last", &i.to_string()),
                ],
            )
            .unwrap();
        assert!(r.succeeded);
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fabric.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = None;
    // Kill in the middle of the write loop, after some writes were acknowledged.
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("ack ") {
            let n: u64 = n.parse().unwrap();
            acked = Some(n);
            if n == 150 {
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .unwrap();
                break;
            }
        }
    }
    // Drain anything the child printed before it died.
    for line in lines.map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("ack ") {
            acked = Some(n.parse().unwrap());
        }
    }
    child.wait().unwrap();
    let acked = acked.expect("the writer acknowledged nothing");
    let s = SqliteStore::open(&path).unwrap();
    let (kvs, _) = s.range("/crash/").unwrap();
    assert!(
        kvs.len() as u64 > acked,
        "acknowledged {} writes but only {} survived",
        acked + 1,
        kvs.len()
    );
    for (i, kv) in kvs.iter().enumerate() {
        assert_eq!(
            kv.key,
            format!("/crash/{i:08}"),
            "a write is missing or out of order"
        );
    }
    // The two keys of each transaction were written together.
    let last: usize = String::from_utf8(s.get("/crash-last").unwrap().unwrap().value)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(last + 1, kvs.len());
}
