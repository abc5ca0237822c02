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

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses the ISO 8601 UTC forms SAS tokens use (`2026-11-24`,
/// `2026-11-24T20:15Z`, `2026-11-24T20:15:02Z`, `2026-11-24T20:15:02.1234567Z`)
/// into milliseconds since the epoch.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |t: &str| -> Option<i64> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let (y, m, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    if dp.next().is_some() || date.len() != 10 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, m as u32, d as u32) * 86_400_000;
    if let Some(t) = time {
        let (hms, frac) = match t.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (t, None),
        };
        let parts: Vec<&str> = hms.split(':').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
            return None;
        }
        let h = num(parts[0])?;
        let mi = num(parts[1])?;
        let sec = parts.get(2).map_or(Some(0), |p| num(p))?;
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        ms += ((h * 60 + mi) * 60 + sec) * 1000;
        if let Some(f) = frac {
            let digits = num(f)?;
            let scale = 10i64
                .checked_pow(f.len().saturating_sub(3) as u32)
                .unwrap_or(i64::MAX);
            ms += if f.len() >= 3 {
                digits / scale
            } else {
                digits * 10i64.pow(3 - f.len() as u32)
            };
        }
    }
    Some(ms)
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
    fn iso8601_forms() {
        let base = 1_700_000_000_000; // 2023-11-14T22:13:20Z
        assert_eq!(parse_iso8601("2023-11-14T22:13:20Z"), Some(base));
        assert_eq!(parse_iso8601("2023-11-14T22:13:20.5Z"), Some(base + 500));
        assert_eq!(
            parse_iso8601("2023-11-14T22:13:20.1234567Z"),
            Some(base + 123)
        );
        assert_eq!(parse_iso8601("2023-11-14T22:13Z"), Some(base - 20_000));
        assert_eq!(
            parse_iso8601("2023-11-14"),
            Some(base - (22 * 3600 + 13 * 60 + 20) * 1000)
        );
        for bad in [
            "2023-11-14T22:13:20",
            "2023-13-01",
            "23-11-14",
            "2023-11-14T25:00Z",
            "",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20.12345678901234567890Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc1123_round_trips_at_second_precision() {
        let s = rfc1123(1_700_000_000_123);
        assert_eq!(s, "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(parse_rfc1123(&s), Some(1_700_000_000_000));
    }
}
