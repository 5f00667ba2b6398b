#!/bin/sh
# tests/cli.sh - the fidx command line against a real fidxd.
#
# Each run gets a private temp directory and socket; on_exit always stops
# the daemons this script started. tests/lib.sh has the helpers and the
# rules: bounded waits scaled by TIMEOUT_MULTIPLIER, never a bare sleep;
# every check runs to the end; a sanitizer report is a failure.

. "$(dirname "$0")/lib.sh"
FIDX=$(cd "$FIDX_BUILD" && pwd -P)/fidx
FIDXD=$(cd "$FIDX_BUILD" && pwd -P)/fidxd
for b in "$FIDX" "$FIDXD"; do
	[ -x "$b" ] || { echo "FAIL: $b is not built (run make)"; exit 1; }
done

REPO=$(pwd -P)
# Project roots come from git's rules: keep the caller's repository out.
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_COMMON_DIR
GIT_CEILING_DIRECTORIES=$T
export GIT_CEILING_DIRECTORIES
# Colour is decided by the tests that want it.
unset NO_COLOR
# Visit stores go here, never into the user's own.
XDG_STATE_HOME=$T/state
export XDG_STATE_HOME
S="$T/sock"
DAEMON_PID=
FAKE=

# Stops a daemon on socket $1 by its own pid, whatever state it is in.
kill_socket_daemon() {
	pid=$("$FIDX" --socket "$1" daemon status 2>/dev/null |
	    sed -n 's/^running, pid \([0-9]*\),.*/\1/p')
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
}

on_exit() {
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
	kill_socket_daemon "$T/s2"
	kill_socket_daemon "$T/s3"
	kill_socket_daemon "$T/s4"
	kill_socket_daemon "$T/s5"
	kill_socket_daemon "$T/s6"
	kill_socket_daemon "$T/s7"
	kill_socket_daemon "$T/s8"
	[ -n "$FAKE" ] && kill "$FAKE" 2>/dev/null
	# A daemon whose socket is not its own: by its pid file.
	for f in "$T"/*.pid "$T"/rt*/fidx/sock.pid; do
		[ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
}

# out_is DESC TEXT: stdout of the last run is exactly TEXT (and '\n').
out_is() {
	printf '%s\n' "$2" >"$T/want"
	if cmp -s "$T/want" "$T/out"; then
		pass "$1"
	else
		fail "$1: wanted '$2'"
	fi
}

# out_has / err_has DESC TEXT: a line of stdout / stderr contains TEXT.
out_has() {
	if grep -qF -- "$2" "$T/out"; then
		pass "$1"
	else
		fail "$1: no '$2' in stdout"
	fi
}
err_has() {
	if grep -qF -- "$2" "$T/err"; then
		pass "$1"
	else
		fail "$1: no '$2' in stderr"
	fi
}

# py DESC CODE: python3 CODE reads the last stdout as bytes on stdin.
py() {
	if python3 -c "import sys, json
d = sys.stdin.buffer.read()
$2" <"$T/out" 2>"$T/pyerr"; then
		pass "$1"
	else
		fail "$1: $(tail -n 1 "$T/pyerr")"
	fi
}

# wait_running SOCKET: polls `daemon status` until it answers (bounded).
wait_running() {
	wait_until "$FIDX" --socket "$1" daemon status >/dev/null 2>&1
}

# Fixtures: a plain tree (with a name that is not UTF-8) and a git repo.
P="$T/proj"
mkdir -p "$P/src" "$P/lib" "$P/docs"
: >"$P/src/main.c"
: >"$P/src/util.c"
: >"$P/lib/x.c"
: >"$P/docs/guide.txt"
: >"$P/docs/stats.txt"
: >"$P/README.md"
: >"$P/$(printf 'bad\377name.c')"
R="$T/repo"
mkdir -p "$R/sub/deep"
: >"$R/toplevel_marker.c"
: >"$R/sub/deep/inner.c"
git -C "$R" init -q || { echo "FAIL: git init"; exit 1; }

# Commands that need no daemon.
expect 0 "--version" "$FIDX" --version
out_has "--version names fidx" "fidx "
expect 0 "--help" "$FIDX" --help
out_has "--help shows the query usage" "QUERY..."
expect 2 "no arguments is an error" "$FIDX"
printf 'a/Makefile\nb/c\n' >"$T/cands"
expect 0 "filter still works" sh -c '"$1" filter mkfl <"$2"' sh "$FIDX" "$T/cands"
out_is "filter ranks from stdin" "a/Makefile"

# A daemon in the foreground on our socket.
"$FIDXD" --foreground --socket "$S" >"$T/fidxd.log" 2>&1 &
DAEMON_PID=$!
wait_running "$S" || { echo "FAIL: fidxd did not answer on $S"; exit 1; }

expect 0 "daemon status when running" "$FIDX" --socket "$S" daemon status
if grep -q '^running, pid [0-9][0-9]*, version ' "$T/out"; then
	pass "status names pid and version"
else
	fail "status output"
fi
expect 0 "daemon start when running" "$FIDX" --socket "$S" daemon start
out_has "start reports the running daemon" "already running (pid"

# add, ls.
expect 0 "add --wait" "$FIDX" --socket "$S" add "$P" --wait
out_has "add names the root" "added $P"
expect 0 "add again" "$FIDX" add --socket "$S" "$P"
out_has "add again says so" "already a project: $P"
must_fail "add of a missing directory" "$FIDX" --socket "$S" add "$T/nope"
expect 0 "ls" "$FIDX" --socket "$S" ls
out_has "ls has a header" "STATE"
out_has "ls lists the project" "$P"
out_has "ls says it is watched" "watching"
expect 0 "ls --json" "$FIDX" --socket "$S" ls --json
py "ls --json parses" "o = json.loads(d)
assert o['ok'] and any(p['root'] == '$P' for p in o['projects']), o"

# Queries, and paths relative to where we stand.
cd "$P" || exit 1
expect 0 "query from the root" "$FIDX" --socket "$S" --root "$P" src/main
out_is "root-relative path from the root" "src/main.c"
cd "$P/src" || exit 1
expect 0 "query from a subdirectory" "$FIDX" --socket "$S" --root "$P" src/main
out_is "path under the cwd is shortened" "main.c"
expect 0 "query for a sibling directory" "$FIDX" --socket "$S" --root "$P" lib/x
out_is "path outside the cwd gets ../" "../lib/x.c"
expect 0 "--positions" "$FIDX" --socket "$S" --root "$P" --positions src/main
out_is "positions follow the shortened path" "$(printf '0,1,2,3\tmain.c')"
expect 0 "--positions with ../" "$FIDX" --socket "$S" --root "$P" -p lib/x
out_is "positions shift past ../" "$(printf '3,4,5,6,7\t../lib/x.c')"
expect 0 "--color=always" "$FIDX" --socket "$S" --root "$P" --color=always lib/x
out_is "colour highlights the match" "$(printf '../\033[1;32mlib/x\033[0m.c')"
expect 0 "--color=never" "$FIDX" --socket "$S" --root "$P" --color=never lib/x
out_is "no colour when told" "../lib/x.c"
expect 0 "outside git the root is the cwd" "$FIDX" --socket "$S" util
out_is "cwd as the root" "util.c"
expect 0 "words are joined into one query" "$FIDX" --socket "$S" --root "$P" lib x
out_is "two words, one query" "../lib/x.c"
# A file saved, then sync: the next query has it, with no wait of its own.
: > "$P/lib/saved_now.c"
expect 0 "sync" "$FIDX" --socket "$S" sync "$P"
out_has "sync names the root and generation" "$P: generation"
expect 0 "the file saved before sync is found" "$FIDX" --socket "$S" --root "$P" saved_now
out_is "found at once" "../lib/saved_now.c"
rm -f "$P/lib/saved_now.c"
expect 0 "sync after a delete" "$FIDX" --socket "$S" sync "$P"

# git: the status as git status -sb, and letters beside results.
G="$T/gitproj"
mkdir -p "$G/src"
printf 'one\n' >"$G/src/kept.c"
printf 'two\n' >"$G/src/edited.c"
git -C "$G" init -q -b main
git -C "$G" -c user.name=t -c user.email=t@e add .
git -C "$G" -c user.name=t -c user.email=t@e commit -qm 1
printf 'changed\n' >"$G/src/edited.c"
: >"$G/src/untracked.c"
expect 0 "fidx git" "$FIDX" --socket "$S" git "$G"
out_is "fidx git prints as git status -sb" "$(printf '## main\n M src/edited.c\n?? src/untracked.c')"
expect 0 "a query with --git" sh -c 'cd "$1" && "$2" --socket "$3" --git --color=never -m regex src/ | LC_ALL=C sort' sh "$G" "$FIDX" "$S"
out_is "--git puts git's letters before each path" "$(printf '   src/kept.c\n M src/edited.c\n?? src/untracked.c')"
expect 1 "fidx git outside a repository exits 1" "$FIDX" --socket "$S" git "$P"
expect 1 "the deleted file is gone" "$FIDX" --socket "$S" --root "$P" --mode exact saved_now
cd "$T" || exit 1
expect 0 "query from above the root" "$FIDX" --socket "$S" --root "$P" lib/x
out_is "path below the cwd gets the root's name" "proj/lib/x.c"

expect 0 "--json" "$FIDX" --socket "$S" --root "$P" --json src/main
py "--json is the daemon's answer" "o = json.loads(d)
assert o['ok'] and o['results'][0]['path'] == 'src/main.c', o
assert 'positions' in o['results'][0], o"
expect 0 "-0" "$FIDX" --socket "$S" --root "$P" -0 -n 3 c
py "-0 ends each path with NUL" "assert d.endswith(b'\0') and b'\n' not in d, d
assert len(d.split(b'\0')) == 4, d"
expect 0 "non-UTF-8 name" "$FIDX" --socket "$S" --root "$P" -0 badname
py "non-UTF-8 name prints its exact bytes" "assert d == b'proj/bad\xffname.c\0', d"
# Typos and visits.
expect 0 "a typo still finds the file" "$FIDX" --socket "$S" --root "$P" gudie.txt
out_is "gudie.txt finds guide.txt" "proj/docs/guide.txt"
expect 1 "--typos 0 turns typo matching off" "$FIDX" --socket "$S" --root "$P" --typos 0 gudie.txt
mkdir -p "$P/ext" && : >"$P/ext/util.c"
expect 0 "reindex for the new file" "$FIDX" --socket "$S" reindex "$P" --wait
expect 0 "two util.c, by bytes" "$FIDX" --socket "$S" --root "$P" util.c
out_is "ext/util.c first before any visit" "proj/ext/util.c
proj/src/util.c"
(cd "$P" && "$FIDX" --socket "$S" visit src/util.c) >"$T/out" 2>"$T/err"
if [ $? -eq 0 ]; then pass "visit src/util.c"; else fail "visit: $(cat "$T/err")"; fi
expect 0 "query after the visit" "$FIDX" --socket "$S" --root "$P" util.c
out_is "the visited util.c ranks first" "proj/src/util.c
proj/ext/util.c"
(cd "$P" && "$FIDX" --socket "$S" visit /etc/passwd) >"$T/out" 2>"$T/err"
if [ $? -eq 2 ] && grep -q 'is not under the project' "$T/err"; then
	pass "visit outside the project is refused"
else
	fail "visit outside the project: $(cat "$T/err")"
fi

expect 0 "--limit" "$FIDX" --socket "$S" --root "$P" --limit 1 c
py "--limit 1 prints one" "assert d.count(b'\n') == 1, d"

# Exit statuses.
expect 1 "no match exits 1" "$FIDX" --socket "$S" --root "$P" zzqqxxjj
expect 2 "bad --mode" "$FIDX" --socket "$S" --root "$P" --mode nope x
expect 2 "bad --limit" "$FIDX" --socket "$S" --root "$P" --limit 0 x
expect 2 "unknown option" "$FIDX" --socket "$S" --root "$P" --frob x
expect 2 "bad regex is the daemon's error" \
    "$FIDX" --socket "$S" --root "$P" --mode regex '('
err_has "the daemon's error code is shown" "(bad_query)"
expect 2 "--root that does not exist" "$FIDX" --socket "$S" --root "$T/nope" x
expect 0 "regex mode" "$FIDX" --socket "$S" --root "$P" --mode regex '^lib/.*\.c$'
out_is "regex finds the file" "proj/lib/x.c"
cd "$P" || exit 1
expect 0 "-- makes a subcommand's name a query" "$FIDX" --socket "$S" -- stats
out_is "a query, not the subcommand" "docs/stats.txt"

# The project root of a git work tree, from deep inside it.
cd "$R/sub/deep" || exit 1
expect 0 "query in a git repo" "$FIDX" --socket "$S" toplevel_marker
out_is "git top is the root" "../../toplevel_marker.c"
expect 0 "query in a git repo, own dir" "$FIDX" --socket "$S" inner
out_is "file beside us" "inner.c"
expect 0 "the repo became a project" "$FIDX" --socket "$S" ls
out_has "ls lists the git top" "$R"
expect 0 "reindex defaults to the project here" \
    "$FIDX" --socket "$S" reindex --wait
out_has "reindex names the git top" "reindexed $R"

# reindex, stats, rm.
: >"$P/zeta_new_file.c"
expect 0 "reindex DIR --wait" "$FIDX" --socket "$S" reindex "$P" --wait
out_has "reindex reports" "reindexed $P"
expect 0 "a new file after reindex" "$FIDX" --socket "$S" --root "$P" zeta_new
out_is "new file found" "../../../proj/zeta_new_file.c"
expect 0 "reindex --all --wait" "$FIDX" --socket "$S" reindex --all --wait
expect 0 "the cron line: reindex --all --quiet" "$FIDX" --socket "$S" reindex --all --quiet
check "--quiet prints nothing when all went well" test ! -s "$T/out" -a ! -s "$T/err"
expect 2 "reindex DIR and --all" "$FIDX" --socket "$S" reindex "$P" --all
expect 0 "stats" "$FIDX" --socket "$S" stats
for k in limits: usage: counters: memory:; do
	if grep -q "^$k" "$T/out"; then
		pass "stats shows $k"
	else
		fail "stats lacks $k"
	fi
done
if grep -q '^  ' "$T/out"; then
	pass "stats indents nested values"
else
	fail "stats has no nested values"
fi
expect 0 "stats --json" "$FIDX" --socket "$S" stats --json
py "stats --json parses" "o = json.loads(d)
assert all(k in o for k in ('limits', 'usage', 'counters', 'memory')), o"
expect 0 "rm" "$FIDX" --socket "$S" rm "$P"
out_is "rm says so" "removed $P"
expect 0 "ls after rm" "$FIDX" --socket "$S" ls
if awk -v p="$P" '$NF == p { f = 1 } END { exit !f }' "$T/out"; then
	fail "ls still lists $P"
else
	pass "rm took the project out"
fi
must_fail "rm of a non-project" "$FIDX" --socket "$S" rm "$P"

# Stop: the daemon exits cleanly (and leak-free under ASan).
expect 0 "daemon stop" "$FIDX" --socket "$S" daemon stop
out_has "stop says stopped" "stopped (pid"
wait "$DAEMON_PID"
drc=$?
DAEMON_PID=
if [ "$drc" -eq 0 ]; then
	pass "fidxd exited 0 after stop"
else
	fail "fidxd exited $drc after stop"
	tail -n 30 "$T/fidxd.log" | sed 's/^/    /'
fi
expect 1 "status when stopped" "$FIDX" --socket "$S" daemon status
out_is "status says not running" "not running"
expect 1 "stop when stopped" "$FIDX" --socket "$S" daemon stop
expect 1 "ls with no daemon: nothing to act on" "$FIDX" --socket "$S" ls
err_has "ls says the daemon is not running" "not running"
expect 0 "the cron line with no daemon: exit 0" "$FIDX" --socket "$S" reindex --all --quiet
check "and silent" test ! -s "$T/out" -a ! -s "$T/err"
check "and no daemon was started for it" test ! -e "$S"

# Auto-start on a fresh socket, through the fidxd beside fidx.
S2="$T/s2"
expect 1 "fresh socket: not running" "$FIDX" --socket "$S2" daemon status
expect 0 "daemon start" "$FIDX" --socket "$S2" daemon start
out_has "start says started" "started (pid"
expect 0 "status after start" "$FIDX" --socket "$S2" daemon status
out_has "status says running" "running, pid"
expect 0 "stop the started daemon" "$FIDX" --socket "$S2" daemon stop
expect 1 "status after stop" "$FIDX" --socket "$S2" daemon status
cd "$P" || exit 1
expect 0 "a query starts the daemon" "$FIDX" --socket "$S2" --root "$P" lib/x
out_is "auto-started query answers" "lib/x.c"
expect 0 "status after a query started it" "$FIDX" --socket "$S2" daemon status
expect 0 "stop it again" "$FIDX" --socket "$S2" daemon stop
cd "$T" || exit 1
# A socket fidxd cannot bind: the start fails and says so.
must_fail "start on an impossible socket" \
    "$FIDX" --socket "$T/no/such/dir/sock" daemon start
err_has "start failure is explained" "fidxd"

# Four clients start at once: the start-up lock lets exactly one run fidxd.
S3="$T/s3"
pids=
for n in 1 2 3 4; do
	"$FIDX" --socket "$S3" daemon start >"$T/race$n.out" \
	    2>"$T/race$n.err" &
	pids="$pids $!"
done
n=0
for pid in $pids; do
	n=$((n + 1))
	wait "$pid"
	r=$?
	if [ "$r" -eq 0 ]; then
		pass "racing start $n"
	else
		fail "racing start $n exited $r: $(cat "$T/race$n.err")"
	fi
done
started=$(cat "$T"/race*.out | grep -c '^started')
if [ "$started" -eq 1 ]; then
	pass "one racing start ran fidxd"
else
	fail "$started racing starts ran fidxd"
fi
if cat "$T"/race*.err | grep -q .; then
	fail "racing starts wrote errors: $(cat "$T"/race*.err)"
else
	pass "racing starts were quiet"
fi
expect 0 "stop after the race" "$FIDX" --socket "$S3" daemon stop

# An auto-started daemon holds none of its caller's descriptors: the
# reader of a pipe on fd 3 sees EOF once fidx exits (bats keeps fd 3).
S4="$T/s4"
cd "$P" || exit 1
run timeout $((10 * TIMEOUT_MULTIPLIER)) sh -c \
    '{ "$1" --socket "$2" --root "$3" -n1 lib/x; } 3>&1 | cat' \
    sh "$FIDX" "$S4" "$P"
if [ "$rc" -eq 0 ] && [ "$(cat "$T/out")" = "lib/x.c" ]; then
	pass "a pipe on fd 3 reaches EOF after an auto-start"
else
	fail "auto-start with a pipe on fd 3: exit $rc (124: the daemon held it)"
fi
if [ -r "/proc/$(cat "$S4.pid")/fd" ]; then
	n=$(ls -l "/proc/$(cat "$S4.pid")/fd" | grep -c 'pipe:')
	if [ "$n" -eq 0 ]; then
		pass "the daemon holds no pipe"
	else
		fail "the daemon holds $n pipes"
	fi
fi

# Its socket file deleted, the daemon binds it again; meanwhile the CLI
# waits for it (bounded), and hints name the socket in use.
rm -f "$S4"
expect 0 "a query after the socket was deleted" "$FIDX" --socket "$S4" --root "$P" -n1 lib/x
out_is "the daemon answers on its socket again" "lib/x.c"
wait_until test -S "$S4"
if [ -S "$S4" ]; then pass "the socket file is back"; else fail "no socket file"; fi
expect 0 "stats counts the rebind" "$FIDX" --socket "$S4" stats --json
py "socket_rebinds is 1" "o = json.loads(d)
assert o['counters']['socket_rebinds'] == 1, o['counters']"
must_fail "rm of a non-project" "$FIDX" --socket "$S4" rm "$T"
err_has "the daemon's hint names the socket" "fidx --socket $S4 ls"
expect 2 "a second fidxd on the same socket" "$FIDXD" --socket "$S4"
err_has "already running names --socket" "\`fidx --socket $S4 daemon stop\`"
# Replaced by a file that is not ours: fidxd leaves it; stop goes by pid.
pid4=$(cat "$S4.pid")
rm -f "$S4" && : >"$S4"
expect 0 "stop a daemon whose socket is not its own" "$FIDX" --socket "$S4" daemon stop
out_has "stopped by its pid" "stopped (pid $pid4"
expect 1 "status after that stop" "$FIDX" --socket "$S4" daemon status
expect 1 "ls when stopped: nothing to act on" "$FIDX" --socket "$S4" ls
err_has "the CLI's hint names the socket" "\`fidx --socket $S4 daemon start\`"
rm -f "$S4"
# The socket's whole directory deleted (pid file too): the next query
# starts a new daemon, and the old one, unreachable, stops on its own.
mkdir -m 700 "$T/rt2"
expect 0 "a query on the default socket" env XDG_RUNTIME_DIR="$T/rt2" "$FIDX" --root "$P" -n1 lib/x
old_pid=$(cat "$T/rt2/fidx/sock.pid")
rm -rf "$T/rt2/fidx"
expect 0 "a query after the socket's directory was deleted" env XDG_RUNTIME_DIR="$T/rt2" "$FIDX" --root "$P" -n1 lib/x
wait_until not kill -0 "$old_pid" 2>/dev/null
if kill -0 "$old_pid" 2>/dev/null; then
	fail "the orphaned daemon $old_pid still runs"
	kill "$old_pid"
else
	pass "the orphaned daemon stopped once another served its path"
fi
# It stopped itself cleanly: said why in the log it shares, and no
# sanitizer report there (a crash would also have "stopped" it).
check "the orphaned daemon said why it stopped" grep -q "another process serves" "$XDG_STATE_HOME/fidx/fidxd.log"
check "and crashed on nothing" not grep -q -e AddressSanitizer -e "runtime error" "$XDG_STATE_HOME/fidx/fidxd.log"
expect 0 "stop the new default-socket daemon" env XDG_RUNTIME_DIR="$T/rt2" "$FIDX" daemon stop
# FIDX_SOCKET comes before XDG_RUNTIME_DIR, for the daemon it starts too.
expect 0 "a query on \$FIDX_SOCKET" env FIDX_SOCKET="$T/rt3/s" XDG_RUNTIME_DIR="$T/rt2" "$FIDX" --root "$P" -n1 lib/x
check "the daemon listens on \$FIDX_SOCKET" test -S "$T/rt3/s"
check "and not on the XDG default" test ! -e "$T/rt2/fidx/sock"
expect 0 "stop the \$FIDX_SOCKET daemon" env FIDX_SOCKET="$T/rt3/s" "$FIDX" daemon stop
cd "$T" || exit 1

# At the client cap the CLI shows the daemon's refusal, not EPIPE: the
# refusal is often written and the connection closed before the request
# is sent. One client holds the only slot until its fifo closes.
S5="$T/s5"
"$FIDXD" --foreground --socket "$S5" --max-clients 1 >"$T/fidxd5.log" 2>&1 &
PID5=$!
wait_running "$S5" || fail "fidxd --max-clients 1 did not answer"
mkfifo "$T/hold"
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"{\"op\":\"ping\"}\n")
s.recv(4096)
print("held", flush=True)
sys.stdin.read()' "$S5" <"$T/hold" >"$T/held" &
HOLDER=$!
exec 7>"$T/hold"
wait_until grep -q held "$T/held"
refused=0
for n in 1 2 3 4 5 6 7 8 9 10; do
	run "$FIDX" --socket "$S5" ls
	if [ "$rc" -eq 2 ] && grep -q 'too many clients' "$T/err" &&
	    ! grep -q 'Broken pipe' "$T/err"; then
		refused=$((refused + 1))
	fi
done
if [ "$refused" -eq 10 ]; then
	pass "at the client cap, the daemon's refusal is shown (10 of 10)"
else
	fail "at the client cap: 'too many clients' $refused times of 10"
fi
exec 7>&-
wait "$HOLDER"
kill "$PID5" 2>/dev/null
wait "$PID5"

# reindex --wait (and add --wait) say what the walk did: capped is
# warned about (exit 0: the index works), a deleted root fails (exit 2),
# and a root gone from the disk is still the daemon's to judge.
S6="$T/s6"
"$FIDXD" --foreground --socket "$S6" --max-files 3 >"$T/fidxd6.log" 2>&1 &
PID6=$!
wait_running "$S6" || fail "fidxd --max-files 3 did not answer"
CP="$T/capme"
mkdir -p "$CP"
for n in 1 2 3 4 5; do : >"$CP/f$n.txt"; done
expect 0 "add --wait of a tree over the file cap" "$FIDX" --socket "$S6" add "$CP" --wait
err_has "add --wait warns that the index is partial" "the index of $CP is partial"
expect 0 "reindex --wait of a capped project" "$FIDX" --socket "$S6" reindex "$CP" --wait
out_has "reindex --wait names the state" "3 files, generation 2 (capped)"
err_has "reindex --wait warns that it is partial" "the index of $CP is partial"
GP="$T/goner"
mkdir -p "$GP/sub"
: >"$GP/sub/a.txt"
expect 0 "add a root that will go" "$FIDX" --socket "$S6" add "$GP" --wait
rm -rf "$GP"
expect 2 "reindex --wait of a deleted root" "$FIDX" --socket "$S6" reindex "$GP" --wait
err_has "reindex --wait says it is gone" "$GP is gone"
if grep -q '^reindexed' "$T/out"; then fail "a gone root was reported reindexed"; else pass "a gone root is not reported reindexed"; fi
expect 2 "reindex --all --wait with a gone project" "$FIDX" --socket "$S6" reindex --all --wait
err_has "--all names the gone one" "$GP is gone"
expect 2 "a query in a gone project" "$FIDX" --socket "$S6" --root "$GP" a.txt
err_has "the query says it is gone" "$GP is gone"
expect 2 "a query under a gone root, relative" sh -c 'cd "$1" && "$2" --socket "$3" --root goner/sub/.. a.txt' sh "$T" "$FIDX" "$S6"
err_has "the daemon judged the gone root" "$GP is gone"
expect 0 "rm of the gone root" "$FIDX" --socket "$S6" rm "$GP"
must_fail "reindex of a never-known missing root" "$FIDX" --socket "$S6" reindex "$T/never"
err_has "the daemon judges it" "(bad_root)"
kill "$PID6" 2>/dev/null
wait "$PID6"

# Answers this daemon cannot give as root here (an unreadable root) and
# the named cap: an independent server with canned answers.
fake_daemon() {
	# Removed first: the wait below must not see the last one's "up".
	rm -f "$T/fake.up"
	python3 -c 'import socket, sys, os, json
def json_echo(line):
    return json.dumps({"ok": True, "results": [], "state": "ready",
                       "echo": json.loads(line)}).encode()
l = socket.socket(socket.AF_UNIX)
l.bind(sys.argv[1])
l.listen(8)
print("up", flush=True)
while True:
    c, _ = l.accept()
    f = c.makefile("rb")
    for line in f:
        if sys.argv[2] == "echo":
            # The request back, inside an answer: what the CLI sent.
            c.sendall(json_echo(line) + b"\n")
        else:
            c.sendall(sys.argv[2].encode() + b"\n")
    c.close()' "$1" "$2" >"$T/fake.up" 2>"$T/fake.err" &
	FAKE=$!
	wait_until grep -q up "$T/fake.up" 2>/dev/null
}
fake_daemon "$T/fake1" '{"ok":true,"root":"/w","state":"error","message":"cannot open /w: Permission denied","files":1,"generation":2,"capped":false,"reindexing":1}'
expect 2 "reindex --wait of a root whose walk failed" "$FIDX" --socket "$T/fake1" reindex / --wait
err_has "the failure and its reason are shown" "indexing / failed: cannot open /w: Permission denied"
kill "$FAKE"; wait "$FAKE" 2>/dev/null
fake_daemon "$T/fake2" '{"ok":true,"root":"/","state":"capped","files":100,"generation":2,"capped":true,"cap":"bytes","reindexing":1}'
expect 0 "reindex --wait of a project at the byte cap" "$FIDX" --socket "$T/fake2" reindex / --wait
err_has "the cap hit is named" "stopped at the bytes cap (fidxd --max-index-bytes raises it)"
kill "$FAKE"; wait "$FAKE" 2>/dev/null
fake_daemon "$T/fake5" '{"ok":true,"root":"/","state":"ready","message":"the rebuild was cut by a cap; the complete index is kept","files":800,"generation":1,"capped":false,"kept_old":true,"reindexing":1}'
expect 0 "reindex --wait that kept the live index" "$FIDX" --socket "$T/fake5" reindex / --wait
err_has "its message is shown" "/: the rebuild was cut by a cap; the complete index is kept"
kill "$FAKE"; wait "$FAKE" 2>/dev/null

# --timeout (seconds) becomes "timeout_ms"; a timeout's hint names it.
fake_daemon "$T/fake3" echo
expect 1 "--timeout 2.5 on a query (no results)" "$FIDX" --socket "$T/fake3" --root "$P" --json --timeout 2.5 x
py "the query carries timeout_ms 2500" "o = json.loads(d)
assert o['echo']['timeout_ms'] == 2500, o"
expect 0 "add --wait --timeout 0.0001 --hidden --exclude" "$FIDX" --socket "$T/fake3" add "$P" --wait --timeout 0.0001 --hidden --exclude '^build/' --json
py "add carries timeout_ms (rounded up), hidden, exclude" "o = json.loads(d)['echo']
assert o['timeout_ms'] == 1 and o['hidden'] is True and o['exclude'] == '^build/', o"
expect 0 "add sends no hidden or exclude unless given" "$FIDX" --socket "$T/fake3" add "$P" --json
py "no hidden, no exclude, no timeout_ms" "o = json.loads(d)['echo']
assert 'hidden' not in o and 'exclude' not in o and 'timeout_ms' not in o, o"
expect 0 "reindex --wait --timeout 1" "$FIDX" --socket "$T/fake3" reindex "$P" --wait --timeout 1 --json
py "reindex carries timeout_ms" "o = json.loads(d)['echo']
assert o['timeout_ms'] == 1000, o"
expect 2 "--timeout 0" "$FIDX" --socket "$T/fake3" --timeout 0 x
err_has "--timeout says what it wants" "--timeout must be seconds"
expect 2 "--timeout inf" "$FIDX" --socket "$T/fake3" --timeout inf x
expect 2 "--timeout over an hour" "$FIDX" --socket "$T/fake3" --timeout 3601 x
expect 2 "ls takes no --timeout" "$FIDX" --socket "$T/fake3" ls --timeout 1
kill "$FAKE"; wait "$FAKE" 2>/dev/null
fake_daemon "$T/fake4" '{"ok":false,"error":{"code":"timeout","message":"the index of /x was not ready in time; it is still being built (try again, or raise \"timeout_ms\")"}}'
expect 2 "a timeout answer" "$FIDX" --socket "$T/fake4" --root "$P" x
err_has "the timeout hint names --timeout" "(try again, or raise --timeout SECONDS) (timeout)"
kill "$FAKE"; wait "$FAKE" 2>/dev/null

# The real daemon applies add --hidden and --exclude.
S7="$T/s7"
HP="$T/hid"
mkdir -p "$HP/.conf" "$HP/build" "$HP/src"
: >"$HP/.conf/dotted.txt"
: >"$HP/build/made.txt"
: >"$HP/src/kept.txt"
expect 0 "add --hidden --exclude" "$FIDX" --socket "$S7" add "$HP" --wait --hidden --exclude '^build(/|$)'
expect 0 "query a project added with --hidden --exclude" "$FIDX" --socket "$S7" --root "$HP" -n 10 --mode regex txt
py "dot-files listed, build/ left out" "assert sorted(d.decode().split()) == ['hid/.conf/dotted.txt', 'hid/src/kept.txt'], d"
must_fail "add --exclude with a bad regex" "$FIDX" --socket "$S7" add "$T/s7dir-none" --exclude '('
expect 0 "stop the daemon of --hidden" "$FIDX" --socket "$S7" daemon stop

# NO_COLOR (no-color.org): set and not empty, no colour on a terminal
# unless --color=always.
tty_run() {
	python3 -c 'import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        b = os.read(fd, 4096)
    except OSError:
        break
    if not b:
        break
    out += b
_, st = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(st))' "$@"
}
expect 0 "filter on a terminal" tty_run sh -c '"$1" filter mkfl <"$2"' sh "$FIDX" "$T/cands"
py "a terminal gets colour" "assert b'\x1b[' in d, d"
expect 0 "NO_COLOR=1 on a terminal" tty_run env NO_COLOR=1 sh -c '"$1" filter mkfl <"$2"' sh "$FIDX" "$T/cands"
py "NO_COLOR turns colour off" "assert b'\x1b' not in d and b'Makefile' in d, d"
expect 0 "NO_COLOR= (empty) on a terminal" tty_run env NO_COLOR= sh -c '"$1" filter mkfl <"$2"' sh "$FIDX" "$T/cands"
py "an empty NO_COLOR does not" "assert b'\x1b[' in d, d"
expect 0 "NO_COLOR=1 --color=always" tty_run env NO_COLOR=1 sh -c '"$1" filter --color=always mkfl <"$2"' sh "$FIDX" "$T/cands"
py "--color=always wins over NO_COLOR" "assert b'\x1b[' in d, d"
expect 0 "NO_COLOR=1 --color=auto" tty_run env NO_COLOR=1 sh -c '"$1" filter --color=auto mkfl <"$2"' sh "$FIDX" "$T/cands"
py "--color=auto honours NO_COLOR" "assert b'\x1b' not in d, d"

# One prefix for every message of the CLI, getopt's included.
for args in "filter --frob x" "add --frob" "--frob x" "ls --frob" "filter -n nope x" "filter -m nope x"; do
	# shellcheck disable=SC2086
	run "$FIDX" --socket "$T/none" $args </dev/null
	if [ "$rc" -eq 2 ] && [ -s "$T/err" ] && ! grep -qv '^fidx: ' "$T/err"; then
		pass "fidx $args: every stderr line starts with 'fidx: '"
	else
		fail "fidx $args: exit $rc, a line without 'fidx: '"
	fi
done

# A query that is not UTF-8 (a Latin-1 name) reaches the daemon as q_b64.
S8="$T/s8"
LP="$T/latin"
mkdir -p "$LP"
: >"$LP/$(printf 'caf\351.txt')"
: >"$LP/cafe.txt"
expect 0 "a Latin-1 query" "$FIDX" --socket "$S8" --root "$LP" --mode exact -0 "$(printf 'caf\351')"
py "it finds the Latin-1 name, exact bytes" "assert d == b'latin/caf\xe9.txt\0', d"
expect 0 "stop the daemon of the Latin-1 query" "$FIDX" --socket "$S8" daemon stop

# fidx filter's numbers take fidxd's K/M/G suffixes (common/size.c).
expect 0 "filter --max-input-bytes 1K" sh -c '"$1" filter --max-input-bytes 1K --max-line-bytes 4k --max-lines 1M mkfl <"$2"' sh "$FIDX" "$T/cands"
out_is "filter with suffixed sizes" "a/Makefile"
python3 -c 'print("x" * 2000 + "\nab")' >"$T/longline"
expect 0 "filter --max-line-bytes 1K skips a 2000-byte line" sh -c '"$1" filter --max-line-bytes 1K ab <"$2"' sh "$FIDX" "$T/longline"
err_has "it says what to raise" "skipped 1 lines longer than 1024 bytes (raise --max-line-bytes)"
expect 2 "filter --max-line-bytes 64K is over its ceiling" sh -c '"$1" filter --max-line-bytes 64K ab <"$2"' sh "$FIDX" "$T/longline"
err_has "the ceiling is named" "from 1 to 65535"
python3 -c 'print("x" * 70000 + "\nab")' >"$T/longline"
expect 0 "filter at the line ceiling" sh -c '"$1" filter --max-line-bytes 65535 ab <"$2"' sh "$FIDX" "$T/longline"
err_has "at the ceiling it does not say raise" "the most --max-line-bytes allows"
expect 2 "filter --max-lines 1.5K" sh -c '"$1" filter --max-lines 1.5K ab <"$2"' sh "$FIDX" "$T/longline"
expect 2 "fidxd --max-files 1T" "$FIDXD" --foreground --socket "$T/s9" --max-files 1T
err_has "fidxd names its syntax" "K, M or G multiplies by 1024"
# The worker flags at and past their ends (0 is a setting for both).
expect 2 "fidxd --worker-nice 20" "$FIDXD" --foreground --socket "$T/s9" --worker-nice 20
err_has "it names the range" "from 0 to 19"
expect 2 "fidxd --max-queued-queries 0" "$FIDXD" --foreground --socket "$T/s9" --max-queued-queries 0
expect 2 "fidxd --max-queued-queries 65537" "$FIDXD" --foreground --socket "$T/s9" --max-queued-queries 65537
expect 2 "fidxd --inline-max-files -1" "$FIDXD" --foreground --socket "$T/s9" --inline-max-files -1

# make run passes RUN_QUERY through the environment: a quote in it is a
# query character, not shell syntax. On a private runtime directory.
if [ -f "$REPO/Makefile" ] && [ -x "$REPO/$FIDX_BUILD/fidx" ]; then
	mkdir -m 700 "$T/rt"
	expect 0 "make run RUN_QUERY=\"'ops\"" env XDG_RUNTIME_DIR="$T/rt" \
	    make -s --no-print-directory -C "$REPO" run BUILD="$FIDX_BUILD" RUN_QUERY="'ops"
	out_has "make run shows the query's best file" "indexer/"
	expect 0 "stop the daemon of make run" env XDG_RUNTIME_DIR="$T/rt" "$FIDX" daemon stop
fi

# Issue 10's CLI leftovers, on a socket whose path holds a space and a
# quote: hints quote it for the shell (and pasted, they work); rm of a
# root that is no project exits 1; -n 0 is refused by fidx and fidx
# filter alike; `fidx visit` of a name that is not UTF-8 sends path_b64;
# a repository owned by another user is warned about, naming the line
# that trusts it. Each hint is run as printed, by sh.
SQ="$T/s p'q"
# hint_cmd PATTERN: the first `...` of stderr that starts with PATTERN.
hint_cmd() {
	sed -n "s/.*\`\($1[^\`]*\)\`.*/\1/p" "$T/err" | head -n 1
}
expect 1 "quoted socket: ls with no daemon is nothing to act on" "$FIDX" --socket "$SQ" ls
err_has "the hint quotes the socket for the shell" "\`fidx --socket '$T/s p'\\''q' daemon start\`"
h=$(hint_cmd "fidx --socket")
# Its HOME trusts no repository (see the ownership checks below).
mkdir -p "$T/home-d"
expect 0 "the start hint, pasted, starts fidxd on that socket" env HOME="$T/home-d" sh -c "PATH=\"\$1:\$PATH\"; $h" sh "${FIDX%/fidx}"
expect 0 "it runs on the quoted socket" "$FIDX" --socket "$SQ" daemon status
expect 1 "rm of a root that is no project exits 1" "$FIDX" --socket "$SQ" rm "$P"
err_has "rm says it is no project" "is not a project"
err_has "the daemon's hint is quoted too" "fidx --socket '$T/s p'\\''q' ls"
expect 1 "rm of a root gone from the disk, no project, exits 1" "$FIDX" --socket "$SQ" rm "$T/never/was"
expect 1 "rm --json of a root that is no project exits 1" "$FIDX" --socket "$SQ" rm --json "$P"
expect 2 "rm with a bad command line is still 2" "$FIDX" --socket "$SQ" rm
expect 2 "a second fidxd on the quoted socket" "$FIDXD" --socket "$SQ"
h=$(hint_cmd "fidx --socket")
case $h in
*"'$T/s p'\\''q'"*) pass "fidxd's hint quotes the socket" ;;
*) fail "fidxd's hint: '$h'" ;;
esac
# -n 0: refused by both, in the same words.
expect 2 "fidx -n 0 is refused" "$FIDX" --socket "$SQ" --root "$P" -n 0 x
err_has "fidx says why" "--limit must be 1 or more, not 0"
expect 2 "fidx filter -n 0 is refused too" sh -c '"$1" filter -n 0 mkfl <"$2"' sh "$FIDX" "$T/cands"
err_has "fidx filter says the same" "--limit must be 1 or more, not 0"
expect 0 "fidx filter -n 1 is fine" sh -c '"$1" filter -n 1 mkfl <"$2"' sh "$FIDX" "$T/cands"
# visit: a Latin-1 name goes as path_b64, and counts.
expect 0 "visit of a name that is not UTF-8" sh -c 'cd "$1" && "$2" --socket "$3" visit --json "$(printf "bad\377name.c")"' sh "$P" "$FIDX" "$SQ"
py "the daemon took its exact bytes" "o = json.loads(d)
import base64
assert o['ok'] and base64.b64decode(o['path_b64']) == b'bad\xffname.c', o
assert o['frecency'] > 0, o"
expect 0 "a query for it after the visit" "$FIDX" --socket "$SQ" --root "$P" -0 badname
py "the visited Latin-1 file is found" "assert d == b'proj/bad\xffname.c\0', d"
run python3 - "$SQ" "$P" <<'PYEOF'
import base64, json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
def req(o):
    f.write(json.dumps(o).encode() + b"\n")
    f.flush()
    return json.loads(f.readline())
root = sys.argv[2]
b = lambda x: base64.b64encode(x).decode()
r = req({"op": "visit", "root": root, "path_b64": b(b"docs/./guide.txt")})
assert r["ok"] and r["path"] == "docs/guide.txt" and "path_b64" not in r, r
for bad, why in ((dict(path="README.md", path_b64=b(b"README.md")), "not both"),
                 (dict(path_b64="AB=="), "not strict base64"),
                 (dict(path_b64="Zm9v!A=="), "not strict base64"),
                 (dict(path_b64=b(b"a\0b")), "NUL"),
                 (dict(path_b64=b(b"../x")), "leaves the root"),
                 (dict(path_b64=b(b"x" * 4097)), "longer than 4096 bytes"),
                 (dict(path_b64=b(b"x" * 4099)), "decodes to more than 4096"),
                 (dict(path_b64=7), "must be a string")):
    r = req(dict(op="visit", root=root, **bad))
    assert not r["ok"] and r["error"]["code"] == "bad_request" and \
        why in r["error"]["message"], (bad, r)
PYEOF
if [ "$rc" -eq 0 ]; then pass "visit path_b64: cleaned, exclusive, strict, no NUL"; else fail "visit path_b64 over the socket"; fi
# A repository owned by another user (uid 65534): git refuses it, and so
# does libgit2, with "not found"; the CLI says so and what root it uses.
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: a repository owned by another user (chown needs root)"
else
	NM="$T/not mine"
	mkdir -p "$NM/sub" "$T/home-nm"
	git -C "$NM" init -q
	echo 'ignored.txt' >"$NM/.gitignore"
	: >"$NM/sub/ignored.txt"
	: >"$NM/sub/kept.txt"
	chown -R 65534:65534 "$NM"
	expect 0 "a query inside a repository owned by another user" sh -c 'cd "$1/sub" && HOME="$2" "$3" --socket "$4" kept' sh "$NM" "$T/home-nm" "$FIDX" "$SQ"
	out_is "it answers from the current directory" "kept.txt"
	err_has "it warns, as git does" "the git repository $NM is owned by another user"
	err_has "it says which root it uses" "the project root is the current directory, $NM/sub"
	err_has "it names the line that trusts it, quoted" "git config --global --add safe.directory '$NM';"
	h=$(sed -n "s/.*(to trust it: \(git config [^;]*\);.*/\1/p" "$T/err")
	expect 0 "the line, pasted, trusts it" env HOME="$T/home-nm" sh -c "$h"
	expect 0 "a query once it is trusted" sh -c 'cd "$1/sub" && HOME="$2" "$3" --socket "$4" kept' sh "$NM" "$T/home-nm" "$FIDX" "$SQ"
	if [ -s "$T/err" ]; then fail "a warning after trusting it"; else pass "no warning once trusted"; fi
	out_is "paths are relative to the current directory" "kept.txt"
	expect 0 "ls after both" "$FIDX" --socket "$SQ" ls
	# fidxd runs with its own HOME ($T/home-d), which trusts nothing.
	out_has "fidxd's note quotes the directory as well" "safe.directory '$NM')"
	if awk -v p="$NM" 'index($0, "  " p "  ") || substr($0, length($0) - length(p)) == " " p { f = 1 } END { exit !f }' "$T/out"; then
		pass "the trusted work tree is the project root"
	else
		fail "ls does not list $NM as a root"
	fi
fi
expect 0 "stop the quoted socket's daemon" "$FIDX" --socket "$SQ" daemon stop
expect 1 "rm with no daemon is nothing to act on" "$FIDX" --socket "$SQ" rm "$P"

summary
