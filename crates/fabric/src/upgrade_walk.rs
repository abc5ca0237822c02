//! The upgrade driver: walks an upgrade's (or a configuration change's, or a
//! rollback's) steps as far as its persisted record allows, one store
//! transaction per step boundary.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use weft_agent::protocol::{AgentApi, InstanceStatus};

use crate::controller::{DeploymentKey, Inner};
use crate::events::{EventKind, NewEvent};
use crate::ops::{deployment, operation, short};
use crate::record::{self, DeploymentRecord, RollbackRecord};
use crate::upgrade::{self, ChangeKind, UpgradeMode};
use crate::upgrade_ops::waiting_event;
use crate::view::OperationStatus;

enum Direction {
    Forward,
    Back,
}

/// Walks the upgrade (or its rollback) as far as the record allows.
pub(crate) async fn drive<A: AgentApi>(inner: Arc<Inner<A>>, key: DeploymentKey) {
    loop {
        let Some(record) = deployment(&inner, &key) else {
            return;
        };
        let Some(up) = record.upgrade.clone() else {
            return;
        };
        if let Some(rb) = &up.rollback {
            let Some(uds) = rb.steps.get(rb.done).cloned() else {
                finish_rollback(&inner, &key);
                return;
            };
            match step(&inner, &key, &uds, Direction::Back).await {
                Ok(()) => {
                    let ok = update(&inner, &key, |record| {
                        let rb = record.upgrade.as_mut()?.rollback.as_mut()?;
                        rb.done += 1;
                        let e = NewEvent::new(
                            &record.id,
                            EventKind::DomainRestored,
                            format!("upgrade domain(s) {uds:?} restored and healthy"),
                        )
                        .domain(uds[0])
                        .operation(&rb.operation);
                        Some((None, vec![e]))
                    });
                    if !ok {
                        return;
                    }
                }
                Err(_) if inner.lock().closed => return,
                Err(reason) => {
                    stop(
                        &inner,
                        &key,
                        format!("rollback stopped at upgrade domain(s) {uds:?}: {reason}"),
                        true,
                    );
                    return;
                }
            }
            continue;
        }
        if up.failed.is_some() {
            return;
        }
        if up.done >= up.steps.len() {
            finish_upgrade(&inner, &key);
            return;
        }
        if up.done >= up.allowed {
            // Manual: waiting for Walk Upgrade Domain. A walk may have been
            // committed since the record was read; its start_driver saw
            // this task still running and left the walking to it. Decide
            // under the lock the walk commits under: go on, or detach so
            // the next walk starts a driver of its own.
            let mut state = inner.lock();
            let Some(live) = state.deployments.get_mut(&key) else {
                return;
            };
            if live
                .record
                .upgrade
                .as_ref()
                .is_some_and(|u| u.done < u.allowed && u.failed.is_none())
            {
                continue;
            }
            live.driver = None;
            return;
        }
        let uds = up.steps[up.done].clone();
        match step(&inner, &key, &uds, Direction::Forward).await {
            Ok(()) => {
                let ok = update(&inner, &key, |record| {
                    let up = record.upgrade.as_mut()?;
                    up.done += 1;
                    up.during = false;
                    let mut events = vec![
                        NewEvent::new(
                            &record.id,
                            EventKind::DomainHealthy,
                            format!("upgrade domain(s) {uds:?} upgraded and healthy"),
                        )
                        .domain(uds[0])
                        .operation(up.walk_operation.as_deref().unwrap_or(&up.operation)),
                    ];
                    let mut walk_op = None;
                    if let Some(id) = up.walk_operation.take() {
                        record.operation = None;
                        walk_op = Some(id);
                        if up.done < up.steps.len() {
                            events.push(waiting_event(&record.id, up));
                        }
                    }
                    let mut end = walk_op.map(|id| (id, None));
                    if up.done >= up.steps.len() {
                        // The last step: the upgrade ends in the same commit.
                        let (finished, e) = complete(record)?;
                        end = end.or(finished);
                        events.push(e);
                    }
                    Some((end, events))
                });
                if !ok {
                    return;
                }
            }
            Err(_) if inner.lock().closed => return,
            Err(reason) => {
                let reason = format!("upgrade domain(s) {uds:?}: {reason}");
                if up.auto_rollback {
                    let ok = update(&inner, &key, |record| {
                        let up = record.upgrade.as_mut()?;
                        let touched = up.done + usize::from(up.during);
                        let steps: Vec<Vec<u32>> =
                            up.steps[..touched].iter().rev().cloned().collect();
                        let driving = up
                            .walk_operation
                            .take()
                            .unwrap_or_else(|| up.operation.clone());
                        record.operation = Some(driving.clone());
                        let events = vec![
                            NewEvent::new(&record.id, EventKind::HealthGateFailed, reason.clone())
                                .domain(uds[0])
                                .operation(&driving),
                            NewEvent::new(
                                &record.id,
                                EventKind::RollbackStarted,
                                format!(
                                    "auto-rollback of upgrade domain(s) {:?}",
                                    steps.iter().flatten().collect::<Vec<_>>()
                                ),
                            )
                            .domain(uds[0])
                            .operation(&driving),
                        ];
                        up.rollback = Some(RollbackRecord {
                            operation: driving,
                            steps,
                            done: 0,
                            reason: Some(reason.clone()),
                        });
                        Some((None, events))
                    });
                    if !ok {
                        return;
                    }
                    continue;
                }
                stop(&inner, &key, reason, false);
                return;
            }
        }
    }
}

/// Applies `change` to the deployment record and commits it with its
/// events, ending operation `(id, error)` if it names one (Succeeded without
/// an error). False if there was nothing to change or the commit failed.
type Change = (Option<Ending>, Vec<NewEvent>);
/// An operation to end: its id and, if it failed, why.
type Ending = (String, Option<String>);
fn update<A: AgentApi>(
    inner: &Inner<A>,
    key: &DeploymentKey,
    change: impl FnOnce(&mut DeploymentRecord) -> Option<Change>,
) -> bool {
    let Some(mut record) = deployment(inner, key) else {
        return false;
    };
    let Some((end, events)) = change(&mut record) else {
        return false;
    };
    let op = end.and_then(|(id, error)| {
        let mut op = operation(inner, &id)?;
        op.status = if error.is_some() {
            OperationStatus::Failed
        } else {
            OperationStatus::Succeeded
        };
        op.error = error;
        op.ended_ms = Some(record::now_ms());
        Some(op)
    });
    match inner.commit_with(Some(Ok(&record)), op.as_ref(), Some((key, events))) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, deployment = %record.id, "failed to record upgrade progress");
            false
        }
    }
}

/// A failed health gate without rollback (or a failed rollback): the
/// upgrade stays where it is, stopped, and its operation fails with why.
fn stop<A: AgentApi>(inner: &Inner<A>, key: &DeploymentKey, reason: String, in_rollback: bool) {
    tracing::warn!(service = %key.0, slot = %key.1, reason = %reason, "upgrade stopped");
    update(inner, key, |record| {
        let up = record.upgrade.as_mut()?;
        let driving = if in_rollback {
            up.rollback.take().map(|rb| rb.operation)
        } else {
            up.walk_operation
                .take()
                .or_else(|| Some(up.operation.clone()))
        }?;
        up.failed = Some(reason.clone());
        record.operation = None;
        let kind = if in_rollback {
            EventKind::UpgradeFailed
        } else {
            EventKind::HealthGateFailed
        };
        let events = vec![NewEvent::new(&record.id, kind, reason.clone()).operation(&driving)];
        Some((Some((driving, Some(reason.clone()))), events))
    });
}

fn finish_upgrade<A: AgentApi>(inner: &Inner<A>, key: &DeploymentKey) {
    update(inner, key, |record| {
        let (end, e) = complete(record)?;
        Some((end, vec![e]))
    });
}

/// Ends the upgrade in `record`: the operation to end (an auto or
/// simultaneous upgrade's own) and the event saying so.
fn complete(record: &mut DeploymentRecord) -> Option<(Option<Ending>, NewEvent)> {
    let up = record.upgrade.take()?;
    record.package_digest = up.to_digest.clone();
    if up.to_configuration.is_some() {
        record.configuration = up.to_configuration.clone();
    }
    record.plan.vips = up.to.vips.clone();
    record.plan.notes = up.to.notes.clone();
    let end =
        (record.operation.as_ref() == Some(&up.operation)).then(|| (up.operation.clone(), None));
    if end.is_some() {
        record.operation = None;
    }
    let e = NewEvent::new(
        &record.id,
        EventKind::UpgradeCompleted,
        format!("upgrade to package {} complete", short(&up.to_digest)),
    )
    .operation(&up.operation);
    Some((end, e))
}

fn finish_rollback<A: AgentApi>(inner: &Inner<A>, key: &DeploymentKey) {
    update(inner, key, |record| {
        let up = record.upgrade.take()?;
        let rb = up.rollback.clone()?;
        record.package_digest = up.from_digest.clone();
        record.plan.vips = up.from.vips.clone();
        record.plan.notes = up.from.notes.clone();
        record.configuration = up.from_configuration.clone();
        record.operation = None;
        let uds: Vec<u32> = rb.steps.iter().flatten().copied().collect();
        let restored = match up.kind {
            ChangeKind::Upgrade => format!(
                "upgrade domain(s) {uds:?} restored to package {}",
                short(&up.from_digest)
            ),
            ChangeKind::Configuration => {
                format!("upgrade domain(s) {uds:?} restored to the previous configuration")
            }
        };
        let error = rb.reason.as_ref().map(|why| format!("{why}; {restored}"));
        let e = NewEvent::new(&record.id, EventKind::RollbackCompleted, restored)
            .operation(&rb.operation);
        Some((Some((rb.operation.clone(), error)), vec![e]))
    });
}

/// Walks one step: new specs committed, instances that leave drained from
/// their VIPs, the specs handed to the agent, health gate passed.
async fn step<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    key: &DeploymentKey,
    uds: &[u32],
    direction: Direction,
) -> Result<(), String> {
    // Until drained, the agent keeps the step's instances as they are
    // (whatever else applies meanwhile).
    {
        let mut state = inner.lock();
        let Some(live) = state.deployments.get_mut(key) else {
            return Err("the deployment disappeared".to_owned());
        };
        live.held = live
            .instances()
            .filter(|i| uds.contains(&i.update_domain))
            .map(|i| (i.instance_id.clone(), i.clone()))
            .collect();
    }
    let result = walk_step(inner, key, uds, direction).await;
    if let Some(live) = inner.lock().deployments.get_mut(key) {
        live.held.clear();
    }
    result
}

async fn walk_step<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    key: &DeploymentKey,
    uds: &[u32],
    direction: Direction,
) -> Result<(), String> {
    let mut changed = upgrade::Switched::default();
    let mut gate = None;
    let switched = update(inner, key, |record| {
        let up = record.upgrade.as_mut()?;
        // A manual walk's wait for the user is not the fabric's time.
        let overall = (up.mode != UpgradeMode::Manual).then_some(up.started_ms);
        gate = Some((up.gate, overall));
        let source = match direction {
            Direction::Forward => &up.to,
            Direction::Back => &up.from,
        };
        changed = upgrade::switch(&mut record.plan, source, uds, up.kind);
        let op = match (&direction, &up.rollback) {
            (Direction::Back, Some(rb)) => rb.operation.clone(),
            _ => up
                .walk_operation
                .clone()
                .unwrap_or_else(|| up.operation.clone()),
        };
        if matches!(direction, Direction::Forward) {
            up.during = true;
        }
        let verb = if matches!(direction, Direction::Forward) {
            "walking"
        } else {
            "walking back"
        };
        let e = NewEvent::new(
            &record.id,
            EventKind::DomainWalking,
            format!(
                "{verb} upgrade domain(s) {uds:?}: {}",
                describe_switch(&changed)
            ),
        )
        .domain(uds[0])
        .operation(&op);
        Some((None, vec![e]))
    });
    let (Some((gate, started_ms)), true) = (gate, switched) else {
        return Err("the deployment's upgrade record is gone".to_owned());
    };
    // The switch took the leaving instances out of the VIPs (sync_backends
    // in the commit); let open connections finish before they stop.
    let leaving = changed.going_down();
    let key_id = deployment(inner, key).map(|r| r.id).unwrap_or_default();
    let pairs: Vec<(String, String)> = leaving
        .iter()
        .map(|i| (key_id.clone(), i.clone()))
        .collect();
    let drains = crate::drain::drain_first(inner, key, &pairs).await;
    if let Some(live) = inner.lock().deployments.get_mut(key) {
        live.held.clear();
    }
    inner.apply().await.map_err(|e| e.to_string())?;
    let mut deadline = Instant::now() + gate.domain_timeout();
    if let Some(started_ms) = started_ms {
        let spent = Duration::from_millis(record::now_ms().saturating_sub(started_ms));
        deadline = deadline.min(Instant::now() + gate.timeout().saturating_sub(spent));
    }
    let drained = async {
        let cut = drains.finish_counted().await;
        if !leaving.is_empty() {
            let deployment_id = deployment(inner, key).map(|r| r.id).unwrap_or_default();
            let mut e = NewEvent::new(
                &deployment_id,
                EventKind::DomainDrained,
                format!(
                    "{} instance(s) drained from their VIPs{}",
                    leaving.len(),
                    if cut > 0 {
                        format!(", {cut} connection(s) cut at the drain timeout")
                    } else {
                        String::new()
                    }
                ),
            );
            e.upgrade_domain = Some(uds[0]);
            inner.record_event(key, e);
        }
    };
    let (healthy, ()) = tokio::join!(
        health_gate(inner, key, uds, gate.min_healthy(), deadline),
        drained
    );
    healthy
}

/// `recycling Web_IN_0, Web_IN_5; settings changed in place on …; adding …;
/// removing …`, or `nothing to change`.
fn describe_switch(s: &upgrade::Switched) -> String {
    let mut parts = Vec::new();
    for (what, ids) in [
        ("recycling", &s.recycled),
        ("settings changed in place on", &s.in_place),
        ("adding", &s.added),
        ("removing", &s.removed),
    ] {
        if !ids.is_empty() {
            parts.push(format!("{what} {}", ids.join(", ")));
        }
    }
    if parts.is_empty() {
        "nothing to change (already switched or unchanged)".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Waits until every instance in `uds` is Ready and has stayed Ready for
/// `min_healthy`; fails at once on an instance that failed to start or
/// cycles, and at `deadline` with what was not ready.
async fn health_gate<A: AgentApi>(
    inner: &Inner<A>,
    key: &DeploymentKey,
    uds: &[u32],
    min_healthy: Duration,
    deadline: Instant,
) -> Result<(), String> {
    let mut rx = inner.generation.subscribe();
    let mut since: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        let now = Instant::now();
        let mut waiting = Vec::new();
        {
            let state = inner.lock();
            if state.closed {
                return Err("the controller stopped".to_owned());
            }
            let Some(live) = state.deployments.get(key) else {
                return Err("the deployment disappeared".to_owned());
            };
            for spec in live.instances().filter(|s| uds.contains(&s.update_domain)) {
                let report = crate::controller::current_report(&state.reports, spec);
                match report {
                    Some(r)
                        if matches!(
                            r.status,
                            InstanceStatus::FailedStartingRole | InstanceStatus::CyclingRole
                        ) =>
                    {
                        return Err(format!(
                            "role instance {} is {:?}: {}",
                            spec.instance_id,
                            r.status,
                            r.message.as_deref().unwrap_or("no message")
                        ));
                    }
                    Some(r) if crate::controller::landed(r, spec) => {
                        since.entry(spec.instance_id.clone()).or_insert(now);
                    }
                    other => {
                        since.remove(&spec.instance_id);
                        waiting.push(match other {
                            Some(r) if r.ready => {
                                format!("{} has not applied the new settings yet", spec.instance_id)
                            }
                            Some(r) => format!(
                                "{} is {:?}{}",
                                spec.instance_id,
                                r.status,
                                r.message
                                    .as_deref()
                                    .map(|m| format!(": {m}"))
                                    .unwrap_or_default()
                            ),
                            None => format!("{} is not reported yet", spec.instance_id),
                        });
                    }
                }
            }
        }
        let healthy_at = since.values().max().map(|t| *t + min_healthy);
        if waiting.is_empty() && healthy_at.is_none_or(|t| t <= now) {
            return Ok(());
        }
        if now >= deadline {
            return Err(if waiting.is_empty() {
                format!(
                    "not healthy for {} ms before the deadline",
                    min_healthy.as_millis()
                )
            } else {
                format!("not ready before the deadline: {}", waiting.join(", "))
            });
        }
        let wake = match healthy_at {
            Some(t) if waiting.is_empty() => t.min(deadline),
            _ => deadline,
        };
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return Err("the controller stopped".to_owned());
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}
