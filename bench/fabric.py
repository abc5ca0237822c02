#!/usr/bin/env python3
"""Fabric benchmark: `weft up` on this host with the hello example.

Measures, in one run:
  * deploy -> every instance Ready, for N instances (Web N-1, Worker 1),
    as `weft deploy` reports it (PUT of the deployment to operation
    Succeeded), several rounds;
  * SIGKILL of a web instance -> its replacement Ready, polled through the
    management API every 2 ms, while wrk sends load through the VIP
    (a new connection per request, then keep-alive) and counts failures;
  * RSS of the `weft up` process with N instances, idle and under load.

Usage: bench/fabric.py [--instances 20] [--rounds 5] [--kills 10]
Needs wrk (apt-get install wrk; bench/lb.sh installs it too).
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
WEFT = os.path.join(ROOT, "target/release/weft")
HELLO = os.path.join(ROOT, "target/release/hello")


def sh(*args, **kw):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kw)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Api:
    def __init__(self, state):
        self.url = open(os.path.join(state, "api.url")).read().strip()
        self.token = open(os.path.join(state, "token")).read().strip()

    def get(self, path):
        req = urllib.request.Request(self.url + path, headers={"authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def instances(self, service="hello"):
        for s in self.get("/v1/services"):
            if s["name"] == service:
                for d in s["deployments"]:
                    return d, [i for r in d["roles"] for i in r["instances"]]
        return None, []


def make_app(root, instances):
    src = os.path.join(ROOT, "examples/hello")
    app = os.path.join(root, "hello")
    os.makedirs(app)
    shutil.copy(os.path.join(src, "ServiceDefinition.csdef"), app)
    cscfg = open(os.path.join(src, "ServiceConfiguration.Local.cscfg")).read()
    cscfg = re.sub(r'(<Role name="Web">\s*<Instances count=")\d+', rf"\g<1>{instances - 1}", cscfg)
    cscfg = re.sub(r'(<Role name="Worker">\s*<Instances count=")\d+', r"\g<1>1", cscfg)
    open(os.path.join(app, "ServiceConfiguration.Local.cscfg"), "w").write(cscfg)
    for role in ("Web", "Worker"):
        os.makedirs(os.path.join(app, role))
        shutil.copy(HELLO, os.path.join(app, role, "hello"))
    return app


def wrk(url, seconds, close, out):
    args = ["wrk", "-t1", "-c8", f"-d{seconds}s", "--latency", url]
    if close:
        args[1:1] = ["-H", "Connection: close"]
    r = subprocess.run(args, text=True, capture_output=True)
    text = r.stdout
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else 0
    out["errors"] = errors
    out["raw"] = text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kills", type=int, default=10)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (or run bench/lb.sh once)")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "weft", "-p", "hello"], cwd=ROOT, check=True)

    tmp = tempfile.mkdtemp(prefix="weft-bench-")
    state = os.path.join(tmp, "state")
    app = make_app(tmp, a.instances)
    up = subprocess.Popen(
        [WEFT, "up", "--state", state, "--api", "127.0.0.1:0", "--no-storage", "--grace", "2", "--drain", "2"],
        cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in up.stdout:
            if "press Ctrl-C" in line:
                break
        threading.Thread(target=lambda: [None for _ in up.stdout], daemon=True).start()
        api = Api(state)
        weft = lambda *args: sh(WEFT, *args, "--state", state)

        deploy_ms = []
        for r in range(a.rounds):
            out = weft("deploy", app).stdout
            deploy_ms.append(int(re.search(r"(\d+) instances ready in (\d+) ms", out).group(2)))
            if r + 1 < a.rounds:
                weft("delete", "hello")
        d, inst = api.instances()
        assert len(inst) == a.instances and all(i["ready"] for i in inst), inst
        vip = next(v["address"] for v in d["vips"] if v["endpoint"] == "HttpIn")
        time.sleep(2)
        rss_idle = rss_kib(up.pid)

        results = {}
        for mode, close in (("new connection per request", True), ("keep-alive", False)):
            kill_ms = []
            load = {}
            seconds = max(4, a.kills // 2 + 3)
            t = threading.Thread(target=wrk, args=(f"http://{vip}/", seconds, close, load))
            t.start()
            peak = 0
            time.sleep(1)
            webs = [i for i in inst if i["id"].startswith("Web_")]
            for k in range(a.kills):
                victim = webs[k % len(webs)]["id"]
                _, now = api.instances()
                pid = next(i["pid"] for i in now if i["id"] == victim)
                t0 = time.perf_counter()
                os.kill(pid, signal.SIGKILL)
                while True:
                    _, now = api.instances()
                    i = next(i for i in now if i["id"] == victim)
                    if i["ready"] and i["pid"] not in (None, pid):
                        break
                    time.sleep(0.002)
                kill_ms.append((time.perf_counter() - t0) * 1000)
                peak = max(peak, rss_kib(up.pid))
                time.sleep(0.2)
            t.join()
            results[mode] = (kill_ms, load, peak)

        print()
        print(f"weft fabric, {a.instances} instances of examples/hello (Web {a.instances - 1}, Worker 1), release build")
        print()
        print("| measure | median | min | max | goal |")
        print("|---|---:|---:|---:|---|")
        print(f"| deploy -> all {a.instances} Ready, ms ({a.rounds} rounds) | {statistics.median(deploy_ms):.0f} | {min(deploy_ms)} | {max(deploy_ms)} | < 1000 |")
        for mode, (kill_ms, load, _) in results.items():
            kill_ms.sort()
            print(f"| SIGKILL -> replacement Ready, ms ({len(kill_ms)} kills, load {mode}) | {statistics.median(kill_ms):.0f} | {kill_ms[0]:.0f} | {kill_ms[-1]:.0f} | < 300 |")
        print()
        print("| load through the VIP during the kills | requests | failed |")
        print("|---|---:|---:|")
        for mode, (_, load, _) in results.items():
            print(f"| wrk -t1 -c8, {mode} | {load.get('requests', 0)} | {load.get('errors', 0)} |")
        print()
        for mode, (_, load, _) in results.items():
            errs = re.findall(r"Socket errors:[^\n]*|Non-2xx[^\n]*", load.get("raw", ""))
            if errs:
                print(f"wrk, {mode}: {'; '.join(errs)}")
        peak = max(p for _, _, p in results.values())
        print("| RSS of weft up | MiB | goal |")
        print("|---|---:|---|")
        print(f"| idle, {a.instances} instances | {rss_idle / 1024:.1f} | < 50 |")
        print(f"| under load (peak sampled) | {peak / 1024:.1f} | < 50 |")
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
