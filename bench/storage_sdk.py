#!/usr/bin/env python3
"""Storage benchmark through the official Python SDKs: weft storage and
Azurite side by side in the same run, with ratios.

Workload (8 client threads): 2000 x 1 KiB blob put, then get; 20 x 16 MiB
blob put, then get; 5000 queue puts, then 5000 gets+deletes; 5000 table
inserts, 5000 more in batches of 100 (rated in entities), then 50 filtered
queries over all 10000 entities (a non-key property range: a full scan
that returns 100 entities each), then 500 queries within one partition
(PartitionKey eq and a property range, 50 entities each). For each
server it reports operations per second, the server process's CPU time per
operation (the Python client caps the rates, so server CPU is the fairer
measure) and its peak resident memory.

Usage (from the repo root, after scripts/install-deps):
  cargo build --release -p weft
  npm install --prefix /tmp/azurite azurite@3.37.0
  .venv/bin/python bench/storage_sdk.py --azurite /tmp/azurite/node_modules/.bin/azurite
Options: --weft PATH (default target/release/weft), --scale F (multiply the
operation counts, e.g. 0.1 for a quick run), --only table (run only the
table phases).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
THREADS = 8
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server did not listen on {port} within {deadline}s")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    def __init__(self, name, argv_fn):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
        self.blob, self.queue, self.table = free_port(), free_port(), free_port()
        self.proc = subprocess.Popen(argv_fn(self), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.blob)
        wait_port(self.queue)
        wait_port(self.table)

    def conn(self):
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob}/{ACCOUNT};QueueEndpoint=http://127.0.0.1:{self.queue}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{self.table}/{ACCOUNT};"
        )

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_phase(server, fn, items):
    cpu0 = cpu_seconds(server.proc.pid)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as ex:
        list(ex.map(fn, items))
    wall = time.perf_counter() - t0
    return wall, cpu_seconds(server.proc.pid) - cpu0


def bench_blob_queue(server, scale, results):
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    n_small = max(1, int(2000 * scale))
    n_large = max(1, int(20 * scale))
    n_msgs = max(1, int(5000 * scale))
    blobs = BlobServiceClient.from_connection_string(server.conn())
    c = blobs.create_container("bench")
    small = os.urandom(1024)
    large = os.urandom(16 * 1024 * 1024)
    results["blob put 1 KiB"] = (n_small, *run_phase(server, lambda i: c.upload_blob(f"s{i}", small), range(n_small)))
    results["blob get 1 KiB"] = (n_small, *run_phase(server, lambda i: c.download_blob(f"s{i}").readall(), range(n_small)))
    results["blob put 16 MiB"] = (n_large, *run_phase(server, lambda i: c.upload_blob(f"l{i}", large), range(n_large)))
    results["blob get 16 MiB"] = (n_large, *run_phase(server, lambda i: c.download_blob(f"l{i}").readall(), range(n_large)))
    queues = QueueServiceClient.from_connection_string(server.conn())
    q = queues.create_queue("bench")
    results["queue put"] = (n_msgs, *run_phase(server, lambda i: q.send_message(f"message {i}"), range(n_msgs)))

    def get_delete(_):
        for m in q.receive_messages(max_messages=1, visibility_timeout=60):
            q.delete_message(m)
            return

    results["queue get+delete"] = (n_msgs, *run_phase(server, get_delete, range(n_msgs)))


def bench(server, scale, only=None):
    results = {}
    if only != "table":
        bench_blob_queue(server, scale, results)
    from azure.data.tables import TableServiceClient

    n_rows = max(100, int(5000 * scale)) // 100 * 100
    n_queries = max(1, int(50 * scale))
    tables = TableServiceClient.from_connection_string(server.conn())
    t = tables.create_table("bench")
    results["table insert"] = (
        n_rows,
        *run_phase(server, lambda i: t.create_entity({"PartitionKey": f"p{i % 16}", "RowKey": f"{i:06}", "V": i, "Name": f"entity {i}"}), range(n_rows)),
    )

    def batch(j):
        t.submit_transaction([
            ("create", {"PartitionKey": f"b{j}", "RowKey": f"{k:03}", "V": n_rows + j * 100 + k, "Name": "batched"})
            for k in range(100)
        ])

    results["table batch insert"] = (n_rows, *run_phase(server, batch, range(n_rows // 100)))
    total = 2 * n_rows

    def query(q):
        lo = (q * 197) % (total - 100)
        got = list(t.query_entities(f"V ge {lo} and V lt {lo + 100}"))
        assert len(got) == 100, (lo, len(got))

    results["table filtered query"] = (n_queries, *run_phase(server, query, range(n_queries)))

    def partition_query(q):
        j = q % (n_rows // 100)
        got = list(t.query_entities(f"PartitionKey eq 'b{j}' and V ge {n_rows + j * 100 + 50}"))
        assert len(got) == 50, (j, len(got))

    n_pq = max(1, int(500 * scale))
    results["table partition query"] = (n_pq, *run_phase(server, partition_query, range(n_pq)))
    return results, peak_rss_mib(server.proc.pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", default="target/release/weft")
    ap.add_argument("--azurite", default=None, help="path to the azurite executable (npm azurite@3.37.0)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--only", choices=["table"], default=None, help="run only these phases")
    args = ap.parse_args()
    servers = [
        (
            "weft",
            lambda s: [
                args.weft, "storage", "--data", s.dir, "--blob-port", str(s.blob), "--queue-port", str(s.queue),
                "--table-port", str(s.table),
            ],
        )
    ]
    if args.azurite:
        servers.append(
            (
                "azurite",
                lambda s: [
                    args.azurite, "--silent", "--location", s.dir, "--blobPort", str(s.blob),
                    "--queuePort", str(s.queue), "--tablePort", str(s.table), "--skipApiVersionCheck",
                ],
            )
        )
    all_results = {}
    for name, argv in servers:
        s = Server(name, argv)
        try:
            all_results[name] = bench(s, args.scale, args.only)
        finally:
            s.stop()
    names = list(all_results)
    phases = list(all_results[names[0]][0])
    mb = {"blob put 16 MiB", "blob get 16 MiB"}
    head = f"| phase | {' | '.join(f'{n} rate | {n} CPU ms/op' for n in names)} |"
    if len(names) == 2:
        head += " rate ratio | CPU ratio |"
    print(head)
    print("|" + "---|" * (1 + 2 * len(names) + (2 if len(names) == 2 else 0)))
    for p in phases:
        row = [p]
        rates, cpus = [], []
        for n in names:
            count, wall, cpu = all_results[n][0][p]
            rate = count * (16 if p in mb else 1) / wall
            rates.append(rate)
            cpus.append(cpu * 1000 / count)
            unit = "MiB/s" if p in mb else ("entities/s" if p == "table batch insert" else "ops/s")
            row += [f"{rate:,.0f} {unit}", f"{cpu * 1000 / count:.2f}"]
        if len(names) == 2:
            row += [f"{rates[0] / rates[1]:.2f}x", f"{cpus[1] / max(cpus[0], 1e-9):.1f}x less"]
        print("| " + " | ".join(row) + " |")
    print()
    print("| server | peak RSS MiB |\n|---|---|")
    for n in names:
        print(f"| {n} | {all_results[n][1]:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
