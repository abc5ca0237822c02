#!/usr/bin/env python3
"""Lifecycle benchmark: service operations under continuous load, 0 failed
requests expected.

Runs `target/release/weft up` (state in a temporary directory, its own API
and VIP ports) with examples/hello scaled to Web=10 over 5 upgrade domains,
and sends load through the Web VIP for the whole run in two variants at
once: keep-alive clients and a new connection per request (--threads
threads each, plain sockets). Then, each measured separately:

  1. auto upgrade to a changed package (a different file in the Web role, so
     its digest changes), minimum healthy time --min-healthy;
  2. VIP swap: a staging deployment of the same app, then `weft swap`;
  3. scale-in 10 -> 4 (`weft config set`);
  4. a configuration change that recycles (Generation 1 -> 2: hello web
     cancels Changing, so every Web instance is recycled, walked by UD).

For each phase: wall time, and per load variant the requests sent and
failed (any connect error, reset, non-200, or short response). For the
upgrade also the per-UD walk time from `weft events` and the overhead per
UD beyond (instance restart + minimum healthy time).

A keep-alive client does what HTTP clients do (urllib3, Go, curl): before
reusing an idle connection it checks whether the server closed it, and
reconnects if so; a request once sent is never retried, so any connection
loss after that counts as failed.

Usage: bench/lifecycle.py [--threads 3] [--min-healthy 2s] [--grace 5] [--drain 5]
Stdlib only.
"""

import argparse
import collections
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
WEFT = os.path.join(ROOT, "target/release/weft")
HELLO = os.path.join(ROOT, "target/release/hello")
WEB = 10
SCALED = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def make_app(root, name, port, web, generation="1", version=None):
    """A copy of examples/hello: the VIP on `port`, Web=`web`, Worker=1."""
    src = os.path.join(ROOT, "examples/hello")
    app = os.path.join(root, name)
    os.makedirs(app)
    csdef = open(os.path.join(src, "ServiceDefinition.csdef")).read()
    csdef, n = re.subn(r'(<InputEndpoint name="HttpIn" [^>]*port=")\d+', rf"\g<1>{port}", csdef)
    assert n == 1, "the HttpIn input endpoint's port is not where it was"
    open(os.path.join(app, "ServiceDefinition.csdef"), "w").write(csdef)
    write_cscfg(os.path.join(app, "ServiceConfiguration.Local.cscfg"), web, generation)
    for role in ("Web", "Worker"):
        os.makedirs(os.path.join(app, role))
        shutil.copy(HELLO, os.path.join(app, role, "hello"))
    if version is not None:
        # Changes the Web role's digest, so an upgrade recycles it.
        open(os.path.join(app, "Web", "VERSION"), "w").write(f"{version}\n")
    return app


def write_cscfg(path, web, generation):
    src = os.path.join(ROOT, "examples/hello/ServiceConfiguration.Local.cscfg")
    cscfg = open(src).read()
    cscfg, n1 = re.subn(r'(<Role name="Web">\s*<Instances count=")\d+', rf"\g<1>{web}", cscfg)
    cscfg, n2 = re.subn(r'(<Role name="Worker">\s*<Instances count=")\d+', r"\g<1>1", cscfg)
    cscfg, n3 = re.subn(r'(<Setting name="Generation" value=")[^"]*', rf"\g<1>{generation}", cscfg)
    assert (n1, n2, n3) == (1, 1, 1), "examples/hello's cscfg is not shaped as expected"
    open(path, "w").write(cscfg)
    return path


class Counters:
    """Requests sent and failed per (phase, variant), with failure reasons."""

    def __init__(self):
        self.lock = threading.Lock()
        self.phase = "start"
        self.sent = collections.Counter()
        self.failed = collections.Counter()
        self.reasons = collections.defaultdict(collections.Counter)

    def record(self, phase, variant, error):
        with self.lock:
            self.sent[(phase, variant)] += 1
            if error is not None:
                self.failed[(phase, variant)] += 1
                self.reasons[(phase, variant)][error] += 1


def read_response(sock, buf):
    """Reads one HTTP/1.1 response; returns (status, body, close, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response headers" if not buf else "short response headers")
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = headers.get("content-length")
    if length is None:
        raise ConnectionError("response without content-length")
    length = int(length)
    while len(buf) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("short response body")
        buf += chunk
    body, rest = buf[:length], buf[length:]
    close = headers.get("connection", "").lower() == "close"
    return status, body, close, rest


def check(status, body):
    if status != 200:
        return f"status {status}"
    if not body.startswith(b"hello from Web_IN_") or not body.endswith(b"\n"):
        return "unexpected body"
    return None


def keep_alive_client(addr, counters, stop, pause):
    sock = None
    buf = b""
    while not stop.is_set():
        phase = counters.phase
        error = None
        try:
            if sock is not None:
                # What HTTP clients do before reusing an idle connection: a
                # readable socket means the server closed it (or sent
                # something unasked): reconnect instead.
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    sock.close()
                    sock = None
                    buf = b""
            if sock is None:
                sock = socket.create_connection(addr, timeout=10)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: hello\r\n\r\n")
            status, body, close, buf = read_response(sock, buf)
            error = check(status, body)
            if close:
                sock.close()
                sock = None
                buf = b""
        except (OSError, ConnectionError, ValueError, IndexError) as e:
            error = type(e).__name__ + (f": {e}" if isinstance(e, ConnectionError) and str(e) else "")
            if sock is not None:
                sock.close()
            sock = None
            buf = b""
        counters.record(phase, "keep-alive", error)
        if pause:
            time.sleep(pause)
    if sock is not None:
        sock.close()


def new_connection_client(addr, counters, stop, pause):
    while not stop.is_set():
        phase = counters.phase
        error = None
        try:
            with socket.create_connection(addr, timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: hello\r\nConnection: close\r\n\r\n")
                status, body, _, _ = read_response(sock, b"")
                error = check(status, body)
        except (OSError, ConnectionError, ValueError, IndexError) as e:
            error = type(e).__name__ + (f": {e}" if isinstance(e, ConnectionError) and str(e) else "")
        counters.record(phase, "new connection", error)
        if pause:
            time.sleep(pause)


def parse_duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 2s or 500ms")
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value


class Fabric:
    def __init__(self, state):
        self.state = state

    def run(self, *args, check=True):
        r = subprocess.run([WEFT, *args, "--state", self.state], text=True, capture_output=True)
        if check and r.returncode != 0:
            raise SystemExit(f"weft {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def events(self, slot="production"):
        out = self.run("events", "hello", "--slot", slot, "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def deployment(self, slot="production"):
        services = json.loads(self.run("status", "--json").stdout)
        for s in services:
            if s["name"] == "hello":
                for d in s["deployments"]:
                    if d.get("slot", "production") == slot:
                        return d
        return None


def web_pids(fabric):
    """Web instance id -> pid of the production deployment."""
    d = fabric.deployment()
    return {i["id"]: i.get("pid") for r in d["roles"] if r["name"] == "Web" for i in r["instances"]}


def upgrade_domains(events, since_seq, min_healthy):
    """Per-UD rows from the events of one upgrade."""
    evs = [e for e in events if e["seq"] > since_seq]
    rows = []
    walking = {e["upgradeDomain"]: e["timeMs"] for e in evs if e["kind"] == "domainWalking"}
    drained = {e["upgradeDomain"]: e["timeMs"] for e in evs if e["kind"] == "domainDrained"}
    healthy = {e["upgradeDomain"]: e["timeMs"] for e in evs if e["kind"] == "domainHealthy"}
    for ud in sorted(walking):
        if not any(e["kind"] == "instanceStatus" and e.get("upgradeDomain") == ud for e in evs):
            continue  # nothing of this UD changed (no instance left in it)
        w = walking[ud]
        d = drained.get(ud)
        h = healthy.get(ud)
        # Without a drain step (a change applied in place) the restart is
        # counted from the walk's start.
        since = d if d is not None else w
        # The last instance of the UD to become Ready after that.
        ready = [e["timeMs"] for e in evs
                 if e["kind"] == "instanceStatus" and e.get("ready")
                 and since <= e["timeMs"] <= (h or e["timeMs"]) and e.get("upgradeDomain") == ud]
        r = max(ready) if ready else None
        rows.append({
            "ud": ud,
            "walk": (h - w) / 1000 if h else None,
            "drain": (d - w) / 1000 if d else None,
            "restart": (r - since) / 1000 if r else None,
            "gate": (h - r) / 1000 if h and r else None,
            "overhead": ((h - w) / 1000 - ((r - since) / 1000 if r else 0) - min_healthy) if h else None,
        })
    return rows


def print_domains(rows):
    print("| UD | walk s (walking → healthy) | drain s | restart s (drained → last Ready) | gate s (last Ready → healthy) | overhead s (walk − restart − min healthy) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['ud']} | {fmt(r['walk'])} | {fmt(r['drain'])} | {fmt(r['restart'])} | {fmt(r['gate'])} | {fmt(r['overhead'])} |")
    if rows and all(r["overhead"] is not None for r in rows):
        mean = sum(r["overhead"] for r in rows) / len(rows)
        print()
        print(f"Mean overhead per UD beyond (instance restart + minimum healthy time): {mean:.2f} s")


def fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=3, help="client threads per load variant")
    ap.add_argument("--min-healthy", type=parse_duration, default=parse_duration("2s"))
    ap.add_argument("--grace", type=int, default=5, help="weft up --grace seconds")
    ap.add_argument("--drain", type=int, default=5, help="weft up --drain seconds")
    ap.add_argument("--pause", type=float, default=0.0, help="seconds each client waits between requests")
    ap.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    a = ap.parse_args()
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "weft", "-p", "hello"], cwd=ROOT, check=True)
    for binary in (WEFT, HELLO):
        if not os.access(binary, os.X_OK):
            sys.exit(f"{binary} not found: cargo build --release -p weft -p hello")
    min_healthy = f"{int(a.min_healthy * 1000)}ms"

    tmp = tempfile.mkdtemp(prefix="weft-lifecycle-")
    state = os.path.join(tmp, "state")
    port = free_port()
    v1 = make_app(tmp, "v1", port, WEB)
    v2 = make_app(tmp, "v2", port, WEB, version=2)
    scaled = write_cscfg(os.path.join(tmp, "scaled.cscfg"), SCALED, "1")
    gen2 = write_cscfg(os.path.join(tmp, "generation2.cscfg"), SCALED, "2")
    api = f"127.0.0.1:{free_port()}"
    up = subprocess.Popen(
        [WEFT, "up", "--state", state, "--api", api, "--no-storage",
         "--grace", str(a.grace), "--drain", str(a.drain)],
        cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stop = threading.Event()
    clients = []
    try:
        for line in up.stdout:
            if "press Ctrl-C" in line:
                break
        threading.Thread(target=lambda: [None for _ in up.stdout], daemon=True).start()
        fabric = Fabric(state)
        fabric.run("deploy", v1)
        d = fabric.deployment()
        vip = next(v["address"] for v in d["vips"] if v["endpoint"] == "HttpIn")
        host, _, vport = vip.rpartition(":")
        addr = (host, int(vport))

        counters = Counters()
        for _ in range(a.threads):
            for target in (keep_alive_client, new_connection_client):
                t = threading.Thread(target=target, args=(addr, counters, stop, a.pause), daemon=True)
                t.start()
                clients.append(t)
        phases = []  # (name, wall seconds or None, note, load before, load after)

        def phase(name, action):
            time.sleep(1)
            counters.phase = name
            before = load_average()
            t0 = time.perf_counter()
            note = action()
            wall = time.perf_counter() - t0
            after = load_average()
            # A second of load after the operation: what it left behind counts.
            time.sleep(1)
            counters.phase = f"after {name}"
            phases.append((name, wall, note, before, after))

        time.sleep(2)
        counters.phase = "steady"
        time.sleep(2)

        last_seq = max((e["seq"] for e in fabric.events()), default=0)
        phase("auto upgrade (new package)", lambda: fabric.run(
            "upgrade", v2, "--mode", "auto", "--min-healthy-time", min_healthy) and None)
        ud_rows = upgrade_domains(fabric.events(), last_seq, a.min_healthy)

        swap_available = fabric.run("swap", "--help", check=False).returncode == 0
        if swap_available:
            counters.phase = "staging deploy"
            fabric.run("deploy", v1, "--slot", "staging")
            before = fabric.deployment("production")["id"]
            phase("VIP swap", lambda: fabric.run("swap", "hello") and None)
            after = fabric.deployment("production")["id"]
            if before == after:
                raise SystemExit(f"weft swap left deployment {before} in production")
        else:
            phases.append(("VIP swap", None, "not available: weft has no swap command", "", ""))

        phase(f"scale-in {WEB} -> {SCALED}", lambda: fabric.run(
            "config", "set", scaled, "--min-healthy-time", min_healthy) and None)
        last_seq = max((e["seq"] for e in fabric.events()), default=0)
        pids_before = web_pids(fabric)
        phase("config change that recycles (Generation 1 -> 2)", lambda: fabric.run(
            "config", "set", gen2, "--min-healthy-time", min_healthy) and None)
        recycle_rows = upgrade_domains(fabric.events(), last_seq, a.min_healthy)
        pids_after = web_pids(fabric)
        recycled = sum(1 for i, pid in pids_after.items() if pid is not None and pids_before.get(i) not in (None, pid))

        stop.set()
        for t in clients:
            t.join(timeout=15)

        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print()
        print(f"weft lifecycle under load: examples/hello, Web={WEB} over 5 upgrade domains, Worker=1; "
              f"release build; {os.cpu_count()} CPUs ({cpu}); "
              f"weft up --grace {a.grace} --drain {a.drain}; minimum healthy time {min_healthy}; "
              f"{a.threads} client threads per variant")
        print()
        print("| phase | wall s | load avg before → after | variant | requests | failed |")
        print("|---|---:|---|---|---:|---:|")
        for name, wall, note, before, after in phases:
            if wall is None:
                print(f"| {name} | – | | {note} | | |")
                continue
            for variant in ("keep-alive", "new connection"):
                sent = counters.sent[(name, variant)] + counters.sent[(f"after {name}", variant)]
                failed = counters.failed[(name, variant)] + counters.failed[(f"after {name}", variant)]
                print(f"| {name} | {wall:.2f} | {before} → {after} | {variant} | {sent} | {failed} |")
        print()
        print("Requests outside the phases (steady state, staging deploy, pauses):")
        for (ph, variant), sent in sorted(counters.sent.items()):
            if not any(ph in (n, f"after {n}") for n, *_ in phases):
                print(f"  {ph}, {variant}: {sent} sent, {counters.failed[(ph, variant)]} failed")
        reasons = {k: v for k, v in counters.reasons.items() if v}
        if reasons:
            print()
            print("Failures:")
            for (ph, variant), why in sorted(reasons.items()):
                print(f"  {ph}, {variant}: " + "; ".join(f"{n}× {r}" for r, n in why.most_common()))
        print()
        print(f"Auto upgrade, per upgrade domain (from `weft events`; minimum healthy time {a.min_healthy:.2f} s):")
        print()
        print_domains(ud_rows)
        print()
        print("Configuration change that recycles (Generation 1 -> 2), per upgrade domain: the instances stay in")
        print("their VIPs until they cancel Changing and the agent recycles them (no drain step; restart is")
        print("counted from the walk's start):")
        print()
        print_domains(recycle_rows)
        print()
        print(f"Web instances at the end: {len(pids_after)} (expected {SCALED}); "
              f"{recycled} of them got a new process from the Generation change")
        total_failed = sum(counters.failed.values())
        print(f"Total: {sum(counters.sent.values())} requests, {total_failed} failed")
        return 0 if total_failed == 0 else 1
    finally:
        stop.set()
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
