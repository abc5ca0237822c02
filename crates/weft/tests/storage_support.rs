//! Shared harness for the storage integration tests: starts the real
//! `weft storage` binary on an ephemeral loopback port with a temp data
//! directory, and runs the Python conformance scripts against it.
//!
//! Included by the `storage_*` tests with `#[path]`; on its own it holds
//! no tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the server gets to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The virtualenv's python with the Azure SDKs; fails clearly without it.
pub fn python() -> PathBuf {
    let p = repo_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} not found: the storage conformance tests need the Azure SDKs: run scripts/install-deps",
        p.display()
    );
    p
}

/// A running `weft storage`.
pub struct Server {
    child: Child,
    pub port: u16,
    pub queue_port: u16,
    pub table_port: u16,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server with a fresh temp data directory.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("create temp dir");
        let mut s = Server::start_in(tmp.path());
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing data directory.
    pub fn start_in(data: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args([
                "storage",
                "--blob-port",
                "0",
                "--queue-port",
                "0",
                "--table-port",
                "0",
                "--data",
            ])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn weft storage");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut first = Vec::new();
            for line in lines.by_ref().map_while(Result::ok) {
                first.push(line);
                if first.len() == 3 {
                    let _ = tx.send(first.join("\n"));
                    break;
                }
            }
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_DEADLINE) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("weft storage did not report its address within {START_DEADLINE:?}");
            }
        };
        // "blob: http://127.0.0.1:PORT/devstoreaccount1", then "queue: ...", "table: ..."
        let port_of = |service: &str| -> u16 {
            line.lines()
                .find(|l| l.starts_with(service))
                .and_then(|l| l.split("127.0.0.1:").nth(1))
                .and_then(|r| r.split('/').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| {
                    panic!("no {service} address in the output of weft storage: {line:?}")
                })
        };
        let (port, queue_port) = (port_of("blob:"), port_of("queue:"));
        let table_port = port_of("table:");
        Server {
            child,
            port,
            queue_port,
            table_port,
            data: data.to_path_buf(),
            _tmp: None,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/devstoreaccount1", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(mut self) -> Option<tempfile::TempDir> {
        self.child.kill().expect("kill -9 weft storage");
        self.child.wait().expect("reap weft storage");
        self._tmp.take()
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        self.child.wait().expect("wait for weft storage")
    }

    /// Runs one case of a conformance script against this server and
    /// fails the test with the script's output if it fails.
    pub fn run_case(&self, script: &str, case: &str) {
        self.run_case_env(script, case, &[]);
    }

    pub fn run_case_env(&self, script: &str, case: &str, env: &[(&str, &str)]) {
        let path = repo_root().join("tests/storage").join(script);
        let out = Command::new(python())
            .arg(&path)
            .arg(case)
            .env("WEFT_BLOB_ENDPOINT", self.endpoint())
            .env(
                "WEFT_QUEUE_ENDPOINT",
                format!("http://127.0.0.1:{}/devstoreaccount1", self.queue_port),
            )
            .env(
                "WEFT_TABLE_ENDPOINT",
                format!("http://127.0.0.1:{}/devstoreaccount1", self.table_port),
            )
            .envs(env.iter().copied())
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{script} {case} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("ok {case}")));
    }

    /// The server's peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
