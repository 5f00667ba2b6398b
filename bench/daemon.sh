#!/usr/bin/env bash
# bench/daemon.sh - the daemon fidxd against fd, find, fzy and fzf, one run.
#
# Why: the daemon's promise is that an editor asking it over its socket gets
# an answer far sooner than piping a file list through fzy or fzf, that it
# builds its index no slower than fd lists the same tree, and that it holds
# that index in little more memory than the paths themselves take.
#
# Data: a copy of /usr (cp -a, ~140,000 files, 8-9 GB), made once in
# build/bench/daemon-tree/usr and reused; --recopy makes it again. One
# `fidxd --foreground --socket TMP/s.sock` is driven from Python over one
# persistent connection, like an editor plugin (bench/daemon_bench.py):
#   1. index build: fidx `add` ("wait":true, "hidden":true; after a
#      `remove`) and `reindex` ("wait":true) against `fdfind -t f -u . DIR`
#      and `find DIR -type f`; warm caches, one discarded warm-up round,
#      then REPS rounds interleaved; medians.
#   2. query latency: each query of bench/queries.txt as {"op":"query",
#      "limit":50}, QREPS times -> median and p99; `fzy -e Q` and
#      `fzf --filter Q` on paths.txt (the daemon's file set, built with
#      find and checked against the daemon's count) and the one-shot CLI
#      `fidx --root DIR --limit 50 -- Q`, PREPS runs each, interleaved.
#   3. memory: a fresh daemon indexes DIR and answers every query once;
#      VmRSS (/proc) and `stats` memory.rss_bytes against the bytes of the
#      indexed paths.
# Then, on a large tree of COPIES hard-linked copies of that /usr copy
# (`cp -al`, build/bench/daemon-large/usr-N, made once; ~1.1 M files for 8),
# a fresh `fidxd --max-files 2M` (the default cap is 1 M files):
#   4. query latency (LQREPS passes) and RSS against path bytes;
#   5. responsiveness: `ping` from one connection, PINGS times (random
#      pauses of up to 50 ms), idle and while another connection sends
#      the slowest queries back to back;
#   6. typing: the 12 prefixes of a query sent 30 ms apart on one
#      connection, with "supersede":true and without, TRIALS each; the
#      last prefix's answer against the same query sent alone.
# Targets printed as PASS/FAIL: build no slower than fdfind; median socket
# query >= 10x faster than fzy -e; RSS <= 1.5 x path bytes + 8 MiB; ping
# p99 under load <= 5x idle p99; last prefix with supersede <= 1.5x the
# lone query.
#
# Reproduce (from the repo root, after `make all`):
#     bash bench/daemon.sh [--recopy]
# Environment: FIDXD, FIDX (default ./build/fidxd, ./build/fidx), REPS
#              (default 5), QREPS (default 20), PREPS (default 5), TIMEOUT
#              seconds per command (default 120), COPIES (default 8),
#              LQREPS (default 10), PINGS (default 200), TRIALS (default 6),
#              LARGE_FIDXD_FLAGS (more flags for the large tree's fidxd,
#              e.g. "--worker-nice 19").
# Output: a markdown report on stdout, also written to build/bench/daemon.md;
#         paths.txt in build/bench/daemon-paths.txt, fidxd's log in
#         build/bench/daemon-fidxd.log. A few minutes on 2 cores, plus
#         a few more for the first copy of /usr and its links.
# Needs: fd-find, fzf, fzy, python3 (Debian: apt-get install fd-find fzf
#        fzy python3), ~9 GB free under build/ and ~1.3 M inodes.
set -euo pipefail

recopy=0
for arg in "$@"; do
    case $arg in
        --recopy) recopy=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: bash bench/daemon.sh [--recopy]" >&2; exit 2 ;;
    esac
done

# Binaries given relative to the caller's directory still work after the cd.
if [[ ${FIDXD:-} == */* ]]; then FIDXD=$(realpath -- "$FIDXD"); fi
if [[ ${FIDX:-} == */* ]]; then FIDX=$(realpath -- "$FIDX"); fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
FIDXD=${FIDXD:-./build/fidxd}
FIDX=${FIDX:-./build/fidx}
REPS=${REPS:-5}
QREPS=${QREPS:-20}
PREPS=${PREPS:-5}
TIMEOUT=${TIMEOUT:-120}
LQREPS=${LQREPS:-10}
PINGS=${PINGS:-200}
TRIALS=${TRIALS:-6}
OUT=build/bench
COPIES=${COPIES:-8}
TREE=$OUT/daemon-tree/usr
LARGE=$OUT/daemon-large

for tool in fdfind find fzf fzy python3; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
for bin in "$FIDXD" "$FIDX"; do
    if ! command -v "$bin" >/dev/null; then
        echo "'$bin' not found: run 'make all' first or set FIDXD=/FIDX=" >&2
        exit 2
    fi
done

if [[ $recopy == 1 ]]; then
    rm -rf -- "$TREE" "$TREE.tmp" "$LARGE"
fi
mkdir -p "$OUT/daemon-tree" "$LARGE"
if [[ ! -d $TREE ]]; then
    echo "copying /usr to $TREE (once; reused by later runs) ..." >&2
    rm -rf -- "$TREE.tmp"
    # Unreadable files (none as root) would make cp exit 1; keep what copied.
    cp -a /usr "$TREE.tmp" 2>/dev/null || echo "cp -a /usr: some files not copied" >&2
    mv -- "$TREE.tmp" "$TREE"
fi
# The large tree: COPIES hard-linked copies of the /usr copy, so it costs
# directories and links, not COPIES x 9 GB; extra copies of an earlier run
# with more are removed.
for ((i = 1; i <= COPIES; i++)); do
    if [[ ! -d $LARGE/usr-$i ]]; then
        echo "linking $TREE to $LARGE/usr-$i (once) ..." >&2
        rm -rf -- "$LARGE/usr-$i.tmp"
        cp -al -- "$TREE" "$LARGE/usr-$i.tmp"
        mv -- "$LARGE/usr-$i.tmp" "$LARGE/usr-$i"
    fi
done
i=$((COPIES + 1))
while [[ -d $LARGE/usr-$i ]]; do
    rm -rf -- "$LARGE/usr-$i"
    i=$((i + 1))
done

# Benchmark private copies, so a rebuild during the run cannot mix versions.
# They sit side by side, as `make all` leaves them.
mkdir -p "$OUT/daemon-bin"
cp -- "$(command -v "$FIDXD")" "$OUT/daemon-bin/fidxd"
cp -- "$(command -v "$FIDX")" "$OUT/daemon-bin/fidx"
version=$("$OUT/daemon-bin/fidx" --version 2>/dev/null | sed -n 1p | sed "s/^fidx //" || true)
: > "$OUT/daemon-fidxd.log"

# shellcheck disable=SC2185  # `find --version` needs no path
header="## fidxd against fd, find, fzy and fzf

- Tree: a copy of /usr ($(du -sh "$TREE" 2>/dev/null | cut -f1), \`cp -a /usr $TREE\`)
- Large tree: $COPIES hard-linked copies of it (\`cp -al\`, $LARGE/usr-1..$COPIES)
- Queries: $(grep -cv '^[[:space:]]*\(#\|$\)' bench/queries.txt) from bench/queries.txt; socket $QREPS repetitions, processes $PREPS, index $REPS rounds
- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r); load average at the start $(cut -d' ' -f1-3 /proc/loadavg)
- Versions: fidx/fidxd ${version:-(no --version)} ($FIDXD, $FIDX; git $(git describe --always --dirty 2>/dev/null || echo unknown)), $(fdfind --version | sed -n 1p), fzf $(fzf --version | sed -n 1p), $(fzy --version | sed -n 1p), $(find --version | sed -n 1p)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
"

python3 bench/daemon_bench.py --root "$TREE" --queries bench/queries.txt \
    --large-root "$LARGE" --copies "$COPIES" --lqreps "$LQREPS" \
    --pings "$PINGS" --trials "$TRIALS" \
    --fidxd "./$OUT/daemon-bin/fidxd" --fidx "./$OUT/daemon-bin/fidx" \
    --paths-out "$OUT/daemon-paths.txt" --log "$OUT/daemon-fidxd.log" \
    --reps "$REPS" --qreps "$QREPS" --preps "$PREPS" --timeout "$TIMEOUT" \
    --out "$OUT/daemon.md" --header "$header"
echo "report written to $OUT/daemon.md" >&2
