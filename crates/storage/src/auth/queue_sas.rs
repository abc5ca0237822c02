//! Service shared access signatures for the queue service: a token for one
//! queue (`sp` from `raup`: read/peek, add, update, process), optionally
//! tied to one of the queue's stored access policies (`si`), which then
//! supplies the permissions and times the token leaves out.
//!
//! String to sign (versions from 2015-04-05): `sp`, `st`, `se`,
//! `/queue/<account>/<queue>`, `si`, `sip`, `spr`, `sv`, one per line.

use super::sas::{
    SasGrant, SasScope, check_version, service_permissions, service_sign_fields, verify_sig,
};
use crate::account::Account;
use crate::api_error::ApiError;
use crate::request::Query;
use crate::xml::SignedIdentifier;

fn field<'a>(q: &'a Query, name: &str) -> &'a str {
    q.get(name).unwrap_or("")
}

/// The queue service SAS string to sign.
pub fn string_to_sign(account: &str, queue: &str, q: &Query) -> String {
    let resource = format!("/queue/{account}/{}", queue.to_ascii_lowercase());
    service_sign_fields(q, &resource).join("\n")
}

/// Verifies a service SAS for `queue`; `policy` is the queue's stored
/// access policy named by `si`, if the queue has one by that name.
pub fn verify(
    account: &Account,
    queue: &str,
    q: &Query,
    policy: Option<&SignedIdentifier>,
    now_ms: i64,
) -> Result<SasGrant, ApiError> {
    check_version(field(q, "sv"))?;
    verify_sig(account, &string_to_sign(&account.name, queue, q), q)?;
    let permissions = service_permissions(q, policy, "queue", now_ms)?;
    Ok(SasGrant {
        scope: SasScope::Queue {
            queue: queue.to_string(),
        },
        permissions,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::auth::shared_key::sign;

    const NOW: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

    fn acct() -> Account {
        Account::new(crate::DEV_ACCOUNT, crate::DEV_KEY).unwrap()
    }

    fn signed(mut query: String, queue: &str) -> Query {
        let q = Query::parse(Some(&query));
        let sig = STANDARD.encode(sign(
            acct().key(),
            &string_to_sign(crate::DEV_ACCOUNT, queue, &q),
        ));
        query.push_str("&sig=");
        query.push_str(
            &percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
        Query::parse(Some(&query))
    }

    #[test]
    fn string_to_sign_names_the_queue_under_the_queue_service() {
        let q = Query::parse(Some(
            "sv=2025-01-05&sp=raup&se=2024-01-01T00:00:00Z&spr=https,http",
        ));
        assert_eq!(
            string_to_sign("devstoreaccount1", "Jobs", &q),
            "raup\n\n2024-01-01T00:00:00Z\n/queue/devstoreaccount1/jobs\n\n\nhttps,http\n2025-01-05"
        );
    }

    #[test]
    fn tokens_verify_for_their_queue_only_and_until_they_expire() {
        let q = signed("sv=2025-01-05&sp=ap&se=2024-01-01T00:00:00Z".into(), "jobs");
        let g = verify(&acct(), "jobs", &q, None, NOW).unwrap();
        assert_eq!(g.permissions, "ap");
        assert_eq!(
            g.scope,
            SasScope::Queue {
                queue: "jobs".into()
            }
        );
        let other = verify(&acct(), "other", &q, None, NOW).unwrap_err();
        assert_eq!(other.code, "AuthenticationFailed");
        let late = verify(&acct(), "jobs", &q, None, NOW + 365 * 86_400_000).unwrap_err();
        assert_eq!(late.code, "AuthenticationFailed");
    }

    #[test]
    fn a_stored_policy_supplies_what_the_token_leaves_out() {
        let q = signed("sv=2025-01-05&si=workers".into(), "jobs");
        let policy = SignedIdentifier {
            id: "workers".into(),
            start: None,
            expiry: Some("2024-01-01T00:00:00Z".into()),
            permission: Some("rp".into()),
        };
        let g = verify(&acct(), "jobs", &q, Some(&policy), NOW).unwrap();
        assert_eq!(g.permissions, "rp");
        assert!(
            verify(&acct(), "jobs", &q, None, NOW).is_err(),
            "si naming no policy of the queue"
        );
        let expired = SignedIdentifier {
            expiry: Some("2023-01-01T00:00:00Z".into()),
            ..policy
        };
        assert!(verify(&acct(), "jobs", &q, Some(&expired), NOW).is_err());
    }
}
