//! A small fast HTTP/1.1 backend for bench/lb.sh: answers `GET /1m` with a
//! 1 MiB body and every other request with `200 hello`, keep-alive unless
//! the client asks otherwise.
//!
//! Usage: backend ADDR [THREADS]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:18080".into())
        .parse()?;
    let threads: usize = args.next().map_or(Ok(1), |t| t.parse())?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(serve(addr))
}

async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("backend listening on {}", listener.local_addr()?);
    let big = Bytes::from(vec![b'x'; 1 << 20]);
    loop {
        let (conn, _) = listener.accept().await?;
        conn.set_nodelay(true)?;
        let big = big.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let body = if req.uri().path() == "/1m" {
                    big.clone()
                } else {
                    Bytes::from_static(b"hello\n")
                };
                async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
            });
            // A client that goes away mid-request is normal under load.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(conn), service)
                .await;
        });
    }
}
