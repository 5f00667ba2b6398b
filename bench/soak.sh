#!/usr/bin/env bash
# bench/soak.sh - fidxd under every kind of load at once, for a set time.
#
# Why: fidx exists because services like it grew until the kernel killed
# them (issue 16): an index appended on every rescan, a git cache with no
# eviction, client buffers without limits. This runs a real daemon for
# SECONDS through everything at once and shows that its memory stays
# flat, that its answers stay right for the tree as it is at the time,
# and that it reports no error that is not the client's.
#
# Data: a hard-linked copy (`cp -al`, made once in build/bench/soak-tree/usr)
# of bench/daemon.sh's copy of /usr (~140,000 files, ~15,000 directories):
# build/bench/daemon-tree/usr of this work tree, else of the main work tree
# (`git worktree list`), else made here by `cp -a /usr` as bench/daemon.sh
# does. The benchmark only ever writes names starting `fidxs-` into it
# (removed at the end, and at the start if a killed run left any), never
# into the tree it links to. TREE= uses a tree of your own instead
# (written into the same way). Eight small git repositories are made
# with `git` in a temporary directory.
# What is measured (bench/soak.py, its docstring has the details): one
# `fidxd --foreground --max-git-projects 4 --max-visits 200
# --max-visits-per-project 50` on a private socket, and at once:
#   - `reindex` (wait) of the tree back to back, while files and
#     directories are made, renamed, moved and deleted in it;
#   - CLIENTS connections typing queries with "supersede":true;
#   - connections closed mid-request (half a line) and mid-answer (a
#     10,000-result query never read, or read 4 KiB of);
#   - `git` round robin over 8 repositories (the cache holds 4) while
#     their files change and commits are made;
#   - `visit` over 3,000+ distinct files (the store holds 200);
#   - a spot check every 1.5 s: a file made / renamed / deleted, a
#     directory made / moved / removed, then `sync` and an exact query
#     must list exactly the tree's state; an untracked file must show in
#     `git` with "max_age_ms":0, and go when deleted;
#   - fidxd's VmRSS (/proc/PID/status) every second.
# At the end: `ping`, a `stats` snapshot, the churn's files removed and
# the file count back to the start's, fidxd's stderr searched for
# sanitizer reports and "error" lines.
# Reported: RSS at warm-up (the first min(20% of SECONDS, 60 s); the
# median of the samples in a window of max(10 s, 10% of SECONDS) centred
# on that mark: a rebuild's second snapshot saw-tooths single samples),
# at the end (the median of the last such window), the peak, and the
# slope of a least-squares fit over the samples after warm-up (bytes per
# minute); the work done; the spot checks; daemon errors (an "ok":false
# whose code none of our requests provoke: `cancelled` of a superseded
# query is expected, `busy` is counted apart; a connection closed under
# a client; an answer out of order).
# Targets printed as PASS/FAIL (never an exit status): slope after warm-up
# under 100 KiB/min; end RSS within 5% of warm-up; every spot check
# correct; zero daemon errors; fidxd alive at the end, exit 0 on shutdown,
# stderr clean; the visit store and git cache within their caps.
#
# Reproduce (from the repo root):
#     make bench-soak                 (builds, runs this: 10 minutes)
#     SOAK_SECONDS=60 make bench-soak (the short version)
#     bash bench/soak.sh              (after `make all`)
# Environment: SOAK_SECONDS (600), FIDXD (default ./build/fidxd), CLIENTS
#              (3), REPOS (8), TREE (a tree of your own), SEED (16),
#              SOAK_SKIP (loads left out, to tell which one grows memory:
#              a comma-separated subset of reindex,churn,query,abrupt,git,
#              visit,spot).
# Output: a markdown report on stdout, also written to build/bench/soak.md;
#         fidxd's stderr in build/bench/soak-fidxd.log, the RSS samples
#         (seconds, bytes) in build/bench/soak-rss.tsv, each stats
#         sample's memory section in build/bench/soak-stats.jsonl. SOAK_SECONDS plus
#         ~30 s on 2 cores, plus a minute for the first links of the tree.
# Needs: git, python3 (Debian: apt-get install git python3), ~20,000 free
#        inotify watches (fs.inotify.max_user_watches).
set -euo pipefail

case ${1:-} in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "usage: bash bench/soak.sh" >&2; exit 2 ;;
esac

if [[ ${FIDXD:-} == */* ]]; then FIDXD=$(realpath -- "$FIDXD"); fi
if [[ -n ${TREE:-} ]]; then TREE=$(realpath -- "$TREE"); fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
FIDXD=${FIDXD:-./build/fidxd}
SOAK_SECONDS=${SOAK_SECONDS:-600}
CLIENTS=${CLIENTS:-3}
REPOS=${REPOS:-8}
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
    TREE=$OUT/soak-tree/usr
    if [[ ! -d $TREE ]]; then
        src=""
        for cand in "$OUT/daemon-tree/usr" \
                "$(git worktree list --porcelain 2>/dev/null | sed -n '1s/^worktree //p')/build/bench/daemon-tree/usr"; do
            if [[ -d $cand ]]; then src=$(realpath -- "$cand"); break; fi
        done
        if [[ -z $src ]]; then
            src=$OUT/daemon-tree/usr
            echo "copying /usr to $src (once; bench/daemon.sh reuses it) ..." >&2
            mkdir -p "$OUT/daemon-tree"
            rm -rf -- "$src.tmp"
            cp -a /usr "$src.tmp" 2>/dev/null || echo "cp -a /usr: some files not copied" >&2
            mv -- "$src.tmp" "$src"
        fi
        echo "linking $src to $TREE (once) ..." >&2
        mkdir -p "$(dirname "$TREE")"
        rm -rf -- "$TREE.tmp"
        cp -al -- "$src" "$TREE.tmp"
        mv -- "$TREE.tmp" "$TREE"
    fi
fi
# What a killed run may have left behind.
find "$TREE" -name 'fidxs-*' -prune -exec rm -rf {} + 2>/dev/null || true

# A private copy, so a rebuild during the run cannot change the binary.
mkdir -p "$OUT/soak-bin"
cp -- "$(command -v "$FIDXD")" "$OUT/soak-bin/fidxd"
: > "$OUT/soak-fidxd.log"
: > "$OUT/soak-stats.jsonl"

header="## fidxd soak: $SOAK_SECONDS s of everything at once

- Tree: \`$(realpath -- "$TREE")\` ($(find "$TREE" -type d | wc -l) directories)
- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r); load average at the start $(cut -d' ' -f1-3 /proc/loadavg)
- Versions: fidxd git $(git describe --always --dirty 2>/dev/null || echo unknown) ($FIDXD), $(git --version), Python $(python3 -c 'import platform; print(platform.python_version())')
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Command: \`SOAK_SECONDS=$SOAK_SECONDS${SOAK_SKIP:+ SOAK_SKIP=$SOAK_SKIP} bash bench/soak.sh\` (or \`make bench-soak\`)
"

python3 bench/soak.py --tree "$TREE" --fidxd "./$OUT/soak-bin/fidxd" \
    --seconds "$SOAK_SECONDS" --clients "$CLIENTS" --repos "$REPOS" \
    --seed "$SEED" --skip "${SOAK_SKIP:-}" --log "$OUT/soak-fidxd.log" --rss-out "$OUT/soak-rss.tsv" \
    --stats-out "$OUT/soak-stats.jsonl" \
    --out "$OUT/soak.md" --header "$header"
echo "report written to $OUT/soak.md" >&2
