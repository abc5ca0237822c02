//! Role instance operations: Reboot Role Instance, Reimage Role Instance and
//! Delete Role Instances, as asynchronous operations.
//!
//! Accepting one commits, in one store transaction, the operation, the
//! deployment held by it and the changed desired state (the bumped
//! incarnation, the bumped reimage count, the instances gone), so a
//! controller killed at any point finds the change decided and only
//! finishes it on `open`. Until the agent is told, the old specs are held
//! (`Live::held`): the instances leave their VIPs at the commit (their
//! reports no longer match), open connections finish, and only then does
//! the agent stop them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use weft_agent::protocol::{AgentApi, InstanceSpec, InstanceStatus};

use crate::controller::{DeploymentKey, Inner, current_report, landed};
use crate::drain::drain_first;
use crate::events::{EventKind, NewEvent};
use crate::ops::{deployment, operation, spawn};
use crate::record::{self, DeploymentRecord, OperationRecord};
use crate::upgrade_ops::new_operation;
use crate::view::{DeploymentStatus, OperationKind, OperationStatus};
use crate::{FabricError, OperationId, Slot};

/// Reboot or reimage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recycle {
    /// Reboot Role Instance: a new incarnation; local storage with
    /// `cleanOnRoleRecycle="false"` is kept.
    Reboot,
    /// Reimage Role Instance: a new incarnation and reimage count; all
    /// local storage is wiped and the approot unpacked afresh.
    Reimage,
}

/// The deployment `key` if an instance operation may start on it now.
pub(crate) fn idle_running<A: AgentApi>(
    inner: &Inner<A>,
    key: &DeploymentKey,
    doing: &str,
) -> Result<DeploymentRecord, FabricError> {
    let state = inner.lock();
    if state.closed {
        return Err(FabricError::ShutDown);
    }
    let live = state
        .deployments
        .get(key)
        .ok_or_else(|| FabricError::NoDeployment {
            service: key.0.clone(),
            slot: key.1,
        })?;
    let r = &live.record;
    ensure_free(r, "finish or roll back the upgrade first")?;
    if r.status != DeploymentStatus::Running {
        return Err(FabricError::NotRunning {
            deployment_id: r.id.clone(),
            status: format!("{:?}", r.status),
            hint: match r.status {
                DeploymentStatus::Suspended => {
                    format!("start it with `weft start` before you {doing}")
                }
                _ => format!("wait until it is Running before you {doing}"),
            },
        });
    }
    Ok(r.clone())
}

fn find<'a>(
    record: &'a mut DeploymentRecord,
    instance: &str,
) -> Result<&'a mut InstanceSpec, FabricError> {
    let (service, slot) = (record.service.clone(), record.slot);
    record
        .plan
        .roles
        .iter_mut()
        .flat_map(|r| r.instances.iter_mut())
        .find(|i| i.instance_id == instance)
        .ok_or_else(|| FabricError::NoInstance {
            instance: instance.to_owned(),
            service,
            slot,
        })
}

/// Commits an accepted instance operation: the changed record (held by
/// the operation), the operation and its event; the old specs of
/// `leaving` are held for the agent until they are drained.
fn accept<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    key: &DeploymentKey,
    mut record: DeploymentRecord,
    op: &OperationRecord,
    leaving: Vec<InstanceSpec>,
    message: String,
) -> Result<(), FabricError> {
    record.operation = Some(op.id.clone());
    if let Some(live) = inner.lock().deployments.get_mut(key) {
        live.held = leaving
            .into_iter()
            .map(|s| (s.instance_id.clone(), s))
            .collect();
    }
    let event =
        NewEvent::new(&record.id, EventKind::InstanceOperationStarted, message).operation(&op.id);
    let committed = inner.commit_with(Some(Ok(&record)), Some(op), Some((key, vec![event])));
    if committed.is_err()
        && let Some(live) = inner.lock().deployments.get_mut(key)
    {
        live.held.clear();
    }
    committed
}

/// Azure's Reboot Role Instance and Reimage Role Instance.
pub(crate) async fn recycle<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    service: &str,
    slot: Slot,
    instance: &str,
    how: Recycle,
) -> Result<OperationId, FabricError> {
    let key: DeploymentKey = (service.to_owned(), slot);
    let _admit = inner.admit.lock().await;
    let verb = match how {
        Recycle::Reboot => "reboot",
        Recycle::Reimage => "reimage",
    };
    let mut record = idle_running(inner, &key, &format!("{verb} an instance"))?;
    let spec = find(&mut record, instance)?;
    let old = spec.clone();
    spec.incarnation += 1;
    let message = match how {
        Recycle::Reboot => format!(
            "reboot of {instance} requested: incarnation {} (local storage with cleanOnRoleRecycle=\"false\" is kept)",
            spec.incarnation
        ),
        Recycle::Reimage => {
            spec.reimage += 1;
            format!(
                "reimage of {instance} requested: incarnation {}, a fresh approot and empty local storage",
                spec.incarnation
            )
        }
    };
    let kind = match how {
        Recycle::Reboot => OperationKind::RebootRoleInstance,
        Recycle::Reimage => OperationKind::ReimageRoleInstance,
    };
    let mut op = new_operation(kind, &record);
    op.messages.push(message.clone());
    op.instances = vec![instance.to_owned()];
    accept(inner, &key, record, &op, vec![old], message)?;
    tracing::info!(operation = %op.id, service, %slot, instance, how = verb, "instance operation accepted");
    spawn(inner, run(inner.clone(), key, op.id.clone()));
    Ok(op.id)
}

/// Azure's Delete Role Instances: the instances leave their VIPs, drain
/// and stop; the role's instance count drops. Refused when it would
/// delete every instance of a role.
pub(crate) async fn delete<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    service: &str,
    slot: Slot,
    instances: &[String],
) -> Result<OperationId, FabricError> {
    let key: DeploymentKey = (service.to_owned(), slot);
    let _admit = inner.admit.lock().await;
    let mut record = idle_running(inner, &key, "delete instances")?;
    let refuse = |reason: String| FabricError::DeleteInstancesRefused {
        deployment_id: record.id.clone(),
        reason,
    };
    if instances.is_empty() {
        return Err(refuse("no role instance named".to_owned()));
    }
    let mut leaving = Vec::new();
    for name in instances {
        if leaving
            .iter()
            .any(|s: &InstanceSpec| &s.instance_id == name)
        {
            return Err(refuse(format!("{name} is named twice")));
        }
        leaving.push(find(&mut record.clone(), name)?.clone());
    }
    for role in &record.plan.roles {
        let left = role
            .instances
            .iter()
            .filter(|i| !instances.contains(&i.instance_id))
            .count();
        if left == 0 {
            return Err(refuse(format!(
                "it would delete every instance of role {} ({}): a role keeps at least one; delete the deployment instead",
                role.name,
                role.instances
                    .iter()
                    .map(|i| i.instance_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut notes = Vec::new();
    for role in &mut record.plan.roles {
        let before = role.instances.len();
        role.instances
            .retain(|i| !instances.contains(&i.instance_id));
        if role.instances.len() == before {
            continue;
        }
        // The kept configuration says so, as Azure's does; text whose
        // count cannot be edited in place is kept as it was.
        let Some(text) = record.configuration.as_deref() else {
            continue;
        };
        match crate::configuration::with_instance_count(text, &role.name, role.instances.len()) {
            Some(edited) => record.configuration = Some(edited),
            None => notes.push(format!(
                "the kept configuration still gives role {} its old instance count: its Instances count is not written as a plain number, so it was not edited (the deployment runs {})",
                role.name,
                role.instances.len()
            )),
        }
    }
    let message = format!(
        "delete of {} requested: drained from the VIPs, then stopped and removed",
        instances.join(", ")
    );
    let mut op = new_operation(OperationKind::DeleteRoleInstances, &record);
    op.messages.push(message.clone());
    op.messages.extend(notes);
    op.instances = instances.to_vec();
    accept(inner, &key, record, &op, leaving, message)?;
    tracing::info!(operation = %op.id, service, %slot, instances = ?instances, "delete role instances accepted");
    spawn(inner, run(inner.clone(), key, op.id.clone()));
    Ok(op.id)
}

/// Resumes an instance operation a killed controller left in progress:
/// the change is in the record, the agent got it on `open`; what is left
/// is to wait for it and end the operation.
pub(crate) fn resume<A: AgentApi>(inner: &Arc<Inner<A>>, op: &OperationRecord) {
    let key = (op.service.clone(), op.slot);
    spawn(inner, run(inner.clone(), key, op.id.clone()));
}

/// Drains the held instances, hands the new desired state to the agent and
/// waits for it; ends the operation.
async fn run<A: AgentApi>(inner: Arc<Inner<A>>, key: DeploymentKey, op_id: String) {
    let named = operation(&inner, &op_id)
        .map(|op| op.instances)
        .unwrap_or_default();
    let outcome = finish(&inner, &key, &named).await;
    if let Some(live) = inner.lock().deployments.get_mut(&key) {
        live.held.clear();
    }
    if inner.lock().closed {
        return; // resumed on the next open
    }
    let Some(mut record) = deployment(&inner, &key) else {
        fail_orphan(&inner, &op_id);
        return;
    };
    let Some(mut op) = operation(&inner, &op_id) else {
        return;
    };
    // The deleted instances' own VIPs (instance input endpoints) go with
    // them, now that their connections are drained.
    let closing = forget_instance_vips(&inner, &key, &mut record);
    let what = describe(op.kind);
    end_operation(
        &inner,
        &key,
        &mut record,
        &mut op,
        outcome,
        (
            EventKind::InstanceOperationCompleted,
            format!("{what} done"),
        ),
        (EventKind::InstanceOperationFailed, &|reason| {
            format!("{what} failed: {reason}")
        }),
    );
    for vip in closing {
        vip.vip.close().await;
    }
}

/// Takes the VIPs of instance input endpoints whose instance the plan no
/// longer has out of `record` and, in the same step, out of the live
/// deployment (whose VIPs stay parallel to its record's), for the caller to
/// commit and close. A controller killed before the commit binds them again
/// on `open` and the resumed operation takes them out then.
fn forget_instance_vips<A: AgentApi>(
    inner: &Inner<A>,
    key: &DeploymentKey,
    record: &mut DeploymentRecord,
) -> Vec<crate::vips::LiveVip> {
    let gone: Vec<usize> = record
        .plan
        .vips
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            v.instance
                .as_ref()
                .is_some_and(|name| !crate::spec::instance_ids(&record.plan).any(|i| i == name))
        })
        .map(|(n, _)| n)
        .collect();
    if gone.is_empty() {
        return Vec::new();
    }
    let mut state = inner.lock();
    let Some(live) = state.deployments.get_mut(key) else {
        return Vec::new();
    };
    let mut closing = Vec::new();
    for &n in gone.iter().rev() {
        record.plan.vips.remove(n);
        if n < record.vip_ports.len() {
            record.vip_ports.remove(n);
        }
        if n < live.vips.len()
            && let Some(vip) = live.vips.remove(n)
        {
            closing.push(vip);
        }
    }
    live.record.plan.vips = record.plan.vips.clone();
    live.record.vip_ports = record.vip_ports.clone();
    closing
}

/// Ends operation `op` on `record` with `outcome` in one commit: the
/// deployment no longer held by it, the operation succeeded (its messages
/// added) or failed (its error), and the event saying so (`ok`, or
/// `failed`'s message for the reason).
pub(crate) fn end_operation<A: AgentApi>(
    inner: &Inner<A>,
    key: &DeploymentKey,
    record: &mut DeploymentRecord,
    op: &mut OperationRecord,
    outcome: Result<Vec<String>, String>,
    ok: (EventKind, String),
    failed: (EventKind, &dyn Fn(&str) -> String),
) {
    if record.operation.as_deref() == Some(op.id.as_str()) {
        record.operation = None;
    }
    op.ended_ms = Some(record::now_ms());
    let event = match outcome {
        Ok(messages) => {
            op.status = OperationStatus::Succeeded;
            op.messages.extend(messages);
            NewEvent::new(&record.id, ok.0, ok.1)
        }
        Err(reason) => {
            op.status = OperationStatus::Failed;
            let message = (failed.1)(&reason);
            op.error = Some(reason);
            NewEvent::new(&record.id, failed.0, message)
        }
    }
    .operation(&op.id);
    if let Err(e) = inner.commit_with(Some(Ok(record)), Some(op), Some((key, vec![event]))) {
        tracing::error!(operation = %op.id, error = %e, "failed to end the operation");
    }
}

/// Ends operation `op_id`, whose deployment is gone, as failed.
pub(crate) fn fail_orphan<A: AgentApi>(inner: &Inner<A>, op_id: &str) {
    let Some(mut op) = operation(inner, op_id) else {
        return;
    };
    if op.status != OperationStatus::InProgress {
        return;
    }
    op.status = OperationStatus::Failed;
    op.error = Some("the deployment is gone".to_owned());
    op.ended_ms = Some(record::now_ms());
    if let Err(e) = inner.commit(None, Some(&op)) {
        tracing::error!(operation = %op_id, error = %e, "failed to end an orphaned operation");
    }
}

fn describe(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::RebootRoleInstance => "reboot",
        OperationKind::ReimageRoleInstance => "reimage",
        _ => "delete of role instances",
    }
}

/// `named`: the instances the operation works on (empty in an operation
/// recorded before they were kept: then every instance).
async fn finish<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    key: &DeploymentKey,
    named: &[String],
) -> Result<Vec<String>, String> {
    let (deployment_id, held, kept): (String, Vec<String>, BTreeMap<String, InstanceSpec>) = {
        let state = inner.lock();
        let Some(live) = state.deployments.get(key) else {
            return Err("the deployment disappeared".to_owned());
        };
        (
            live.record.id.clone(),
            live.held.keys().cloned().collect(),
            live.instances()
                .map(|i| (i.instance_id.clone(), i.clone()))
                .collect(),
        )
    };
    let leaving: Vec<(String, String)> = held
        .iter()
        .map(|i| (deployment_id.clone(), i.clone()))
        .collect();
    let drains = drain_first(inner, key, &leaving).await;
    if let Some(live) = inner.lock().deployments.get_mut(key) {
        live.held.clear();
    }
    inner.apply().await.map_err(|e| e.to_string())?;
    // Recycled instances must come back with their new spec; deleted ones
    // must be gone from the agent. (Resumed after a restart nothing is
    // held: the operation's own record names them.)
    let affected: Vec<String> = if !held.is_empty() {
        held.clone()
    } else if !named.is_empty() {
        named.to_vec()
    } else {
        kept.keys().cloned().collect()
    };
    let recycled: Vec<InstanceSpec> = affected
        .iter()
        .filter_map(|i| kept.get(i))
        .cloned()
        .collect();
    let removed: Vec<String> = affected
        .iter()
        .filter(|i| !kept.contains_key(*i))
        .cloned()
        .collect();
    let wait = wait_until(inner, inner.config.deploy_timeout, |state| {
        if let Some(waiting) = all_landed(&state.reports, &recycled)? {
            return Ok(Some(waiting));
        }
        for id in &removed {
            if state
                .reports
                .contains_key(&(deployment_id.clone(), id.clone()))
            {
                return Ok(Some(format!("{id} is still stopping")));
            }
        }
        Ok(None)
    });
    let (result, messages) = tokio::join!(wait, drains.finish());
    result.map(|()| messages)
}

/// Waits until `check` (over the controller's state) says nothing is left
/// (`Ok(None)`), fails (`Err`), or `timeout` passes (an error naming what
/// was still waited for).
/// Refuses an operation on `r` while an upgrade or another operation
/// holds it (`hint`: what to do about the upgrade). One wording for every
/// admission (swap, instance operations, status changes).
pub(crate) fn ensure_free(r: &DeploymentRecord, hint: &'static str) -> Result<(), FabricError> {
    if let Some(up) = &r.upgrade {
        return Err(FabricError::UpgradeInProgress {
            deployment_id: r.id.clone(),
            operation: up.operation.clone(),
            state: if up.failed.is_some() {
                "stopped by a failed health gate".to_owned()
            } else {
                format!("{} mode", up.mode)
            },
            hint,
        });
    }
    if let Some(op) = &r.operation {
        return Err(FabricError::Busy {
            deployment_id: r.id.clone(),
            operation: op.clone(),
        });
    }
    Ok(())
}

/// For [`wait_until`]: `None` once every spec runs its spec (`landed`), what
/// is still awaited otherwise; an instance that failed to start or cycles
/// is an error.
pub(crate) fn all_landed(
    reports: &crate::controller::Reports,
    specs: &[InstanceSpec],
) -> Result<Option<String>, String> {
    for spec in specs {
        match current_report(reports, spec) {
            Some(r) if landed(r, spec) => {}
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
            Some(r) => return Ok(Some(format!("{} is {:?}", spec.instance_id, r.status))),
            None => return Ok(Some(format!("{} is not reported yet", spec.instance_id))),
        }
    }
    Ok(None)
}

pub(crate) async fn wait_until<A: AgentApi>(
    inner: &Inner<A>,
    timeout: Duration,
    check: impl Fn(&crate::controller::State) -> Result<Option<String>, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut rx = inner.generation.subscribe();
    loop {
        let waiting = {
            let state = inner.lock();
            if state.closed {
                return Err("the controller stopped".to_owned());
            }
            check(&state)?
        };
        let Some(what) = waiting else {
            return Ok(());
        };
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err("the controller stopped".to_owned()),
            Err(_) => {
                return Err(format!("not done after {}s: {what}", timeout.as_secs()));
            }
        }
    }
}
