//! Who is asking: SharedKey / SharedKeyLite signatures, or nobody.

pub mod queue_sas;
pub mod sas;
pub mod shared_key;
pub mod table_key;
pub mod table_sas;

use hyper::HeaderMap;

use crate::account::Accounts;
use crate::api_error::ApiError;
use crate::request::Query;

/// How a request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Signed with the account key (full access to that account).
    Account(String),
    /// A shared access signature: what it grants.
    Sas(sas::SasGrant),
    /// No credentials: only public-container reads are allowed.
    Anonymous,
}

/// The request as the signature schemes see it.
pub struct SignedParts<'a> {
    pub method: &'a str,
    /// The path exactly as sent (still percent-encoded).
    pub raw_path: &'a str,
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
}

/// Authenticates a request against the account named in its path.
pub fn authenticate(
    accounts: &Accounts,
    path_account: &str,
    parts: &SignedParts<'_>,
    now_ms: i64,
) -> Result<Principal, ApiError> {
    authenticate_with(accounts, path_account, parts, now_ms, shared_key::verify)
}

/// Authenticates a table service request (its own strings to sign).
pub fn authenticate_table(
    accounts: &Accounts,
    path_account: &str,
    parts: &SignedParts<'_>,
    now_ms: i64,
) -> Result<Principal, ApiError> {
    authenticate_with(accounts, path_account, parts, now_ms, table_key::verify)
}

/// Checks a signature: account, request, SharedKeyLite or not, signature.
type Verifier = fn(&crate::account::Account, &SignedParts<'_>, bool, &str) -> Result<(), ApiError>;

fn authenticate_with(
    accounts: &Accounts,
    path_account: &str,
    parts: &SignedParts<'_>,
    now_ms: i64,
    verify: Verifier,
) -> Result<Principal, ApiError> {
    let Some(auth) = parts.headers.get(hyper::header::AUTHORIZATION) else {
        return Ok(Principal::Anonymous);
    };
    let auth = auth
        .to_str()
        .map_err(|_| ApiError::auth_failed("The Authorization header is not valid text."))?;
    let (scheme, cred) = auth
        .split_once(' ')
        .ok_or_else(|| ApiError::auth_failed("The Authorization header is malformed."))?;
    let lite = match scheme {
        "SharedKey" => false,
        "SharedKeyLite" => true,
        other => {
            return Err(ApiError::auth_failed(format!(
                "Authentication scheme {other} is not supported."
            )));
        }
    };
    let (name, signature) = cred.trim().split_once(':').ok_or_else(|| {
        ApiError::auth_failed("The Authorization header is not of the form account:signature.")
    })?;
    if name != path_account {
        return Err(ApiError::auth_failed(format!(
            "The account {name} in the Authorization header does not match the account in the URL."
        )));
    }
    let account = accounts
        .get(name)
        .ok_or_else(|| ApiError::auth_failed(format!("The account {name} does not exist.")))?;
    shared_key::check_date(parts.headers, now_ms)?;
    verify(account, parts, lite, signature)?;
    Ok(Principal::Account(account.name.clone()))
}
