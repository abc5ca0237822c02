#!/usr/bin/env bash
# Load-balancer benchmark, weft-lb side by side with HAProxy in the same run.
# One HTTP backend (crates/lb/examples/backend.rs); in front of it, on
# loopback, HAProxy in TCP mode (option splice-auto) and a weft-lb VIP
# (crates/lb/examples/vip.rs), both with the same number of threads. The
# same wrk load hits the backend directly, then through each proxy:
# keep-alive, a new connection per request (Connection: close), and bulk
# (keep-alive, 1 MiB responses, 8 connections).
# Prints requests/s, MiB/s, p50, p99, the proxies' CPU time per request,
# and the ratios weft vs haproxy; then each proxy's memory per idle
# keep-alive connection (3000 connections held open, python3).
#
# Usage: bench/lb.sh [SECONDS (10)] [CONNECTIONS (64)] [PROXY_THREADS (1)] [ROUNDS (2)]
# Installs haproxy, wrk and python3 with apt-get if missing. Every run of a round is
# interleaved (direct, haproxy, weft), the best round of each is reported.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-10}"
conns="${2:-64}"
threads="${3:-1}"
rounds="${4:-2}"
backend_port=18080
weft_port=18081
haproxy_port=18082

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  echo "installing ${need[*]} with apt-get..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null \
    || { echo "failed to install ${need[*]}: run as root, or install them yourself" >&2; exit 1; }
fi

for p in $backend_port $weft_port $haproxy_port; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p is already in use: stop what listens there (another bench run?)" >&2
    exit 1
  fi
done

cargo build --release -q -p weft-lb --example backend --example vip
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

# The backend gets the same threads as each proxy.
target/release/examples/backend "127.0.0.1:$backend_port" "$threads" >"$work/backend.log" &
pids+=($!)
target/release/examples/vip "127.0.0.1:$weft_port" "$threads" "127.0.0.1:$backend_port" >"$work/vip.log" &
pids+=($!); weft_pid=$!
cat >"$work/haproxy.cfg" <<CFG
global
  nbthread $threads
  maxconn 4000
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  option splice-auto
frontend vip
  bind 127.0.0.1:$haproxy_port
  default_backend web
backend web
  server backend_0 127.0.0.1:$backend_port
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!); haproxy_pid=$!
for p in $backend_port $weft_port $haproxy_port; do wait_port "$p"; done

# CPU seconds (user + system) a process has used so far.
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# wrk latency fields ("812.00us", "1.20ms", "1.01s") in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000
    printf "%.3f", n }'
}

# wrk Transfer/sec ("1.23GB", "980.5MB", "12.00KB") in MiB/s.
to_mib() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /GB$/) n *= 1024; else if (v ~ /KB$/) n /= 1024; else if (v ~ /[0-9]B$/) n /= 1048576
    printf "%.1f", n }'
}

# run PORT MODE [PID] -> "rps p50 p99 errors cpu_us_per_request mib_per_s"
run() {
  local port=$1 mode=$2 pid=${3:-} header=() path=/ c=$conns out before after
  [[ $mode == close ]] && header=(-H "Connection: close")
  [[ $mode == bulk ]] && { path=/1m; c=$((conns < 8 ? conns : 8)); }
  [[ -n $pid ]] && before=$(cpu_secs "$pid")
  out=$(wrk -t1 -c"$c" -d"${secs}s" --latency "${header[@]}" "http://127.0.0.1:$port$path")
  [[ -n $pid ]] && after=$(cpu_secs "$pid")
  local rps p50 p99 errors total cpu=- mib
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  errors=$(awk '/Socket errors/ { gsub(",", ""); s = $4 + $6 + $8 + $10 } /Non-2xx/ { s += $NF } END { print s + 0 }' <<<"$out")
  total=$(awk '/requests in/ { print $1 }' <<<"$out")
  mib=$(to_mib "$(awk '/^Transfer\/sec:/ { print $2 }' <<<"$out")")
  [[ -n $pid ]] && cpu=$(awk -v a="$after" -v b="$before" -v n="$total" 'BEGIN { printf "%.1f", (a - b) * 1000 * 1000 / n }')
  echo "$rps $p50 $p99 $errors $cpu $mib"
}

echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, load before $(cut -d' ' -f1-3 /proc/loadavg)"
echo "load: wrk -t1 -c$conns (bulk: -c$((conns < 8 ? conns : 8))) -d${secs}s, proxies and backend with $threads thread(s) each, all on loopback, best of $rounds round(s)"
echo "$(haproxy -v | head -1)"

declare -A best
for round in $(seq "$rounds"); do
  for mode in keepalive close bulk; do
    for target in direct haproxy weft; do
      case $target in
        direct) r=$(run $backend_port $mode) ;;
        haproxy) r=$(run $haproxy_port $mode $haproxy_pid) ;;
        weft) r=$(run $weft_port $mode $weft_pid) ;;
      esac
      key="$mode/$target"
      prev=${best[$key]:-"0 0 0 0 - 0"}
      if awk -v a="${r%% *}" -v b="${prev%% *}" 'BEGIN { exit !(a > b) }'; then best[$key]=$r; fi
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

echo "| load | target | requests/s | MiB/s | p50 ms | p99 ms | errors | proxy CPU µs/request |"
echo "|---|---|---|---|---|---|---|---|"
for mode in keepalive close bulk; do
  for target in direct haproxy weft; do
    read -r rps p50 p99 errors cpu mib <<<"${best[$mode/$target]}"
    printf '| %s | %s | %.0f | %s | %s | %s | %s | %s |\n' "$mode" "$target" "$rps" "$mib" "$p50" "$p99" "$errors" "$cpu"
  done
done
echo
echo "| load | weft/haproxy requests/s (>1 = weft faster) | haproxy/weft p50 (>1 = weft lower) | haproxy/weft p99 | haproxy/weft CPU per request |"
echo "|---|---|---|---|---|"
for mode in keepalive close bulk; do
  read -r hr hp50 hp99 _ hcpu <<<"${best[$mode/haproxy]}"
  read -r wr wp50 wp99 _ wcpu <<<"${best[$mode/weft]}"
  awk -v m="$mode" -v hr="$hr" -v wr="$wr" -v h5="$hp50" -v w5="$wp50" -v h9="$hp99" -v w9="$wp99" -v hc="$hcpu" -v wc="$wcpu" \
    'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", m, wr / hr, h5 / w5, h9 / w9, hc / wc }'
done

echo
python3 - "$weft_pid" "$haproxy_pid" "$weft_port" "$haproxy_port" <<'PY'
import socket, sys
def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
weft_pid, haproxy_pid, weft_port, haproxy_port = sys.argv[1:]
n = 3000
print(f"| memory with {n} idle keep-alive connections | RSS growth KiB | bytes/connection |")
print("|---|---|---|")
for name, pid, port in (("haproxy", haproxy_pid, haproxy_port), ("weft", weft_pid, weft_port)):
    before = rss_kib(pid)
    conns = [socket.create_connection(("127.0.0.1", int(port))) for _ in range(n)]
    for c in conns:
        c.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    for c in conns:
        c.recv(4096)
    grown = rss_kib(pid) - before
    print(f"| {name} | {grown} | {grown * 1024 // n} |")
    for c in conns:
        c.close()
PY
