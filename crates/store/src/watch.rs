//! Watch streams: change events in revision order.

use tokio::sync::mpsc;

use crate::KeyValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change. For a delete, `kv.value` is empty and `kv.mod_revision` is
/// the revision of the delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
}

/// A stream of changes under a prefix, in revision order (and in operation
/// order within one revision). Ends when the store is dropped.
#[derive(Debug)]
pub struct Watcher {
    rx: mpsc::UnboundedReceiver<WatchEvent>,
}

impl Watcher {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<WatchEvent>) -> Watcher {
        Watcher { rx }
    }

    /// The next change; `None` once the store is gone.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        self.rx.recv().await
    }

    /// The next change if one is already waiting.
    pub fn try_next(&mut self) -> Option<WatchEvent> {
        self.rx.try_recv().ok()
    }
}

/// The sending side, kept by a store.
pub(crate) struct WatchSender {
    pub prefix: String,
    pub tx: mpsc::UnboundedSender<WatchEvent>,
}

impl WatchSender {
    /// Sends `event` if it is under the prefix; false once the watcher is gone.
    pub fn offer(&self, event: &WatchEvent) -> bool {
        if !event.kv.key.starts_with(&self.prefix) {
            return !self.tx.is_closed();
        }
        self.tx.send(event.clone()).is_ok()
    }

    pub fn channel(prefix: &str) -> (WatchSender, Watcher) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            WatchSender {
                prefix: prefix.to_owned(),
                tx,
            },
            Watcher::new(rx),
        )
    }
}
