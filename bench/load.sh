#!/usr/bin/env bash
# bench/load.sh - fidxd under 64 concurrent clients and one that never reads.
#
# Why: an editor, a picker and a few scripts share one daemon; a client
# that stops reading (a suspended editor, a hung pipe) must cost the
# others nothing but the work it asked for, and be dropped at its output
# cap (--max-output-bytes, 4 MiB) instead of holding memory (issue 16).
#
# Data: a tree of ~370,000 files, made once in build/bench/load-tree of
# hard links (`cp -al`, no file data copied): two copies of a /usr tree
# and a third of its lib, include, src, local, bin, sbin, libexec, lib32,
# share/fpcsrc and share/doc. The /usr tree is bench/daemon.sh's copy
# (build/bench/daemon-tree/usr of this work tree or of the main one) if
# there is one, else /usr itself (the benchmark never writes into the
# tree). TREE= uses a tree of your own instead. One small git repository
# is made with `git` in a temporary directory, for the `git` requests.
# What is measured (bench/load.py, its docstring has the details): one
# `fidxd --foreground` on a private socket indexes the tree; then two
# phases, alternating ROUNDS (2) times, CLIENTS processes (64) sending
# REQUESTS (1,000) requests each in all, a quarter in each phase of each
# round, one at a time, as fast as answers come: queries of every kind
# (fuzzy, exact, regex, typo, several terms, limit 50), `projects`,
# `stats`, `git` and `visit`, in a seeded random order:
#   A. those clients alone;
#   B. the same, plus one client that connects, pipelines queries whose
#      answers are 10,000 results each, and never reads: once fidxd has
#      dropped it (counter clients_dropped), it connects again, until
#      the phase ends.
# Reported: per request kind, count, median and p99 of the round trip in
# each phase; errors (any "ok":false or a connection closed under a
# client); the stalled client's drops against the counter; p99 of all
# requests with the stalled client against without it.
# Targets printed as PASS/FAIL (never an exit status): zero errors; the
# stalled client dropped at its cap every time (clients_dropped grew by
# its connections); p99 with it <= 1.5 x p99 without it.
#
# Reproduce (from the repo root):
#     make bench-load        (builds, runs this; a few minutes on 2 cores)
#     bash bench/load.sh     (after `make all`)
# Environment: FIDXD (default ./build/fidxd), CLIENTS (64), REQUESTS
#              (1000), ROUNDS (2), SEED (16), TREE (a tree of your own).
# Time: the queries of 64 clients wait their turns on one query worker
# (each ~35 ms on an idle 2-core machine, 380,000 files), so the default
# is ~20 minutes idle and much more on a busy machine; REQUESTS=100 is a
# few minutes.
# Output: a markdown report on stdout, also written to build/bench/load.md;
#         fidxd's stderr in build/bench/load-fidxd.log.
# Needs: git, python3 (Debian: apt-get install git python3), ~400,000 free
#        inodes and ~40,000 inotify watches (fs.inotify.max_user_watches).
set -euo pipefail

case ${1:-} in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "usage: bash bench/load.sh" >&2; exit 2 ;;
esac

if [[ ${FIDXD:-} == */* ]]; then FIDXD=$(realpath -- "$FIDXD"); fi
if [[ -n ${TREE:-} ]]; then TREE=$(realpath -- "$TREE"); fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
FIDXD=${FIDXD:-./build/fidxd}
CLIENTS=${CLIENTS:-64}
REQUESTS=${REQUESTS:-1000}
ROUNDS=${ROUNDS:-2}
SEED=${SEED:-16}
OUT=build/bench

for tool in python3 git; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
if ! command -v "$FIDXD" >/dev/null; then
    echo "'$FIDXD' not found: run 'make all' first or set FIDXD=" >&2
    exit 2
fi
mkdir -p "$OUT"

if [[ -z ${TREE:-} ]]; then
    TREE=$OUT/load-tree
    if [[ ! -d $TREE ]]; then
        src=/usr
        for cand in "$OUT/daemon-tree/usr" \
                "$(git worktree list --porcelain 2>/dev/null | sed -n '1s/^worktree //p')/build/bench/daemon-tree/usr"; do
            if [[ -d $cand ]]; then src=$(realpath -- "$cand"); break; fi
        done
        echo "linking $src into $TREE (once) ..." >&2
        rm -rf -- "$TREE.tmp"
        mkdir -p "$TREE.tmp/usr-3/share"
        # Files that cannot be linked (another file system) are skipped.
        cp -al -- "$src" "$TREE.tmp/usr-1" 2>/dev/null || true
        cp -al -- "$src" "$TREE.tmp/usr-2" 2>/dev/null || true
        for d in lib include src local bin sbin libexec lib32; do
            [[ -d $src/$d ]] && { cp -al -- "$src/$d" "$TREE.tmp/usr-3/$d" 2>/dev/null || true; }
        done
        for d in fpcsrc doc; do
            [[ -d $src/share/$d ]] && { cp -al -- "$src/share/$d" "$TREE.tmp/usr-3/share/$d" 2>/dev/null || true; }
        done
        mv -- "$TREE.tmp" "$TREE"
    fi
fi

# A private copy, so a rebuild during the run cannot change the binary.
mkdir -p "$OUT/load-bin"
cp -- "$(command -v "$FIDXD")" "$OUT/load-bin/fidxd"
: > "$OUT/load-fidxd.log"

header="## fidxd under load: $CLIENTS clients x $REQUESTS requests, and one that never reads

- Tree: \`$(realpath -- "$TREE")\` ($(find "$TREE" -type f | wc -l) files, $(find "$TREE" -type d | wc -l) directories)
- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r); load average at the start $(cut -d' ' -f1-3 /proc/loadavg)
- Versions: fidxd git $(git describe --always --dirty 2>/dev/null || echo unknown) ($FIDXD), $(git --version), Python $(python3 -c 'import platform; print(platform.python_version())')
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Command: \`CLIENTS=$CLIENTS REQUESTS=$REQUESTS ROUNDS=$ROUNDS bash bench/load.sh\` (or \`make bench-load\`)
"

python3 bench/load.py --tree "$TREE" --fidxd "./$OUT/load-bin/fidxd" \
    --clients "$CLIENTS" --requests "$REQUESTS" --rounds "$ROUNDS" --seed "$SEED" \
    --log "$OUT/load-fidxd.log" --out "$OUT/load.md" --header "$header"
echo "report written to $OUT/load.md" >&2
