//! Stopping an instance: gracefully (Azure's Stopping, SIGTERM, grace) or
//! at once, and always until no process of it is left.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::timeout;
use weft_runtime::protocol::{RUNTIME_ENV, RuntimeEvent};

use super::{KILL_TIMEOUT, Running, Supervisor};
use crate::driver::Process;
use crate::procs;
use crate::protocol::{InstanceStatus, TaskType};

impl Supervisor {
    /// grace period for the entry point and foreground tasks to exit, then
    /// SIGKILL of everything the instance started.
    pub(super) async fn stop_all(&mut self, running: &mut Running) {
        self.report.pid = running.entry.as_ref().map(|p| p.pid);
        self.publish(InstanceStatus::StoppingRole, false, None);
        for probe in running.probes.drain(..) {
            probe.abort();
        }
        if let Some(host) = &self.host {
            host.publish(RuntimeEvent::Stopping);
        }
        if let Some(entry) = &running.entry {
            entry.signal_group(Signal::SIGTERM);
        }
        for (_, _, task) in &running.tasks {
            task.signal_group(Signal::SIGTERM);
        }
        if let Some(group) = self.cgroup() {
            group.signal(Signal::SIGTERM);
        }
        let grace = self.shared.config.grace_period;
        let waited = timeout(grace, async {
            if let Some(entry) = running.entry.as_mut() {
                entry.wait_group().await;
            }
            for (kind, _, task) in running.tasks.iter_mut() {
                if *kind == TaskType::Foreground {
                    task.wait_group().await;
                }
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!(instance = %self.key, grace_ms = grace.as_millis() as u64, "instance did not stop within the grace period; killing it");
        }
        self.kill_all(running).await;
        self.report.pid = None;
        self.report.settings_digest.clear();
        self.publish(InstanceStatus::StoppedVM, false, None);
        tracing::info!(instance = %self.key, "instance stopped");
    }

    /// SIGKILL of every process the instance started, waiting until none
    /// is left.
    pub(super) async fn kill_all(&mut self, running: &mut Running) {
        for probe in running.probes.drain(..) {
            probe.abort();
        }
        let mut processes: Vec<Process> = running.entry.take().into_iter().collect();
        processes.extend(running.tasks.drain(..).map(|(_, _, p)| p));
        for p in &processes {
            p.signal_group(Signal::SIGKILL);
        }
        // The v2 group first: it holds everything; the v1 groups of
        // limits are then empty (without v2 their processes die here).
        let groups: Vec<_> = self.cgroup().into_iter().chain(self.v1_groups()).collect();
        let marker = self.host.as_ref().map(|h| h.address());
        let id = self.key.clone();
        let killed = tokio::task::spawn_blocking(move || {
            for group in groups {
                if let Err(e) = group.kill_and_remove(KILL_TIMEOUT) {
                    tracing::error!(instance = %id, cgroup = %group.path().display(), error = %e, "failed to kill the instance's cgroup");
                }
            }
            if let Some(marker) = marker {
                let alive = procs::kill_marked(RUNTIME_ENV, &marker, KILL_TIMEOUT);
                if alive > 0 {
                    tracing::error!(instance = %id, alive, "processes of the instance survived SIGKILL");
                }
            }
        })
        .await;
        if let Err(e) = killed {
            tracing::error!(instance = %self.key, error = %e, "failed to kill the instance's processes");
        }
        for mut p in processes {
            let _ = timeout(Duration::from_secs(1), p.wait()).await;
        }
    }
}
