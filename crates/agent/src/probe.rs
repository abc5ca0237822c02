//! Load balancer probes (`LoadBalancerProbe`): a TCP connect, or an HTTP
//! `GET path` that must answer `200 OK`. Probed every 25 ms until the first
//! success so a (re)started instance is taken into rotation at once, then
//! every `interval`; the probe fails when no attempt succeeded for
//! `timeout`, as Azure's load balancer counts it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep, timeout};

/// How often to probe until the first success.
const EAGER: Duration = Duration::from_millis(25);

#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    pub(crate) http_path: Option<String>,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    /// Notified when the instance reports a status.
    pub(crate) kick: Arc<Notify>,
}

/// The probe's verdict: `Ok` while passing, `Err(why)` while not (yet).
pub(crate) type Verdict = Result<(), String>;

impl Probe {
    /// Probes until `verdicts`' receivers are all gone, keeping this
    /// probe's entry (by name) current.
    pub(crate) async fn run(self, verdicts: watch::Sender<BTreeMap<String, Verdict>>) {
        let attempt_timeout = self
            .interval
            .clamp(Duration::from_millis(200), Duration::from_secs(5))
            .min(self.timeout.max(Duration::from_millis(200)));
        let mut last_ok: Option<Instant> = None;
        loop {
            let result = match timeout(attempt_timeout, self.attempt()).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "no answer within {} ms",
                    attempt_timeout.as_millis()
                )),
            };
            let now = Instant::now();
            let next = match result {
                Ok(()) => {
                    last_ok = Some(now);
                    Ok(())
                }
                Err(why) => match last_ok {
                    Some(t) if now.duration_since(t) < self.timeout => Ok(()),
                    _ => Err(format!(
                        "probe {} on {} failing: {why}",
                        self.name, self.addr
                    )),
                },
            };
            verdicts.send_if_modified(|all| {
                let changed = all.get(&self.name) != Some(&next);
                all.insert(self.name.clone(), next);
                changed
            });
            if verdicts.is_closed() {
                return;
            }
            if last_ok.is_some() {
                sleep(self.interval).await;
            } else {
                // Until the first success, also probe at once when the
                // instance says something (it usually listens by then).
                tokio::select! {
                    _ = sleep(EAGER) => {}
                    _ = self.kick.notified() => {}
                }
            }
        }
    }

    async fn attempt(&self) -> Result<(), String> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let Some(path) = &self.http_path else {
            return Ok(());
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        let conn = tokio::spawn(conn);
        let request = Request::get(path.as_str())
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::USER_AGENT, "weft-probe")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string());
        conn.abort();
        let status = response?.status();
        if status == hyper::StatusCode::OK {
            Ok(())
        } else {
            Err(format!("GET {path} answered {status}"))
        }
    }
}
