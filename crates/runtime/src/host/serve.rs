//! The runtime endpoint's HTTP side: accepting connections and answering
//! the requests listed in [`crate::protocol`].

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::{Shared, read, shutdown_grace};
use crate::protocol::{
    ANSWER_CHANGING_QUERY, ChangingAnswer, EVENTS_CONTENT_TYPE, ErrorBody, RuntimeEvent, StatusBody,
};

/// The largest request body accepted (a status is a few bytes).
const MAX_BODY: usize = 64 * 1024;

/// How long to wait after a failed accept before trying again.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

type ResponseBody = BoxBody<Bytes, Infallible>;

/// Accepts connections until `stop` turns true, then lets open ones finish
/// for a bounded time.
pub(super) async fn accept_loop(
    listener: UnixListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    let stop = stop.clone();
                    connections.spawn(serve_connection(stream, shared, stop));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: back off instead
                    // of spinning on the same error.
                    tracing::warn!(error = %e, "runtime endpoint failed to accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    let finish = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(shutdown_grace(), finish)
        .await
        .is_err()
    {
        tracing::debug!(
            open = connections.len(),
            "runtime endpoint cut connections still open at shutdown"
        );
    }
}

/// Resolves once the host is shutting down (or gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn serve_connection(
    stream: tokio::net::UnixStream,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(answer(&shared, req).await) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "runtime endpoint connection ended with an error");
    }
}

async fn answer(shared: &Shared, req: Request<Incoming>) -> Response<ResponseBody> {
    let path = req.uri().path();
    tracing::debug!(method = %req.method(), path, "runtime request");
    match (path, req.method()) {
        ("/v1/instance", &Method::GET) => json(StatusCode::OK, &*read(&shared.info)),
        ("/v1/topology", &Method::GET) => json(StatusCode::OK, &*read(&shared.topology)),
        ("/v1/status", &Method::GET) => match *shared.status.borrow() {
            Some(status) => json(StatusCode::OK, &StatusBody { status }),
            None => error(
                StatusCode::NOT_FOUND,
                "the instance has not reported a status yet".into(),
            ),
        },
        ("/v1/status", &Method::PUT) => put_status(shared, req).await,
        ("/v1/events", &Method::GET) => {
            let answers = req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|pair| pair == ANSWER_CHANGING_QUERY));
            let events = EventBody(shared.subscribe(answers));
            Response::builder()
                .status(StatusCode::OK)
                .header(CONTENT_TYPE, EVENTS_CONTENT_TYPE)
                .body(events.boxed())
                .expect("static response parts are valid")
        }
        ("/v1/instance" | "/v1/topology" | "/v1/events", _) => not_allowed("GET"),
        ("/v1/status", _) => not_allowed("GET, PUT"),
        (p, method) if p.starts_with("/v1/changing/") => {
            if method != Method::POST {
                return not_allowed("POST");
            }
            let id = &p["/v1/changing/".len()..];
            match id.parse::<u64>() {
                Ok(id) => answer_changing(shared, id, req).await,
                Err(_) => error(
                    StatusCode::NOT_FOUND,
                    format!("no such resource: {p} (a Changing id is a number)"),
                ),
            }
        }
        _ => error(StatusCode::NOT_FOUND, format!("no such resource: {path}")),
    }
}

async fn put_status(shared: &Shared, req: Request<Incoming>) -> Response<ResponseBody> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("failed to read the status body: {e}"),
            );
        }
    };
    match serde_json::from_slice::<StatusBody>(&body) {
        Ok(StatusBody { status }) => {
            shared.set_status(status);
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Full::new(Bytes::new()).boxed())
                .expect("static response parts are valid")
        }
        Err(e) => error(StatusCode::BAD_REQUEST, format!("invalid status body: {e}")),
    }
}

async fn answer_changing(
    shared: &Shared,
    id: u64,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("failed to read the answer to Changing {id}: {e}"),
            );
        }
    };
    let ChangingAnswer { cancel } = match serde_json::from_slice::<ChangingAnswer>(&body) {
        Ok(answer) => answer,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid answer to Changing {id}: {e}"),
            );
        }
    };
    if shared.answer_changing(id, cancel) {
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Full::new(Bytes::new()).boxed())
            .expect("static response parts are valid")
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("no Changing {id} is waiting for an answer (unknown, answered, or too late)"),
        )
    }
}

fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<ResponseBody> {
    let body = serde_json::to_vec(value).expect("protocol types serialize");
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("static response parts are valid")
}

fn error(status: StatusCode, message: String) -> Response<ResponseBody> {
    json(status, &ErrorBody { error: message })
}

fn not_allowed(allow: &'static str) -> Response<ResponseBody> {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {allow}"),
    );
    response
        .headers_mut()
        .insert(ALLOW, hyper::header::HeaderValue::from_static(allow));
    response
}

/// `GET /v1/events`: one JSON line per published event; ends when the host
/// drops the subscription (shutdown).
struct EventBody(mpsc::UnboundedReceiver<RuntimeEvent>);

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|event| {
            event.map(|event| {
                let mut line = serde_json::to_vec(&event).expect("protocol types serialize");
                line.push(b'\n');
                Ok(Frame::data(Bytes::from(line)))
            })
        })
    }
}
