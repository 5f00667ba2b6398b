#!/usr/bin/env bash
# bench/filter.sh - speed and top-result agreement of `fidx filter` vs fzf, fzy.
#
# Input: every regular file on the root filesystem of this machine
# (`find / -xdev -type f`, absolute paths, sorted with LC_ALL=C so the order,
# and thus tie-breaking, is reproducible), cached in build/bench/paths.txt.
# For each query in bench/queries.txt it times, with stdin from that file and
# stdout to /dev/null, the whole command (start-up + reading the list):
#     $FIDX filter --limit 50 QUERY     fzf --filter QUERY     fzy -e QUERY
# REPS times, tools interleaved, median per query; then compares the first
# result line of each tool. See bench/filter_compare.py for the details.
#
# Reproduce (from the repo root, after building build/fidx):
#     bash bench/filter.sh [--regen]
# Environment: FIDX (default ./build/fidx), REPS (default 5),
#              TIMEOUT seconds per command (default 60).
# Output: a markdown report on stdout, also written to build/bench/filter.md.
# Needs: fzf, fzy, python3 (Debian: apt-get install fzf fzy python3).
set -euo pipefail

regen=0
for arg in "$@"; do
    case $arg in
        --regen) regen=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: bash bench/filter.sh [--regen]" >&2; exit 2 ;;
    esac
done

# A FIDX given relative to the caller's directory still works after the cd.
if [[ ${FIDX:-} == */* ]]; then FIDX=$(realpath -- "$FIDX"); fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
FIDX=${FIDX:-./build/fidx}
REPS=${REPS:-5}
TIMEOUT=${TIMEOUT:-60}
OUT=build/bench
PATHS=$OUT/paths.txt

for tool in fzf fzy python3; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
if ! command -v "$FIDX" >/dev/null; then
    echo "fidx not found at '$FIDX': build it first or set FIDX=..." >&2
    exit 2
fi

# Make fzf ignore the user's defaults (e.g. --exact) so runs are comparable.
unset FZF_DEFAULT_OPTS FZF_DEFAULT_COMMAND

mkdir -p "$OUT"
if [[ $regen == 1 || ! -s $PATHS ]]; then
    echo "generating $PATHS (find / -xdev -type f) ..." >&2
    # Skip our own output dir and names containing a newline (one path a line).
    # find exits 1 on unreadable directories; that is expected here.
    { find / -xdev -path "$(pwd -P)/$OUT" -prune -o -type f ! -name $'*\n*' -print \
        2>/dev/null || true; } | LC_ALL=C sort > "$PATHS.tmp"
    mv "$PATHS.tmp" "$PATHS"
fi
npaths=$(wc -l < "$PATHS")
echo "$npaths paths in $PATHS" >&2

# Benchmark a private copy, so a rebuild during the run cannot mix versions.
cp -- "$(command -v "$FIDX")" "$OUT/fidx"
fidx_version=$("$OUT/fidx" --version 2>/dev/null | sed -n 1p | sed "s/^fidx //" || true)
header="## fidx filter vs fzf vs fzy

- Candidates: $npaths paths ($(du -h "$PATHS" | cut -f1)), every regular file of the root filesystem (\`find / -xdev -type f | LC_ALL=C sort\`)
- Queries: $(grep -cv '^[[:space:]]*\(#\|$\)' bench/queries.txt) from bench/queries.txt; $REPS repetitions, tools interleaved; per-query median wall time in ms (process start + reading stdin + matching + output to /dev/null)
- Commands: \`fidx filter --limit 50 Q\`, \`fzf --filter Q\`, \`fzy -e Q\` (fzf and fzy sort and print all matches; fzy treats a space as a literal character)
- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p), Linux $(uname -r)
- Versions: fidx ${fidx_version:-(no --version)} ($FIDX), fzf $(fzf --version | sed -n 1p), $(fzy --version | sed -n 1p)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
"

python3 bench/filter_compare.py --paths "$PATHS" --queries bench/queries.txt \
    --fidx "./$OUT/fidx" --reps "$REPS" --timeout "$TIMEOUT" \
    --out "$OUT/filter.md" --header "$header"
echo "report written to $OUT/filter.md" >&2
