//! Metadata names keep the case they were sent with.
//!
//! Azure stores `x-ms-meta-Owner` as `Owner` and answers with that case,
//! but hyper lowercases header names on the way in and writes the names it
//! is given lowercase on the way out. [`CaseIo`] wraps each accepted
//! connection and carries the case across hyper in band:
//!
//! - requests ([`request`]): a head naming metadata with capitals gets a
//!   [`MARKER`] header listing those names as sent (`weft-meta-case:
//!   Owner,camelCase`); the handlers take the stored names from it;
//! - responses ([`response`]): a handler that writes metadata names with
//!   capitals adds the same marker; the wrapper drops it and gives the
//!   lowercase `x-ms-meta-*` names their case back, in place.
//!
//! Both sides follow the HTTP/1.1 framing (heads, `Content-Length` and
//! chunked bodies, HEAD/1xx/204/304 responses without one) so a body that
//! happens to contain `\r\nx-ms-meta-` is never touched; anything they do
//! not understand makes them pass the rest of the connection untouched
//! (names then come out lowercase, as without the wrapper).

pub mod framing;
pub mod request;
pub mod response;
pub mod stream;

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use request::RequestReader;
pub use response::ResponseWriter;

/// The header carrying metadata names as sent, between the wrapper and
/// the handlers; never seen by clients.
pub const MARKER: &str = "weft-meta-case";
/// The metadata header prefix.
pub const META_PREFIX: &str = "x-ms-meta-";
/// The longest head either side holds back (hyper refuses longer ones).
pub const MAX_HEAD: usize = 80 * 1024;
/// The most header lines a head may have (hyper's own limit).
pub const MAX_HEADERS: usize = 100;

/// A connection whose metadata names keep their case through hyper.
#[derive(Debug)]
pub struct CaseIo<T> {
    inner: T,
    requests: RequestReader,
    responses: ResponseWriter,
    /// Per request read and not yet answered: was it a HEAD request?
    heads: VecDeque<bool>,
    /// Request bytes ready for hyper, from `read_at` on.
    read_out: Vec<u8>,
    read_at: usize,
    read_eof: bool,
    /// Response bytes for the wire, from `write_at` on.
    write_out: Vec<u8>,
    write_at: usize,
}

impl<T> CaseIo<T> {
    pub fn new(inner: T) -> Self {
        CaseIo {
            inner,
            requests: RequestReader::default(),
            responses: ResponseWriter::default(),
            heads: VecDeque::new(),
            read_out: Vec::new(),
            read_at: 0,
            read_eof: false,
            write_out: Vec::new(),
            write_at: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> CaseIo<T> {
    /// Writes out every pending response byte.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.write_at < self.write_out.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.write_out[self.write_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.write_at += n;
        }
        self.write_out.clear();
        self.write_at = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CaseIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.read_at < this.read_out.len() {
                let n = buf.remaining().min(this.read_out.len() - this.read_at);
                buf.put_slice(&this.read_out[this.read_at..this.read_at + n]);
                this.read_at += n;
                if this.read_at == this.read_out.len() {
                    this.read_out.clear();
                    this.read_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.read_eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            let new = &buf.filled()[before..];
            if new.is_empty() {
                this.read_eof = true;
                this.read_out = this.requests.finish();
                continue;
            }
            // body bytes go to hyper where they were read to
            let k = this.requests.passable(new);
            this.requests.pass(&new[..k]);
            if k == new.len() {
                return Poll::Ready(Ok(()));
            }
            let rest = new[k..].to_vec();
            buf.set_filled(before + k);
            this.requests
                .push(&rest, &mut this.read_out, &mut this.heads);
            if k > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CaseIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let k = this.responses.passable(buf);
        if k > 0 {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..k]))?;
            this.responses.pass(&buf[..n]);
            return Poll::Ready(Ok(n));
        }
        let bailed = this.requests.bailed();
        this.responses
            .push(buf, &mut this.write_out, &mut this.heads, bailed);
        // start sending; what is left goes out on the next write or flush
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let held = this.responses.finish();
        this.write_out.extend_from_slice(&held);
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The metadata names a request sent with capitals, from the marker the
/// wrapper added (the last one, should a client send its own).
pub fn sent_names(headers: &hyper::HeaderMap) -> Vec<&str> {
    headers
        .get_all(MARKER)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `key` (lowercase, as hyper gives it) in the case it was sent with.
pub fn as_sent(key: &str, sent: &[&str]) -> String {
    sent.iter()
        .find(|n| n.eq_ignore_ascii_case(key))
        .map_or_else(|| key.to_string(), |n| n.to_string())
}

/// The marker value for metadata names written in a response: the names
/// with capitals, if any.
pub fn response_marker<'a>(names: impl Iterator<Item = &'a str>) -> Option<String> {
    let names: Vec<&str> = names
        .filter(|n| n.bytes().any(|b| b.is_ascii_uppercase()))
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}
