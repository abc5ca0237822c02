#!/usr/bin/env bash
# Storage capacity benchmark: the Rust load generator
# (crates/storage/examples/load.rs) against `weft storage` (release build)
# and Azurite 3.37.0 (npm, disk mode) in the same run, same phases, same
# connections. SharedKey-signed requests over keep-alive connections,
# closed loop at saturation: 1 KiB blob put, blob get, queue put, queue
# get+delete, table insert, table point query. Prints ops/s, p50 and p99 of
# each server side by side with the ratios (weft / Azurite), each server's
# peak RSS, and the load average before each run.
#
# Usage: bench/storage_load.sh [SECONDS_PER_PHASE (10)] [CONNECTIONS (64)] [CLIENT_THREADS (1)]
# Env: AZURITE_DIR (default /tmp/azurite; azurite@3.37.0 is installed there
# with npm when missing), WEFT_SERVE_EXAMPLE=1 runs the crate's `serve`
# example instead of the weft binary (same server, without building the
# whole binary).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-10}"
conns="${2:-64}"
threads="${3:-1}"
azurite_dir="${AZURITE_DIR:-/tmp/azurite}"
azurite="$azurite_dir/node_modules/.bin/azurite"

if [[ ! -x "$azurite" ]]; then
  command -v npm >/dev/null || { echo "npm not found: install nodejs and npm (apt-get install npm)" >&2; exit 1; }
  echo "installing azurite@3.37.0 into $azurite_dir..."
  npm install --silent --prefix "$azurite_dir" azurite@3.37.0 >/dev/null
fi

if [[ "${WEFT_SERVE_EXAMPLE:-}" == 1 ]]; then
  cargo build --release -q -p weft-storage --example load --example serve
else
  cargo build --release -q -p weft-storage --example load
  cargo build --release -q -p weft --bin weft
fi
load=target/release/examples/load

work="$(mktemp -d)"
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

peak_rss_mib() {
  awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

# run NAME: starts that server on fresh ports and data, loads it, stops it.
run() {
  local name="$1" b q t data
  b=$(free_port); q=$(free_port); t=$(free_port)
  data="$work/$name"
  mkdir -p "$data"
  case "$name" in
    weft)
      if [[ "${WEFT_SERVE_EXAMPLE:-}" == 1 ]]; then
        target/release/examples/serve "$data" "$b" "$q" "$t" >"$work/$name.log" 2>&1 &
      else
        target/release/weft storage --data "$data" --blob-port "$b" --queue-port "$q" \
          --table-port "$t" >"$work/$name.log" 2>&1 &
      fi
      ;;
    azurite)
      "$azurite" --silent --location "$data" --blobPort "$b" --queuePort "$q" --tablePort "$t" \
        --skipApiVersionCheck >"$work/$name.log" 2>&1 &
      ;;
  esac
  pid=$!
  wait_port "$b"; wait_port "$q"; wait_port "$t"
  echo "$name: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "$load" run --label "$name" --connections "$conns" --duration "$secs" --threads "$threads" \
    --blob "http://127.0.0.1:$b" --queue "http://127.0.0.1:$q" --table "http://127.0.0.1:$t" \
    --json "$work/$name.json" >/dev/null
  echo "$name: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  peak_rss_mib "$pid" >"$work/$name.rss"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
}

run weft
run azurite
echo
echo "$(nproc) cores; ${secs}s per phase, $conns connections, $threads client thread(s); weft fsyncs every acknowledged write, Azurite does not"
echo
"$load" compare "$work/weft.json" "$work/azurite.json" \
  --rss "$(cat "$work/weft.rss"),$(cat "$work/azurite.rss")"
