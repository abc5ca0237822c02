//! The asynchronous operations: create and delete a deployment, rolling a
//! failed create back, and resuming whatever a killed controller left in
//! progress. Every step is one store transaction.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weft_agent::protocol::{AgentApi, InstanceStatus, PackageRef};
use weft_model::ServiceModel;
use weft_package::Package;
use weft_store::{Compare, Op};

use crate::controller::{DeploymentKey, Inner, Live};
use crate::events::{EventKind, NewEvent};
use crate::record::{self, DeploymentRecord, OperationRecord};
use crate::spec;
use crate::view::{DeploymentStatus, OperationKind, OperationStatus};
use crate::{DeployRequest, FabricError, OperationId, Slot};

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub(crate) fn check_service_name(name: &str) -> Result<(), FabricError> {
    let ok = (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(FabricError::BadServiceName {
            name: name.to_owned(),
        })
    }
}

/// Opens and verifies the package and checks its definition with the
/// configuration. Blocking (hashes the package).
pub(crate) fn validate(
    package: &Path,
    configuration: &[u8],
) -> Result<(ServiceModel, String), FabricError> {
    let err = |source| FabricError::Package {
        path: package.to_owned(),
        source,
    };
    let mut pkg = Package::open(package).map_err(err)?;
    let report = pkg.verify();
    if !report.is_ok() {
        let problems: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        return Err(FabricError::PackageDamaged {
            path: package.to_owned(),
            problems: problems.join("; "),
        });
    }
    let csdef = pkg.service_definition().map_err(err)?;
    let model = ServiceModel::from_bytes(
        ("ServiceDefinition.csdef", &csdef),
        ("ServiceConfiguration.cscfg", configuration),
    )
    .map_err(|e| match e {
        weft_model::LoadError::Invalid {
            diagnostics,
            sources,
        } => FabricError::InvalidModel {
            diagnostics: weft_model::render_text(&diagnostics, &sources, false),
        },
        other => FabricError::InvalidModel {
            diagnostics: other.to_string(),
        },
    })?;
    for role in &model.roles {
        if pkg.manifest().role(&role.definition.name).is_none() {
            return Err(FabricError::MissingRole {
                role: role.definition.name.value.clone(),
            });
        }
    }
    Ok((model, pkg.digest().to_owned()))
}

/// Copies the package to `<state>/packages/<digest>.cspkg` (once).
pub(crate) fn keep_package(
    state_dir: &Path,
    from: &Path,
    digest: &str,
) -> Result<std::path::PathBuf, FabricError> {
    let dir = state_dir.join("packages");
    let to = dir.join(format!("{digest}.cspkg"));
    if to.exists() {
        return Ok(to);
    }
    let io = |what, path: &Path| {
        let path = path.to_owned();
        move |source| FabricError::Io { what, path, source }
    };
    let tmp = dir.join(format!(".{digest}.{}.tmp", new_id()));
    std::fs::copy(from, &tmp).map_err(io("copy the package to", &tmp))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io("sync", &tmp))?;
    std::fs::rename(&tmp, &to).map_err(io("store the package at", &to))?;
    Ok(to)
}

pub async fn deploy<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    req: DeployRequest,
) -> Result<OperationId, FabricError> {
    check_service_name(&req.service)?;
    let occupied = |inner: &Inner<A>| -> Result<(), FabricError> {
        let state = inner.lock();
        if state.closed {
            return Err(FabricError::ShutDown);
        }
        if let Some(live) = state.deployments.get(&(req.service.clone(), req.slot)) {
            return Err(FabricError::SlotOccupied {
                service: req.service.clone(),
                slot: req.slot,
                deployment_id: live.record.id.clone(),
            });
        }
        // A swap in flight may be moving the staging deployment into this
        // (empty) production slot.
        if req.slot == Slot::Production
            && let Some(staging) = state.deployments.get(&(req.service.clone(), Slot::Staging))
            && let Some(op) = &staging.record.operation
            && state
                .operations
                .get(op)
                .is_some_and(|o| o.kind == OperationKind::SwapDeployment)
        {
            return Err(FabricError::Busy {
                deployment_id: staging.record.id.clone(),
                operation: op.clone(),
            });
        }
        Ok(())
    };
    occupied(inner)?;
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

    let deployment_id = new_id();
    let plan = spec::plan(
        &deployment_id,
        &model,
        &PackageRef {
            path: kept,
            digest: digest.clone(),
        },
        inner.config.fault_domain_count,
    );
    let plan_notes = plan.notes.clone();
    let op = OperationRecord {
        id: new_id(),
        kind: OperationKind::CreateDeployment,
        status: OperationStatus::InProgress,
        service: req.service.clone(),
        slot: req.slot,
        deployment_id: deployment_id.clone(),
        error: None,
        messages: plan.notes.clone(),
        started_ms: record::now_ms(),
        ended_ms: None,
        instances: Vec::new(),
    };
    let record = DeploymentRecord {
        id: deployment_id,
        service: req.service.clone(),
        slot: req.slot,
        label: if req.label.is_empty() {
            req.service.clone()
        } else {
            req.label.clone()
        },
        status: DeploymentStatus::Deploying,
        package_digest: digest,
        created_ms: op.started_ms,
        vip_ports: vec![None; plan.vips.len()],
        plan,
        operation: Some(op.id.clone()),
        notes: plan_notes,
        upgrade: None,
        configuration: Some(String::from_utf8_lossy(&req.configuration).into_owned()),
    };
    let key = record.key();
    let record_digest = record.package_digest.clone();
    // Admitted like every other operation: the last check, the write and
    // the insert in memory happen with no swap being accepted meanwhile
    // (a swap into the empty production slot checks the slot in memory).
    let admit = inner.admit.lock().await;
    occupied(inner)?;
    let done = inner.store.txn(
        vec![Compare::Absent(key.clone())],
        vec![
            Op::Put(key, record::encode(&record)),
            Op::Put(op.key(), record::encode(&op)),
        ],
    )?;
    if !done.succeeded {
        return Err(FabricError::SlotOccupied {
            service: req.service,
            slot: req.slot,
            deployment_id: "(being created)".to_owned(),
        });
    }
    {
        let mut state = inner.lock();
        let n = record.plan.vips.len();
        state.deployments.insert(
            (record.service.clone(), record.slot),
            Live {
                record,
                vips: vec![None; n],
                in_agent: false,
                driver: None,
                held: std::collections::BTreeMap::new(),
            },
        );
        state.operations.insert(op.id.clone(), op.clone());
    }
    drop(admit);
    let key = (op.service.clone(), op.slot);
    inner.record_event(
        &key,
        NewEvent::new(
            &op.deployment_id,
            EventKind::DeployStarted,
            format!("deployment of package {} started", short(&record_digest)),
        )
        .operation(&op.id),
    );
    tracing::info!(operation = %op.id, service = %op.service, slot = %op.slot, deployment = %op.deployment_id, "deployment accepted");
    spawn(
        inner,
        run_create(inner.clone(), (op.service.clone(), op.slot), op.id.clone()),
    );
    Ok(op.id)
}

pub async fn delete<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    service: &str,
    slot: Slot,
) -> Result<OperationId, FabricError> {
    let key: DeploymentKey = (service.to_owned(), slot);
    let _admit = inner.admit.lock().await;
    let mut record = {
        let state = inner.lock();
        if state.closed {
            return Err(FabricError::ShutDown);
        }
        let live = state
            .deployments
            .get(&key)
            .ok_or_else(|| FabricError::NoDeployment {
                service: service.to_owned(),
                slot,
            })?;
        if let Some(op) = &live.record.operation {
            return Err(FabricError::Busy {
                deployment_id: live.record.id.clone(),
                operation: op.clone(),
            });
        }
        live.record.clone()
    };
    let op = OperationRecord {
        id: new_id(),
        kind: OperationKind::DeleteDeployment,
        status: OperationStatus::InProgress,
        service: service.to_owned(),
        slot,
        deployment_id: record.id.clone(),
        error: None,
        messages: Vec::new(),
        started_ms: record::now_ms(),
        ended_ms: None,
        instances: Vec::new(),
    };
    record.status = DeploymentStatus::Deleting;
    record.operation = Some(op.id.clone());
    let event =
        NewEvent::new(&record.id, EventKind::DeleteStarted, "delete requested").operation(&op.id);
    inner.commit_with(Some(Ok(&record)), Some(&op), Some((&key, vec![event])))?;
    tracing::info!(operation = %op.id, service, %slot, deployment = %record.id, "deployment delete accepted");
    spawn(inner, run_delete(inner.clone(), key, op.id.clone()));
    Ok(op.id)
}

/// Continues every operation left in progress (called once by `open`).
pub fn resume<A: AgentApi>(inner: &Arc<Inner<A>>) {
    let in_progress: Vec<OperationRecord> = inner
        .lock()
        .operations
        .values()
        .filter(|o| o.status == OperationStatus::InProgress)
        .cloned()
        .collect();
    for op in in_progress {
        match op.kind {
            OperationKind::SwapDeployment => {
                tracing::info!(operation = %op.id, service = %op.service, "resuming swap");
                crate::swap::resume(inner, &op);
                continue;
            }
            OperationKind::UpdateDeploymentStatus => {
                tracing::info!(operation = %op.id, "resuming a deployment status change");
                crate::deployment_status::resume(inner, &op);
                continue;
            }
            OperationKind::RebootRoleInstance
            | OperationKind::ReimageRoleInstance
            | OperationKind::DeleteRoleInstances => {
                tracing::info!(operation = %op.id, kind = ?op.kind, "resuming instance operation");
                crate::instance_ops::resume(inner, &op);
                continue;
            }
            _ => {}
        }
        let key: DeploymentKey = (op.service.clone(), op.slot);
        let status = inner
            .lock()
            .deployments
            .get(&key)
            .filter(|l| l.record.id == op.deployment_id)
            .map(|l| l.record.status);
        if matches!(
            op.kind,
            OperationKind::UpgradeDeployment
                | OperationKind::WalkUpgradeDomain
                | OperationKind::RollbackUpdateOrUpgrade
        ) && status.is_some()
        {
            continue; // the upgrade driver resumes these
        }
        tracing::info!(operation = %op.id, kind = ?op.kind, deployment = %op.deployment_id, "resuming operation");
        match (op.kind, status) {
            (OperationKind::CreateDeployment, Some(DeploymentStatus::Deploying)) => {
                spawn(inner, run_create(inner.clone(), key, op.id.clone()));
            }
            (_, Some(DeploymentStatus::Deleting)) => {
                spawn(inner, run_delete(inner.clone(), key, op.id.clone()));
            }
            (_, status) => {
                // The deployment is already gone or running: the last step
                // committed, only the operation's end did not (cannot happen
                // with one-transaction steps, but never leave it hanging).
                let mut op = op.clone();
                op.ended_ms = Some(record::now_ms());
                op.status = match (op.kind, status) {
                    (OperationKind::CreateDeployment, Some(_))
                    | (OperationKind::DeleteDeployment, None) => OperationStatus::Succeeded,
                    _ => OperationStatus::Failed,
                };
                if let Err(e) = inner.commit(None, Some(&op)) {
                    tracing::error!(operation = %op.id, error = %e, "failed to close operation");
                }
            }
        }
    }
}

pub(crate) fn spawn<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    task: impl Future<Output = ()> + Send + 'static,
) {
    inner.spawn_tracked(tokio::spawn(task));
}

pub(crate) fn operation<A: AgentApi>(inner: &Inner<A>, id: &str) -> Option<OperationRecord> {
    inner.lock().operations.get(id).cloned()
}

pub(crate) fn deployment<A: AgentApi>(
    inner: &Inner<A>,
    key: &DeploymentKey,
) -> Option<DeploymentRecord> {
    inner.lock().deployments.get(key).map(|l| l.record.clone())
}

async fn run_create<A: AgentApi>(inner: Arc<Inner<A>>, key: DeploymentKey, op_id: String) {
    let outcome = create_steps(&inner, &key, &op_id).await;
    let Some(mut op) = operation(&inner, &op_id) else {
        return;
    };
    let Some(mut record) = deployment(&inner, &key) else {
        return;
    };
    match outcome {
        Ok(()) => {
            record.status = DeploymentStatus::Running;
            record.operation = None;
            op.status = OperationStatus::Succeeded;
            op.ended_ms = Some(record::now_ms());
            let event = NewEvent::new(
                &record.id,
                EventKind::DeploySucceeded,
                "every instance is ready",
            )
            .operation(&op_id);
            match inner.commit_with(Some(Ok(&record)), Some(&op), Some((&key, vec![event]))) {
                Ok(()) => {
                    tracing::info!(operation = %op_id, deployment = %record.id, "deployment running")
                }
                Err(e) => {
                    tracing::error!(operation = %op_id, error = %e, "failed to record success")
                }
            }
        }
        Err(_) if inner.lock().closed => {
            // Shut down mid-way: the operation stays in progress and the
            // next open resumes it.
        }
        Err(reason) => {
            tracing::warn!(operation = %op_id, deployment = %record.id, reason = %reason, "deployment failed; rolling back");
            record.status = DeploymentStatus::Deleting;
            let event = NewEvent::new(
                &record.id,
                EventKind::DeployFailed,
                format!("{reason}; removing the deployment"),
            )
            .operation(&op_id);
            op.error = Some(reason);
            if let Err(e) =
                inner.commit_with(Some(Ok(&record)), Some(&op), Some((&key, vec![event])))
            {
                tracing::error!(operation = %op_id, error = %e, "failed to record the rollback");
                return;
            }
            run_delete(inner, key, op_id).await;
        }
    }
}

/// Binds the VIPs, starts the instances and waits until every one is Ready;
/// `Err` carries the reason, in words.
async fn create_steps<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    key: &DeploymentKey,
    op_id: &str,
) -> Result<(), String> {
    let messages = inner.ensure_vips(key).await.map_err(|e| e.to_string())?;
    if !messages.is_empty()
        && let Some(mut op) = operation(inner, op_id)
    {
        op.messages.extend(messages);
        inner.commit(None, Some(&op)).map_err(|e| e.to_string())?;
    }
    if let Some(live) = inner.lock().deployments.get_mut(key) {
        live.in_agent = true;
    }
    inner.apply().await.map_err(|e| e.to_string())?;
    let started = operation(inner, op_id).map_or(0, |o| o.started_ms);
    let elapsed = Duration::from_millis(record::now_ms().saturating_sub(started));
    let remaining = inner.config.deploy_timeout.saturating_sub(elapsed);
    let mut rx = inner.generation.subscribe();
    let wait = async {
        loop {
            match progress(inner, key) {
                Progress::Ready => return Ok(()),
                Progress::Failed(reason) => return Err(reason),
                Progress::Waiting(_) => {}
            }
            if rx.changed().await.is_err() {
                return Err("the controller stopped".to_owned());
            }
        }
    };
    match tokio::time::timeout(remaining, wait).await {
        Ok(result) => result,
        Err(_) => Err(match progress(inner, key) {
            Progress::Waiting(what) => format!(
                "not every role instance was ready after {}s: {what}",
                inner.config.deploy_timeout.as_secs()
            ),
            _ => format!("timed out after {}s", inner.config.deploy_timeout.as_secs()),
        }),
    }
}

enum Progress {
    Ready,
    Failed(String),
    /// What is still not ready, in words.
    Waiting(String),
}

fn progress<A: AgentApi>(inner: &Inner<A>, key: &DeploymentKey) -> Progress {
    let state = inner.lock();
    let Some(live) = state.deployments.get(key) else {
        return Progress::Failed("the deployment disappeared".to_owned());
    };
    let mut waiting = Vec::new();
    for spec in live.instances() {
        let report = crate::controller::current_report(&state.reports, spec);
        match report {
            Some(r)
                if matches!(
                    r.status,
                    InstanceStatus::FailedStartingRole | InstanceStatus::CyclingRole
                ) =>
            {
                let why = r.message.as_deref().unwrap_or("no message");
                return Progress::Failed(format!(
                    "role instance {} is {:?}: {why}",
                    spec.instance_id, r.status
                ));
            }
            Some(r) if r.ready => {}
            Some(r) => waiting.push(format!("{} is {:?}", spec.instance_id, r.status)),
            None => waiting.push(format!("{} is not reported yet", spec.instance_id)),
        }
    }
    if waiting.is_empty() {
        Progress::Ready
    } else {
        Progress::Waiting(waiting.join(", "))
    }
}

/// Takes the deployment out of its VIPs, drains, stops its instances,
/// closes the VIPs and forgets it; ends operation `op_id` (a delete
/// succeeds; a rolled-back create fails with the reason it recorded).
async fn run_delete<A: AgentApi>(inner: Arc<Inner<A>>, key: DeploymentKey, op_id: String) {
    // Backends off at once (the record says Deleting), then drain.
    inner.sync_backends();
    let (vips, ids, deployment_id) = {
        let state = inner.lock();
        let Some(live) = state.deployments.get(&key) else {
            return;
        };
        (
            live.vips
                .iter()
                .flatten()
                .map(|v| v.vip.clone())
                .collect::<Vec<_>>(),
            live.instances()
                .map(|i| crate::vips::backend_id(&i.deployment_id, &i.instance_id))
                .collect::<Vec<_>>(),
            live.record.id.clone(),
        )
    };
    let mut drains = tokio::task::JoinSet::new();
    for vip in &vips {
        for id in &ids {
            let (vip, id, timeout) = (vip.clone(), id.clone(), inner.config.drain_timeout);
            drains.spawn(async move { (id.clone(), vip.drain(&id, timeout).await) });
        }
    }
    let mut messages = Vec::new();
    for (id, report) in drains.join_all().await {
        if report.cut > 0 {
            messages.push(format!(
                "{id}: {} connection(s) cut after the drain timeout",
                report.cut
            ));
        }
    }
    if let Some(live) = inner.lock().deployments.get_mut(&key) {
        live.in_agent = false;
    }
    if let Err(e) = inner.apply().await {
        tracing::error!(operation = %op_id, error = %e, "failed to stop the deployment's instances");
        if matches!(e, FabricError::ShutDown) {
            return;
        }
        messages.push(e.to_string());
    }
    // Wait (bounded) until the agent no longer has any of them.
    let mut rx = inner.generation.subscribe();
    let gone = async {
        loop {
            if !inner
                .lock()
                .reports
                .values()
                .any(|r| r.deployment_id == deployment_id)
            {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    if tokio::time::timeout(inner.config.deploy_timeout, gone)
        .await
        .is_err()
    {
        messages
            .push("some instances were still stopping when the deployment was removed".to_owned());
    }
    for vip in vips {
        vip.close().await;
    }
    let Some(mut op) = operation(&inner, &op_id) else {
        return;
    };
    op.messages.extend(messages);
    op.ended_ms = Some(record::now_ms());
    op.status = match op.kind {
        OperationKind::DeleteDeployment => OperationStatus::Succeeded,
        _ => OperationStatus::Failed,
    };
    let event =
        NewEvent::new(&deployment_id, EventKind::Deleted, "deployment removed").operation(&op_id);
    if let Err(e) = inner.commit_with(Some(Err(&key)), Some(&op), Some((&key, vec![event]))) {
        tracing::error!(operation = %op_id, error = %e, "failed to record the removal");
        return;
    }
    tracing::info!(operation = %op_id, deployment = %deployment_id, status = ?op.status, "deployment removed");
}

/// The first 12 digits of a digest, for messages.
pub(crate) fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
