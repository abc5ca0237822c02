//! Shared access signatures for the blob service: account SAS and service
//! SAS (container or blob, optionally tied to a stored access policy).
//!
//! The signature covers the SAS fields as sent; a stored access policy
//! supplies the permissions and times the token leaves out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::StatusCode;
use subtle::ConstantTimeEq;

use super::shared_key::sign;
use crate::account::Account;
use crate::api_error::ApiError;
use crate::request::Query;
use crate::timefmt::parse_iso8601;
use crate::xml::SignedIdentifier;

/// The version from which SAS strings to sign carry the encryption scope.
const WITH_ENCRYPTION_SCOPE: &str = "2020-12-06";

/// What a verified SAS lets its bearer do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SasGrant {
    pub scope: SasScope,
    /// Permission letters (`racwdl...`).
    pub permissions: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SasScope {
    /// Account SAS: `ss` services, `srt` resource types (`s`, `c`, `o`).
    Account {
        services: String,
        resource_types: String,
    },
    /// Service SAS for a whole container (`sr=c`).
    Container { container: String },
    /// Service SAS for one blob (`sr=b`).
    Blob { container: String, blob: String },
    /// Queue service SAS for one queue.
    Queue { queue: String },
}

fn field<'a>(q: &'a Query, name: &str) -> &'a str {
    q.get(name).unwrap_or("")
}

fn auth_failed(detail: impl Into<String>) -> ApiError {
    let mut e = ApiError::auth_failed(detail);
    e.message = "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.".into();
    e
}

/// Whether a query carries a SAS at all.
pub fn is_sas(q: &Query) -> bool {
    q.get("sig").is_some()
}

/// Checks `sig` against the string to sign (the other services' SAS use it too).
pub(crate) fn verify_sig(account: &Account, sts: &str, q: &Query) -> Result<(), ApiError> {
    check_signature(account, sts, q)
}

fn check_signature(account: &Account, sts: &str, q: &Query) -> Result<(), ApiError> {
    let given = STANDARD.decode(field(q, "sig").trim()).unwrap_or_default();
    let expected = sign(account.key(), sts);
    if given.len() == expected.len() && bool::from(given.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(auth_failed(format!(
            "Signature did not match. String to sign used was {sts}"
        )))
    }
}

pub(crate) fn check_version(sv: &str) -> Result<(), ApiError> {
    if sv.len() == 10 && sv >= crate::blob::OLDEST_VERSION {
        Ok(())
    } else {
        Err(auth_failed(format!(
            "The signed version {sv:?} is not supported."
        )))
    }
}

/// Checks the validity window; `st` is optional, `se` required.
pub(crate) fn check_times(st: &str, se: &str, now_ms: i64) -> Result<(), ApiError> {
    let expiry = parse_iso8601(se).ok_or_else(|| {
        auth_failed("Signed expiry time is missing or not a valid ISO 8601 time.")
    })?;
    if !st.is_empty() {
        let start = parse_iso8601(st)
            .ok_or_else(|| auth_failed("Signed start time is not a valid ISO 8601 time."))?;
        if start > now_ms {
            return Err(auth_failed(
                "Signature not valid in the specified time frame",
            ));
        }
    }
    if expiry <= now_ms {
        return Err(auth_failed(
            "Signed expiry time has to be after the current time: the signature has expired",
        ));
    }
    Ok(())
}

pub(crate) fn check_protocol(spr: &str) -> Result<(), ApiError> {
    if spr.is_empty() || spr.split(',').any(|p| p == "http") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AuthorizationProtocolMismatch",
            "This request is not authorized to perform this operation using this protocol.",
        ))
    }
}

/// What a service SAS (blob, queue or table) grants once its signature
/// checks: its permissions. `sp`, `st` and `se` come from the token; each
/// one it leaves out comes from the stored access policy it names (`si`),
/// which `policy` is when the `resource` (`container`, `queue`, `table`)
/// has one by that name. The times and the protocol are then checked.
pub(crate) fn service_permissions(
    q: &Query,
    policy: Option<&SignedIdentifier>,
    resource: &str,
    now_ms: i64,
) -> Result<String, ApiError> {
    if q.get("si").is_some() && policy.is_none() {
        return Err(auth_failed(format!(
            "The signed identifier does not name a stored access policy of this {resource}."
        )));
    }
    let pick = |sas: &str, stored: Option<&String>| -> String {
        if sas.is_empty() {
            stored.cloned().unwrap_or_default()
        } else {
            sas.to_string()
        }
    };
    let permissions = pick(field(q, "sp"), policy.and_then(|p| p.permission.as_ref()));
    let st = pick(field(q, "st"), policy.and_then(|p| p.start.as_ref()));
    let se = pick(field(q, "se"), policy.and_then(|p| p.expiry.as_ref()));
    check_times(&st, &se, now_ms)?;
    check_protocol(field(q, "spr"))?;
    Ok(permissions)
}

/// The account SAS string to sign.
pub fn account_string_to_sign(account: &str, q: &Query) -> String {
    let sv = field(q, "sv");
    let mut parts = vec![
        account,
        field(q, "sp"),
        field(q, "ss"),
        field(q, "srt"),
        field(q, "st"),
        field(q, "se"),
        field(q, "sip"),
        field(q, "spr"),
        sv,
    ];
    if sv >= WITH_ENCRYPTION_SCOPE {
        parts.push(field(q, "ses"));
    }
    let mut s = parts.join("\n");
    s.push('\n');
    s
}

/// Verifies an account SAS.
pub fn verify_account(account: &Account, q: &Query, now_ms: i64) -> Result<SasGrant, ApiError> {
    check_version(field(q, "sv"))?;
    check_signature(account, &account_string_to_sign(&account.name, q), q)?;
    check_times(field(q, "st"), field(q, "se"), now_ms)?;
    check_protocol(field(q, "spr"))?;
    Ok(SasGrant {
        scope: SasScope::Account {
            services: field(q, "ss").to_string(),
            resource_types: field(q, "srt").to_string(),
        },
        permissions: field(q, "sp").to_string(),
    })
}

/// The lines every service SAS string to sign (blob, queue, table)
/// starts with: `sp`, `st`, `se`, the canonical `resource`, `si`, `sip`,
/// `spr`, `sv`.
pub(crate) fn service_sign_fields<'a>(q: &'a Query, resource: &'a str) -> Vec<&'a str> {
    vec![
        field(q, "sp"),
        field(q, "st"),
        field(q, "se"),
        resource,
        field(q, "si"),
        field(q, "sip"),
        field(q, "spr"),
        field(q, "sv"),
    ]
}

/// The service SAS string to sign for a blob or container resource.
pub fn service_string_to_sign(
    account: &str,
    container: &str,
    blob: Option<&str>,
    q: &Query,
) -> String {
    let sv = field(q, "sv");
    let resource = match blob {
        Some(b) => format!("/blob/{account}/{container}/{b}"),
        None => format!("/blob/{account}/{container}"),
    };
    let mut parts = service_sign_fields(q, &resource);
    parts.extend([field(q, "sr"), field(q, "snapshot")]);
    if sv >= WITH_ENCRYPTION_SCOPE {
        parts.push(field(q, "ses"));
    }
    parts.extend([
        field(q, "rscc"),
        field(q, "rscd"),
        field(q, "rsce"),
        field(q, "rscl"),
        field(q, "rsct"),
    ]);
    parts.join("\n")
}

/// Verifies a service SAS for `container` (and `blob` when `sr=b`).
/// `policy` is the container's stored access policy named by `si`, if any.
pub fn verify_service(
    account: &Account,
    container: &str,
    blob: Option<&str>,
    q: &Query,
    policy: Option<&SignedIdentifier>,
    now_ms: i64,
) -> Result<SasGrant, ApiError> {
    check_version(field(q, "sv"))?;
    let scope = match (field(q, "sr"), blob) {
        ("c", _) => SasScope::Container {
            container: container.to_string(),
        },
        ("b", Some(b)) => SasScope::Blob {
            container: container.to_string(),
            blob: b.to_string(),
        },
        (sr, _) => {
            return Err(auth_failed(format!(
                "The signed resource {sr:?} is not valid for this request."
            )));
        }
    };
    let signed_blob = match &scope {
        SasScope::Blob { blob, .. } => Some(blob.as_str()),
        _ => None,
    };
    check_signature(
        account,
        &service_string_to_sign(&account.name, container, signed_blob, q),
        q,
    )?;
    let permissions = service_permissions(q, policy, "container", now_ms)?;
    Ok(SasGrant { scope, permissions })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct() -> Account {
        Account::new(crate::DEV_ACCOUNT, crate::DEV_KEY).unwrap()
    }

    fn signed(mut query: String, sts: impl Fn(&Query) -> String) -> Query {
        let q = Query::parse(Some(&query));
        let sig = STANDARD.encode(sign(acct().key(), &sts(&q)));
        query.push_str("&sig=");
        query.push_str(
            &percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
        Query::parse(Some(&query))
    }

    const NOW: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

    #[test]
    fn account_sas_string_to_sign_has_the_encryption_scope_line_from_2020_12_06() {
        let q = Query::parse(Some(
            "sv=2021-08-06&ss=b&srt=sco&sp=rl&se=2024-01-01T00:00:00Z",
        ));
        assert_eq!(
            account_string_to_sign("devstoreaccount1", &q),
            "devstoreaccount1\nrl\nb\nsco\n\n2024-01-01T00:00:00Z\n\n\n2021-08-06\n\n"
        );
        let old = Query::parse(Some(
            "sv=2019-12-12&ss=b&srt=sco&sp=rl&se=2024-01-01T00:00:00Z",
        ));
        assert!(account_string_to_sign("a", &old).ends_with("2019-12-12\n"));
    }

    #[test]
    fn account_sas_verifies_and_checks_time() {
        let q = signed(
            "sv=2025-01-05&ss=b&srt=sco&sp=rwdlc&se=2024-01-01T00:00:00Z&spr=https,http".into(),
            |q| account_string_to_sign(crate::DEV_ACCOUNT, q),
        );
        let g = verify_account(&acct(), &q, NOW).unwrap();
        assert_eq!(g.permissions, "rwdlc");
        assert_eq!(
            verify_account(&acct(), &q, NOW + 365 * 86_400_000)
                .unwrap_err()
                .code,
            "AuthenticationFailed"
        );
        let tampered = Query::parse(Some(&format!(
            "sv=2025-01-05&ss=b&srt=sco&sp=rwdlca&se=2024-01-01T00:00:00Z&spr=https,http&sig={}",
            percent_encoding::utf8_percent_encode(
                q.get("sig").unwrap(),
                percent_encoding::NON_ALPHANUMERIC
            )
        )));
        assert_eq!(
            verify_account(&acct(), &tampered, NOW).unwrap_err().code,
            "AuthenticationFailed"
        );
    }

    #[test]
    fn service_sas_takes_missing_fields_from_the_stored_policy() {
        let q = signed("sv=2025-01-05&sr=c&si=readers".into(), |q| {
            service_string_to_sign(crate::DEV_ACCOUNT, "c1", None, q)
        });
        let policy = SignedIdentifier {
            id: "readers".into(),
            start: None,
            expiry: Some("2024-01-01T00:00:00Z".into()),
            permission: Some("rl".into()),
        };
        let g = verify_service(&acct(), "c1", Some("b"), &q, Some(&policy), NOW).unwrap();
        assert_eq!(g.permissions, "rl");
        assert_eq!(
            g.scope,
            SasScope::Container {
                container: "c1".into()
            }
        );
        assert!(
            verify_service(&acct(), "c1", None, &q, None, NOW).is_err(),
            "si without a policy"
        );
        assert!(
            verify_service(&acct(), "c2", None, &q, Some(&policy), NOW).is_err(),
            "another container"
        );
    }

    #[test]
    fn https_only_tokens_are_refused_over_http() {
        let q = signed(
            "sv=2025-01-05&ss=b&srt=o&sp=r&se=2024-01-01T00:00:00Z&spr=https".into(),
            |q| account_string_to_sign(crate::DEV_ACCOUNT, q),
        );
        assert_eq!(
            verify_account(&acct(), &q, NOW).unwrap_err().code,
            "AuthorizationProtocolMismatch"
        );
    }
}
