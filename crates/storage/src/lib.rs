//! Azure Storage compatible services for weft: blob (port 10000), queue
//! (port 10001) and table (port 10002).
//!
//! The services speak the Azure Storage REST protocol with path-style URLs
//! (`http://127.0.0.1:10000/<account>/<container>/<blob>`), so the official
//! Azure SDKs work against them unchanged. Metadata lives in an embedded
//! SQLite database (WAL, `synchronous=FULL`); blob bytes live in files under
//! the data directory (bodies up to 64 KiB inline in the database), written
//! and fsynced before the metadata row that makes them visible is committed,
//! and the request is acknowledged only after that commit.
//!
//! Rooms: [`account`] (accounts and keys), [`auth`] (SharedKey,
//! SharedKeyLite, SAS), [`api_error`] (Azure error responses),
//! [`conditions`], [`range`] and [`request`] (request parsers), [`lease`]
//! (the lease state machine), [`meta_case`] (metadata names keep their
//! case through hyper), [`xml`] (request bodies), [`names`] (naming
//! rules), [`store`] (persistence), [`blob`] and [`queue`] (operation
//! handlers), [`table`] (the table service: entity model, `$filter`,
//! `$batch`, handlers), [`server`] (listeners, shutdown), [`timefmt`]
//! (dates, ETags), [`ids`] (unique ids). Entities live in the same database, one row per entity
//! keyed (account, table, PartitionKey, RowKey).

pub mod account;
pub mod api_error;
pub mod auth;
pub mod blob;
pub mod conditions;
pub mod error;
pub mod ids;
pub mod lease;
pub mod meta_case;
pub mod names;
pub mod queue;
pub mod range;
pub mod request;
pub mod server;
pub mod store;
pub mod table;
pub mod timefmt;
pub mod xml;

pub use account::{Account, Accounts, DEV_ACCOUNT, DEV_KEY};
pub use error::StorageError;
pub use server::{Addresses, ServerConfig, StorageServer, run_foreground};
