//! What can go wrong talking to the runtime endpoint.

use crate::protocol::RUNTIME_ENV;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "{RUNTIME_ENV} is not set: this program must run as a role instance under weft (e.g. weft up)"
    )]
    NotSet,
    #[error(
        "{RUNTIME_ENV}={value:?} is not a runtime endpoint address (expected unix:/path or tcp:host:port)"
    )]
    BadAddress { value: String },
    #[error("failed to connect to the runtime endpoint {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("runtime request {request} failed: {source}")]
    Http {
        request: String,
        source: hyper::Error,
    },
    #[error("runtime endpoint answered {request} with {status}: {message}")]
    Refused {
        request: String,
        status: u16,
        message: String,
    },
    #[error("runtime endpoint answered {request} with invalid JSON: {source}")]
    Decode {
        request: String,
        source: serde_json::Error,
    },
    #[error("failed to handle {signal}: {source}")]
    Signal {
        signal: &'static str,
        source: std::io::Error,
    },
    #[error("no configuration setting named {name} for this role")]
    NoSuchSetting { name: String },
    #[error("no local resource named {name} for this role")]
    NoSuchLocalResource { name: String },
    #[error("no endpoint named {name} for this role instance")]
    NoSuchEndpoint { name: String },
}
