#!/usr/bin/env bash
# bench/nvim.sh - keystroke to screen of Neovim's :Fidx picker (cli/nvim),
# beside `fidx pick` and fzf in the same run.
#
# Why: the plugin's picker must follow typing within a frame (issue 15's
# targets: median under 16 ms, p99 under 50 ms, and no worse than fidx
# pick). It is bench/pick.sh's run with a third tmux window: Neovim
# (-u NORC, cli/nvim first in 'runtimepath') with :Fidx open on the same
# fidxd project as fidx pick, the same queries typed the same way, the
# three tools alternating; the clock is the same tmux control-mode
# client (key sent to the end of the redraw it caused). Details:
# bench/pick_bench.py (--nvim).
#
# Data: TREE (default build/bench/daemon-tree/usr, bench/daemon.sh's copy
# of /usr, ~140,000 files; TREE=/usr works as well, read-only).
# Reproduce: make bench-nvim   (or: bash bench/nvim.sh, after make all)
# Environment: TREE, N (queries of bench/queries.txt typed, default 12).
set -euo pipefail
cd "$(dirname "$0")/.."
TREE=${TREE:-build/bench/daemon-tree/usr}
if [ ! -d "$TREE" ]; then
	echo "nvim.sh: no $TREE (make bench-daemon makes it, or set TREE=/usr)" >&2
	exit 2
fi
for t in tmux fzf nvim; do
	command -v "$t" >/dev/null || { echo "nvim.sh: $t is not installed" >&2; exit 2; }
done
mkdir -p build/bench
python3 bench/pick_bench.py --fidx build/fidx --fidxd build/fidxd \
    --tree "$TREE" --n "${N:-12}" --nvim cli/nvim | tee build/bench/nvim.md
