//! Group commit: concurrent writes share one transaction and one fsync.
//!
//! A writer queues its work and wakes the store's writer thread; that
//! thread takes every piece of work queued so far, runs each inside one
//! transaction in its own savepoint (a failing piece rolls back alone),
//! commits once, and only then hands each writer its result. While one
//! group commits (its fsync), the next one queues up, so the number of
//! fsyncs follows the disk, not the request rate. Nothing is acknowledged
//! before the commit that makes it durable; if the commit fails, every
//! writer in the group gets the error and nothing of the group is kept.
//!
//! Writers wait on a [`Commit`]: awaited from request handlers (no thread
//! is parked per request) or [`Commit::wait`]ed from blocking code.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{Store, db};
use crate::api_error::ApiError;

/// Delivers a result once the commit outcome is known.
type Finish = Box<dyn FnOnce(Result<(), ApiError>) + Send>;
/// Queued work: runs against the connection, returns how to deliver.
pub(crate) type Job = Box<dyn FnOnce(&Connection) -> Finish + Send>;

/// Most pieces of work in one transaction (a bound on how long one group
/// holds the write connection; more wait for the next group).
const MAX_GROUP: usize = 1024;

/// The write side: the one write connection and the queue in front of it.
pub(crate) struct Writer {
    pub(crate) conn: Mutex<Connection>,
    pub(crate) checkpointer: Arc<super::checkpoint::Checkpointer>,
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    closed: bool,
}

impl Writer {
    pub(crate) fn new(conn: Connection) -> Arc<Writer> {
        Arc::new(Writer {
            conn: Mutex::new(conn),
            checkpointer: Arc::default(),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the thread that runs the groups; it ends after [`Writer::close`].
    pub(crate) fn start(self: &Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let w = self.clone();
        std::thread::Builder::new()
            .name("weft-storage-commit".into())
            .spawn(move || w.run())
    }

    /// Lets the writer thread finish what is queued, then end.
    pub(crate) fn close(&self) {
        self.queue().closed = true;
        self.wake.notify_one();
    }

    fn run(&self) {
        loop {
            let jobs = {
                let mut q = self.queue();
                while q.jobs.is_empty() && !q.closed {
                    q = self.wake.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                if q.jobs.is_empty() {
                    return;
                }
                if q.jobs.len() > MAX_GROUP {
                    let rest = q.jobs.split_off(MAX_GROUP);
                    std::mem::replace(&mut q.jobs, rest)
                } else {
                    std::mem::take(&mut q.jobs)
                }
            };
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            run_group(&conn, jobs);
            drop(conn);
            self.checkpointer.committed();
        }
    }

    fn push(&self, job: Job) {
        let mut q = self.queue();
        if q.closed {
            // Dropping the job unblocks its writer with an internal error.
            return;
        }
        q.jobs.push(job);
        drop(q);
        self.wake.notify_one();
    }
}

/// A write waiting for its group's commit: await it, or [`Commit::wait`].
pub struct Commit<T>(oneshot::Receiver<Result<T, ApiError>>);

fn dropped() -> ApiError {
    ApiError::internal("group commit dropped a write")
}

impl<T> Commit<T> {
    /// Blocks until the write's group committed (not from async code).
    pub fn wait(self) -> Result<T, ApiError> {
        self.0.blocking_recv().unwrap_or_else(|_| Err(dropped()))
    }
}

impl<T> Future for Commit<T> {
    type Output = Result<T, ApiError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(dropped())))
    }
}

impl Store {
    /// Queues `work` for the next group transaction; the returned
    /// [`Commit`] yields its result after that transaction committed.
    pub(crate) fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    ) -> Commit<T> {
        self.submit_with(work, true)
    }

    /// [`Store::submit`] for work whose only change is its last statement
    /// (reads and checks before it, nothing fallible after it): SQLite
    /// makes one statement all-or-nothing on its own, so the work needs no
    /// savepoint of its own.
    pub(crate) fn submit_single<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    ) -> Commit<T> {
        self.submit_with(work, false)
    }

    fn submit_with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
        savepoint: bool,
    ) -> Commit<T> {
        let (tx, rx) = oneshot::channel::<Result<T, ApiError>>();
        let job: Job = Box::new(move |conn: &Connection| -> Finish {
            let result = if !savepoint {
                work(conn)
            } else {
                in_savepoint(conn, work)
            };
            Box::new(move |commit: Result<(), ApiError>| {
                let _ = tx.send(commit.and(result));
            })
        });
        self.writer.push(job);
        Commit(rx)
    }
}

/// Runs `work` in its own savepoint: kept when it succeeds, rolled back
/// alone when it fails.
fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    run_cached(conn, &["SAVEPOINT op"])?;
    let r = work(conn);
    let end: &[&str] = if r.is_ok() {
        &["RELEASE op"]
    } else {
        &["ROLLBACK TO op", "RELEASE op"]
    };
    run_cached(conn, end).and(r)
}

/// Runs statements through the connection's statement cache (savepoints
/// come and go a few thousand times a second).
fn run_cached(conn: &Connection, sqls: &[&str]) -> Result<(), ApiError> {
    for sql in sqls {
        conn.prepare_cached(sql)
            .map_err(db)?
            .raw_execute()
            .map_err(db)?;
    }
    Ok(())
}

fn run_group(conn: &Connection, jobs: Vec<Job>) {
    if let Err(e) = run_cached(conn, &["BEGIN IMMEDIATE"]) {
        // Dropping the jobs unblocks their writers with an internal error.
        tracing::error!(error = %e.message, writes = jobs.len(), "cannot begin a group transaction");
        return;
    }
    let mut finishers: Vec<Finish> = Vec::with_capacity(jobs.len());
    for job in jobs {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))) {
            Ok(f) => finishers.push(f),
            Err(_) => {
                // Its writer gets an internal error (its sender is gone);
                // its changes go, the group's others stay.
                tracing::error!("a write panicked inside a group transaction");
                let _ = run_cached(conn, &["ROLLBACK TO op", "RELEASE op"]);
            }
        }
    }
    let outcome = run_cached(conn, &["COMMIT"]);
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
