//! `hello worker`: every `IntervalSeconds` does a unit of work — logs
//! `Worker_IN_0: work item N` and appends `work item N` to `items/log` in
//! the `Work` local resource. The count survives restarts: it continues
//! from the last item in that file (`Work` is not cleaned on role recycle).
//!
//! A change of `IntervalSeconds` takes effect from the next item.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use weft_runtime::protocol::{Change, RuntimeEvent};
use weft_runtime::{RoleEntryPoint, RoleEnvironment};

const WORK: &str = "Work";
const INTERVAL: &str = "IntervalSeconds";

#[derive(Default)]
pub struct Worker {
    instance: String,
    log: PathBuf,
    done: u64,
    interval_secs: Arc<AtomicU64>,
}

impl RoleEntryPoint for Worker {
    async fn on_start(&mut self, env: &RoleEnvironment) -> anyhow::Result<()> {
        self.instance = env.instance().await?.instance_id;
        self.interval_secs
            .store(interval(env).await?, Ordering::Relaxed);
        let dir = env.local_resource(WORK).await?.path.join("items");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        self.log = dir.join("log");
        self.done = items_done(&self.log)?;
        println!("{}: starting after {} work items", self.instance, self.done);
        tokio::spawn(follow_interval(env.clone(), self.interval_secs.clone()));
        Ok(())
    }

    async fn run(&mut self, _env: &RoleEnvironment) -> anyhow::Result<()> {
        loop {
            let n = self.done + 1;
            record(&self.log, n)?;
            self.done = n;
            println!("{}: work item {n}", self.instance);
            let secs = self.interval_secs.load(Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(secs)).await;
        }
    }

    async fn on_stop(&mut self, _env: &RoleEnvironment) {
        println!("{}: stopping after {} work items", self.instance, self.done);
    }
}

/// The `IntervalSeconds` setting: a whole number of seconds, at least 1.
async fn interval(env: &RoleEnvironment) -> anyhow::Result<u64> {
    let value = env.setting(INTERVAL).await?;
    match value.trim().parse::<u64>() {
        Ok(secs) if secs >= 1 => Ok(secs),
        _ => anyhow::bail!("{INTERVAL}={value:?} is not a whole number of seconds (1 or more)"),
    }
}

/// Picks up a new `IntervalSeconds` after each change of it.
async fn follow_interval(env: RoleEnvironment, secs: Arc<AtomicU64>) {
    let mut events = match env.events().await {
        Ok(events) => events,
        Err(e) => {
            eprintln!("warning: not following configuration changes: {e}");
            return;
        }
    };
    while let Some(event) = events.next().await {
        let Ok(RuntimeEvent::Changed { changes }) = event else {
            continue;
        };
        let ours = changes
            .iter()
            .any(|c| matches!(c, Change::Setting { name } if name == INTERVAL));
        if ours {
            match interval(&env).await {
                Ok(new) => secs.store(new, Ordering::Relaxed),
                Err(e) => eprintln!("warning: keeping the old interval: {e}"),
            }
        }
    }
}

/// How many items the log says are done: the number of its last complete
/// `work item N` line (0 for no log). A line cut short by a crash is ignored.
fn items_done(log: &Path) -> anyhow::Result<u64> {
    let text = match std::fs::read_to_string(log) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", log.display())),
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    Ok(complete
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("work item ")?.parse().ok())
        .unwrap_or(0))
}

/// Appends `work item n` to the log, durably; starts a fresh line if a
/// crash left the last one unfinished.
fn record(log: &Path, n: u64) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("failed to open {}", log.display()))?;
    let unfinished = file.metadata()?.len() > 0 && !ends_with_newline(log)?;
    let line = format!("{}work item {n}\n", if unfinished { "\n" } else { "" });
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_data())
        .with_context(|| format!("failed to write to {}", log.display()))
}

fn ends_with_newline(path: &Path) -> anyhow::Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_continues_from_the_log() {
        // (log contents, items done)
        let cases = [
            ("", 0),
            ("work item 1\n", 1),
            ("work item 1\nwork item 2\nwork item 3\n", 3),
            ("work item 1\nwork item 2\nwork it", 2),
            ("work item 7\nwork item 8", 7),
            ("garbage\n", 0),
        ];
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        for (text, done) in cases {
            std::fs::write(&log, text).unwrap();
            assert_eq!(items_done(&log).unwrap(), done, "{text:?}");
        }
    }

    #[test]
    fn recording_after_a_cut_line_starts_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        assert_eq!(items_done(&log).unwrap(), 0);
        record(&log, 1).unwrap();
        record(&log, 2).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"work it")
            .unwrap();
        let n = items_done(&log).unwrap() + 1;
        record(&log, n).unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "work item 1\nwork item 2\nwork it\nwork item 3\n"
        );
        assert_eq!(items_done(&log).unwrap(), 3);
    }
}
