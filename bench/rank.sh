#!/usr/bin/env bash
# bench/rank.sh - ranking quality of `fidx filter` vs fzf and fzy, on labelled
# queries: does the file the user meant come first?
#
# Why: speed alone says nothing about whether a fuzzy finder "finds what people
# mean". The labelled set holds queries an editor user types, in eight
# classes (short, abbreviation, path-fragment, typo, exact-name, long,
# no-match, multi-term), each labelled with the intended file(s) as a Python
# regex on the path, in two parts: bench/rank_queries.tsv, the tuning part,
# and bench/rank_heldout.tsv, the held-out part that ranking rules must not
# be tuned on (how it was chosen: its header). Each part is scored on its
# own and the two together, in one run. This script runs every query through
#     $FIDX filter --limit 100 Q     fzf --filter Q     fzy -e Q
# (fzf with FZF_DEFAULT_OPTS empty) and scores the rank of the first intended
# path in the first 100 output lines: MRR and hits@10 per class and overall,
# side by side, plus median wall time per tool and query set. No-match
# queries score 1 if the tool prints nothing, else 0. If `fidx filter --help`
# mentions --typos, fidx also runs with --typos=0 and the report compares
# time and scores with typo tolerance on and off; otherwise it says
# "typos: not implemented yet". Details: bench/rank_compare.py.
#
# Three path lists (the query file's "list" column):
#   fs   every regular file on the root filesystem of this machine, absolute
#        paths (`find / -xdev -type f | LC_ALL=C sort`), shared with
#        bench/filter.sh in build/bench/paths.txt (reused if present)
#   src  a real source tree, paths relative to its root as an editor's file
#        finder lists them (`.git` directories left out), cached in
#        build/bench/rank-src-paths.txt. Default SRC_ROOT=/usr/lib/python3.11:
#        the CPython standard library (sources, lib-dynload/*.so and the
#        __pycache__ that Debian compiles at install), which python3 - in the
#        Makefile's DEB_PKGS - installs on every Debian 12; the labels name
#        only files of libpython3.11-stdlib/-minimal, not those of optional
#        packages installing there too (distutils, lib2to3, ensurepip,
#        config-3.11-*). Another tree needs its own labels.
#   perl a second real source tree, listed as src is, cached in
#        build/bench/rank-perl-paths.txt. Default PERL_ROOT=/usr/share/perl/5.36:
#        Perl's library (perl-modules-5.36), which git - in the Makefile's
#        DEB_PKGS - pulls in through perl on every Debian 12.
# Nothing is dropped silently: a query whose list is missing (SRC_ROOT not
# found), whose intended regex matches nothing in its list, or a no-match
# query that does match, is dropped with a WARNING at the top of the report
# (and on stderr) counting drops per part and reason, and listed at its end.
#
# Reproduce (from the repo root, after building build/fidx; about 6 minutes
# on 2 cores):
#     bash bench/rank.sh [--regen]      # --regen: rebuild both path lists
#     bash bench/rank.sh --check        # only validate the labels against
#                                       # the lists (exit 1 if any is dropped)
# Environment: FIDX (default ./build/fidx), REPS timing repetitions
#              (default 3), TIMEOUT seconds per command (default 60),
#              SRC_ROOT (default /usr/lib/python3.11), PERL_ROOT (default
#              /usr/share/perl/5.36), QUERIES (default
#              bench/rank_queries.tsv), HELDOUT (default
#              bench/rank_heldout.tsv; empty: no held-out part, said so in
#              the report).
# Output: a markdown report on stdout, also written to build/bench/rank.md.
# Needs: fzf, fzy, python3 (Debian: apt-get install fzf fzy python3).
set -euo pipefail

regen=0
check=0
for arg in "$@"; do
    case $arg in
        --regen) regen=1 ;;
        --check) check=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: bash bench/rank.sh [--regen] [--check]" >&2; exit 2 ;;
    esac
done

# A FIDX given relative to the caller's directory still works after the cd.
if [[ ${FIDX:-} == */* ]]; then FIDX=$(realpath -- "$FIDX"); fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
FIDX=${FIDX:-./build/fidx}
REPS=${REPS:-3}
TIMEOUT=${TIMEOUT:-60}
SRC_ROOT=${SRC_ROOT:-/usr/lib/python3.11}
PERL_ROOT=${PERL_ROOT:-/usr/share/perl/5.36}
OUT=build/bench
PATHS=$OUT/paths.txt
SRC_PATHS=$OUT/rank-src-paths.txt
PERL_PATHS=$OUT/rank-perl-paths.txt
QUERIES=${QUERIES:-bench/rank_queries.tsv}
HELDOUT=${HELDOUT-bench/rank_heldout.tsv}
parts=(--queries "tuning=$QUERIES")
parts_desc="tuning part \`$QUERIES\`"
if [[ -n $HELDOUT ]]; then
    [[ -f $HELDOUT ]] || { echo "held-out query file '$HELDOUT' not found (HELDOUT= to run without)" >&2; exit 2; }
    parts+=(--queries "held-out=$HELDOUT" --held-out held-out)
    parts_desc+=", held-out part \`$HELDOUT\` (not used for tuning)"
else
    parts_desc+="; **no held-out part: HELDOUT is empty**"
    echo "WARNING: HELDOUT is empty: no held-out part" >&2
fi

for tool in python3 $([[ $check == 1 ]] || echo fzf fzy); do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
if [[ $check == 0 ]] && ! command -v "$FIDX" >/dev/null; then
    echo "fidx not found at '$FIDX': build it first (make all) or set FIDX=..." >&2
    exit 2
fi

# Make fzf ignore the user's defaults (e.g. --exact) so runs are comparable.
unset FZF_DEFAULT_COMMAND
export FZF_DEFAULT_OPTS=

mkdir -p "$OUT"
if [[ $regen == 1 || ! -s $PATHS ]]; then
    echo "generating $PATHS (find / -xdev -type f) ..." >&2
    # As bench/filter.sh: skip our output dir and names with a newline.
    # find exits 1 on unreadable directories; that is expected here.
    { find / -xdev -path "$(pwd -P)/$OUT" -prune -o -type f ! -name $'*\n*' -print \
        2>/dev/null || true; } | LC_ALL=C sort > "$PATHS.tmp"
    mv "$PATHS.tmp" "$PATHS"
fi
lists=(--list "fs=$PATHS")
# tree_list NAME ROOT FILE: lists the files under ROOT (relative, .git left
# out) into FILE unless cached for that ROOT, adds the list, and sets desc.
tree_list() {
    local name=$1 root=$2 file=$3 commit top
    desc="**not run: ${name^^}_ROOT \`$root\` not found, every $name query dropped**"
    if [[ ! -d $root ]]; then
        echo "WARNING: ${name^^}_ROOT $root not found: the $name list is not run" >&2
        return
    fi
    root=$(realpath -- "$root")
    # Regenerate when asked, when missing, or when the root changed.
    if [[ $regen == 1 || ! -s $file || $(cat "$file.root" 2>/dev/null) != "$root" ]]; then
        echo "generating $file (files under $root) ..." >&2
        { (cd "$root" && find . -name .git -prune -o -type f ! -name $'*\n*' -printf '%P\n' \
            2>/dev/null) || true; } | LC_ALL=C sort > "$file.tmp"
        mv "$file.tmp" "$file"
        printf '%s\n' "$root" > "$file.root"
    fi
    lists+=(--list "$name=$file")
    commit=$(git -C "$root" log -1 --format='commit %h, %cs' 2>/dev/null || echo "not a git checkout")
    top=$(cut -d/ -f1-2 "$file" | sort | uniq -c | sort -rn | sed -n 1,4p \
        | awk '{printf "%s%s %s", sep, $2, $1; sep=", "}')
    desc="$(wc -l < "$file") files under \`$root\` ($commit), relative paths, \`.git\` directories left out; largest parts: $top"
}
tree_list src "$SRC_ROOT" "$SRC_PATHS"
src_desc=$desc
tree_list perl "$PERL_ROOT" "$PERL_PATHS"
perl_desc=$desc
echo "$(wc -l < "$PATHS") paths in $PATHS; src: $src_desc; perl: $perl_desc" >&2

if [[ $check == 1 ]]; then
    exec python3 bench/rank_compare.py "${parts[@]}" "${lists[@]}" --fidx - --check
fi

# Benchmark a private copy, so a rebuild during the run cannot mix versions.
cp -- "$(command -v "$FIDX")" "$OUT/rank-fidx"
typos=()
if "$OUT/rank-fidx" filter --help 2>&1 | grep -- '--typos' >/dev/null; then
    typos=(--typos)
fi
fidx_version=$("$OUT/rank-fidx" --version 2>/dev/null | sed -n 1p | sed "s/^fidx //" || true)
fidx_rev=$(git log -1 --format='%h' 2>/dev/null || true)
header="## Ranking quality: fidx filter vs fzf vs fzy

- Queries: $parts_desc; labelled with the intended file(s) per query; classes short, abbreviation, path-fragment, typo, exact-name, long, no-match, multi-term
- \`fs\`: $(wc -l < "$PATHS") paths ($(du -h "$PATHS" | cut -f1)), every regular file of the root filesystem (\`find / -xdev -type f | LC_ALL=C sort\`, absolute paths)
- \`src\`: $src_desc
- \`perl\`: $perl_desc
- Commands: \`fidx filter --limit 100 Q\`, \`fzf --filter Q\` (FZF_DEFAULT_OPTS empty), \`fzy -e Q\`; rank = position of the first output line the intended regex matches, within the first 100
- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p), Linux $(uname -r)
- Versions: fidx ${fidx_version:-(no --version)} ($FIDX${fidx_rev:+, repo at $fidx_rev}), fzf $(fzf --version | sed -n 1p), $(fzy --version | sed -n 1p)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
"

python3 bench/rank_compare.py "${parts[@]}" "${lists[@]}" \
    --fidx "./$OUT/rank-fidx" "${typos[@]}" --reps "$REPS" --timeout "$TIMEOUT" \
    --out "$OUT/rank.md" --header "$header"
echo "report written to $OUT/rank.md" >&2
