//! One run of an instance: startup tasks in order, then the entry point,
//! watched with its probes and runtime status until it exits or the
//! controller wants something else.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::watch;

use super::{Ended, Prepared, Running, Supervisor, Update};
use crate::driver::{self, Launch};
use crate::env;
use crate::health::{Facts, assess, serving_regardless};
use crate::limits::RunLimits;
use crate::prepare;
use crate::probe::{Probe, Verdict};
use crate::protocol::{InstanceSpec, InstanceStatus, TaskType, settings_digest};

impl Supervisor {
    /// Starts the startup tasks and the entry point and supervises them
    /// until the entry point exits or the desired spec changes.
    pub(super) async fn run_once(&mut self, spec: &mut InstanceSpec, prepared: &Prepared) -> Ended {
        self.report.pid = None;
        self.report.settings_digest.clear();
        let starting = if self.cycling {
            InstanceStatus::CyclingRole
        } else {
            InstanceStatus::StartingRole
        };
        let message = self.report.message.take().filter(|_| self.cycling);
        self.publish(starting, false, message);
        let mut running = Running::default();
        if let Err(message) = prepare::local_resources(&self.shared, spec, prepared.limited) {
            return Ended::Failed(message);
        }
        let group = self.cgroup();
        if let Some(group) = &group {
            let created = group
                .create()
                .and_then(|()| group.child("tasks").create())
                .and_then(|()| group.child("entry").create());
            if let Err(e) = created {
                return Ended::Failed(format!(
                    "failed to create cgroup {}: {e}",
                    group.path().display()
                ));
            }
        }
        let limits = RunLimits::apply(
            &self.shared.limits,
            group.as_ref(),
            &self.key.cgroup_name(),
            &spec.limits,
        );
        self.warn_unlimited(spec);
        let tasks_group = group.as_ref().map(|g| g.child("tasks"));
        let entry_group = group.as_ref().map(|g| g.child("entry"));

        for task in spec.startup.clone() {
            let mut env = prepared.base_env.clone();
            if let Err(message) =
                env::extend(&mut env, &task.environment, spec, &prepared.placement)
            {
                self.kill_all(&mut running).await;
                return Ended::Failed(format!("startup task `{}`: {message}", task.command_line));
            }
            let process = driver::spawn(Launch {
                command_line: &task.command_line,
                cwd: &prepared.approot,
                env: &env,
                cgroup: tasks_group.as_ref(),
                v1: &limits.v1,
                logs: prepared.logs.clone(),
                user: prepared.limited.filter(|_| !task.elevated),
            });
            let mut process = match process {
                Ok(p) => p,
                Err(e) => {
                    self.kill_all(&mut running).await;
                    return Ended::Failed(format!(
                        "failed to start startup task `{}`: {e}",
                        task.command_line
                    ));
                }
            };
            tracing::info!(instance = %self.key, task = %task.command_line, kind = ?task.task_type, pid = process.pid, "startup task started");
            if task.task_type != TaskType::Simple {
                running
                    .tasks
                    .push((task.task_type, task.command_line.clone(), process));
                continue;
            }
            loop {
                tokio::select! {
                    status = process.wait() => {
                        match status {
                            Ok(s) if s.success() => break,
                            Ok(s) => {
                                let said = process.last_output().await;
                                let oom = limits.oom_hint(&spec.limits);
                                self.kill_all(&mut running).await;
                                let mut message = format!("startup task `{}` {}{oom}", task.command_line, describe(s));
                                if let Some(said) = said {
                                    message.push_str(": ");
                                    message.push_str(&said);
                                }
                                return Ended::Failed(message);
                            }
                            Err(e) => {
                                self.kill_all(&mut running).await;
                                return Ended::Failed(format!("failed to wait for startup task `{}`: {e}", task.command_line));
                            }
                        }
                    }
                    changed = self.desired.changed() => {
                        if changed.is_err() || !self.still(spec) {
                            running.tasks.push((TaskType::Simple, task.command_line.clone(), process));
                            self.stop_all(&mut running).await;
                            return Ended::Desired;
                        }
                        // The entry point does not run yet: it starts with
                        // the new values.
                        self.update_same_incarnation(spec, prepared, false).await;
                    }
                }
            }
        }

        let Some(command_line) = spec.entry_point.clone() else {
            self.kill_all(&mut running).await;
            return Ended::Failed("the role has no entry point weft can run".into());
        };
        if let Err(message) = driver::check_program(&command_line, &prepared.approot) {
            self.kill_all(&mut running).await;
            return Ended::Failed(format!("the entry point `{command_line}`: {message}"));
        }
        // Resolved now: settings changed live since the instance was
        // prepared reach a restarted entry point's `RoleInstanceValue`s.
        let entry_env = match env::instance_env(spec, &prepared.placement) {
            Ok(env) => env,
            Err(message) => {
                self.kill_all(&mut running).await;
                return Ended::Failed(message);
            }
        };
        let mut status_rx = match &self.host {
            Some(host) => {
                host.clear_status();
                host.status()
            }
            None => watch::Sender::new(None).subscribe(),
        };
        status_rx.borrow_and_update();
        match driver::spawn(Launch {
            command_line: &command_line,
            cwd: &prepared.approot,
            env: &entry_env,
            cgroup: entry_group.as_ref(),
            v1: &limits.v1,
            logs: prepared.logs.clone(),
            user: prepared.limited.filter(|_| !spec.elevated),
        }) {
            Ok(p) => running.entry = Some(p),
            Err(e) => {
                self.kill_all(&mut running).await;
                return Ended::Failed(format!(
                    "failed to start the entry point `{command_line}`: {e}"
                ));
            }
        }
        self.report.pid = running.entry.as_ref().map(|p| p.pid);
        self.report.settings_digest = settings_digest(&spec.settings);
        tracing::info!(instance = %self.key, pid = self.report.pid, "entry point started");

        let kick = std::sync::Arc::new(tokio::sync::Notify::new());
        let (verdicts_tx, mut verdicts) = watch::channel(BTreeMap::<String, Verdict>::new());
        for ep in &spec.endpoints {
            let (Some(probe), Some((addr, _))) =
                (&ep.probe, prepared.placement.endpoints.get(&ep.name))
            else {
                continue;
            };
            let port = match probe.port {
                Some(p) if Some(p) != ep.local_port => p,
                _ => addr.port(),
            };
            verdicts_tx.send_modify(|v| {
                v.insert(
                    ep.name.clone(),
                    Err(format!("probe {} not answered yet", ep.name)),
                );
            });
            let probe = Probe {
                name: ep.name.clone(),
                addr: std::net::SocketAddr::new(addr.ip(), port),
                http_path: probe.http_path.clone(),
                interval: Duration::from_millis(probe.interval_ms.max(1)),
                timeout: Duration::from_millis(probe.timeout_ms.max(1)),
                kick: kick.clone(),
            };
            running
                .probes
                .push(tokio::spawn(probe.run(verdicts_tx.clone())));
        }
        drop(verdicts_tx);
        let mut passed: BTreeSet<String> = BTreeSet::new();
        let probe_count = verdicts.borrow().len();

        loop {
            let facts = {
                let v = verdicts.borrow_and_update();
                for (name, verdict) in v.iter() {
                    if verdict.is_ok() {
                        passed.insert(name.clone());
                    }
                }
                let ignoring = spec
                    .endpoints
                    .iter()
                    .filter(|e| e.ignore_role_instance_status)
                    .map(|e| e.name.as_str());
                self.report.ready_endpoints = serving_regardless(ignoring, &v);
                Facts {
                    ready_on_start: spec.set_ready_on_process_start,
                    said: *status_rx.borrow_and_update(),
                    probe_failure: v.values().find_map(|r| r.clone().err()),
                    probes_passed_once: passed.len() == probe_count,
                    cycling: self.cycling,
                }
            };
            let (status, ready, message) = assess(&facts);
            self.publish_running(status, ready, message);
            let Some(entry) = running.entry.as_mut() else {
                return Ended::Desired;
            };
            tokio::select! {
                exit = entry.wait() => {
                    let why = match exit {
                        Ok(s) => format!("the entry point `{command_line}` {}{}", describe(s), limits.oom_hint(&spec.limits)),
                        Err(e) => format!("failed to wait for the entry point: {e}"),
                    };
                    running.entry = None;
                    self.kill_all(&mut running).await;
                    return Ended::Crashed(why);
                }
                changed = self.desired.changed() => {
                    if changed.is_err() || !self.still(spec) {
                        self.stop_all(&mut running).await;
                        return Ended::Desired;
                    }
                    if self.update_same_incarnation(spec, prepared, true).await == Update::Recycle {
                        self.stop_all(&mut running).await;
                        return Ended::Recycled;
                    }
                }
                Ok(()) = status_rx.changed() => kick.notify_waiters(),
                Ok(()) = verdicts.changed() => {}
                Ok(()) = self.topologies.changed() => {
                    let deployment = spec.deployment_id.clone();
                    self.update_topology(&deployment);
                }
            }
        }
    }
}

impl Supervisor {
    /// Says once per agent (a warning) that an instance wants limits this
    /// host has no cgroup controller for: it runs without them.
    fn warn_unlimited(&self, spec: &InstanceSpec) {
        let roots = &self.shared.limits;
        let missing: Vec<&str> = [
            ("cpu", spec.limits.cores.is_some() && roots.cpu.is_none()),
            (
                "memory",
                spec.limits.memory_mb.is_some() && roots.memory.is_none(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect();
        if !missing.is_empty()
            && !self
                .shared
                .unlimited_warned
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(instance = %self.key, ?missing, limits = ?spec.limits, "no cgroup controller for these vmsize limits on this host (or cgroups are off); instances run without them");
        }
    }
}

/// `exited with status 3` / `was killed by signal SIGKILL`, with the
/// shell's meaning of 126 and 127.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        let hint = match code {
            126 => " (the shell found the command but could not execute it)",
            127 => " (the shell did not find the command)",
            _ => "",
        };
        format!("exited with status {code}{hint}")
    } else if let Some(sig) = status.signal() {
        match Signal::try_from(sig) {
            Ok(s) => format!("was killed by signal {s}"),
            Err(_) => format!("was killed by signal {sig}"),
        }
    } else {
        format!("ended: {status}")
    }
}
