#!/bin/sh
# Does periodic work: counts ticks in its local storage and logs them.
dir="${WORK_DIR:-./work}"
mkdir -p "$dir"
while :; do
  n=$(( $(cat "$dir/ticks" 2>/dev/null || echo 0) + 1 ))
  echo "$n" > "$dir/ticks"
  echo "tick $n"
  sleep "${INTERVAL_SECONDS:-5}"
done
