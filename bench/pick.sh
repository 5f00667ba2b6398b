#!/usr/bin/env bash
# bench/pick.sh - keystroke to screen of `fidx pick` against fzf, same run.
#
# Why: a picker is judged by how soon its list follows a key (issue 14's
# target: below fzf's median and p99, and under one frame, 16 ms, at the
# median). Both run in one private tmux server on the same paths: fidx
# pick on a fidxd project of TREE, fzf on `find`'s list of the same tree;
# the same queries are typed one key at a time, PAUSE 120 ms apart, the
# two tools alternating. The clock is a tmux control-mode client: from a
# key sent through it to the last byte of the redraw it caused (40 ms of
# quiet after, or the last output before the next key if later), so
# nothing polls the screen. Details: bench/pick_bench.py.
#
# Data: TREE (default build/bench/daemon-tree/usr, bench/daemon.sh's copy
# of /usr, ~140,000 files; made by `make bench-daemon` if missing).
# Reproduce: make bench-pick   (or: bash bench/pick.sh, after make all)
# Environment: TREE, N (queries of bench/queries.txt typed, default 12).
set -euo pipefail
cd "$(dirname "$0")/.."
TREE=${TREE:-build/bench/daemon-tree/usr}
if [ ! -d "$TREE" ]; then
	echo "pick.sh: no $TREE (make bench-daemon makes it, or set TREE)" >&2
	exit 2
fi
for t in tmux fzf; do
	command -v "$t" >/dev/null || { echo "pick.sh: $t is not installed" >&2; exit 2; }
done
mkdir -p build/bench
python3 bench/pick_bench.py --fidx build/fidx --fidxd build/fidxd \
    --tree "$TREE" --n "${N:-12}" | tee build/bench/pick.md
