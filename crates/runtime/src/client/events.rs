//! The stream of [`RuntimeEvent`]s from `GET /v1/events`.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use futures_util::Stream;
use hyper::body::{Body, Incoming};

use super::ClientError;
use crate::protocol::RuntimeEvent;

const REQUEST: &str = "GET /v1/events";

/// Events for this instance, in the order the host published them. Ends
/// when the host closes the stream (it is shutting down).
pub struct Events {
    body: Incoming,
    buffer: BytesMut,
    done: bool,
}

impl Events {
    pub(super) fn new(body: Incoming) -> Events {
        Events {
            body,
            buffer: BytesMut::new(),
            done: false,
        }
    }

    /// The next event; `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Result<RuntimeEvent, ClientError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Takes one complete line off the buffer, if there is one.
    fn line(&mut self) -> Option<Result<RuntimeEvent, ClientError>> {
        loop {
            let end = self.buffer.iter().position(|&b| b == b'\n')?;
            let line = self.buffer.split_to(end);
            self.buffer.advance(1);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(
                serde_json::from_slice(&line).map_err(|source| ClientError::Decode {
                    request: REQUEST.to_owned(),
                    source,
                }),
            );
        }
    }
}

impl Stream for Events {
    type Item = Result<RuntimeEvent, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.line() {
                return Poll::Ready(Some(event));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(source)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(ClientError::Http {
                        request: REQUEST.to_owned(),
                        source,
                    })));
                }
                None => {
                    // A trailing line without its newline is still an event.
                    this.done = true;
                    if !this.buffer.is_empty() {
                        this.buffer.extend_from_slice(b"\n");
                    }
                }
            }
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("buffered", &self.buffer.len())
            .field("done", &self.done)
            .finish()
    }
}
