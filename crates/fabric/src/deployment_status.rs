//! Update Deployment Status: suspend a running deployment (every instance
//! leaves its VIPs, drains and stops — `StoppedVM` — keeping its local
//! storage) and start a suspended one again (the operation succeeds when
//! every instance is Ready).
//!
//! Accepting commits the transitional status (`Suspending` / `Starting`)
//! with the operation; a start also clears every instance's `stopped` in
//! the same transaction, a suspend sets it once the instances are drained.
//! A controller killed at any point finds the transitional status and the
//! operation in progress and finishes on `open`.

use std::sync::Arc;

use weft_agent::protocol::{AgentApi, InstanceStatus};

use crate::controller::{DeploymentKey, Inner, report_for};
use crate::drain::drain_first;
use crate::events::{EventKind, NewEvent};
use crate::instance_ops::{all_landed, end_operation, ensure_free, wait_until};
use crate::ops::{deployment, operation, spawn};
use crate::record::OperationRecord;
use crate::upgrade_ops::new_operation;
use crate::view::{DeploymentStatus, OperationKind, OperationStatus};
use crate::{FabricError, OperationId, Slot};

/// Azure's Update Deployment Status to `target` (`Suspended` or
/// `Running`).
pub(crate) async fn update<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    service: &str,
    slot: Slot,
    target: DeploymentStatus,
) -> Result<OperationId, FabricError> {
    let key: DeploymentKey = (service.to_owned(), slot);
    let _admit = inner.admit.lock().await;
    let mut record = {
        let state = inner.lock();
        if state.closed {
            return Err(FabricError::ShutDown);
        }
        state
            .deployments
            .get(&key)
            .ok_or_else(|| FabricError::NoDeployment {
                service: service.to_owned(),
                slot,
            })?
            .record
            .clone()
    };
    ensure_free(
        &record,
        "finish or roll back the upgrade before changing the deployment's status",
    )?;
    let not = |hint: &str| FabricError::NotRunning {
        deployment_id: record.id.clone(),
        status: format!("{:?}", record.status),
        hint: hint.to_owned(),
    };
    let (transition, message) = match (target, record.status) {
        (DeploymentStatus::Suspended, DeploymentStatus::Running) => (
            DeploymentStatus::Suspending,
            "suspend requested: every instance leaves its VIPs, drains and stops (local storage kept)",
        ),
        // Azure documents no refusal for the status a deployment already
        // has: an operation that succeeds at once, changing nothing.
        (DeploymentStatus::Suspended, DeploymentStatus::Suspended)
        | (DeploymentStatus::Running, DeploymentStatus::Running) => {
            let mut op = new_operation(OperationKind::UpdateDeploymentStatus, &record);
            op.status = OperationStatus::Succeeded;
            op.ended_ms = Some(op.started_ms);
            op.messages.push(format!(
                "the deployment is {:?} already: nothing to do",
                record.status
            ));
            inner.commit(None, Some(&op))?;
            tracing::info!(operation = %op.id, service, %slot, status = ?target, "deployment status already as asked");
            return Ok(op.id);
        }
        (DeploymentStatus::Running, DeploymentStatus::Suspended) => (
            DeploymentStatus::Starting,
            "start requested: every instance starts again",
        ),
        (DeploymentStatus::Suspended | DeploymentStatus::Running, _) => {
            return Err(not("wait until it is Running or Suspended"));
        }
        (other, _) => {
            return Err(FabricError::BadStatus {
                status: format!("{other:?}"),
            });
        }
    };
    let mut op = new_operation(OperationKind::UpdateDeploymentStatus, &record);
    op.messages.push(message.to_owned());
    record.status = transition;
    record.operation = Some(op.id.clone());
    if transition == DeploymentStatus::Starting {
        for role in &mut record.plan.roles {
            for spec in &mut role.instances {
                spec.stopped = false;
            }
        }
    }
    let event =
        NewEvent::new(&record.id, EventKind::StatusChangeStarted, message).operation(&op.id);
    inner.commit_with(Some(Ok(&record)), Some(&op), Some((&key, vec![event])))?;
    tracing::info!(operation = %op.id, service, %slot, status = ?target, "deployment status change accepted");
    spawn(inner, run(inner.clone(), key, op.id.clone()));
    Ok(op.id)
}

/// Resumes a status change a killed controller left in progress.
pub(crate) fn resume<A: AgentApi>(inner: &Arc<Inner<A>>, op: &OperationRecord) {
    let key = (op.service.clone(), op.slot);
    spawn(inner, run(inner.clone(), key, op.id.clone()));
}

async fn run<A: AgentApi>(inner: Arc<Inner<A>>, key: DeploymentKey, op_id: String) {
    let Some(record) = deployment(&inner, &key) else {
        crate::instance_ops::fail_orphan(&inner, &op_id);
        return;
    };
    let (outcome, done) = match record.status {
        DeploymentStatus::Suspending => match suspend(&inner, &key).await {
            Ok(messages) => (Ok(messages), DeploymentStatus::Suspended),
            Err(Suspend::Decided(reason)) => (Err(reason), DeploymentStatus::Suspended),
            // Nothing was stopped: the deployment runs on, back on its VIPs.
            Err(Suspend::NotDecided(reason)) => (Err(reason), DeploymentStatus::Running),
        },
        DeploymentStatus::Starting => (start(&inner, &key).await, DeploymentStatus::Running),
        other => (
            Err(format!("the deployment is {other:?}, not changing status")),
            other,
        ),
    };
    if inner.lock().closed {
        return; // resumed on the next open
    }
    let Some(mut record) = deployment(&inner, &key) else {
        return;
    };
    let Some(mut op) = operation(&inner, &op_id) else {
        return;
    };
    record.status = done;
    end_operation(
        &inner,
        &key,
        &mut record,
        &mut op,
        outcome,
        (
            EventKind::StatusChanged,
            format!("the deployment is {done:?}"),
        ),
        (EventKind::StatusChangeFailed, &|reason| {
            format!("the deployment is {done:?}, but: {reason}")
        }),
    );
}

/// Why a suspend failed.
enum Suspend {
    /// Before the instances were marked stopped: nothing was stopped.
    NotDecided(String),
    /// After: the instances are stopping (or stopped) for good.
    Decided(String),
}

/// Drains every instance (the record says Suspending: the VIPs already
/// have no backend), marks them stopped, and waits until the agent
/// reports each one `StoppedVM`.
async fn suspend<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    key: &DeploymentKey,
) -> Result<Vec<String>, Suspend> {
    let Some(mut record) = deployment(inner, key) else {
        return Err(Suspend::NotDecided("the deployment disappeared".to_owned()));
    };
    let leaving: Vec<(String, String)> = record
        .plan
        .roles
        .iter()
        .flat_map(|r| r.instances.iter())
        .map(|i| (i.deployment_id.clone(), i.instance_id.clone()))
        .collect();
    let drains = drain_first(inner, key, &leaving).await;
    for role in &mut record.plan.roles {
        for spec in &mut role.instances {
            spec.stopped = true;
        }
    }
    if let Err(e) = inner.commit(Some(Ok(&record)), None) {
        drop(drains); // the instances go back on the VIPs
        return Err(Suspend::NotDecided(format!(
            "failed to record the instances as stopped: {e}"
        )));
    }
    inner
        .apply()
        .await
        .map_err(|e| Suspend::Decided(e.to_string()))?;
    let specs: Vec<_> = record
        .plan
        .roles
        .iter()
        .flat_map(|r| r.instances.iter().cloned())
        .collect();
    let stopped = wait_until(inner, inner.config.deploy_timeout, |state| {
        for spec in &specs {
            match report_for(&state.reports, spec) {
                Some(r) if r.status == InstanceStatus::StoppedVM && r.pid.is_none() => {}
                Some(r) => return Ok(Some(format!("{} is {:?}", spec.instance_id, r.status))),
                None => return Ok(Some(format!("{} is not reported", spec.instance_id))),
            }
        }
        Ok(None)
    });
    let (stopped, messages) = tokio::join!(stopped, drains.finish());
    stopped.map(|()| messages).map_err(Suspend::Decided)
}

/// Hands the started specs to the agent and waits until every instance is
/// Ready.
async fn start<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    key: &DeploymentKey,
) -> Result<Vec<String>, String> {
    inner.apply().await.map_err(|e| e.to_string())?;
    let specs: Vec<_> = deployment(inner, key)
        .map(|r| {
            r.plan
                .roles
                .iter()
                .flat_map(|r| r.instances.iter().cloned())
                .collect()
        })
        .unwrap_or_default();
    wait_until(inner, inner.config.deploy_timeout, |state| {
        all_landed(&state.reports, &specs)
    })
    .await
    .map(|()| Vec::new())
}
