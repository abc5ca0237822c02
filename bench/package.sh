#!/usr/bin/env bash
# Packaging benchmark: `weft package` vs `zip -r -q` (deflate -6, one thread)
# vs `tar --zstd` on the same generated ~500 MB role directory, then unpack +
# verify (`weft package unpack`) vs `unzip -q` vs `tar --zstd -x`, all in the
# same run. Prints a Markdown table with seconds, sizes and ratios vs zip.
#
# Usage: bench/package.sh [--generate-only] [WORKDIR]   (default /tmp/weft-bench-package)
# The tree is generated deterministically (fixed seeds) and reused between
# runs; delete WORKDIR to regenerate. Needs python3, zip, unzip, zstd.
set -euo pipefail
cd "$(dirname "$0")/.."

generate_only=false
if [ "${1:-}" = "--generate-only" ]; then generate_only=true; shift; fi
work="${1:-/tmp/weft-bench-package}"
for tool in python3 zip unzip zstd tar; do
  command -v "$tool" >/dev/null || { echo "$tool not found: run scripts/install-deps" >&2; exit 1; }
done


tree="$work/tree"
stamp="$work/tree.v1"
if [ ! -e "$stamp" ]; then
  rm -rf "$work"
  mkdir -p "$tree/web"
  echo "generating the role directory in $tree ..." >&2
  python3 - "$tree/web" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(20240601)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(2, 10)))
         for _ in range(5000)]

def text(n):
    # Text-like data: random words, lines, some numbers (compresses ~3-4x).
    out, size = [], 0
    while size < n:
        line = ' '.join(rng.choices(words, k=rng.randint(4, 14)))
        if rng.random() < 0.3:
            line += ' %d' % rng.randint(0, 10**9)
        out.append(line)
        size += len(line) + 1
    return ('\n'.join(out) + '\n').encode()[:n]

total = 0
# 1. Many small text-like files (sources, configs, templates): ~100 MB.
block = text(8 << 20)
for d in range(200):
    sub = os.path.join(root, 'site', 'module%03d' % d)
    os.makedirs(sub)
    for f in range(100):
        n = rng.randint(200, 9800)
        off = rng.randint(0, len(block) - n)
        with open(os.path.join(sub, 'file%03d.%s' % (f, rng.choice(['js', 'css', 'html', 'json', 'txt']))), 'wb') as fh:
            fh.write(block[off:off + n])
        total += n
# Some executables.
os.makedirs(os.path.join(root, 'bin'))
for i in range(20):
    p = os.path.join(root, 'bin', 'tool%02d' % i)
    with open(p, 'wb') as fh:
        fh.write(b'#!/bin/sh\n' + text(rng.randint(1000, 50000)))
    os.chmod(p, 0o755)
# 2. Medium compressible files: 100 x 500 KB = ~50 MB.
os.makedirs(os.path.join(root, 'data'))
for i in range(100):
    with open(os.path.join(root, 'data', 'table%03d.csv' % i), 'wb') as fh:
        fh.write(text(500 << 10))
# 3. Large compressible files (logs, dumps): 3 x 50 MB.
os.makedirs(os.path.join(root, 'logs'))
for i in range(3):
    with open(os.path.join(root, 'logs', 'app%d.log' % i), 'wb') as fh:
        fh.write(text(50 << 20))
# 4. Incompressible: media / already-compressed archives: 4 x 50 MB + 200 x 100 KB.
os.makedirs(os.path.join(root, 'media'))
for i in range(4):
    with open(os.path.join(root, 'media', 'video%d.mp4' % i), 'wb') as fh:
        fh.write(rng.randbytes(50 << 20))
for i in range(200):
    with open(os.path.join(root, 'media', 'img%03d.jpg' % i), 'wb') as fh:
        fh.write(rng.randbytes(100 << 10))
PY
  touch "$stamp"
fi
$generate_only && exit 0
cargo build --release -q -p weft
weft="$PWD/target/release/weft"
echo '<ServiceDefinition name="bench"/>' > "$work/ServiceDefinition.csdef"
tree_bytes=$(du -sb "$tree/web" | cut -f1)
tree_files=$(find "$tree/web" -type f | wc -l)

# Warm the page cache so every tool reads from memory alike.
find "$tree/web" -type f -print0 | xargs -0 cat > /dev/null

now() { date +%s.%N; }
# Peak RSS (KB) of a command, via GNU time when present.
rss() { local f="$1"; shift; if [ -x /usr/bin/time ]; then /usr/bin/time -f %M -o "$f" "$@"; else echo 0 > "$f"; "$@"; fi; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
declare -A t s

out="$work/out"
rm -rf "$out"; mkdir -p "$out"

a=$(now); rss "$work/rss.weft" "$weft" package "$work/ServiceDefinition.csdef" --role "Web=$tree/web" -o "$out/app.cspkg" >/dev/null; b=$(now)
t[weft]=$(elapsed "$a" "$b"); s[weft]=$(stat -c %s "$out/app.cspkg")

a=$(now); (cd "$tree" && rss "$work/rss.zip" zip -r -q "$out/app.zip" web); b=$(now)
t[zip]=$(elapsed "$a" "$b"); s[zip]=$(stat -c %s "$out/app.zip")

a=$(now); rss "$work/rss.tar" tar --zstd -cf "$out/app.tar.zst" -C "$tree" web; b=$(now)
t[tar]=$(elapsed "$a" "$b"); s[tar]=$(stat -c %s "$out/app.tar.zst")

sync
a=$(now); rss "$work/rss.weft_x" "$weft" package unpack "$out/app.cspkg" --role Web -o "$out/x-weft" >/dev/null; b=$(now)
t[weft_x]=$(elapsed "$a" "$b")
a=$(now); rss "$work/rss.zip_x" unzip -q "$out/app.zip" -d "$out/x-zip"; b=$(now)
t[zip_x]=$(elapsed "$a" "$b")
a=$(now); mkdir -p "$out/x-tar" && tar --zstd -xf "$out/app.tar.zst" -C "$out/x-tar"; b=$(now)
t[tar_x]=$(elapsed "$a" "$b")
a=$(now); unzip -q "$out/app.cspkg" -d "$out/x-unzip-cspkg"; b=$(now)
t[unzip_cspkg]=$(elapsed "$a" "$b")

# The unpacked trees must be identical to the source.
diff -r -q "$tree/web" "$out/x-weft" >/dev/null || { echo "weft unpack differs from the source" >&2; exit 1; }
unzip -tq "$out/app.cspkg" >/dev/null || { echo "unzip -t rejects the package" >&2; exit 1; }

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
mb() { python3 -c "print(f'{$1 / 1e6:.1f}')"; }
peak() { python3 -c "print(f'{$(tail -1 "$work/rss.$1") / 1024:.0f}')"; }

cat <<TABLE

Tree: $(mb "$tree_bytes") MB in $tree_files files; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); load before run: $(cut -d' ' -f1-3 /proc/loadavg)

| pack | seconds | size (MB) | peak RSS (MB) | time vs zip | size vs zip |
|---|---|---|---|---|---|
| \`weft package\` | ${t[weft]} | $(mb "${s[weft]}") | $(peak weft) | $(ratio "${t[weft]}" "${t[zip]}") | $(ratio "${s[weft]}" "${s[zip]}") |
| \`zip -r -q\` (deflate -6) | ${t[zip]} | $(mb "${s[zip]}") | $(peak zip) | 1.00 | 1.00 |
| \`tar --zstd -cf\` | ${t[tar]} | $(mb "${s[tar]}") | $(peak tar) | $(ratio "${t[tar]}" "${t[zip]}") | $(ratio "${s[tar]}" "${s[zip]}") |

| unpack | seconds | peak RSS (MB) | time vs unzip |
|---|---|---|---|
| \`weft package unpack\` (SHA-256 verify, atomic) | ${t[weft_x]} | $(peak weft_x) | $(ratio "${t[weft_x]}" "${t[zip_x]}") |
| \`unzip -q\` (app.zip, CRC only) | ${t[zip_x]} | $(peak zip_x) | 1.00 |
| \`unzip -q\` (app.cspkg, CRC only) | ${t[unzip_cspkg]} | | $(ratio "${t[unzip_cspkg]}" "${t[zip_x]}") |
| \`tar --zstd -xf\` | ${t[tar_x]} | | $(ratio "${t[tar_x]}" "${t[zip_x]}") |
TABLE
rm -rf "$out"
