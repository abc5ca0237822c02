//! The listeners: accept connections, serve HTTP/1.1 with keep-alive, and
//! shut down cleanly (stop accepting, let in-flight requests finish).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::account::Accounts;
use crate::blob;
use crate::error::StorageError;
use crate::store::Store;

/// How a storage server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the metadata database and blob bytes live.
    pub data_dir: PathBuf,
    /// The address to listen on; loopback unless the operator says otherwise.
    pub host: IpAddr,
    /// The blob service port (10000 by default; 0 picks a free one).
    pub blob_port: u16,
    /// The queue service port (10001 by default; 0 picks a free one).
    pub queue_port: u16,
    /// The table service port (10002 by default; 0 picks a free one).
    pub table_port: u16,
    pub accounts: Accounts,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        ServerConfig {
            data_dir,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            blob_port: 10000,
            queue_port: 10001,
            table_port: 10002,
            accounts: Accounts::development(),
        }
    }
}

/// What every request handler shares.
pub struct ServiceState {
    pub store: Store,
    pub accounts: Accounts,
}

/// A bound, not yet running storage server.
pub struct StorageServer {
    state: Arc<ServiceState>,
    blob_listener: TcpListener,
    queue_listener: TcpListener,
    table_listener: TcpListener,
}

/// Where a running server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub blob: SocketAddr,
    pub queue: SocketAddr,
    pub table: SocketAddr,
}

/// How long in-flight requests get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

impl StorageServer {
    /// Opens the store and binds the listeners.
    pub async fn bind(config: ServerConfig) -> Result<StorageServer, StorageError> {
        let data_dir = config.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&data_dir))
            .await
            .map_err(|e| StorageError::Io {
                action: "open store in",
                path: config.data_dir.clone(),
                source: std::io::Error::other(e),
            })??;
        let bind = |service: &'static str, port: u16| async move {
            let addr = SocketAddr::new(config.host, port);
            TcpListener::bind(addr)
                .await
                .map_err(|source| StorageError::Bind {
                    service,
                    addr,
                    source,
                })
        };
        let blob_listener = bind("blob", config.blob_port).await?;
        let queue_listener = bind("queue", config.queue_port).await?;
        let table_listener = bind("table", config.table_port).await?;
        Ok(StorageServer {
            state: Arc::new(ServiceState {
                store,
                accounts: config.accounts,
            }),
            blob_listener,
            queue_listener,
            table_listener,
        })
    }

    /// The addresses of every service.
    pub fn addresses(&self) -> Addresses {
        Addresses {
            blob: self.blob_addr(),
            queue: self
                .queue_listener
                .local_addr()
                .expect("a bound listener has an address"),
            table: self
                .table_listener
                .local_addr()
                .expect("a bound listener has an address"),
        }
    }

    /// The address the blob service listens on.
    pub fn blob_addr(&self) -> SocketAddr {
        self.blob_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), StorageError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = accept_any(&self.blob_listener, &self.queue_listener, &self.table_listener) => {
                    let ((stream, peer), service) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let state = self.state.clone();
                    let mut stop = stop_rx.clone();
                    conns.spawn(async move {
                        let svc = service_fn(move |req| {
                            let state = state.clone();
                            async move {
                                let resp = match service {
                                    Listener::Blob => blob::handle_service(state, req, blob::Service::Blob).await,
                                    Listener::Queue => blob::handle_service(state, req, blob::Service::Queue).await,
                                    Listener::Table => crate::table::handle(state, req).await,
                                };
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        });
                        let conn = http1::Builder::new()
                            .max_buf_size(64 * 1024)
                            .serve_connection(TokioIo::new(crate::meta_case::CaseIo::new(stream)), svc);
                        tokio::pin!(conn);
                        tokio::select! {
                            r = conn.as_mut() => {
                                if let Err(e) = r { tracing::debug!(%peer, error = %e, "connection ended"); }
                            }
                            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        tracing::info!(connections = conns.len(), "shutting down");
        let _ = stop_tx.send(true);
        let _ =
            tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
        Ok(())
    }
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Blob,
    Queue,
    Table,
}

/// The next connection on any listener, with the service it is for.
async fn accept_any(
    blob: &TcpListener,
    queue: &TcpListener,
    table: &TcpListener,
) -> std::io::Result<((tokio::net::TcpStream, SocketAddr), Listener)> {
    tokio::select! {
        r = blob.accept() => r.map(|c| (c, Listener::Blob)),
        r = queue.accept() => r.map(|c| (c, Listener::Queue)),
        r = table.accept() => r.map(|c| (c, Listener::Table)),
    }
}

/// Runs a storage server in the foreground on its own runtime until Ctrl-C
/// or SIGTERM. `ready` is called with the addresses once they listen.
pub fn run_foreground(
    config: ServerConfig,
    ready: impl FnOnce(Addresses),
) -> Result<(), StorageError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("weft-storage")
        .build()
        .map_err(|source| StorageError::Io {
            action: "start the runtime for",
            path: config.data_dir.clone(),
            source,
        })?;
    runtime.block_on(async move {
        let server = StorageServer::bind(config).await?;
        ready(server.addresses());
        server.run_until(shutdown_signal()).await
    })
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
