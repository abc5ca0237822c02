//! One instance's supervisor: a task that prepares the instance, runs its
//! startup tasks and entry point, restarts it when it exits, keeps its
//! report current, and stops everything it started when the controller no
//! longer wants it (or wants another incarnation).
//!
//! A crash of the entry point recycles the instance as Azure does: every
//! process of the instance is killed, local storage with
//! `cleanOnRoleRecycle` is emptied, startup tasks run again, then the entry
//! point. The first restart is immediate; further crashes within the crash
//! window back off exponentially, and enough of them make it `CyclingRole`.
//!
//! A run lasts while the desired spec keeps its incarnation and reimage
//! counter and is not `stopped`. A stopped instance keeps its supervisor,
//! runtime endpoint, ports, directory and local storage and reports
//! `StoppedVM`. A settings change within a run asks the instance (Changing
//! with an id): cancelled, the run ends and the instance starts again with
//! the new settings, like a reboot; else Changed, and the process goes on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weft_runtime::host::RuntimeHost;
use weft_runtime::protocol::{CHANGING_ANSWER_TIMEOUT, Change, RuntimeEvent, Topology};

use crate::agent::Shared;
use crate::cgroup::Cgroup;
use crate::driver::{Credentials, Process};
use crate::env::{self, Placement};
use crate::key::InstanceKey;
use crate::logs::LogBook;
use crate::prepare;
mod run;
mod stop;

use crate::protocol::{InstanceReport, InstanceSpec, InstanceStatus, TaskType, settings_digest};

/// How long the processes of a killed instance may take to disappear.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the supervisor of `id` until the controller removes the instance
/// and everything it started is gone.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    key: InstanceKey,
    desired: watch::Receiver<Option<InstanceSpec>>,
) {
    let topologies = shared.topologies.subscribe();
    let mut sup = Supervisor {
        report: InstanceReport {
            instance_id: key.instance_id.clone(),
            deployment_id: key.deployment_id.clone(),
            role: String::new(),
            incarnation: 0,
            status: InstanceStatus::CreatingRole,
            ready: false,
            ready_endpoints: Default::default(),
            endpoints: BTreeMap::new(),
            pid: None,
            restarts: 0,
            message: None,
            settings_digest: String::new(),
        },
        shared,
        key,
        desired,
        topologies,
        host: None,
        topology: None,
        cycling: false,
    };
    loop {
        let spec = sup.desired.borrow_and_update().clone();
        match spec {
            Some(spec) => sup.incarnation(spec).await,
            None => {
                let shared = sup.shared.clone();
                let mut instances = shared.instances.lock().await;
                if sup.desired.borrow().is_some() {
                    continue;
                }
                instances.remove(&sup.key);
                shared.ports.release(&sup.key.to_string());
                shared.remove_report(&sup.key);
                let groups: Vec<Cgroup> = sup.cgroup().into_iter().chain(sup.v1_groups()).collect();
                // Removed from the desired set (Delete Role Instances, a
                // scale-in, a deleted deployment), not stopped with the
                // agent: its disk goes too, so an instance added later under
                // the same name starts clean, as Azure's would. Its logs
                // stay (the history of what it did). Done before the lock is
                // released, so a re-added one never sees half of it.
                let forget = (!shared.shut_down.load(Ordering::SeqCst))
                    .then(|| shared.instance_dir(&sup.key.deployment_id, &sup.key.instance_id));
                let key = sup.key.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    for group in groups {
                        let _ = group.kill_and_remove(KILL_TIMEOUT);
                    }
                    if let Some(dir) = forget {
                        forget_disk(&key, &dir);
                    }
                })
                .await;
                drop(instances);
                if let Some(host) = sup.host.take() {
                    host.shutdown().await;
                }
                tracing::info!(instance = %sup.key, "instance removed");
                shared.supervisor_ended();
                return;
            }
        }
    }
}

/// Deletes everything in a removed instance's directory but its logs:
/// local storage, its own approot, the reimage counter. A failure is
/// logged; the next reimage or removal tries again.
fn forget_disk(key: &InstanceKey, dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name() == "logs" {
            continue;
        }
        let path = entry.path();
        if let Err(e) = prepare::remove_tree(&path) {
            tracing::warn!(instance = %key, path = %path.display(), error = %e, "failed to delete a removed instance's files");
        }
    }
}

struct Supervisor {
    shared: Arc<Shared>,
    key: InstanceKey,
    desired: watch::Receiver<Option<InstanceSpec>>,
    topologies: watch::Receiver<BTreeMap<String, Topology>>,
    host: Option<RuntimeHost>,
    /// The topology the runtime endpoint serves.
    topology: Option<Topology>,
    report: InstanceReport,
    /// Crashes within the window reached the threshold.
    cycling: bool,
}

/// One incarnation, prepared.
struct Prepared {
    /// Who processes that are not elevated run as (`None`: the agent's user).
    limited: Option<Credentials>,
    approot: PathBuf,
    placement: Placement,
    /// What startup tasks start from (without `Runtime/Environment`).
    base_env: Vec<(String, String)>,
    logs: Arc<LogBook>,
}

/// Everything an instance started in one run.
#[derive(Default)]
struct Running {
    entry: Option<Process>,
    tasks: Vec<(TaskType, String, Process)>,
    probes: Vec<JoinHandle<()>>,
}

/// How one run ended.
enum Ended {
    /// The controller wants something else; everything is stopped.
    Desired,
    /// The entry point exited; everything is killed.
    Crashed(String),
    /// The instance cannot start; everything is killed.
    Failed(String),
    /// The instance cancelled a settings change; everything is stopped and
    /// the instance starts again with the new settings.
    Recycled,
}

/// What a same-run change of the desired spec did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Update {
    /// Applied live (or nothing to apply).
    Applied,
    /// The instance cancelled Changing: recycle it.
    Recycle,
}

impl Supervisor {
    pub(super) fn cgroup(&self) -> Option<Cgroup> {
        self.shared
            .cgroups
            .as_ref()
            .map(|root| root.instance(&self.key.cgroup_name()))
    }

    /// The instance's cgroup v1 groups of resource limits (which exist
    /// only while a run with limits lasts).
    pub(super) fn v1_groups(&self) -> Vec<Cgroup> {
        let name = self.key.cgroup_name();
        self.shared
            .limits
            .v1_roots()
            .into_iter()
            .map(|root| root.instance(&name))
            .collect()
    }

    pub(super) fn publish(&mut self, status: InstanceStatus, ready: bool, message: Option<String>) {
        self.report.ready_endpoints.clear();
        self.publish_running(status, ready, message);
    }

    /// Like [`Self::publish`] for a running entry point, keeping the
    /// endpoints already in `report.ready_endpoints`.
    pub(super) fn publish_running(
        &mut self,
        status: InstanceStatus,
        ready: bool,
        message: Option<String>,
    ) {
        self.report.status = status;
        self.report.ready = ready;
        self.report.message = message;
        self.shared.set_report(&self.report);
    }

    /// Whether the desired spec still is this run of `spec`: the same
    /// incarnation and reimage counter, and not stopped.
    pub(super) fn still(&self, spec: &InstanceSpec) -> bool {
        self.desired.borrow().as_ref().is_some_and(|s| {
            s.incarnation == spec.incarnation && s.reimage == spec.reimage && !s.stopped
        })
    }

    /// A stopped instance: reported `StoppedVM` until the desired spec
    /// changes (its runtime endpoint serves the new values meanwhile).
    async fn stopped(&mut self, spec: InstanceSpec) {
        self.report.instance_id = spec.instance_id.clone();
        self.report.deployment_id = spec.deployment_id.clone();
        self.report.role = spec.role.clone();
        self.report.incarnation = spec.incarnation;
        self.report.pid = None;
        self.report.settings_digest.clear();
        self.cycling = false;
        self.publish(InstanceStatus::StoppedVM, false, None);
        tracing::info!(instance = %self.key, incarnation = spec.incarnation, "instance stopped as desired");
        let _ = self.desired.changed().await;
    }

    async fn incarnation(&mut self, spec: InstanceSpec) {
        if spec.stopped {
            return self.stopped(spec).await;
        }
        self.report = InstanceReport {
            instance_id: spec.instance_id.clone(),
            deployment_id: spec.deployment_id.clone(),
            role: spec.role.clone(),
            incarnation: spec.incarnation,
            status: InstanceStatus::CreatingRole,
            ready: false,
            ready_endpoints: Default::default(),
            endpoints: BTreeMap::new(),
            pid: None,
            restarts: 0,
            message: None,
            settings_digest: String::new(),
        };
        self.cycling = false;
        self.shared.set_report(&self.report);
        tracing::info!(instance = %self.key, incarnation = spec.incarnation, "preparing instance");
        let prepared = match self.prepare(&spec).await {
            Ok(p) => p,
            Err(message) => {
                tracing::warn!(instance = %self.key, %message, "instance failed to prepare");
                self.publish(InstanceStatus::FailedStartingRole, false, Some(message));
                self.wait_for_change(&spec).await;
                return;
            }
        };
        self.report.endpoints = prepared
            .placement
            .endpoints
            .iter()
            .map(|(n, (a, _))| (n.clone(), *a))
            .collect();
        let mut spec = spec;
        let mut crashes: VecDeque<Instant> = VecDeque::new();
        loop {
            match self.run_once(&mut spec, &prepared).await {
                Ended::Desired | Ended::Recycled => return,
                Ended::Failed(message) => {
                    tracing::warn!(instance = %self.key, %message, "instance failed to start");
                    self.report.pid = None;
                    self.publish(InstanceStatus::FailedStartingRole, false, Some(message));
                    self.wait_for_change(&spec).await;
                    return;
                }
                Ended::Crashed(message) => {
                    let config = &self.shared.config;
                    let now = Instant::now();
                    crashes.push_back(now);
                    while crashes
                        .front()
                        .is_some_and(|t| now.duration_since(*t) > config.crash_window)
                    {
                        crashes.pop_front();
                    }
                    let cycling = crashes.len() as u32 >= config.cycling_crashes.max(1);
                    self.cycling = cycling;
                    let delay = if cycling {
                        config.restart_backoff_max
                    } else {
                        backoff(
                            crashes.len(),
                            config.restart_backoff_base,
                            config.restart_backoff_max,
                        )
                    };
                    let status = if cycling {
                        InstanceStatus::CyclingRole
                    } else {
                        InstanceStatus::RestartingRole
                    };
                    tracing::warn!(instance = %self.key, %message, ?status, delay_ms = delay.as_millis() as u64, "entry point exited; restarting");
                    self.report.pid = None;
                    self.publish(status, false, Some(message));
                    let deadline = Instant::now() + delay;
                    while Instant::now() < deadline {
                        tokio::select! {
                            _ = tokio::time::sleep_until(deadline) => {}
                            changed = self.desired.changed() => {
                                if changed.is_err() || !self.still(&spec) {
                                    return;
                                }
                                // Nothing runs: nobody to ask.
                                self.update_same_incarnation(&mut spec, &prepared, false).await;
                            }
                        }
                    }
                    self.report.restarts += 1;
                }
            }
        }
    }

    /// Waits until the desired spec is no longer this run of `spec`.
    async fn wait_for_change(&mut self, spec: &InstanceSpec) {
        loop {
            if self.desired.changed().await.is_err() || !self.still(spec) {
                return;
            }
        }
    }

    async fn prepare(&mut self, spec: &InstanceSpec) -> Result<Prepared, String> {
        let limited = prepare::limited_user(&self.shared)?;
        let reimaged = prepare::reimage(&self.shared, spec)?;
        let approot = prepare::approot(&self.shared, spec, reimaged).await?;
        if reimaged {
            prepare::reimaged(&self.shared, spec)?;
        }
        let endpoints = prepare::endpoints(&self.shared, spec)?;
        let logs = self
            .shared
            .log_book(&self.key)
            .map_err(|e| format!("failed to open the instance's log directory: {e}"))?;
        let mut placement = Placement {
            runtime_address: String::new(),
            local_resources: BTreeMap::new(),
            endpoints,
        };
        let info = prepare::instance_info(spec, &placement);
        match &self.host {
            Some(host) => host.set_info(info),
            None => {
                let socket = self.shared.next_socket();
                let host = RuntimeHost::bind(&socket, info)
                    .await
                    .map_err(|e| format!("failed to serve the runtime endpoint: {e}"))?;
                self.host = Some(host);
            }
        }
        if let Some(host) = &self.host {
            placement.runtime_address = host.address();
            let topology = self
                .topologies
                .borrow_and_update()
                .get(&spec.deployment_id)
                .cloned()
                .unwrap_or_default();
            host.set_topology(topology.clone());
            self.topology = Some(topology);
        }
        // Local storage paths are known before they are created (and
        // emptied) at every start.
        placement.local_resources = spec
            .local_resources
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    self.shared
                        .instance_dir(&spec.deployment_id, &spec.instance_id)
                        .join("local")
                        .join(&r.name),
                )
            })
            .collect();
        if let Some(host) = &self.host {
            host.set_info(prepare::instance_info(spec, &placement));
            if let Some(user) = limited.filter(|_| !spec.elevated) {
                nix::unistd::chown(host.path(), Some(user.uid), Some(user.gid)).map_err(|e| {
                    format!(
                        "failed to give the runtime socket {} to the instance's user: {e}",
                        host.path().display()
                    )
                })?;
            }
        }
        // Checked now (a bad xpath fails the start before anything runs);
        // resolved again at every start of the entry point.
        env::instance_env(spec, &placement)?;
        let base_env = env::base_env(spec, &placement);
        Ok(Prepared {
            limited,
            approot,
            placement,
            base_env,
            logs,
        })
    }

    /// Same run, other values (settings): tell the instance with Changing
    /// / Changed around the new values, as Azure does. With `ask` (the
    /// entry point runs) the instance may cancel Changing, waited for at
    /// most [`CHANGING_ANSWER_TIMEOUT`]: then nothing is applied live and
    /// the caller recycles the instance with the new spec (`*spec` is the
    /// new one either way).
    pub(super) async fn update_same_incarnation(
        &mut self,
        spec: &mut InstanceSpec,
        prepared: &Prepared,
        ask: bool,
    ) -> Update {
        let Some(new) = self.desired.borrow().clone() else {
            return Update::Applied;
        };
        if new == *spec {
            return Update::Applied;
        }
        let mut changes: Vec<Change> = Vec::new();
        let names: BTreeSet<&String> = spec.settings.keys().chain(new.settings.keys()).collect();
        for name in names {
            if spec.settings.get(name) != new.settings.get(name) {
                changes.push(Change::Setting { name: name.clone() });
            }
        }
        if let Some(host) = &self.host {
            if !changes.is_empty() {
                if ask {
                    let outcome = host
                        .ask_changing(changes.clone(), CHANGING_ANSWER_TIMEOUT)
                        .await;
                    if outcome.cancelled {
                        // The stopping process keeps the old values; the
                        // next run's prepare serves the new ones.
                        tracing::info!(instance = %self.key, ?changes, "the instance cancelled Changing; recycling it with the new settings");
                        *spec = new;
                        return Update::Recycle;
                    }
                } else {
                    host.publish(RuntimeEvent::Changing {
                        id: None,
                        changes: changes.clone(),
                    });
                }
            }
            host.set_info(prepare::instance_info(&new, &prepared.placement));
            if !changes.is_empty() {
                host.publish(RuntimeEvent::Changed { changes });
            }
        }
        if ask {
            self.report.settings_digest = settings_digest(&new.settings);
            self.shared.set_report(&self.report);
        }
        *spec = new;
        Update::Applied
    }

    /// Applies a new topology of this deployment to the runtime endpoint.
    pub(super) fn update_topology(&mut self, deployment_id: &str) {
        let Some(new) = self
            .topologies
            .borrow_and_update()
            .get(deployment_id)
            .cloned()
        else {
            return;
        };
        let old = self.topology.clone().unwrap_or_default();
        if old == new {
            return;
        }
        let roles: BTreeSet<&String> = old.roles.keys().chain(new.roles.keys()).collect();
        let changes: Vec<Change> = roles
            .into_iter()
            .filter(|r| old.roles.get(*r) != new.roles.get(*r))
            .map(|r| Change::Topology { role: r.clone() })
            .collect();
        if let Some(host) = &self.host {
            host.publish(RuntimeEvent::Changing {
                id: None,
                changes: changes.clone(),
            });
            host.set_topology(new.clone());
            host.publish(RuntimeEvent::Changed { changes });
        }
        self.topology = Some(new);
    }
}

/// The delay before restart number `crashes` (1-based) in the window: none
/// for the first, then `base`, `2 base`, `4 base`, ... up to `max`.
pub(crate) fn backoff(crashes: usize, base: Duration, max: Duration) -> Duration {
    if crashes <= 1 {
        return Duration::ZERO;
    }
    let shift = (crashes - 2).min(30) as u32;
    base.saturating_mul(1u32 << shift).min(max)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_is_immediate_then_doubles_up_to_the_max() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let delays: Vec<u64> = (1..=7)
            .map(|n| backoff(n, base, max).as_millis() as u64)
            .collect();
        assert_eq!(delays, [0, 100, 200, 400, 800, 1000, 1000]);
    }
}
