//! SharedKey and SharedKeyLite for the table service. Its strings to sign
//! differ from blob and queue: no canonicalized headers, the date is
//! `x-ms-date` when sent (else `Date`), and only `comp` of the query counts.
//!
//! SharedKey: `VERB\nContent-MD5\nContent-Type\nDate\nCanonicalizedResource`;
//! SharedKeyLite: `Date\nCanonicalizedResource`. With path-style URLs the
//! canonicalized resource repeats the account: `/acct/acct/Tables`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;
use subtle::ConstantTimeEq;

use super::SignedParts;
use super::shared_key::sign;
use crate::account::Account;
use crate::api_error::ApiError;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `/<account><path>[?comp=<comp>]`
pub fn canonicalized_resource(account: &str, path: &str, parts: &SignedParts<'_>) -> String {
    let mut s = format!("/{account}{path}");
    if let Some(comp) = parts.query.get("comp") {
        s.push_str("?comp=");
        s.push_str(comp);
    }
    s
}

/// The SharedKey string to sign with the given date value.
pub fn string_to_sign(account: &str, path: &str, parts: &SignedParts<'_>, date: &str) -> String {
    let h = parts.headers;
    format!(
        "{}\n{}\n{}\n{date}\n{}",
        parts.method,
        header(h, "content-md5"),
        header(h, "content-type"),
        canonicalized_resource(account, path, parts)
    )
}

/// The SharedKeyLite string to sign with the given date value.
pub fn string_to_sign_lite(
    account: &str,
    path: &str,
    parts: &SignedParts<'_>,
    date: &str,
) -> String {
    format!("{date}\n{}", canonicalized_resource(account, path, parts))
}

/// Checks `signature` against the strings to sign a conforming client may
/// have produced (raw or decoded path; `x-ms-date` or `Date`).
pub fn verify(
    account: &Account,
    parts: &SignedParts<'_>,
    lite: bool,
    signature: &str,
) -> Result<(), ApiError> {
    let given = STANDARD.decode(signature.trim()).unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(parts.raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let mut paths = vec![parts.raw_path];
    if decoded != parts.raw_path {
        paths.push(&decoded);
    }
    let mut dates = Vec::with_capacity(2);
    for d in [
        header(parts.headers, "x-ms-date"),
        header(parts.headers, "date"),
    ] {
        if !d.is_empty() && !dates.contains(&d) {
            dates.push(d);
        }
    }
    if dates.is_empty() {
        dates.push("");
    }
    let mut first = None;
    for path in &paths {
        for date in &dates {
            let sts = if lite {
                string_to_sign_lite(&account.name, path, parts, date)
            } else {
                string_to_sign(&account.name, path, parts, date)
            };
            let expected = sign(account.key(), &sts);
            if given.len() == expected.len() && bool::from(given.ct_eq(&expected)) {
                return Ok(());
            }
            first.get_or_insert(sts);
        }
    }
    Err(ApiError::auth_failed(format!(
        "The MAC signature found in the HTTP request '{signature}' is not the same as any computed signature. Server used following string to sign: '{}'.",
        first.unwrap_or_default()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Query;
    use hyper::header::{HeaderName, HeaderValue};

    fn parts_for<'a>(h: &'a HeaderMap, q: &'a Query, path: &'a str) -> SignedParts<'a> {
        SignedParts {
            method: "POST",
            raw_path: path,
            query: q,
            headers: h,
        }
    }

    #[test]
    fn strings_to_sign_follow_the_table_rules() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-ms-date", "Tue, 24 Nov 2026 22:15:02 GMT"),
            ("content-type", "application/json"),
            ("x-ms-version", "2019-02-02"),
        ] {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let q = Query::parse(Some("comp=acl&$filter=x"));
        let p = parts_for(&h, &q, "/devstoreaccount1/Tables");
        assert_eq!(
            string_to_sign(
                "devstoreaccount1",
                p.raw_path,
                &p,
                "Tue, 24 Nov 2026 22:15:02 GMT"
            ),
            "POST\n\napplication/json\nTue, 24 Nov 2026 22:15:02 GMT\n/devstoreaccount1/devstoreaccount1/Tables?comp=acl"
        );
        assert_eq!(
            string_to_sign_lite("devstoreaccount1", p.raw_path, &p, "d"),
            "d\n/devstoreaccount1/devstoreaccount1/Tables?comp=acl"
        );
        let acct = Account::new(crate::DEV_ACCOUNT, crate::DEV_KEY).unwrap();
        let sig = STANDARD.encode(sign(
            acct.key(),
            &string_to_sign(&acct.name, p.raw_path, &p, "Tue, 24 Nov 2026 22:15:02 GMT"),
        ));
        verify(&acct, &p, false, &sig).unwrap();
        assert_eq!(
            verify(&acct, &p, true, &sig).unwrap_err().code,
            "AuthenticationFailed"
        );
    }
}
