//! The backend set of a VIP and the round-robin choice over it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One place the VIP forwards connections to: a role instance's endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Backend {
    /// Stable identity, the role instance id (`Web_IN_0`); [`crate::Vip::drain`]
    /// and [`crate::Vip::open_connections`] use it.
    pub id: String,
    /// Where the instance listens.
    pub addr: SocketAddr,
}

/// How a VIP spreads new connections over its backends (Azure's
/// `loadBalancerDistribution` on an input endpoint).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Distribution {
    /// Every new connection goes to the next backend in turn. (Azure's
    /// default hashes the 5-tuple, which spreads connections the same way
    /// without per-client stickiness; round-robin spreads them evenly even
    /// for a handful of clients.)
    #[default]
    RoundRobin,
    /// Connections from one client IP address go to the same backend while
    /// it stays in the set (`sourceIP` / `sourceIPProtocol`). Rendezvous
    /// hashing: when the set changes, only the clients of a removed backend
    /// (or the share a new backend takes) move.
    SourceIp,
}

/// How long a backend that failed a connect is tried only after the others
/// (passive health: a dead instance costs one failed connect per period, not
/// one per client connection, until the controller removes it).
pub(crate) const SUSPECT_FOR: Duration = Duration::from_secs(2);

/// A backend of the current list and its passive health.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) backend: Backend,
    /// Milliseconds since the set's epoch until which the backend is suspect
    /// (0: never failed).
    suspect_until_ms: AtomicU64,
}

/// The current backend list, replaced whole (never edited in place), plus
/// the round-robin cursor.
#[derive(Debug)]
pub(crate) struct BackendSet {
    current: RwLock<Arc<[Entry]>>,
    cursor: AtomicUsize,
    epoch: Instant,
}

impl Default for BackendSet {
    fn default() -> BackendSet {
        BackendSet {
            current: RwLock::new(Arc::new([])),
            cursor: AtomicUsize::new(0),
            epoch: Instant::now(),
        }
    }
}

impl BackendSet {
    /// Replaces the list atomically: every later [`BackendSet::snapshot`] sees
    /// the new one. Duplicate ids keep their first entry.
    /// A backend that stays keeps its health.
    pub(crate) fn replace(&self, backends: Vec<Backend>) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut unique: Vec<Entry> = Vec::with_capacity(backends.len());
        for backend in backends {
            if unique.iter().any(|u| u.backend.id == backend.id) {
                continue;
            }
            let suspect_until_ms = current
                .iter()
                .find(|e| e.backend == backend)
                .map_or(0, |e| e.suspect_until_ms.load(Ordering::Relaxed));
            unique.push(Entry {
                backend,
                suspect_until_ms: AtomicU64::new(suspect_until_ms),
            });
        }
        *current = unique.into();
    }

    pub(crate) fn snapshot(&self) -> Arc<[Entry]> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `backend` (same id and address) is in the current list.
    pub(crate) fn contains(&self, backend: &Backend) -> bool {
        self.snapshot().iter().any(|e| e.backend == *backend)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Marks `entry` suspect after a failed connect.
    pub(crate) fn suspect(&self, entry: &Entry) {
        let until = self.now_ms().saturating_add(SUSPECT_FOR.as_millis() as u64);
        entry.suspect_until_ms.store(until, Ordering::Relaxed);
    }

    /// Marks `backend` suspect, if it is still in the list: it accepted the
    /// connection but failed before answering.
    pub(crate) fn suspect_backend(&self, backend: &Backend) {
        if let Some(entry) = self.snapshot().iter().find(|e| e.backend == *backend) {
            self.suspect(entry);
        }
    }

    /// Marks `entry` healthy after a successful connect.
    pub(crate) fn healthy(&self, entry: &Entry) {
        if entry.suspect_until_ms.load(Ordering::Relaxed) != 0 {
            entry.suspect_until_ms.store(0, Ordering::Relaxed);
        }
    }

    /// The order in which a new connection tries the entries of `list`:
    /// round-robin over the healthy ones, starting one further than the
    /// previous connection, then the suspect ones; every entry once.
    pub(crate) fn try_order(
        &self,
        list: &[Entry],
        distribution: Distribution,
        client: IpAddr,
    ) -> Vec<usize> {
        let order: Vec<usize> = match distribution {
            Distribution::RoundRobin => self.order(list.len()).collect(),
            Distribution::SourceIp => affinity_order(list, client),
        };
        let now = self.now_ms();
        let (mut healthy, mut suspect) = (Vec::with_capacity(list.len()), Vec::new());
        for i in order {
            if list[i].suspect_until_ms.load(Ordering::Relaxed) > now {
                suspect.push(i);
            } else {
                healthy.push(i);
            }
        }
        healthy.extend(suspect);
        healthy
    }

    /// The order in which a new connection tries the backends of `list`:
    /// every backend once, starting one further than the previous connection.
    fn order(&self, len: usize) -> impl Iterator<Item = usize> {
        let start = if len == 0 {
            0
        } else {
            self.cursor.fetch_add(1, Ordering::Relaxed) % len
        };
        (0..len).map(move |i| (start + i) % len)
    }
}

/// The backends of `list` by decreasing weight of (client, backend id):
/// every client has its own stable preference order.
fn affinity_order(list: &[Entry], client: IpAddr) -> Vec<usize> {
    let weight = |entry: &Entry| {
        // SipHash with fixed keys: the same choice in every weft process.
        let mut hasher = DefaultHasher::new();
        client.hash(&mut hasher);
        entry.backend.id.hash(&mut hasher);
        hasher.finish()
    };
    let mut weighted: Vec<(u64, usize)> = list
        .iter()
        .enumerate()
        .map(|(i, e)| (weight(e), i))
        .collect();
    weighted.sort_unstable_by(|a, b| b.cmp(a));
    weighted.into_iter().map(|(_, i)| i).collect()
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

    fn rr(set: &BackendSet) -> Vec<usize> {
        set.try_order(
            &set.snapshot(),
            Distribution::RoundRobin,
            IpAddr::from([127, 0, 0, 1]),
        )
    }

    fn first_choice(set: &BackendSet, client: [u8; 4]) -> String {
        let list = set.snapshot();
        let order = set.try_order(&list, Distribution::SourceIp, IpAddr::from(client));
        list[order[0]].backend.id.clone()
    }

    #[test]
    fn source_ip_sticks_to_a_backend_and_only_a_removed_backend_s_clients_move() {
        let set = BackendSet::default();
        set.replace(vec![b("a", 1), b("b", 2), b("c", 3)]);
        let clients: Vec<[u8; 4]> = (1..=60).map(|n| [10, 0, 0, n]).collect();
        let before: Vec<String> = clients.iter().map(|c| first_choice(&set, *c)).collect();
        let again: Vec<String> = clients.iter().map(|c| first_choice(&set, *c)).collect();
        assert_eq!(before, again, "the same client goes to the same backend");
        for id in ["a", "b", "c"] {
            let share = before.iter().filter(|b| *b == id).count();
            assert!(
                (8..=32).contains(&share),
                "backend {id} got {share} of 60 clients"
            );
        }
        set.replace(vec![b("a", 1), b("c", 3)]);
        for (client, was) in clients.iter().zip(&before) {
            let now = first_choice(&set, *client);
            if was != "b" {
                assert_eq!(
                    &now, was,
                    "client {client:?} moved although its backend stayed"
                );
            }
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
        let ids: Vec<Backend> = set.snapshot().iter().map(|e| e.backend.clone()).collect();
        assert_eq!(ids, vec![b("a", 1), b("b", 2)]);
        assert!(set.contains(&b("a", 1)));
        assert!(!set.contains(&b("a", 3)), "same id, other address");
        set.replace(vec![]);
        assert!(!set.contains(&b("a", 1)));
    }

    #[test]
    fn a_suspect_backend_is_tried_last_and_keeps_its_state_across_replace() {
        let set = BackendSet::default();
        set.replace(vec![b("a", 1), b("b", 2), b("c", 3)]);
        set.suspect(&set.snapshot()[0]);
        let orders: Vec<Vec<usize>> = (0..3).map(|_| rr(&set)).collect();
        assert_eq!(orders, vec![vec![1, 2, 0], vec![1, 2, 0], vec![2, 1, 0]]);
        set.replace(vec![b("c", 3), b("a", 1)]);
        assert_eq!(rr(&set), vec![0, 1], "a is still suspect");
        set.healthy(&set.snapshot()[1]);
        let orders: Vec<Vec<usize>> = (0..2).map(|_| rr(&set)).collect();
        assert_eq!(
            orders,
            vec![vec![0, 1], vec![1, 0]],
            "plain round-robin again"
        );
    }
}
