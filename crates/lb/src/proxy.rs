//! Relaying bytes between a client and a backend connection.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tracing::debug;

use crate::splice::Pipe;

/// First buffer per direction: enough for a typical request or response
/// head, and cheap for the many short connections of a busy VIP.
const FIRST_BUFFER: usize = 4 * 1024;
/// Largest buffer per direction, reached by doubling whenever a read fills
/// the buffer. A read that fills even this one means a bulk transfer: the
/// direction then switches to splice(2) (see [`crate::splice`]).
const MAX_BUFFER: usize = 64 * 1024;
/// The idle watchdog looks this many times per idle timeout, so an idle
/// connection is closed between 1 and 1 + 1/CHECKS idle timeouts.
const IDLE_CHECKS: u32 = 8;

/// How a relayed connection ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Both sides finished; bytes client→backend and backend→client.
    Finished(u64, u64),
    /// Nothing moved in either direction for the idle timeout.
    Idle,
    /// With [`InFlight`] tracking: the backend closed or failed while the
    /// client's latest bytes (a request) had no answer yet. The bytes are in
    /// the tracker, to send to another backend.
    BackendLost,
}

/// For request/response protocols (HTTP): the client's bytes sent since the
/// backend last sent anything — the request in flight — kept so that a
/// backend dying with a request unanswered can be replaced mid-connection.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    /// More than [`crate::first::REPLAY_LIMIT`] unanswered bytes, or bulk
    /// (spliced) upload: no replay.
    overflow: bool,
    /// The client finished sending.
    client_done: bool,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The unanswered bytes and whether the client finished sending, if a
    /// replay is possible.
    pub(crate) fn take(&self) -> Option<(Vec<u8>, bool)> {
        let mut p = self.lock();
        if p.overflow || p.bytes.is_empty() {
            return None;
        }
        Some((std::mem::take(&mut p.bytes), p.client_done))
    }

    /// Starts tracking again after a replay of `bytes`.
    pub(crate) fn restore(&self, bytes: Vec<u8>, client_done: bool) {
        let mut p = self.lock();
        p.bytes = bytes;
        p.client_done = client_done;
        p.overflow = false;
    }

    fn sent(&self, bytes: &[u8]) {
        let mut p = self.lock();
        if !p.overflow {
            if p.bytes.len() + bytes.len() > crate::first::REPLAY_LIMIT {
                p.overflow = true;
                p.bytes = Vec::new();
            } else {
                p.bytes.extend_from_slice(bytes);
            }
        }
    }

    fn bulk(&self) {
        let mut p = self.lock();
        p.overflow = true;
        p.bytes = Vec::new();
    }

    fn client_finished(&self) {
        self.lock().client_done = true;
    }

    fn answered(&self) {
        let mut p = self.lock();
        p.bytes.clear();
        p.overflow = false;
    }

    fn unanswered(&self) -> bool {
        let p = self.lock();
        !p.overflow && !p.bytes.is_empty()
    }
}

/// Copies both directions until both are finished, or one fails, or nothing
/// moves for `idle_timeout`. When one side stops sending (EOF), the write
/// side towards the other is shut down, so a half-close reaches the peer and
/// the other direction carries on.
pub(crate) async fn relay(
    client: &mut TcpStream,
    backend: &mut TcpStream,
    idle_timeout: Option<Duration>,
    in_flight: Option<&InFlight>,
) -> io::Result<Ended> {
    let (mut client_read, mut client_write) = client.split();
    let (mut backend_read, mut backend_write) = backend.split();
    // Once one direction has forwarded its EOF, the other one ends with the
    // close of both sockets, which sends the FIN: no separate shutdown.
    let one_finished = AtomicBool::new(false);
    let activity = AtomicU64::new(0);
    let both = async {
        tokio::try_join!(
            one_way(
                &mut client_read,
                &mut backend_write,
                &one_finished,
                &activity,
                in_flight.map(Side::Request),
            ),
            one_way(
                &mut backend_read,
                &mut client_write,
                &one_finished,
                &activity,
                in_flight.map(Side::Answer),
            ),
        )
    };
    let lost = |e: io::Error| match e.kind() {
        io::ErrorKind::Other if e.to_string() == LOST => Ok(Ended::BackendLost),
        _ => Err(e),
    };
    let Some(idle_timeout) = idle_timeout else {
        return match both.await {
            Ok((up, down)) => Ok(Ended::Finished(up, down)),
            Err(e) => lost(e),
        };
    };
    tokio::select! {
        finished = both => match finished {
            Ok((up, down)) => Ok(Ended::Finished(up, down)),
            Err(e) => lost(e),
        },
        () = idle(&activity, idle_timeout) => Ok(Ended::Idle),
    }
}

/// The error a direction ends with when the backend is lost with a request
/// in flight (turned into [`Ended::BackendLost`]).
const LOST: &str = "backend lost with a request in flight";

/// Which direction an [`InFlight`] tracker is watched from.
#[derive(Clone, Copy)]
enum Side<'a> {
    /// Client → backend: records what is sent.
    Request(&'a InFlight),
    /// Backend → client: any byte answers; an end with bytes unanswered is
    /// a lost backend.
    Answer(&'a InFlight),
}

/// Resolves once `activity` has not changed for `timeout`.
async fn idle(activity: &AtomicU64, timeout: Duration) {
    let step = timeout / IDLE_CHECKS;
    let mut seen = activity.load(Ordering::Relaxed);
    let mut quiet_steps = 0;
    loop {
        tokio::time::sleep(step).await;
        let now = activity.load(Ordering::Relaxed);
        if now == seen {
            quiet_steps += 1;
            if quiet_steps >= IDLE_CHECKS {
                return;
            }
        } else {
            seen = now;
            quiet_steps = 0;
        }
    }
}

async fn one_way(
    from: &mut ReadHalf<'_>,
    to: &mut WriteHalf<'_>,
    one_finished: &AtomicBool,
    activity: &AtomicU64,
    in_flight: Option<Side<'_>>,
) -> io::Result<u64> {
    let lost = || io::Error::other(LOST);
    let mut size = FIRST_BUFFER;
    let mut pipe: Option<Pipe> = None;
    let mut total = 0u64;
    loop {
        let n = if let Some(pipe) = &pipe {
            let n = pipe.forward(from.as_ref(), to.as_ref()).await?;
            if n > 0
                && let Some(Side::Answer(t)) = in_flight
            {
                t.answered();
            }
            n
        } else {
            // No buffer is held while the peer is quiet: an idle connection
            // costs its task and sockets only. The allocator hands the same
            // block back at once, and read_buf fills spare capacity, so the
            // buffer is never zeroed either.
            let read = async {
                {
                    let source: &TcpStream = from.as_ref();
                    std::future::poll_fn(|cx| source.poll_read_ready(cx)).await?;
                }
                let mut buf: Vec<u8> = Vec::with_capacity(size);
                from.read_buf(&mut buf).await.map(|n| (n, buf))
            };
            let (n, buf) = match (read.await, in_flight) {
                (Ok(read), _) => read,
                (Err(_), Some(Side::Answer(t))) if t.unanswered() => return Err(lost()),
                (Err(e), _) => return Err(e),
            };
            if n > 0 {
                match in_flight {
                    Some(Side::Request(t)) => t.sent(&buf),
                    Some(Side::Answer(t)) => t.answered(),
                    None => {}
                }
                match (to.write_all(&buf).await, in_flight) {
                    (Ok(()), _) => {}
                    (Err(_), Some(Side::Request(t))) if t.unanswered() => return Err(lost()),
                    (Err(e), _) => return Err(e),
                }
            }
            n
        };
        activity.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            match in_flight {
                Some(Side::Answer(t)) if t.unanswered() => return Err(lost()),
                Some(Side::Request(t)) => t.client_finished(),
                _ => {}
            }
            if !one_finished.swap(true, Ordering::Relaxed) {
                to.shutdown().await?;
            }
            return Ok(total);
        }
        total += n as u64;
        if pipe.is_none() && n >= size {
            if size < MAX_BUFFER {
                // A full read: the peer is sending in bulk.
                size = (2 * size).min(MAX_BUFFER);
            } else {
                match Pipe::new() {
                    Ok(p) => {
                        if let Some(Side::Request(t)) = in_flight {
                            t.bulk();
                        }
                        pipe = Some(p);
                    }
                    Err(e) => debug!(error = %e, "no pipe for splice, copying"),
                }
            }
        }
    }
}
