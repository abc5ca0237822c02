//! Shared by the fabric tests: an application directory built from
//! examples/hello with the workspace's `hello` binary, a `weft up` started
//! the way a user starts it, and small clients for its API and VIPs.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// The `hello` example binary cargo built beside `weft`.
pub fn hello_binary() -> PathBuf {
    let path = Path::new(WEFT).with_file_name("hello");
    assert!(
        path.is_file(),
        "{} not found: build the example with `cargo build -p hello` (cargo nextest run --workspace does)",
        path.display()
    );
    path
}

/// A copy of examples/hello whose role folders hold the real `hello`
/// binary; `edit_cscfg` may change the configuration text.
pub fn hello_app(root: &Path, edit_cscfg: impl Fn(String) -> String) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    let app = root.join("hello");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::copy(
        src.join("ServiceDefinition.csdef"),
        app.join("ServiceDefinition.csdef"),
    )
    .unwrap();
    let cscfg = std::fs::read_to_string(src.join("ServiceConfiguration.Local.cscfg")).unwrap();
    std::fs::write(
        app.join("ServiceConfiguration.Local.cscfg"),
        edit_cscfg(cscfg),
    )
    .unwrap();
    for role in ["Web", "Worker"] {
        std::fs::create_dir_all(app.join(role)).unwrap();
        std::fs::copy(hello_binary(), app.join(role).join("hello")).unwrap();
    }
    app
}

/// Sets a role's instance count in a cscfg text.
pub fn with_instances(cscfg: &str, role: &str, count: u32) -> String {
    let at = cscfg
        .find(&format!("<Role name=\"{role}\">"))
        .expect("role in cscfg");
    let start = at + cscfg[at..].find("<Instances count=\"").unwrap() + "<Instances count=\"".len();
    let end = start + cscfg[start..].find('"').unwrap();
    format!("{}{count}{}", &cscfg[..start], &cscfg[end..])
}

/// A running `weft up`, killed when dropped.
pub struct Fabric {
    pub child: Child,
    pub state: PathBuf,
    pub lines: mpsc::Receiver<String>,
    pub stdout: Vec<String>,
    pub api: String,
    pub token: String,
}

impl Fabric {
    /// Starts `weft up ARGS --state STATE --api 127.0.0.1:0 --no-storage`
    /// and waits until it says it is ready (or fails).
    pub fn start(state: &Path, args: &[&str]) -> Fabric {
        let mut child = Command::new(WEFT)
            .arg("up")
            .args(args)
            .args(["--state", state.to_str().unwrap()])
            .args(["--api", "127.0.0.1:0", "--no-storage", "--grace", "3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start weft up");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {line}"));
            }
        });
        let mut fabric = Fabric {
            child,
            state: state.to_path_buf(),
            lines: rx,
            stdout: Vec::new(),
            api: String::new(),
            token: String::new(),
        };
        fabric.wait_line("press Ctrl-C to stop", Duration::from_secs(60));
        fabric.api = std::fs::read_to_string(state.join("api.url"))
            .unwrap()
            .trim()
            .to_owned();
        fabric.token = std::fs::read_to_string(state.join("token"))
            .unwrap()
            .trim()
            .to_owned();
        fabric
    }

    /// Waits for an output line containing `needle`; panics with everything
    /// printed so far if it does not come.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.stdout.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stdout.push(line),
                Err(_) => panic!(
                    "weft up never printed `{needle}`; it printed:\n{}",
                    self.stdout.join("\n")
                ),
            }
        }
    }

    /// Every line printed so far.
    pub fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.stdout.push(line);
        }
        self.stdout.join("\n")
    }

    pub fn weft(&self, args: &[&str]) -> std::process::Output {
        Command::new(WEFT)
            .args(args)
            .args(["--state", self.state.to_str().unwrap()])
            .env_remove("WEFT_API")
            .env_remove("WEFT_TOKEN")
            .output()
            .unwrap()
    }

    /// `GET path` on the API with the token.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let addr: SocketAddr = self.api.trim_start_matches("http://").parse().unwrap();
        let (status, body) = http(
            addr,
            "GET",
            path,
            &[("authorization", &format!("Bearer {}", self.token))],
        )
        .expect("API answers");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The production deployment of `service`, from the API.
    pub fn deployment(&self, service: &str) -> Option<Value> {
        self.deployment_in(service, "production")
    }

    /// The deployment in `slot` (`production` or `staging`) of `service`.
    pub fn deployment_in(&self, service: &str, slot: &str) -> Option<Value> {
        let (status, services) = self.get("/v1/services");
        assert_eq!(status, 200, "{services}");
        services.as_array()?.iter().find(|s| s["name"] == service)?["deployments"]
            .as_array()?
            .iter()
            .find(|d| d["slot"] == slot)
            .cloned()
    }

    /// The instances of the deployment in `slot` of `service`.
    pub fn instances_in(&self, service: &str, slot: &str) -> Vec<Value> {
        self.deployment_in(service, slot)
            .map(|d| {
                d["roles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|r| r["instances"].as_array().unwrap().clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The VIP of the web role's HttpIn endpoint in `slot`.
    pub fn web_vip_in(&self, service: &str, slot: &str) -> SocketAddr {
        let d = self.deployment_in(service, slot).expect("deployment");
        d["vips"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["endpoint"] == "HttpIn")
            .expect("HttpIn vip")["address"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Runs `weft ARGS`, asserting it succeeds; its stdout.
    pub fn weft_ok(&self, args: &[&str]) -> String {
        let out = self.weft(args);
        assert!(
            out.status.success(),
            "weft {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Waits until `check` holds for the instances in `slot`.
    pub fn wait_instances_in(
        &self,
        service: &str,
        slot: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.instances_in(service, slot);
            if check(&now) {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not true within {timeout:?}; instances: {}",
                serde_json::to_string_pretty(&now).unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn instances(&self, service: &str) -> Vec<Value> {
        self.deployment(service)
            .map(|d| {
                d["roles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|r| r["instances"].as_array().unwrap().clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The VIP of the web role's HttpIn endpoint.
    pub fn web_vip(&self, service: &str) -> SocketAddr {
        let d = self.deployment(service).expect("deployment");
        d["vips"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["endpoint"] == "HttpIn")
            .expect("HttpIn vip")["address"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Waits until `check` holds for the instances, with a deadline.
    pub fn wait_instances(
        &self,
        service: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.instances(service);
            if check(&now) {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not true within {timeout:?}; instances: {}",
                serde_json::to_string_pretty(&now).unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} weft up");
    }

    /// Waits for `weft up` to exit and returns its status code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "weft up did not exit within {timeout:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // Stop cleanly so no instance outlives the test.
            self.signal("INT");
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request with `Connection: close`; `None` if the connection
/// failed or was cut.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, buf[head_end + 4..].to_vec()))
}

/// Whether a process id is alive (not a zombie).
pub fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        }
        Err(_) => false,
    }
}

pub fn pids(instances: &[Value]) -> Vec<u64> {
    instances.iter().filter_map(|i| i["pid"].as_u64()).collect()
}

pub fn all_ready(instances: &[Value], n: usize) -> bool {
    instances.len() == n
        && instances
            .iter()
            .all(|i| i["ready"] == true && i["status"] == "ReadyRole")
}

/// Waits (10 s at most) until `ok` has grown by 20.
pub fn served_more(ok: &AtomicU64) {
    let until = ok.load(Ordering::Relaxed) + 20;
    let deadline = Instant::now() + Duration::from_secs(10);
    while ok.load(Ordering::Relaxed) < until && Instant::now() < deadline {
        std::thread::yield_now();
    }
}

/// Requests through the VIP, one connection each, until stopped.
pub struct Load {
    pub stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    greetings: Arc<std::sync::Mutex<BTreeSet<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(vip: std::net::SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let greetings = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, failed, greetings) =
                    (stop.clone(), ok.clone(), failed.clone(), greetings.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match http(vip, "GET", "/", &[]) {
                            Some((200, body)) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                let body = String::from_utf8_lossy(&body).into_owned();
                                if let Some(g) = body.split(": ").nth(1) {
                                    greetings.lock().unwrap().insert(g.trim().to_owned());
                                }
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            greetings,
            threads,
        }
    }

    /// Waits until a few more requests have been answered after the
    /// operation, so the load covers its end too.
    pub fn served_more(&self) {
        served_more(&self.ok);
    }

    /// (sent, failed)
    pub fn finish(self) -> (u64, u64, BTreeSet<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let ok = self.ok.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let greetings = self.greetings.lock().unwrap().clone();
        (ok + failed, failed, greetings)
    }
}

/// Requests through the VIP over kept-alive connections, until stopped. A
/// connection the server closes between responses (it is stopping) is
/// opened again and the request sent again, as HTTP clients do for an
/// idempotent request that got no response; a request that got a broken
/// or non-200 response fails.
pub struct KeepAlive {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    reconnects: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl KeepAlive {
    pub fn start(vip: std::net::SocketAddr, clients: usize) -> KeepAlive {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let reconnects = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, failed, reconnects) =
                    (stop.clone(), ok.clone(), failed.clone(), reconnects.clone());
                std::thread::spawn(move || {
                    let mut conn: Option<std::io::BufReader<std::net::TcpStream>> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let c = match conn.as_mut() {
                            Some(c) => c,
                            None => match std::net::TcpStream::connect(vip) {
                                Ok(s) => {
                                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                                    conn.insert(std::io::BufReader::new(s))
                                }
                                Err(_) => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                            },
                        };
                        match keep_alive_request(c) {
                            Answer::Ok { close, .. } => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                if close {
                                    conn = None;
                                }
                            }
                            Answer::ClosedUnanswered => {
                                reconnects.fetch_add(1, Ordering::Relaxed);
                                conn = None;
                            }
                            Answer::Failed => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                conn = None;
                            }
                        }
                    }
                })
            })
            .collect();
        KeepAlive {
            stop,
            ok,
            failed,
            reconnects,
            threads,
        }
    }

    /// (sent, failed, resent after a close)
    /// See [`Load::served_more`].
    pub fn served_more(&self) {
        served_more(&self.ok);
    }

    pub fn finish(self) -> (u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let ok = self.ok.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        (ok + failed, failed, self.reconnects.load(Ordering::Relaxed))
    }
}

pub enum Answer {
    Ok { close: bool, body: String },
    ClosedUnanswered,
    Failed,
}

pub fn keep_alive_request(c: &mut std::io::BufReader<std::net::TcpStream>) -> Answer {
    use std::io::BufRead;
    if c.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
        .is_err()
    {
        return Answer::ClosedUnanswered;
    }
    let mut status = String::new();
    match c.read_line(&mut status) {
        Ok(0) => return Answer::ClosedUnanswered,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            return Answer::ClosedUnanswered;
        }
        Err(_) => return Answer::Failed,
        Ok(_) => {}
    }
    let (mut length, mut close) = (0usize, false);
    loop {
        let mut line = String::new();
        if c.read_line(&mut line).unwrap_or(0) == 0 {
            return Answer::Failed;
        }
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        close |= line == "connection: close";
    }
    let mut body = vec![0; length];
    if c.read_exact(&mut body).is_err() || !status.starts_with("HTTP/1.1 200") {
        return Answer::Failed;
    }
    Answer::Ok {
        close,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}
