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

/// The `x-ms-*` headers, lower-cased, sorted, whitespace folded, one
/// `name:value\n` each.
pub fn canonicalized_headers(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-ms-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::new();
    for name in names {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| fold_whitespace(&String::from_utf8_lossy(v.as_bytes())))
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
pub fn string_to_sign(account: &str, path: &str, parts: &SignedParts<'_>) -> String {
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
    s.push_str(&canonicalized_headers(h));
    s.push_str(&canonicalized_resource(account, path, parts));
    s
}

/// The SharedKeyLite string to sign: fewer headers, and only `comp` from
/// the query.
pub fn string_to_sign_lite(account: &str, path: &str, parts: &SignedParts<'_>) -> String {
    let h = parts.headers;
    let mut s = format!(
        "{}\n{}\n{}\n{}\n",
        parts.method,
        header(h, "content-md5"),
        header(h, "content-type"),
        header(h, "date")
    );
    s.push_str(&canonicalized_headers(h));
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

/// Checks `signature` (base64) against the strings to sign computed from
/// the raw and from the decoded path (clients differ in which they sign).
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
    let mut first_sts = None;
    for path in [parts.raw_path, decoded_path.as_str()] {
        let sts = if lite {
            string_to_sign_lite(&account.name, path, parts)
        } else {
            string_to_sign(&account.name, path, parts)
        };
        let expected = sign(account.key(), &sts);
        if given.len() == expected.len() && bool::from(given.ct_eq(&expected)) {
            return Ok(());
        }
        first_sts.get_or_insert(sts);
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
        let sts = string_to_sign("devstoreaccount1", parts.raw_path, &parts);
        assert_eq!(
            sts,
            "GET\n\n\n\n\n\n\n\n\n\n\n\n\
             x-ms-date:Tue, 24 Nov 2026 20:15:02 GMT\nx-ms-meta-zed:a b\nx-ms-version:2025-01-05\n\
             /devstoreaccount1/devstoreaccount1/c1\ncomp:list\nprefix:a,b\nrestype:container"
        );
        let lite = string_to_sign_lite("devstoreaccount1", parts.raw_path, &parts);
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
        let sig = STANDARD.encode(sign(
            acct.key(),
            &string_to_sign(&acct.name, parts.raw_path, &parts),
        ));
        verify(&acct, &parts, false, &sig).unwrap();
        let decoded_sig = STANDARD.encode(sign(
            acct.key(),
            &string_to_sign(&acct.name, "/devstoreaccount1/c1/a b", &parts),
        ));
        verify(&acct, &parts, false, &decoded_sig).unwrap();
        let mut bad = sig.into_bytes();
        bad[3] = if bad[3] == b'A' { b'B' } else { b'A' };
        let e = verify(&acct, &parts, false, std::str::from_utf8(&bad).unwrap()).unwrap_err();
        assert_eq!(e.code, "AuthenticationFailed");
        assert_eq!(e.status, hyper::StatusCode::FORBIDDEN);
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
