//! The controller handle: desired state in memory (mirroring the store),
//! the reconciler loop over the agent's reports, and the public API.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use weft_agent::protocol::{
    AgentApi, InstanceReport, InstanceSpec, InstanceStatus, LogPage, LogQuery,
};
use weft_runtime::protocol::{Endpoint, Topology};
use weft_store::{Op, StateStore};

use crate::events::{Event, NewEvent};
use crate::record::{self, DeploymentRecord, OperationRecord};
use crate::upgrade::{ChangeKind, UpgradePlan};
use crate::view::{DeploymentStatus, OperationStatus, OperationView, ServiceView};
use crate::vips::{self, LiveVip};
use crate::{
    ChangeConfigurationRequest, DeployRequest, FabricConfig, FabricError, OperationId, Slot,
    UpgradeRequest,
};

/// The fabric controller. Cheap to clone; all clones share one state.
pub struct Controller<A: AgentApi> {
    pub(crate) inner: Arc<Inner<A>>,
}

impl<A: AgentApi> Clone for Controller<A> {
    fn clone(&self) -> Self {
        Controller {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) type DeploymentKey = (String, Slot);

/// The agent's reports by `(deployment_id, instance_id)`: instance ids are
/// unique only within a deployment (production and staging both have a
/// `Web_IN_0`).
pub(crate) type Reports = BTreeMap<(String, String), InstanceReport>;

/// The agent's report about `spec`'s instance at `spec`'s incarnation.
pub(crate) fn current_report<'a>(
    reports: &'a Reports,
    spec: &InstanceSpec,
) -> Option<&'a InstanceReport> {
    report_for(reports, spec).filter(|r| r.incarnation == spec.incarnation)
}

/// Whether `report` says `spec` has landed: Ready, and the process runs
/// with the spec's settings (a settings change in place has been accepted,
/// or the instance was recycled with them).
pub(crate) fn landed(report: &InstanceReport, spec: &InstanceSpec) -> bool {
    report.ready
        && report.incarnation == spec.incarnation
        && report.settings_digest == weft_agent::protocol::settings_digest(&spec.settings)
}

/// The agent's report about `spec`'s instance (any incarnation).
pub(crate) fn report_for<'a>(
    reports: &'a Reports,
    spec: &InstanceSpec,
) -> Option<&'a InstanceReport> {
    reports.get(&(spec.deployment_id.clone(), spec.instance_id.clone()))
}

pub(crate) struct Inner<A: AgentApi> {
    pub config: FabricConfig,
    pub store: Arc<dyn StateStore>,
    pub agent: A,
    state: Mutex<State>,
    /// Serialises `agent.apply` calls so the last one carries the latest set.
    apply_lock: tokio::sync::Mutex<()>,
    /// Bumped after every processed report and every operation change.
    pub generation: watch::Sender<u64>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Held while an operation is admitted (checked and committed), so two
    /// requests never both pass the same check.
    pub admit: tokio::sync::Mutex<()>,
}

#[derive(Default)]
pub(crate) struct State {
    pub deployments: BTreeMap<DeploymentKey, Live>,
    pub operations: BTreeMap<String, OperationRecord>,
    pub reports: Reports,
    /// The topology last sent per deployment id.
    topology: BTreeMap<String, Topology>,
    pub closed: bool,
    /// The event history of each deployment, by deployment id, oldest
    /// first (a deployment keeps its history when a swap moves it).
    pub events: BTreeMap<String, VecDeque<Event>>,
    pub next_seq: u64,
    /// Each instance's last (incarnation, ready, status, UD) seen, by
    /// (deployment, instance), to record changes as events.
    pub seen: BTreeMap<(String, String), (u64, bool, InstanceStatus, u32)>,
}

pub(crate) struct Live {
    pub record: DeploymentRecord,
    /// Parallel to `record.plan.vips`; `None` until bound.
    pub vips: Vec<Option<LiveVip>>,
    /// Whether its instances are in the set given to the agent.
    pub in_agent: bool,
    /// The task driving its upgrade, if one runs.
    pub driver: Option<JoinHandle<()>>,
    /// Specs the agent keeps (by instance id) while an upgrade step drains
    /// them, whatever the record now says.
    pub held: BTreeMap<String, InstanceSpec>,
}

impl Live {
    pub fn instances(&self) -> impl Iterator<Item = &InstanceSpec> {
        self.record
            .plan
            .roles
            .iter()
            .flat_map(|r| r.instances.iter())
    }
}

impl<A: AgentApi> Controller<A> {
    /// Loads the desired state, binds its VIPs again, hands every instance to
    /// the agent (which adopts or restarts them) and resumes the operations
    /// a previous controller left in progress.
    pub async fn open(
        config: FabricConfig,
        store: Arc<dyn StateStore>,
        agent: A,
    ) -> Result<Self, FabricError> {
        let dir = config.state_dir.join("packages");
        std::fs::create_dir_all(&dir).map_err(|source| FabricError::Io {
            what: "create the package directory",
            path: dir.clone(),
            source,
        })?;
        let deployments: Vec<DeploymentRecord> = record::load_all(&*store, record::DEPLOYMENTS)?;
        let operations: Vec<OperationRecord> = record::load_all(&*store, record::OPERATIONS)?;
        let mut state = State::default();
        for record in deployments {
            let n = record.plan.vips.len();
            state.deployments.insert(
                (record.service.clone(), record.slot),
                Live {
                    record,
                    vips: vec![None; n],
                    in_agent: true,
                    driver: None,
                    held: BTreeMap::new(),
                },
            );
        }
        for op in operations {
            state.operations.insert(op.id.clone(), op);
        }
        crate::events::load(&*store, &mut state)?;
        let controller = Controller {
            inner: Arc::new(Inner {
                config,
                store,
                agent,
                state: Mutex::new(state),
                apply_lock: tokio::sync::Mutex::new(()),
                generation: watch::channel(0).0,
                tasks: Mutex::new(Vec::new()),
                admit: tokio::sync::Mutex::new(()),
            }),
        };
        let keys: Vec<DeploymentKey> = controller
            .inner
            .lock()
            .deployments
            .keys()
            .cloned()
            .collect();
        tracing::info!(deployments = keys.len(), "controller opening");
        for key in &keys {
            controller.inner.ensure_vips(key).await?;
        }
        let reconciler = tokio::spawn(reconcile(controller.inner.clone()));
        controller.inner.spawn_tracked(reconciler);
        controller.inner.apply().await?;
        crate::ops::resume(&controller.inner);
        crate::upgrade_ops::resume(&controller.inner);
        Ok(controller)
    }

    /// Azure's Create Deployment: checks the request now (a bad package or
    /// configuration is an error here, with the diagnostics), then deploys
    /// asynchronously; follow it with [`Controller::operation`] or
    /// [`Controller::wait`].
    pub async fn deploy(&self, req: DeployRequest) -> Result<OperationId, FabricError> {
        crate::ops::deploy(&self.inner, req).await
    }

    /// Azure's Delete Deployment: drains the deployment's instances from its
    /// VIPs, stops them and forgets the deployment, asynchronously.
    pub async fn delete_deployment(
        &self,
        service: &str,
        slot: Slot,
    ) -> Result<OperationId, FabricError> {
        crate::ops::delete(&self.inner, service, slot).await
    }

    /// What upgrading to `req`'s package and configuration would do, without
    /// doing it (`weft upgrade --plan`).
    pub async fn plan_upgrade(&self, req: &UpgradeRequest) -> Result<UpgradePlan, FabricError> {
        crate::upgrade_ops::plan(&self.inner, req, ChangeKind::Upgrade)
            .await
            .map(|(plan, _)| plan)
    }

    /// What changing the configuration to `req`'s would do, without doing it.
    pub async fn plan_configuration_change(
        &self,
        req: ChangeConfigurationRequest,
    ) -> Result<UpgradePlan, FabricError> {
        let req = crate::upgrade_ops::configuration_request(&self.inner, req).await?;
        crate::upgrade_ops::plan(&self.inner, &req, ChangeKind::Configuration)
            .await
            .map(|(plan, _)| plan)
    }

    /// Azure's Change Deployment Configuration, walked by upgrade domain
    /// like an upgrade (manual mode waits for [`Controller::walk`]): changed
    /// settings reach the running instances in place, a changed instance
    /// count scales out or (draining first) in. Refused while another
    /// upgrade or operation holds the deployment.
    pub async fn change_configuration(
        &self,
        req: ChangeConfigurationRequest,
    ) -> Result<OperationId, FabricError> {
        let req = crate::upgrade_ops::configuration_request(&self.inner, req).await?;
        crate::upgrade_ops::upgrade(&self.inner, req, ChangeKind::Configuration).await
    }

    /// Azure's Upgrade Deployment: an in-place upgrade walking the upgrade
    /// domains (see [`crate::upgrade`]); refused with the reasons when the
    /// change cannot be made in place, or while another upgrade or operation
    /// holds the deployment.
    pub async fn upgrade(&self, req: UpgradeRequest) -> Result<OperationId, FabricError> {
        crate::upgrade_ops::upgrade(&self.inner, req, ChangeKind::Upgrade).await
    }

    /// Azure's Swap Deployment: the staging deployment of `service` takes
    /// over the production VIPs and the production deployment the staging
    /// ones, each VIP's backends switched at once (open connections finish
    /// where they are). Refused, changing nothing, when the two
    /// deployments' public endpoints differ, while either is busy or being
    /// upgraded; with only a staging deployment, it moves to production.
    /// `request` names the deployments the caller saw in the two slots;
    /// when either is not the one there now (a retried swap), the swap is
    /// refused with [`FabricError::SwapMismatch`] and changes nothing.
    pub async fn swap(
        &self,
        service: &str,
        request: &crate::view::SwapRequest,
    ) -> Result<OperationId, FabricError> {
        crate::swap::swap(&self.inner, service, request).await
    }

    /// Azure's Reboot Role Instance: the instance leaves its VIPs, drains,
    /// and restarts with a new incarnation; local storage with
    /// `cleanOnRoleRecycle="false"` is kept. Succeeds once it is Ready.
    pub async fn reboot(
        &self,
        service: &str,
        slot: Slot,
        instance: &str,
    ) -> Result<OperationId, FabricError> {
        crate::instance_ops::recycle(
            &self.inner,
            service,
            slot,
            instance,
            crate::instance_ops::Recycle::Reboot,
        )
        .await
    }

    /// Azure's Reimage Role Instance: like a reboot, but the instance
    /// starts fresh — all its local storage wiped, its approot unpacked
    /// and verified again.
    pub async fn reimage(
        &self,
        service: &str,
        slot: Slot,
        instance: &str,
    ) -> Result<OperationId, FabricError> {
        crate::instance_ops::recycle(
            &self.inner,
            service,
            slot,
            instance,
            crate::instance_ops::Recycle::Reimage,
        )
        .await
    }

    /// Azure's Delete Role Instances: the instances leave their VIPs,
    /// drain, stop and are removed; their roles' instance counts drop.
    /// Refused when it would remove every instance of a role.
    pub async fn delete_instances(
        &self,
        service: &str,
        slot: Slot,
        instances: &[String],
    ) -> Result<OperationId, FabricError> {
        crate::instance_ops::delete(&self.inner, service, slot, instances).await
    }

    /// Azure's Update Deployment Status: `Suspended` drains every instance
    /// from the VIPs and stops it (`StoppedVM`, local storage kept; the VIPs
    /// stay bound with no backend), `Running` starts them again and
    /// succeeds when every instance is Ready. Refused while the deployment
    /// is busy or being upgraded, or already in that status.
    pub async fn update_status(
        &self,
        service: &str,
        slot: Slot,
        status: DeploymentStatus,
    ) -> Result<OperationId, FabricError> {
        crate::deployment_status::update(&self.inner, service, slot, status).await
    }

    /// Azure's Walk Upgrade Domain (manual upgrades, in order).
    pub async fn walk(
        &self,
        service: &str,
        slot: Slot,
        upgrade_domain: u32,
    ) -> Result<OperationId, FabricError> {
        crate::upgrade_ops::walk(&self.inner, service, slot, upgrade_domain).await
    }

    /// Azure's Rollback Update Or Upgrade: back to the package and
    /// configuration before the upgrade, walking back only the upgrade
    /// domains it touched.
    pub async fn rollback(&self, service: &str, slot: Slot) -> Result<OperationId, FabricError> {
        crate::upgrade_ops::rollback(&self.inner, service, slot).await
    }

    /// Azure's Get Deployment `Configuration`: the `.cscfg` text the
    /// deployment in `slot` runs (after Delete Role Instances, with the
    /// lower instance count).
    pub fn configuration(&self, service: &str, slot: Slot) -> Result<String, FabricError> {
        let state = self.inner.lock();
        let live = state
            .deployments
            .get(&(service.to_owned(), slot))
            .ok_or_else(|| FabricError::NoDeployment {
                service: service.to_owned(),
                slot,
            })?;
        live.record
            .configuration
            .clone()
            .ok_or_else(|| FabricError::NoConfiguration {
                deployment_id: live.record.id.clone(),
            })
    }

    /// The event history of the deployment now in `slot`, oldest first
    /// (a deployment's history follows it through swaps); for an empty slot,
    /// that of the last deployment there (its deletion).
    pub fn events(&self, service: &str, slot: Slot) -> Vec<Event> {
        let state = self.inner.lock();
        crate::events::history_of_slot(&state, service, slot)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Azure's Get Operation Status.
    pub fn operation(&self, id: &str) -> Option<OperationView> {
        self.inner
            .lock()
            .operations
            .get(id)
            .map(OperationRecord::view)
    }

    /// Waits until operation `id` is no longer in progress (or the
    /// controller shuts down); `None` if there is no such operation.
    pub async fn wait(&self, id: &str) -> Option<OperationView> {
        let mut rx = self.inner.generation.subscribe();
        loop {
            let view = self.operation(id)?;
            if view.status != OperationStatus::InProgress || self.inner.lock().closed {
                return Some(view);
            }
            if rx.changed().await.is_err() {
                return Some(view);
            }
        }
    }

    /// Every operation, oldest first.
    pub fn operations(&self) -> Vec<OperationView> {
        let state = self.inner.lock();
        let mut ops: Vec<_> = state.operations.values().collect();
        ops.sort_by_key(|o| (o.started_ms, o.id.clone()));
        ops.into_iter().map(OperationRecord::view).collect()
    }

    /// Services → deployments → roles → instances, with live status.
    pub fn services(&self) -> Vec<ServiceView> {
        let state = self.inner.lock();
        let mut services: Vec<ServiceView> = Vec::new();
        for ((service, _), live) in &state.deployments {
            let view = crate::view::deployment_view(live, &state.reports);
            match services.last_mut() {
                Some(s) if s.name == *service => s.deployments.push(view),
                _ => services.push(ServiceView {
                    name: service.clone(),
                    deployments: vec![view],
                }),
            }
        }
        services
    }

    /// Captured output of role instance `instance_id` of the deployment in
    /// `slot` of `service`.
    pub async fn logs(
        &self,
        service: &str,
        slot: Slot,
        instance_id: &str,
        query: LogQuery,
    ) -> Result<LogPage, FabricError> {
        let deployment_id = self
            .inner
            .instance(service, slot, instance_id)?
            .deployment_id;
        self.inner
            .agent
            .logs(&deployment_id, instance_id, query)
            .await
            .map_err(|e| FabricError::Agent {
                what: "read logs",
                message: e.to_string(),
            })
    }

    /// Stops operations (they resume on the next open), the VIPs (waiting
    /// for open connections up to the drain timeout) and every instance. The
    /// desired state stays in the store.
    pub async fn shutdown(&self) {
        let vips: Vec<LiveVip> = {
            let mut state = self.inner.lock();
            state.closed = true;
            for live in state.deployments.values_mut() {
                if let Some(driver) = live.driver.take() {
                    driver.abort();
                }
            }
            state
                .deployments
                .values_mut()
                .flat_map(|live| live.vips.iter_mut().filter_map(Option::take))
                .collect()
        };
        for task in std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()))
        {
            task.abort();
        }
        let mut closing = tokio::task::JoinSet::new();
        for live in vips {
            closing.spawn(async move { live.vip.close().await });
        }
        closing.join_all().await;
        if let Err(e) = self.inner.agent.shutdown().await {
            tracing::error!(error = %e, "agent shutdown failed");
        }
        self.inner.generation.send_modify(|g| *g += 1);
        tracing::info!("controller shut down");
    }
}

/// The reconciler: on every agent report, refresh instance status, every
/// VIP's backends and every deployment's topology.
async fn reconcile<A: AgentApi>(inner: Arc<Inner<A>>) {
    let mut rx = inner.agent.reports();
    loop {
        let reports = rx.borrow_and_update().clone();
        {
            let mut state = inner.lock();
            state.reports = reports
                .into_iter()
                .map(|r| ((r.deployment_id.clone(), r.instance_id.clone()), r))
                .collect();
        }
        inner.sync_backends();
        inner.note_instances();
        inner.sync_topology().await;
        inner.generation.send_modify(|g| *g += 1);
        if rx.changed().await.is_err() {
            tracing::warn!("agent report channel closed; reconciler stops");
            return;
        }
    }
}

impl<A: AgentApi> Inner<A> {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The spec of role instance `instance_id` of the deployment in `slot`
    /// of `service`.
    pub fn instance(
        &self,
        service: &str,
        slot: Slot,
        instance_id: &str,
    ) -> Result<InstanceSpec, FabricError> {
        let state = self.lock();
        let live = state
            .deployments
            .get(&(service.to_owned(), slot))
            .ok_or_else(|| FabricError::NoDeployment {
                service: service.to_owned(),
                slot,
            })?;
        live.instances()
            .find(|i| i.instance_id == instance_id)
            .cloned()
            .ok_or_else(|| FabricError::NoInstance {
                instance: instance_id.to_owned(),
                service: service.to_owned(),
                slot,
            })
    }

    pub fn spawn_tracked(&self, task: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Gives the agent every instance of every deployment still in it.
    pub async fn apply(&self) -> Result<(), FabricError> {
        let _serial = self.apply_lock.lock().await;
        let desired: Vec<InstanceSpec> = {
            let state = self.lock();
            if state.closed {
                return Err(FabricError::ShutDown);
            }
            state
                .deployments
                .values()
                .filter(|live| live.in_agent)
                .flat_map(|live| {
                    let current = live
                        .instances()
                        .map(|spec| live.held.get(&spec.instance_id).unwrap_or(spec).clone());
                    let removed = live
                        .held
                        .values()
                        .filter(|held| !live.instances().any(|i| i.instance_id == held.instance_id))
                        .cloned();
                    current.chain(removed).collect::<Vec<_>>()
                })
                .collect()
        };
        tracing::debug!(instances = desired.len(), "applying desired instances");
        self.agent
            .apply(desired)
            .await
            .map_err(|e| FabricError::Agent {
                what: "apply the desired instances",
                message: e.to_string(),
            })
    }

    /// Sets every VIP's backends from the latest reports. A deployment being
    /// deleted gets none.
    pub fn sync_backends(&self) {
        let mut state = self.lock();
        let State {
            deployments,
            reports,
            ..
        } = &mut *state;
        for live in deployments.values_mut() {
            // Leaving or stopped instances get no new connection.
            let deleting = matches!(
                live.record.status,
                DeploymentStatus::Deleting
                    | DeploymentStatus::Suspending
                    | DeploymentStatus::Suspended
            );
            let instances: Vec<InstanceSpec> = live.instances().cloned().collect();
            for (plan, slot) in live.record.plan.vips.iter().zip(live.vips.iter_mut()) {
                let Some(bound) = slot else { continue };
                let wanted = if deleting {
                    Vec::new()
                } else {
                    vips::backends(plan, &instances, reports)
                };
                if wanted != bound.backends {
                    tracing::debug!(
                        role = %plan.role, endpoint = %plan.endpoint,
                        backends = wanted.len(), "vip backends changed"
                    );
                    bound.vip.set_backends(wanted.clone());
                    bound.backends = wanted;
                }
            }
        }
    }

    /// Pushes each deployment's topology to the agent when it changed.
    async fn sync_topology(&self) {
        let changed: Vec<(String, Topology)> = {
            let mut state = self.lock();
            let mut out = Vec::new();
            let computed: Vec<(String, Topology)> = state
                .deployments
                .values()
                .filter(|live| live.in_agent)
                .map(|live| (live.record.id.clone(), topology(live, &state.reports)))
                .collect();
            for (id, topo) in computed {
                if state.topology.get(&id) != Some(&topo) {
                    state.topology.insert(id.clone(), topo.clone());
                    out.push((id, topo));
                }
            }
            out
        };
        for (id, topo) in changed {
            if let Err(e) = self.agent.set_topology(&id, topo).await {
                tracing::warn!(deployment = %id, error = %e, "failed to push topology");
            }
        }
    }

    /// Writes records in one transaction and mirrors them in memory.
    pub fn commit(
        &self,
        deployment: Option<Result<&DeploymentRecord, &DeploymentKey>>,
        operation: Option<&OperationRecord>,
    ) -> Result<(), FabricError> {
        self.commit_with(deployment, operation, None)
    }

    /// [`Inner::commit`], with events of slot `key` in the same transaction.
    pub fn commit_with(
        &self,
        deployment: Option<Result<&DeploymentRecord, &DeploymentKey>>,
        operation: Option<&OperationRecord>,
        events: Option<(&DeploymentKey, Vec<NewEvent>)>,
    ) -> Result<(), FabricError> {
        let mut ops = Vec::new();
        match deployment {
            Some(Ok(d)) => ops.push(Op::Put(d.key(), record::encode(d))),
            Some(Err((service, slot))) => {
                ops.push(Op::Delete(record::deployment_key(service, *slot)))
            }
            None => {}
        }
        if let Some(o) = operation {
            ops.push(Op::Put(o.key(), record::encode(o)));
        }
        let events = events.map(|(key, new)| self.stamp_events(key, new, &mut ops));
        self.store.txn(Vec::new(), ops)?;
        let mut state = self.lock();
        if let Some(Ok(d)) = deployment
            && let Some(live) = state.deployments.get_mut(&(d.service.clone(), d.slot))
        {
            live.record = d.clone();
        }
        if let Some(Err(key)) = deployment
            && let Some(live) = state.deployments.remove(key)
        {
            state.topology.remove(&live.record.id);
        }
        if let Some(o) = operation {
            state.operations.insert(o.id.clone(), o.clone());
        }
        if let Some((_, events)) = events {
            crate::events::remember(&mut state, events);
        }
        drop(state);
        self.sync_backends();
        self.note_instances();
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    /// Writes deployment records (`puts`), removes slots (`deletes`), an
    /// operation and events of several slots in one transaction, and keeps
    /// the operation and the events in memory. The caller mirrors the
    /// deployments in memory itself (a swap moves them between slots).
    pub fn commit_many(
        &self,
        puts: &[&DeploymentRecord],
        deletes: &[DeploymentKey],
        operation: Option<&OperationRecord>,
        events: Vec<(DeploymentKey, Vec<NewEvent>)>,
    ) -> Result<(), FabricError> {
        let mut ops: Vec<Op> = puts
            .iter()
            .map(|d| Op::Put(d.key(), record::encode(*d)))
            .collect();
        ops.extend(
            deletes
                .iter()
                .map(|(service, slot)| Op::Delete(record::deployment_key(service, *slot))),
        );
        if let Some(o) = operation {
            ops.push(Op::Put(o.key(), record::encode(o)));
        }
        let stamped: Vec<_> = events
            .into_iter()
            .map(|(key, new)| self.stamp_events(&key, new, &mut ops))
            .collect();
        self.store.txn(Vec::new(), ops)?;
        let mut state = self.lock();
        if let Some(o) = operation {
            state.operations.insert(o.id.clone(), o.clone());
        }
        for (_, events) in stamped {
            crate::events::remember(&mut state, events);
        }
        Ok(())
    }

    /// Binds every VIP of the deployment not bound yet, persisting the ports
    /// (and returning the remap messages).
    pub async fn ensure_vips(&self, key: &DeploymentKey) -> Result<Vec<String>, FabricError> {
        let Some((plans, access, ports, bound)) = self.lock().deployments.get(key).map(|live| {
            (
                live.record.plan.vips.clone(),
                live.record.plan.access.clone(),
                live.record.vip_ports.clone(),
                live.vips.iter().map(Option::is_some).collect::<Vec<_>>(),
            )
        }) else {
            return Ok(Vec::new());
        };
        let mut messages = Vec::new();
        let mut new_ports = ports.clone();
        new_ports.resize(plans.len(), None);
        let mut bound_now = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            if bound[i] {
                continue;
            }
            let acl = crate::spec::access_for(&access, &plan.role, &plan.endpoint);
            let (vip, message) = vips::bind(
                self.config.vip_host,
                plan,
                acl,
                key.1,
                new_ports[i],
                &self.config.vip,
            )
            .await?;
            messages.extend(message);
            new_ports[i] = Some(vip.local_addr().port());
            bound_now.push((i, vip));
        }
        if bound_now.is_empty() {
            return Ok(messages);
        }
        let (record, live_notes) = {
            let mut state = self.lock();
            let Some(live) = state.deployments.get_mut(key) else {
                return Ok(messages);
            };
            let live_notes = live.record.notes.clone();
            for (i, vip) in bound_now {
                live.vips[i] = Some(LiveVip {
                    vip,
                    backends: Vec::new(),
                });
            }
            let mut record = live.record.clone();
            record.vip_ports = new_ports;
            // What this binding says replaces what an earlier one said.
            record.notes = record.plan.notes.clone();
            record.notes.extend(messages.iter().cloned());
            (record, live_notes)
        };
        if record.vip_ports != ports || record.notes != live_notes {
            self.commit(Some(Ok(&record)), None)?;
        }
        self.sync_backends();
        Ok(messages)
    }
}

/// role → instance → endpoint, from what the instances actually listen on.
fn topology(live: &Live, reports: &Reports) -> Topology {
    let mut topo = Topology::default();
    for role in &live.record.plan.roles {
        let instances = topo.roles.entry(role.name.clone()).or_default();
        for spec in &role.instances {
            let mut endpoints = BTreeMap::new();
            if let Some(report) = report_for(reports, spec) {
                for ep in &spec.endpoints {
                    if let Some(addr) = report.endpoints.get(&ep.name) {
                        endpoints.insert(
                            ep.name.clone(),
                            Endpoint {
                                protocol: format!("{:?}", ep.protocol).to_lowercase(),
                                address: *addr,
                            },
                        );
                    }
                }
            }
            instances.insert(spec.instance_id.clone(), endpoints);
        }
    }
    topo
}
