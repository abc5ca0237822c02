//! Test harness: an in-memory, scriptable [`AgentApi`] whose "instances" are
//! small TCP servers answering with their instance id, and a fixture
//! service (package + configuration) built in a temporary directory.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use weft_agent::protocol::{
    AgentApi, InstanceReport, InstanceSpec, InstanceStatus, LogLine, LogPage, LogQuery, LogStream,
    settings_digest,
};
use weft_runtime::protocol::Topology;

/// What a fake instance does once applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Listens and reports Ready.
    Ready,
    /// Listens but stays StartingRole (never ready).
    Hold,
    /// Reports FailedStartingRole with this message.
    Fail(String),
}

#[derive(Clone)]
pub struct FakeAgent {
    inner: Arc<Inner>,
}

struct Inner {
    tx: watch::Sender<Vec<InstanceReport>>,
    state: Mutex<State>,
}

/// (deployment id, instance id): the agent's key of an instance.
type Key = (String, String);

fn key(spec: &InstanceSpec) -> Key {
    (spec.deployment_id.clone(), spec.instance_id.clone())
}

#[derive(Default)]
struct State {
    /// Behaviour by instance id, else by role, else Ready.
    behaviours: BTreeMap<String, Behaviour>,
    reports: BTreeMap<Key, InstanceReport>,
    servers: BTreeMap<Key, tokio::task::JoinHandle<()>>,
    /// The instance ids of every apply, in order.
    applies: Vec<Vec<String>>,
    topologies: Vec<(String, Topology)>,
    /// Instance ids ever started, with how many times.
    starts: BTreeMap<String, u32>,
    /// An apply that would stop an instance never returns (a controller
    /// killed while stopping instances).
    hang_on_removal: bool,
    /// Every (instance, incarnation) started, in order.
    incarnations: Vec<(String, u64)>,
    /// The spec each instance runs.
    specs: BTreeMap<Key, InstanceSpec>,
    /// Settings given to running instances (same incarnation), in order.
    in_place: Vec<(String, BTreeMap<String, String>)>,
    /// Every (instance, reimage count) reimaged, in order.
    reimages: Vec<(String, u64)>,
    /// Instances that cancel a settings change (recycled instead).
    cancel_changes: BTreeSet<String>,
    /// Instances whose settings change is never answered (the process keeps
    /// its old settings).
    ignore_changes: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("fake agent: {0}")]
pub struct FakeError(String);

impl FakeAgent {
    pub fn new() -> FakeAgent {
        FakeAgent {
            inner: Arc::new(Inner {
                tx: watch::channel(Vec::new()).0,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap()
    }

    /// Sets what instances (by id, else by role, else by package digest)
    /// do when next started.
    pub fn behave(&self, id_or_role: &str, behaviour: Behaviour) {
        self.state()
            .behaviours
            .insert(id_or_role.to_owned(), behaviour);
    }

    /// Flips an instance's readiness (as a probe or Busy would); the first
    /// deployment's instance with that id.
    pub fn set_ready(&self, id: &str, ready: bool) {
        let mut state = self.state();
        let report = state
            .reports
            .iter_mut()
            .find(|((_, i), _)| i == id)
            .map(|(_, r)| r)
            .expect("no such instance");
        report.ready = ready;
        report.status = if ready {
            InstanceStatus::ReadyRole
        } else {
            InstanceStatus::BusyRole
        };
        self.publish(&state);
    }

    pub fn hang_on_removal(&self) {
        self.state().hang_on_removal = true;
    }

    pub fn last_apply(&self) -> Vec<String> {
        self.state().applies.last().cloned().unwrap_or_default()
    }

    pub fn applies(&self) -> Vec<Vec<String>> {
        self.state().applies.clone()
    }

    /// Every (instance, incarnation) started, in order.
    pub fn incarnations(&self) -> Vec<(String, u64)> {
        self.state().incarnations.clone()
    }

    /// Settings given to running instances, in order.
    pub fn in_place(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.state().in_place.clone()
    }

    pub fn starts(&self) -> BTreeMap<String, u32> {
        self.state().starts.clone()
    }

    pub fn topologies(&self) -> Vec<(String, Topology)> {
        self.state().topologies.clone()
    }

    /// The instance ids running, of every deployment.
    pub fn running(&self) -> BTreeSet<String> {
        self.state()
            .servers
            .keys()
            .map(|(_, i)| i.clone())
            .collect()
    }

    /// The instance ids running in deployment `deployment_id`.
    pub fn running_in(&self, deployment_id: &str) -> BTreeSet<String> {
        self.state()
            .servers
            .keys()
            .filter(|(d, _)| d == deployment_id)
            .map(|(_, i)| i.clone())
            .collect()
    }

    /// Every report, by (deployment id, instance id).
    pub fn reports_now(&self) -> BTreeMap<(String, String), InstanceReport> {
        self.state().reports.clone()
    }

    /// Every (instance, reimage count) reimaged, in order.
    pub fn reimages(&self) -> Vec<(String, u64)> {
        self.state().reimages.clone()
    }

    /// The instance (any deployment) cancels settings changes: the agent
    /// recycles it with the new settings.
    pub fn cancel_changes(&self, id: &str) {
        self.state().cancel_changes.insert(id.to_owned());
    }

    /// The instance never takes settings changes (keeps its old digest).
    pub fn ignore_changes(&self, id: &str) {
        self.state().ignore_changes.insert(id.to_owned());
    }

    /// Starts (or restarts) `spec`'s instance as its behaviour says.
    fn start(&self, state: &mut State, spec: InstanceSpec) {
        let k = key(&spec);
        if let Some(server) = state.servers.remove(&k) {
            server.abort();
        }
        state
            .incarnations
            .push((spec.instance_id.clone(), spec.incarnation));
        let behaviour = state
            .behaviours
            .get(&spec.instance_id)
            .or_else(|| state.behaviours.get(&spec.role))
            .or_else(|| state.behaviours.get(&spec.package.digest))
            .cloned()
            .unwrap_or(Behaviour::Ready);
        *state.starts.entry(spec.instance_id.clone()).or_default() += 1;
        let mut endpoints = BTreeMap::new();
        if !matches!(behaviour, Behaviour::Fail(_)) {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            for ep in &spec.endpoints {
                endpoints.insert(ep.name.clone(), addr);
            }
            let answer = format!("{}@{}", spec.instance_id, &spec.deployment_id[..8]);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            state
                .servers
                .insert(k.clone(), tokio::spawn(serve(listener, answer)));
        }
        let (status, ready, message) = match &behaviour {
            Behaviour::Ready => (InstanceStatus::ReadyRole, true, None),
            Behaviour::Hold => (
                InstanceStatus::StartingRole,
                false,
                Some("starting".to_owned()),
            ),
            Behaviour::Fail(m) => (InstanceStatus::FailedStartingRole, false, Some(m.clone())),
        };
        state.reports.insert(
            k,
            InstanceReport {
                instance_id: spec.instance_id.clone(),
                deployment_id: spec.deployment_id.clone(),
                role: spec.role.clone(),
                incarnation: spec.incarnation,
                status,
                ready,
                ready_endpoints: Default::default(),
                endpoints,
                pid: Some(4242),
                restarts: 0,
                message,
                settings_digest: settings_digest(&spec.settings),
            },
        );
    }

    fn publish(&self, state: &State) {
        self.inner
            .tx
            .send_replace(state.reports.values().cloned().collect());
    }
}

impl AgentApi for FakeAgent {
    type Error = FakeError;

    async fn apply(&self, desired: Vec<InstanceSpec>) -> Result<(), FakeError> {
        let hang = {
            let state = self.state();
            state.hang_on_removal
                && state
                    .reports
                    .keys()
                    .any(|k| !desired.iter().any(|s| key(s) == *k))
        };
        if hang {
            std::future::pending::<()>().await;
        }
        let mut state = self.state();
        let mut seen = BTreeSet::new();
        for spec in &desired {
            if !seen.insert(key(spec)) {
                return Err(FakeError(format!(
                    "duplicate instance {} of deployment {}",
                    spec.instance_id, spec.deployment_id
                )));
            }
        }
        state
            .applies
            .push(desired.iter().map(|s| s.instance_id.clone()).collect());
        let gone: Vec<Key> = state
            .reports
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            state.reports.remove(&k);
            state.specs.remove(&k);
            if let Some(server) = state.servers.remove(&k) {
                server.abort();
            }
        }
        for spec in desired {
            let k = key(&spec);
            let before = state.specs.get(&k).cloned();
            let same_incarnation = state
                .reports
                .get(&k)
                .is_some_and(|r| r.incarnation == spec.incarnation);
            if same_incarnation && before.as_ref().is_some_and(|b| b.stopped == spec.stopped) {
                // Same incarnation: settings reach the running instance.
                if before.as_ref() != Some(&spec) {
                    state
                        .in_place
                        .push((spec.instance_id.clone(), spec.settings.clone()));
                    let cancels = state.cancel_changes.contains(&spec.instance_id);
                    let ignores = state.ignore_changes.contains(&spec.instance_id);
                    state.specs.insert(k.clone(), spec.clone());
                    if cancels {
                        // Recycled with the new settings, like a reboot.
                        self.start(&mut state, spec);
                    } else if !ignores && let Some(r) = state.reports.get_mut(&k) {
                        r.settings_digest = settings_digest(&spec.settings);
                    }
                }
                continue;
            }
            state.specs.insert(k.clone(), spec.clone());
            if let Some(server) = state.servers.remove(&k) {
                server.abort();
            }
            if spec.stopped {
                state.reports.insert(
                    k,
                    InstanceReport {
                        instance_id: spec.instance_id.clone(),
                        deployment_id: spec.deployment_id.clone(),
                        role: spec.role.clone(),
                        incarnation: spec.incarnation,
                        status: InstanceStatus::StoppedVM,
                        ready: false,
                        ready_endpoints: Default::default(),
                        endpoints: BTreeMap::new(),
                        pid: None,
                        restarts: 0,
                        message: None,
                        settings_digest: String::new(),
                    },
                );
                continue;
            }
            if before.as_ref().is_some_and(|b| b.reimage != spec.reimage) {
                state
                    .reimages
                    .push((spec.instance_id.clone(), spec.reimage));
            }
            self.start(&mut state, spec);
        }
        self.publish(&state);
        Ok(())
    }

    fn reports(&self) -> watch::Receiver<Vec<InstanceReport>> {
        self.inner.tx.subscribe()
    }

    async fn set_topology(&self, deployment_id: &str, topology: Topology) -> Result<(), FakeError> {
        self.state()
            .topologies
            .push((deployment_id.to_owned(), topology));
        Ok(())
    }

    async fn logs(
        &self,
        deployment_id: &str,
        instance_id: &str,
        _query: LogQuery,
    ) -> Result<LogPage, FakeError> {
        let k = (deployment_id.to_owned(), instance_id.to_owned());
        if !self.state().reports.contains_key(&k) {
            return Err(FakeError(format!("no instance {instance_id}")));
        }
        Ok(LogPage {
            lines: vec![LogLine {
                stream: LogStream::Stdout,
                text: format!("{instance_id} says hi"),
            }],
            cursor: 1,
        })
    }

    async fn shutdown(&self) -> Result<(), FakeError> {
        let mut state = self.state();
        state.reports.clear();
        for (_, server) in std::mem::take(&mut state.servers) {
            server.abort();
        }
        self.publish(&state);
        Ok(())
    }
}

/// Answers every connection with `<instance id>\n`, then keeps it open
/// until the client closes it.
async fn serve(listener: tokio::net::TcpListener, id: String) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            return;
        };
        let id = id.clone();
        tokio::spawn(async move {
            let _ = conn.write_all(format!("{id}\n").as_bytes()).await;
            let mut sink = [0u8; 64];
            while let Ok(n) = conn.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        });
    }
}

/// Connects to `addr` and returns the instance id the backend sends (empty
/// when the VIP closed the connection: no backend).
pub async fn who(addr: SocketAddr) -> String {
    let (line, _conn) = hold(addr).await;
    line
}

/// `<instance id>@<first 8 digits of its deployment id>` of the backend
/// `addr` reaches (empty when none).
pub async fn who_full(addr: SocketAddr) -> String {
    let (line, _conn) = hold_full(addr).await;
    line
}

/// Like [`who`] but keeps the connection open.
pub async fn hold(addr: SocketAddr) -> (String, tokio::net::TcpStream) {
    let (line, conn) = hold_full(addr).await;
    let id = line.split('@').next().unwrap_or_default().to_owned();
    (id, conn)
}

/// Like [`who_full`] but keeps the connection open.
pub async fn hold_full(addr: SocketAddr) -> (String, tokio::net::TcpStream) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), conn.read(&mut byte)).await {
            Ok(Ok(1)) if byte[0] != b'\n' => buf.push(byte[0]),
            _ => break,
        }
    }
    (String::from_utf8(buf).unwrap(), conn)
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub package: PathBuf,
    pub cscfg: Vec<u8>,
    pub port: u16,
}

pub fn csdef(port: u16) -> String {
    csdef_with(port, 3)
}

/// The fixture's definition with `uds` upgrade domains.
pub fn csdef_with(port: u16, uds: u32) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<ServiceDefinition name="shop" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceDefinition" upgradeDomainCount="{uds}">
  <LoadBalancerProbes>
    <LoadBalancerProbe name="Health" protocol="http" path="/healthz" intervalInSeconds="5" timeoutInSeconds="11" />
  </LoadBalancerProbes>
  <WebRole name="Web" vmsize="Small">
    <Runtime>
      <Environment>
        <Variable name="PORT"><RoleInstanceValue xpath="/RoleEnvironment/CurrentInstance/Endpoints/Endpoint[@name='HttpIn']/@port" /></Variable>
        <Variable name="MODE" value="fast" />
      </Environment>
      <EntryPoint><ProgramEntryPoint commandLine="./web.sh" setReadyOnProcessStart="true" /></EntryPoint>
    </Runtime>
    <ConfigurationSettings><Setting name="Greeting" /></ConfigurationSettings>
    <Endpoints>
      <InputEndpoint name="HttpIn" protocol="http" port="{port}" localPort="*" loadBalancerProbe="Health" />
    </Endpoints>
    <LocalResources><LocalStorage name="Scratch" sizeInMB="64" cleanOnRoleRecycle="true" /></LocalResources>
  </WebRole>
  <WorkerRole name="Worker" vmsize="ExtraSmall">
    <Runtime><EntryPoint><ProgramEntryPoint commandLine="./work.sh" setReadyOnProcessStart="true" /></EntryPoint></Runtime>
    <Startup><Task commandLine="./prepare.sh" taskType="simple" /></Startup>
  </WorkerRole>
</ServiceDefinition>
"#
    )
}

pub fn cscfg(web: u32, worker: u32) -> Vec<u8> {
    cscfg_greeting(web, worker, "hi")
}

/// The fixture's configuration with another Greeting.
pub fn cscfg_greeting(web: u32, worker: u32, greeting: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<ServiceConfiguration serviceName="shop" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceConfiguration" osFamily="7" osVersion="*">
  <Role name="Web">
    <Instances count="{web}" />
    <ConfigurationSettings><Setting name="Greeting" value="{greeting}" /></ConfigurationSettings>
  </Role>
  <Role name="Worker"><Instances count="{worker}" /></Role>
</ServiceConfiguration>
"#
    )
    .into_bytes()
}

/// The fixture service with its VIP on `port`.
pub fn fixture_on(port: u16) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let package = build(dir.path(), "shop", &csdef(port), "v1");
    Fixture {
        dir,
        package,
        cscfg: cscfg(2, 1),
        port,
    }
}

/// A package of the fixture's roles with `definition`; `version` goes into
/// the web role's script, so another version is another digest.
pub fn build(dir: &Path, name: &str, definition: &str, version: &str) -> PathBuf {
    let src = dir.join(format!("src-{name}"));
    for (role, file) in [("Web", "web.sh"), ("Worker", "work.sh")] {
        std::fs::create_dir_all(src.join(role)).unwrap();
        std::fs::write(
            src.join(role).join(file),
            format!("#!/bin/sh\n# {version}\nexec sleep 1000\n"),
        )
        .unwrap();
    }
    let package = dir.join(format!("{name}.cspkg"));
    weft_package::build_package(
        &weft_package::PackageSpec {
            service_definition: definition.as_bytes().to_vec(),
            roles: ["Web", "Worker"]
                .iter()
                .map(|r| weft_package::RoleSource {
                    name: (*r).to_owned(),
                    dir: src.join(r),
                })
                .collect(),
        },
        &package,
        &weft_package::BuildOptions::default(),
    )
    .unwrap();
    package
}

pub fn fixture() -> Fixture {
    fixture_on(free_port())
}

pub fn state_dir(f: &Fixture) -> PathBuf {
    f.dir.path().join("state")
}

pub fn store_at(dir: &Path) -> Arc<dyn weft_store::StateStore> {
    std::fs::create_dir_all(dir).unwrap();
    Arc::new(weft_store::SqliteStore::open(&dir.join("fabric.db")).unwrap())
}

pub fn config(dir: &Path) -> weft_fabric::FabricConfig {
    let mut c = weft_fabric::FabricConfig::new(dir);
    c.deploy_timeout = Duration::from_secs(10);
    c.drain_timeout = Duration::from_secs(10);
    c.drain_before_stop = Duration::from_secs(10);
    c
}

pub fn request(f: &Fixture, service: &str) -> weft_fabric::DeployRequest {
    weft_fabric::DeployRequest {
        service: service.to_owned(),
        slot: weft_fabric::Slot::Production,
        package: f.package.clone(),
        configuration: f.cscfg.clone(),
        label: String::new(),
    }
}

/// Waits (up to 10 s) until `cond` holds, polling on a short interval.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The digest of a package file.
pub fn digest(package: &Path) -> String {
    weft_package::Package::open(package)
        .unwrap()
        .digest()
        .to_owned()
}

/// A store that refuses every transaction writing a value that contains
/// `needle` while armed (a full disk at one chosen step).
pub struct FailingStore {
    inner: Arc<dyn weft_store::StateStore>,
    needle: Mutex<Option<Vec<u8>>>,
}

impl FailingStore {
    pub fn new(inner: Arc<dyn weft_store::StateStore>) -> Arc<FailingStore> {
        Arc::new(FailingStore {
            inner,
            needle: Mutex::new(None),
        })
    }

    pub fn fail_writes_containing(&self, needle: Option<&str>) {
        *self.needle.lock().unwrap() = needle.map(|n| n.as_bytes().to_vec());
    }
}

impl weft_store::StateStore for FailingStore {
    fn get(&self, key: &str) -> Result<Option<weft_store::KeyValue>, weft_store::StoreError> {
        self.inner.get(key)
    }

    fn range(
        &self,
        prefix: &str,
    ) -> Result<(Vec<weft_store::KeyValue>, u64), weft_store::StoreError> {
        self.inner.range(prefix)
    }

    fn txn(
        &self,
        compares: Vec<weft_store::Compare>,
        ops: Vec<weft_store::Op>,
    ) -> Result<weft_store::TxnResult, weft_store::StoreError> {
        if let Some(needle) = self.needle.lock().unwrap().as_deref() {
            for op in &ops {
                if let weft_store::Op::Put(key, value) = op
                    && value.windows(needle.len()).any(|w| w == needle)
                {
                    return Err(weft_store::StoreError::DuplicateKey {
                        key: format!("{key} (test: the disk is full)"),
                    });
                }
            }
        }
        self.inner.txn(compares, ops)
    }

    fn watch(
        &self,
        prefix: &str,
        from_revision: u64,
    ) -> Result<weft_store::Watcher, weft_store::StoreError> {
        self.inner.watch(prefix, from_revision)
    }

    fn revision(&self) -> Result<u64, weft_store::StoreError> {
        self.inner.revision()
    }
}

/// A store that, once armed, holds the caller of the first transaction
/// that creates a key (a `Compare::Absent`) after writing it, until
/// released: a deploy paused between its write and what follows.
pub struct GatedStore {
    inner: Arc<dyn weft_store::StateStore>,
    armed: std::sync::atomic::AtomicBool,
    reached: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl GatedStore {
    pub fn new(inner: Arc<dyn weft_store::StateStore>) -> Arc<GatedStore> {
        Arc::new(GatedStore {
            inner,
            armed: std::sync::atomic::AtomicBool::new(false),
            reached: Mutex::new(None),
            release: Mutex::new(None),
        })
    }

    /// Arms the gate: the first receiver says the gate was reached, the
    /// sender opens it.
    pub fn arm(&self) -> (std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
        let (reached_tx, reached_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel();
        *self.reached.lock().unwrap() = Some(reached_tx);
        *self.release.lock().unwrap() = Some(release_rx);
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        (reached_rx, release_tx)
    }
}

impl weft_store::StateStore for GatedStore {
    fn get(&self, key: &str) -> Result<Option<weft_store::KeyValue>, weft_store::StoreError> {
        self.inner.get(key)
    }

    fn range(
        &self,
        prefix: &str,
    ) -> Result<(Vec<weft_store::KeyValue>, u64), weft_store::StoreError> {
        self.inner.range(prefix)
    }

    fn txn(
        &self,
        compares: Vec<weft_store::Compare>,
        ops: Vec<weft_store::Op>,
    ) -> Result<weft_store::TxnResult, weft_store::StoreError> {
        let gated = compares
            .iter()
            .any(|c| matches!(c, weft_store::Compare::Absent(_)))
            && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst);
        let result = self.inner.txn(compares, ops);
        if gated {
            if let Some(tx) = self.reached.lock().unwrap().take() {
                let _ = tx.send(());
            }
            if let Some(rx) = self.release.lock().unwrap().take() {
                let _ = rx.recv();
            }
        }
        result
    }

    fn watch(
        &self,
        prefix: &str,
        from_revision: u64,
    ) -> Result<weft_store::Watcher, weft_store::StoreError> {
        self.inner.watch(prefix, from_revision)
    }

    fn revision(&self) -> Result<u64, weft_store::StoreError> {
        self.inner.revision()
    }
}
