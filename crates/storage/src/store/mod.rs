//! Persistence: an embedded SQLite database (WAL, `synchronous=FULL`) for
//! metadata and a directory of immutable data files for blob bytes.
//!
//! Write protocol: bytes go to `tmp/<uuid>`, are fsynced, renamed to
//! `blobs/<xx>/<uuid>` and the directory fsynced; only then is the row that
//! references the file committed, and only after that commit is the request
//! acknowledged. A crash leaves at worst an unreferenced file, never a row
//! pointing at missing bytes. Files no longer referenced by any row are
//! removed after the commit that dropped the last reference.
//!
//! Table entities are rows keyed (account, table, PartitionKey, RowKey);
//! their writes go through a group commit (concurrent writes share one
//! transaction and one fsync, each in its own savepoint) and their scans
//! run on read-only connections, so a long query never holds up writers.

pub(crate) mod blobs;
mod blocks;
mod checkpoint;
mod listing;
pub use blobs::read_lease_ok;
pub use group_commit::Commit;
pub(crate) mod containers;
mod group_commit;
mod queues;
mod schema;
pub(crate) mod tables;

pub use tables::{EntityPage, EntityQuery, EntityWrite, IfMatch};

pub use queues::{ListedQueues, Message, QueueProps};
mod snapshots;

pub use snapshots::DeleteSnapshots;

pub use blobs::{
    AppendConditions, BlobProps, BlobType, ContentHeaders, CopyInfo, Extent, NewBlob, ReadBlob,
};
pub use blocks::{BlockInfo, BlockList};
pub use containers::{ContainerProps, ListedContainers};
pub use listing::{ListEntry, ListedBlobs};

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use crate::api_error::ApiError;
use crate::error::StorageError;

/// Data ids with this prefix name bytes kept in the database itself
/// (small blobs: one fsync, the commit's, instead of three).
pub const INLINE_PREFIX: &str = "inline:";

/// Largest Put Blob body stored inline in the database.
pub const INLINE_MAX: u64 = 64 * 1024;

/// Prepared statements kept per connection (rusqlite keeps 16 by default;
/// the services use more than that, and re-preparing costs more than
/// running most of them).
const STATEMENT_CACHE: usize = 256;

/// The metadata database and the data directory.
pub struct Store {
    /// The write connection and the group-commit queue in front of it.
    writer: std::sync::Arc<group_commit::Writer>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    checkpoint_thread: Option<std::thread::JoinHandle<()>>,
    /// Read-only connections for long scans (table queries), so a scan
    /// never holds up writers (WAL lets readers and the writer overlap).
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    blobs_dir: PathBuf,
    tmp_dir: PathBuf,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io {
        action,
        path,
        source,
    }
}

/// Maps a database failure inside a request to a 500.
pub(crate) fn db(e: rusqlite::Error) -> ApiError {
    ApiError::internal(format!("database: {e}"))
}

impl Store {
    /// Opens (or creates) the store under `dir`; leftovers of interrupted
    /// uploads in `tmp/` are removed.
    pub fn open(dir: &Path) -> Result<Store, StorageError> {
        let blobs_dir = dir.join("blobs");
        let tmp_dir = dir.join("tmp");
        for d in [dir, &blobs_dir, &tmp_dir] {
            fs::create_dir_all(d).map_err(io_err("create directory", d))?;
        }
        for entry in fs::read_dir(&tmp_dir).map_err(io_err("read directory", &tmp_dir))? {
            let entry = entry.map_err(io_err("read directory", &tmp_dir))?;
            let _ = fs::remove_file(entry.path());
        }
        let db_path = dir.join("metadata.sqlite");
        let conn = Connection::open(&db_path).map_err(|source| StorageError::OpenDatabase {
            path: db_path.clone(),
            source,
        })?;
        schema::init(&conn).map_err(|source| StorageError::OpenDatabase {
            path: db_path.clone(),
            source,
        })?;
        // Most checkpointing runs on its own thread and connection (see `checkpoint`).
        let checkpoint_conn = Connection::open(&db_path)
            .and_then(|c| {
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok(c)
            })
            .map_err(|source| StorageError::OpenDatabase {
                path: db_path.clone(),
                source,
            })?;
        let n = std::thread::available_parallelism().map_or(8, |n| (n.get() * 4).clamp(8, 16));
        let readers = (0..n)
            .map(|_| {
                let r = Connection::open_with_flags(
                    &db_path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                r.busy_timeout(std::time::Duration::from_secs(5))?;
                r.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                // No mmap: every reader mapping the database would count
                // its pages again in the process's resident memory.
                r.pragma_update(None, "cache_size", -4096)?;
                Ok(Mutex::new(r))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|source| StorageError::OpenDatabase {
                path: db_path,
                source,
            })?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::WAL_PAGES)
            .map_err(|source| StorageError::OpenDatabase {
                path: dir.join("metadata.sqlite"),
                source,
            })?;
        let writer = group_commit::Writer::new(conn);
        let writer_thread = writer
            .start()
            .map_err(io_err("start the commit thread for", dir))?;
        let checkpoint_thread = writer
            .checkpointer
            .start(checkpoint_conn)
            .map_err(io_err("start the checkpoint thread for", dir))?;
        Ok(Store {
            writer,
            writer_thread: Some(writer_thread),
            checkpoint_thread: Some(checkpoint_thread),
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            blobs_dir,
            tmp_dir,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.writer.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A read-only connection (a free one if any, else the next in turn).
    pub(crate) fn read_lock(&self) -> MutexGuard<'_, Connection> {
        for r in &self.readers {
            if let Ok(g) = r.try_lock() {
                return g;
            }
        }
        let i = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % self.readers.len();
        self.readers[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh path in `tmp/` to stream an upload into.
    pub fn temp_path(&self) -> PathBuf {
        self.tmp_dir.join(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Where a data file lives.
    pub fn file_path(&self, id: &str) -> PathBuf {
        self.blobs_dir.join(&id[..2]).join(id)
    }

    /// Moves a fully written and fsynced temp file into the data directory
    /// and makes the move durable; returns the file's id.
    pub fn adopt_temp(&self, tmp: &Path) -> std::io::Result<String> {
        let id = tmp
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.len() >= 2)
            .ok_or_else(|| std::io::Error::other("temp file has no usable name"))?
            .to_string();
        let dir = self.blobs_dir.join(&id[..2]);
        if !dir.exists() {
            fs::create_dir_all(&dir)?;
            fs::File::open(&self.blobs_dir)?.sync_all()?;
        }
        fs::rename(tmp, dir.join(&id))?;
        fs::File::open(&dir)?.sync_all()?;
        Ok(id)
    }

    /// Writes a small byte string as a data file (for tests and small bodies).
    pub fn write_file(&self, bytes: &[u8]) -> std::io::Result<String> {
        let tmp = self.temp_path();
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        self.adopt_temp(&tmp)
    }

    /// Removes data files (ids from [`unreferenced`]) after the commit that
    /// dropped their last reference.
    pub(crate) fn remove_files(&self, ids: Vec<String>) {
        for id in ids {
            let p = self.file_path(&id);
            if let Err(e) = fs::remove_file(&p) {
                tracing::warn!(path = %p.display(), error = %e, "failed to remove unreferenced data file");
            }
        }
    }

    /// Removes the data files among `candidates` that no row references.
    pub(crate) fn collect_garbage(&self, conn: &Connection, candidates: Vec<String>) {
        for id in candidates {
            let referenced: Result<bool, _> = conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM extents WHERE file=?1) OR EXISTS(SELECT 1 FROM uncommitted WHERE file=?1)
                 OR EXISTS(SELECT 1 FROM snapshot_extents WHERE file=?1)",
                [&id],
                |r| r.get(0),
            );
            if let Ok(false) = referenced {
                if id.starts_with(INLINE_PREFIX) {
                    if let Err(e) = conn.execute("DELETE FROM inline_bytes WHERE id=?1", [&id]) {
                        tracing::warn!(id = %id, error = %e, "failed to remove unreferenced inline data");
                    }
                    continue;
                }
                let p = self.file_path(&id);
                if let Err(e) = fs::remove_file(&p) {
                    tracing::warn!(path = %p.display(), error = %e, "failed to remove unreferenced data file");
                }
            }
        }
    }

    /// Discards a temp file of a failed upload.
    pub fn discard_temp(&self, tmp: &Path) {
        let _ = fs::remove_file(tmp);
    }
}

/// How an internal error's message starts when a data file vanished under
/// a reader (the blob was overwritten meanwhile: read it again).
const GONE: &str = "data file gone: ";

/// Inside a write transaction: drops the inline bytes among `candidates`
/// that no row references any more and returns the data files likewise
/// unreferenced, for [`Store::remove_files`] once the transaction committed.
pub(crate) fn unreferenced(
    conn: &Connection,
    candidates: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    let mut files = Vec::new();
    for id in candidates {
        let referenced: bool = conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM extents WHERE file=?1) OR EXISTS(SELECT 1 FROM uncommitted WHERE file=?1)
                 OR EXISTS(SELECT 1 FROM snapshot_extents WHERE file=?1)",
            )
            .map_err(db)?
            .query_row([&id], |r| r.get(0))
            .map_err(db)?;
        if referenced {
            continue;
        }
        if id.starts_with(INLINE_PREFIX) {
            conn.prepare_cached("DELETE FROM inline_bytes WHERE id=?1")
                .map_err(db)?
                .execute([&id])
                .map_err(db)?;
        } else {
            files.push(id);
        }
    }
    Ok(files)
}

impl Drop for Store {
    /// Commits what is queued, then stops the commit thread.
    fn drop(&mut self) {
        self.writer.close();
        if let Some(t) = self.writer_thread.take() {
            let _ = t.join();
        }
        self.writer.checkpointer.close();
        if let Some(t) = self.checkpoint_thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::Conditions;

    fn files_under(dir: &Path) -> usize {
        walk(dir)
    }

    fn walk(dir: &Path) -> usize {
        fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Data files live exactly as long as something references them:
    /// overwriting and deleting blobs leaves no orphan behind, and a copy
    /// keeps shared bytes alive.
    #[test]
    fn data_files_are_collected_when_unreferenced() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let blobs = tmp.path().join("blobs");
        let none = Conditions::default();
        store.create_container("a", "c", &[], None).unwrap();
        let f1 = store.write_file(b"one").unwrap();
        store
            .put_blob("a", "c", "b", &none, NewBlob::default(), Some((f1, 3)))
            .unwrap();
        assert_eq!(files_under(&blobs), 1);
        store
            .copy_blob("a", ("a", "c", "b"), "c", "copy", &none, None, None)
            .unwrap();
        let f2 = store.write_file(b"two!").unwrap();
        store
            .put_blob("a", "c", "b", &none, NewBlob::default(), Some((f2, 4)))
            .unwrap();
        assert_eq!(
            files_under(&blobs),
            2,
            "the copy still holds the first file"
        );
        store.delete_blob("a", "c", "copy", &none, None).unwrap();
        assert_eq!(files_under(&blobs), 1);
        store.delete_container("a", "c", &none).unwrap();
        assert_eq!(files_under(&blobs), 0);
    }

    /// Put Blob over a name with only uncommitted blocks drops them and
    /// their data files; the blob then lists no uncommitted block.
    #[test]
    fn put_blob_over_uncommitted_blocks_collects_them() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let blobs = tmp.path().join("blobs");
        let none = Conditions::default();
        store.create_container("a", "c", &[], None).unwrap();
        let block = store.write_file(b"staged").unwrap();
        store
            .put_block("a", "c", "b", "YmxvY2s=", &block, 6)
            .unwrap();
        assert_eq!(files_under(&blobs), 1);
        let body = store.write_file(b"whole").unwrap();
        store
            .put_blob("a", "c", "b", &none, NewBlob::default(), Some((body, 5)))
            .unwrap();
        assert_eq!(files_under(&blobs), 1, "the staged block's file is gone");
        let list = store.get_block_list("a", "c", "b").unwrap();
        assert!(list.uncommitted.is_empty(), "{:?}", list.uncommitted);
    }

    /// A store from before `inline_bytes` keeps serving its small blobs.
    #[test]
    fn inline_bodies_of_an_older_store_survive_the_move() {
        let tmp = tempfile::tempdir().unwrap();
        let none = Conditions::default();
        {
            let store = Store::open(tmp.path()).unwrap();
            store.create_container("a", "c", &[], None).unwrap();
            let new = NewBlob {
                inline: Some(bytes::Bytes::from_static(b"small body")),
                ..NewBlob::default()
            };
            let id = format!("{INLINE_PREFIX}x1");
            store
                .put_blob("a", "c", "b", &none, new, Some((id, 10)))
                .unwrap();
        }
        // Back to the old layout, as an older weft left it.
        let raw = Connection::open(tmp.path().join("metadata.sqlite")).unwrap();
        raw.execute_batch(
            "CREATE TABLE inline_data (id TEXT NOT NULL PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
             INSERT INTO inline_data SELECT id, data FROM inline_bytes;
             DROP TABLE inline_bytes;",
        )
        .unwrap();
        drop(raw);
        let store = Store::open(tmp.path()).unwrap();
        let read = store.open_blob("a", "c", "b", &none, None).unwrap();
        let got: Vec<u8> = read
            .extents
            .iter()
            .flat_map(|e| e.inline.clone().unwrap().to_vec())
            .collect();
        assert_eq!(got, b"small body");
    }

    /// Reopening a store finds what was committed and sweeps abandoned
    /// uploads from `tmp/`.
    #[test]
    fn reopen_keeps_commits_and_sweeps_temp_files() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = Store::open(tmp.path()).unwrap();
            store
                .create_container("a", "c", &[("k".into(), "v".into())], None)
                .unwrap();
            fs::write(store.temp_path(), b"half an upload").unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(
            store.get_container("a", "c").unwrap().metadata,
            vec![("k".into(), "v".into())]
        );
        assert_eq!(files_under(&tmp.path().join("tmp")), 0);
    }
}
