//! WAL checkpoints mostly off the commit path. A thread with its own
//! connection copies committed pages back into the database (PASSIVE: it
//! never waits for, or holds up, readers or the writer) at most every
//! [`INTERVAL`] while writes come in, so a busy store checkpoints in large
//! steps and a quiet one does not pay a checkpoint's fsync every few
//! writes. The write connection keeps SQLite's automatic checkpoint with a
//! larger log ([`WAL_PAGES`]): when the log reaches it the writer
//! checkpoints what is left (little, by then) and the next transaction
//! restarts the log from its beginning, so the log stays bounded however
//! busy the readers are.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Shortest time between two background checkpoints.
const INTERVAL: Duration = Duration::from_millis(100);

/// The write connection's automatic checkpoint threshold, in pages.
pub(crate) const WAL_PAGES: i64 = 10_000;

#[derive(Default)]
struct State {
    groups: u64,
    closed: bool,
}

/// Wakes the checkpoint thread.
#[derive(Default)]
pub(crate) struct Checkpointer {
    state: Mutex<State>,
    wake: Condvar,
}

impl Checkpointer {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the thread; it checkpoints through `conn` until [`Checkpointer::close`].
    pub(crate) fn start(
        self: &Arc<Self>,
        conn: Connection,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let c = self.clone();
        std::thread::Builder::new()
            .name("weft-storage-checkpoint".into())
            .spawn(move || c.run(conn))
    }

    /// Called by the commit thread after each group.
    pub(crate) fn committed(&self) {
        let mut s = self.state();
        s.groups += 1;
        if s.groups == 1 {
            drop(s);
            self.wake.notify_one();
        }
    }

    pub(crate) fn close(&self) {
        self.state().closed = true;
        self.wake.notify_one();
    }

    fn run(&self, conn: Connection) {
        let mut last = Instant::now();
        loop {
            {
                let mut s = self.state();
                while !s.closed && (s.groups == 0 || last.elapsed() < INTERVAL) {
                    let wait = if s.groups == 0 {
                        INTERVAL
                    } else {
                        INTERVAL.saturating_sub(last.elapsed())
                    };
                    s = self
                        .wake
                        .wait_timeout(s, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                if s.closed {
                    return;
                }
                s.groups = 0;
            }
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "wal checkpoint failed");
            }
            last = Instant::now();
        }
    }
}
