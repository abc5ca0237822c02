//! The management REST API: JSON over HTTP, bearer-token authenticated, an
//! OpenAPI document at `/v1/openapi.json`; and the blocking client the CLI
//! uses.

pub mod client;
pub mod error;
pub mod server;
pub mod token;
pub mod wire;

pub use client::Client;
pub use error::ApiError;
pub use token::Token;
