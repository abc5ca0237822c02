//! The agent: one per host. Holds the instances' supervisors, the reports
//! channel and what is shared between instances (ports, topologies, logs),
//! and kills a previous run's leftovers when it opens a state directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use weft_runtime::host::MAX_SOCKET_PATH;
use weft_runtime::protocol::{RUNTIME_ENV, Topology};

use crate::cgroup::CgroupRoot;
use crate::config::{AgentConfig, CgroupMode};
use crate::error::AgentError;
use crate::instance;
use crate::key::InstanceKey;
use crate::limits::LimitRoots;
use crate::logs::LogBook;
use crate::ports::Ports;
use crate::procs;
use crate::protocol::{AgentApi, InstanceReport, InstanceSpec, LogPage, LogQuery};
use crate::sentinel::Sentinel;

/// How long opening waits for a previous run's processes to die.
const LEFTOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent of this host (a cheap handle; clones share everything).
///
/// [`Agent::open`] takes the state directory for itself (a second agent on
/// the same directory is refused) and first kills whatever a previous run
/// left running there, so an instance never runs twice.
#[derive(Clone)]
pub struct Agent {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) config: AgentConfig,
    pub(crate) state_dir: PathBuf,
    /// Runtime sockets (`<n>.sock`); short enough for `sun_path`.
    pub(crate) run_dir: PathBuf,
    pub(crate) cgroups: Option<CgroupRoot>,
    /// Where instances' CPU and memory limits go.
    pub(crate) limits: LimitRoots,
    /// Said once: an instance wanted a limit this host cannot apply.
    pub(crate) unlimited_warned: AtomicBool,
    pub(crate) ports: Ports,
    socket_seq: AtomicU64,
    reports: Mutex<BTreeMap<InstanceKey, InstanceReport>>,
    reports_tx: watch::Sender<Vec<InstanceReport>>,
    /// deployment id → topology
    pub(crate) topologies: watch::Sender<BTreeMap<String, Topology>>,
    logs: Mutex<BTreeMap<InstanceKey, Arc<LogBook>>>,
    /// approot path → the lock its one unpacker holds
    unpacking: Mutex<BTreeMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    /// instance → its supervisor's desired spec (`None`: remove it)
    pub(crate) instances:
        tokio::sync::Mutex<BTreeMap<InstanceKey, watch::Sender<Option<InstanceSpec>>>>,
    /// Supervisors still running.
    live: watch::Sender<usize>,
    /// The agent is shutting down: instances stop but keep their disks
    /// (a removal from the desired set deletes them).
    pub(crate) shut_down: AtomicBool,
    /// Shutdown completed: no process of any instance is left.
    stopped: AtomicBool,
    /// Held until shutdown: one agent per state directory.
    lock: Mutex<Option<Flock<File>>>,
    /// Kills the instances if this process dies without a shutdown.
    sentinel: Mutex<Option<Sentinel>>,
}

impl Agent {
    /// Opens (creating) the state directory, kills every process a previous
    /// agent run on it left behind, and returns an agent with no instances.
    /// Blocking for as long as leftovers take to die; call it before
    /// starting work, from inside or outside a Tokio runtime.
    pub fn open(config: AgentConfig) -> Result<Agent, AgentError> {
        fs::create_dir_all(&config.state_dir)
            .map_err(|e| AgentError::io("create the state directory", &config.state_dir, e))?;
        let state_dir = config
            .state_dir
            .canonicalize()
            .map_err(|e| AgentError::io("resolve the state directory", &config.state_dir, e))?;
        let lock_path = state_dir.join("agent.lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| AgentError::io("open", &lock_path, e))?;
        let lock = lock_state_dir(lock_file).ok_or_else(|| AgentError::StateDirInUse {
            path: state_dir.clone(),
        })?;

        let tag = state_tag(&state_dir);
        let run_dir = run_dir(&state_dir, &tag);
        // Limited instances run as another user and must reach their own
        // socket (each socket file is mode 0600, owned by its instance's
        // user), so the directory is then traversable but not listable.
        let mode = if config.limited_user.is_some() {
            0o711
        } else {
            0o700
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&run_dir)
            .map_err(|e| AgentError::io("create the runtime socket directory", &run_dir, e))?;
        fs::set_permissions(&run_dir, fs::Permissions::from_mode(mode))
            .map_err(|e| AgentError::io("set the permissions of", &run_dir, e))?;
        let cgroups = match config.cgroup {
            CgroupMode::Auto => CgroupRoot::detect(&tag),
            CgroupMode::Off => None,
        };
        let limits = match config.cgroup {
            CgroupMode::Auto => LimitRoots::detect(&tag, cgroups.as_ref()),
            CgroupMode::Off => LimitRoots::default(),
        };
        kill_leftovers(&state_dir, &run_dir, cgroups.as_ref(), &limits)?;
        remove_old_layout(&state_dir);
        for root in limits.v1_roots() {
            root.sweep_abandoned(Duration::from_secs(60));
        }
        let sentinel = match &cgroups {
            Some(root) => {
                root.sweep_abandoned(Duration::from_secs(60));
                let v1: Vec<&Path> = limits.v1_roots().iter().map(|r| r.path()).collect();
                match Sentinel::start(root.path(), &v1, &lock) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(error = %e, "no sentinel: instances would outlive a killed agent until the next open");
                        None
                    }
                }
            }
            None => None,
        };
        tracing::info!(
            state_dir = %state_dir.display(),
            run_dir = %run_dir.display(),
            cgroup = cgroups.as_ref().map(|c| c.path().display().to_string()),
            limits = %limits.describe(),
            "agent opened"
        );
        Ok(Agent {
            shared: Arc::new(Shared {
                config,
                state_dir,
                run_dir,
                cgroups,
                limits,
                unlimited_warned: AtomicBool::new(false),
                ports: Ports::default(),
                socket_seq: AtomicU64::new(0),
                reports: Mutex::new(BTreeMap::new()),
                reports_tx: watch::Sender::new(Vec::new()),
                topologies: watch::Sender::new(BTreeMap::new()),
                logs: Mutex::new(BTreeMap::new()),
                unpacking: Mutex::new(BTreeMap::new()),
                instances: tokio::sync::Mutex::new(BTreeMap::new()),
                live: watch::Sender::new(0),
                shut_down: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
                lock: Mutex::new(Some(lock)),
                sentinel: Mutex::new(sentinel),
            }),
        })
    }

    /// The canonical state directory.
    pub fn state_dir(&self) -> &Path {
        &self.shared.state_dir
    }

    /// Whether instances run in their own cgroups (else process groups and
    /// a `/proc` scan catch their processes).
    pub fn uses_cgroups(&self) -> bool {
        self.shared.cgroups.is_some()
    }

    /// The directory of instance `instance_id` of deployment
    /// `deployment_id` (`local/`, `logs/`).
    pub fn instance_dir(&self, deployment_id: &str, instance_id: &str) -> PathBuf {
        self.shared.instance_dir(deployment_id, instance_id)
    }

    async fn apply_inner(&self, desired: Vec<InstanceSpec>) -> Result<(), AgentError> {
        let mut ids = BTreeSet::new();
        for spec in &desired {
            check_spec(spec)?;
            if !ids.insert(InstanceKey::new(&spec.deployment_id, &spec.instance_id)) {
                return Err(AgentError::DuplicateInstance {
                    deployment_id: spec.deployment_id.clone(),
                    instance_id: spec.instance_id.clone(),
                });
            }
        }
        let mut instances = self.shared.instances.lock().await;
        for (id, tx) in instances.iter() {
            if !ids.contains(id) {
                tx.send_replace(None);
            }
        }
        for spec in desired {
            let key = InstanceKey::new(&spec.deployment_id, &spec.instance_id);
            match instances.get(&key) {
                Some(tx) if !tx.is_closed() => {
                    tx.send_if_modified(|current| {
                        let changed = current.as_ref() != Some(&spec);
                        *current = Some(spec);
                        changed
                    });
                }
                _ => {
                    let (tx, rx) = watch::channel(Some(spec));
                    instances.insert(key.clone(), tx);
                    self.shared.live.send_modify(|n| *n += 1);
                    tokio::spawn(instance::supervise(self.shared.clone(), key, rx));
                }
            }
        }
        Ok(())
    }
}

impl AgentApi for Agent {
    type Error = AgentError;

    async fn apply(&self, desired: Vec<InstanceSpec>) -> Result<(), AgentError> {
        if self.shared.shut_down.load(Ordering::SeqCst) {
            return Err(AgentError::ShutDown);
        }
        self.apply_inner(desired).await
    }

    fn reports(&self) -> watch::Receiver<Vec<InstanceReport>> {
        self.shared.reports_tx.subscribe()
    }

    async fn set_topology(
        &self,
        deployment_id: &str,
        topology: Topology,
    ) -> Result<(), AgentError> {
        self.shared.topologies.send_if_modified(|all| {
            if all.get(deployment_id) == Some(&topology) {
                return false;
            }
            all.insert(deployment_id.to_owned(), topology);
            true
        });
        Ok(())
    }

    async fn logs(
        &self,
        deployment_id: &str,
        instance_id: &str,
        query: LogQuery,
    ) -> Result<LogPage, AgentError> {
        check_id("a deployment id", deployment_id)?;
        check_id("an instance id", instance_id)?;
        let key = InstanceKey::new(deployment_id, instance_id);
        let known = self
            .shared
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let failed = |source: std::io::Error| AgentError::Logs {
            deployment_id: deployment_id.to_owned(),
            instance_id: instance_id.to_owned(),
            source,
        };
        if let Some(book) = known {
            return book.query(&query).map_err(failed);
        }
        let dir = self
            .shared
            .instance_dir(deployment_id, instance_id)
            .join("logs");
        if !dir.is_dir() {
            return Err(AgentError::UnknownInstance {
                deployment_id: deployment_id.to_owned(),
                instance_id: instance_id.to_owned(),
            });
        }
        let book = self.shared.log_book(&key).map_err(failed)?;
        book.query(&query).map_err(failed)
    }

    async fn shutdown(&self) -> Result<(), AgentError> {
        self.shared.shut_down.store(true, Ordering::SeqCst);
        self.apply_inner(Vec::new()).await?;
        let mut live = self.shared.live.subscribe();
        let _ = live.wait_for(|n| *n == 0).await;
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.dismiss_sentinel();
        self.shared.remove_roots();
        // Nothing runs any more: another agent may take the directory,
        // even while handles of this one linger.
        self.shared
            .lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        tracing::info!(state_dir = %self.shared.state_dir.display(), "agent shut down");
        Ok(())
    }
}

impl Shared {
    pub(crate) fn instance_dir(&self, deployment_id: &str, instance_id: &str) -> PathBuf {
        self.state_dir
            .join("instances")
            .join(deployment_id)
            .join(instance_id)
    }

    /// A fresh runtime socket path.
    pub(crate) fn next_socket(&self) -> PathBuf {
        let n = self.socket_seq.fetch_add(1, Ordering::Relaxed);
        self.run_dir.join(format!("{n}.sock"))
    }

    /// The instance's log book, opened on first use and kept for the
    /// agent's life (logs outlive the instance).
    pub(crate) fn log_book(&self, key: &InstanceKey) -> std::io::Result<Arc<LogBook>> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(book) = logs.get(key) {
            return Ok(book.clone());
        }
        let book = Arc::new(LogBook::open(
            &self
                .instance_dir(&key.deployment_id, &key.instance_id)
                .join("logs"),
            self.config.log_rotate_bytes,
            self.config.log_keep,
        )?);
        logs.insert(key.clone(), book.clone());
        Ok(book)
    }

    /// The lock that makes instances of one role version wait for a single
    /// unpack of their shared approot instead of each unpacking it.
    pub(crate) fn unpack_lock(&self, approot: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut unpacking = self.unpacking.lock().unwrap_or_else(|e| e.into_inner());
        unpacking.entry(approot.to_path_buf()).or_default().clone()
    }

    /// Publishes a report when it differs from the last one.
    pub(crate) fn set_report(&self, report: &InstanceReport) {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        let key = InstanceKey::new(&report.deployment_id, &report.instance_id);
        if reports.get(&key) == Some(report) {
            return;
        }
        tracing::debug!(deployment = %report.deployment_id, instance = %report.instance_id, status = ?report.status, ready = report.ready, pid = report.pid, "instance report");
        reports.insert(key, report.clone());
        self.reports_tx
            .send_replace(reports.values().cloned().collect());
    }

    pub(crate) fn remove_report(&self, key: &InstanceKey) {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        if reports.remove(key).is_some() {
            self.reports_tx
                .send_replace(reports.values().cloned().collect());
        }
    }

    pub(crate) fn supervisor_ended(&self) {
        self.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Everything of a spec that names a path on this host.
fn check_spec(spec: &InstanceSpec) -> Result<(), AgentError> {
    check_id("a deployment id", &spec.deployment_id)?;
    check_id("an instance id", &spec.instance_id)?;
    let invalid = |reason: String| AgentError::InvalidSpec {
        instance_id: spec.instance_id.clone(),
        reason,
    };
    weft_package::check_role_name(&spec.role)
        .map_err(|why| invalid(format!("role name `{}`: {why}", spec.role)))?;
    let digest = &spec.package.digest;
    if digest.is_empty() || digest.len() > 128 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "package digest `{digest}` is not hexadecimal"
        )));
    }
    for resource in &spec.local_resources {
        weft_package::check_role_name(&resource.name)
            .map_err(|why| invalid(format!("local resource name `{}`: {why}", resource.name)))?;
    }
    Ok(())
}

impl Drop for Shared {
    /// The last handle and supervisor are gone (the runtime they ran in was
    /// dropped): nothing supervises the instances any more, so none may
    /// keep running.
    fn drop(&mut self) {
        self.dismiss_sentinel();
        if self.stopped.load(Ordering::SeqCst) {
            // Everything stopped; the directory may already be another's.
            return;
        }
        if let Err(e) = kill_leftovers(
            &self.state_dir,
            &self.run_dir,
            self.cgroups.as_ref(),
            &self.limits,
        ) {
            tracing::error!(error = %e, "failed to kill the instances of a dropped agent");
        }
        self.remove_roots();
    }
}

impl Shared {
    /// Removes the agent's (empty) root groups, v2 and v1.
    fn remove_roots(&self) {
        let v1 = self.limits.v1_roots();
        for root in self.cgroups.iter().chain(v1) {
            let _ = fs::remove_dir(root.path());
        }
    }

    fn dismiss_sentinel(&self) {
        if let Some(s) = self
            .sentinel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            s.dismiss();
        }
    }
}

/// Deployment and instance ids name directories, cgroups and log books.
fn check_id(what: &str, id: &str) -> Result<(), AgentError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AgentError::InvalidSpec {
            instance_id: id.to_owned(),
            reason: format!("{what} is 1 to 128 ASCII letters, digits, `_`, `-` or `.`"),
        })
    }
}

/// A short, stable name for the state directory (cgroup and fallback
/// socket directory names).
fn state_tag(state_dir: &Path) -> String {
    let digest = Sha256::digest(state_dir.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..6])
}

/// `<state>/run` when a socket path there fits `sun_path`, else a short
/// directory under `/tmp` named after the state directory.
fn run_dir(state_dir: &Path, tag: &str) -> PathBuf {
    let preferred = state_dir.join("run");
    // `/<20 digits>.sock`
    if preferred.as_os_str().len() + 26 <= MAX_SOCKET_PATH {
        preferred
    } else {
        PathBuf::from(format!("/tmp/weft-{tag}"))
    }
}

/// Removes instance directories of the layout before instances were keyed
/// per deployment (`instances/<instance>/`, told apart by the file
/// `logs/stdout.log` directly inside): nothing can ask for them any more.
/// Their processes are already killed (cgroups and runtime markers do not
/// depend on the layout).
fn remove_old_layout(state_dir: &Path) {
    let Ok(entries) = fs::read_dir(state_dir.join("instances")) else {
        return;
    };
    for e in entries.flatten() {
        let dir = e.path();
        if dir.join("logs").join("stdout.log").is_file() {
            match crate::prepare::remove_tree(&dir) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "removed an instance directory of the old layout")
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "failed to remove an instance directory of the old layout")
                }
            }
        }
    }
}

/// Kills what a previous run on this state directory left: every process
/// in its cgroups (v2, and the v1 groups of resource limits), every process
/// carrying its runtime socket directory in `WEFT_RUNTIME`; removes stale
/// sockets and groups.
/// How long `Agent::open` waits for the state directory's lock: a killed
/// agent's sentinel holds it while it cleans up (bounded at about 2 s), so
/// a new agent never creates groups the old sentinel is still removing.
const STATE_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Takes the state directory's lock, waiting while a previous run's
/// sentinel finishes; `None` when another agent holds it.
fn lock_state_dir(file: File) -> Option<Flock<File>> {
    let deadline = std::time::Instant::now() + STATE_LOCK_WAIT;
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Some(lock),
            Err((back, _)) if std::time::Instant::now() < deadline => {
                file = back;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return None,
        }
    }
}

fn kill_leftovers(
    state_dir: &Path,
    run_dir: &Path,
    cgroups: Option<&CgroupRoot>,
    limits: &LimitRoots,
) -> Result<(), AgentError> {
    let leftovers = |reason: String| AgentError::Leftovers {
        state_dir: state_dir.to_path_buf(),
        reason,
    };
    for root in cgroups.into_iter().chain(limits.v1_roots()) {
        for group in root.existing() {
            let pids = group.pids().len();
            if pids > 0 {
                tracing::warn!(cgroup = %group.path().display(), pids, "killing leftovers of a previous agent run");
            }
            group
                .kill_and_remove(LEFTOVER_TIMEOUT)
                .map_err(|e| leftovers(format!("{}: {e}", group.path().display())))?;
        }
    }
    let marker = format!("unix:{}/", run_dir.display());
    let found = procs::marked(RUNTIME_ENV, &marker).len();
    if found > 0 {
        tracing::warn!(
            processes = found,
            "killing leftovers of a previous agent run"
        );
        let alive = procs::kill_marked(RUNTIME_ENV, &marker, LEFTOVER_TIMEOUT);
        if alive > 0 {
            return Err(leftovers(format!(
                "{alive} processes still alive after SIGKILL"
            )));
        }
    }
    if let Ok(entries) = fs::read_dir(run_dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "sock") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}
