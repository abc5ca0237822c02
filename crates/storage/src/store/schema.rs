//! The metadata schema and connection settings.

use rusqlite::Connection;

pub(super) fn init(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Each write of a group commit runs in a savepoint, whose statement
    // journal would otherwise be a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Writes land all over the indexes (one insertion point per busy
    // container, queue or partition): keep more of them cached than
    // SQLite's 2 MiB default.
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS containers (
            account TEXT NOT NULL,
            name TEXT NOT NULL,
            etag TEXT NOT NULL,
            last_modified INTEGER NOT NULL,
            metadata TEXT NOT NULL,
            public_access TEXT,
            acl TEXT NOT NULL,
            lease TEXT,
            PRIMARY KEY (account, name)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS blobs (
            account TEXT NOT NULL,
            container TEXT NOT NULL,
            name TEXT NOT NULL,
            blob_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            etag TEXT NOT NULL,
            created INTEGER NOT NULL,
            last_modified INTEGER NOT NULL,
            content_type TEXT,
            content_encoding TEXT,
            content_language TEXT,
            content_md5 TEXT,
            cache_control TEXT,
            content_disposition TEXT,
            metadata TEXT NOT NULL,
            copy TEXT,
            lease TEXT,
            PRIMARY KEY (account, container, name)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS extents (
            account TEXT NOT NULL,
            container TEXT NOT NULL,
            blob TEXT NOT NULL,
            seq INTEGER NOT NULL,
            block_id TEXT,
            size INTEGER NOT NULL,
            file TEXT NOT NULL,
            PRIMARY KEY (account, container, blob, seq)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS extents_file ON extents(file);
        CREATE TABLE IF NOT EXISTS uncommitted (
            account TEXT NOT NULL,
            container TEXT NOT NULL,
            blob TEXT NOT NULL,
            block_id TEXT NOT NULL,
            size INTEGER NOT NULL,
            file TEXT NOT NULL,
            created INTEGER NOT NULL,
            PRIMARY KEY (account, container, blob, block_id)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS uncommitted_file ON uncommitted(file);
        CREATE TABLE IF NOT EXISTS snapshots (
            account TEXT NOT NULL,
            container TEXT NOT NULL,
            name TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            props TEXT NOT NULL,
            PRIMARY KEY (account, container, name, snapshot)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS snapshot_extents (
            account TEXT NOT NULL,
            container TEXT NOT NULL,
            blob TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            seq INTEGER NOT NULL,
            size INTEGER NOT NULL,
            file TEXT NOT NULL,
            PRIMARY KEY (account, container, blob, snapshot, seq)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS snapshot_extents_file ON snapshot_extents(file);
        -- A rowid table: a WITHOUT ROWID row over ~1000 bytes (on 4 KiB
        -- pages) spills into an overflow page of its own, 4 KiB per blob.
        CREATE TABLE IF NOT EXISTS inline_bytes (
            id TEXT NOT NULL PRIMARY KEY,
            data BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS queues (
            account TEXT NOT NULL,
            name TEXT NOT NULL,
            metadata TEXT NOT NULL,
            PRIMARY KEY (account, name)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS messages (
            account TEXT NOT NULL,
            queue TEXT NOT NULL,
            id TEXT NOT NULL,
            text TEXT NOT NULL,
            inserted INTEGER NOT NULL,
            expires INTEGER NOT NULL,
            visible_at INTEGER NOT NULL,
            pop_receipt TEXT NOT NULL,
            dequeue_count INTEGER NOT NULL,
            PRIMARY KEY (account, queue, id)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS messages_visible ON messages(account, queue, visible_at, inserted);
        CREATE TABLE IF NOT EXISTS tables (
            account TEXT NOT NULL,
            key TEXT NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (account, key)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS entities (
            account TEXT NOT NULL,
            tbl TEXT NOT NULL,
            pk TEXT NOT NULL,
            rk TEXT NOT NULL,
            ts INTEGER NOT NULL,
            props TEXT NOT NULL,
            PRIMARY KEY (account, tbl, pk, rk)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS queue_acls (
            account TEXT NOT NULL,
            name TEXT NOT NULL,
            acl TEXT NOT NULL,
            PRIMARY KEY (account, name)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS table_acls (
            account TEXT NOT NULL,
            key TEXT NOT NULL,
            acl TEXT NOT NULL,
            PRIMARY KEY (account, key)
        ) WITHOUT ROWID;",
    )?;
    migrate_inline_data(conn)
}

/// Stores made before `inline_bytes` kept small blob bodies in the
/// WITHOUT ROWID table `inline_data`: move them over, in one transaction.
fn migrate_inline_data(conn: &Connection) -> rusqlite::Result<()> {
    let old: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type='table' AND name='inline_data')",
        [],
        |r| r.get(0),
    )?;
    if old {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(
            "INSERT OR IGNORE INTO inline_bytes (id, data) SELECT id, data FROM inline_data;
             DROP TABLE inline_data;",
        )?;
        tx.commit()?;
    }
    Ok(())
}
