//! The first exchange of a connection: until the backend sends its first
//! byte, the client's bytes are kept as well as forwarded, so a backend that
//! dies before answering (killed with the request in its accept queue or
//! half read) can be replaced by the next one with the same bytes — the
//! client never sees the failure. Once the backend has answered, or the
//! client has sent more than [`REPLAY_LIMIT`] bytes, the connection is
//! committed to its backend and relayed as usual.
//!
//! This is HAProxy's `retry-on conn-failure empty-response` at L4: a request
//! the dying backend had partly handled may be handled again by the next.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Client bytes kept for a replay at most; past this the connection is
/// committed to its backend.
pub(crate) const REPLAY_LIMIT: usize = 64 * 1024;

/// What the client sent so far, to send again to another backend.
#[derive(Debug, Default)]
pub(crate) struct Head {
    bytes: Vec<u8>,
    /// The client finished sending (half-close) before the answer.
    client_done: bool,
}

/// How the first exchange ended.
#[derive(Debug)]
pub(crate) enum First {
    /// The backend answered with these first bytes (already sent on to the
    /// client): relay the rest.
    Answered,
    /// The client sent more than can be replayed before any answer: relay,
    /// committed to this backend.
    Committed,
    /// The backend closed or failed before sending a byte: try the next one
    /// with [`Head`].
    BackendFailed(io::Error),
    /// The client went away (or failed) before any answer.
    ClientGone,
}

/// Sends `head` (a replay, or nothing) to `backend`, then forwards client
/// bytes while keeping them, until the backend's first byte.
pub(crate) async fn exchange(
    client: &mut TcpStream,
    backend: &mut TcpStream,
    head: &mut Head,
) -> First {
    if !head.bytes.is_empty()
        && let Err(e) = backend.write_all(&head.bytes).await
    {
        return First::BackendFailed(e);
    }
    if head.client_done
        && let Err(e) = backend.shutdown().await
    {
        return First::BackendFailed(e);
    }
    // read_buf fills spare capacity: no buffer is zeroed, and the client's
    // bytes are read straight into the head they are kept in.
    let mut from_backend: Vec<u8> = Vec::with_capacity(4096);
    head.bytes.reserve(4096);
    loop {
        if head.bytes.len() > REPLAY_LIMIT {
            return First::Committed;
        }
        let kept = head.bytes.len();
        tokio::select! {
            read = backend.read_buf(&mut from_backend) => match read {
                Ok(0) => {
                    return First::BackendFailed(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed before answering",
                    ));
                }
                Ok(n) => {
                    return match client.write_all(&from_backend[..n]).await {
                        Ok(()) => First::Answered,
                        Err(_) => First::ClientGone,
                    };
                }
                Err(e) => return First::BackendFailed(e),
            },
            read = client.read_buf(&mut head.bytes), if !head.client_done => match read {
                Ok(0) => {
                    head.client_done = true;
                    if let Err(e) = backend.shutdown().await {
                        return First::BackendFailed(e);
                    }
                }
                Ok(_) => {
                    if let Err(e) = backend.write_all(&head.bytes[kept..]).await {
                        return First::BackendFailed(e);
                    }
                }
                Err(_) => return First::ClientGone,
            },
        }
    }
}
