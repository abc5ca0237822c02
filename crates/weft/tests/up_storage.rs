//! The storage `weft up` serves beside the fabric: on the ports the operator
//! names, with the accounts the operator configures besides
//! devstoreaccount1, each reachable through the official Azure SDKs with its
//! own key and refusing the development key.

#[path = "storage_support.rs"]
mod storage_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An operator's account: name and a base64 key of 64 bytes.
const ACCOUNT: &str = "operatoraccount";
const KEY: &str =
    "b3BlcmF0b3Ita2V5LW9wZXJhdG9yLWtleS1vcGVyYXRvci1rZXktb3BlcmF0b3Ita2V5LW9wZXJhdG9y";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// `weft up` with nothing deployed, killed when dropped.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `weft up` with its storage on free ports; returns it and the
/// blob, queue and table base addresses it printed (`http://host:port`).
fn start_up(state: &std::path::Path, extra: &[&str]) -> (Up, [String; 3], Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("up")
        .args(["--state", state.to_str().unwrap(), "--api", "127.0.0.1:0"])
        .args(["--blob-port", "0", "--queue-port", "0", "--table-port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start weft up");
    let out = child.stdout.take().unwrap();
    let up = Up(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("press Ctrl-C to stop"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("weft up never got ready; it printed:\n{}", seen.join("\n")),
        }
    }
    let storage = seen
        .iter()
        .find(|l| l.starts_with("storage: blob "))
        .unwrap_or_else(|| panic!("no storage line:\n{}", seen.join("\n")));
    // storage: blob http://A/devstoreaccount1 queue http://B/... table http://C/...
    let bases: Vec<String> = storage
        .split_whitespace()
        .filter(|w| w.starts_with("http://"))
        .map(|w| w.trim_end_matches("/devstoreaccount1").to_owned())
        .collect();
    let bases: [String; 3] = bases
        .try_into()
        .unwrap_or_else(|_| panic!("three addresses expected: {storage}"));
    (up, bases, seen)
}

/// Runs a Python snippet with the SDKs; returns what it printed.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(storage_support::python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn connection_string(account: &str, key: &str, [blob, queue, table]: &[String; 3]) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};\
         BlobEndpoint={blob}/{account};QueueEndpoint={queue}/{account};TableEndpoint={table}/{account}"
    )
}

const ROUND_TRIP: &str = r#"
import sys
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient
from azure.data.tables import TableServiceClient

own, dev = sys.argv[1], sys.argv[2]
blobs = BlobServiceClient.from_connection_string(own)
blobs.create_container("box").upload_blob("note.txt", b"kept")
print("blob", blobs.get_blob_client("box", "note.txt").download_blob().readall().decode())
queue = QueueClient.from_connection_string(own, "work")
queue.create_queue()
queue.send_message("item")
print("queue", queue.receive_message().content)
tables = TableServiceClient.from_connection_string(own)
table = tables.create_table("ledger")
table.create_entity({"PartitionKey": "p", "RowKey": "r", "Amount": 7})
print("table", table.get_entity("p", "r")["Amount"])

# The development key is not this account's key.
try:
    BlobServiceClient.from_connection_string(dev).get_container_client("box").get_container_properties()
    print("dev key accepted")
except HttpResponseError as e:
    print("dev key", e.status_code, getattr(e.error_code, "value", e.error_code))
"#;

#[test]
fn up_serves_operator_accounts_on_the_ports_it_is_given() {
    let python_path = storage_support::python();
    assert!(python_path.exists());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!("{ACCOUNT}:{KEY}");
    let (up, bases, seen) = start_up(tmp.path(), &["--storage-account", &spec]);
    assert!(
        seen.iter()
            .any(|l| l == &format!("storage: accounts {ACCOUNT} also served")),
        "{}",
        seen.join("\n")
    );
    // Free ports were asked for: none of the development ones.
    for (base, dev) in bases.iter().zip(["10000", "10001", "10002"]) {
        assert!(!base.ends_with(&format!(":{dev}")), "{base}");
    }
    let own = connection_string(ACCOUNT, KEY, &bases);
    let dev = connection_string(ACCOUNT, DEV_KEY, &bases);
    let printed = python(ROUND_TRIP, &[&own, &dev]);
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        [
            "blob kept",
            "queue item",
            "table 7",
            "dev key 403 AuthenticationFailed"
        ],
        "{printed}"
    );
    drop(up);
}

#[test]
fn up_refuses_a_malformed_storage_account_before_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("up")
        .args([
            "--state",
            tmp.path().to_str().unwrap(),
            "--api",
            "127.0.0.1:0",
        ])
        .args(["--storage-account", "nokey"])
        .output()
        .expect("run weft up");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad --storage-account"), "{stderr}");
    assert!(stderr.contains("expected name:base64key"), "{stderr}");
    // Nothing started: no API address was written.
    assert!(!tmp.path().join("api.url").exists());
}
