//! `run_role` drives a real role process through Azure's lifecycle: Busy
//! during `on_start`, Ready for `run`, `on_stop` on Stopping or SIGTERM.
//!
//! The role process is this test binary run again with
//! `role_child_process --exact`: that test turns into a role when
//! `WEFT_TEST_ROLE_MODE` is set (and does nothing otherwise).

mod support;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{info, within};
use weft_runtime::client::{RoleEntryPoint, RoleEnvironment, run_role};
use weft_runtime::host::RuntimeHost;
use weft_runtime::protocol::{RUNTIME_ENV, RoleStatus, RuntimeEvent};

const MODE: &str = "WEFT_TEST_ROLE_MODE";
const JOURNAL: &str = "WEFT_TEST_ROLE_JOURNAL";

/// A role that writes what happens to it to a journal file.
struct JournalRole {
    mode: String,
    journal: PathBuf,
}

impl JournalRole {
    fn note(&self, line: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.journal)
            .unwrap();
        writeln!(file, "{line}").unwrap();
    }
}

impl RoleEntryPoint for JournalRole {
    async fn on_start(&mut self, env: &RoleEnvironment) -> anyhow::Result<()> {
        let status = env.status().await?;
        self.note(&format!("on_start {status:?}"));
        match self.mode.as_str() {
            "fail-start" => anyhow::bail!("no database"),
            "slow-start" => std::future::pending().await,
            _ => {}
        }
        Ok(())
    }

    async fn run(&mut self, env: &RoleEnvironment) -> anyhow::Result<()> {
        let status = env.status().await?;
        self.note(&format!("run {status:?}"));
        match self.mode.as_str() {
            "return" => Ok(()),
            "fail-run" => anyhow::bail!("lost the queue"),
            _ => std::future::pending().await,
        }
    }

    async fn on_stop(&mut self, _env: &RoleEnvironment) {
        self.note("on_stop");
    }
}

#[test]
fn role_child_process() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let journal = PathBuf::from(std::env::var(JOURNAL).unwrap());
    let code = run_role(JournalRole { mode, journal });
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
}

struct Child {
    process: tokio::process::Child,
    journal: PathBuf,
}

fn spawn_role(dir: &Path, runtime: Option<&str>, mode: &str) -> Child {
    let journal = dir.join("journal");
    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["role_child_process", "--exact", "--nocapture"])
        .env(MODE, mode)
        .env(JOURNAL, &journal)
        .env_remove(RUNTIME_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(runtime) = runtime {
        command.env(RUNTIME_ENV, runtime);
    }
    Child {
        process: command.spawn().unwrap(),
        journal,
    }
}

impl Child {
    /// Waits (with a deadline) until the role has written `line`.
    async fn wait_journal(&self, line: &str) {
        within(&format!("journal line {line:?}"), async {
            loop {
                let journal = std::fs::read_to_string(&self.journal).unwrap_or_default();
                if journal.lines().any(|l| l == line) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
    }

    /// Waits for the process to exit; returns (success, stderr, journal).
    async fn finish(self) -> (bool, String, String) {
        let output = within("role process exit", self.process.wait_with_output())
            .await
            .unwrap();
        let journal = std::fs::read_to_string(&self.journal).unwrap_or_default();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            journal,
        )
    }
}

async fn host(dir: &Path) -> RuntimeHost {
    RuntimeHost::bind(&dir.join("rt.sock"), info("Worker_IN_0"))
        .await
        .unwrap()
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

#[tokio::test]
async fn stopping_event_runs_on_stop_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let child = spawn_role(dir.path(), Some(&host.address()), "serve");
    wait_status(&host, RoleStatus::Ready).await;
    child.wait_journal("run Some(Ready)").await;
    // The role subscribed before it said anything, so it hears this.
    assert_eq!(host.subscribers(), 1);
    host.publish(RuntimeEvent::Stopping);
    let (ok, stderr, journal) = child.finish().await;
    assert!(ok, "role exited non-zero: {stderr}");
    assert_eq!(journal, "on_start Some(Busy)\nrun Some(Ready)\non_stop\n");
}

#[tokio::test]
async fn sigterm_runs_on_stop_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let child = spawn_role(dir.path(), Some(&host.address()), "serve");
    wait_status(&host, RoleStatus::Ready).await;
    child.wait_journal("run Some(Ready)").await;
    let pid = Pid::from_raw(child.process.id().unwrap() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    let (ok, stderr, journal) = child.finish().await;
    assert!(ok, "role exited non-zero: {stderr}");
    assert_eq!(journal, "on_start Some(Busy)\nrun Some(Ready)\non_stop\n");
}

#[tokio::test]
async fn stopping_during_on_start_skips_run() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let child = spawn_role(dir.path(), Some(&host.address()), "slow-start");
    child.wait_journal("on_start Some(Busy)").await;
    host.publish(RuntimeEvent::Stopping);
    let (ok, stderr, journal) = child.finish().await;
    assert!(ok, "role exited non-zero: {stderr}");
    assert_eq!(journal, "on_start Some(Busy)\non_stop\n");
    assert_eq!(*host.status().borrow(), Some(RoleStatus::Busy));
}

#[tokio::test]
async fn on_start_error_exits_non_zero_without_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let child = spawn_role(dir.path(), Some(&host.address()), "fail-start");
    let (ok, stderr, journal) = child.finish().await;
    assert!(!ok, "a role whose on_start failed exited 0");
    assert!(
        stderr.contains("role failed to start: no database"),
        "{stderr}"
    );
    assert_eq!(journal, "on_start Some(Busy)\n");
    // It never said Ready, so it never took traffic.
    assert_eq!(*host.status().borrow(), Some(RoleStatus::Busy));
}

#[tokio::test]
async fn run_returning_runs_on_stop_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let child = spawn_role(dir.path(), Some(&host.address()), "return");
    let (ok, stderr, journal) = child.finish().await;
    assert!(ok, "role exited non-zero: {stderr}");
    assert_eq!(journal, "on_start Some(Busy)\nrun Some(Ready)\non_stop\n");
}

#[tokio::test]
async fn run_error_exits_non_zero_without_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let child = spawn_role(dir.path(), Some(&host.address()), "fail-run");
    let (ok, stderr, journal) = child.finish().await;
    assert!(!ok, "a role whose run failed exited 0");
    assert!(
        stderr.contains("role run failed: lost the queue"),
        "{stderr}"
    );
    assert_eq!(journal, "on_start Some(Busy)\nrun Some(Ready)\n");
}

#[tokio::test]
async fn without_a_runtime_endpoint_the_role_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_role(dir.path(), None, "serve");
    let (ok, stderr, journal) = child.finish().await;
    assert!(!ok);
    assert!(stderr.contains("WEFT_RUNTIME is not set"), "{stderr}");
    assert_eq!(journal, "");
}
