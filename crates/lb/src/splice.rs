//! Zero-copy forwarding for bulk transfers: splice(2) from the source
//! socket into a pipe, and from the pipe into the destination socket; the
//! bytes never enter the proxy's memory.

use std::io;
use std::os::fd::OwnedFd;

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Pipe capacity asked for: a bulk direction moves up to this much per
/// pair of system calls.
const PIPE_SIZE: usize = 256 * 1024;

/// A pipe owned by one direction of one connection.
#[derive(Debug)]
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    size: usize,
}

impl Pipe {
    pub(crate) fn new() -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        // A smaller pipe (the default 64 KiB, when the system's limit is
        // lower) only means more system calls.
        let size = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32))
            .ok()
            .and_then(|size| usize::try_from(size).ok())
            .unwrap_or(64 * 1024);
        Ok(Pipe { read, write, size })
    }

    /// Moves what `from` has (at most the pipe's size, waiting until it has
    /// something) into `to`, whole. Returns the bytes moved; 0 at EOF.
    pub(crate) async fn forward(&self, from: &TcpStream, to: &TcpStream) -> io::Result<usize> {
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        // The pipe is empty here: EAGAIN can only mean "no data yet".
        let filled = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || {
                Ok(splice(from, None, &self.write, None, self.size, flags)?)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        let mut left = filled;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                Ok(splice(&self.read, None, to, None, left, flags)?)
            }) {
                Ok(n) => left -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}
