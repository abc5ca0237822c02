//! Relaying bytes between a client and a backend connection.

use std::io;
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
}

/// Copies both directions until both are finished, or one fails, or nothing
/// moves for `idle_timeout`. When one side stops sending (EOF), the write
/// side towards the other is shut down, so a half-close reaches the peer and
/// the other direction carries on.
pub(crate) async fn relay(
    mut client: TcpStream,
    mut backend: TcpStream,
    idle_timeout: Option<Duration>,
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
                &activity
            ),
            one_way(
                &mut backend_read,
                &mut client_write,
                &one_finished,
                &activity
            ),
        )
    };
    let Some(idle_timeout) = idle_timeout else {
        let (up, down) = both.await?;
        return Ok(Ended::Finished(up, down));
    };
    tokio::select! {
        finished = both => finished.map(|(up, down)| Ended::Finished(up, down)),
        () = idle(&activity, idle_timeout) => Ok(Ended::Idle),
    }
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
) -> io::Result<u64> {
    let mut size = FIRST_BUFFER;
    let mut pipe: Option<Pipe> = None;
    let mut total = 0u64;
    loop {
        let n = if let Some(pipe) = &pipe {
            pipe.forward(from.as_ref(), to.as_ref()).await?
        } else {
            // No buffer is held while the peer is quiet: an idle connection
            // costs its task and sockets only. The allocator hands the same
            // block back at once, and read_buf fills spare capacity, so the
            // buffer is never zeroed either.
            let source: &TcpStream = from.as_ref();
            std::future::poll_fn(|cx| source.poll_read_ready(cx)).await?;
            let mut buf: Vec<u8> = Vec::with_capacity(size);
            let n = from.read_buf(&mut buf).await?;
            if n > 0 {
                to.write_all(&buf).await?;
            }
            n
        };
        activity.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
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
                    Ok(p) => pipe = Some(p),
                    Err(e) => debug!(error = %e, "no pipe for splice, copying"),
                }
            }
        }
    }
}
