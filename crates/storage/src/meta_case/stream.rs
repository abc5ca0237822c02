//! One direction of an HTTP/1.1 connection as a run of messages: each
//! head is held back until it is complete and then handed to that side's
//! reader ([`super::request`], [`super::response`]), which writes it on
//! and says what body follows; bodies pass as they are. Anything the side
//! does not understand makes the rest of the direction pass untouched.

use std::marker::PhantomData;

use super::MAX_HEAD;
use super::framing::{Body, Broken};

/// Where the stream is.
#[derive(Debug)]
enum State {
    /// Collecting a head: the bytes so far, and where to look on for its end.
    Head(Vec<u8>, usize),
    /// Inside a body.
    Body(Body),
    /// Something this reader does not understand came: everything from
    /// here on passes untouched (hyper answers or closes as it sees fit).
    Bailed,
}

/// The messages of one direction; `S` names the side, whose own `push`
/// reads its heads.
#[derive(Debug)]
pub struct Messages<S> {
    state: State,
    side: PhantomData<fn() -> S>,
}

impl<S> Default for Messages<S> {
    fn default() -> Self {
        Messages {
            state: State::Head(Vec::new(), 0),
            side: PhantomData,
        }
    }
}

impl<S> Messages<S> {
    /// Whether this side gave up on the connection.
    pub fn bailed(&self) -> bool {
        matches!(self.state, State::Bailed)
    }

    /// How many leading bytes of `data` are body (or bailed) bytes that
    /// pass as they are; [`Messages::pass`] consumes them.
    pub fn passable(&self, data: &[u8]) -> usize {
        match &self.state {
            State::Head(..) => 0,
            State::Body(b) => b.passable(data),
            State::Bailed => data.len(),
        }
    }

    /// Consumes `data`, all of it [`Messages::passable`].
    pub fn pass(&mut self, data: &[u8]) {
        if let State::Body(b) = &mut self.state {
            match b.advance(data) {
                Ok((_, true)) => self.state = State::Head(Vec::new(), 0),
                Ok(_) => {}
                Err(Broken) => self.state = State::Bailed,
            }
        }
    }

    /// Consumes `data`, appending what passes on to `out`; a head not yet
    /// complete is held back (past [`MAX_HEAD`] it passes and the side
    /// bails). `find_end` says where a complete head ends in the bytes
    /// held, searching on from the index it keeps; `on_head` writes a
    /// complete head to `out` and says what body follows. A head it finds
    /// [`Broken`] passes as it is (whatever it wrote dropped), and so does
    /// everything after it.
    pub(super) fn push_with(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        mut find_end: impl FnMut(&[u8], &mut usize) -> Option<usize>,
        mut on_head: impl FnMut(&[u8], &mut Vec<u8>) -> Result<Option<Body>, Broken>,
    ) {
        let mut owned: Vec<u8>;
        let mut data: &[u8] = data;
        while !data.is_empty() {
            match &mut self.state {
                State::Bailed => {
                    out.extend_from_slice(data);
                    return;
                }
                State::Body(b) => match b.advance(data) {
                    Ok((used, done)) => {
                        out.extend_from_slice(&data[..used]);
                        data = &data[used..];
                        if done {
                            self.state = State::Head(Vec::new(), 0);
                        }
                    }
                    Err(Broken) => self.state = State::Bailed,
                },
                State::Head(buf, searched) => {
                    buf.extend_from_slice(data);
                    data = &[];
                    let Some(end) = find_end(buf, searched) else {
                        if buf.len() > MAX_HEAD {
                            out.append(buf);
                            self.state = State::Bailed;
                        }
                        continue;
                    };
                    let mut head = std::mem::take(buf);
                    owned = head.split_off(end);
                    let start = out.len();
                    match on_head(&head, out) {
                        Ok(body) => {
                            self.state = match body {
                                Some(b) => State::Body(b),
                                None => State::Head(Vec::new(), 0),
                            }
                        }
                        Err(Broken) => {
                            out.truncate(start);
                            out.extend_from_slice(&head);
                            self.state = State::Bailed;
                        }
                    }
                    data = &owned;
                }
            }
        }
    }

    /// The direction ended (or is being shut down): whatever was held back.
    pub fn finish(&mut self) -> Vec<u8> {
        match std::mem::replace(&mut self.state, State::Bailed) {
            State::Head(buf, _) => buf,
            _ => Vec::new(),
        }
    }
}
