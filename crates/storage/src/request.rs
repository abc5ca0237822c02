//! The parts of a request the protocol looks at: the path-style address
//! (`/<account>/<container>/<blob>`) and the decoded query string.

use hyper::HeaderMap;
use percent_encoding::percent_decode_str;

use crate::api_error::ApiError;

/// The decoded query parameters, in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string. `+` stays a plus (Azure decodes `%2B`).
    pub fn parse(raw: Option<&str>) -> Query {
        let mut pairs = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(k), decode(v)));
        }
        Query { pairs }
    }

    /// The first value of a parameter; names compare case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// The blob an `x-ms-copy-source` URL names (path-style, any host), with
/// the URL's decoded query (a SAS for a source in another account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub account: String,
    pub container: String,
    pub blob: String,
    pub query: Query,
}

impl CopySource {
    /// Parses the header's value; anything but an absolute URL naming a
    /// blob is 400 `InvalidHeaderValue`.
    pub fn parse(url: &str) -> Result<CopySource, ApiError> {
        let bad = || ApiError::invalid_header("x-ms-copy-source");
        let uri: hyper::Uri = url.parse().map_err(|_| bad())?;
        let addr = Address::parse(uri.path()).map_err(|_| bad())?;
        let (Some(container), Some(blob)) = (addr.container, addr.blob) else {
            return Err(bad());
        };
        Ok(CopySource {
            account: addr.account,
            container,
            blob,
            query: Query::parse(uri.query()),
        })
    }
}

/// Longest single header (name, `: ` and value) a request may carry. Azure
/// documents no number; its front end refuses single headers past 16 KiB,
/// and no header the protocol defines comes near that (all metadata
/// together is at most 8 KiB).
pub const MAX_HEADER: usize = 16 * 1024;
/// Largest request head: the request target and every header together.
pub const MAX_HEAD: usize = 64 * 1024;

/// Refuses an oversized request head with 400 `InvalidHeaderValue` and an
/// Azure error body, before anything else looks at the request.
///
/// What never gets here is answered by hyper itself, without an Azure
/// body: a head too large for its read buffer (a bare 431, somewhere past
/// 100 KiB), more than 100 headers (431), and a head it cannot frame, such
/// as a malformed or repeated-and-different `Content-Length` (a bare 400,
/// connection closed).
pub fn check_head(target_len: usize, headers: &HeaderMap) -> Result<(), ApiError> {
    let mut total = target_len;
    for (name, value) in headers {
        let line = name.as_str().len() + 2 + value.len();
        if line > MAX_HEADER {
            return Err(ApiError::new(
                hyper::StatusCode::BAD_REQUEST,
                "InvalidHeaderValue",
                format!(
                    "The value for one of the HTTP headers is not in the correct format: {name} is {line} bytes, more than {MAX_HEADER}."
                ),
            ));
        }
        total += line + 2;
    }
    if total > MAX_HEAD {
        return Err(ApiError::new(
            hyper::StatusCode::BAD_REQUEST,
            "InvalidHeaderValue",
            format!(
                "The value for one of the HTTP headers is not in the correct format: the request head is {total} bytes, more than {MAX_HEAD}."
            ),
        ));
    }
    Ok(())
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Where a request points, from a path-style URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub account: String,
    pub container: Option<String>,
    pub blob: Option<String>,
}

impl Address {
    /// Splits `/<account>[/<container>[/<blob...>]]` after percent-decoding
    /// each part; the blob name keeps its slashes.
    pub fn parse(raw_path: &str) -> Result<Address, ApiError> {
        let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
        let mut it = path.splitn(3, '/');
        let account = it.next().map(decode).unwrap_or_default();
        if account.is_empty() {
            return Err(ApiError::invalid_query("account"));
        }
        let container = it.next().filter(|s| !s.is_empty()).map(decode);
        let blob = it.next().filter(|s| !s.is_empty()).map(decode);
        Ok(Address {
            account,
            container,
            blob,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decodes_and_keeps_plus() {
        let q = Query::parse(Some("restype=container&comp=list&sig=a%2Bb+c&prefix=x%2Fy"));
        assert_eq!(q.get("COMP"), Some("list"));
        assert_eq!(q.get("sig"), Some("a+b+c"));
        assert_eq!(q.get("prefix"), Some("x/y"));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn address_splits_path_style_urls() {
        let cases = [
            ("/devstoreaccount1", ("devstoreaccount1", None, None)),
            ("/devstoreaccount1/", ("devstoreaccount1", None, None)),
            (
                "/devstoreaccount1/c1",
                ("devstoreaccount1", Some("c1"), None),
            ),
            (
                "/a/c1/dir/sub/b%20x.txt",
                ("a", Some("c1"), Some("dir/sub/b x.txt")),
            ),
        ];
        for (path, (a, c, b)) in cases {
            let got = Address::parse(path).unwrap();
            assert_eq!(got.account, a, "{path}");
            assert_eq!(got.container.as_deref(), c, "{path}");
            assert_eq!(got.blob.as_deref(), b, "{path}");
        }
        assert!(Address::parse("/").is_err());
    }

    #[test]
    fn copy_sources_name_a_blob() {
        let s =
            CopySource::parse("http://127.0.0.1:10000/acct/c1/dir/b%20x?sv=2020-02-10&sig=a%2Bb")
                .unwrap();
        assert_eq!(
            (s.account.as_str(), s.container.as_str(), s.blob.as_str()),
            ("acct", "c1", "dir/b x")
        );
        assert_eq!(s.query.get("sig"), Some("a+b"));
        for bad in [
            "",
            "not a url",
            "http://h/acct",
            "http://h/acct/c1",
            "http://h/acct/c1/",
        ] {
            assert_eq!(
                CopySource::parse(bad).unwrap_err().code,
                "InvalidHeaderValue",
                "{bad}"
            );
        }
    }

    #[test]
    fn oversized_heads_are_invalid_header_values() {
        let head = |sizes: &[usize]| {
            let mut h = HeaderMap::new();
            for (i, n) in sizes.iter().enumerate() {
                let name =
                    hyper::header::HeaderName::from_bytes(format!("x-ms-meta-h{i}").as_bytes())
                        .unwrap();
                h.insert(name, "a".repeat(*n).parse().unwrap());
            }
            check_head(40, &h).map_err(|e| (e.status.as_u16(), e.code))
        };
        assert_eq!(head(&[8 * 1024, 10, 16_000]), Ok(()));
        assert_eq!(head(&[MAX_HEADER]), Err((400, "InvalidHeaderValue")));
        assert_eq!(head(&[15_000; 4]), Ok(()));
        assert_eq!(head(&[15_000; 5]), Err((400, "InvalidHeaderValue")));
    }
}
