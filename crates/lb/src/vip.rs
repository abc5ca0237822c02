//! A VIP: one listening socket, its backend set, its connections.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::access::AccessControl;
use crate::backend::{Backend, BackendSet, Distribution};
use crate::error::LbError;
use crate::first;
use crate::proxy::{self, Ended};
use crate::registry::{Registry, TaskGuard, Tracked};
use crate::stats::{Counters, DrainReport, VipStats};

/// Pending connections the kernel queues before the VIP accepts them.
const BACKLOG: u32 = 4096;

/// How a VIP behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipConfig {
    /// How long a connect to one backend may take before that backend is
    /// skipped for the next one (2 s).
    pub connect_timeout: Duration,
    /// How long [`Vip::close`] waits for open connections before cutting
    /// them (30 s).
    pub drain_timeout: Duration,
    /// A connection on which no byte moved in either direction for this
    /// long is closed (Azure's load-balancer idle timeout: 4 minutes by
    /// default, `idleTimeoutInMinutes` 4 to 30 on the endpoint). `None`:
    /// never.
    pub idle_timeout: Option<Duration>,
    /// How new connections are spread over the backends.
    pub distribution: Distribution,
    /// Who may connect at first (see [`Vip::set_access_control`]): everyone
    /// by default.
    pub access_control: AccessControl,
    /// For request/response protocols (HTTP endpoints): when a backend dies
    /// with the client's latest request unanswered, on a connection that
    /// already carried earlier requests, send that request to the next
    /// backend and go on (up to 64 KiB of request). Off by default: replaying
    /// the middle of a stateful TCP session to a new backend would be wrong.
    pub replay_in_flight: bool,
}

impl Default for VipConfig {
    fn default() -> VipConfig {
        VipConfig {
            connect_timeout: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(4 * 60)),
            distribution: Distribution::RoundRobin,
            access_control: AccessControl::permit_all(),
            replay_in_flight: false,
        }
    }
}

/// A listening VIP. Cheap to clone; every clone is the same VIP. When the
/// last clone is dropped the VIP stops accepting (open connections go on
/// until they end); [`Vip::close`] also waits for them.
#[derive(Clone, Debug)]
pub struct Vip {
    handle: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    /// Held (async) while a close waits for the accept loop to end, so that
    /// a concurrent close also returns only once the port is free.
    accept_task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// What the accept loop and every connection task share.
#[derive(Debug)]
struct Shared {
    config: VipConfig,
    local_addr: SocketAddr,
    backends: BackendSet,
    access_control: RwLock<Arc<AccessControl>>,
    registry: Arc<Registry>,
    counters: Counters,
    /// When the "no backend" warning was last logged, in milliseconds since
    /// `started` (a VIP without backends under load would log per
    /// connection otherwise).
    last_no_backend_warning_ms: AtomicU64,
    started: Instant,
}

impl Shared {
    /// Whether to log the "no backend" warning now: at most once a second.
    fn no_backend_warning_due(&self) -> bool {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_no_backend_warning_ms.load(Ordering::Relaxed);
        (last == 0 || now.saturating_sub(last) >= 1000)
            && self
                .last_no_backend_warning_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl Vip {
    /// Binds `addr` (port 0 picks a free port, see [`Vip::local_addr`]) and
    /// starts accepting. The backend set starts empty: connections are
    /// closed (and counted in [`VipStats::no_backend`]) until
    /// [`Vip::set_backends`]. Must be called inside a tokio runtime.
    pub async fn bind(addr: SocketAddr, config: VipConfig) -> Result<Vip, LbError> {
        let listener = listen(addr).map_err(|e| LbError::bind(addr, e))?;
        let local_addr = listener.local_addr().map_err(|e| LbError::bind(addr, e))?;
        let access_control = RwLock::new(Arc::new(config.access_control.clone()));
        let shared = Arc::new(Shared {
            config,
            access_control,
            local_addr,
            backends: BackendSet::default(),
            registry: Registry::new(),
            counters: Counters::default(),
            last_no_backend_warning_ms: AtomicU64::new(0),
            started: Instant::now(),
        });
        let (stop, stopped) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        info!(vip = %local_addr, "vip listening");
        Ok(Vip {
            handle: Arc::new(Handle {
                shared,
                local_addr,
                stop,
                accept_task: tokio::sync::Mutex::new(Some(accept_task)),
            }),
        })
    }

    /// The address the VIP listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// Replaces the backend set atomically. From the moment this returns, a
    /// backend not in `backends` gets no new connection; its open
    /// connections are untouched (see [`Vip::drain`]). Duplicate ids keep
    /// their first entry.
    pub fn set_backends(&self, backends: Vec<Backend>) {
        let shared = &self.handle.shared;
        debug!(vip = %shared.local_addr, backends = ?backends.iter().map(|b| &b.id).collect::<Vec<_>>(), "backend set changed");
        shared.backends.replace(backends);
    }

    /// Replaces the access control list (a configuration update): it
    /// applies to every connection accepted from now on; open connections
    /// are left alone.
    pub fn set_access_control(&self, access_control: AccessControl) {
        let shared = &self.handle.shared;
        debug!(vip = %shared.local_addr, rules = access_control.rules().len(), "access control changed");
        *shared
            .access_control
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(access_control);
    }

    /// The current backend set.
    pub fn backends(&self) -> Vec<Backend> {
        self.handle
            .shared
            .backends
            .snapshot()
            .iter()
            .map(|e| e.backend.clone())
            .collect()
    }

    /// Waits until backend `id` has no open connection through this VIP, or
    /// until `timeout`, when its remaining connections are closed. Meant for
    /// a backend already removed with [`Vip::set_backends`] (a backend still
    /// in the set keeps receiving connections, and may never be idle).
    /// Connections are counted by backend id, whatever address they went to.
    pub async fn drain(&self, id: &str, timeout: Duration) -> DrainReport {
        let shared = &self.handle.shared;
        let deadline = Instant::now() + timeout;
        let mut seen = HashSet::new();
        if shared
            .registry
            .wait_backend_idle(id, deadline, &mut seen)
            .await
        {
            debug!(vip = %shared.local_addr, backend = id, finished = seen.len(), "backend drained");
            return DrainReport {
                finished: seen.len(),
                cut: 0,
            };
        }
        let cut = shared.registry.cut(Some(id));
        seen.extend(cut.iter().copied());
        // The cut connections close at once; wait for them to be gone so the
        // caller may stop the backend knowing nothing still uses it.
        let settle = Instant::now() + Duration::from_secs(1);
        let mut more = HashSet::new();
        shared
            .registry
            .wait_backend_idle(id, settle, &mut more)
            .await;
        warn!(vip = %shared.local_addr, backend = id, cut = cut.len(), "drain timed out, connections cut");
        DrainReport {
            finished: seen.len() - cut.len(),
            cut: cut.len(),
        }
    }

    /// Open connections by backend id: every backend of the current set
    /// (possibly with 0) and every other backend that still has some.
    pub fn open_connections(&self) -> BTreeMap<String, usize> {
        let shared = &self.handle.shared;
        let mut counts = shared.registry.counts();
        for e in shared.backends.snapshot().iter() {
            counts.entry(e.backend.id.clone()).or_insert(0);
        }
        counts
    }

    /// Counters since the VIP was bound.
    pub fn stats(&self) -> VipStats {
        self.handle.shared.counters.snapshot()
    }

    /// Stops accepting (the port is free when this returns), then waits up to
    /// [`VipConfig::drain_timeout`] for the open connections to end, and
    /// closes the ones left. Safe to call more than once, from any clone.
    pub async fn close(&self) {
        let shared = &self.handle.shared;
        self.handle.stop.send_replace(true);
        {
            let mut task = self.handle.accept_task.lock().await;
            if let Some(running) = task.as_mut() {
                // A panic in the accept loop has been logged by tokio
                // already; the listener is gone either way.
                let _ = running.await;
                *task = None;
            }
        }
        let deadline = Instant::now() + shared.config.drain_timeout;
        if !shared.registry.wait_no_tasks(deadline).await {
            let cut = shared.registry.cut(None);
            warn!(vip = %shared.local_addr, cut = cut.len(), "close timed out, connections cut");
            // Tasks still connecting end within the connect timeout.
            let settle = Instant::now() + shared.config.connect_timeout + Duration::from_secs(1);
            shared.registry.wait_no_tasks(settle).await;
        }
        info!(vip = %shared.local_addr, "vip closed");
    }
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Lets a restarted fabric bind again while old connections sit in
    // TIME_WAIT; a port someone listens on is still refused (EADDRINUSE).
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, peer)) => {
                Counters::bump(&shared.counters.accepted);
                let task = shared.registry.task();
                tokio::spawn(serve(Arc::clone(&shared), client, peer, task));
            }
            Err(e) => {
                warn!(vip = %shared.local_addr, error = %e, "accept failed");
                if is_resource_exhaustion(&e) {
                    // Out of file descriptors or memory: give open
                    // connections a moment to end instead of spinning.
                    tokio::select! {
                        _ = stop.wait_for(|stop| *stop) => break,
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            }
        }
    }
    debug!(vip = %shared.local_addr, "vip stopped accepting");
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

async fn serve(shared: Arc<Shared>, client: TcpStream, peer: SocketAddr, _task: TaskGuard) {
    let permitted = shared
        .access_control
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .permits(peer.ip());
    if !permitted {
        Counters::bump(&shared.counters.denied);
        debug!(vip = %shared.local_addr, %peer, "client refused by the access control list");
        return;
    }
    if let Err(e) = client.set_nodelay(true) {
        debug!(vip = %shared.local_addr, %peer, error = %e, "client gone before relaying");
        return;
    }
    // Until a backend answers, one that fails is replaced by the next with
    // the client's bytes replayed (see `first`).
    let mut client = client;
    let mut failed = Vec::new();
    let mut head = first::Head::default();
    let (backend, upstream, tracked) = loop {
        let Some((backend, mut upstream, tracked)) = connect(&shared, peer, &mut failed).await
        else {
            Counters::bump(&shared.counters.no_backend);
            if shared.no_backend_warning_due() {
                let stats = shared.counters.snapshot();
                warn!(vip = %shared.local_addr, %peer, backends = shared.backends.snapshot().len(), no_backend_total = stats.no_backend, "no backend could take the connection, closing it");
            } else {
                debug!(vip = %shared.local_addr, %peer, "no backend could take the connection, closing it");
            }
            return;
        };
        let exchange = first::exchange(&mut client, &mut upstream, &mut head);
        let outcome = tokio::select! {
            outcome = async {
                match shared.config.idle_timeout {
                    Some(t) => tokio::time::timeout(t, exchange).await.ok(),
                    None => Some(exchange.await),
                }
            } => outcome,
            () = tracked.cut() => {
                Counters::bump(&shared.counters.cut);
                debug!(vip = %shared.local_addr, %peer, backend = %backend.id, "connection cut before the backend answered");
                return;
            }
        };
        match outcome {
            Some(first::First::Answered | first::First::Committed) => {
                break (backend, upstream, tracked);
            }
            Some(first::First::BackendFailed(e)) => {
                Counters::bump(&shared.counters.replayed);
                debug!(vip = %shared.local_addr, %peer, backend = %backend.id, error = %e, "backend failed before answering, replaying to the next");
                shared.backends.suspect_backend(&backend);
                failed.push(backend);
            }
            Some(first::First::ClientGone) => return,
            None => {
                Counters::bump(&shared.counters.idle_closed);
                debug!(vip = %shared.local_addr, %peer, backend = %backend.id, "idle before the backend answered, closed");
                return;
            }
        }
    };
    Counters::bump(&shared.counters.proxied);
    let (mut backend, mut upstream, mut tracked) = (backend, upstream, tracked);
    let in_flight = shared
        .config
        .replay_in_flight
        .then(proxy::InFlight::default);
    loop {
        tokio::select! {
            relayed = proxy::relay(&mut client, &mut upstream, shared.config.idle_timeout, in_flight.as_ref()) => match relayed {
                Ok(Ended::Finished(up, down)) => debug!(vip = %shared.local_addr, %peer, backend = %backend.id, up, down, "connection ended"),
                Ok(Ended::Idle) => {
                    Counters::bump(&shared.counters.idle_closed);
                    debug!(vip = %shared.local_addr, %peer, backend = %backend.id, "idle connection closed");
                }
                Ok(Ended::BackendLost) => {
                    // The backend died with a request unanswered: the next
                    // backend gets the request, the connection goes on.
                    let Some((bytes, client_done)) = in_flight.as_ref().and_then(proxy::InFlight::take) else {
                        return;
                    };
                    shared.backends.suspect_backend(&backend);
                    failed.push(backend.clone());
                    Counters::bump(&shared.counters.replayed);
                    debug!(vip = %shared.local_addr, %peer, backend = %backend.id, "backend lost with a request in flight, replaying to the next");
                    let Some((next, mut next_stream, next_tracked)) = connect(&shared, peer, &mut failed).await else {
                        Counters::bump(&shared.counters.no_backend);
                        return;
                    };
                    let replayed = async {
                        next_stream.write_all(&bytes).await?;
                        if client_done {
                            next_stream.shutdown().await?;
                        }
                        io::Result::Ok(())
                    };
                    if replayed.await.is_err() {
                        return;
                    }
                    if let Some(t) = &in_flight {
                        t.restore(bytes, client_done);
                    }
                    (backend, upstream, tracked) = (next, next_stream, next_tracked);
                    continue;
                }
                Err(e) => debug!(vip = %shared.local_addr, %peer, backend = %backend.id, error = %e, "connection ended with an error"),
            },
            () = tracked.cut() => {
                Counters::bump(&shared.counters.cut);
                debug!(vip = %shared.local_addr, %peer, backend = %backend.id, "connection cut");
            }
        }
        return;
    }
}

/// How often one client connection starts over with the newest backend set
/// when the set changed under it (then the set changes faster than a
/// connect completes, and the connection is closed).
const SET_CHANGE_RETRIES: usize = 8;

/// Connects to the next backend in round-robin order that accepts, skipping
/// the ones that fail (and trying recently failed ones last). A backend
/// removed while the connect was in flight is let go, and the choice starts
/// over with the newest set.
async fn connect(
    shared: &Arc<Shared>,
    client: SocketAddr,
    failed: &mut Vec<Backend>,
) -> Option<(Backend, TcpStream, Tracked)> {
    'set: for _ in 0..SET_CHANGE_RETRIES {
        let list = shared.backends.snapshot();
        let order = shared
            .backends
            .try_order(&list, shared.config.distribution, client.ip());
        for i in order {
            let entry = &list[i];
            let backend = &entry.backend;
            if failed.contains(backend) {
                continue;
            }
            match tokio::time::timeout(
                shared.config.connect_timeout,
                TcpStream::connect(backend.addr),
            )
            .await
            {
                Ok(Ok(upstream)) => {
                    let tracked = shared.registry.register(&backend.id);
                    // Registered first, then checked: a drain that starts
                    // after the set changed either sees this connection or
                    // this check sees the new set.
                    if !shared.backends.contains(backend) {
                        debug!(vip = %shared.local_addr, backend = %backend.id, "backend removed while connecting, choosing again");
                        continue 'set;
                    }
                    if let Err(e) = upstream.set_nodelay(true) {
                        debug!(vip = %shared.local_addr, backend = %backend.id, error = %e, "backend connection failed");
                        Counters::bump(&shared.counters.refused_skipped);
                        failed.push(backend.clone());
                        continue;
                    }
                    shared.backends.healthy(entry);
                    return Some((backend.clone(), upstream, tracked));
                }
                Ok(Err(e)) => {
                    shared.backends.suspect(entry);
                    Counters::bump(&shared.counters.refused_skipped);
                    failed.push(backend.clone());
                    debug!(vip = %shared.local_addr, backend = %backend.id, addr = %backend.addr, error = %e, "backend refused, trying the next");
                }
                Err(_) => {
                    shared.backends.suspect(entry);
                    Counters::bump(&shared.counters.refused_skipped);
                    failed.push(backend.clone());
                    debug!(vip = %shared.local_addr, backend = %backend.id, addr = %backend.addr, "backend connect timed out, trying the next");
                }
            }
        }
        return None;
    }
    None
}
