#!/usr/bin/env bash
# VHD benchmarks, weft side by side with its peer in the same run:
#  (a) convert a 4 GiB dynamic image, half allocated, to raw:
#      `weft vhd convert` vs `qemu-img convert -f vpc -O raw`
#  (b) 4 KiB sequential and random reads through a 3-deep chain vs the same
#      bytes in a flat raw file (pread), warm page cache.
# Usage: bench/vhd.sh [SIZE_MIB (default 4096)] [WORKDIR (default target/bench-vhd)]
# Needs qemu-img (scripts/install-deps). Uses about 3x SIZE/2 of disk space.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib="${1:-4096}"
work="${2:-target/bench-vhd}"
command -v qemu-img >/dev/null || { echo "qemu-img not found: run scripts/install-deps" >&2; exit 1; }

cargo build --release -q -p weft --bin weft
cargo build --release -q -p weft-vhd --example vhd_bench
weft=target/release/weft
helper=target/release/examples/vhd_bench

rm -rf "$work" && mkdir -p "$work"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "building a ${size_mib} MiB dynamic image, every other 2 MiB block written..."
"$helper" make-half "$work/half.vhd" "$size_mib"

# Best of 3 runs each, alternating, output removed between runs. The input is
# in the page cache for both tools (warm); each output is fsynced by weft,
# and qemu-img is timed including a sync of its output for parity.
best() { sort -n | head -1; }
weft_times=(); qemu_times=()
for i in 1 2 3; do
  rm -f "$work/weft.raw" "$work/qemu.raw"
  s=$(date +%s.%N); "$weft" vhd convert "$work/half.vhd" "$work/weft.raw" >/dev/null; e=$(date +%s.%N)
  weft_times+=("$(echo "$e - $s" | bc -l)")
  s=$(date +%s.%N); qemu-img convert -f vpc -O raw "$work/half.vhd" "$work/qemu.raw"; sync "$work/qemu.raw"; e=$(date +%s.%N)
  qemu_times+=("$(echo "$e - $s" | bc -l)")
done
cmp "$work/weft.raw" "$work/qemu.raw" || { echo "outputs differ" >&2; exit 1; }
w=$(printf '%s\n' "${weft_times[@]}" | best)
q=$(printf '%s\n' "${qemu_times[@]}" | best)
echo
echo "| convert ${size_mib} MiB dynamic (half allocated) to raw | seconds (best of 3) | MiB/s of disk |"
echo "|---|---|---|"
printf '| weft vhd convert | %.2f | %.0f |\n' "$w" "$(echo "$size_mib / $w" | bc -l)"
printf '| qemu-img convert -f vpc -O raw | %.2f | %.0f |\n' "$q" "$(echo "$size_mib / $q" | bc -l)"
printf '| ratio (qemu-img time / weft time; >1 = weft faster) | %.2f | |\n' "$(echo "$q / $w" | bc -l)"
rm -f "$work/weft.raw" "$work/qemu.raw" "$work/half.vhd"
echo
"$helper" chain-read "$work" 256
rm -rf "$work"
