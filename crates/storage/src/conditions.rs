//! Conditional headers: If-Match, If-None-Match, If-Modified-Since,
//! If-Unmodified-Since, evaluated against a resource's ETag and
//! Last-Modified time (second precision, as HTTP dates carry).

use hyper::HeaderMap;

use crate::api_error::ApiError;

/// An ETag condition: `*` or a list of ETags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagMatch {
    Any,
    List(Vec<String>),
}

impl EtagMatch {
    fn parse(raw: &str) -> EtagMatch {
        if raw.trim() == "*" {
            return EtagMatch::Any;
        }
        EtagMatch::List(
            raw.split(',')
                .map(normalize)
                .filter(|e| !e.is_empty())
                .collect(),
        )
    }

    fn matches(&self, etag: &str) -> bool {
        match self {
            EtagMatch::Any => true,
            EtagMatch::List(l) => {
                let etag = normalize(etag);
                l.contains(&etag)
            }
        }
    }
}

fn normalize(e: &str) -> String {
    let e = e.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"').to_string()
}

/// The conditions a request carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<EtagMatch>,
    pub if_none_match: Option<EtagMatch>,
    pub if_modified_since: Option<i64>,
    pub if_unmodified_since: Option<i64>,
    /// `x-ms-lease-id`: the lease a write holds (checked by the store).
    pub lease_id: Option<String>,
}

/// The current state of the resource a condition is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    pub etag: &'a str,
    pub last_modified_ms: i64,
}

impl Conditions {
    /// Reads the four headers; an unparseable date is a 400.
    pub fn parse(headers: &HeaderMap) -> Result<Conditions, ApiError> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let date = |name: &'static str| -> Result<Option<i64>, ApiError> {
            match text(name) {
                None => Ok(None),
                Some(v) => crate::timefmt::parse_rfc1123(v)
                    .map(Some)
                    .ok_or_else(|| ApiError::invalid_header(name)),
            }
        };
        Ok(Conditions {
            if_match: text("if-match").map(EtagMatch::parse),
            if_none_match: text("if-none-match").map(EtagMatch::parse),
            if_modified_since: date("if-modified-since")?,
            if_unmodified_since: date("if-unmodified-since")?,
            lease_id: text("x-ms-lease-id").map(str::to_string),
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }

    /// Checks the conditions. `read` requests (GET/HEAD) get 304 where a
    /// write gets 412. A missing resource fails only an If-Match.
    pub fn check(&self, current: Option<Current<'_>>, read: bool) -> Result<(), ApiError> {
        let Some(cur) = current else {
            return match self.if_match {
                Some(_) => Err(ApiError::condition_not_met()),
                None => Ok(()),
            };
        };
        let modified_s = cur.last_modified_ms.div_euclid(1000);
        if let Some(m) = &self.if_match
            && !m.matches(cur.etag)
        {
            return Err(ApiError::condition_not_met());
        }
        if let Some(t) = self.if_unmodified_since
            && modified_s > t.div_euclid(1000)
        {
            return Err(ApiError::condition_not_met());
        }
        let not_modified = || {
            if read {
                ApiError::not_modified()
            } else {
                ApiError::condition_not_met()
            }
        };
        if let Some(m) = &self.if_none_match
            && m.matches(cur.etag)
        {
            return Err(not_modified());
        }
        if let Some(t) = self.if_modified_since
            && modified_s <= t.div_euclid(1000)
        {
            return Err(not_modified());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;
    use hyper::header::{HeaderName, HeaderValue};

    fn conds(pairs: &[(&str, &str)]) -> Conditions {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Conditions::parse(&h).unwrap()
    }

    const T: &str = "Tue, 14 Nov 2023 22:13:20 GMT"; // 1_700_000_000_000 ms

    #[test]
    fn table_of_outcomes() {
        let cur = Some(Current {
            etag: "\"0xAB\"",
            last_modified_ms: 1_700_000_000_500,
        });
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, Option<StatusCode>);
        let cases: &[Case<'_>] = &[
            (&[], true, None),
            (&[("if-match", "\"0xAB\"")], false, None),
            (
                &[("if-match", "\"0xAC\"")],
                false,
                Some(StatusCode::PRECONDITION_FAILED),
            ),
            (&[("if-match", "\"0xAC\", \"0xAB\"")], false, None),
            (&[("if-match", "*")], false, None),
            (
                &[("if-none-match", "\"0xAB\"")],
                true,
                Some(StatusCode::NOT_MODIFIED),
            ),
            (
                &[("if-none-match", "\"0xAB\"")],
                false,
                Some(StatusCode::PRECONDITION_FAILED),
            ),
            (
                &[("if-none-match", "*")],
                false,
                Some(StatusCode::PRECONDITION_FAILED),
            ),
            (&[("if-none-match", "\"0xAC\"")], true, None),
            (
                &[("if-modified-since", T)],
                true,
                Some(StatusCode::NOT_MODIFIED),
            ),
            (
                &[("if-modified-since", "Tue, 14 Nov 2023 22:13:19 GMT")],
                true,
                None,
            ),
            (&[("if-unmodified-since", T)], false, None),
            (
                &[("if-unmodified-since", "Tue, 14 Nov 2023 22:13:19 GMT")],
                false,
                Some(StatusCode::PRECONDITION_FAILED),
            ),
        ];
        for (headers, read, want) in cases {
            let got = conds(headers).check(cur, *read).err().map(|e| e.status);
            assert_eq!(got, *want, "{headers:?} read={read}");
        }
    }

    #[test]
    fn missing_resource_fails_only_if_match() {
        assert!(conds(&[("if-match", "*")]).check(None, false).is_err());
        assert!(conds(&[("if-none-match", "*")]).check(None, false).is_ok());
    }

    #[test]
    fn bad_dates_are_rejected() {
        let mut h = HeaderMap::new();
        h.insert("if-modified-since", HeaderValue::from_static("soon"));
        assert_eq!(
            Conditions::parse(&h).unwrap_err().code,
            "InvalidHeaderValue"
        );
    }
}
