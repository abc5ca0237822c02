#!/usr/bin/env bash
# Validation time per fixture file (release build, many iterations, mean per
# file), with a bare quick-xml scan of the same bytes side by side.
# Usage: bench/validate.sh [FIXTURE_DIR]   (ITERS=2000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo run --quiet --release -p weft-model --example validate_bench -- "$@"
