//! Edm.DateTime values: 100-nanosecond ticks, their ISO 8601 text, entity
//! timestamps and the ETags made from them.

pub const TICKS_PER_SEC: i64 = 10_000_000;
/// 1601-01-01, the earliest Edm.DateTime the service stores.
pub const MIN_TICKS: i64 = -11_644_473_600 * TICKS_PER_SEC;
/// 9999-12-31T23:59:59.9999999Z.
pub const MAX_TICKS: i64 = 253_402_300_800 * TICKS_PER_SEC - 1;

/// Parses `YYYY-MM-DDTHH:MM[:SS[.fffffff]]Z` (the `Z` may be left out)
/// into ticks.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let num = |t: &str, len: usize| -> Option<i64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let mut dp = date.split('-');
    let (y, m, d) = (
        num(dp.next()?, 4)?,
        num(dp.next()?, 2)?,
        num(dp.next()?, 2)?,
    );
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (time, None),
    };
    let mut tp = hms.split(':');
    let h = num(tp.next()?, 2)?;
    let mi = num(tp.next()?, 2)?;
    let sec = match tp.next() {
        Some(x) => num(x, 2)?,
        None => 0,
    };
    if tp.next().is_some() || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut ticks = 0;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 7 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        ticks = f.parse::<i64>().ok()? * 10i64.pow(7 - f.len() as u32);
    }
    let days = crate::timefmt::days_from_civil(y, m as u32, d as u32);
    let t = ((days * 86_400 + h * 3600 + mi * 60 + sec) * TICKS_PER_SEC) + ticks;
    (MIN_TICKS..=MAX_TICKS).contains(&t).then_some(t)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `2026-11-24T22:15:02.1234567Z`; the fraction is left out when zero.
pub fn format_datetime(ticks: i64) -> String {
    let secs = ticks.div_euclid(TICKS_PER_SEC);
    let frac = ticks.rem_euclid(TICKS_PER_SEC);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::blob::civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if frac != 0 {
        s.push_str(&format!(".{frac:07}"));
    }
    s.push('Z');
    s
}

/// Timestamps are always printed with seven fraction digits, as Azure does.
pub fn format_timestamp(ticks: i64) -> String {
    let s = format_datetime(ticks);
    if s.contains('.') {
        s
    } else {
        format!("{}.0000000Z", s.trim_end_matches('Z'))
    }
}

/// `W/"datetime'2026-11-24T22%3A15%3A02.1234567Z'"`
pub fn etag(ticks: i64) -> String {
    format!(
        "W/\"datetime'{}'\"",
        format_timestamp(ticks).replace(':', "%3A")
    )
}

static LAST_TICKS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Now in ticks, strictly increasing within the process so that every
/// write gets a distinct ETag.
pub fn now_ticks() -> i64 {
    use std::sync::atomic::Ordering;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_nanos() / 100) as i64)
        .unwrap_or(0);
    let mut prev = LAST_TICKS.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST_TICKS.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_and_format() {
        for (input, out) in [
            ("2008-07-10T00:00:00Z", "2008-07-10T00:00:00Z"),
            ("2008-07-10T00:00:00", "2008-07-10T00:00:00Z"),
            ("2008-07-10T01:02:03.5Z", "2008-07-10T01:02:03.5000000Z"),
            (
                "2024-02-29T23:59:59.9999999Z",
                "2024-02-29T23:59:59.9999999Z",
            ),
            ("1601-01-01T00:00:00Z", "1601-01-01T00:00:00Z"),
            (
                "9999-12-31T23:59:59.9999999Z",
                "9999-12-31T23:59:59.9999999Z",
            ),
        ] {
            let t = parse_datetime(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(format_datetime(t), out);
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "1600-12-31T23:59:59Z",
            "2008-07-10",
            "2008-07-10T25:00:00Z",
            "2008-07-10T00:00:00.12345678Z",
            "x",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(
            etag(parse_datetime("2026-11-24T22:15:02.1234567Z").unwrap()),
            "W/\"datetime'2026-11-24T22%3A15%3A02.1234567Z'\""
        );
        assert!(now_ticks() < now_ticks());
    }
}
