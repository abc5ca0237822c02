//! Upgrade Deployment, Change Deployment Configuration, Walk Upgrade Domain
//! and Rollback as asynchronous operations: each request is checked and
//! committed here, then [`crate::upgrade_walk`] walks it.
//!
//! One driver task per upgrading deployment walks the steps the record
//! lists. A step: commit the step's new specs (`during`), which takes its
//! instances out of their VIPs (their incarnation no longer matches what
//! the agent reports), drain them, hand the specs to the agent, and wait for
//! the health gate (every instance of the step Ready and still Ready after
//! the minimum healthy time); then commit the step as done. Each commit is
//! one store transaction, so a controller killed anywhere resumes at the
//! step it was in: a step done is never walked again, none is skipped.

use std::path::PathBuf;
use std::sync::Arc;

use weft_agent::protocol::{AgentApi, PackageRef};

use crate::controller::{DeploymentKey, Inner};
use crate::events::{EventKind, NewEvent};
use crate::ops::{check_service_name, keep_package, new_id, operation, short, validate};
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

pub(crate) fn new_operation(kind: OperationKind, record: &DeploymentRecord) -> OperationRecord {
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
        instances: Vec::new(),
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
    if matches!(
        current.status,
        DeploymentStatus::Suspended | DeploymentStatus::Suspending | DeploymentStatus::Starting
    ) {
        return Err(FabricError::NotRunning {
            deployment_id: current.id.clone(),
            status: format!("{:?}", current.status),
            hint: format!(
                "a suspended deployment is not {}: start it first with `weft start`",
                match kind {
                    ChangeKind::Upgrade => "upgraded",
                    ChangeKind::Configuration => "reconfigured",
                }
            ),
        });
    }
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
        from_configuration: current.configuration.clone(),
        to_configuration: Some(String::from_utf8_lossy(&req.configuration).into_owned()),
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

pub(crate) fn waiting_event(deployment_id: &str, up: &UpgradeRecord) -> NewEvent {
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
    live.driver = Some(tokio::spawn(crate::upgrade_walk::drive(
        inner.clone(),
        key.clone(),
    )));
}
