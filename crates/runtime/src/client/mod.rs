//! The client side of the runtime endpoint, for Rust roles: Azure's
//! `RoleEnvironment` ([`RoleEnvironment`]) and `RoleEntryPoint`
//! ([`RoleEntryPoint`], [`run_role`]).
//!
//! Every call opens a fresh connection to the endpoint (a local socket, so
//! that costs microseconds) and reads the current values: a role that asks
//! for a setting after a `Changed` event gets the new value.
//!
//! # Cancelling a configuration change
//!
//! Register a handler with [`RoleEnvironment::on_changing`] (Azure's
//! `RoleEnvironment.Changing += handler`, setting `e.Cancel`): it sees the
//! changes of every settings Changing and returns `true` to cancel, which
//! makes the fabric recycle the instance with the new settings instead of
//! applying them live. [`run_role`] asks the handlers and answers. **By
//! default (no handler, or every handler returning `false`) a change is
//! applied live** and a `Changed` event follows, as on Azure. Without
//! [`run_role`], open [`RoleEnvironment::answering_events`] and answer
//! each Changing that carries an id with [`RoleEnvironment::answer_changing`].

mod error;
mod events;
mod role;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

pub use error::ClientError;
pub use events::Events;
pub use role::{RoleEntryPoint, RoleOptions, run_role, run_role_with};

use crate::protocol::{
    ANSWER_CHANGING_QUERY, Change, ChangingAnswer, Endpoint, ErrorBody, InstanceInfo,
    LocalResource, RUNTIME_ENV, RoleStatus, StatusBody, Topology,
};

/// A `Changing` handler: returns `true` to cancel (see
/// [`RoleEnvironment::on_changing`]).
type ChangingHandler = Arc<dyn Fn(&[Change]) -> bool + Send + Sync>;

/// Where a runtime endpoint listens: the value of `WEFT_RUNTIME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeAddress {
    /// `unix:/path/to/socket`
    Unix(PathBuf),
    /// `tcp:127.0.0.1:port`
    Tcp(SocketAddr),
}

impl FromStr for RuntimeAddress {
    type Err = ClientError;

    fn from_str(value: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadAddress {
            value: value.to_owned(),
        };
        if let Some(path) = value.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad());
            }
            Ok(RuntimeAddress::Unix(PathBuf::from(path)))
        } else if let Some(addr) = value.strip_prefix("tcp:") {
            addr.parse().map(RuntimeAddress::Tcp).map_err(|_| bad())
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for RuntimeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            RuntimeAddress::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// A role instance's view of the fabric (Azure's `RoleEnvironment`).
/// Clones share their [`RoleEnvironment::on_changing`] handlers.
#[derive(Clone)]
pub struct RoleEnvironment {
    address: RuntimeAddress,
    changing: Arc<RwLock<Vec<ChangingHandler>>>,
}

impl fmt::Debug for RoleEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleEnvironment")
            .field("address", &self.address)
            .field(
                "changing_handlers",
                &self.changing.read().map_or(0, |h| h.len()),
            )
            .finish()
    }
}

impl RoleEnvironment {
    /// Connects to the endpoint named by `WEFT_RUNTIME` and checks that it
    /// answers.
    pub async fn connect() -> Result<RoleEnvironment, ClientError> {
        let value = std::env::var(RUNTIME_ENV).map_err(|_| ClientError::NotSet)?;
        RoleEnvironment::connect_to(value.parse()?).await
    }

    /// Connects to the endpoint at `address` and checks that it answers.
    pub async fn connect_to(address: RuntimeAddress) -> Result<RoleEnvironment, ClientError> {
        let env = RoleEnvironment {
            address,
            changing: Arc::default(),
        };
        env.instance().await?;
        Ok(env)
    }

    /// The endpoint this environment talks to.
    pub fn address(&self) -> &RuntimeAddress {
        &self.address
    }

    /// Who and where this instance is, with the current settings.
    pub async fn instance(&self) -> Result<InstanceInfo, ClientError> {
        self.get_json("/v1/instance").await
    }

    /// Every instance of the deployment and its endpoints.
    pub async fn topology(&self) -> Result<Topology, ClientError> {
        self.get_json("/v1/topology").await
    }

    /// What this instance last said about itself; `None` if nothing yet.
    pub async fn status(&self) -> Result<Option<RoleStatus>, ClientError> {
        let request = "GET /v1/status";
        let response = self.send(Method::GET, "/v1/status", None).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: StatusBody = decode(request, response).await?;
        Ok(Some(body.status))
    }

    /// Says whether this instance takes traffic (Azure's `StatusCheck`
    /// answer): `Busy` takes it out of the load balancer until `Ready`.
    pub async fn set_status(&self, status: RoleStatus) -> Result<(), ClientError> {
        let request = "PUT /v1/status";
        let body = serde_json::to_vec(&StatusBody { status }).expect("protocol types serialize");
        let response = self.send(Method::PUT, "/v1/status", Some(body)).await?;
        check(request, response).await.map(drop)
    }

    /// Subscribes to the instance's events (Changing, Changed, Stopping).
    /// Every event published after this returns is delivered, in order.
    pub async fn events(&self) -> Result<Events, ClientError> {
        let request = "GET /v1/events";
        let response = self.send(Method::GET, "/v1/events", None).await?;
        let response = check(request, response).await?;
        Ok(Events::new(response.into_body()))
    }

    /// Like [`RoleEnvironment::events`], and the stream answers Changing:
    /// every settings `Changing` on it carries an `id` that must be
    /// answered with [`RoleEnvironment::answer_changing`] within
    /// [`crate::protocol::CHANGING_ANSWER_TIMEOUT`] (a silent stream delays
    /// the change by that long, then counts as not cancelling).
    pub async fn answering_events(&self) -> Result<Events, ClientError> {
        let path = format!("/v1/events?{ANSWER_CHANGING_QUERY}");
        let request = format!("GET {path}");
        let response = self.send(Method::GET, &path, None).await?;
        let response = check(&request, response).await?;
        Ok(Events::new(response.into_body()))
    }

    /// Answers Changing `id`: `cancel` recycles the instance with the new
    /// configuration instead of applying it live.
    pub async fn answer_changing(&self, id: u64, cancel: bool) -> Result<(), ClientError> {
        let path = format!("/v1/changing/{id}");
        let body =
            serde_json::to_vec(&ChangingAnswer { cancel }).expect("protocol types serialize");
        let response = self.send(Method::POST, &path, Some(body)).await?;
        check(&format!("POST {path}"), response).await.map(drop)
    }

    /// Adds a `Changing` handler (Azure's `RoleEnvironment.Changing +=`):
    /// called with the changes of every settings change before it is
    /// applied; returning `true` cancels it (the instance is recycled with
    /// the new settings). Every handler is called; any `true` cancels. With
    /// no handler a change is applied live. Handlers run on
    /// [`run_role`]'s event task: keep them quick.
    pub fn on_changing(&self, handler: impl Fn(&[Change]) -> bool + Send + Sync + 'static) {
        self.changing
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(handler));
    }

    /// Whether the registered handlers cancel `changes` (`false` when
    /// there is none).
    pub fn cancels(&self, changes: &[Change]) -> bool {
        let handlers = self
            .changing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        handlers
            .iter()
            .fold(false, |cancel, handler| handler(changes) | cancel)
    }

    /// A configuration setting's current value (Azure's
    /// `GetConfigurationSettingValue`).
    pub async fn setting(&self, name: &str) -> Result<String, ClientError> {
        self.instance()
            .await?
            .settings
            .remove(name)
            .ok_or_else(|| ClientError::NoSuchSetting {
                name: name.to_owned(),
            })
    }

    /// A local storage resource (Azure's `GetLocalResource`).
    pub async fn local_resource(&self, name: &str) -> Result<LocalResource, ClientError> {
        self.instance()
            .await?
            .local_resources
            .remove(name)
            .ok_or_else(|| ClientError::NoSuchLocalResource {
                name: name.to_owned(),
            })
    }

    /// One of this instance's endpoints, with the address it must listen on.
    pub async fn endpoint(&self, name: &str) -> Result<Endpoint, ClientError> {
        self.instance()
            .await?
            .endpoints
            .remove(name)
            .ok_or_else(|| ClientError::NoSuchEndpoint {
                name: name.to_owned(),
            })
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self.send(Method::GET, path, None).await?;
        decode(&format!("GET {path}"), response).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let request_name = format!("{method} {path}");
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "weft-runtime");
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("request parts are valid");
        let connect_error = |source| ClientError::Connect {
            address: self.address.to_string(),
            source,
        };
        let result = match &self.address {
            RuntimeAddress::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_error)?;
                send_on(stream, request).await
            }
            RuntimeAddress::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect_error)?;
                stream.set_nodelay(true).map_err(connect_error)?;
                send_on(stream, request).await
            }
        };
        result.map_err(|source| ClientError::Http {
            request: request_name,
            source,
        })
    }
}

/// Sends one request on a new connection; the connection lives until the
/// response body is read (or dropped).
async fn send_on<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "runtime endpoint connection ended with an error");
        }
    });
    sender.send_request(request).await
}

/// Turns a non-2xx answer into [`ClientError::Refused`].
async fn check(
    request: &str,
    response: Response<Incoming>,
) -> Result<Response<Incoming>, ClientError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<ErrorBody>(&body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    Err(ClientError::Refused {
        request: request.to_owned(),
        status,
        message,
    })
}

async fn decode<T: DeserializeOwned>(
    request: &str,
    response: Response<Incoming>,
) -> Result<T, ClientError> {
    let response = check(request, response).await?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|source| ClientError::Http {
            request: request.to_owned(),
            source,
        })?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|source| ClientError::Decode {
        request: request.to_owned(),
        source,
    })
}
