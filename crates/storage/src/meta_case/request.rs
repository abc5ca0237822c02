//! The request side: finds each request head in the bytes a client sends
//! and, when it names metadata with capitals (`x-ms-meta-Owner`), adds a
//! [`MARKER`] header listing those names as sent, since hyper hands the
//! handlers lowercase names only. Every other byte passes unchanged.

use std::collections::VecDeque;

use super::framing::{Body, Broken, blank_line};
use super::stream::Messages;
use super::{MARKER, MAX_HEADERS, META_PREFIX};

/// The request side of [`Messages`].
#[derive(Debug)]
pub struct Requests;

/// Reads requests out of a connection's incoming bytes.
pub type RequestReader = Messages<Requests>;

impl RequestReader {
    /// Consumes `data`, appending what hyper should read to `out`; a head
    /// not yet complete is held back. For each complete head, whether it
    /// is a HEAD request is pushed to `heads`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>, heads: &mut VecDeque<bool>) {
        self.push_with(data, out, find_head, |head, out| {
            let (is_head, body) = read_head(head, out)?;
            heads.push_back(is_head);
            Ok(body)
        });
    }
}

/// The end of the request head at the start of `buf`, if it is complete.
fn find_head(buf: &[u8], searched: &mut usize) -> Option<usize> {
    loop {
        let Some(candidate) = blank_line(buf, *searched) else {
            *searched = buf.len().saturating_sub(2);
            return None;
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::Request::new(&mut headers).parse(buf) {
            Ok(httparse::Status::Complete(n)) => return Some(n),
            // a blank line among leading empty lines
            Ok(httparse::Status::Partial) => *searched = candidate,
            // hand the bad head to hyper as it is
            Err(_) => return Some(candidate),
        }
    }
}

/// Reads one complete head into `out`, with the marker added when it
/// names metadata with capitals: whether it is a HEAD request and what
/// body follows.
fn read_head(head: &[u8], out: &mut Vec<u8>) -> Result<(bool, Option<Body>), Broken> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        _ => return Err(Broken),
    }
    let method = req.method.ok_or(Broken)?;
    if method == "CONNECT" {
        return Err(Broken);
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut marked = false;
    let mut names: Vec<&str> = Vec::new();
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| Broken)?.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Broken);
            }
            let v: u64 = v.parse().map_err(|_| Broken)?;
            if length.is_some_and(|l| l != v) {
                return Err(Broken);
            }
            length = Some(v);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let v = std::str::from_utf8(h.value).map_err(|_| Broken)?.trim();
            if chunked || !v.eq_ignore_ascii_case("chunked") {
                return Err(Broken);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(MARKER.as_bytes()) {
            marked = true;
        } else if name.len() > META_PREFIX.len()
            && name[..META_PREFIX.len()].eq_ignore_ascii_case(META_PREFIX.as_bytes())
        {
            let key = &h.name[META_PREFIX.len()..];
            if key.bytes().any(|b| b.is_ascii_uppercase()) {
                names.push(key);
            }
        }
    }
    let body = match (length, chunked) {
        (Some(_), true) => return Err(Broken),
        (None, true) if req.version != Some(1) => return Err(Broken),
        (None, true) => Some(Body::chunked()),
        (Some(0), false) | (None, false) => None,
        (Some(n), false) => Some(Body::Length(n)),
    };
    if names.is_empty() && !marked {
        out.extend_from_slice(head);
    } else {
        // the marker line goes before the blank line that ends the head
        let blank = if head.ends_with(b"\r\n") { 2 } else { 1 };
        let (lines, end) = head.split_at(head.len() - blank);
        out.extend_from_slice(lines);
        out.extend_from_slice(MARKER.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(names.join(",").as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(end);
    }
    Ok((method == "HEAD", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(chunks: &[&[u8]]) -> (Vec<u8>, Vec<bool>, bool) {
        let mut r = RequestReader::default();
        let mut out = Vec::new();
        let mut heads = VecDeque::new();
        for c in chunks {
            r.push(c, &mut out, &mut heads);
        }
        (out, heads.into(), r.bailed())
    }

    const PIPELINED: &[u8] = b"PUT /a/c/b HTTP/1.1\r\nContent-Length: 35\r\nx-ms-meta-Owner: x\r\nx-ms-meta-camelCase: y\r\nx-ms-meta-low: z\r\n\r\n\r\nx-ms-meta-Evil: 1\r\n\r\nGET / HTTP\r\nHEAD /a/c/b HTTP/1.1\r\nHost: h\r\n\r\nPUT /a/q HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-MS-META-Big: 1\r\n\r\n4\r\nGET \r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n";

    #[test]
    fn marks_heads_with_capital_names_and_nothing_else() {
        let (out, heads, bailed) = read_all(&[PIPELINED]);
        assert!(!bailed);
        assert_eq!(heads, vec![false, true, false, false]);
        let expected = String::from_utf8_lossy(PIPELINED)
            .replacen(
                "x-ms-meta-low: z\r\n\r\n",
                "x-ms-meta-low: z\r\nweft-meta-case: Owner,camelCase\r\n\r\n",
                1,
            )
            .replacen(
                "X-MS-META-Big: 1\r\n\r\n",
                "X-MS-META-Big: 1\r\nweft-meta-case: Big\r\n\r\n",
                1,
            );
        assert_eq!(String::from_utf8_lossy(&out), expected);
    }

    #[test]
    fn any_split_reads_the_same() {
        let (whole, heads, _) = read_all(&[PIPELINED]);
        for split in 0..PIPELINED.len() {
            let (a, b) = PIPELINED.split_at(split);
            let (out, h, _) = read_all(&[a, b]);
            assert_eq!(out, whole, "split {split}");
            assert_eq!(h, heads);
        }
    }

    #[test]
    fn ambiguous_framing_bails_and_passes_through() {
        let data = b"PUT / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nx-ms-meta-A: 1\r\n\r\nabc";
        let (out, heads, bailed) = read_all(&[data]);
        assert!(bailed);
        assert!(heads.is_empty());
        assert_eq!(out, data);
    }

    #[test]
    fn a_held_head_is_released_at_the_end() {
        let mut r = RequestReader::default();
        let mut out = Vec::new();
        r.push(
            b"GET / HTTP/1.1\r\nx-ms-meta-A: 1\r\n",
            &mut out,
            &mut VecDeque::new(),
        );
        assert!(out.is_empty());
        assert_eq!(r.finish(), b"GET / HTTP/1.1\r\nx-ms-meta-A: 1\r\n");
    }
}
