//! Blob snapshots: read-only copies of a blob at a point in time, named by
//! a timestamp. A snapshot shares its data files with the blob it was taken
//! from; files are removed only when nothing references them.

use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::{OptionalExtension, Transaction, params};

use super::blobs::{BlobProps, ReadBlob, blob_lease_ok, committed, find};
use super::containers::to_json;
use super::{Store, db};
use crate::api_error::ApiError;
use crate::conditions::Conditions;
use crate::range::ByteRange;

/// What Delete Blob does with a blob's snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteSnapshots {
    /// Delete the blob and its snapshots.
    Include,
    /// Delete only the snapshots.
    Only,
}

static LAST_TICK: AtomicI64 = AtomicI64::new(0);

/// A new snapshot name: UTC time in 100 ns ticks, strictly increasing,
/// `2026-11-24T20:15:02.1234567Z`.
fn new_snapshot_name() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_nanos() / 100) as i64)
        .unwrap_or(0);
    let mut prev = LAST_TICK.load(Ordering::Relaxed);
    let tick = loop {
        let next = now.max(prev + 1);
        match LAST_TICK.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    let secs = tick.div_euclid(10_000_000);
    let frac = tick.rem_euclid(10_000_000);
    let (y, m, d) = crate::blob::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:07}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn snapshot_not_found() -> ApiError {
    ApiError::blob_not_found()
}

fn load(
    tx: &rusqlite::Connection,
    account: &str,
    container: &str,
    name: &str,
    snapshot: &str,
) -> Result<BlobProps, ApiError> {
    crate::store::containers::get(tx, account, container)?;
    let json: Option<String> = tx
        .query_row(
            "SELECT props FROM snapshots WHERE account=?1 AND container=?2 AND name=?3 AND snapshot=?4",
            params![account, container, name, snapshot],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    let json = json.ok_or_else(snapshot_not_found)?;
    serde_json::from_str(&json).map_err(|e| ApiError::internal(format!("snapshot row: {e}")))
}

/// Removes every snapshot of a blob; returns their data files.
pub(super) fn drop_all(
    tx: &Transaction<'_>,
    account: &str,
    container: &str,
    name: &str,
) -> Result<Vec<String>, ApiError> {
    let files: Vec<String> = {
        let mut st = tx
            .prepare_cached("SELECT DISTINCT file FROM snapshot_extents WHERE account=?1 AND container=?2 AND blob=?3")
            .map_err(db)?;
        st.query_map(params![account, container, name], |r| r.get(0))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?
    };
    for table in ["snapshots", "snapshot_extents"] {
        let col = if table == "snapshots" { "name" } else { "blob" };
        tx.execute(
            &format!("DELETE FROM {table} WHERE account=?1 AND container=?2 AND {col}=?3"),
            params![account, container, name],
        )
        .map_err(db)?;
    }
    Ok(files)
}

impl Store {
    /// Snapshot Blob: returns the snapshot's name and the base blob.
    pub fn snapshot_blob(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        metadata: Option<Vec<(String, String)>>,
    ) -> Result<(String, BlobProps), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let base = find(&tx, account, container, name)?.ok_or_else(ApiError::blob_not_found)?;
        conds.check(Some(base.current()), false)?;
        if conds.lease_id.is_some() {
            blob_lease_ok(conds, Some(&base))?;
        }
        let snapshot = new_snapshot_name();
        let mut snap = base.clone();
        snap.lease = None;
        if let Some(m) = metadata {
            snap.metadata = m;
        }
        tx.execute(
            "INSERT INTO snapshots (account, container, name, snapshot, props) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![account, container, name, snapshot, to_json(&snap)],
        )
        .map_err(db)?;
        for (seq, (_, size, file)) in committed(&tx, account, container, name)?
            .into_iter()
            .enumerate()
        {
            tx.execute(
                "INSERT INTO snapshot_extents (account, container, blob, snapshot, seq, size, file)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    account,
                    container,
                    name,
                    snapshot,
                    seq as i64,
                    size as i64,
                    file
                ],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok((snapshot, base))
    }

    pub fn get_snapshot(
        &self,
        account: &str,
        container: &str,
        name: &str,
        snapshot: &str,
    ) -> Result<BlobProps, ApiError> {
        let conn = self.lock();
        load(&conn, account, container, name, snapshot)
    }

    /// Get Blob on a snapshot.
    pub fn open_snapshot(
        &self,
        account: &str,
        container: &str,
        name: &str,
        snapshot: &str,
        conds: &Conditions,
        range: Option<ByteRange>,
    ) -> Result<ReadBlob, ApiError> {
        let conn = self.lock();
        let props = load(&conn, account, container, name, snapshot)?;
        conds.check(Some(props.current()), true)?;
        let window = match range {
            Some(r) => Some(crate::range::resolve(r, props.size)?),
            None => None,
        };
        let pieces: Vec<(u64, String)> = {
            let mut st = conn
                .prepare_cached(
                    "SELECT size, file FROM snapshot_extents WHERE account=?1 AND container=?2 AND blob=?3 AND snapshot=?4 ORDER BY seq",
                )
                .map_err(db)?;
            st.query_map(params![account, container, name, snapshot], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?
        };
        let extents = self.window_extents(&conn, &pieces, window, props.size)?;
        Ok(ReadBlob {
            props,
            range: window,
            extents,
        })
    }

    /// Deletes one snapshot.
    pub fn delete_snapshot(
        &self,
        account: &str,
        container: &str,
        name: &str,
        snapshot: &str,
    ) -> Result<(), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        load(&tx, account, container, name, snapshot)?;
        let files: Vec<String> = {
            let mut st = tx
                .prepare_cached(
                    "SELECT DISTINCT file FROM snapshot_extents WHERE account=?1 AND container=?2 AND blob=?3 AND snapshot=?4",
                )
                .map_err(db)?;
            st.query_map(params![account, container, name, snapshot], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?
        };
        tx.execute(
            "DELETE FROM snapshots WHERE account=?1 AND container=?2 AND name=?3 AND snapshot=?4",
            params![account, container, name, snapshot],
        )
        .map_err(db)?;
        tx.execute(
            "DELETE FROM snapshot_extents WHERE account=?1 AND container=?2 AND blob=?3 AND snapshot=?4",
            params![account, container, name, snapshot],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        self.collect_garbage(&conn, files);
        Ok(())
    }

    /// A blob's snapshots, oldest first.
    pub fn list_snapshots(
        &self,
        account: &str,
        container: &str,
        name: &str,
    ) -> Result<Vec<(String, BlobProps)>, ApiError> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached("SELECT snapshot, props FROM snapshots WHERE account=?1 AND container=?2 AND name=?3 ORDER BY snapshot")
            .map_err(db)?;
        let rows: Vec<(String, String)> = st
            .query_map(params![account, container, name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        rows.into_iter()
            .map(|(s, j)| {
                serde_json::from_str(&j)
                    .map(|p| (s, p))
                    .map_err(|e| ApiError::internal(format!("snapshot row: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn snapshot_names_are_iso_with_seven_digits_and_increase() {
        let a = super::new_snapshot_name();
        let b = super::new_snapshot_name();
        assert_eq!(a.len(), "2026-11-24T20:15:02.1234567Z".len());
        assert!(a.ends_with('Z') && a.as_bytes()[10] == b'T');
        assert!(b > a);
    }
}
