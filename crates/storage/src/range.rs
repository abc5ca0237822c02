//! The `x-ms-range` / `Range` header: `bytes=start-end` or `bytes=start-`.

use hyper::{HeaderMap, StatusCode};

use crate::api_error::ApiError;

/// A requested byte range; `end` is inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// Parses `bytes=a-b` / `bytes=a-`. `None` when the text is not one.
pub fn parse_spec(s: &str) -> Option<ByteRange> {
    let rest = s.trim().strip_prefix("bytes=")?;
    let (a, b) = rest.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end = match b.trim() {
        "" => None,
        b => Some(b.parse::<u64>().ok()?),
    };
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some(ByteRange { start, end })
}

/// The range a request asks for. `x-ms-range` wins over `Range`; a
/// malformed `x-ms-range` is a 400, a malformed `Range` is ignored (whole
/// blob), as HTTP allows.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<ByteRange>, ApiError> {
    if let Some(v) = headers.get("x-ms-range") {
        let s = v
            .to_str()
            .map_err(|_| ApiError::invalid_header("x-ms-range"))?;
        return parse_spec(s)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_header("x-ms-range"));
    }
    Ok(headers
        .get(hyper::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_spec))
}

/// The served window `(offset, length)` of a blob of `size` bytes; a range
/// starting at or past the end is 416 `InvalidRange`.
pub fn resolve(r: ByteRange, size: u64) -> Result<(u64, u64), ApiError> {
    if r.start >= size {
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
        ));
    }
    let end = r.end.unwrap_or(u64::MAX).min(size - 1);
    Ok((r.start, end - r.start + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let cases = [
            ("bytes=0-9", Some((0, Some(9)))),
            ("bytes=5-", Some((5, None))),
            (" bytes=7-7 ", Some((7, Some(7)))),
            ("bytes=9-3", None),
            ("bytes=-5", None),
            ("items=0-1", None),
            ("bytes=a-b", None),
            ("bytes=0-18446744073709551616", None),
        ];
        for (s, want) in cases {
            assert_eq!(
                parse_spec(s),
                want.map(|(start, end)| ByteRange { start, end }),
                "{s}"
            );
        }
    }

    #[test]
    fn resolution_clamps_and_rejects() {
        assert_eq!(
            resolve(
                ByteRange {
                    start: 2,
                    end: Some(100)
                },
                10
            )
            .unwrap(),
            (2, 8)
        );
        assert_eq!(
            resolve(
                ByteRange {
                    start: 0,
                    end: None
                },
                10
            )
            .unwrap(),
            (0, 10)
        );
        assert_eq!(
            resolve(
                ByteRange {
                    start: 10,
                    end: None
                },
                10
            )
            .unwrap_err()
            .status,
            416
        );
        assert_eq!(
            resolve(
                ByteRange {
                    start: 0,
                    end: None
                },
                0
            )
            .unwrap_err()
            .code,
            "InvalidRange"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever range is asked of whatever blob, the served window lies
        /// inside the blob and is never empty.
        #[test]
        fn resolved_windows_stay_inside_the_blob(start in 0u64..2000, len in proptest::option::of(0u64..2000), size in 0u64..2000) {
            let r = ByteRange { start, end: len.map(|l| start + l) };
            match resolve(r, size) {
                Ok((off, n)) => prop_assert!(n >= 1 && off == start && off + n <= size),
                Err(e) => prop_assert!(start >= size && e.status == StatusCode::RANGE_NOT_SATISFIABLE),
            }
        }
    }
}
