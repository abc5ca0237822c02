//! Backends for the VIP tests: echo servers that say who they are.

#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use weft_lb::Backend;

/// An echo server that first sends its id and a newline on every connection,
/// then echoes until the client half-closes, then closes.
pub struct NamedEcho {
    pub backend: Backend,
    pub accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl NamedEcho {
    pub async fn start(id: &str) -> NamedEcho {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let name = id.to_owned();
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let name = name.clone();
                tokio::spawn(async move {
                    conn.write_all(format!("{name}\n").as_bytes()).await.ok();
                    let (mut r, mut w) = conn.split();
                    tokio::io::copy(&mut r, &mut w).await.ok();
                    w.shutdown().await.ok();
                });
            }
        });
        NamedEcho {
            backend: Backend {
                id: id.into(),
                addr,
            },
            accepted,
            task,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for NamedEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An address nobody listens on (bound, then released).
pub async fn dead_backend(id: &str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    Backend {
        id: id.into(),
        addr,
    }
}

/// A client connection through the VIP, past the backend's greeting.
pub struct Client {
    pub backend: String,
    pub conn: BufReader<TcpStream>,
}

impl Client {
    /// Connects and reads the greeting line; panics with a clear message if
    /// the VIP closed the connection instead.
    pub async fn connect(vip: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(vip).await.expect("connect to the vip")).await
    }

    /// Reads the greeting on an already connected stream.
    pub async fn from_stream(conn: TcpStream) -> Client {
        let mut conn = BufReader::new(conn);
        let mut line = String::new();
        conn.read_line(&mut line).await.expect("read the greeting");
        assert!(
            line.ends_with('\n'),
            "the vip closed the connection before a backend greeted: {line:?}"
        );
        Client {
            backend: line.trim_end().to_owned(),
            conn,
        }
    }

    /// Sends a line and expects it echoed.
    pub async fn round_trip(&mut self, text: &str) {
        self.conn
            .get_mut()
            .write_all(format!("{text}\n").as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        self.conn.read_line(&mut line).await.unwrap();
        assert_eq!(
            line,
            format!("{text}\n"),
            "echo through backend {}",
            self.backend
        );
    }

    /// Half-closes, then expects the backend to finish the connection.
    pub async fn finish(mut self) {
        self.conn.get_mut().shutdown().await.unwrap();
        let mut rest = Vec::new();
        self.conn.read_to_end(&mut rest).await.unwrap();
        assert!(
            rest.is_empty(),
            "unexpected bytes after half-close: {rest:?}"
        );
    }

    /// Expects the connection to be closed by the other side (EOF or reset)
    /// without sending anything first.
    pub async fn expect_closed(mut self) {
        let mut buf = [0u8; 64];
        match self.conn.read(&mut buf).await {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("expected the connection closed, got {:?}", &buf[..n]),
        }
    }
}

/// Connects to a VIP that has no usable backend and expects it to close the
/// connection without a byte.
pub async fn expect_refused_by_vip(vip: SocketAddr) {
    let mut conn = TcpStream::connect(vip).await.expect("the vip accepts");
    let mut buf = [0u8; 64];
    match conn.read(&mut buf).await {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!(
            "expected the vip to close the connection, got {:?}",
            &buf[..n]
        ),
    }
}
