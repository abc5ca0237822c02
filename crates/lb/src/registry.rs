//! The open connections of a VIP, by backend, so that a drain can wait for
//! them (or cut them) and a close can wait for every connection task.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Shared by the VIP handle and every connection task.
#[derive(Debug)]
pub(crate) struct Registry {
    open: Mutex<Open>,
    /// Live connection tasks (accepted, not yet finished), whether or not
    /// they reached a backend.
    tasks: AtomicUsize,
    /// Bumped whenever a connection or a task ends; waiters re-check then.
    changed: watch::Sender<()>,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    /// backend id → connection id → the connection's cut signal.
    by_backend: HashMap<String, HashMap<u64, Arc<Notify>>>,
}

impl Open {
    fn count(&self, backend: &str) -> usize {
        self.by_backend.get(backend).map_or(0, HashMap::len)
    }
}

/// An established connection to a backend; deregisters itself when dropped.
#[derive(Debug)]
pub(crate) struct Tracked {
    registry: Arc<Registry>,
    backend: String,
    id: u64,
    cut: Arc<Notify>,
}

impl Tracked {
    /// Resolves when a drain or close decides to cut this connection.
    pub(crate) async fn cut(&self) {
        self.cut.notified().await;
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        {
            let mut open = self.registry.lock();
            if let Some(conns) = open.by_backend.get_mut(&self.backend) {
                conns.remove(&self.id);
                if conns.is_empty() {
                    open.by_backend.remove(&self.backend);
                }
            }
        }
        self.registry.changed.send_replace(());
    }
}

/// A live connection task; counted until dropped.
#[derive(Debug)]
pub(crate) struct TaskGuard {
    registry: Arc<Registry>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.registry.tasks.fetch_sub(1, Ordering::AcqRel);
        self.registry.changed.send_replace(());
    }
}

impl Registry {
    pub(crate) fn new() -> Arc<Registry> {
        Arc::new(Registry {
            open: Mutex::new(Open::default()),
            tasks: AtomicUsize::new(0),
            changed: watch::Sender::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn task(self: &Arc<Self>) -> TaskGuard {
        self.tasks.fetch_add(1, Ordering::AcqRel);
        TaskGuard {
            registry: Arc::clone(self),
        }
    }

    pub(crate) fn register(self: &Arc<Self>, backend: &str) -> Tracked {
        let cut = Arc::new(Notify::new());
        let mut open = self.lock();
        let id = open.next_id;
        open.next_id += 1;
        open.by_backend
            .entry(backend.to_owned())
            .or_default()
            .insert(id, Arc::clone(&cut));
        drop(open);
        Tracked {
            registry: Arc::clone(self),
            backend: backend.to_owned(),
            id,
            cut,
        }
    }

    pub(crate) fn counts(&self) -> BTreeMap<String, usize> {
        self.lock()
            .by_backend
            .iter()
            .map(|(id, conns)| (id.clone(), conns.len()))
            .collect()
    }

    /// Signals every open connection to `backend` (every backend when
    /// `None`) to close; returns their ids.
    pub(crate) fn cut(&self, backend: Option<&str>) -> Vec<u64> {
        let open = self.lock();
        let mut ids = Vec::new();
        for (b, conns) in &open.by_backend {
            if backend.is_none_or(|want| want == b) {
                for (id, signal) in conns {
                    signal.notify_one();
                    ids.push(*id);
                }
            }
        }
        ids
    }

    /// Waits until no connection to `backend` is open, or `deadline`.
    /// Returns whether it got there, and the ids of every connection to
    /// `backend` seen open meanwhile (checked after every change).
    pub(crate) async fn wait_backend_idle(
        &self,
        backend: &str,
        deadline: Instant,
        seen: &mut std::collections::HashSet<u64>,
    ) -> bool {
        let mut changed = self.changed.subscribe();
        loop {
            {
                let open = self.lock();
                if let Some(conns) = open.by_backend.get(backend) {
                    seen.extend(conns.keys().copied());
                }
                if open.count(backend) == 0 {
                    return true;
                }
            }
            if !wait_change(&mut changed, deadline).await {
                return false;
            }
        }
    }

    /// Waits until no connection task is alive, or `deadline`.
    pub(crate) async fn wait_no_tasks(&self, deadline: Instant) -> bool {
        let mut changed = self.changed.subscribe();
        loop {
            if self.tasks.load(Ordering::Acquire) == 0 {
                return true;
            }
            if !wait_change(&mut changed, deadline).await {
                return false;
            }
        }
    }
}

/// Waits for the next change; false at the deadline.
async fn wait_change(changed: &mut watch::Receiver<()>, deadline: Instant) -> bool {
    // The sender lives as long as the registry, which the caller borrows.
    matches!(
        tokio::time::timeout_at(deadline, changed.changed()).await,
        Ok(Ok(()))
    )
}
