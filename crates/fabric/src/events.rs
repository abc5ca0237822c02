//! The event history of each deployment: what the fabric did and why
//! (deploy started, an instance Ready or not, an upgrade domain walked, a
//! health gate failed…). Persisted in the store with the step that caused
//! it, numbered store-wide, and bounded: the oldest go past
//! [`MAX_EVENTS_PER_DEPLOYMENT`]. The history belongs to the deployment
//! (keyed by its id, as Azure's): a swap moves it with the deployment, and
//! each event says the slot it happened in. A deleted deployment's history
//! is kept while its slot stays empty, and goes once another deployment
//! takes the slot.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::Slot;

/// Events kept per deployment.
pub const MAX_EVENTS_PER_DEPLOYMENT: usize = 2000;

pub const EVENTS: &str = "/weft/events/";

/// One thing the fabric did or saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Increases with every event of the fabric.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// RFC 3339, UTC.
    pub time: String,
    pub service: String,
    pub slot: Slot,
    pub deployment_id: String,
    pub kind: EventKind,
    pub upgrade_domain: Option<u32>,
    pub instance: Option<String>,
    /// Whether the instance is Ready (in its VIPs), for instance events.
    pub ready: Option<bool>,
    /// The operation that caused it.
    pub operation: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    DeployStarted,
    DeploySucceeded,
    DeployFailed,
    DeleteStarted,
    Deleted,
    /// An instance became Ready, or stopped being Ready, or changed status.
    InstanceStatus,
    UpgradeStarted,
    /// A step's instances are taken out of their VIPs and given the new spec.
    DomainWalking,
    DomainDrained,
    DomainHealthy,
    HealthGateFailed,
    /// Manual mode: waiting for Walk Upgrade Domain.
    WaitingForWalk,
    UpgradeCompleted,
    UpgradeFailed,
    RollbackStarted,
    DomainRestored,
    RollbackCompleted,
    /// Swap Deployment accepted.
    SwapStarted,
    /// The slot now holds another deployment (it took over the slot's VIPs).
    Swapped,
    /// Reboot, Reimage or Delete Role Instances accepted.
    InstanceOperationStarted,
    InstanceOperationCompleted,
    InstanceOperationFailed,
    /// Update Deployment Status (suspend or start) accepted.
    StatusChangeStarted,
    /// The deployment is Suspended, or Running again.
    StatusChanged,
    StatusChangeFailed,
}

pub(crate) fn key(service: &str, slot: Slot, seq: u64) -> String {
    format!("{EVENTS}{service}/{slot}/{seq:020}")
}

/// The parts of an event its emitter chooses; the controller numbers and
/// stamps it.
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub deployment_id: String,
    pub kind: Option<EventKind>,
    pub upgrade_domain: Option<u32>,
    pub instance: Option<String>,
    pub ready: Option<bool>,
    pub operation: Option<String>,
    pub message: String,
}

impl NewEvent {
    pub fn new(deployment_id: &str, kind: EventKind, message: impl Into<String>) -> NewEvent {
        NewEvent {
            deployment_id: deployment_id.to_owned(),
            kind: Some(kind),
            message: message.into(),
            ..NewEvent::default()
        }
    }

    pub fn domain(mut self, ud: u32) -> NewEvent {
        self.upgrade_domain = Some(ud);
        self
    }

    pub fn operation(mut self, id: &str) -> NewEvent {
        self.operation = Some(id.to_owned());
        self
    }
}

use weft_agent::protocol::{AgentApi, InstanceStatus};
use weft_store::{Op, StateStore};

use crate::FabricError;
use crate::controller::{DeploymentKey, Inner, State};
use crate::record;

/// Loads every deployment's history (called by `open`).
pub(crate) fn load(store: &dyn StateStore, state: &mut State) -> Result<(), FabricError> {
    let events: Vec<Event> = record::load_all(store, EVENTS)?;
    for e in events {
        state.next_seq = state.next_seq.max(e.seq + 1);
        state
            .events
            .entry(e.deployment_id.clone())
            .or_default()
            .push_back(e);
    }
    for q in state.events.values_mut() {
        q.make_contiguous().sort_by_key(|e| e.seq);
    }
    Ok(())
}

/// Keeps committed events in memory, each with its deployment's history,
/// oldest dropped past the bound.
pub(crate) fn remember(state: &mut State, events: Vec<Event>) {
    for e in events {
        let q = state.events.entry(e.deployment_id.clone()).or_default();
        q.push_back(e);
        while q.len() > MAX_EVENTS_PER_DEPLOYMENT {
            q.pop_front();
        }
    }
}

/// The history `weft events SERVICE --slot SLOT` shows: the deployment's
/// now in the slot; for an empty slot, the last one there (gone).
pub(crate) fn history_of_slot<'a>(
    state: &'a State,
    service: &str,
    slot: Slot,
) -> Option<&'a VecDeque<Event>> {
    match state.deployments.get(&(service.to_owned(), slot)) {
        Some(live) => state.events.get(&live.record.id),
        None => last_gone(state, service, slot).and_then(|id| state.events.get(id)),
    }
}

/// The deployment no longer in the fabric whose history ends last in
/// `slot` of `service`.
fn last_gone<'a>(state: &'a State, service: &str, slot: Slot) -> Option<&'a str> {
    state
        .events
        .iter()
        .filter(|(id, _)| !live(state, id))
        .filter_map(|(id, q)| q.back().map(|e| (id, e)))
        .filter(|(_, e)| e.service == service && e.slot == slot)
        .max_by_key(|(_, e)| e.seq)
        .map(|(id, _)| id.as_str())
}

fn live(state: &State, deployment_id: &str) -> bool {
    state
        .deployments
        .values()
        .any(|l| l.record.id == deployment_id)
}

/// Histories of deployments that are gone and that no slot shows any more
/// (another deployment took the slot, or a later one left it).
fn retired(state: &State) -> Vec<String> {
    state
        .events
        .iter()
        .filter(|(id, _)| !live(state, id))
        .filter(|(id, q)| {
            q.back().is_none_or(|e| {
                state.deployments.contains_key(&(e.service.clone(), e.slot))
                    || last_gone(state, &e.service, e.slot) != Some(id.as_str())
            })
        })
        .map(|(id, _)| id.clone())
        .collect()
}

impl<A: AgentApi> Inner<A> {
    /// Numbers and stamps `new` events of slot `key`, adding their puts
    /// (and the deletes that keep the history bounded) to `ops`.
    pub(crate) fn stamp_events(
        &self,
        key: &DeploymentKey,
        new: Vec<NewEvent>,
        ops: &mut Vec<Op>,
    ) -> (DeploymentKey, Vec<Event>) {
        let now = record::now_ms();
        let mut state = self.lock();
        let mut out = Vec::with_capacity(new.len());
        for n in new {
            let seq = state.next_seq;
            state.next_seq += 1;
            let e = Event {
                seq,
                time_ms: now,
                time: record::rfc3339(now),
                service: key.0.clone(),
                slot: key.1,
                deployment_id: n.deployment_id,
                kind: n.kind.unwrap_or(EventKind::InstanceStatus),
                upgrade_domain: n.upgrade_domain,
                instance: n.instance,
                ready: n.ready,
                operation: n.operation,
                message: n.message,
            };
            ops.push(Op::Put(self::key(&key.0, key.1, seq), record::encode(&e)));
            out.push(e);
        }
        let mut ids: Vec<&str> = out.iter().map(|e| e.deployment_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let adding = out.iter().filter(|e| e.deployment_id == id).count();
            if let Some(q) = state.events.get(id) {
                let over = (q.len() + adding).saturating_sub(MAX_EVENTS_PER_DEPLOYMENT);
                for old in q.iter().take(over) {
                    ops.push(Op::Delete(self::key(&old.service, old.slot, old.seq)));
                }
            }
        }
        // Histories nothing shows any more go with this step (from memory
        // now: a failed step leaves them in the store, read at `open`).
        for id in retired(&state) {
            if let Some(q) = state.events.remove(&id) {
                ops.extend(
                    q.iter()
                        .map(|old| Op::Delete(self::key(&old.service, old.slot, old.seq))),
                );
            }
        }
        (key.clone(), out)
    }

    /// Records one event of slot `key` on its own.
    pub(crate) fn record_event(&self, key: &DeploymentKey, event: NewEvent) {
        if let Err(e) = self.commit_with(None, None, Some((key, vec![event]))) {
            tracing::warn!(error = %e, "failed to record an event");
        }
    }

    /// Records every instance whose readiness or status changed since last
    /// seen (Ready means: in its VIPs).
    pub(crate) fn note_instances(&self) {
        let mut changes: Vec<(DeploymentKey, NewEvent)> = Vec::new();
        {
            let mut guard = self.lock();
            let state = &mut *guard;
            for (key, live) in &state.deployments {
                for spec in live.instances() {
                    let report = crate::controller::current_report(&state.reports, spec);
                    let status = report.map_or(InstanceStatus::RoleStateUnknown, |r| r.status);
                    let ready = report.is_some_and(|r| r.ready);
                    let id = (spec.deployment_id.clone(), spec.instance_id.clone());
                    let now = (spec.incarnation, ready, status, spec.update_domain);
                    let before = state.seen.get(&id);
                    let unchanged = match before {
                        Some((_, r, s, _)) => *r == ready && *s == status,
                        None => !ready && status == InstanceStatus::RoleStateUnknown,
                    };
                    if unchanged {
                        if before.is_some_and(|b| b.0 != spec.incarnation) {
                            state.seen.insert(id, now);
                        }
                        continue;
                    }
                    let mut message = format!(
                        "{} (incarnation {}) is {status:?}{}",
                        spec.instance_id,
                        spec.incarnation,
                        if ready { ", ready" } else { ", not ready" }
                    );
                    if let Some(m) = report.and_then(|r| r.message.as_deref())
                        && !ready
                    {
                        message.push_str(": ");
                        message.push_str(m);
                    }
                    state.seen.insert(id, now);
                    changes.push((
                        key.clone(),
                        NewEvent {
                            deployment_id: spec.deployment_id.clone(),
                            kind: Some(EventKind::InstanceStatus),
                            upgrade_domain: Some(spec.update_domain),
                            instance: Some(spec.instance_id.clone()),
                            ready: Some(ready),
                            operation: None,
                            message,
                        },
                    ));
                }
            }
            // Instances no longer in any deployment (scaled in, deleted).
            let current: std::collections::BTreeSet<(&str, &str)> = state
                .deployments
                .values()
                .flat_map(|l| {
                    l.instances()
                        .map(|i| (i.deployment_id.as_str(), i.instance_id.as_str()))
                })
                .collect();
            let gone: Vec<(String, String)> = state
                .seen
                .keys()
                .filter(|(d, i)| !current.contains(&(d.as_str(), i.as_str())))
                .cloned()
                .collect();
            for gone_key in gone {
                let Some((_, was_ready, _, ud)) = state.seen.remove(&gone_key) else {
                    continue;
                };
                let (deployment_id, id) = gone_key;
                let Some(key) = state
                    .deployments
                    .iter()
                    .find(|(_, l)| l.record.id == deployment_id)
                    .map(|(k, _)| k.clone())
                else {
                    continue;
                };
                changes.push((
                    key,
                    NewEvent {
                        deployment_id,
                        kind: Some(EventKind::InstanceStatus),
                        upgrade_domain: Some(ud),
                        instance: Some(id.clone()),
                        ready: Some(false),
                        operation: None,
                        message: format!(
                            "{id} removed from the deployment{}",
                            if was_ready { " (was ready)" } else { "" }
                        ),
                    },
                ));
            }
        }
        let mut by_key: std::collections::BTreeMap<DeploymentKey, Vec<NewEvent>> =
            Default::default();
        for (key, e) in changes {
            by_key.entry(key).or_default().push(e);
        }
        for (key, events) in by_key {
            let mut ops = Vec::new();
            let stamped = self.stamp_events(&key, events, &mut ops);
            match self.store.txn(Vec::new(), ops) {
                Ok(_) => remember(&mut self.lock(), stamped.1),
                Err(e) => tracing::warn!(error = %e, "failed to record instance events"),
            }
        }
    }
}
