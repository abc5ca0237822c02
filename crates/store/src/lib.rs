//! weft-store: the fabric's state store.
//!
//! [`StateStore`] is a small revisioned key-value interface shaped after
//! etcd's so that an etcd-backed store drops in when the fabric spans hosts:
//!
//! * every committed transaction that changes something gets the next
//!   store-wide **revision**; each key remembers the revision that created it
//!   and the one that last modified it;
//! * [`StateStore::txn`] is an atomic compare-and-swap: all [`Compare`]s hold
//!   and every [`Op`] is applied, or nothing is; it is durable when it returns;
//! * [`StateStore::watch`] streams every change under a prefix, in revision
//!   order, from a past revision on (as long as history is kept).
//!
//! [`SqliteStore`] is the embedded default: one SQLite database in WAL mode
//! with `synchronous=FULL`, so an acknowledged transaction survives SIGKILL
//! and power loss.

mod error;
mod sqlite;
mod watch;

pub use error::StoreError;
pub use sqlite::SqliteStore;
pub use watch::{EventKind, WatchEvent, Watcher};

/// A key, its value and the revisions that created and last modified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision of the transaction that last wrote this key.
    pub mod_revision: u64,
    /// The revision of the transaction that created this key (since it was
    /// last absent).
    pub create_revision: u64,
}

/// A condition a transaction checks before applying its operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent(String),
    /// The key exists and was last modified at exactly this revision.
    ModRevision(String, u64),
}

/// A write inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String, Vec<u8>),
    /// Deleting a key that does not exist is not an error and changes nothing.
    Delete(String),
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Put(key, _) | Op::Delete(key) => key,
        }
    }
}

/// The outcome of [`StateStore::txn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnResult {
    /// False when a compare failed; nothing was written then.
    pub succeeded: bool,
    /// The store's revision after the transaction (the transaction's own
    /// revision when it wrote something).
    pub revision: u64,
}

/// The fabric's durable state. Implementations are shared between tasks
/// (`Arc<dyn StateStore>`); every method is short and may block on disk I/O.
pub trait StateStore: Send + Sync + 'static {
    /// The current value of `key`.
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Every key starting with `prefix`, in key order, and the revision the
    /// snapshot was read at.
    fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64), StoreError>;

    /// Applies `ops` atomically if every compare holds. Durable on return.
    /// Two ops on the same key are refused ([`StoreError::DuplicateKey`]).
    fn txn(&self, compares: Vec<Compare>, ops: Vec<Op>) -> Result<TxnResult, StoreError>;

    /// Changes under `prefix` with a revision `>= from_revision`, in order;
    /// `from_revision = 0` means only changes after this call.
    fn watch(&self, prefix: &str, from_revision: u64) -> Result<Watcher, StoreError>;

    /// The store's current revision.
    fn revision(&self) -> Result<u64, StoreError>;
}
