//! Load generator for Azure-compatible storage: SharedKey-signed requests
//! over many keep-alive connections, measuring a server's capacity at
//! saturation (closed loop: every connection sends its next request as soon
//! as the previous answer arrived) with p50 / p99 latency per phase.
//!
//! Phases, in this order: `blob-put` (1 KiB block blobs), `blob-get` (the
//! blobs just put), `queue-put`, `queue-get-delete` (Get Messages for one
//! message, then Delete Message with its pop receipt: one operation),
//! `table-insert`, `table-get` (point queries of the entities just
//! inserted). Each runs for `--duration` seconds or `--ops` operations.
//!
//! ```text
//! cargo run --release -p weft-storage --example load -- run \
//!     --blob http://127.0.0.1:10000 --queue http://127.0.0.1:10001 \
//!     --table http://127.0.0.1:10002 --connections 64 --duration 10 --json weft.json
//! cargo run --release -p weft-storage --example load -- compare \
//!     weft.json azurite.json --rss 30,350
//! ```
//!
//! `bench/storage_load.sh` runs it against `weft storage` and Azurite.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use sha2_hmac::Sha256;
use tokio::net::TcpStream;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "2021-12-02";
const CONTAINER: &str = "loadtest";
const QUEUE: &str = "loadtest";
const TABLE: &str = "loadtest";
/// Objects put before a read phase when its write phase did not run.
const SEED: u64 = 512;

#[derive(Parser)]
#[command(about = "SharedKey load generator for Azure-compatible storage")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the phases against one server and prints (and saves) results.
    Run(RunArgs),
    /// Prints two saved results side by side with ratios (first / second).
    Compare {
        first: PathBuf,
        second: PathBuf,
        /// Peak RSS of each server in MiB, `first,second`.
        #[arg(long, value_delimiter = ',')]
        rss: Vec<f64>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Blob service base URL, e.g. http://127.0.0.1:10000.
    #[arg(long)]
    blob: Option<String>,
    /// Queue service base URL.
    #[arg(long)]
    queue: Option<String>,
    /// Table service base URL.
    #[arg(long)]
    table: Option<String>,
    #[arg(long, default_value = weft_storage::DEV_ACCOUNT)]
    account: String,
    #[arg(long, default_value = weft_storage::DEV_KEY)]
    key: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Operations per phase (instead of a duration).
    #[arg(long)]
    ops: Option<u64>,
    /// Client threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Phases to run (default: every phase whose service has a URL).
    #[arg(long, value_delimiter = ',')]
    phases: Vec<Phase>,
    /// A name for this server in the results.
    #[arg(long, default_value = "server")]
    label: String,
    /// Where to save the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Phase {
    BlobPut,
    BlobGet,
    QueuePut,
    QueueGetDelete,
    TableInsert,
    TableGet,
}

impl Phase {
    const ALL: [Phase; 6] = [
        Phase::BlobPut,
        Phase::BlobGet,
        Phase::QueuePut,
        Phase::QueueGetDelete,
        Phase::TableInsert,
        Phase::TableGet,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::BlobPut => "blob put 1 KiB",
            Phase::BlobGet => "blob get 1 KiB",
            Phase::QueuePut => "queue put",
            Phase::QueueGetDelete => "queue get+delete",
            Phase::TableInsert => "table insert",
            Phase::TableGet => "table point query",
        }
    }

    fn service(self) -> Service {
        match self {
            Phase::BlobPut | Phase::BlobGet => Service::Blob,
            Phase::QueuePut | Phase::QueueGetDelete => Service::Queue,
            Phase::TableInsert | Phase::TableGet => Service::Table,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Blob,
    Queue,
    Table,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PhaseResult {
    phase: Phase,
    ops: u64,
    errors: u64,
    seconds: f64,
    ops_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunResult {
    label: String,
    connections: usize,
    results: Vec<PhaseResult>,
}

/// What every connection shares.
struct Target {
    account: String,
    mac: HmacSha256,
    blob: Option<Endpoint>,
    queue: Option<Endpoint>,
    table: Option<Endpoint>,
}

#[derive(Clone)]
struct Endpoint {
    /// `host:port`, what to connect to.
    addr: String,
}

impl Endpoint {
    fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let uri: hyper::Uri = url.parse()?;
        let auth = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("url {url} has no host"))?;
        let port = auth.port_u16().unwrap_or(80);
        Ok(Endpoint {
            addr: format!("{}:{port}", auth.host()),
        })
    }
}

impl Target {
    fn endpoint(&self, s: Service) -> &Endpoint {
        match s {
            Service::Blob => self.blob.as_ref(),
            Service::Queue => self.queue.as_ref(),
            Service::Table => self.table.as_ref(),
        }
        .expect("phases run only for services with a URL")
    }

    fn sign(&self, sts: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(sts.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    /// A blob or queue request signed with SharedKey: `query` pairs are
    /// sent as given (values already URL-safe) and signed decoded.
    fn blob_request(
        &self,
        service: Service,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let mut ms: Vec<(&str, &str)> = vec![("x-ms-date", &date), ("x-ms-version", VERSION)];
        ms.extend(extra.iter().filter(|(k, _)| k.starts_with("x-ms-")));
        ms.sort_unstable();
        let content_type = extra
            .iter()
            .find(|(k, _)| *k == "content-type")
            .map_or("", |(_, v)| v);
        let len = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let mut sts = format!("{method}\n\n\n{len}\n\n{content_type}\n\n\n\n\n\n\n");
        for (k, v) in &ms {
            let _ = writeln!(sts, "{k}:{v}");
        }
        let _ = write!(sts, "/{}/{}{path}", self.account, self.account);
        let mut sorted: Vec<_> = query.to_vec();
        sorted.sort_unstable();
        let mut uri = format!("/{}{path}", self.account);
        for (i, (k, v)) in query.iter().enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(k);
            uri.push('=');
            uri.extend(percent_encoding::utf8_percent_encode(
                v,
                percent_encoding::NON_ALPHANUMERIC,
            ));
        }
        for (k, v) in sorted {
            let _ = write!(sts, "\n{k}:{v}");
        }
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", &self.endpoint(service).addr)
            .header(
                "authorization",
                format!("SharedKey {}:{}", self.account, self.sign(&sts)),
            );
        for (k, v) in &ms {
            b = b.header(*k, *v);
        }
        for (k, v) in extra.iter().filter(|(k, _)| !k.starts_with("x-ms-")) {
            b = b.header(*k, *v);
        }
        b.header("content-length", body.len())
            .body(Full::new(body))
            .expect("a valid request")
    }

    /// A table request signed with the table service's SharedKey.
    fn table_request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Request<Full<Bytes>> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let content_type = if body.is_some() {
            "application/json"
        } else {
            ""
        };
        let sts = format!(
            "{method}\n\n{content_type}\n{date}\n/{}/{}{path}",
            self.account, self.account
        );
        let mut b = Request::builder()
            .method(method)
            .uri(format!("/{}{path}", self.account))
            .header("host", &self.endpoint(Service::Table).addr)
            .header("x-ms-date", &date)
            .header("x-ms-version", VERSION)
            .header("accept", "application/json;odata=nometadata")
            .header("dataserviceversion", "3.0;NetFx")
            .header("maxdataserviceversion", "3.0;NetFx")
            .header(
                "authorization",
                format!("SharedKey {}:{}", self.account, self.sign(&sts)),
            );
        if body.is_some() {
            b = b
                .header("content-type", content_type)
                .header("prefer", "return-no-content");
        }
        let body = body.unwrap_or_default();
        b.header("content-length", body.len())
            .body(Full::new(body))
            .expect("a valid request")
    }
}

/// One keep-alive connection.
struct Conn {
    addr: String,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_string(),
            sender: None,
        }
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// The text between `<tag>` and `</tag>`.
fn between<'a>(s: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = s.find(&open)? + open.len();
    let end = s[start..].find(&format!("</{tag}>"))? + start;
    Some(&s[start..end])
}

/// Decodes the five XML entities a pop receipt may carry.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// What one operation did.
enum Outcome {
    Ok,
    /// The answer was not the expected one.
    Error(String),
    /// Nothing left to do (the queue is empty).
    Exhausted,
}

/// Names written so far, for the read phases.
#[derive(Default)]
struct Written {
    /// Makes this phase's names differ from every other run's and phase's.
    tag: String,
    blobs: Vec<String>,
    entities: Vec<(String, String)>,
}

async fn one_op(
    t: &Target,
    conn: &mut Conn,
    phase: Phase,
    worker: usize,
    seq: u64,
    written: &Written,
    payload: &Bytes,
) -> anyhow::Result<Outcome> {
    let expect = |status: StatusCode, want: StatusCode, body: &Bytes| {
        if status == want {
            Outcome::Ok
        } else {
            Outcome::Error(format!(
                "{phase:?}: {status}, expected {want}: {}",
                String::from_utf8_lossy(&body[..body.len().min(400)])
            ))
        }
    };
    Ok(match phase {
        Phase::BlobPut => {
            let req = t.blob_request(
                Service::Blob,
                Method::PUT,
                &format!("/{CONTAINER}/b{}-{worker:04}-{seq:09}", written.tag),
                &[],
                &[
                    ("x-ms-blob-type", "BlockBlob"),
                    ("content-type", "application/octet-stream"),
                ],
                payload.clone(),
            );
            let (s, b) = conn.send(req).await?;
            expect(s, StatusCode::CREATED, &b)
        }
        Phase::BlobGet => {
            let name = &written.blobs[(seq as usize).wrapping_mul(7919) % written.blobs.len()];
            let req = t.blob_request(
                Service::Blob,
                Method::GET,
                &format!("/{CONTAINER}/{name}"),
                &[],
                &[],
                Bytes::new(),
            );
            let (s, b) = conn.send(req).await?;
            if s == StatusCode::OK && b.len() != payload.len() {
                Outcome::Error(format!(
                    "blob get: {} bytes, expected {}",
                    b.len(),
                    payload.len()
                ))
            } else {
                expect(s, StatusCode::OK, &b)
            }
        }
        Phase::QueuePut => {
            let body = format!(
                "<QueueMessage><MessageText>message {worker} {seq} of the load test</MessageText></QueueMessage>"
            );
            let req = t.blob_request(
                Service::Queue,
                Method::POST,
                &format!("/{QUEUE}/messages"),
                &[],
                &[("content-type", "application/xml")],
                Bytes::from(body),
            );
            let (s, b) = conn.send(req).await?;
            expect(s, StatusCode::CREATED, &b)
        }
        Phase::QueueGetDelete => {
            let req = t.blob_request(
                Service::Queue,
                Method::GET,
                &format!("/{QUEUE}/messages"),
                &[("numofmessages", "1"), ("visibilitytimeout", "60")],
                &[],
                Bytes::new(),
            );
            let (s, b) = conn.send(req).await?;
            if s != StatusCode::OK {
                return Ok(expect(s, StatusCode::OK, &b));
            }
            let text = String::from_utf8_lossy(&b);
            let (Some(id), Some(receipt)) =
                (between(&text, "MessageId"), between(&text, "PopReceipt"))
            else {
                return Ok(Outcome::Exhausted);
            };
            let receipt = unescape(receipt);
            let req = t.blob_request(
                Service::Queue,
                Method::DELETE,
                &format!("/{QUEUE}/messages/{id}"),
                &[("popreceipt", &receipt)],
                &[],
                Bytes::new(),
            );
            let (s, b) = conn.send(req).await?;
            expect(s, StatusCode::NO_CONTENT, &b)
        }
        Phase::TableInsert => {
            let body = format!(
                "{{\"PartitionKey\":\"p{}-{worker:04}\",\"RowKey\":\"r{seq:09}\",\"Value\":{seq},\"Name\":\"entity {seq} of the load test\",\"Flag\":true}}",
                written.tag
            );
            let req = t.table_request(Method::POST, &format!("/{TABLE}"), Some(Bytes::from(body)));
            let (s, b) = conn.send(req).await?;
            expect(s, StatusCode::NO_CONTENT, &b)
        }
        Phase::TableGet => {
            let (pk, rk) =
                &written.entities[(seq as usize).wrapping_mul(7919) % written.entities.len()];
            let req = t.table_request(
                Method::GET,
                &format!("/{TABLE}(PartitionKey='{pk}',RowKey='{rk}')"),
                None,
            );
            let (s, b) = conn.send(req).await?;
            expect(s, StatusCode::OK, &b)
        }
    })
}

/// Latencies and counts of one connection in one phase.
#[derive(Default)]
struct Tally {
    lat_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    /// (worker, seq) of every successful write, for the read phases.
    done: Vec<u64>,
}

struct PhaseRun {
    phase: Phase,
    deadline: Option<Instant>,
    ops: Option<u64>,
    issued: AtomicU64,
    stop: AtomicBool,
}

async fn worker(
    t: Arc<Target>,
    run: Arc<PhaseRun>,
    written: Arc<Written>,
    worker: usize,
    payload: Bytes,
) -> Tally {
    let mut conn = Conn::new(&t.endpoint(run.phase.service()).addr);
    let mut tally = Tally::default();
    let mut seq = 0u64;
    loop {
        if run.stop.load(Ordering::Relaxed) || run.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(limit) = run.ops
            && run.issued.fetch_add(1, Ordering::Relaxed) >= limit
        {
            break;
        }
        seq += 1;
        let start = Instant::now();
        match one_op(&t, &mut conn, run.phase, worker, seq, &written, &payload).await {
            Ok(Outcome::Ok) => {
                tally
                    .lat_us
                    .push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
                tally.done.push(seq);
            }
            Ok(Outcome::Exhausted) => {
                run.stop.store(true, Ordering::Relaxed);
                break;
            }
            Ok(Outcome::Error(e)) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
            Err(e) => {
                tally.errors += 1;
                tally
                    .first_error
                    .get_or_insert(format!("{:?}: {e:#}", run.phase));
            }
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    u64::from(sorted[i])
}

async fn run_phase(
    t: &Arc<Target>,
    args: &RunArgs,
    phase: Phase,
    written: &mut Written,
    duration: Option<Duration>,
    ops: Option<u64>,
) -> PhaseResult {
    let payload = Bytes::from(vec![b'x'; 1024]);
    let run = Arc::new(PhaseRun {
        phase,
        deadline: duration.map(|d| Instant::now() + d),
        ops,
        issued: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    static PHASES: AtomicU64 = AtomicU64::new(0);
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let tag = format!("{started:x}{}", PHASES.fetch_add(1, Ordering::Relaxed));
    written.tag = tag.clone();
    let shared = Arc::new(std::mem::take(written));
    let start = Instant::now();
    let handles: Vec<_> = (0..args.connections)
        .map(|w| {
            tokio::spawn(worker(
                t.clone(),
                run.clone(),
                shared.clone(),
                w,
                payload.clone(),
            ))
        })
        .collect();
    let mut tallies = Vec::new();
    for h in handles {
        tallies.push(h.await.expect("worker task"));
    }
    let seconds = start.elapsed().as_secs_f64();
    *written = Arc::try_unwrap(shared).unwrap_or_else(|_| panic!("workers finished"));
    let mut lat: Vec<u32> = Vec::new();
    let mut errors = 0;
    for (w, tally) in tallies.into_iter().enumerate() {
        lat.extend(&tally.lat_us);
        errors += tally.errors;
        if let Some(e) = tally.first_error {
            eprintln!("error: {e}");
        }
        match phase {
            Phase::BlobPut => written
                .blobs
                .extend(tally.done.iter().map(|s| format!("b{tag}-{w:04}-{s:09}"))),
            Phase::TableInsert => written.entities.extend(
                tally
                    .done
                    .iter()
                    .map(|s| (format!("p{tag}-{w:04}"), format!("r{s:09}"))),
            ),
            _ => {}
        }
    }
    lat.sort_unstable();
    PhaseResult {
        phase,
        ops: lat.len() as u64,
        errors,
        seconds,
        ops_per_sec: lat.len() as f64 / seconds,
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
    }
}

/// Creates the container, queue and table (ignoring "already exists").
async fn setup(t: &Target) -> anyhow::Result<()> {
    if let Some(e) = &t.blob {
        let mut c = Conn::new(&e.addr);
        let req = t.blob_request(
            Service::Blob,
            Method::PUT,
            &format!("/{CONTAINER}"),
            &[("restype", "container")],
            &[],
            Bytes::new(),
        );
        let (s, b) = c.send(req).await?;
        anyhow::ensure!(
            s.is_success() || s == StatusCode::CONFLICT,
            "create container: {s}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    if let Some(e) = &t.queue {
        let mut c = Conn::new(&e.addr);
        let req = t.blob_request(
            Service::Queue,
            Method::PUT,
            &format!("/{QUEUE}"),
            &[],
            &[],
            Bytes::new(),
        );
        let (s, b) = c.send(req).await?;
        anyhow::ensure!(
            s.is_success(),
            "create queue: {s}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    if let Some(e) = &t.table {
        let mut c = Conn::new(&e.addr);
        let body = format!("{{\"TableName\":\"{TABLE}\"}}");
        let req = t.table_request(Method::POST, "/Tables", Some(Bytes::from(body)));
        let (s, b) = c.send(req).await?;
        anyhow::ensure!(
            s.is_success() || s == StatusCode::CONFLICT,
            "create table: {s}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    Ok(())
}

fn print_run(r: &RunResult) {
    println!("{} ({} connections)\n", r.label, r.connections);
    println!("| phase | ops | errors | ops/s | p50 | p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for p in &r.results {
        println!(
            "| {} | {} | {} | {:.0} | {} | {} |",
            p.phase.name(),
            p.ops,
            p.errors,
            p.ops_per_sec,
            us(p.p50_us),
            us(p.p99_us)
        );
    }
}

fn us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1000.0)
    } else if v >= 1000 {
        format!("{:.2} ms", v as f64 / 1000.0)
    } else {
        format!("{v} µs")
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let key = STANDARD.decode(args.key.trim())?;
    let t = Arc::new(Target {
        account: args.account.clone(),
        mac: HmacSha256::new_from_slice(&key).expect("hmac takes any key"),
        blob: args.blob.as_deref().map(Endpoint::parse).transpose()?,
        queue: args.queue.as_deref().map(Endpoint::parse).transpose()?,
        table: args.table.as_deref().map(Endpoint::parse).transpose()?,
    });
    let phases: Vec<Phase> = if args.phases.is_empty() {
        Phase::ALL
            .into_iter()
            .filter(|p| match p.service() {
                Service::Blob => t.blob.is_some(),
                Service::Queue => t.queue.is_some(),
                Service::Table => t.table.is_some(),
            })
            .collect()
    } else {
        args.phases.clone()
    };
    for p in &phases {
        anyhow::ensure!(
            match p.service() {
                Service::Blob => t.blob.is_some(),
                Service::Queue => t.queue.is_some(),
                Service::Table => t.table.is_some(),
            },
            "phase {p:?} needs its service's URL"
        );
    }
    setup(&t).await?;
    let mut written = Written::default();
    let mut results = Vec::new();
    let duration = args
        .ops
        .is_none()
        .then(|| Duration::from_secs_f64(args.duration));
    for &phase in &phases {
        // A read phase needs something to read.
        let seed = match phase {
            Phase::BlobGet if written.blobs.is_empty() => Some(Phase::BlobPut),
            Phase::QueueGetDelete if !phases.contains(&Phase::QueuePut) => Some(Phase::QueuePut),
            Phase::TableGet if written.entities.is_empty() => Some(Phase::TableInsert),
            _ => None,
        };
        if let Some(s) = seed {
            run_phase(&t, &args, s, &mut written, None, Some(SEED)).await;
        }
        let r = run_phase(&t, &args, phase, &mut written, duration, args.ops).await;
        eprintln!(
            "{}: {} ops, {} errors, {:.0} ops/s, p50 {}, p99 {}",
            phase.name(),
            r.ops,
            r.errors,
            r.ops_per_sec,
            us(r.p50_us),
            us(r.p99_us)
        );
        results.push(r);
    }
    let out = RunResult {
        label: args.label.clone(),
        connections: args.connections,
        results,
    };
    print_run(&out);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&out)?)?;
    }
    anyhow::ensure!(
        out.results.iter().all(|r| r.errors == 0),
        "some requests failed (see above)"
    );
    Ok(())
}

fn compare(first: PathBuf, second: PathBuf, rss: Vec<f64>) -> anyhow::Result<()> {
    let a: RunResult = serde_json::from_slice(&std::fs::read(&first)?)?;
    let b: RunResult = serde_json::from_slice(&std::fs::read(&second)?)?;
    let (na, nb) = (&a.label, &b.label);
    println!(
        "| phase ({} connections) | {na} ops/s | {na} p50 | {na} p99 | {nb} ops/s | {nb} p50 | {nb} p99 | ops/s ratio | p99 ratio |",
        a.connections
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ra in &a.results {
        let Some(rb) = b.results.iter().find(|r| r.phase == ra.phase) else {
            continue;
        };
        println!(
            "| {} | {:.0} | {} | {} | {:.0} | {} | {} | {:.1}× | {:.2}× |",
            ra.phase.name(),
            ra.ops_per_sec,
            us(ra.p50_us),
            us(ra.p99_us),
            rb.ops_per_sec,
            us(rb.p50_us),
            us(rb.p99_us),
            ra.ops_per_sec / rb.ops_per_sec.max(1e-9),
            ra.p99_us as f64 / (rb.p99_us.max(1) as f64),
        );
    }
    if let [ra, rb] = rss[..] {
        println!("\n| server | peak RSS |\n|---|---:|");
        println!("| {na} | {ra:.0} MiB |\n| {nb} | {rb:.0} MiB |");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Run(args) => {
            let rt = if args.threads <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(args.threads)
                    .enable_all()
                    .build()?
            };
            rt.block_on(run(args))
        }
        Cmd::Compare { first, second, rss } => compare(first, second, rss),
    }
}
