//! Swap Deployment: the production and staging deployments of a service
//! exchange slots. The VIP addresses belong to the slots, not to the
//! deployments: production keeps its public ports and staging its own, and
//! each VIP's backend set switches at once to the deployment now in its
//! slot. Open connections finish on the deployment they reached (the load
//! balancer never touches an established connection on a set change).
//!
//! Accepting a swap commits the operation and marks both deployments busy;
//! the swap itself is one store transaction that exchanges the two records
//! (slot labels and slot-owned ports) and ends the operation, so a
//! controller killed in between finds the operation in progress and swaps
//! on `open`; one killed after it finds the swap done.

use std::collections::BTreeMap;
use std::sync::Arc;

use weft_agent::protocol::AgentApi;

use crate::controller::{DeploymentKey, Inner, Live};
use crate::events::{EventKind, NewEvent};
use crate::ops::{operation, short, spawn};
use crate::record::{self, DeploymentRecord, OperationRecord};
use crate::spec::{DeploymentPlan, VipPlan};
use crate::upgrade_ops::new_operation;
use crate::view::{DeploymentStatus, OperationKind, OperationStatus, SwapRequest};
use crate::vips::{self, LiveVip};
use crate::{FabricError, OperationId, Slot};

/// What identifies a VIP in a deployment: role, endpoint, and the instance
/// for an instance input endpoint.
type VipKey = (String, String, Option<String>);

fn vip_key(plan: &VipPlan) -> VipKey {
    (
        plan.role.clone(),
        plan.endpoint.clone(),
        plan.instance.clone(),
    )
}

fn describe_vip(plan: &VipPlan) -> String {
    match &plan.instance {
        Some(i) => format!(
            "instance input endpoint {}/{} of {i}",
            plan.role, plan.endpoint
        ),
        None => format!("input endpoint {}/{}", plan.role, plan.endpoint),
    }
}

/// How `p` (production) and `s` (staging), the same endpoint, differ, in
/// words; `None` when they do not.
fn difference(p: &VipPlan, s: &VipPlan) -> Option<String> {
    let minutes = |v: &VipPlan| {
        v.idle_timeout_minutes
            .map_or_else(|| "the default".to_owned(), |m| format!("{m} min"))
    };
    let affinity = |v: &VipPlan| {
        if v.source_ip_affinity {
            "source IP affinity"
        } else {
            "no affinity"
        }
    };
    if (&p.protocol, p.requested_port) != (&s.protocol, s.requested_port) {
        Some(format!(
            "is {} on port {} in production but {} on port {} in staging",
            p.protocol, p.requested_port, s.protocol, s.requested_port
        ))
    } else if p.idle_timeout_minutes != s.idle_timeout_minutes {
        Some(format!(
            "has an idle timeout of {} in production but {} in staging",
            minutes(p),
            minutes(s)
        ))
    } else if p.source_ip_affinity != s.source_ip_affinity {
        Some(format!(
            "has {} in production but {} in staging",
            affinity(p),
            affinity(s)
        ))
    } else {
        None
    }
}

/// Why two deployments cannot swap: their public endpoints differ (names,
/// protocols, ports), as Azure refuses. Empty when they can. Pure.
///
/// Idle timeouts and source-IP affinity must match too, which Azure does
/// not document: a swap here switches each slot-owned VIP's backend set in
/// place (so open connections stay), and a bound VIP's idle timeout and
/// distribution are fixed when it is bound (`weft_lb::VipConfig`). A
/// deployment swapped onto a VIP with other settings would silently run
/// with the other deployment's; refusing keeps what each csdef declares
/// true.
pub fn endpoint_differences(production: &DeploymentPlan, staging: &DeploymentPlan) -> Vec<String> {
    let prod: BTreeMap<VipKey, &VipPlan> =
        production.vips.iter().map(|v| (vip_key(v), v)).collect();
    let stage: BTreeMap<VipKey, &VipPlan> = staging.vips.iter().map(|v| (vip_key(v), v)).collect();
    let mut out = Vec::new();
    for (key, p) in &prod {
        match stage.get(key) {
            None => out.push(format!(
                "{} is in the production deployment only",
                describe_vip(p)
            )),
            Some(s) => out.extend(difference(p, s).map(|d| format!("{} {d}", describe_vip(p)))),
        }
    }
    for (key, s) in &stage {
        if !prod.contains_key(key) {
            out.push(format!(
                "{} is in the staging deployment only",
                describe_vip(s)
            ));
        }
    }
    out
}

/// Checks that the deployments the caller named are the ones in the slots
/// now (Azure answers 409 Conflict otherwise): a swap retried after the
/// first one went through would otherwise swap back.
fn check_request(
    service: &str,
    request: &SwapRequest,
    staging: &str,
    production: Option<&str>,
) -> Result<(), FabricError> {
    let mismatch = |reason: String| FabricError::SwapMismatch {
        service: service.to_owned(),
        reason,
    };
    if request.source_deployment != staging {
        return Err(mismatch(format!(
            "the source deployment is {} but deployment {staging} is in staging",
            request.source_deployment
        )));
    }
    match (request.production.as_deref(), production) {
        (Some(asked), Some(now)) if asked != now => Err(mismatch(format!(
            "the production deployment is {asked} but deployment {now} is in production"
        ))),
        (Some(asked), None) => Err(mismatch(format!(
            "the production deployment is {asked} but the production slot is empty"
        ))),
        (None, Some(now)) => Err(mismatch(format!(
            "the request names no production deployment but deployment {now} is in production"
        ))),
        _ => Ok(()),
    }
}

/// Checks that a deployment may take part in a swap.
fn check_idle(live: &Live) -> Result<(), FabricError> {
    let r = &live.record;
    crate::instance_ops::ensure_free(r, "finish or roll back the upgrade before swapping")?;
    if !matches!(
        r.status,
        DeploymentStatus::Running | DeploymentStatus::Suspended
    ) {
        return Err(FabricError::NotRunning {
            deployment_id: r.id.clone(),
            status: format!("{:?}", r.status),
            hint: "wait until it is Running (or Suspended) before swapping".to_owned(),
        });
    }
    Ok(())
}

/// Azure's Swap Deployment for `service`: checks now (refusals carry the
/// reason and change nothing), swaps asynchronously.
pub(crate) async fn swap<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    service: &str,
    request: &SwapRequest,
) -> Result<OperationId, FabricError> {
    let _admit = inner.admit.lock().await;
    let prod_key: DeploymentKey = (service.to_owned(), Slot::Production);
    let stage_key: DeploymentKey = (service.to_owned(), Slot::Staging);
    let (mut staging, production) = {
        let state = inner.lock();
        if state.closed {
            return Err(FabricError::ShutDown);
        }
        let staging =
            state
                .deployments
                .get(&stage_key)
                .ok_or_else(|| FabricError::NoDeployment {
                    service: service.to_owned(),
                    slot: Slot::Staging,
                })?;
        let production = state.deployments.get(&prod_key);
        check_request(
            service,
            request,
            &staging.record.id,
            production.map(|p| p.record.id.as_str()),
        )?;
        check_idle(staging)?;
        if let Some(p) = production {
            check_idle(p)?;
            let reasons = endpoint_differences(&p.record.plan, &staging.record.plan);
            if !reasons.is_empty() {
                return Err(FabricError::SwapRefused {
                    service: service.to_owned(),
                    reasons,
                });
            }
        }
        (staging.record.clone(), production.map(|p| p.record.clone()))
    };
    let mut op = new_operation(OperationKind::SwapDeployment, &staging);
    op.messages.push(match &production {
        Some(p) => format!(
            "deployment {} (staging) goes to production and deployment {} (production) to staging",
            staging.id, p.id
        ),
        None => format!(
            "the production slot is empty: deployment {} moves from staging to production",
            staging.id
        ),
    });
    staging.operation = Some(op.id.clone());
    let mut puts = vec![staging.clone()];
    let mut events = vec![(
        stage_key.clone(),
        vec![
            NewEvent::new(
                &staging.id,
                EventKind::SwapStarted,
                "swap requested: this deployment goes to production",
            )
            .operation(&op.id),
        ],
    )];
    if let Some(mut p) = production {
        p.operation = Some(op.id.clone());
        events.push((
            prod_key.clone(),
            vec![
                NewEvent::new(
                    &p.id,
                    EventKind::SwapStarted,
                    "swap requested: this deployment goes to staging",
                )
                .operation(&op.id),
            ],
        ));
        puts.push(p);
    }
    inner.commit_many(&puts.iter().collect::<Vec<_>>(), &[], Some(&op), events)?;
    {
        let mut state = inner.lock();
        for r in puts {
            if let Some(live) = state.deployments.get_mut(&(r.service.clone(), r.slot)) {
                live.record = r;
            }
        }
    }
    inner.generation.send_modify(|g| *g += 1);
    tracing::info!(operation = %op.id, service, "swap accepted");
    spawn(inner, run(inner.clone(), service.to_owned(), op.id.clone()));
    Ok(op.id)
}

/// Resumes a swap a killed controller accepted but did not commit.
pub(crate) fn resume<A: AgentApi>(inner: &Arc<Inner<A>>, op: &OperationRecord) {
    spawn(inner, run(inner.clone(), op.service.clone(), op.id.clone()));
}

async fn run<A: AgentApi>(inner: Arc<Inner<A>>, service: String, op_id: String) {
    if let Err(e) = swap_now(&inner, &service, &op_id).await {
        if inner.lock().closed {
            return; // resumed on the next open
        }
        tracing::error!(operation = %op_id, error = %e, "swap failed");
        let Some(mut op) = operation(&inner, &op_id) else {
            return;
        };
        op.status = OperationStatus::Failed;
        op.error = Some(e.to_string());
        op.ended_ms = Some(record::now_ms());
        let mut puts = Vec::new();
        let mut events = Vec::new();
        for slot in [Slot::Production, Slot::Staging] {
            let key = (service.clone(), slot);
            if let Some(mut r) = crate::ops::deployment(&inner, &key)
                && r.operation.as_deref() == Some(&op_id)
            {
                r.operation = None;
                events.push((
                    key,
                    vec![
                        NewEvent::new(
                            &r.id,
                            EventKind::SwapStarted,
                            format!("swap failed, nothing changed: {e}"),
                        )
                        .operation(&op_id),
                    ],
                ));
                puts.push(r);
            }
        }
        if let Err(e) = inner.commit_many(&puts.iter().collect::<Vec<_>>(), &[], Some(&op), events)
        {
            tracing::error!(operation = %op_id, error = %e, "failed to record the failed swap");
            return;
        }
        let mut state = inner.lock();
        for r in puts {
            if let Some(live) = state.deployments.get_mut(&(r.service.clone(), r.slot)) {
                live.record = r;
            }
        }
        drop(state);
        inner.generation.send_modify(|g| *g += 1);
    }
}

/// `vips` (parallel to `from`) reordered to follow `to` (same keys).
fn follow_order(
    from: &[VipPlan],
    vips: Vec<Option<LiveVip>>,
    ports: &[Option<u16>],
    to: &[VipPlan],
) -> (Vec<Option<LiveVip>>, Vec<Option<u16>>) {
    let mut by_key: BTreeMap<VipKey, (Option<LiveVip>, Option<u16>)> = from
        .iter()
        .zip(vips)
        .zip(ports.iter().copied().chain(std::iter::repeat(None)))
        .map(|((plan, vip), port)| (vip_key(plan), (vip, port)))
        .collect();
    to.iter()
        .map(|plan| by_key.remove(&vip_key(plan)).unwrap_or((None, None)))
        .unzip()
}

/// The swap proper: one transaction, then the in-memory exchange and the
/// backend switch.
async fn swap_now<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    service: &str,
    op_id: &str,
) -> Result<(), FabricError> {
    let prod_key: DeploymentKey = (service.to_owned(), Slot::Production);
    let stage_key: DeploymentKey = (service.to_owned(), Slot::Staging);
    let (staging, production) = {
        let state = inner.lock();
        let staging = state
            .deployments
            .get(&stage_key)
            .map(|l| l.record.clone())
            .ok_or_else(|| FabricError::NoDeployment {
                service: service.to_owned(),
                slot: Slot::Staging,
            })?;
        let production = state.deployments.get(&prod_key).map(|l| l.record.clone());
        (staging, production)
    };
    if staging.operation.as_deref() != Some(op_id) {
        return Err(FabricError::Internal {
            what: "swap",
            message: format!("the staging deployment is not held by operation {op_id}"),
        });
    }
    let Some(mut op) = operation(inner, op_id) else {
        return Ok(());
    };
    op.status = OperationStatus::Succeeded;
    op.ended_ms = Some(record::now_ms());
    match production {
        Some(production) => exchange(inner, op, staging, production),
        None => promote(inner, op, staging).await,
    }
}

/// Both slots hold a deployment: exchange them.
fn exchange<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    op: OperationRecord,
    staging: DeploymentRecord,
    production: DeploymentRecord,
) -> Result<(), FabricError> {
    let (service, op_id) = (op.service.clone(), op.id.clone());
    let prod_key: DeploymentKey = (service.clone(), Slot::Production);
    let stage_key: DeploymentKey = (service.clone(), Slot::Staging);
    // Slot-owned: the bound ports and what binding them said.
    let binding_notes = |r: &DeploymentRecord| -> Vec<String> {
        r.notes
            .iter()
            .filter(|n| !r.plan.notes.contains(n))
            .cloned()
            .collect()
    };
    let mut to_prod = staging.clone();
    to_prod.slot = Slot::Production;
    to_prod.operation = None;
    let (_, ports) = follow_order(
        &production.plan.vips,
        vec![None; production.plan.vips.len()],
        &production.vip_ports,
        &staging.plan.vips,
    );
    to_prod.vip_ports = ports;
    to_prod.notes = staging.plan.notes.clone();
    to_prod.notes.extend(binding_notes(&production));
    let mut to_stage = production.clone();
    to_stage.slot = Slot::Staging;
    to_stage.operation = None;
    let (_, ports) = follow_order(
        &staging.plan.vips,
        vec![None; staging.plan.vips.len()],
        &staging.vip_ports,
        &production.plan.vips,
    );
    to_stage.vip_ports = ports;
    to_stage.notes = production.plan.notes.clone();
    to_stage.notes.extend(binding_notes(&staging));
    let events = vec![
        (
            prod_key.clone(),
            vec![
                NewEvent::new(
                    &to_prod.id,
                    EventKind::Swapped,
                    format!(
                        "deployment {} (package {}) is now in production, on the production VIPs; deployment {} went to staging",
                        to_prod.id,
                        short(&to_prod.package_digest),
                        to_stage.id
                    ),
                )
                .operation(&op_id),
            ],
        ),
        (
            stage_key.clone(),
            vec![
                NewEvent::new(
                    &to_stage.id,
                    EventKind::Swapped,
                    format!(
                        "deployment {} (package {}) is now in staging, on the staging VIPs; deployment {} went to production",
                        to_stage.id,
                        short(&to_stage.package_digest),
                        to_prod.id
                    ),
                )
                .operation(&op_id),
            ],
        ),
    ];
    inner.commit_many(&[&to_prod, &to_stage], &[], Some(&op), events)?;
    {
        let mut state = inner.lock();
        let (Some(mut was_prod), Some(mut was_stage)) = (
            state.deployments.remove(&prod_key),
            state.deployments.remove(&stage_key),
        ) else {
            return Err(FabricError::Internal {
                what: "swap",
                message: "a deployment disappeared during the swap".to_owned(),
            });
        };
        let (prod_vips, _) = follow_order(
            &production.plan.vips,
            std::mem::take(&mut was_prod.vips),
            &production.vip_ports,
            &staging.plan.vips,
        );
        let (stage_vips, _) = follow_order(
            &staging.plan.vips,
            std::mem::take(&mut was_stage.vips),
            &staging.vip_ports,
            &production.plan.vips,
        );
        was_stage.record = to_prod;
        was_stage.vips = prod_vips;
        was_prod.record = to_stage;
        was_prod.vips = stage_vips;
        for live in [&was_stage, &was_prod] {
            set_access_control(live, &inner.config.vip.access_control);
        }
        state.deployments.insert(prod_key, was_stage);
        state.deployments.insert(stage_key, was_prod);
    }
    inner.sync_backends();
    inner.note_instances();
    inner.generation.send_modify(|g| *g += 1);
    tracing::info!(operation = %op_id, service, "deployments swapped");
    Ok(())
}

/// The VIPs a deployment took over apply its endpoint access control lists.
fn set_access_control(live: &Live, default: &weft_lb::AccessControl) {
    for (plan, vip) in live.record.plan.vips.iter().zip(&live.vips) {
        let Some(vip) = vip else { continue };
        let acl = crate::spec::access_for(&live.record.plan.access, &plan.role, &plan.endpoint);
        if acl.is_none() {
            vip.vip.set_access_control(default.clone());
            continue;
        }
        match vips::access_control(plan, acl) {
            Ok(control) => vip.vip.set_access_control(control),
            Err(e) => tracing::error!(error = %e, "invalid access control list after a swap"),
        }
    }
}

/// Only staging holds a deployment: it moves to production, on production
/// VIPs bound now; the staging VIPs close once their connections finished.
async fn promote<A: AgentApi>(
    inner: &Arc<Inner<A>>,
    op: OperationRecord,
    staging: DeploymentRecord,
) -> Result<(), FabricError> {
    let (service, op_id) = (op.service.clone(), op.id.clone());
    let prod_key: DeploymentKey = (service.clone(), Slot::Production);
    let stage_key: DeploymentKey = (service.clone(), Slot::Staging);
    if let Some(live) = inner.lock().deployments.get(&prod_key) {
        return Err(FabricError::SlotOccupied {
            service,
            slot: Slot::Production,
            deployment_id: live.record.id.clone(),
        });
    }
    let mut bound = Vec::new();
    let mut notes = staging.plan.notes.clone();
    for plan in &staging.plan.vips {
        let acl = crate::spec::access_for(&staging.plan.access, &plan.role, &plan.endpoint);
        let (vip, message) = vips::bind(
            inner.config.vip_host,
            plan,
            acl,
            Slot::Production,
            None,
            &inner.config.vip,
        )
        .await?;
        notes.extend(message);
        bound.push(vip);
    }
    let mut to_prod = staging.clone();
    to_prod.slot = Slot::Production;
    to_prod.operation = None;
    to_prod.vip_ports = bound.iter().map(|v| Some(v.local_addr().port())).collect();
    to_prod.notes = notes;
    let mut op = op;
    op.messages.extend(
        to_prod
            .notes
            .iter()
            .filter(|n| !staging.plan.notes.contains(n))
            .cloned(),
    );
    let events = vec![(
        prod_key.clone(),
        vec![
            NewEvent::new(
                &to_prod.id,
                EventKind::Swapped,
                format!(
                    "deployment {} (package {}) moved from staging to the empty production slot",
                    to_prod.id,
                    short(&to_prod.package_digest)
                ),
            )
            .operation(&op_id),
        ],
    )];
    if let Err(e) = inner.commit_many(
        &[&to_prod],
        std::slice::from_ref(&stage_key),
        Some(&op),
        events,
    ) {
        for vip in bound {
            vip.close().await;
        }
        return Err(e);
    }
    let old_vips: Vec<weft_lb::Vip> = {
        let mut state = inner.lock();
        let Some(mut live) = state.deployments.remove(&stage_key) else {
            return Err(FabricError::Internal {
                what: "swap",
                message: "the staging deployment disappeared during the swap".to_owned(),
            });
        };
        let old = std::mem::take(&mut live.vips)
            .into_iter()
            .flatten()
            .map(|v| v.vip)
            .collect();
        live.record = to_prod;
        live.vips = bound
            .into_iter()
            .map(|vip| {
                Some(LiveVip {
                    vip,
                    backends: Vec::new(),
                })
            })
            .collect();
        state.deployments.insert(prod_key, live);
        old
    };
    inner.sync_backends();
    inner.note_instances();
    inner.generation.send_modify(|g| *g += 1);
    tracing::info!(operation = %op_id, service, "staging deployment moved to production");
    let closing = async move {
        for vip in old_vips {
            vip.set_backends(Vec::new());
            vip.close().await;
        }
    };
    spawn(inner, closing);
    Ok(())
}
