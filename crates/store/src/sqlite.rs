//! The embedded store: one SQLite database, WAL, `synchronous=FULL`.
//!
//! Tables: `kv` (the current value of each key), `events` (every change,
//! by revision, for watches from a past revision; trimmed to the last
//! [`HISTORY`] revisions) and `meta` (the current and compacted revisions).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::watch::WatchSender;
use crate::{
    Compare, EventKind, KeyValue, Op, StateStore, StoreError, TxnResult, WatchEvent, Watcher,
};

/// Revisions of change history kept for watches from the past.
pub const HISTORY: u64 = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    revision INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    key TEXT NOT NULL,
    value BLOB,
    create_revision INTEGER NOT NULL,
    PRIMARY KEY (revision, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
";

/// A [`StateStore`] in one SQLite file.
pub struct SqliteStore {
    inner: Mutex<Inner>,
}

struct Inner {
    conn: Connection,
    watchers: Vec<WatchSender>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        tracing::debug!(path = %path.display(), "state store open");
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                watchers: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave SQLite half-written
        // (transactions roll back on drop), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn meta(tx: &Connection, name: &str) -> Result<u64, StoreError> {
    tx.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
        r.get::<_, i64>(0)
    })
    .map(|v| v as u64)
    .map_err(StoreError::sqlite("read meta"))
}

fn read_kv(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: row.get(0)?,
        value: row.get(1)?,
        create_revision: row.get::<_, i64>(2)? as u64,
        mod_revision: row.get::<_, i64>(3)? as u64,
    })
}

fn get_in(conn: &Connection, key: &str) -> Result<Option<KeyValue>, StoreError> {
    conn.query_row(
        "SELECT key, value, create_revision, mod_revision FROM kv WHERE key = ?1",
        [key],
        read_kv,
    )
    .optional()
    .map_err(StoreError::sqlite("get"))
}

fn compare_holds(tx: &Transaction<'_>, compare: &Compare) -> Result<bool, StoreError> {
    Ok(match compare {
        Compare::Absent(key) => get_in(tx, key)?.is_none(),
        Compare::ModRevision(key, rev) => {
            get_in(tx, key)?.is_some_and(|kv| kv.mod_revision == *rev)
        }
    })
}

/// Applies the ops at `revision`; returns the change events (empty when
/// nothing changed).
fn apply_ops(
    tx: &Transaction<'_>,
    ops: &[Op],
    revision: u64,
) -> Result<Vec<WatchEvent>, StoreError> {
    let mut events = Vec::new();
    for op in ops {
        let old = get_in(tx, op.key())?;
        let event = match op {
            Op::Put(key, value) => {
                let create = old.map_or(revision, |kv| kv.create_revision);
                tx.execute(
                    "INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key) DO UPDATE SET value = ?2, mod_revision = ?4",
                    params![key, value, create as i64, revision as i64],
                )
                .map_err(StoreError::sqlite("put"))?;
                WatchEvent {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        mod_revision: revision,
                        create_revision: create,
                    },
                }
            }
            Op::Delete(key) => {
                let Some(old) = old else { continue };
                tx.execute("DELETE FROM kv WHERE key = ?1", [key])
                    .map_err(StoreError::sqlite("delete"))?;
                WatchEvent {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: key.clone(),
                        value: Vec::new(),
                        mod_revision: revision,
                        create_revision: old.create_revision,
                    },
                }
            }
        };
        tx.execute(
            "INSERT INTO events (revision, idx, key, value, create_revision) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                revision as i64,
                events.len() as i64,
                event.kv.key,
                (event.kind == EventKind::Put).then_some(&event.kv.value),
                event.kv.create_revision as i64
            ],
        )
        .map_err(StoreError::sqlite("record event"))?;
        events.push(event);
    }
    Ok(events)
}

impl StateStore for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        get_in(&self.lock().conn, key)
    }

    fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64), StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction()
            .map_err(StoreError::sqlite("begin range"))?;
        let revision = meta(&tx, "revision")?;
        let mut out = Vec::new();
        {
            // Keys sort by bytes, so everything under `prefix` is contiguous
            // from `prefix` on.
            let mut stmt = tx
                .prepare_cached(
                    "SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ?1 ORDER BY key",
                )
                .map_err(StoreError::sqlite("range"))?;
            let rows = stmt
                .query_map([prefix], read_kv)
                .map_err(StoreError::sqlite("range"))?;
            for row in rows {
                let kv = row.map_err(StoreError::sqlite("range"))?;
                if !kv.key.starts_with(prefix) {
                    break;
                }
                out.push(kv);
            }
        }
        tx.finish().map_err(StoreError::sqlite("end range"))?;
        Ok((out, revision))
    }

    fn txn(&self, compares: Vec<Compare>, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        let mut seen = BTreeSet::new();
        if let Some(dup) = ops.iter().find(|op| !seen.insert(op.key())) {
            return Err(StoreError::DuplicateKey {
                key: dup.key().to_owned(),
            });
        }
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("begin txn"))?;
        let current = meta(&tx, "revision")?;
        for compare in &compares {
            if !compare_holds(&tx, compare)? {
                return Ok(TxnResult {
                    succeeded: false,
                    revision: current,
                });
            }
        }
        let revision = current + 1;
        let events = apply_ops(&tx, &ops, revision)?;
        if events.is_empty() {
            return Ok(TxnResult {
                succeeded: true,
                revision: current,
            });
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'revision'",
            [revision as i64],
        )
        .map_err(StoreError::sqlite("bump revision"))?;
        if revision % 1000 == 0 && revision > HISTORY {
            let floor = revision - HISTORY;
            tx.execute("DELETE FROM events WHERE revision < ?1", [floor as i64])
                .map_err(StoreError::sqlite("compact"))?;
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE name = 'compacted'",
                [floor as i64],
            )
            .map_err(StoreError::sqlite("compact"))?;
        }
        tx.commit().map_err(StoreError::sqlite("commit"))?;
        inner
            .watchers
            .retain(|w| events.iter().all(|event| w.offer(event)));
        Ok(TxnResult {
            succeeded: true,
            revision,
        })
    }

    fn watch(&self, prefix: &str, from_revision: u64) -> Result<Watcher, StoreError> {
        let mut inner = self.lock();
        let (sender, watcher) = WatchSender::channel(prefix);
        if from_revision > 0 {
            let compacted = meta(&inner.conn, "compacted")?;
            if from_revision < compacted {
                return Err(StoreError::Compacted {
                    requested: from_revision,
                    compacted,
                });
            }
            let mut stmt = inner
                .conn
                .prepare(
                    "SELECT revision, key, value, create_revision FROM events
                     WHERE revision >= ?1 ORDER BY revision, idx",
                )
                .map_err(StoreError::sqlite("watch history"))?;
            let rows = stmt
                .query_map([from_revision as i64], |r| {
                    let value: Option<Vec<u8>> = r.get(2)?;
                    Ok(WatchEvent {
                        kind: if value.is_some() {
                            EventKind::Put
                        } else {
                            EventKind::Delete
                        },
                        kv: KeyValue {
                            key: r.get(1)?,
                            value: value.unwrap_or_default(),
                            mod_revision: r.get::<_, i64>(0)? as u64,
                            create_revision: r.get::<_, i64>(3)? as u64,
                        },
                    })
                })
                .map_err(StoreError::sqlite("watch history"))?;
            for row in rows {
                sender.offer(&row.map_err(StoreError::sqlite("watch history"))?);
            }
        }
        inner.watchers.push(sender);
        Ok(watcher)
    }

    fn revision(&self) -> Result<u64, StoreError> {
        meta(&self.lock().conn, "revision")
    }
}
