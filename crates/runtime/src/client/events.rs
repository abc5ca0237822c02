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
    lines: EventLines,
    done: bool,
}

impl Events {
    pub(super) fn new(body: Incoming) -> Events {
        Events {
            body,
            lines: EventLines::default(),
            done: false,
        }
    }

    /// The next event; `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Result<RuntimeEvent, ClientError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for Events {
    type Item = Result<RuntimeEvent, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.lines.next_event() {
                return Poll::Ready(Some(event));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.lines.push(&data);
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
                    this.done = true;
                    this.lines.finish();
                }
            }
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("buffered", &self.lines.buffer.len())
            .field("done", &self.done)
            .finish()
    }
}

/// Splits the stream's bytes, however they are chunked, into one event per
/// line.
#[derive(Debug, Default)]
struct EventLines {
    buffer: BytesMut,
}

impl EventLines {
    fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The stream ended: a last line without its newline is still an event.
    fn finish(&mut self) {
        if !self.buffer.is_empty() {
            self.buffer.extend_from_slice(b"\n");
        }
    }

    /// Takes one complete line off the buffer, if there is one; blank lines
    /// are skipped.
    fn next_event(&mut self) -> Option<Result<RuntimeEvent, ClientError>> {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::Change;

    fn event() -> impl Strategy<Value = RuntimeEvent> {
        let change = prop_oneof![
            "[A-Za-z0-9_ é\"\\\\]{0,12}".prop_map(|name| Change::Setting { name }),
            "[A-Za-z]{1,8}".prop_map(|role| Change::Topology { role }),
        ];
        prop_oneof![
            Just(RuntimeEvent::Stopping),
            prop::collection::vec(change.clone(), 0..4)
                .prop_map(|changes| RuntimeEvent::Changing { id: None, changes }),
            prop::collection::vec(change, 0..4)
                .prop_map(|changes| RuntimeEvent::Changed { changes }),
        ]
    }

    proptest! {
        /// However the bytes are cut into frames, the same events come out,
        /// in order.
        #[test]
        fn any_chunking_yields_the_events_in_order(
            events in prop::collection::vec(event(), 0..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let mut wire = Vec::new();
            for e in &events {
                wire.extend(serde_json::to_vec(e).unwrap());
                wire.push(b'\n');
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            cuts.push(0);
            cuts.push(wire.len());
            cuts.sort_unstable();
            let mut lines = EventLines::default();
            let mut got = Vec::new();
            for pair in cuts.windows(2) {
                lines.push(&wire[pair[0]..pair[1]]);
                while let Some(e) = lines.next_event() {
                    got.push(e.unwrap());
                }
            }
            lines.finish();
            prop_assert!(lines.next_event().is_none());
            prop_assert_eq!(got, events);
        }
    }

    #[test]
    fn a_last_line_without_newline_and_blank_lines() {
        let mut lines = EventLines::default();
        lines.push(b"\n  \n{\"event\":\"stopping\"}");
        assert!(lines.next_event().is_none());
        lines.finish();
        assert_eq!(lines.next_event().unwrap().unwrap(), RuntimeEvent::Stopping);
        assert!(lines.next_event().is_none());
    }

    #[test]
    fn a_bad_line_is_a_decode_error_and_the_stream_goes_on() {
        let mut lines = EventLines::default();
        lines.push(b"{\"event\":\"exploding\"}\n{\"event\":\"stopping\"}\n");
        let err = lines.next_event().unwrap().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("runtime endpoint answered GET /v1/events with invalid JSON: unknown variant `exploding`"),
            "{err}"
        );
        assert_eq!(lines.next_event().unwrap().unwrap(), RuntimeEvent::Stopping);
    }
}
