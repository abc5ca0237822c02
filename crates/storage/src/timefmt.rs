//! Time formats of the protocol: RFC 1123 dates in headers, ISO 8601 in
//! SAS tokens, and ETags.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: how times are stored.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn millis_to_system(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// `Tue, 24 Nov 2026 20:15:02 GMT`
pub fn rfc1123(ms: i64) -> String {
    httpdate::fmt_http_date(millis_to_system(ms))
}

/// Parses an RFC 1123 date into milliseconds since the epoch.
pub fn parse_rfc1123(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_millis() as i64)
}

static LAST_ETAG: AtomicU64 = AtomicU64::new(0);

/// A new ETag in Azure's shape (`"0x8DC..."`), strictly increasing within
/// the process so two writes in the same tick never share one.
pub fn new_etag() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut prev = LAST_ETAG.load(Ordering::Relaxed);
    loop {
        let next = nanos.max(prev + 1);
        match LAST_ETAG.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return format!("\"0x{next:X}\""),
            Err(p) => prev = p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted_and_distinct() {
        let a = new_etag();
        let b = new_etag();
        assert!(a.starts_with("\"0x") && a.ends_with('"'));
        assert_ne!(a, b);
    }

    #[test]
    fn rfc1123_round_trips_at_second_precision() {
        let s = rfc1123(1_700_000_000_123);
        assert_eq!(s, "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(parse_rfc1123(&s), Some(1_700_000_000_000));
    }
}
