//! Group commit: concurrent writes share one transaction and one fsync.
//!
//! A writer queues its work and takes the write connection; whoever holds
//! it runs every queued piece of work inside one transaction, each in its
//! own savepoint (a failing piece rolls back alone), commits once, and only
//! then hands each writer its result. A writer whose work an earlier holder
//! already ran finds its result waiting. Nothing is acknowledged before the
//! commit that makes it durable; if the commit fails, every writer in the
//! group gets the error and nothing of the group is kept.

use std::sync::mpsc;

use rusqlite::Connection;

use super::{Store, db};
use crate::api_error::ApiError;

/// Delivers a result once the commit outcome is known.
type Finish = Box<dyn FnOnce(Result<(), ApiError>) + Send>;
/// Queued work: runs against the connection, returns how to deliver.
pub(crate) type Job = Box<dyn FnOnce(&Connection) -> Finish + Send>;

impl Store {
    /// Runs `work` in the next group transaction and returns its result
    /// after that transaction committed.
    pub(crate) fn grouped<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = mpsc::sync_channel::<Result<T, ApiError>>(1);
        let job: Job = Box::new(move |conn: &Connection| -> Finish {
            let result = match conn.execute_batch("SAVEPOINT op") {
                Err(e) => Err(db(e)),
                Ok(()) => {
                    let r = work(conn);
                    let end = if r.is_ok() {
                        "RELEASE op"
                    } else {
                        "ROLLBACK TO op; RELEASE op"
                    };
                    match conn.execute_batch(end) {
                        Ok(()) => r,
                        Err(e) => Err(db(e)),
                    }
                }
            };
            Box::new(move |commit: Result<(), ApiError>| {
                let _ = tx.send(commit.and(result));
            })
        });
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(job);
        {
            let conn = self.lock();
            let jobs = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
            if !jobs.is_empty() {
                run_group(&conn, jobs);
            }
        }
        rx.recv()
            .unwrap_or_else(|_| Err(ApiError::internal("group commit dropped a write")))
    }
}

fn run_group(conn: &Connection, jobs: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs unblocks their writers with an internal error.
        tracing::error!(error = %e, writes = jobs.len(), "cannot begin a group transaction");
        return;
    }
    let finishers: Vec<Finish> = jobs.into_iter().map(|job| job(conn)).collect();
    let outcome = conn.execute_batch("COMMIT").map_err(db);
    if outcome.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for f in finishers {
        f(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{EntityQuery, EntityWrite, Store};
    use crate::table::edm::Value;

    /// Many writers at once: each gets its own outcome, a failing write in
    /// a group takes nothing else with it, and every acknowledged write is
    /// there afterwards.
    #[test]
    fn concurrent_writers_each_get_their_own_outcome() {
        let tmp = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(Store::open(tmp.path()).unwrap());
        s.create_table("a", "t1").unwrap();
        let insert = |rk: String| EntityWrite::Insert {
            partition_key: "p".into(),
            row_key: rk,
            props: vec![("V".into(), Value::Int32(1))],
        };
        let threads: Vec<_> = (0..32)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    // Even threads write their own row; odd ones all race for "dup".
                    let rk = if i % 2 == 0 {
                        format!("own{i}")
                    } else {
                        "dup".into()
                    };
                    s.write_entity("a", "t1", insert(rk))
                        .map(|_| ())
                        .map_err(|e| e.code)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let dup = results
            .iter()
            .filter(|r| **r == Err("EntityAlreadyExists"))
            .count();
        assert_eq!((ok, dup), (17, 15), "{results:?}");
        let all = s
            .query_entities(
                "a",
                "t1",
                &EntityQuery {
                    filter: None,
                    top: 100,
                    resume: None,
                },
            )
            .unwrap();
        assert_eq!(all.entities.len(), 17);
    }
}
