//! Azure Storage compatible services for weft.
//!
//! The blob service speaks the Azure Storage REST protocol with path-style
//! URLs (`http://127.0.0.1:10000/<account>/<container>/<blob>`), so the
//! official Azure SDKs work against it unchanged. Metadata lives in an
//! embedded SQLite database (WAL, `synchronous=FULL`); blob bytes live in
//! files under the data directory, written and fsynced before the metadata
//! row that makes them visible is committed.
//!
//! Rooms: [`account`] (accounts and keys), [`auth`] (SharedKey,
//! SharedKeyLite), [`api_error`] (Azure error responses), [`conditions`] and
//! [`range`] (request header parsers), [`xml`] (request and response bodies),
//! [`names`] (naming rules), [`store`] (persistence), [`blob`] (operation
//! handlers), [`server`] (listeners, request context, shutdown).

pub mod account;
pub mod api_error;
pub mod auth;
pub mod blob;
pub mod conditions;
pub mod error;
pub mod lease;
pub mod names;
pub mod queue;
pub mod range;
pub mod request;
pub mod server;
pub mod store;
pub mod timefmt;
pub mod xml;

pub use account::{Account, Accounts, DEV_ACCOUNT, DEV_KEY};
pub use error::StorageError;
pub use server::{Addresses, ServerConfig, StorageServer, run_foreground};
