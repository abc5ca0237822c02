//! Upgrade, Walk Upgrade Domain and Rollback as asynchronous operations.
//!
//! One driver task per upgrading deployment walks the steps the record
//! lists. A step: commit the step's new specs (`during`), which takes its
//! instances out of their VIPs (their incarnation no longer matches what
//! the agent reports), drain them, hand the specs to the agent, and wait for
//! the health gate (every instance of the step Ready and still Ready after
//! the minimum healthy time); then commit the step as done. Each commit is
//! one store transaction, so a controller killed anywhere resumes at the
//! step it was in: a step done is never walked again, none is skipped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use weft_agent::protocol::{AgentApi, InstanceStatus, PackageRef};

use crate::controller::{DeploymentKey, Inner};
use crate::events::{EventKind, NewEvent};
use crate::ops::{
    check_service_name, deployment, keep_package, new_id, operation, short, validate,
};
use crate::record::{self, DeploymentRecord, OperationRecord, RollbackRecord, UpgradeRecord};
use crate::upgrade::{self, ChangeKind, UpgradeMode, UpgradePlan};
use crate::view::{DeploymentStatus, OperationKind, OperationStatus};
use crate::{ChangeConfigurationRequest, FabricError, OperationId, Slot, UpgradeRequest, spec};

/// The running deployment of `service`/`slot`, or why it cannot be changed.
fn running<A: AgentApi>(
    inner: &Inner<A>,
    service: &str,
    slot: Slot,
) -> Result<DeploymentRecord, FabricError> {
    let state = inner.lock();
    if state.closed {
        return Err(FabricError::ShutDown);
    }
    let live = state
        .deployments
        .get(&(service.to_owned(), slot))
        .ok_or_else(|| FabricError::NoDeployment {
            service: service.to_owned(),
            slot,
        })?;
    Ok(live.record.clone())
}

fn describe(up: &UpgradeRecord) -> String {
    let at = up.steps.get(up.done).and_then(|s| s.first()).copied();
    let count = up.steps.iter().flatten().count();
    match (&up.rollback, &up.failed, at) {
        (Some(_), _, _) => "rolling back".to_owned(),
        (None, Some(why), _) => format!("stopped by a failed health gate: {why}"),
        (None, None, Some(ud)) => format!("{} mode, at upgrade domain {ud} of {count}", up.mode),
        (None, None, None) => format!("{} mode, finishing", up.mode),
    }
}

fn new_operation(kind: OperationKind, record: &DeploymentRecord) -> OperationRecord {
    OperationRecord {
        id: new_id(),
        kind,
        status: OperationStatus::InProgress,
        service: record.service.clone(),
        slot: record.slot,
        deployment_id: record.id.clone(),
        error: None,
        messages: Vec::new(),
        started_ms: record::now_ms(),
        ended_ms: None,
    }
}

/// Validates the request and plans it: the plan, and the record an accepted
/// upgrade starts from.
pub async fn plan<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    req: &UpgradeRequest,
    kind: ChangeKind,
) -> Result<(UpgradePlan, UpgradeRecord), FabricError> {
    check_service_name(&req.service)?;
    let current = running(inner, &req.service, req.slot)?;
    if kind == ChangeKind::Configuration && req.package != current_package(inner, &current) {
        return Err(FabricError::Internal {
            what: "plan a configuration change",
            message: "a configuration change keeps the deployment's package".to_owned(),
        });
    }
    let (package, configuration, state_dir) = (
        req.package.clone(),
        req.configuration.clone(),
        inner.config.state_dir.clone(),
    );
    let (model, digest, kept) = tokio::task::spawn_blocking(move || {
        let (model, digest) = validate(&package, &configuration)?;
        let kept = keep_package(&state_dir, &package, &digest)?;
        Ok::<_, FabricError>((model, digest, kept))
    })
    .await
    .map_err(|e| FabricError::Internal {
        what: "validate the package",
        message: e.to_string(),
    })??;
    let target = spec::plan(
        &current.id,
        &model,
        &PackageRef {
            path: kept,
            digest: digest.clone(),
        },
        inner.config.fault_domain_count,
    );
    let role = req.role.as_deref();
    let planned = upgrade::plan(&current.plan, &target, req.mode, role, kind);
    let steps = upgrade::steps(req.mode, planned.upgrade_domain_count);
    let record = UpgradeRecord {
        operation: String::new(),
        kind,
        mode: req.mode,
        role: req.role.clone(),
        auto_rollback: req.auto_rollback,
        gate: req.gate.unwrap_or(inner.config.upgrade_gate),
        started_ms: record::now_ms(),
        to: upgrade::target_plan(&current.plan, &target, role, kind),
        from: current.plan.clone(),
        from_digest: current.package_digest.clone(),
        to_digest: digest,
        allowed: if req.mode == UpgradeMode::Manual {
            0
        } else {
            steps.len()
        },
        steps,
        done: 0,
        during: false,
        walk_operation: None,
        failed: None,
        rollback: None,
    };
    Ok((planned, record))
}

/// Where the controller keeps the deployment's current package.
fn current_package<A: AgentApi>(inner: &Inner<A>, record: &DeploymentRecord) -> PathBuf {
    inner
        .config
        .state_dir
        .join("packages")
        .join(format!("{}.cspkg", record.package_digest))
}

/// Azure's Change Deployment Configuration as the upgrade request it is:
/// the current package with the new configuration.
pub async fn configuration_request<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    req: ChangeConfigurationRequest,
) -> Result<UpgradeRequest, FabricError> {
    check_service_name(&req.service)?;
    let current = running(inner, &req.service, req.slot)?;
    Ok(UpgradeRequest {
        package: current_package(inner, &current),
        service: req.service,
        slot: req.slot,
        configuration: req.configuration,
        mode: req.mode,
        role: None,
        auto_rollback: req.auto_rollback,
        gate: req.gate,
    })
}

pub async fn upgrade<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    req: UpgradeRequest,
    kind: ChangeKind,
) -> Result<OperationId, FabricError> {
    let (planned, mut up) = plan(inner, &req, kind).await?;
    if !planned.refused.is_empty() {
        return Err(FabricError::UpgradeRefused {
            reasons: planned.refused,
        });
    }
    let _admit = inner.admit.lock().await;
    let mut record = running(inner, &req.service, req.slot)?;
    if let Some(current) = &record.upgrade {
        return Err(FabricError::UpgradeInProgress {
            deployment_id: record.id.clone(),
            operation: current.operation.clone(),
            state: describe(current),
            hint: "wait for it, or roll it back with `weft rollback`",
        });
    }
    if let Some(op) = &record.operation {
        return Err(FabricError::Busy {
            deployment_id: record.id.clone(),
            operation: op.clone(),
        });
    }
    if record.status != DeploymentStatus::Running || record.plan != up.from {
        return Err(FabricError::Busy {
            deployment_id: record.id.clone(),
            operation: "(the deployment changed while the upgrade was planned)".to_owned(),
        });
    }
    let op_kind = match kind {
        ChangeKind::Upgrade => OperationKind::UpgradeDeployment,
        ChangeKind::Configuration => OperationKind::ChangeDeploymentConfiguration,
    };
    let mut op = new_operation(op_kind, &record);
    op.messages.extend(planned.notes.iter().cloned());
    up.operation = op.id.clone();
    let key = (record.service.clone(), record.slot);
    let mut events = vec![
        NewEvent::new(
            &record.id,
            EventKind::UpgradeStarted,
            format!(
                "{} {} from package {} to {}{} over {} upgrade domain(s){}",
                up.mode,
                match kind {
                    ChangeKind::Upgrade => "upgrade",
                    ChangeKind::Configuration => "configuration change",
                },
                short(&up.from_digest),
                short(&up.to_digest),
                up.role
                    .as_ref()
                    .map(|r| format!(" (role {r} only)"))
                    .unwrap_or_default(),
                planned.upgrade_domain_count,
                if up.auto_rollback {
                    ", rolling back a failed upgrade domain"
                } else {
                    ""
                }
            ),
        )
        .operation(&op.id),
    ];
    if up.mode == UpgradeMode::Manual {
        // Azure's manual upgrade: the request succeeds at once; each Walk
        // Upgrade Domain is its own operation.
        op.status = OperationStatus::Succeeded;
        op.ended_ms = Some(record::now_ms());
        op.messages.push(
            "manual mode: walk each upgrade domain in order with `weft walk <ud>`, starting with 0"
                .to_owned(),
        );
        events.push(waiting_event(&record.id, &up));
    } else {
        record.operation = Some(op.id.clone());
    }
    record.upgrade = Some(up);
    inner.commit_with(Some(Ok(&record)), Some(&op), Some((&key, events)))?;
    tracing::info!(operation = %op.id, deployment = %record.id, mode = %req.mode, "upgrade accepted");
    start_driver(inner, &key);
    Ok(op.id)
}

fn waiting_event(deployment_id: &str, up: &UpgradeRecord) -> NewEvent {
    let next = up
        .steps
        .get(up.done)
        .and_then(|s| s.first())
        .copied()
        .unwrap_or(0);
    NewEvent::new(
        deployment_id,
        EventKind::WaitingForWalk,
        format!("waiting for Walk Upgrade Domain {next}"),
    )
    .domain(next)
    .operation(&up.operation)
}

pub async fn walk<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    service: &str,
    slot: Slot,
    ud: u32,
) -> Result<OperationId, FabricError> {
    let _admit = inner.admit.lock().await;
    let mut record = running(inner, service, slot)?;
    let refuse = |reason: String| {
        Err(FabricError::WalkRefused {
            requested: ud,
            reason,
        })
    };
    let Some(up) = record.upgrade.as_mut() else {
        return Err(FabricError::NoUpgrade {
            deployment_id: record.id.clone(),
        });
    };
    if up.mode != UpgradeMode::Manual {
        return refuse(format!(
            "the upgrade is in {} mode; only a manual upgrade is walked",
            up.mode
        ));
    }
    if up.rollback.is_some() {
        return refuse("the upgrade is being rolled back".to_owned());
    }
    if let Some(why) = &up.failed {
        return refuse(format!(
            "the upgrade stopped ({why}); roll it back with `weft rollback`"
        ));
    }
    if let Some(walking) = &up.walk_operation {
        return refuse(format!(
            "upgrade domain {} is being walked by operation {walking}",
            up.steps[up.done][0]
        ));
    }
    let next = up.steps.get(up.done).and_then(|s| s.first()).copied();
    if next != Some(ud) {
        return refuse(match next {
            Some(n) => format!("upgrade domains are walked in order: the next is {n}"),
            None => "every upgrade domain is walked".to_owned(),
        });
    }
    if let Some(busy) = &record.operation {
        return Err(FabricError::Busy {
            deployment_id: record.id.clone(),
            operation: busy.clone(),
        });
    }
    let mut op = new_operation(OperationKind::WalkUpgradeDomain, &record);
    op.messages.push(format!("walking upgrade domain {ud}"));
    let up = record.upgrade.as_mut().expect("checked above");
    up.allowed = up.done + 1;
    up.walk_operation = Some(op.id.clone());
    record.operation = Some(op.id.clone());
    let key = (record.service.clone(), record.slot);
    let event = NewEvent::new(
        &record.id,
        EventKind::DomainWalking,
        format!("walk of upgrade domain {ud} requested"),
    )
    .domain(ud)
    .operation(&op.id);
    inner.commit_with(Some(Ok(&record)), Some(&op), Some((&key, vec![event])))?;
    start_driver(inner, &key);
    Ok(op.id)
}

pub async fn rollback<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    service: &str,
    slot: Slot,
) -> Result<OperationId, FabricError> {
    let _admit = inner.admit.lock().await;
    let key: DeploymentKey = (service.to_owned(), slot);
    running(inner, service, slot)?;
    // Stop the driver first: it stops at an await point, so the record
    // holds exactly the steps it committed.
    let driver = inner
        .lock()
        .deployments
        .get_mut(&key)
        .and_then(|l| l.driver.take());
    if let Some(driver) = driver {
        driver.abort();
        let _ = driver.await;
    }
    let mut record = running(inner, service, slot)?;
    let op = new_operation(OperationKind::RollbackUpdateOrUpgrade, &record);
    let Some(up) = record.upgrade.as_mut() else {
        return Err(FabricError::NoUpgrade {
            deployment_id: record.id.clone(),
        });
    };
    if let Some(rb) = &up.rollback {
        let operation = rb.operation.clone();
        drop(_admit);
        start_driver(inner, &key);
        return Err(FabricError::Busy {
            deployment_id: record.id.clone(),
            operation,
        });
    }
    let touched = up.done + usize::from(up.during);
    let steps: Vec<Vec<u32>> = up.steps[..touched.min(up.steps.len())]
        .iter()
        .rev()
        .cloned()
        .collect();
    let mut op = op;
    let uds: Vec<u32> = steps.iter().flatten().copied().collect();
    op.messages.push(if uds.is_empty() {
        "no upgrade domain was upgraded yet: nothing to walk back".to_owned()
    } else {
        format!("walking back upgrade domain(s) {uds:?}")
    });
    let mut ended = Vec::new();
    for id in [Some(up.operation.clone()), up.walk_operation.clone()]
        .into_iter()
        .flatten()
    {
        if let Some(mut o) =
            operation(inner, &id).filter(|o| o.status == OperationStatus::InProgress)
        {
            o.status = OperationStatus::Failed;
            o.error = Some(format!("rolled back by operation {}", op.id));
            o.ended_ms = Some(record::now_ms());
            ended.push(o);
        }
    }
    up.rollback = Some(RollbackRecord {
        operation: op.id.clone(),
        steps,
        done: 0,
        reason: None,
    });
    up.walk_operation = None;
    record.operation = Some(op.id.clone());
    let event = NewEvent::new(
        &record.id,
        EventKind::RollbackStarted,
        format!(
            "rollback requested: back to package {}, upgrade domain(s) {uds:?}",
            short(&up.from_digest)
        ),
    )
    .operation(&op.id);
    for o in &ended {
        inner.commit(None, Some(o))?;
    }
    inner.commit_with(Some(Ok(&record)), Some(&op), Some((&key, vec![event])))?;
    start_driver(inner, &key);
    Ok(op.id)
}

/// Starts the driver of every upgrading deployment (called once by `open`).
pub fn resume<A: AgentApi>(inner: &Arc<Inner<A>>) {
    let keys: Vec<DeploymentKey> = inner
        .lock()
        .deployments
        .iter()
        .filter(|(_, l)| l.record.upgrade.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    for key in keys {
        tracing::info!(service = %key.0, slot = %key.1, "resuming upgrade");
        start_driver(inner, &key);
    }
}

fn start_driver<A: AgentApi>(inner: &Arc<Inner<A>>, key: &DeploymentKey) {
    let mut state = inner.lock();
    if state.closed {
        return;
    }
    let Some(live) = state.deployments.get_mut(key) else {
        return;
    };
    if live.driver.as_ref().is_some_and(|d| !d.is_finished()) {
        return;
    }
    live.driver = Some(tokio::spawn(drive(inner.clone(), key.clone())));
}

enum Direction {
    Forward,
    Back,
}

/// Walks the upgrade (or its rollback) as far as the record allows.
async fn drive<A: AgentApi>(inner: Arc<Inner<A>>, key: DeploymentKey) {
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
            return; // manual: waiting for Walk Upgrade Domain
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
    let vips: Vec<weft_lb::Vip> = inner
        .lock()
        .deployments
        .get(key)
        .map(|l| l.vips.iter().flatten().map(|v| v.vip.clone()).collect())
        .unwrap_or_default();
    let mut drains = tokio::task::JoinSet::new();
    for vip in &vips {
        for id in &leaving {
            let (vip, id, timeout) = (vip.clone(), id.clone(), inner.config.drain_timeout);
            drains.spawn(async move { vip.drain(&id, timeout).await.cut as u64 });
        }
    }
    // Short connections finish here; kept-alive ones end when the
    // instance, told to stop, closes them itself (the rest are cut at the
    // drain timeout).
    let mut cut = 0;
    let _ = tokio::time::timeout(inner.config.drain_before_stop, async {
        while let Some(n) = drains.join_next().await {
            cut += n.unwrap_or(0);
        }
    })
    .await;
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
        while let Some(n) = drains.join_next().await {
            cut += n.unwrap_or(0);
        }
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
                let report = state.reports.get(&spec.instance_id).filter(|r| {
                    r.deployment_id == spec.deployment_id && r.incarnation == spec.incarnation
                });
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
                    Some(r) if r.ready => {
                        since.entry(spec.instance_id.clone()).or_insert(now);
                    }
                    other => {
                        since.remove(&spec.instance_id);
                        waiting.push(match other {
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
