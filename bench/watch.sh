#!/usr/bin/env bash
# bench/watch.sh - fidxd's inotify watcher against inotifywait and watchman.
#
# Why: the watcher's promise (issue 12) is that a file an editor user just
# saved is in the next query, sooner than watchman would have it; that
# setting the watches up costs no more than `inotifywait -r` does; that one
# change on a 1,000,000-file project costs what it touches (a delta that
# rebuilds only its segments), not a copy of the index; that a burst such
# as an untar ends in an exact index with bounded memory; and that the
# segmented index answers queries as fast as the index before it.
#
# Data: the small tree is a hard-linked copy (`cp -al`, made once in
# build/bench/watch-tree/usr) of bench/daemon.sh's copy of /usr (~140,000
# files, ~15,000 directories): build/bench/daemon-tree/usr of this work
# tree, else of the main work tree (`git worktree list`), else made here by
# `cp -a /usr` as bench/daemon.sh does. The large tree is COPIES
# hard-linked copies of it (build/bench/watch-large/usr-1..COPIES, ~1.1 M
# files for 8). The benchmark only ever writes names starting `fidxw-`
# into these copies (removed at the end, and at the start if a killed run
# left any), never into the tree they link to. TREE= and LARGE= use trees
# of your own instead (written into the same way).
# What is measured (bench/watch_bench.py; each fidxd driven over one
# persistent socket connection, as bench/daemon_bench.py does):
#   1. watch set-up: a fresh fidxd's `add` (wait) + `sync`, against
#      `inotifywait -r -m TREE` until "Watches established.", ROUNDS
#      rounds interleaved, medians; and once `remove` + `add` + `sync` on
#      a daemon that had the project;
#   2. creation to queryable: CREATES files created one at a time (a
#      random 20-50 ms apart) per kind: fidx polled with exact queries,
#      fidx `sync`, a private watchman (own socket/state/log, `watch` of
#      TREE) polled with `name` queries over its socket's JSON protocol,
#      with and without its cookie sync; then QUIET more of fidx and
#      watchman 150-250 ms apart; median and p99;
#   4. a burst of BURST_DIRS x BURST_FILES creations in a new directory of
#      TREE, then its deletion: time until the project's file count is
#      exact, fidxd's peak RSS, the watch counters;
#   3. on LARGE in a fresh `fidxd --max-files 2M --max-index-bytes 2G`:
#      CHANGES one-file changes (create, delete), each's `last_change`
#      (time in the daemon, bytes made, segments made/shared) against a
#      full `reindex` (REINDEX_REPS) and the index bytes; the old fidxd
#      (part 5) builds LARGE too, for the record;
#   5. query medians against the commit before segments (OLD_REV, built
#      from `git archive` in build/bench/watch-old), bench/daemon_ab.py on
#      TREE, AB_REPS passes.
# Targets printed as PASS/FAIL (never an exit status): set-up no slower
# than inotifywait -r; creation to queryable at most half of watchman's,
# median and p99; a one-file change at most 1% of a full rebuild in time
# and at most 1% of the index bytes made; query medians new / old <= 1.05.
#
# Reproduce (from the repo root):
#     make bench-watch        (installs watchman, builds, runs this)
#     bash bench/watch.sh     (after `make all` and `apt-get install watchman`)
# Environment: FIDXD (default ./build/fidxd), ROUNDS (5), CREATES (200),
#              QUIET (50), BURST_DIRS (100), BURST_FILES (1000), CHANGES
#              (20), REINDEX_REPS (3), AB_REPS (20), COPIES (8), TREE,
#              LARGE (trees of your own), SKIP_LARGE=1 (no part 3),
#              OLD_REV (d576a7f), OLD_FIDXD (an older fidxd already built;
#              OLD_FIDXD=none skips part 5).
# Output: a markdown report on stdout, also written to build/bench/watch.md;
#         fidxd's log in build/bench/watch-fidxd.log. About 10 minutes on
#         2 cores, plus a minute for the first links of the trees.
# Needs: inotify-tools, watchman, python3 (Debian: apt-get install
#        inotify-tools watchman python3), ~200,000 free inotify watches
#        (fs.inotify.max_user_watches) for the large tree.
set -euo pipefail

case ${1:-} in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "usage: bash bench/watch.sh" >&2; exit 2 ;;
esac

if [[ ${FIDXD:-} == */* ]]; then FIDXD=$(realpath -- "$FIDXD"); fi
if [[ ${OLD_FIDXD:-} == */* ]]; then OLD_FIDXD=$(realpath -- "$OLD_FIDXD"); fi
if [[ -n ${TREE:-} ]]; then TREE=$(realpath -- "$TREE"); fi
if [[ -n ${LARGE:-} ]]; then LARGE=$(realpath -- "$LARGE"); fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
FIDXD=${FIDXD:-./build/fidxd}
ROUNDS=${ROUNDS:-5}
CREATES=${CREATES:-200}
QUIET=${QUIET:-50}
BURST_DIRS=${BURST_DIRS:-100}
BURST_FILES=${BURST_FILES:-1000}
CHANGES=${CHANGES:-20}
REINDEX_REPS=${REINDEX_REPS:-3}
AB_REPS=${AB_REPS:-20}
COPIES=${COPIES:-8}
OLD_REV=${OLD_REV:-d576a7f}
OUT=build/bench

for tool in inotifywait watchman python3 git; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
if ! command -v "$FIDXD" >/dev/null; then
    echo "'$FIDXD' not found: run 'make all' first or set FIDXD=" >&2
    exit 2
fi
mkdir -p "$OUT"

# The tree the copies link to.
src=""
for cand in "$OUT/daemon-tree/usr" \
        "$(git worktree list --porcelain 2>/dev/null | sed -n '1s/^worktree //p')/build/bench/daemon-tree/usr"; do
    if [[ -d $cand ]]; then src=$(realpath -- "$cand"); break; fi
done
if [[ -z ${TREE:-} || ( -z ${LARGE:-} && ${SKIP_LARGE:-0} != 1 ) ]]; then
    if [[ -z $src ]]; then
        src=$OUT/daemon-tree/usr
        echo "copying /usr to $src (once; bench/daemon.sh reuses it) ..." >&2
        mkdir -p "$OUT/daemon-tree"
        rm -rf -- "$src.tmp"
        cp -a /usr "$src.tmp" 2>/dev/null || echo "cp -a /usr: some files not copied" >&2
        mv -- "$src.tmp" "$src"
        src=$(realpath -- "$src")
    fi
fi
link_copy() {   # link_copy FROM TO: a hard-linked copy, made once
    if [[ ! -d $2 ]]; then
        echo "linking $1 to $2 (once) ..." >&2
        mkdir -p "$(dirname "$2")"
        rm -rf -- "$2.tmp"
        cp -al -- "$1" "$2.tmp"
        mv -- "$2.tmp" "$2"
    fi
}
if [[ -z ${TREE:-} ]]; then
    TREE=$OUT/watch-tree/usr
    link_copy "$src" "$TREE"
fi
large_args=()
if [[ ${SKIP_LARGE:-0} == 1 ]]; then
    large_args=(--large-skip "SKIP_LARGE=1")
else
    if [[ -z ${LARGE:-} ]]; then
        LARGE=$OUT/watch-large
        for ((i = 1; i <= COPIES; i++)); do
            link_copy "$src" "$LARGE/usr-$i"
        done
        i=$((COPIES + 1))
        while [[ -d $LARGE/usr-$i ]]; do
            rm -rf -- "$LARGE/usr-$i"
            i=$((i + 1))
        done
    fi
    large_args=(--large "$LARGE" --copies "$COPIES")
fi
# What a killed run may have left behind.
for t in "$TREE" ${LARGE:+"$LARGE"}; do
    find "$t" -name 'fidxw-*' -prune -exec rm -rf {} + 2>/dev/null || true
done

# The older fidxd: OLD_REV's sources from git archive, built once.
old_args=()
if [[ ${OLD_FIDXD:-} == none ]]; then
    old_args=(--old-skip "OLD_FIDXD=none")
elif [[ -n ${OLD_FIDXD:-} ]]; then
    old_args=(--old "$OLD_FIDXD" --old-label "$OLD_FIDXD")
else
    rev=$(git rev-parse --short "$OLD_REV")
    olddir=$OUT/watch-old/$rev
    if [[ ! -x $olddir/build/fidxd ]]; then
        echo "building fidxd at $rev in $olddir (once) ..." >&2
        rm -rf -- "$olddir"
        mkdir -p "$olddir"
        git archive "$rev" | tar -x -C "$olddir"
        make -C "$olddir" all > "$olddir.log" 2>&1 ||
            { echo "build of $rev failed: $olddir.log" >&2; exit 1; }
    fi
    old_args=(--old "$olddir/build/fidxd"
              --old-label "commit $rev")
fi

# Benchmark private copies, so a rebuild during the run cannot mix versions.
mkdir -p "$OUT/watch-bin"
cp -- "$(command -v "$FIDXD")" "$OUT/watch-bin/fidxd"
: > "$OUT/watch-fidxd.log"

header="## fidxd's watcher against inotifywait and watchman

- Tree: \`$(realpath -- "$TREE")\` ($(find "$TREE" -type d | wc -l) directories), hard-linked to ${src:-(its own)}
- Large tree: $(if [[ -n ${LARGE:-} ]]; then realpath -- "$LARGE"; else echo skipped; fi) ($COPIES hard-linked copies)
- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r); fs.inotify max_user_watches $(cat /proc/sys/fs/inotify/max_user_watches), max_queued_events $(cat /proc/sys/fs/inotify/max_queued_events); load average at the start $(cut -d' ' -f1-3 /proc/loadavg)
- Versions: fidxd git $(git describe --always --dirty 2>/dev/null || echo unknown) ($FIDXD), $(inotifywait --help 2>&1 | sed -n 1p), watchman $(watchman --version 2>/dev/null || echo '?')
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
"

python3 bench/watch_bench.py --tree "$TREE" "${large_args[@]}" \
    "${old_args[@]}" --fidxd "./$OUT/watch-bin/fidxd" \
    --rounds "$ROUNDS" --creates "$CREATES" --quiet "$QUIET" \
    --burst-dirs "$BURST_DIRS" --burst-files "$BURST_FILES" \
    --changes "$CHANGES" --reindex-reps "$REINDEX_REPS" --ab-reps "$AB_REPS" \
    --log "$OUT/watch-fidxd.log" --out "$OUT/watch.md" --header "$header"
echo "report written to $OUT/watch.md" >&2
