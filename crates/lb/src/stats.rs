//! Counters of a VIP and the result of a drain.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since the VIP was bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VipStats {
    /// Client connections accepted.
    pub accepted: u64,
    /// Client connections that reached a backend and were relayed.
    pub proxied: u64,
    /// Connect attempts to a backend that failed (refused, unreachable, timed
    /// out) and were skipped in favour of the next backend.
    pub refused_skipped: u64,
    /// Client connections closed because no backend could take them (empty
    /// set, or every backend failed).
    pub no_backend: u64,
    /// Established connections cut by a drain or close timeout.
    pub cut: u64,
    /// Connections closed by the idle timeout.
    pub idle_closed: u64,
    /// Client connections closed because the access control list refuses
    /// the client's address.
    pub denied: u64,
    /// Backends that accepted a connection but closed or failed before
    /// sending a byte; the client's bytes went to the next backend.
    pub replayed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) proxied: AtomicU64,
    pub(crate) refused_skipped: AtomicU64,
    pub(crate) no_backend: AtomicU64,
    pub(crate) cut: AtomicU64,
    pub(crate) idle_closed: AtomicU64,
    pub(crate) denied: AtomicU64,
    pub(crate) replayed: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> VipStats {
        VipStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            proxied: self.proxied.load(Ordering::Relaxed),
            refused_skipped: self.refused_skipped.load(Ordering::Relaxed),
            no_backend: self.no_backend.load(Ordering::Relaxed),
            cut: self.cut.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
        }
    }
}

/// What [`crate::Vip::drain`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport {
    /// Connections to the backend that were open when the drain began, or
    /// opened during it, and ended on their own before the timeout.
    pub finished: usize,
    /// Connections still open at the timeout, closed by the drain.
    pub cut: usize,
}
