//! examples/guestbook on the real binary, as a user runs it: `weft up` the
//! guestbook (Python roles, their environment built by a startup task) with
//! the storage `weft up` serves and `UseDevelopmentStorage=true`, sign it
//! with a photo through the VIP, and see the worker role's thumbnail appear
//! on the page; the queue is empty afterwards, a restart of the fabric
//! reuses the roles' Python environments, and a full connection string set
//! in place recycles the roles onto it.

mod fabric_support;
#[path = "storage_support.rs"]
mod storage_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fabric_support::{Fabric, WEFT, http};
use serde_json::Value;

/// Building both roles' Python environments (venv + pip) on a busy 2-core
/// machine takes a while; everything else takes seconds.
const START_DEADLINE: Duration = Duration::from_secs(240);
/// Upload → thumbnail on the page.
const THUMBNAIL_DEADLINE: Duration = Duration::from_secs(60);
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/guestbook")
}

/// The roles build their environment with `python3 -m venv`; say so
/// plainly when this host cannot.
fn require_python_venv() {
    let ok = Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 with the venv module not found: the guestbook's startup task builds a virtualenv \
         (apt-get install python3 python3-venv, or run scripts/install-deps)"
    );
}

/// The ports `UseDevelopmentStorage=true` means, where `weft up` serves
/// blob, queue and table storage.
const DEV_PORTS: [u16; 3] = [10000, 10001, 10002];

/// `UseDevelopmentStorage=true` spelled out: the same storage, a full
/// connection string.
fn full_connection_string() -> String {
    let [blob, queue, table] = DEV_PORTS;
    format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};\
         BlobEndpoint=http://127.0.0.1:{blob}/devstoreaccount1;\
         QueueEndpoint=http://127.0.0.1:{queue}/devstoreaccount1;\
         TableEndpoint=http://127.0.0.1:{table}/devstoreaccount1"
    )
}

/// `weft up` only warns when it cannot serve storage; the roles would then
/// wait for it until the deadline. Say at once what holds the ports.
fn require_dev_storage_ports_free() {
    for port in DEV_PORTS {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "127.0.0.1:{port} is taken: the guestbook test runs `weft up` with its storage on \
             10000-10002, the ports UseDevelopmentStorage=true means (stop Azurite or another weft)"
        );
    }
}

/// The Local configuration with one instance per role and `connection` as
/// the roles' DataConnectionString.
fn test_cscfg(dir: &Path, connection: &str) -> PathBuf {
    let cscfg = std::fs::read_to_string(example().join("ServiceConfiguration.Local.cscfg"))
        .unwrap()
        .replace("UseDevelopmentStorage=true", connection)
        .replace("<Instances count=\"2\" />", "<Instances count=\"1\" />");
    assert_eq!(cscfg.matches(connection).count(), 2, "{cscfg}");
    let path = dir.join("ServiceConfiguration.Test.cscfg");
    std::fs::write(&path, cscfg).unwrap();
    path
}

/// `weft up ARGS`, with its storage, and a deadline fit for pip (the shared
/// harness allows a minute).
fn start(state: &Path, args: &[&str]) -> Fabric {
    let mut child = Command::new(WEFT)
        .arg("up")
        .args(args)
        .args(["--state", state.to_str().unwrap()])
        .args(["--api", "127.0.0.1:0", "--grace", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weft up");
    let (tx, lines) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
    }
    let mut fabric = Fabric {
        child,
        state: state.to_path_buf(),
        lines,
        stdout: Vec::new(),
        api: String::new(),
        token: String::new(),
    };
    // Until it is ready; if it never is (no PyPI, no python3 ...), the
    // instances' own logs say why.
    let deadline = Instant::now() + START_DEADLINE;
    while !fabric.output().contains("press Ctrl-C to stop") {
        let exited = fabric.child.try_wait().unwrap().is_some();
        if exited || Instant::now() > deadline {
            let mut why = String::new();
            if let Ok(url) = std::fs::read_to_string(state.join("api.url")) {
                fabric.api = url.trim().to_owned();
                for instance in ["WebRole_IN_0", "WorkerRole_IN_0"] {
                    why += &format!("\n--- weft logs {instance}:\n{}", logs(&fabric, instance));
                }
            }
            panic!(
                "weft up did not get the guestbook ready within {START_DEADLINE:?}; it printed:\n{}{why}",
                fabric.output()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// What `weft logs INSTANCE` prints.
fn logs(fabric: &Fabric, instance: &str) -> String {
    let out = fabric.weft(&["logs", instance]);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn sign_with_a_photo_get_a_thumbnail_and_an_empty_queue() {
    require_python_venv();
    require_dev_storage_ports_free();
    let python = storage_support::python();
    let tmp = tempfile::tempdir().unwrap();
    // The roles use UseDevelopmentStorage=true, as ServiceConfiguration.Local
    // has it; the test looks at the same storage through a full string.
    let cscfg = test_cscfg(tmp.path(), "UseDevelopmentStorage=true");
    let connection = full_connection_string();
    let state = tmp.path().join("state");
    let example = example();
    let app = [
        example.to_str().unwrap(),
        "--config",
        cscfg.to_str().unwrap(),
    ];
    let mut fabric = start(&state, &app);
    let ready = fabric.wait_line("instances ready in", Duration::from_secs(1));
    assert!(
        ready.starts_with("guestbook: 2 instances ready in"),
        "{ready}"
    );
    let vip = fabric.web_vip("guestbook");

    // The worker serves its health on its internal endpoint.
    let worker = fabric
        .instances("guestbook")
        .into_iter()
        .find(|i| i["id"] == "WorkerRole_IN_0")
        .expect("the worker instance");
    let health: SocketAddr = worker["endpoints"]["Health"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no Health endpoint: {worker}"));
    let (status, body) = http(health, "GET", "/healthz", &[]).expect("the worker answers");
    assert_eq!((status, &body[..]), (200, &b"ok\n"[..]));

    // An empty guestbook serves its form.
    let (status, page) = http(vip, "GET", "/", &[]).expect("the web role answers");
    let page = String::from_utf8_lossy(&page).into_owned();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    assert!(!page.contains("class=\"entry\""), "{page}");

    // Not an image: refused with the reason, nothing stored.
    let (status, _, body) = post_entry(vip, "Mallory", "not a photo", "x.png", b"plain text");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("not a PNG, JPEG, GIF or WebP image"),
        "{body}"
    );

    // Sign it with a 300×200 PNG.
    let photo = png(300, 200);
    let message = format!("hello from the guestbook test <{}>", std::process::id());
    let (status, location, body) = post_entry(vip, "Ann", &message, "photo.png", &photo);
    assert_eq!(status, 303, "{body}");
    assert_eq!(location.as_deref(), Some("/"));

    // The worker role's thumbnail appears on the page.
    let escaped = message.replace('<', "&lt;").replace('>', "&gt;");
    let entry = wait_thumbnail(&fabric, vip, &escaped);
    assert!(entry.contains("<b class=\"name\">Ann</b>"), "{entry}");
    assert_eq!(message_count(&page_of(vip), &escaped), 1);

    // The thumbnail, through the web role: an image at most 128 px wide,
    // the photo's aspect kept; the photo itself comes back unchanged.
    let thumb = attribute_after(&entry, "src=\"").expect("thumbnail src");
    let (status, bytes) = http(vip, "GET", &thumb, &[]).expect("thumbnail answers");
    assert_eq!(status, 200, "GET {thumb}");
    let (format, width, height) = image_size(&bytes).unwrap_or_else(|| {
        panic!(
            "{thumb} is not a PNG or JPEG: {:?}",
            &bytes[..bytes.len().min(16)]
        )
    });
    assert!(
        width <= 128 && width > 0,
        "{thumb}: {format} {width}x{height}"
    );
    assert_eq!((width, height), (128, 85), "{thumb}: {format}");
    let original = attribute_after(&entry, "href=\"").expect("photo link");
    let (status, bytes) = http(vip, "GET", &original, &[]).expect("photo answers");
    assert_eq!(status, 200, "GET {original}");
    assert!(bytes == photo, "GET {original} is not the uploaded photo");

    // Through the storage itself (the Azure SDK): the queue drains (the
    // worker deletes the message after the merge) and the entry names its
    // thumbnail.
    let seen = wait_drained(&python, &connection);
    let entry = &seen["entries"][0];

    // At-least-once delivery: the same work item again changes nothing
    // (idempotent), and a malformed one is dropped, not retried forever.
    let photo_blob = entry["PhotoUrl"]
        .as_str()
        .and_then(|u| u.split("/guestbook-pics/").nth(1))
        .unwrap_or_else(|| panic!("no photo URL: {entry}"));
    let again = serde_json::json!({
        "blob": photo_blob,
        "partition": entry["PartitionKey"],
        "row": entry["RowKey"],
    });
    send_messages(
        &python,
        &connection,
        &[&again.to_string(), "not a work item"],
    );
    let after = wait_drained(&python, &connection);
    assert_eq!(after["entries"], seen["entries"]);
    let worker_log = logs(&fabric, "WorkerRole_IN_0");
    assert!(
        worker_log.contains("malformed message"),
        "the worker never dropped the malformed message:\n{worker_log}"
    );

    // A restart of the fabric restarts the instances: their startup tasks
    // find the Python environment current (local storage kept) instead of
    // reinstalling, and the entry is still there.
    fabric.signal("INT");
    assert_eq!(fabric.wait_exit(Duration::from_secs(30)), Some(0));
    drop(fabric);
    let fabric = start(&state, &app);
    for instance in ["WebRole_IN_0", "WorkerRole_IN_0"] {
        let log = logs(&fabric, instance);
        assert_eq!(
            log.matches("building python environment").count(),
            1,
            "{log}"
        );
        assert!(log.contains("is current (requirements.txt"), "{log}");
    }
    fabric.wait_instances("guestbook", "every instance Ready", START_DEADLINE, |i| {
        fabric_support::all_ready(i, 2)
    });
    let vip = fabric.web_vip("guestbook");
    assert_eq!(message_count(&page_of(vip), &escaped), 1);

    // A new DataConnectionString (the same storage as a full connection
    // string): both roles cancel the Changing, as the classic sample does,
    // so weft recycles them (new processes) instead of applying it live;
    // they come back Ready and serve the same entries.
    let before = fabric_support::pids(&fabric.instances("guestbook"));
    let changed = tmp.path().join("changed");
    std::fs::create_dir_all(&changed).unwrap();
    let changed = test_cscfg(&changed, &connection);
    let out = fabric.weft(&[
        "config",
        "set",
        changed.to_str().unwrap(),
        "--min-healthy-time",
        "200ms",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    fabric.wait_instances(
        "guestbook",
        "both instances recycled and Ready",
        START_DEADLINE,
        |i| {
            let now = fabric_support::pids(i);
            fabric_support::all_ready(i, 2) && now.iter().all(|p| !before.contains(p))
        },
    );
    for instance in ["WebRole_IN_0", "WorkerRole_IN_0"] {
        let log = logs(&fabric, instance);
        assert!(
            log.contains("DataConnectionString is changing: asking for a recycle"),
            "{log}"
        );
    }
    assert_eq!(message_count(&page_of(vip), &escaped), 1);

    // The recycled roles take a new entry through the whole flow; the
    // page lists the newest first.
    let (status, _, body) = post_entry(vip, "Bob", "second", "second.png", &png(64, 64));
    assert_eq!(status, 303, "{body}");
    let entry = wait_thumbnail(&fabric, vip, "second");
    assert!(entry.contains("<b class=\"name\">Bob</b>"), "{entry}");
    let page = page_of(vip);
    let newer = page.find("<p class=\"message\">second</p>").unwrap();
    let older = page
        .find(&format!("<p class=\"message\">{escaped}</p>"))
        .unwrap();
    assert!(newer < older, "the newest entry is not first:\n{page}");
}

/// Waits until the page shows the entry whose message is `escaped` with a
/// thumbnail; returns the entry's HTML.
fn wait_thumbnail(fabric: &Fabric, vip: SocketAddr, escaped: &str) -> String {
    let deadline = Instant::now() + THUMBNAIL_DEADLINE;
    loop {
        let page = page_of(vip);
        let entry = entry_html(&page, escaped);
        if let Some(entry) = entry.filter(|e| e.contains("/pics/thumbnails/")) {
            return entry;
        }
        assert!(
            Instant::now() < deadline,
            "no thumbnail on the page within {THUMBNAIL_DEADLINE:?}:\n{page}\n--- worker logs:\n{}",
            logs(fabric, "WorkerRole_IN_0")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The role folders are packaged separately, so the code both roles use is
/// copied into each; the copies must not drift apart.
fn page_of(vip: SocketAddr) -> String {
    let (status, page) = http(vip, "GET", "/", &[]).expect("the web role answers");
    assert_eq!(status, 200);
    String::from_utf8_lossy(&page).into_owned()
}

fn message_count(page: &str, escaped: &str) -> usize {
    page.matches(&format!("<p class=\"message\">{escaped}</p>"))
        .count()
}

/// The `<li class="entry" ...>...</li>` holding `escaped` as its message.
fn entry_html(page: &str, escaped: &str) -> Option<String> {
    page.split("<li class=\"entry\"")
        .skip(1)
        .map(|rest| rest.split("</li>").next().unwrap_or(rest))
        .find(|e| e.contains(&format!("<p class=\"message\">{escaped}</p>")))
        .map(str::to_owned)
}

/// The value of the first attribute starting with `prefix` (e.g. `src="`).
fn attribute_after(html: &str, prefix: &str) -> Option<String> {
    let start = html.find(prefix)? + prefix.len();
    let end = start + html[start..].find('"')?;
    Some(html[start..end].to_owned())
}

/// POSTs the form as a browser does; (status, Location, body).
fn post_entry(
    vip: SocketAddr,
    name: &str,
    message: &str,
    filename: &str,
    photo: &[u8],
) -> (u16, Option<String>, String) {
    let boundary = "----weftguestbooktest7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (field, value) in [("name", name), ("message", message)] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{filename}\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(photo);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut s = TcpStream::connect_timeout(&vip, Duration::from_secs(5)).expect("connect to VIP");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("read the answer");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .map(str::to_owned);
    (status, location, body.to_owned())
}

/// Waits until the guestbook's queue is empty; then there is one entry, it
/// names its thumbnail, and the container holds the photo and the
/// thumbnail. Returns what storage_view saw.
fn wait_drained(python: &Path, connection: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = storage_view(python, connection);
        let entries = seen["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{seen}");
        assert!(
            entries[0]["ThumbnailUrl"]
                .as_str()
                .is_some_and(|u| u.contains("/guestbook-pics/thumbnails/")),
            "{seen}"
        );
        if seen["queued"] == 0 {
            assert_eq!(seen["blobs"].as_array().unwrap().len(), 2, "{seen}");
            return seen;
        }
        assert!(Instant::now() < deadline, "the queue never drained: {seen}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Puts messages on the guestbook's queue with the Azure SDK.
fn send_messages(python: &Path, connection: &str, messages: &[&str]) {
    let script = r#"
import sys
from azure.storage.queue import QueueClient
queue = QueueClient.from_connection_string(sys.argv[1], "guestthumbs")
for text in sys.argv[2:]:
    queue.send_message(text)
"#;
    let out = Command::new(python)
        .args(["-c", script, connection])
        .args(messages)
        .output()
        .expect("run .venv python");
    assert!(
        out.status.success(),
        "sending to the queue failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The queue's message count, the entries and the blob names, read with
/// the Azure SDKs for Python from .venv.
fn storage_view(python: &Path, connection: &str) -> Value {
    let script = r#"
import json, sys
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient
cs = sys.argv[1]
queue = QueueClient.from_connection_string(cs, "guestthumbs")
table = TableClient.from_connection_string(cs, "guestbookentry")
container = ContainerClient.from_connection_string(cs, "guestbook-pics")
print(json.dumps({
    "queued": queue.get_queue_properties().approximate_message_count,
    "entries": [dict(e) for e in table.list_entities()],
    "blobs": [b.name for b in container.list_blobs()],
}))
"#;
    let out = Command::new(python)
        .args(["-c", script, connection])
        .output()
        .expect("run .venv python");
    assert!(
        out.status.success(),
        "reading the guestbook's storage failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// A width×height RGB PNG (a gradient), built by hand: stored (uncompressed)
/// deflate blocks inside zlib, CRC-32 per chunk.
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            raw.extend_from_slice(&[(x * 255 / width) as u8, (y * 255 / height) as u8, 160]);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &zlib), (b"IEND", &[])] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// ("png" | "jpeg", width, height) from the image's header.
fn image_size(bytes: &[u8]) -> Option<(&'static str, u32, u32)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() >= 24 && &bytes[12..16] == b"IHDR" {
        let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
        let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
        return Some(("png", w, h));
    }
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    // Walk the JPEG segments to the frame header (SOF0..SOF15 but DHT,
    // JPG and DAC).
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let seg = bytes.get(at + 4..at + 2 + len).filter(|s| s.len() >= 5)?;
            let h = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
            let w = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
            return Some(("jpeg", w, h));
        }
        at += 2 + len;
    }
    None
}
