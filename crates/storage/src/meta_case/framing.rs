//! Where a message body ends: `Content-Length` bytes, chunked coding
//! (size lines, data, CRLF, trailers), nothing, or the end of the
//! connection. Anything unusual is [`Broken`]: the caller stops reading
//! the stream and passes it through untouched.

/// The longest chunk-size line or trailer line accepted.
const MAX_LINE: usize = 4096;
/// The most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 64 * 1024;

/// The stream is not framed the way this reader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broken;

/// What is left of a message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// This many bytes (`Content-Length`).
    Length(u64),
    /// Chunked coding, at this point.
    Chunked(Chunked),
    /// Everything up to the end of the connection.
    UntilClose,
}

/// Where chunked coding is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunked {
    /// Reading a chunk-size line (bytes so far).
    Size(Vec<u8>),
    /// This many data bytes of the current chunk left.
    Data(u64),
    /// The CRLF after a chunk's data; how many of its bytes were seen.
    DataEnd(u8),
    /// Trailer lines after the last chunk: the current line, and the
    /// trailer bytes seen so far.
    Trailer(Vec<u8>, usize),
}

impl Body {
    /// Chunked coding from its start.
    pub fn chunked() -> Body {
        Body::Chunked(Chunked::Size(Vec::new()))
    }

    /// How many of `data`'s leading bytes are plain body bytes that
    /// [`Body::advance`] would consume without looking at them.
    pub fn passable(&self, data: &[u8]) -> usize {
        match self {
            Body::Length(n) => usize::try_from(*n).unwrap_or(usize::MAX).min(data.len()),
            Body::Chunked(Chunked::Data(n)) => {
                usize::try_from(*n).unwrap_or(usize::MAX).min(data.len())
            }
            Body::Chunked(_) => 0,
            Body::UntilClose => data.len(),
        }
    }

    /// Consumes body bytes from the front of `data`: how many, and
    /// whether the body ended there (the next message starts after them).
    pub fn advance(&mut self, data: &[u8]) -> Result<(usize, bool), Broken> {
        match self {
            Body::Length(n) => {
                let take = usize::try_from(*n).unwrap_or(usize::MAX).min(data.len());
                *n -= take as u64;
                Ok((take, *n == 0))
            }
            Body::UntilClose => Ok((data.len(), false)),
            Body::Chunked(c) => {
                let mut used = 0;
                while used < data.len() {
                    let rest = &data[used..];
                    match c {
                        Chunked::Data(n) => {
                            let take = usize::try_from(*n).unwrap_or(usize::MAX).min(rest.len());
                            *n -= take as u64;
                            used += take;
                            if *n == 0 {
                                *c = Chunked::DataEnd(0);
                            }
                        }
                        Chunked::DataEnd(seen) => {
                            let want = if *seen == 0 { b'\r' } else { b'\n' };
                            if rest[0] != want {
                                return Err(Broken);
                            }
                            used += 1;
                            if *seen == 0 {
                                *seen = 1;
                            } else {
                                *c = Chunked::Size(Vec::new());
                            }
                        }
                        Chunked::Size(line) => {
                            let (take, complete) = take_line(line, rest)?;
                            used += take;
                            if complete {
                                let size = match httparse::parse_chunk_size(line) {
                                    Ok(httparse::Status::Complete((n, size)))
                                        if n == line.len() =>
                                    {
                                        size
                                    }
                                    _ => return Err(Broken),
                                };
                                *c = if size == 0 {
                                    Chunked::Trailer(Vec::new(), 0)
                                } else {
                                    Chunked::Data(size)
                                };
                            }
                        }
                        Chunked::Trailer(line, total) => {
                            let (take, complete) = take_line(line, rest)?;
                            *total += take;
                            if *total > MAX_TRAILERS {
                                return Err(Broken);
                            }
                            used += take;
                            if complete {
                                if line.len() == 2 {
                                    return Ok((used, true));
                                }
                                line.clear();
                            }
                        }
                    }
                }
                Ok((used, false))
            }
        }
    }
}

/// Moves the bytes of `data` up to and including its first `\n` onto
/// `line` (a chunk-size or trailer line, at most [`MAX_LINE`] bytes):
/// how many, and whether the line is now complete (it must end in CRLF).
fn take_line(line: &mut Vec<u8>, data: &[u8]) -> Result<(usize, bool), Broken> {
    let (take, complete) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (i + 1, true),
        None => (data.len(), false),
    };
    if line.len() + take > MAX_LINE {
        return Err(Broken);
    }
    line.extend_from_slice(&data[..take]);
    if complete && !line.ends_with(b"\r\n") {
        return Err(Broken);
    }
    Ok((take, complete))
}

/// Where a head ends in `buf`, searching from `from`: the index just past
/// the first blank line at or after it (`\n\n` or `\n\r\n`), if any.
pub fn blank_line(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let at = i + p;
        match buf.get(at + 1) {
            Some(b'\n') => return Some(at + 2),
            Some(b'\r') if buf.get(at + 2) == Some(&b'\n') => return Some(at + 3),
            _ => i = at + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut body: Body, data: &[u8]) -> Result<(usize, bool), Broken> {
        body.advance(data)
    }

    #[test]
    fn content_length_ends_after_its_bytes() {
        assert_eq!(run(Body::Length(3), b"abcdef"), Ok((3, true)));
        assert_eq!(run(Body::Length(9), b"abcdef"), Ok((6, false)));
    }

    #[test]
    fn chunked_ends_after_trailers_whatever_the_split() {
        let data = b"5\r\nhello\r\n3;ext=1\r\nx-y\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for split in 0..data.len() {
            let mut body = Body::chunked();
            let (a, done_a) = body.advance(&data[..split]).unwrap();
            if done_a {
                assert_eq!(a, data.len() - 4, "split {split}");
                continue;
            }
            assert_eq!(a, split);
            let (b, done) = body.advance(&data[split..]).unwrap();
            assert!(done, "split {split}");
            assert_eq!(&data[split + b..], b"NEXT");
        }
    }

    #[test]
    fn malformed_chunks_break() {
        for bad in [&b"zz\r\n"[..], b"3\r\nabcX", b"3\nabc\r\n", b"0\r\n\n"] {
            assert_eq!(run(Body::chunked(), bad), Err(Broken), "{bad:?}");
        }
    }

    #[test]
    fn blank_lines() {
        assert_eq!(
            blank_line(b"GET / HTTP/1.1\r\na: b\r\n\r\nrest", 0),
            Some(24)
        );
        assert_eq!(blank_line(b"GET / HTTP/1.1\na: b\n\nrest", 0), Some(21));
        assert_eq!(blank_line(b"GET / HTTP/1.1\r\na: b\r\n", 0), None);
    }
}
