//! Any bytes as a connection's request stream and response stream (split
//! at the first `\0RESP\0`; the first four bytes pick where each stream is
//! cut into pieces): the request reader and response writer of
//! `meta_case` never panic; they produce the same bytes however the stream
//! is cut; the reader only ever adds marker lines (deleting them gives the
//! input back); a stream without a marker leaves the writer unchanged.
#![no_main]
use std::collections::VecDeque;

use weft_storage::meta_case::{MARKER, RequestReader, ResponseWriter};

fn cuts(data: &[u8], a: u16, b: u16) -> Vec<&[u8]> {
    if data.is_empty() {
        return vec![data];
    }
    let mut x = a as usize % (data.len() + 1);
    let mut y = b as usize % (data.len() + 1);
    if x > y {
        std::mem::swap(&mut x, &mut y);
    }
    vec![&data[..x], &data[x..y], &data[y..]]
}

fn read(pieces: &[&[u8]]) -> (Vec<u8>, VecDeque<bool>, bool) {
    let mut r = RequestReader::default();
    let (mut out, mut heads) = (Vec::new(), VecDeque::new());
    for p in pieces {
        // as the connection does: body bytes straight through, the rest pushed
        let k = r.passable(p);
        out.extend_from_slice(&p[..k]);
        r.pass(&p[..k]);
        r.push(&p[k..], &mut out, &mut heads);
    }
    let bailed = r.bailed();
    out.extend_from_slice(&r.finish());
    (out, heads, bailed)
}

fn write(pieces: &[&[u8]], heads: &VecDeque<bool>, bailed: bool) -> Vec<u8> {
    let mut w = ResponseWriter::default();
    let mut heads = heads.clone();
    let mut out = Vec::new();
    for p in pieces {
        let k = w.passable(p);
        out.extend_from_slice(&p[..k]);
        w.pass(&p[..k]);
        w.push(&p[k..], &mut out, &mut heads, bailed);
    }
    out.extend_from_slice(&w.finish());
    out
}

fn contains_marker(data: &[u8]) -> bool {
    data.windows(MARKER.len())
        .any(|w| w.eq_ignore_ascii_case(MARKER.as_bytes()))
}

/// `data` less every `weft-meta-case: ...\r\n` line.
fn without_markers(data: &[u8]) -> Vec<u8> {
    let prefix = format!("{MARKER}: ");
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(prefix.as_bytes())
            && let Some(end) = data[i..].windows(2).position(|w| w == b"\r\n")
        {
            i += end + 2;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let a = u16::from_le_bytes([data[0], data[1]]);
    let b = u16::from_le_bytes([data[2], data[3]]);
    let data = &data[4..];
    let sep = b"\0RESP\0";
    let (requests, responses) = match data.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (&data[..i], &data[i + sep.len()..]),
        None => (data, &data[data.len()..]),
    };

    let (whole, heads, bailed) = read(&[requests]);
    let (cut, cut_heads, _) = read(&cuts(requests, a, b));
    assert_eq!(whole, cut, "the request stream depends on how it is cut");
    assert_eq!(heads, cut_heads);
    if !contains_marker(requests) {
        assert_eq!(without_markers(&whole), requests, "the reader changed more than markers");
    }

    let out = write(&[responses], &heads, bailed);
    let cut_out = write(&cuts(responses, b, a), &heads, bailed);
    assert_eq!(out, cut_out, "the response stream depends on how it is cut");
    if !contains_marker(responses) {
        assert_eq!(out, responses, "the writer changed a stream without markers");
    } else {
        assert!(out.len() <= responses.len());
    }
});
