//! Any bytes as a request's target and headers (first line the path and
//! query, then `name: value` lines): the query, address, copy-source,
//! range, conditional-header, lease, metadata, date, head-size and
//! response-format
//! parsers and every verifier (SharedKey for blob/queue and table, account,
//! blob, queue and table SAS) never panic; a resolved range stays inside
//! the blob, and metadata that passes stays within Azure's limits.
#![no_main]
use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use weft_storage::auth::{self, queue_sas, sas, table_sas};
use weft_storage::request::{Address, CopySource, Query};
use weft_storage::xml::SignedIdentifier;

const NOW: i64 = 1_700_000_000_000;

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
            && let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(k, v);
        }
    }
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let query = Query::parse(query);
    let addr = Address::parse(path);
    let _ = weft_storage::request::check_head(target.len(), &headers);
    if let Ok(Some(r)) = weft_storage::range::from_headers(&headers) {
        for size in [0u64, 1, 1000, u64::MAX] {
            if let Ok((start, len)) = weft_storage::range::resolve(r, size) {
                assert!(len >= 1 && start.checked_add(len).is_some_and(|end| end <= size));
            }
        }
    }
    if let Ok(c) = weft_storage::conditions::Conditions::parse(&headers) {
        let cur = weft_storage::conditions::Current {
            etag: "\"0x1\"",
            last_modified_ms: NOW,
        };
        let _ = c.check(Some(cur), true);
        let _ = c.check(None, false);
    }
    let _ = weft_storage::lease::parse_action(header);
    if let Ok(meta) = weft_storage::blob::headers::metadata(&headers) {
        let size: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(size <= 8 * 1024);
    }
    for (_, v) in &headers {
        if let Ok(v) = v.to_str() {
            let _ = weft_storage::timefmt::parse_rfc1123(v);
            let _ = weft_storage::timefmt::parse_iso8601(v);
        }
    }
    let _ = weft_storage::table::format::Format::parse(
        query.get("$format"),
        header("accept").as_deref(),
    );
    if let Some(source) = header("x-ms-copy-source")
        && let Ok(s) = CopySource::parse(&source)
    {
        assert!(!s.container.is_empty() && !s.blob.is_empty());
    }
    let _ = CopySource::parse(target);

    let accounts = weft_storage::Accounts::development();
    let parts = auth::SignedParts {
        method: "GET",
        raw_path: path,
        query: &query,
        headers: &headers,
    };
    let _ = auth::authenticate(&accounts, weft_storage::DEV_ACCOUNT, &parts, NOW);
    let _ = auth::authenticate_table(&accounts, weft_storage::DEV_ACCOUNT, &parts, NOW);
    let account = accounts
        .get(weft_storage::DEV_ACCOUNT)
        .expect("the development account");
    let (container, blob) = match &addr {
        Ok(a) => (a.container.clone().unwrap_or_default(), a.blob.clone()),
        Err(_) => (String::new(), None),
    };
    // A stored policy built from the query itself, so the policy paths run.
    let policy = SignedIdentifier {
        id: query.get("si").unwrap_or("p").to_string(),
        start: query.get("st").map(str::to_string),
        expiry: query.get("se").map(str::to_string),
        permission: query.get("sp").map(str::to_string),
    };
    let _ = sas::is_sas(&query);
    let _ = sas::verify_account(account, &query, NOW);
    for p in [None, Some(&policy)] {
        let _ = sas::verify_service(account, &container, blob.as_deref(), &query, p, NOW);
        let _ = queue_sas::verify(account, &container, &query, p, NOW);
        if let Ok(g) = table_sas::verify(account, Some(&container), &query, p, NOW) {
            let _ = g.covers("", "");
            let _ = g.covers(&container, blob.as_deref().unwrap_or_default());
        }
        let _ = table_sas::verify(account, None, &query, p, NOW);
    }
});
