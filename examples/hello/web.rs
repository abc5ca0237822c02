//! `hello web`: answers HTTP on the `HttpIn` endpoint.
//!
//! - `GET /` — `hello from Web_IN_2 (upgrade domain 2, fault domain 0): <Greeting>`
//! - `GET /healthz` — `200 ok` (the load balancer probe)
//! - `POST /busy?ms=N` — reports Busy for N milliseconds (default 1000), so
//!   the load balancer takes this instance out and brings it back
//!
//! The greeting follows the `Greeting` setting: the role re-reads its
//! settings on every `Changed` event. A change of the `Generation` setting
//! cannot be applied live: the role cancels its `Changing`, and the fabric
//! recycles the instance with the new value.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use weft_runtime::protocol::{Change, InstanceInfo, RoleStatus, RuntimeEvent};
use weft_runtime::{RoleEntryPoint, RoleEnvironment};

/// The input endpoint this role serves.
const ENDPOINT: &str = "HttpIn";
/// The setting this role cannot take live: changing it recycles the instance.
const GENERATION: &str = "Generation";
/// The longest `/busy` accepted.
const MAX_BUSY: Duration = Duration::from_secs(600);
/// How long `on_stop` lets open requests finish.
const DRAIN: Duration = Duration::from_secs(10);
/// Once stopping, how long a kept-alive connection may stay idle before it
/// is closed. Until then every answer carries `Connection: close`, so a
/// busy client learns from a response that the connection ends, instead of
/// racing a close with its next request.
const LAME_DUCK: Duration = Duration::from_secs(2);

pub struct Web {
    listener: Option<TcpListener>,
    /// What this instance is, kept current by [`follow_changes`]; set in `on_start`.
    info: Option<Arc<RwLock<InstanceInfo>>>,
    /// Turns true when the role stops: connections finish what they are doing and close.
    closing: watch::Sender<bool>,
    /// Every connection task holds a clone; `on_stop` waits for them all to drop.
    open: Option<mpsc::Sender<()>>,
    all_closed: mpsc::Receiver<()>,
}

impl Default for Web {
    fn default() -> Web {
        let (open, all_closed) = mpsc::channel(1);
        Web {
            listener: None,
            info: None,
            closing: watch::Sender::new(false),
            open: Some(open),
            all_closed,
        }
    }
}

impl RoleEntryPoint for Web {
    async fn on_start(&mut self, env: &RoleEnvironment) -> anyhow::Result<()> {
        let info = env.instance().await?;
        env.on_changing(cancels_changing);
        let addr = listen_address(env).await?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("failed to listen on {addr}"))?;
        println!(
            "{}: listening on http://{}",
            info.instance_id,
            listener.local_addr()?
        );
        let info = Arc::new(RwLock::new(info));
        tokio::spawn(follow_changes(env.clone(), info.clone()));
        self.listener = Some(listener);
        self.info = Some(info);
        Ok(())
    }

    async fn run(&mut self, env: &RoleEnvironment) -> anyhow::Result<()> {
        let listener = self.listener.take().context("on_start did not bind")?;
        let info = self.info.clone().context("on_start did not run")?;
        let open = self.open.clone().context("the role is stopping")?;
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("warning: failed to accept a connection: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let site = Site {
                env: env.clone(),
                info: info.clone(),
            };
            tokio::spawn(serve(stream, site, self.closing.subscribe(), open.clone()));
        }
    }

    async fn on_stop(&mut self, _env: &RoleEnvironment) {
        let instance = self.info.as_ref().map_or_else(String::new, |info| {
            info.read()
                .unwrap_or_else(|e| e.into_inner())
                .instance_id
                .clone()
        });
        let _ = self.closing.send(true);
        println!("{instance}: stopping");
        self.open = None;
        if tokio::time::timeout(DRAIN, self.all_closed.recv())
            .await
            .is_err()
        {
            eprintln!("{instance}: requests still open after {DRAIN:?}; stopping anyway");
        }
    }
}

/// Cancels (asks for a recycle) a change that includes [`GENERATION`]; takes
/// everything else live.
fn cancels_changing(changes: &[Change]) -> bool {
    let cancel = changes
        .iter()
        .any(|c| matches!(c, Change::Setting { name } if name == GENERATION));
    if cancel {
        println!("{GENERATION} changed: cannot apply it live; asking for a recycle");
    }
    cancel
}

/// Where to listen: the runtime's `HttpIn` endpoint, else `HELLO_PORT` on
/// loopback.
async fn listen_address(env: &RoleEnvironment) -> anyhow::Result<SocketAddr> {
    if let Ok(endpoint) = env.endpoint(ENDPOINT).await {
        return Ok(endpoint.address);
    }
    let port = std::env::var("HELLO_PORT")
        .with_context(|| format!("no {ENDPOINT} endpoint and HELLO_PORT is not set"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("HELLO_PORT={port:?} is not a port number"))?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Re-reads the instance's settings after every change.
async fn follow_changes(env: RoleEnvironment, info: Arc<RwLock<InstanceInfo>>) {
    let mut events = match env.events().await {
        Ok(events) => events,
        Err(e) => {
            eprintln!("warning: not following configuration changes: {e}");
            return;
        }
    };
    while let Some(event) = events.next().await {
        if let Ok(RuntimeEvent::Changed { .. }) = event {
            match env.instance().await {
                Ok(new) => *info.write().unwrap_or_else(|e| e.into_inner()) = new,
                Err(e) => eprintln!("warning: failed to re-read the configuration: {e}"),
            }
        }
    }
}

/// What a request handler needs.
#[derive(Clone)]
struct Site {
    env: RoleEnvironment,
    info: Arc<RwLock<InstanceInfo>>,
}

async fn serve(
    stream: tokio::net::TcpStream,
    site: Site,
    mut closing: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
) {
    let stopping = closing.clone();
    let service = hyper::service::service_fn(move |req| {
        let site = site.clone();
        let last = *stopping.borrow();
        async move {
            let mut response = answer(&site, req).await;
            if last {
                // hyper closes the connection once this answer is written.
                response
                    .headers_mut()
                    .insert(CONNECTION, hyper::header::HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { closing.wait_for(|closing| *closing).await.map(drop) } => {
            // Lame duck: the next answer closes the connection; one left
            // idle is closed after LAME_DUCK.
            if tokio::time::timeout(LAME_DUCK, conn.as_mut()).await.is_err() {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }
}

async fn answer(site: &Site, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let is_get = matches!(*req.method(), Method::GET | Method::HEAD);
    match (req.uri().path(), is_get, req.method()) {
        ("/", true, _) => {
            let info = site.info.read().unwrap_or_else(|e| e.into_inner());
            let greeting = info.settings.get("Greeting").map_or("", String::as_str);
            text(
                StatusCode::OK,
                format!(
                    "hello from {} (upgrade domain {}, fault domain {}): {greeting}\n",
                    info.instance_id, info.update_domain, info.fault_domain
                ),
            )
        }
        ("/healthz", true, _) => text(StatusCode::OK, "ok\n".into()),
        ("/busy", _, &Method::POST) => busy(site, req.uri().query()).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// `POST /busy?ms=N`: Busy now, Ready again after N milliseconds.
async fn busy(site: &Site, query: Option<&str>) -> Response<Full<Bytes>> {
    let ms = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("ms="))
        .map_or(Ok(1000), str::parse::<u64>);
    let duration = match ms {
        Ok(ms) if Duration::from_millis(ms) <= MAX_BUSY => Duration::from_millis(ms),
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("ms must be a whole number of milliseconds up to {MAX_BUSY:?}\n"),
            );
        }
    };
    if let Err(e) = site.env.set_status(RoleStatus::Busy).await {
        return text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"));
    }
    let env = site.env.clone();
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        if let Err(e) = env.set_status(RoleStatus::Ready).await {
            eprintln!("warning: failed to report Ready again: {e}");
        }
    });
    text(
        StatusCode::ACCEPTED,
        format!("busy for {} ms\n", duration.as_millis()),
    )
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}
