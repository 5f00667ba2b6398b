#!/bin/sh
# tests/nvim.sh - the Neovim plugin (cli/nvim/) in a real headless Neovim
# against a real fidxd on a temporary socket.
#
# Each case of tests/nvim_cases.lua runs in its own Neovim, started as a
# user's would be (plugins loaded from 'runtimepath', no init file, no
# shada), with cli/nvim first in 'runtimepath'; the case drives Neovim
# from inside (keys fed with nvim_input, typed by Neovim's own loop) and
# writes one line per check to $T/CASE.res. A case passes when Neovim
# exits 0, its last line is "done", and Neovim's stderr has no Lua error
# or traceback; fidxd's stderr must have no sanitizer report.
# tests/lib.sh has the helpers and the rules (every wait has a deadline).

. "$(dirname "$0")/lib.sh"
REPO=$(cd "$(dirname "$0")/.." && pwd -P)
FIDX=$(cd "$FIDX_BUILD" && pwd -P)/fidx
FIDXD=$(cd "$FIDX_BUILD" && pwd -P)/fidxd
for b in "$FIDX" "$FIDXD"; do
	[ -x "$b" ] || { echo "FAIL: $b is not built (run make)"; exit 1; }
done
command -v nvim >/dev/null 2>&1 || { echo "FAIL: nvim is not installed (make deps)"; exit 1; }

unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_COMMON_DIR
GIT_CEILING_DIRECTORIES=$T
# Neovim's own files and fidxd's state stay in $T; no user's config.
XDG_STATE_HOME=$T/state
XDG_CONFIG_HOME=$T/config
XDG_DATA_HOME=$T/data
XDG_CACHE_HOME=$T/cache
export GIT_CEILING_DIRECTORIES XDG_STATE_HOME XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME
S="$T/sock"
DAEMON_PID=
FAKE_PID=

on_exit() {
	for pid in "$DAEMON_PID" "$FAKE_PID"; do
		[ -n "$pid" ] || continue
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# What a case started and could not stop (a failed case).
	for s in "$T/restart.sock" "$T/auto/sock"; do
		[ -S "$s" ] && "$FIDX" --socket "$s" daemon stop >/dev/null 2>&1
	done
	return 0
}

# The fixture: a git work tree with a commit, an untracked file.
P="$T/proj"
mkdir -p "$P/src" "$P/lib" "$P/docs" "$P/notes"
for f in src/main.c src/util.c src/util.h lib/x.c docs/guide.txt README.md Makefile; do
	echo "$f" >"$P/$f"
done
git -C "$P" init -q
git -C "$P" add -A
git -C "$P" -c user.name=t -c user.email=t@t commit -qm fixture
echo new >"$P/notes/untracked.txt"
mkdir -p "$P/latin"
echo latin1 >"$P/latin/$(printf 'caf\351').txt"

"$FIDXD" --foreground --socket "$S" >"$T/fidxd.log" 2>&1 &
DAEMON_PID=$!
wait_until "$FIDX" --socket "$S" daemon status >/dev/null 2>&1 ||
    { echo "FAIL: fidxd did not answer on $S"; exit 1; }

# The slow fake of the stale case: every query answered 100 ms after the
# one before, in order, with a path naming its query.
cat >"$T/slow.py" <<'EOF'
import json, socket, sys, time
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1])
srv.listen(4)
while True:
    conn, _ = srv.accept()
    f = conn.makefile("rwb")
    for line in f:
        req = json.loads(line)
        if req.get("op") == "query":
            time.sleep(0.1)
            name = "q-%s.c" % (req.get("q") or "empty")
            resp = {"id": req.get("id"), "ok": True, "results": [{"path": name,
                    "score": 1}], "matched": 1, "generation": 1,
                    "state": "ready", "capped": False, "watch": "watching"}
        else:
            resp = {"id": req.get("id"), "ok": True}
        f.write(json.dumps(resp).encode() + b"\n")
        f.flush()
EOF
python3 "$T/slow.py" "$T/fake.sock" 2>"$T/fake.err" &
FAKE_PID=$!
wait_until test -S "$T/fake.sock" || fail "the slow fake did not listen"

run_case() {
	_case=$1
	rm -f "$T/$_case.res"
	(cd "$P" && FIDX_T=$T FIDX_CASE=$_case FIDX_SOCK=$S FIDX_BIN=$FIDX \
	    FIDXD_BIN=$FIDXD FIDX_PROJ=$P FIDX_FAKE=$T/fake.sock \
	    timeout -k 5 $((60 * TIMEOUT_MULTIPLIER)) \
	    nvim --headless -u NORC -i NONE -n --cmd "set rtp^=$REPO/cli/nvim" \
	    -c "luafile $REPO/tests/nvim_cases.lua" </dev/null \
	    >"$T/$_case.stdout" 2>"$T/$_case.stderr")
	_rc=$?
	[ -f "$T/$_case.res" ] && cat "$T/$_case.res" | sed "s/^/[$_case] /"
	if [ "$_rc" -ne 0 ] || [ "$(tail -n 1 "$T/$_case.res" 2>/dev/null)" != done ]; then
		fail "$_case: nvim exit $_rc, last line: $(tail -n 1 "$T/$_case.res" 2>/dev/null)"
		sed 's/^/    /' "$T/$_case.stderr" | head -n 30
	elif grep -qi -e 'traceback' -e 'E5108' -e 'Error executing' -e 'Error detected' "$T/$_case.stderr"; then
		fail "$_case: a Lua error on Neovim's stderr"
		sed 's/^/    /' "$T/$_case.stderr" | head -n 30
	else
		pass "$_case: $(grep -c '^ok' "$T/$_case.res") checks"
	fi
	if grep -q -e 'Sanitizer' -e 'runtime error:' "$T"/*.fidxd.log "$T/fidxd.log" \
	    "$T/state/fidx/fidxd.log" 2>/dev/null; then
		fail "$_case: sanitizer report from fidxd"
	fi
}

for c in ${NVIM_CASES:-query picker splits stale restart autostart nobinary write refresh bounds health telescope}; do
	run_case "$c"
done

# The help tags shipped are what :helptags makes of the help file now.
mkdir -p "$T/doc"
cp "$REPO/cli/nvim/doc/fidx.txt" "$T/doc/"
nvim --headless -u NONE -i NONE -n -c "helptags $T/doc" -c 'qall!' </dev/null >/dev/null 2>&1
check "cli/nvim/doc/tags is what :helptags makes (run it on cli/nvim/doc)" cmp -s "$T/doc/tags" "$REPO/cli/nvim/doc/tags"

summary
