//! Relaying bytes between a client and a backend connection.

use std::io;

use tokio::net::TcpStream;

/// Buffer per direction: large enough that a bulk transfer moves in few
/// system calls, small enough that ten thousand idle connections stay cheap.
const BUFFER: usize = 64 * 1024;

/// Copies both directions until both are finished. When one side stops
/// sending (EOF), the write side towards the other is shut down, so a
/// half-close reaches the peer and the other direction carries on.
/// Returns the bytes sent client→backend and backend→client.
pub(crate) async fn relay(mut client: TcpStream, mut backend: TcpStream) -> io::Result<(u64, u64)> {
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut backend, BUFFER, BUFFER).await
}
