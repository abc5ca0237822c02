//! SharedKey and SharedKeyLite for the blob service: the exact string to
//! sign, HMAC-SHA256 with the account key, constant-time comparison.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2_hmac::Sha256;
use subtle::ConstantTimeEq;

use super::SignedParts;
use crate::account::Account;
use crate::api_error::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// How far a request's date may be from the server's clock.
const MAX_SKEW_MS: i64 = 15 * 60 * 1000;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// How `x-ms-*` header names are ordered in the string to sign. The
/// service orders them like a culture-aware string comparison (hyphens and
/// apostrophes are ignored on the first pass, `_` sorts before digits);
/// most SDKs sort ordinally. The two agree unless names differ in those
/// characters, so a signature is checked against both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderOrder {
    Ordinal,
    Service,
}

/// How header values are canonicalized: the reference folds runs of
/// whitespace into one space; some SDKs only trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whitespace {
    Fold,
    Trim,
}

/// Primary weight of a character in the service's ordering; 0 means
/// "ignored on the first pass".
fn primary_weight(c: char) -> u32 {
    match c {
        'a'..='z' => 0xe00 + (c as u32 - 'a' as u32),
        'A'..='Z' => 0xe00 + (c as u32 - 'A' as u32),
        '0'..='9' => 0xd00 + (c as u32 - '0' as u32),
        '!' => 0x71c,
        '#' => 0x71f,
        '$' => 0x721,
        '%' => 0x723,
        '&' => 0x725,
        '*' => 0x72d,
        '.' => 0x733,
        '^' => 0x743,
        '_' => 0x744,
        '`' => 0x748,
        '|' => 0x74c,
        '~' => 0x750,
        '+' => 0x803,
        _ => 0,
    }
}

/// Secondary weight: only the characters ignored on the first pass count.
fn secondary_weight(c: char) -> u32 {
    match c {
        '\'' => 0x8012,
        '-' => 0x8212,
        _ => 0,
    }
}

/// The service's header-name comparison.
pub fn service_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    const END: u32 = 1;
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for (level, weight) in [primary_weight as fn(char) -> u32, secondary_weight]
        .into_iter()
        .enumerate()
    {
        let (mut i, mut j) = (0, 0);
        loop {
            if level == 1 && i != j {
                return if i > j {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            let w1 = a.get(i).map_or(END, |&c| weight(c));
            let w2 = b.get(j).map_or(END, |&c| weight(c));
            if w1 == END && w2 == END {
                break;
            }
            if w1 == w2 {
                i += 1;
                j += 1;
            } else if w1 == 0 {
                i += 1;
            } else if w2 == 0 {
                j += 1;
            } else {
                return w1.cmp(&w2);
            }
        }
    }
    Ordering::Equal
}

/// The `x-ms-*` headers, lower-cased and sorted, one `name:value\n` each.
pub fn canonicalized_headers(headers: &HeaderMap, order: HeaderOrder, ws: Whitespace) -> String {
    let mut names: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-ms-"))
        .collect();
    match order {
        HeaderOrder::Ordinal => names.sort_unstable(),
        HeaderOrder::Service => names.sort_by(|a, b| service_order(a, b)),
    }
    names.dedup();
    let mut out = String::new();
    for name in names {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| {
                let v = String::from_utf8_lossy(v.as_bytes());
                match ws {
                    Whitespace::Fold => fold_whitespace(&v),
                    Whitespace::Trim => v.trim().to_string(),
                }
            })
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

fn fold_whitespace(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut space = false;
    for c in v.trim().chars() {
        if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
            space = true;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// `/<account><path>` then each query parameter as `\nname:v1,v2`, names
/// lower-cased and sorted, values decoded and sorted.
pub fn canonicalized_resource(account: &str, path: &str, parts: &SignedParts<'_>) -> String {
    let mut out = format!("/{account}{path}");
    let mut names: Vec<String> = parts
        .query
        .pairs()
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let mut values: Vec<&str> = parts
            .query
            .pairs()
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
            .collect();
        values.sort_unstable();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

/// The SharedKey string to sign (blob service, versions from 2015-02-21).
pub fn string_to_sign(
    account: &str,
    path: &str,
    parts: &SignedParts<'_>,
    canon_headers: &str,
) -> String {
    let h = parts.headers;
    let content_length = match header(h, "content-length") {
        "0" => "",
        v => v,
    };
    let mut s = String::new();
    for v in [
        parts.method,
        header(h, "content-encoding"),
        header(h, "content-language"),
        content_length,
        header(h, "content-md5"),
        header(h, "content-type"),
        header(h, "date"),
        header(h, "if-modified-since"),
        header(h, "if-match"),
        header(h, "if-none-match"),
        header(h, "if-unmodified-since"),
        header(h, "range"),
    ] {
        s.push_str(v);
        s.push('\n');
    }
    s.push_str(canon_headers);
    s.push_str(&canonicalized_resource(account, path, parts));
    s
}

/// The SharedKeyLite string to sign: fewer headers, and only `comp` from
/// the query.
pub fn string_to_sign_lite(
    account: &str,
    path: &str,
    parts: &SignedParts<'_>,
    canon_headers: &str,
) -> String {
    let h = parts.headers;
    let mut s = format!(
        "{}\n{}\n{}\n{}\n",
        parts.method,
        header(h, "content-md5"),
        header(h, "content-type"),
        header(h, "date")
    );
    s.push_str(canon_headers);
    s.push_str(&format!("/{account}{path}"));
    if let Some(comp) = parts.query.get("comp") {
        s.push_str("?comp=");
        s.push_str(comp);
    }
    s
}

/// HMAC-SHA256 of the string to sign under the key.
pub fn sign(key: &[u8], string_to_sign: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(string_to_sign.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Checks `signature` (base64) against every string to sign a conforming
/// client may have produced: raw or decoded path, ordinal or service
/// header order, folded or trimmed values (usually all the same string).
pub fn verify(
    account: &Account,
    parts: &SignedParts<'_>,
    lite: bool,
    signature: &str,
) -> Result<(), ApiError> {
    let given = STANDARD.decode(signature.trim()).unwrap_or_default();
    let decoded_path = percent_encoding::percent_decode_str(parts.raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let mut paths = vec![parts.raw_path];
    if decoded_path != parts.raw_path {
        paths.push(decoded_path.as_str());
    }
    let mut first_sts = None;
    let mut tried: Vec<(&str, String)> = Vec::with_capacity(8);
    // The usual string (ordinal order, folded values, raw path) first; the
    // others are built only when it does not match.
    for order in [HeaderOrder::Ordinal, HeaderOrder::Service] {
        for ws in [Whitespace::Fold, Whitespace::Trim] {
            let canon = canonicalized_headers(parts.headers, order, ws);
            for path in &paths {
                if tried.iter().any(|(p, c)| p == path && *c == canon) {
                    continue;
                }
                let sts = if lite {
                    string_to_sign_lite(&account.name, path, parts, &canon)
                } else {
                    string_to_sign(&account.name, path, parts, &canon)
                };
                let expected = sign(account.key(), &sts);
                if given.len() == expected.len() && bool::from(given.ct_eq(&expected)) {
                    return Ok(());
                }
                first_sts.get_or_insert(sts);
                tried.push((path, canon.clone()));
            }
        }
    }
    Err(ApiError::auth_failed(format!(
        "The MAC signature found in the HTTP request '{signature}' is not the same as any computed signature. Server used following string to sign: '{}'.",
        first_sts.unwrap_or_default()
    )))
}

/// A signed request must carry `x-ms-date` or `Date` within 15 minutes of now.
pub fn check_date(headers: &HeaderMap, now_ms: i64) -> Result<(), ApiError> {
    let raw = match header(headers, "x-ms-date") {
        "" => header(headers, "date"),
        v => v,
    };
    if raw.is_empty() {
        return Err(ApiError::auth_failed("Request date header not specified."));
    }
    let Some(t) = crate::timefmt::parse_rfc1123(raw) else {
        return Err(ApiError::auth_failed(format!(
            "The date header value '{raw}' is not a valid RFC 1123 date."
        )));
    };
    if (now_ms - t).abs() > MAX_SKEW_MS {
        return Err(ApiError::auth_failed(format!(
            "Request date header too old: '{raw}'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Query;
    use hyper::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn string_to_sign_repeats_the_account_for_path_style_urls() {
        let h = headers(&[
            ("x-ms-version", "2025-01-05"),
            ("x-ms-date", "Tue, 24 Nov 2026 20:15:02 GMT"),
            ("content-length", "0"),
            ("x-ms-meta-Zed", "  a   b "),
        ]);
        let q = Query::parse(Some("restype=container&comp=list&Prefix=b&prefix=a"));
        let parts = SignedParts {
            method: "GET",
            raw_path: "/devstoreaccount1/c1",
            query: &q,
            headers: &h,
        };
        let canon = canonicalized_headers(&h, HeaderOrder::Ordinal, Whitespace::Fold);
        let sts = string_to_sign("devstoreaccount1", parts.raw_path, &parts, &canon);
        assert_eq!(
            sts,
            "GET\n\n\n\n\n\n\n\n\n\n\n\n\
             x-ms-date:Tue, 24 Nov 2026 20:15:02 GMT\nx-ms-meta-zed:a b\nx-ms-version:2025-01-05\n\
             /devstoreaccount1/devstoreaccount1/c1\ncomp:list\nprefix:a,b\nrestype:container"
        );
        let lite = string_to_sign_lite("devstoreaccount1", parts.raw_path, &parts, &canon);
        assert!(
            lite.ends_with("/devstoreaccount1/devstoreaccount1/c1?comp=list"),
            "{lite}"
        );
    }

    #[test]
    fn verify_accepts_the_right_signature_and_rejects_a_tampered_one() {
        let acct = Account::new(crate::DEV_ACCOUNT, crate::DEV_KEY).unwrap();
        let h = headers(&[("x-ms-date", "Tue, 24 Nov 2026 20:15:02 GMT")]);
        let q = Query::parse(None);
        let parts = SignedParts {
            method: "PUT",
            raw_path: "/devstoreaccount1/c1/a%20b",
            query: &q,
            headers: &h,
        };
        let canon = canonicalized_headers(&h, HeaderOrder::Ordinal, Whitespace::Fold);
        let sig = STANDARD.encode(sign(
            acct.key(),
            &string_to_sign(&acct.name, parts.raw_path, &parts, &canon),
        ));
        verify(&acct, &parts, false, &sig).unwrap();
        let decoded_sig = STANDARD.encode(sign(
            acct.key(),
            &string_to_sign(&acct.name, "/devstoreaccount1/c1/a b", &parts, &canon),
        ));
        verify(&acct, &parts, false, &decoded_sig).unwrap();
        let mut bad = sig.into_bytes();
        bad[3] = if bad[3] == b'A' { b'B' } else { b'A' };
        let e = verify(&acct, &parts, false, std::str::from_utf8(&bad).unwrap()).unwrap_err();
        assert_eq!(e.code, "AuthenticationFailed");
        assert_eq!(e.status, hyper::StatusCode::FORBIDDEN);
    }

    #[test]
    fn service_header_order_ignores_hyphens_first_and_puts_underscore_before_digits() {
        use std::cmp::Ordering::*;
        let cases = [
            ("x-ms-meta-a_b", "x-ms-meta-a1", Less),
            ("x-ms-meta-ab", "x-ms-meta-a-c", Less),
            ("x-ms-meta-ab", "x-ms-meta-a-b", Less),
            ("x-ms-date", "x-ms-version", Less),
            ("x-ms-meta-a", "x-ms-meta-ab", Less),
            ("x-ms-meta-a", "x-ms-meta-a", Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(service_order(a, b), want, "{a} vs {b}");
            assert_eq!(service_order(b, a), want.reverse(), "{b} vs {a}");
        }
        let h = headers(&[("x-ms-meta-a1", "1"), ("x-ms-meta-a_b", "2")]);
        assert_eq!(
            canonicalized_headers(&h, HeaderOrder::Ordinal, Whitespace::Fold),
            "x-ms-meta-a1:1\nx-ms-meta-a_b:2\n"
        );
        assert_eq!(
            canonicalized_headers(&h, HeaderOrder::Service, Whitespace::Fold),
            "x-ms-meta-a_b:2\nx-ms-meta-a1:1\n"
        );
    }

    #[test]
    fn dates_must_be_present_and_recent() {
        let now = crate::timefmt::parse_rfc1123("Tue, 24 Nov 2026 20:15:02 GMT").unwrap();
        assert!(check_date(&headers(&[]), now).is_err());
        assert!(check_date(&headers(&[("date", "Tue, 24 Nov 2026 20:20:00 GMT")]), now).is_ok());
        assert!(
            check_date(
                &headers(&[("x-ms-date", "Tue, 24 Nov 2026 19:00:00 GMT")]),
                now
            )
            .is_err()
        );
        assert!(check_date(&headers(&[("x-ms-date", "yesterday")]), now).is_err());
    }
}
