//! Table service SAS: a token for one table (`tn`), with permissions
//! `r` (query), `a` (add), `u` (update), `d` (delete) and an optional
//! PartitionKey/RowKey range (`spk`, `srk`, `epk`, `erk`).
//!
//! String to sign (fields joined by `\n`): sp, st, se,
//! `/table/<account>/<table lower-case>`, si, sip, spr, sv, spk, srk, epk, erk.

use super::sas::{check_version, service_permissions, service_sign_fields, verify_sig};
use crate::account::Account;
use crate::api_error::ApiError;
use crate::request::Query;
use crate::xml::SignedIdentifier;

/// What a verified table SAS lets its bearer do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableGrant {
    /// The table, lower-cased.
    pub table: String,
    pub permissions: String,
    /// Inclusive start (PartitionKey, RowKey); an empty RowKey means the
    /// start of the partition.
    pub start: Option<(String, Option<String>)>,
    /// Inclusive end (PartitionKey, RowKey).
    pub end: Option<(String, Option<String>)>,
}

impl TableGrant {
    /// Whether the entity keys lie within the token's range.
    pub fn covers(&self, pk: &str, rk: &str) -> bool {
        let after_start = self.start.as_ref().is_none_or(|(spk, srk)| {
            pk > spk.as_str() || (pk == spk && srk.as_deref().is_none_or(|s| rk >= s))
        });
        let before_end = self.end.as_ref().is_none_or(|(epk, erk)| {
            pk < epk.as_str() || (pk == epk && erk.as_deref().is_none_or(|e| rk <= e))
        });
        after_start && before_end
    }

    /// Whether the token limits keys at all.
    pub fn has_range(&self) -> bool {
        self.start.is_some() || self.end.is_some()
    }
}

fn field<'a>(q: &'a Query, name: &str) -> &'a str {
    q.get(name).unwrap_or("")
}

/// The table SAS string to sign.
pub fn string_to_sign(account: &str, q: &Query) -> String {
    let resource = format!("/table/{account}/{}", field(q, "tn").to_ascii_lowercase());
    let mut parts = service_sign_fields(q, &resource);
    parts.extend([
        field(q, "spk"),
        field(q, "srk"),
        field(q, "epk"),
        field(q, "erk"),
    ]);
    parts.join("\n")
}

/// Verifies a table SAS for a request on `table` (`None` for requests not
/// about one table, which a table SAS never grants). `policy` is the
/// table's stored access policy named by `si`, if any: it supplies the
/// permissions and times the token leaves out.
pub fn verify(
    account: &Account,
    table: Option<&str>,
    q: &Query,
    policy: Option<&SignedIdentifier>,
    now_ms: i64,
) -> Result<TableGrant, ApiError> {
    check_version(field(q, "sv"))?;
    verify_sig(account, &string_to_sign(&account.name, q), q)?;
    let permissions = service_permissions(q, policy, "table", now_ms)?;
    let tn = field(q, "tn").to_ascii_lowercase();
    if table.is_none_or(|t| !t.eq_ignore_ascii_case(&tn)) {
        return Err(ApiError::auth_mismatch());
    }
    let opt = |n: &str| q.get(n).filter(|v| !v.is_empty()).map(str::to_string);
    Ok(TableGrant {
        table: tn,
        permissions,
        start: opt("spk").map(|p| (p, opt("srk"))),
        end: opt("epk").map(|p| (p, opt("erk"))),
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::auth::shared_key::sign;

    const NOW: i64 = 1_700_000_000_000;

    fn token(extra: &str) -> Query {
        let acct = Account::new(crate::DEV_ACCOUNT, crate::DEV_KEY).unwrap();
        let base = format!("sv=2019-02-02&tn=Orders&sp=ra&se=2024-01-01T00:00:00Z{extra}");
        let q = Query::parse(Some(&base));
        let sig = STANDARD.encode(sign(acct.key(), &string_to_sign(&acct.name, &q)));
        let enc = percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC);
        Query::parse(Some(&format!("{base}&sig={enc}")))
    }

    #[test]
    fn a_table_sas_grants_its_table_and_key_range_only() {
        let acct = Account::new(crate::DEV_ACCOUNT, crate::DEV_KEY).unwrap();
        let q = token("&spk=b&srk=5&epk=d");
        let g = verify(&acct, Some("orders"), &q, None, NOW).unwrap();
        assert_eq!(g.permissions, "ra");
        assert!(g.covers("b", "5") && g.covers("c", "") && g.covers("d", "zzz"));
        assert!(!g.covers("b", "4") && !g.covers("a", "9") && !g.covers("e", ""));
        assert_eq!(
            verify(&acct, Some("other"), &q, None, NOW)
                .unwrap_err()
                .code,
            "AuthorizationFailure"
        );
        assert_eq!(
            verify(&acct, Some("orders"), &q, None, NOW + 400 * 86_400_000)
                .unwrap_err()
                .code,
            "AuthenticationFailed"
        );
        let mut tampered: Vec<(String, String)> = q.pairs().to_vec();
        tampered[2].1 = "rau".into();
        let raw: Vec<String> = tampered
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        let t = Query::parse(Some(&raw.join("&")));
        assert_eq!(
            verify(&acct, Some("orders"), &t, None, NOW)
                .unwrap_err()
                .code,
            "AuthenticationFailed"
        );
    }
}
