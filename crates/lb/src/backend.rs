//! The backend set of a VIP and the round-robin choice over it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// One place the VIP forwards connections to: a role instance's endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Backend {
    /// Stable identity, the role instance id (`Web_IN_0`); [`crate::Vip::drain`]
    /// and [`crate::Vip::open_connections`] use it.
    pub id: String,
    /// Where the instance listens.
    pub addr: SocketAddr,
}

/// The current backend list, replaced whole (never edited in place), plus
/// the round-robin cursor.
#[derive(Debug, Default)]
pub(crate) struct BackendSet {
    current: RwLock<Arc<[Backend]>>,
    cursor: AtomicUsize,
}

impl BackendSet {
    /// Replaces the list atomically: every later [`BackendSet::snapshot`] sees
    /// the new one. Duplicate ids keep their first entry.
    pub(crate) fn replace(&self, backends: Vec<Backend>) {
        let mut unique: Vec<Backend> = Vec::with_capacity(backends.len());
        for b in backends {
            if !unique.iter().any(|u| u.id == b.id) {
                unique.push(b);
            }
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = unique.into();
    }

    pub(crate) fn snapshot(&self) -> Arc<[Backend]> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `backend` (same id and address) is in the current list.
    pub(crate) fn contains(&self, backend: &Backend) -> bool {
        self.snapshot().iter().any(|b| b == backend)
    }

    /// The order in which a new connection tries the backends of `list`:
    /// every backend once, starting one further than the previous connection.
    pub(crate) fn order(&self, len: usize) -> impl Iterator<Item = usize> {
        let start = if len == 0 {
            0
        } else {
            self.cursor.fetch_add(1, Ordering::Relaxed) % len
        };
        (0..len).map(move |i| (start + i) % len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: &str, port: u16) -> Backend {
        Backend {
            id: id.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    #[test]
    fn round_robin_starts_one_further_each_time_and_tries_everyone() {
        let set = BackendSet::default();
        let orders: Vec<Vec<usize>> = (0..4).map(|_| set.order(3).collect()).collect();
        assert_eq!(
            orders,
            vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]
        );
        assert_eq!(set.order(0).count(), 0);
    }

    #[test]
    fn replace_drops_duplicate_ids_and_contains_checks_the_address() {
        let set = BackendSet::default();
        set.replace(vec![b("a", 1), b("b", 2), b("a", 3)]);
        assert_eq!(&*set.snapshot(), &[b("a", 1), b("b", 2)]);
        assert!(set.contains(&b("a", 1)));
        assert!(!set.contains(&b("a", 3)), "same id, other address");
        set.replace(vec![]);
        assert!(!set.contains(&b("a", 1)));
    }
}
