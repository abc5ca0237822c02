//! Storage accounts: the development account with its well-known key and
//! accounts an operator configures.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::StorageError;

/// The development storage account every Azure tool knows.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// Its key, published by Microsoft for local development (not a secret).
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// One account: its name and decoded key bytes.
#[derive(Clone)]
pub struct Account {
    pub name: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// An account from its name and base64 key.
    pub fn new(name: &str, key_base64: &str) -> Result<Self, StorageError> {
        let invalid = |reason: &str| StorageError::InvalidAccount {
            spec: name.to_string(),
            reason: reason.to_string(),
        };
        if !(3..=24).contains(&name.len())
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(invalid(
                "account names are 3 to 24 lower-case letters and digits",
            ));
        }
        let key = STANDARD
            .decode(key_base64.trim())
            .map_err(|e| invalid(&format!("key is not base64: {e}")))?;
        if key.is_empty() {
            return Err(invalid("key is empty"));
        }
        Ok(Account {
            name: name.to_string(),
            key,
        })
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

/// The accounts a server serves.
#[derive(Debug, Clone)]
pub struct Accounts {
    by_name: HashMap<String, Account>,
}

impl Default for Accounts {
    fn default() -> Self {
        Self::development()
    }
}

impl Accounts {
    /// Only the development account.
    pub fn development() -> Self {
        let dev = Account::new(DEV_ACCOUNT, DEV_KEY).expect("the well-known key is valid base64");
        Accounts {
            by_name: HashMap::from([(DEV_ACCOUNT.to_string(), dev)]),
        }
    }

    /// Adds or replaces an account given as `name:base64key`.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), StorageError> {
        let (name, key) = spec
            .split_once(':')
            .ok_or_else(|| StorageError::InvalidAccount {
                spec: spec.split(':').next().unwrap_or_default().to_string(),
                reason: "expected name:base64key".to_string(),
            })?;
        let acct = Account::new(name, key)?;
        self.by_name.insert(acct.name.clone(), acct);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.by_name.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_account_is_present() {
        let a = Accounts::development();
        assert_eq!(a.get(DEV_ACCOUNT).unwrap().key().len(), 64);
    }

    #[test]
    fn specs_are_validated() {
        let mut a = Accounts::development();
        a.add_spec("myacct:a2V5").unwrap();
        assert!(a.get("myacct").is_some());
        for bad in ["nocolon", "UPPER:a2V5", "ok1:!!!", "ab:a2V5"] {
            assert!(a.add_spec(bad).is_err(), "{bad}");
        }
    }
}
