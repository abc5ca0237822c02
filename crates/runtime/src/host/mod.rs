//! The host side of the runtime endpoint: what the agent serves to one role
//! instance over a Unix socket (see [`crate::protocol`] for the wire format).
//!
//! The agent owns one [`RuntimeHost`] per instance for the instance's whole
//! life, across process restarts. It sets what the instance sees
//! ([`RuntimeHost::set_info`], [`RuntimeHost::set_topology`]), tells it what
//! happens ([`RuntimeHost::publish`]) and watches what it says about itself
//! ([`RuntimeHost::status`]).
//!
//! A change the instance should hear about follows Azure's order:
//! `publish(Changing)` (or [`RuntimeHost::ask_changing`] when the instance
//! may cancel it), then `set_info` / `set_topology`, then
//! `publish(Changed)`, so that a role reading its settings on `Changed` sees
//! the new values.
//!
//! # Socket paths
//!
//! A Unix socket path is limited by `sun_path`: 108 bytes including the
//! terminating NUL, so at most 107 bytes. [`RuntimeHost::bind`] refuses a
//! longer path with `InvalidInput` instead of letting the kernel truncate it;
//! keep runtime sockets under a short directory (e.g. `<state>/run/<n>.sock`).
//! The socket file is made mode 0600 right after `bind(2)`; put it in a
//! directory only the agent's user can enter so nobody can connect in the
//! window between the two.

mod serve;

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::protocol::{Change, InstanceInfo, RoleStatus, RuntimeEvent, Topology};

/// The longest path a Unix socket can be bound to (`sun_path` is 108 bytes,
/// one of which is the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// How long [`RuntimeHost::shutdown`] lets open requests finish before it
/// cuts them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// One instance's runtime endpoint, served on a Unix socket until
/// [`RuntimeHost::shutdown`] (or drop, which stops serving at once).
pub struct RuntimeHost {
    shared: Arc<Shared>,
    path: PathBuf,
    /// `(st_dev, st_ino)` of the socket file this host created, so that
    /// shutdown never removes a file another host has since bound there.
    file_id: (u64, u64),
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

/// What the server tasks and the handle share.
pub(crate) struct Shared {
    pub(crate) info: RwLock<InstanceInfo>,
    pub(crate) topology: RwLock<Topology>,
    pub(crate) status: watch::Sender<Option<RoleStatus>>,
    pub(crate) subscribers: Mutex<Vec<Subscriber>>,
    /// Changing ids waiting for `POST /v1/changing/{id}` → where the
    /// answer goes.
    pub(crate) pending: Mutex<HashMap<u64, oneshot::Sender<bool>>>,
    next_changing: AtomicU64,
}

/// One open `/v1/events` stream.
pub(crate) struct Subscriber {
    tx: mpsc::UnboundedSender<RuntimeEvent>,
    /// Opened with `?changing=answer`: gets Changing ids and is waited for.
    answers: bool,
}

impl Shared {
    /// Registers a new `/v1/events` subscriber.
    pub(crate) fn subscribe(&self, answers: bool) -> mpsc::UnboundedReceiver<RuntimeEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.subscribers).push(Subscriber { tx, answers });
        rx
    }

    /// Delivers the answer to Changing `id`; false when nothing waits for
    /// it (unknown, answered already, or too late).
    pub(crate) fn answer_changing(&self, id: u64, cancel: bool) -> bool {
        match lock(&self.pending).remove(&id) {
            Some(tx) => tx.send(cancel).is_ok(),
            None => false,
        }
    }

    /// Records what the instance says; wakes watchers only on a change.
    pub(crate) fn set_status(&self, status: RoleStatus) {
        let changed = self.status.send_if_modified(|current| {
            let changed = *current != Some(status);
            *current = Some(status);
            changed
        });
        if changed {
            tracing::info!(?status, "instance reported its status");
        }
    }
}

impl RuntimeHost {
    /// Serves `info` (and an empty topology) on a Unix socket at `socket`
    /// (made absolute against the current directory).
    ///
    /// A socket file left at `socket` by a previous run that nobody answers
    /// on any more is replaced. A live endpoint there is `AddrInUse`; a file
    /// that is not a socket is `AlreadyExists` (never removed); a path longer
    /// than [`MAX_SOCKET_PATH`] bytes is `InvalidInput`. Must be called
    /// within a Tokio runtime.
    pub async fn bind(socket: &Path, info: InstanceInfo) -> io::Result<RuntimeHost> {
        // The instance runs in its approot, so it must get an absolute path.
        let socket = &std::path::absolute(socket)?;
        let len = socket.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "runtime socket path {} is {len} bytes; a unix socket path must be at most {MAX_SOCKET_PATH} bytes",
                    socket.display()
                ),
            ));
        }
        remove_stale(socket).await?;
        let listener = UnixListener::bind(socket).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("failed to bind runtime socket {}: {e}", socket.display()),
            )
        })?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "failed to make runtime socket {} private: {e}",
                    socket.display()
                ),
            )
        })?;
        let meta = std::fs::symlink_metadata(socket)?;
        let instance = info.instance_id.clone();
        let shared = Arc::new(Shared {
            info: RwLock::new(info),
            topology: RwLock::new(Topology::default()),
            status: watch::Sender::new(None),
            subscribers: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            next_changing: AtomicU64::new(1),
        });
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve::accept_loop(listener, shared.clone(), stopped));
        tracing::info!(instance = %instance, socket = %socket.display(), "runtime endpoint listening");
        Ok(RuntimeHost {
            shared,
            path: socket.to_path_buf(),
            file_id: (meta.dev(), meta.ino()),
            stop,
            server: Some(server),
        })
    }

    /// The value for the instance's `WEFT_RUNTIME`: `unix:<absolute path>`.
    pub fn address(&self) -> String {
        format!("unix:{}", self.path.display())
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces what `GET /v1/instance` answers.
    pub fn set_info(&self, info: InstanceInfo) {
        *write(&self.shared.info) = info;
    }

    /// Replaces what `GET /v1/topology` answers.
    pub fn set_topology(&self, topology: Topology) {
        *write(&self.shared.topology) = topology;
    }

    /// Sends `event` to every open `/v1/events` stream, in publish order.
    /// A subscriber that connects later does not see it.
    pub fn publish(&self, event: RuntimeEvent) {
        let mut subscribers = lock(&self.shared.subscribers);
        subscribers.retain(|s| s.tx.send(event.clone()).is_ok());
        tracing::debug!(
            ?event,
            subscribers = subscribers.len(),
            "runtime event published"
        );
    }

    /// Publishes a cancellable Changing for `changes` and waits, for at
    /// most `within`, for every stream opened with `?changing=answer` to
    /// answer it (streams that close count as not cancelling). Returns at
    /// the first cancel. Streams that do not answer see the event without
    /// an id. Nothing is applied: the caller then either applies the change
    /// (`set_info`, `publish(Changed)`) or recycles the instance.
    pub async fn ask_changing(&self, changes: Vec<Change>, within: Duration) -> ChangingOutcome {
        let mut waiting = FuturesUnordered::new();
        let mut ids = Vec::new();
        {
            let mut subscribers = lock(&self.shared.subscribers);
            subscribers.retain(|s| !s.tx.is_closed());
            for s in subscribers.iter() {
                let id = s
                    .answers
                    .then(|| self.shared.next_changing.fetch_add(1, Ordering::Relaxed));
                let event = RuntimeEvent::Changing {
                    id,
                    changes: changes.clone(),
                };
                let Some(id) = id else {
                    let _ = s.tx.send(event);
                    continue;
                };
                let (answer_tx, answer_rx) = oneshot::channel();
                lock(&self.shared.pending).insert(id, answer_tx);
                ids.push(id);
                if s.tx.send(event).is_err() {
                    continue;
                }
                let stream = s.tx.clone();
                waiting.push(async move {
                    tokio::select! {
                        answer = answer_rx => answer.ok(),
                        () = stream.closed() => None,
                    }
                });
            }
        }
        let mut outcome = ChangingOutcome {
            asked: waiting.len(),
            answered: 0,
            cancelled: false,
        };
        let collect = async {
            while let Some(answer) = waiting.next().await {
                if let Some(cancel) = answer {
                    outcome.answered += 1;
                    if cancel {
                        outcome.cancelled = true;
                        return;
                    }
                }
            }
        };
        let timed_out = tokio::time::timeout(within, collect).await.is_err();
        {
            let mut pending = lock(&self.shared.pending);
            for id in ids {
                pending.remove(&id);
            }
        }
        tracing::info!(
            ?changes,
            asked = outcome.asked,
            answered = outcome.answered,
            cancelled = outcome.cancelled,
            timed_out,
            "changing answered"
        );
        outcome
    }

    /// How many `/v1/events` streams are open (closed ones are noticed at
    /// the next [`RuntimeHost::publish`]).
    pub fn subscribers(&self) -> usize {
        let mut subscribers = lock(&self.shared.subscribers);
        subscribers.retain(|s| !s.tx.is_closed());
        subscribers.len()
    }

    /// What the instance last said about itself: `None` until it says
    /// anything (and again after [`RuntimeHost::clear_status`]). The
    /// receiver wakes only when the value changes.
    pub fn status(&self) -> watch::Receiver<Option<RoleStatus>> {
        self.shared.status.subscribe()
    }

    /// Forgets what the instance said: the agent calls this when it starts a
    /// new process for the instance, which has said nothing yet.
    pub fn clear_status(&self) {
        self.shared
            .status
            .send_if_modified(|current| current.take().is_some());
    }

    /// Stops serving: ends every event stream, lets open requests finish
    /// (for up to a second), and removes the socket file.
    pub async fn shutdown(mut self) {
        lock(&self.shared.subscribers).clear();
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.remove_socket_file();
    }

    fn remove_socket_file(&self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file_id);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(socket = %self.path.display(), error = %e, "failed to remove runtime socket");
        }
    }
}

impl Drop for RuntimeHost {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            lock(&self.shared.subscribers).clear();
            server.abort();
            self.remove_socket_file();
        }
    }
}

impl std::fmt::Debug for RuntimeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeHost")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// How a cancellable Changing went ([`RuntimeHost::ask_changing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangingOutcome {
    /// Streams that were asked (opened with `?changing=answer`).
    pub asked: usize,
    /// Streams that answered in time.
    pub answered: usize,
    /// Some stream answered `cancel: true`: recycle instead of applying.
    pub cancelled: bool,
}

/// Removes a socket file nobody answers on; refuses anything else.
async fn remove_stale(socket: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(socket) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "runtime socket path {} exists and is not a socket",
                socket.display()
            ),
        ));
    }
    match tokio::net::UnixStream::connect(socket).await {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "runtime socket {} is in use by a live endpoint",
                socket.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(socket = %socket.display(), "replacing a stale runtime socket");
            std::fs::remove_file(socket)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "failed to check the existing runtime socket {}: {e}",
                socket.display()
            ),
        )),
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves the
/// data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// How long shutdown waits for open requests.
pub(crate) fn shutdown_grace() -> Duration {
    SHUTDOWN_GRACE
}
