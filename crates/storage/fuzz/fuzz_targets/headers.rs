//! Any bytes as a request's target and headers (first line the path and
//! query, then `name: value` lines): the query, address, range and
//! conditional-header parsers and the SharedKey verifier never panic, and a
//! resolved range stays inside the blob.
#![no_main]
use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let target = lines.next().unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.trim().as_bytes()), HeaderValue::from_str(v.trim()))
        {
            headers.append(k, v);
        }
    }
    let query = weft_storage::request::Query::parse(query);
    let _ = weft_storage::request::Address::parse(path);
    if let Ok(Some(r)) = weft_storage::range::from_headers(&headers) {
        for size in [0u64, 1, 1000, u64::MAX] {
            if let Ok((start, len)) = weft_storage::range::resolve(r, size) {
                assert!(len >= 1 && start.checked_add(len).is_some_and(|end| end <= size));
            }
        }
    }
    if let Ok(c) = weft_storage::conditions::Conditions::parse(&headers) {
        let cur = weft_storage::conditions::Current { etag: "\"0x1\"", last_modified_ms: 1_700_000_000_000 };
        let _ = c.check(Some(cur), true);
        let _ = c.check(None, false);
    }
    let accounts = weft_storage::Accounts::development();
    let parts = weft_storage::auth::SignedParts { method: "GET", raw_path: path, query: &query, headers: &headers };
    let _ = weft_storage::auth::authenticate(&accounts, weft_storage::DEV_ACCOUNT, &parts, 1_700_000_000_000);
});
