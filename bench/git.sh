#!/usr/bin/env bash
# bench/git.sh - fidxd's git status cache and fsmonitor hook against git.
#
# Why: editors ask for the git status often (issue 13): the cached answer
# must be instant, a cold one no slower than `git status`, and the cache
# small against the paths it holds; and `git status` itself should get
# faster with `core.fsmonitor "fidx fsmonitor"`.
#
# Data: a real tree of FILES (100,000) files committed to git, made once in
# build/bench/git-repo: the regular files of /usr/include, /usr/share and
# /usr/lib in walk order, each cut to its first 4 KiB (git's work per file
# is a stat and an index entry; the bytes only matter for the files that
# changed), committed in one commit. Each run resets it (`git reset
# --hard`, `git clean -fd`) and then changes it the same way (a fixed
# seed): MODIFIED (300) files appended to, STAGED (100) appended to and
# `git add`ed, UNTRACKED (100) new files in existing directories and 5
# new directories of 10 files each.
# What is measured (bench/git_bench.py; fidxd over one socket connection,
# wall clock from the client's side; ROUNDS rounds, the order alternating):
#   1. cold: {"op":"git","max_age_ms":0} (computed by libgit2 on a git
#      worker) against `git status --porcelain=v2 --branch` (its own index
#      copy, no fsmonitor, no untracked cache), medians and their ratio;
#   2. warm: WARM (200) {"op":"git"} answered from the cache: median, p99
#      (fidxd runs with --git-ttl-ms 600000 so the entry outlives them);
#   3. one change: a tracked file appended to, then {"op":"git"} asked
#      until its answer lists the file (the watcher marks the cached one
#      stale; it is computed again), CHANGES (10) times: median;
#   4. memory: `stats` git.usage.bytes of the one cached entry against the
#      bytes of the paths it holds (each path and rename source);
#   5. `git status --porcelain=v2 --branch` with core.fsmonitor set to
#      `fidx fsmonitor` (and core.untrackedCache true, as git advises with
#      a monitor) against without either, and against the untracked cache
#      alone (each variant on its own copy of the index, so none rewrites
#      another's); the outputs must be identical, and git's trace must show
#      the hook answered with paths; git's own core.fsmonitor=true daemon
#      where this git has it (Debian 12's 2.39 does not on Linux).
# Targets printed as PASS/FAIL (never an exit status): cold no slower than
# git status; warm at least 100x faster than cold; after one change at
# least 10x faster than cold; cache bytes at most 2x the path bytes; git
# status with the hook at least 2x faster than without.
#
# Reproduce (from the repo root):
#     make bench-git          (builds, runs this)
#     bash bench/git.sh       (after `make all`)
# Environment: FIDXD (default ./build/fidxd), FIDX (./build/fidx), ROUNDS
#              (7), WARM (200), CHANGES (10), FILES (100000), MODIFIED
#              (300), STAGED (100), UNTRACKED (100), REPO (a repository of
#              your own instead: it is reset and changed as above).
# Output: a markdown report on stdout, also written to build/bench/git.md;
#         fidxd's log in build/bench/git-fidxd.log. A few minutes on 2
#         cores, plus a few for making the repository the first time.
# Needs: git, python3.
set -euo pipefail

case ${1:-} in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "usage: bash bench/git.sh" >&2; exit 2 ;;
esac

if [[ ${FIDXD:-} == */* ]]; then FIDXD=$(realpath -- "$FIDXD"); fi
if [[ ${FIDX:-} == */* ]]; then FIDX=$(realpath -- "$FIDX"); fi
if [[ -n ${REPO:-} ]]; then REPO=$(realpath -- "$REPO"); fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
FIDXD=${FIDXD:-./build/fidxd}
FIDX=${FIDX:-./build/fidx}
ROUNDS=${ROUNDS:-7}
WARM=${WARM:-200}
CHANGES=${CHANGES:-10}
FILES=${FILES:-100000}
MODIFIED=${MODIFIED:-300}
STAGED=${STAGED:-100}
UNTRACKED=${UNTRACKED:-100}
OUT=build/bench

for tool in git python3; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
for b in "$FIDXD" "$FIDX"; do
    [[ -x $b ]] || { echo "'$b' not found: run 'make all' first" >&2; exit 2; }
done
mkdir -p "$OUT"
# A private git: nobody's settings change what is listed or how fast.
export GIT_CONFIG_NOSYSTEM=1 HOME=$PWD/$OUT/git-home
mkdir -p "$HOME"
printf '[user]\n\tname = bench\n\temail = bench@example.com\n' > "$HOME/.gitconfig"
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE

if [[ -z ${REPO:-} ]]; then
    REPO=$OUT/git-repo
    if [[ ! -d $REPO/.git ]]; then
        echo "making $REPO: $FILES files from /usr, committed (once) ..." >&2
        rm -rf -- "$REPO.tmp"
        python3 bench/git_bench.py --make "$REPO.tmp" --files "$FILES"
        git -C "$REPO.tmp" init -q
        git -C "$REPO.tmp" add -A
        git -C "$REPO.tmp" commit -qm "$FILES files from /usr"
        mv -- "$REPO.tmp" "$REPO"
    fi
    REPO=$(realpath -- "$REPO")
fi

# Benchmark private copies, so a rebuild during the run cannot mix versions.
mkdir -p "$OUT/git-bin"
cp -- "$FIDXD" "$OUT/git-bin/fidxd"
cp -- "$FIDX" "$OUT/git-bin/fidx"
: > "$OUT/git-fidxd.log"

header="## fidxd's git status cache and \`fidx fsmonitor\` against git

- Repository: \`$REPO\` ($(git -C "$REPO" ls-files | wc -l) tracked files, one commit)
- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r); load average at the start $(cut -d' ' -f1-3 /proc/loadavg)
- Versions: fidxd git $(git describe --always --dirty 2>/dev/null || echo unknown), $(git --version), libgit2 $(dpkg-query -W -f '${Version}' libgit2-1.5 2>/dev/null || echo '?')
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
"

python3 bench/git_bench.py --repo "$REPO" --fidxd "./$OUT/git-bin/fidxd" \
    --fidx "./$OUT/git-bin/fidx" --rounds "$ROUNDS" --warm "$WARM" \
    --changes "$CHANGES" --modified "$MODIFIED" --staged "$STAGED" \
    --untracked "$UNTRACKED" --log "$OUT/git-fidxd.log" \
    --out "$OUT/git.md" --header "$header"
echo "report written to $OUT/git.md" >&2
