//! What crosses an instance's runtime endpoint (`WEFT_RUNTIME`).
//!
//! HTTP/1.1 with JSON bodies over a Unix socket (`WEFT_RUNTIME=unix:/path`):
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/instance` | [`InstanceInfo`] |
//! | `GET /v1/topology` | [`Topology`] |
//! | `GET /v1/status` | [`StatusBody`] |
//! | `PUT /v1/status` with [`StatusBody`] | `204` |
//! | `GET /v1/events` | a stream of [`RuntimeEvent`], one JSON object per line |
//! | `GET /v1/events?changing=answer` | the same, and this stream answers Changing |
//! | `POST /v1/changing/{id}` with [`ChangingAnswer`] | `204`; `404` when no Changing `{id}` waits for an answer |
//!
//! `GET /v1/status` answers `404` until the instance has said anything. Every
//! other failure answers a `4xx` with an [`ErrorBody`]. `GET /v1/events`
//! answers its headers only once the subscription is registered: an event
//! published after the client has seen them reaches that client, in publish
//! order.
//!
//! # Cancelling a change
//!
//! Azure lets a role's `RoleEnvironment.Changing` handler set
//! `e.Cancel = true`: the fabric then recycles the instance (stop, start
//! with the new configuration) instead of applying the change live. Here:
//! a stream opened with `?changing=answer` receives every settings
//! [`RuntimeEvent::Changing`] with an `id` of its own and must answer it with
//! `POST /v1/changing/{id}` within [`CHANGING_ANSWER_TIMEOUT`]. Any
//! `{"cancel": true}` recycles the instance; when every such stream
//! answered `{"cancel": false}` (or closed, or none is open — Azure's
//! default when no handler is registered) the change is applied live and
//! [`RuntimeEvent::Changed`] follows. A stream opened without the query
//! sees Changing without an `id` and is not waited for. An answer that
//! comes too late counts as not cancelling.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The environment variable naming an instance's runtime endpoint.
pub const RUNTIME_ENV: &str = "WEFT_RUNTIME";

/// The content type of `GET /v1/events` (newline-delimited JSON).
pub const EVENTS_CONTENT_TYPE: &str = "application/x-ndjson";

/// The query of `GET /v1/events` for a stream that answers Changing.
pub const ANSWER_CHANGING_QUERY: &str = "changing=answer";

/// How long the host waits for every answering stream to answer a
/// Changing before it treats the silent ones as not cancelling: long
/// enough for a handler to decide, short enough that a stuck role does not
/// hold up a configuration walk.
pub const CHANGING_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The body of `POST /v1/changing/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangingAnswer {
    /// `true`: do not apply the change live; recycle the instance with it
    /// (Azure's `RoleEnvironmentChangingEventArgs.Cancel`).
    pub cancel: bool,
}

/// The body of every `4xx` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Who and where an instance is (Azure's `RoleEnvironment.CurrentRoleInstance`
/// plus the deployment's settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub deployment_id: String,
    pub role: String,
    pub instance_id: String,
    pub update_domain: u32,
    pub fault_domain: u32,
    /// Configuration settings (name → value).
    pub settings: BTreeMap<String, String>,
    /// Local resources (name → directory and size).
    pub local_resources: BTreeMap<String, LocalResource>,
    /// This instance's endpoints (name → what it listens on).
    pub endpoints: BTreeMap<String, Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalResource {
    pub path: PathBuf,
    pub size_mb: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `tcp`, `http`, `https`, `udp` or `any`.
    pub protocol: String,
    /// The address the instance listens on (after any port remapping).
    pub address: SocketAddr,
}

/// Every instance of the deployment and its endpoints (Azure's
/// `RoleEnvironment.Roles`): role → instance id → endpoint name → endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Topology {
    pub roles: BTreeMap<String, BTreeMap<String, BTreeMap<String, Endpoint>>>,
}

/// What the instance says about itself (Azure's `RoleInstanceStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RoleStatus {
    Ready,
    /// Taken out of the load balancer until it says Ready again.
    Busy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBody {
    pub status: RoleStatus,
}

/// What changed (Azure's `RoleEnvironmentChange` kinds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Change {
    /// A configuration setting's value changed.
    Setting { name: String },
    /// Instances of a role were added or removed, or their endpoints moved.
    Topology { role: String },
}

/// Events streamed from `GET /v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum RuntimeEvent {
    /// Changes about to be applied (Azure's `RoleEnvironment.Changing`).
    /// `id` is set on a stream opened with `?changing=answer` when the
    /// change can be cancelled (settings changes): answer it with
    /// `POST /v1/changing/{id}`. Topology changes are always applied live.
    Changing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        changes: Vec<Change>,
    },
    /// Changes applied; [`InstanceInfo`] / [`Topology`] already show them.
    Changed { changes: Vec<Change> },
    /// The instance is about to be stopped (Azure's `RoleEnvironment.Stopping`);
    /// SIGTERM follows.
    Stopping,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changing_without_an_id_is_the_old_wire_form() {
        let event = RuntimeEvent::Changing {
            id: None,
            changes: vec![Change::Setting { name: "A".into() }],
        };
        let wire = serde_json::to_string(&event).unwrap();
        assert_eq!(
            wire,
            r#"{"event":"changing","changes":[{"kind":"setting","name":"A"}]}"#
        );
        assert_eq!(serde_json::from_str::<RuntimeEvent>(&wire).unwrap(), event);
        let with_id: RuntimeEvent =
            serde_json::from_str(r#"{"event":"changing","id":7,"changes":[]}"#).unwrap();
        assert_eq!(
            with_id,
            RuntimeEvent::Changing {
                id: Some(7),
                changes: vec![]
            }
        );
    }
}
