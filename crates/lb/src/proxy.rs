//! Relaying bytes between a client and a backend connection.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// First buffer per direction: enough for a typical request or response
/// head, and cheap for the many short connections of a busy VIP.
const FIRST_BUFFER: usize = 4 * 1024;
/// Largest buffer per direction, reached by doubling whenever a read fills
/// the buffer: a bulk transfer then moves in few system calls.
const MAX_BUFFER: usize = 64 * 1024;

/// Copies both directions until both are finished, or one fails. When one
/// side stops sending (EOF), the write side towards the other is shut down,
/// so a half-close reaches the peer and the other direction carries on.
/// Returns the bytes sent client→backend and backend→client.
pub(crate) async fn relay(mut client: TcpStream, mut backend: TcpStream) -> io::Result<(u64, u64)> {
    let (mut client_read, mut client_write) = client.split();
    let (mut backend_read, mut backend_write) = backend.split();
    // Once one direction has forwarded its EOF, the other one ends with the
    // close of both sockets, which sends the FIN: no separate shutdown.
    let one_finished = AtomicBool::new(false);
    tokio::try_join!(
        one_way(&mut client_read, &mut backend_write, &one_finished),
        one_way(&mut backend_read, &mut client_write, &one_finished),
    )
}

async fn one_way<R, W>(from: &mut R, to: &mut W, one_finished: &AtomicBool) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // read_buf fills the spare capacity: the buffer is never zeroed.
    let mut buf: Vec<u8> = Vec::with_capacity(FIRST_BUFFER);
    let mut total = 0u64;
    loop {
        buf.clear();
        let n = from.read_buf(&mut buf).await?;
        if n == 0 {
            if !one_finished.swap(true, Ordering::Relaxed) {
                to.shutdown().await?;
            }
            return Ok(total);
        }
        to.write_all(&buf).await?;
        total += n as u64;
        if n == buf.capacity() && n < MAX_BUFFER {
            // A full read: the peer is sending in bulk. A new, larger
            // buffer (nothing to keep from the old one).
            buf = Vec::with_capacity((2 * n).min(MAX_BUFFER));
        }
    }
}
