//! The response side: finds each response head in the bytes hyper writes
//! and, when the handler listed metadata names in a [`MARKER`] header,
//! gives those `x-ms-meta-*` header names their stored case back (same
//! length, written in place) and drops the marker line. Bodies pass
//! unchanged.

use std::collections::VecDeque;

use super::framing::{Body, Broken, blank_line};
use super::stream::Messages;
use super::{MARKER, MAX_HEADERS, META_PREFIX};

/// The response side of [`Messages`].
#[derive(Debug)]
pub struct Responses;

/// Rewrites the heads of a connection's outgoing responses.
pub type ResponseWriter = Messages<Responses>;

impl ResponseWriter {
    /// Consumes `data`, appending what goes on the wire to `out`; a head
    /// not yet complete is held back. `heads` says, per request in order,
    /// whether it was a HEAD request (its response has no body);
    /// `requests_bailed` whether the request side gave up.
    pub fn push(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        heads: &mut VecDeque<bool>,
        requests_bailed: bool,
    ) {
        let find_end = |buf: &[u8], searched: &mut usize| {
            let end = blank_line(buf, *searched);
            if end.is_none() {
                *searched = buf.len().saturating_sub(2);
            }
            end
        };
        self.push_with(data, out, find_end, |head, out| {
            write_head(head, out, heads, requests_bailed)
        });
    }
}

/// Writes one complete response head to `out`, names restored: what
/// body follows it.
fn write_head(
    head: &[u8],
    out: &mut Vec<u8>,
    heads: &mut VecDeque<bool>,
    requests_bailed: bool,
) -> Result<Option<Body>, Broken> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        _ => return Err(Broken),
    }
    let code = resp.code.ok_or(Broken)?;
    if code == 101 {
        return Err(Broken);
    }
    let informational = (100..200).contains(&code);
    let is_head = if informational {
        false
    } else {
        match heads.pop_front() {
            Some(h) => h,
            // a response to a request the reader did not see
            None => {
                let _ = requests_bailed;
                return Err(Broken);
            }
        }
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut marker: Option<(usize, &[u8])> = None;
    let base = head.as_ptr() as usize;
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| Broken)?.trim();
            length = Some(v.parse().map_err(|_| Broken)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let v = std::str::from_utf8(h.value).map_err(|_| Broken)?.trim();
            if !v.eq_ignore_ascii_case("chunked") {
                return Err(Broken);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(MARKER.as_bytes()) {
            marker = Some((h.name.as_ptr() as usize - base, h.value));
        }
    }
    let body = if informational || is_head || code == 204 || code == 304 {
        None
    } else if chunked {
        Some(Body::chunked())
    } else {
        match length {
            Some(0) => None,
            Some(n) => Some(Body::Length(n)),
            None => Some(Body::UntilClose),
        }
    };
    let Some((marker_at, names)) = marker else {
        out.extend_from_slice(head);
        return Ok(body);
    };
    let names: Vec<&[u8]> = names
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .collect();
    let start = out.len();
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.len() > META_PREFIX.len()
            && name[..META_PREFIX.len()].eq_ignore_ascii_case(META_PREFIX.as_bytes())
        {
            let key = &name[META_PREFIX.len()..];
            if let Some(sent) = names.iter().find(|n| n.eq_ignore_ascii_case(key)) {
                let at = h.name.as_ptr() as usize - base + META_PREFIX.len();
                if out.len() == start {
                    out.extend_from_slice(head);
                }
                out[start + at..start + at + sent.len()].copy_from_slice(sent);
            }
        }
    }
    if out.len() == start {
        out.extend_from_slice(head);
    }
    // drop the marker line, its line break included
    let line_end = head[marker_at..]
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(Broken)?;
    out.drain(start + marker_at..start + marker_at + line_end + 1);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_all(chunks: &[&[u8]], heads: &[bool]) -> (Vec<u8>, bool) {
        let mut w = ResponseWriter::default();
        let mut out = Vec::new();
        let mut q: VecDeque<bool> = heads.iter().copied().collect();
        for c in chunks {
            w.push(c, &mut out, &mut q, false);
        }
        (out, w.bailed())
    }

    const RESPONSES: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-ms-meta-owner: x\r\nweft-meta-case: Owner,camelCase\r\nx-ms-meta-camelcase: y\r\ncontent-length: 25\r\n\r\n\r\nx-ms-meta-owner: body\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-ms-meta-owner: x\r\nweft-meta-case: Owner\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nweft-meta-case: Owner\r\nx-ms-meta-owner: x\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\nx-ms-meta-other: x\r\n\r\n";

    #[test]
    fn restores_case_in_heads_only() {
        let (out, bailed) = write_all(&[RESPONSES], &[false, true, false, false]);
        assert!(!bailed);
        let expected = String::from_utf8_lossy(RESPONSES)
            .replace("weft-meta-case: Owner,camelCase\r\n", "")
            .replace("weft-meta-case: Owner\r\n", "")
            .replacen("x-ms-meta-owner: x", "x-ms-meta-Owner: x", 3)
            .replace("x-ms-meta-camelcase", "x-ms-meta-camelCase");
        assert_eq!(String::from_utf8_lossy(&out), expected);
        assert!(String::from_utf8_lossy(&out).contains("\r\nx-ms-meta-owner: body\r\n"));
    }

    #[test]
    fn any_split_writes_the_same() {
        let heads = [false, true, false, false];
        let (whole, _) = write_all(&[RESPONSES], &heads);
        for split in 0..RESPONSES.len() {
            let (a, b) = RESPONSES.split_at(split);
            assert_eq!(write_all(&[a, b], &heads).0, whole, "split {split}");
        }
    }

    #[test]
    fn a_response_to_an_unseen_request_passes_through() {
        let data = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let (out, bailed) = write_all(&[data], &[]);
        assert!(bailed);
        assert_eq!(out, data);
    }
}
