#!/bin/sh
# tests/pick.sh - `fidx pick` in a real terminal: a private tmux server
# (its own socket in $T, killed on exit) runs the picker against a real
# fidxd on a temp socket, keys go in with send-keys and the screen comes
# back with capture-pane. tests/lib.sh has the helpers and the rules:
# every wait polls the screen or a file with a deadline, never a bare
# sleep; a sanitizer report in the picker's stderr is a failure.
#
# Each picker runs in its own tmux session through $T/picker.sh, which
# records `stty -a` before and after, the picker's pid, its stdout,
# stderr and exit status, then keeps the pane open for a last capture.

. "$(dirname "$0")/lib.sh"
FIDX=$(cd "$FIDX_BUILD" && pwd -P)/fidx
FIDXD=$(cd "$FIDX_BUILD" && pwd -P)/fidxd
for b in "$FIDX" "$FIDXD"; do
	[ -x "$b" ] || { echo "FAIL: $b is not built (run make)"; exit 1; }
done
command -v tmux >/dev/null 2>&1 || { echo "FAIL: tmux is not installed"; exit 1; }

unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_COMMON_DIR NO_COLOR
GIT_CEILING_DIRECTORIES=$T
XDG_STATE_HOME=$T/state
export GIT_CEILING_DIRECTORIES XDG_STATE_HOME
S="$T/sock"
S2="$T/sock2"
TM="tmux -S $T/tmux.sock -f /dev/null"
DAEMON_PID=
DAEMON2_PID=
FAKE_PID=
SLOW_PID=

on_exit() {
	$TM kill-server 2>/dev/null
	for pid in "$DAEMON_PID" "$DAEMON2_PID" "$FAKE_PID" "$SLOW_PID"; do
		[ -n "$pid" ] || continue
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
}

# The fixture: a few named files and 40 more, so that a list can be
# longer than the screen.
P="$T/proj"
mkdir -p "$P/src" "$P/lib" "$P/docs" "$P/many"
for f in src/main.c src/util.c lib/x.c docs/guide.txt README.md Makefile; do
	: >"$P/$f"
done
i=10
while [ "$i" -lt 50 ]; do
	: >"$P/many/f$i.txt"
	i=$((i + 1))
done
NFILES=46

cat >"$T/picker.sh" <<EOF
#!/bin/sh
# picker.sh NAME SOCKET ARGS...: one picker in this pane, recorded.
name=\$1 sock=\$2
shift 2
cd "\${PICK_CWD:-$P}" || exit 1
printf 'MARKER-ABOVE\n'
stty -a >"$T/\$name.stty0"
"$FIDX" --socket "\$sock" pick "\$@" >"$T/\$name.out" 2>"$T/\$name.err" &
echo \$! >"$T/\$name.pid"
wait \$!
rc=\$?
# stty first: the status file is what the suite waits for.
stty -a >"$T/\$name.stty1"
echo \$rc >"$T/\$name.rc"
exec sleep 600
EOF

# start NAME SOCKET ARGS...: a 100x30 session NAME running the picker,
# in $PICK_CWD if set, else in $P.
start() {
	_name=$1
	rm -f "$T/$_name".*
	$TM new-session -d -s "$_name" -x 100 -y 30 \
	    -e "PICK_CWD=${PICK_CWD:-}" sh "$T/picker.sh" "$@"
}

screen() {
	$TM capture-pane -p -t "$1" 2>/dev/null
}

# has NAME TEXT: the screen of NAME shows TEXT (fixed string).
has() {
	screen "$1" | grep -qF -- "$2"
}

# row NAME N: line N (1-based) of NAME's screen.
row() {
	screen "$1" | sed -n "${2}p"
}

# count NAME: the result lines on NAME's screen (cursor, mark, a path).
count() {
	screen "$1" | grep -c '^[ >][ *][a-zA-Z]'
}

count_is() {
	[ "$(count "$1")" -eq "$2" ]
}

# cursor_at NAME X: the terminal's cursor is in column X (from 0).
cursor_at() {
	[ "$($TM display-message -p -t "$1" '#{cursor_x}')" = "$2" ]
}

row_is() {
	[ "$(row "$1" "$2")" = "$3" ]
}

# waits DESC CMD...: wait_until CMD, a failed check if it never holds.
waits() {
	_desc=$1
	shift
	if wait_until "$@"; then
		return 0
	fi
	fail "$_desc (screen below)"
	screen "$_name" | sed 's/^/    | /'
	return 1
}

# done_with NAME WANT DESC: the picker exited with WANT, its stderr has
# no sanitizer report and the terminal's settings are as before.
done_with() {
	if ! wait_until test -s "$T/$1.rc"; then
		fail "$3: the picker did not exit"
		return 1
	fi
	_rc=$(cat "$T/$1.rc")
	if grep -q -e 'Sanitizer' -e 'runtime error:' "$T/$1.err"; then
		fail "$3: sanitizer report"
		sed 's/^/    /' "$T/$1.err" | head -n 40
	elif [ "$_rc" != "$2" ]; then
		fail "$3: exit $_rc, wanted $2"
		sed 's/^/    /' "$T/$1.err" | head -n 10
	else
		pass "$3"
	fi
	# The window's size is tmux's, not a setting the picker owns.
	for _f in stty0 stty1; do
		sed 's/rows [0-9]*; columns [0-9]*;//' "$T/$1.$_f" >"$T/$1.$_f.n"
	done
	if cmp -s "$T/$1.stty0.n" "$T/$1.stty1.n"; then
		pass "$3: stty -a as before"
	else
		fail "$3: stty -a changed"
		diff "$T/$1.stty0" "$T/$1.stty1" | head -n 10
	fi
}

# Every query scored on the query worker, as a big project's is: the
# answers come back from the worker, not the loop. (This tree is too
# small for a burst to catch one still running: each takes well under a
# millisecond, so queries_cancelled stays 0 here.)
"$FIDXD" --foreground --socket "$S" --inline-max-files 0 >"$T/fidxd.log" 2>&1 &
DAEMON_PID=$!
wait_until "$FIDX" --socket "$S" daemon status >/dev/null 2>&1 ||
    { echo "FAIL: fidxd did not answer on $S"; exit 1; }
"$FIDX" --socket "$S" add --wait "$P" >/dev/null 2>&1 ||
    { echo "FAIL: add $P"; exit 1; }

# Options that never reach the terminal.
expect 0 "pick --help" "$FIDX" pick --help
grep -qF -- "--height" "$T/out" && pass "pick --help names --height" ||
    fail "pick --help names --height"
expect 2 "pick --height 0 is refused" "$FIDX" --socket "$S" pick --height 0
expect 2 "pick --height 101% is refused" "$FIDX" --socket "$S" pick --height 101%
expect 2 "pick with an operand is refused" "$FIDX" --socket "$S" pick foo

: >"$T/out"
: >"$T/err"

# Typing narrows, matches are highlighted, Ctrl-U clears, Esc is 130.
start a "$S"
waits "the list fills in" has a "$NFILES/$NFILES  ready" &&
    pass "the header shows matched/total and the state"
$TM send-keys -t a m k f l
if waits "typing narrows to Makefile" has a "1/$NFILES"; then
	row_is a 1 "> mkfl" && row_is a 3 "> Makefile" &&
	    row_is a 4 "" && pass "typing narrows the list" ||
	    fail "typing narrows the list: $(screen a | head -n 4)"
fi
esc=$(printf '\033')
if $TM capture-pane -e -p -t a | sed -n 3p | grep -q "$esc\[[0-9;]*32m"; then
	pass "matched characters are highlighted"
else
	fail "no highlight escape on the Makefile line"
	$TM capture-pane -e -p -t a | sed -n 3p | od -c | head -n 5
fi
$TM send-keys -t a C-u
waits "Ctrl-U clears the query" has a "$NFILES/$NFILES" &&
    row_is a 1 ">" && pass "Ctrl-U clears the query"
# A typo match is shown and counted apart: `matched` counts clean ones.
$TM send-keys -t a g u d i e
if waits "a typo finds docs/guide.txt" has a "docs/guide.txt"; then
	has a "0/$NFILES +1 typo" &&
	    pass "the header counts a typo match apart" ||
	    fail "the header counts a typo match apart: $(row a 2)"
fi
$TM send-keys -t a C-u
waits "Ctrl-U clears the typo query" has a "$NFILES/$NFILES"
$TM send-keys -t a x BSpace
waits "Backspace undoes a key" has a "$NFILES/$NFILES" &&
    row_is a 1 ">" && pass "Backspace deletes"
# Editing inside the query: Left twice, a key, Home, Delete, End.
$TM send-keys -t a m f l
waits "mfl typed" row_is a 1 "> mfl"
$TM send-keys -t a Left Left k
waits "a key inserted at the cursor" row_is a 1 "> mkfl" &&
    waits "mkfl narrows" row_is a 3 "> Makefile" &&
    pass "Left moves the cursor; typing inserts there"
$TM send-keys -t a Home Delete End s
waits "Home, Delete, End" row_is a 1 "> kfls" &&
    pass "Home, Delete and End edit the query"
$TM send-keys -t a Left
waits "the terminal's cursor follows" cursor_at a 5 &&
    pass "the terminal's cursor is where the query's is"
$TM send-keys -t a End
$TM send-keys -t a C-u
waits "Ctrl-U at the end clears" row_is a 1 ">"
$TM send-keys -t a Escape
done_with a 130 "Esc exits 130"
[ ! -s "$T/a.out" ] && pass "Esc prints nothing" ||
    fail "Esc printed: $(cat "$T/a.out")"
waits "the screen is given back" has a "MARKER-ABOVE" &&
    pass "the full screen is given back on exit"

# Tab twice, then Enter: the two paths marked, in order, one a line.
start b "$S" --query src/
waits "src/ shows two files" has b "2/$NFILES" &&
    waits "the cursor is on the first" row_is b 3 "> src/main.c"
$TM send-keys -t b Tab
waits "Tab marks and moves down" has b "(1 marked)" &&
    row_is b 3 " *src/main.c" && row_is b 4 "> src/util.c" &&
    pass "Tab marks the current path and moves down"
$TM send-keys -t b Tab Enter
done_with b 0 "Enter after two Tabs exits 0"
printf 'src/main.c\nsrc/util.c\n' >"$T/want"
cmp -s "$T/want" "$T/b.out" && pass "Tab Tab Enter prints both paths" ||
    fail "Tab Tab Enter printed: $(cat "$T/b.out")"

# -0, a move with Ctrl-N, Enter without marks: the current path alone.
start c "$S" -0 --query src/ --height 10
waits "--height: the list fills in" has c "2/$NFILES"
waits "--height leaves the lines above alone" has c "MARKER-ABOVE" &&
    pass "--height leaves the lines above alone"
$TM send-keys -t c C-n
waits "Ctrl-N moves down" row_is c 5 "> src/util.c" && pass "Ctrl-N moves"
$TM send-keys -t c C-p C-n Enter
done_with c 0 "Enter with -0 exits 0"
printf 'src/util.c\0' >"$T/want"
cmp -s "$T/want" "$T/c.out" && pass "-0 prints the current path and a NUL" ||
    fail "-0 printed: $(od -c "$T/c.out" | head -n 3)"
if has c "MARKER-ABOVE" && ! has c "$NFILES  ready"; then
	pass "--height clears its own lines on exit, the rest is kept"
else
	fail "--height exit: $(screen c | head -n 5)"
fi

# From a subdirectory: printed relative to where the user stands.
PICK_CWD="$P/src"
start j "$S" --root "$P" --query lib/x
PICK_CWD=
waits "lib/x.c from src/" row_is j 3 "> lib/x.c"
$TM send-keys -t j Enter
done_with j 0 "Enter from a subdirectory"
[ "$(cat "$T/j.out")" = "../lib/x.c" ] &&
    pass "the path prints relative to the current directory" ||
    fail "from src/ printed: $(cat "$T/j.out")"

# --no-multi: Tab marks nothing. --regex, and a regex being typed.
start d "$S" --no-multi --regex --query '^lib/'
waits "--regex matches" has d "1/$NFILES" && row_is d 3 "> lib/x.c" &&
    pass "--regex queries in regex mode"
$TM send-keys -t d Tab
$TM send-keys -t d '('
waits "a bad regex says why" has d "bad regex" &&
    pass "a bad regex is shown in the header, not fatal"
$TM send-keys -t d BSpace
waits "the regex again" row_is d 3 "> lib/x.c"
has d "marked" && fail "--no-multi: Tab marked" ||
    pass "--no-multi: Tab marks nothing"
$TM send-keys -t d C-c
done_with d 130 "Ctrl-C exits 130"

# A resize redraws, and more lines ask for more results.
start e "$S"
waits "30 lines show 28 results" count_is e 28 &&
    pass "30 lines show 28 results"
$TM resize-window -t e -x 100 -y 60
waits "a taller window shows every file" \
    count_is e "$NFILES" &&
    pass "a resize redraws, with more results"
$TM resize-window -t e -x 40 -y 8
waits "a smaller window redraws" \
    count_is e 6 &&
    row_is e 1 ">" && pass "a resize to fewer lines redraws"

# A fast burst of keys ends showing the answer to the last one.
$TM resize-window -t e -x 100 -y 30
for k in s r c / u t i l; do
	$TM send-keys -t e "$k"
done
if waits "the burst's last query is shown" row_is e 1 "> src/util"; then
	waits "the burst's last answer" has e "1/$NFILES" &&
	    row_is e 3 "> src/util.c" && row_is e 4 "" &&
	    pass "a burst of keys ends showing the last answer"
fi
# Stable: no late answer to an older key replaces it.
"$FIDX" --socket "$S" --root "$P" src >/dev/null 2>&1
ok=1
for i in 1 2 3 4 5; do
	row_is e 3 "> src/util.c" || ok=0
done
[ "$ok" = 1 ] && pass "the last answer stays" || fail "the list changed after the burst"

# --git: git's two letters before each path, once the status is in.
R="$T/repo"
mkdir -p "$R"
: >"$R/clean.c"
: >"$R/changed.c"
git -C "$R" init -q && git -C "$R" add clean.c changed.c &&
    git -C "$R" -c user.name=t -c user.email=t@t commit -q -m init ||
    fail "git fixture"
echo x >"$R/changed.c"
: >"$R/new.c"
start g "$S" --git --root "$R" --query .c
waits "--git: an untracked file" has g "?? new.c" &&
    waits "--git: a modified file" has g " M changed.c" &&
    waits "--git: a clean file" has g "   clean.c" &&
    pass "--git shows git's letters before each path"
$TM send-keys -t g Escape
done_with g 130 "--git: Esc exits 130"

# No key pressed: a file added shows up (a new generation), and a root
# deleted says gone.
L="$T/live"
mkdir -p "$L"
: >"$L/one.txt"
: >"$L/two.txt"
start i "$S" --root "$L"
waits "a live project fills in" has i "2/2  ready"
: >"$L/three.txt"
waits "a file added shows up with no key pressed" has i "3/3  ready" &&
    has i "three.txt" && pass "a file added shows up with no key pressed"
rm -rf "$L"
waits "a deleted root says gone" has i "  gone" &&
    pass "a root deleted under the picker says gone"
$TM send-keys -t i Escape
done_with i 130 "Esc after the root went"

# kill -TERM: the terminal is restored, the picker dies of SIGTERM.
kill -TERM "$(cat "$T/e.pid")"
done_with e 143 "kill -TERM: it dies of SIGTERM"
[ ! -s "$T/e.out" ] && pass "kill -TERM prints nothing" ||
    fail "kill -TERM printed: $(cat "$T/e.out")"

# The daemon stopped under it: one line on stderr, exit 2.
"$FIDXD" --foreground --socket "$S2" --max-files 20 >"$T/fidxd2.log" 2>&1 &
DAEMON2_PID=$!
wait_until "$FIDX" --socket "$S2" daemon status >/dev/null 2>&1 ||
    fail "the second fidxd did not answer"
start f "$S2"
waits "a fresh project fills in" has f "20/20  capped (files)" &&
    pass "a root that is no project yet is added; capped shows in the header"
kill -TERM "$DAEMON2_PID"
wait "$DAEMON2_PID" 2>/dev/null
DAEMON2_PID=
done_with f 2 "the daemon stopped under it: exit 2"
if [ "$(wc -l <"$T/f.err")" -eq 1 ] && grep -q '^fidx: .*went away' "$T/f.err"; then
	pass "the daemon gone: one line on stderr"
else
	fail "the daemon gone: stderr is: $(cat "$T/f.err")"
fi

# The first index being built: a fake fidxd answers `timeout` (as the
# query's timeout_ms would) until $T/fake.ready exists, then one result,
# on a project whose watch is degraded.
cat >"$T/fake.py" <<'EOF'
import json, os, socket, sys, time
path, ready = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
conn, _ = srv.accept()
f = conn.makefile("rwb")
root = None
log = open(path + ".log", "ab")
for line in f:
    log.write(line)
    log.flush()
    req = json.loads(line)
    rid = req.get("id")
    if req.get("op") == "query":
        root = req["root"]
        if not os.path.exists(ready):
            time.sleep(req.get("timeout_ms", 200) / 1000)
            resp = {"id": rid, "ok": False, "error": {"code": "timeout",
                    "message": "not ready"}}
        else:
            resp = {"id": rid, "ok": True, "results": [{"path": "built.c",
                    "score": 1, "positions": [0]}], "matched": 1,
                    "generation": 1, "state": "ready", "capped": False,
                    "watch": "degraded"}
    elif req.get("op") == "projects":
        done = os.path.exists(ready)
        prj = {"root": root, "state": "ready" if done else "indexing",
               "files": 7 if done else 0, "generation": 1 if done else 0}
        if not done:
            prj["walked"] = 4096
        resp = {"id": rid, "ok": True, "projects": [prj]}
    else:
        resp = {"id": rid, "ok": False, "error": {"code": "unknown_op",
                "message": "fake"}}
    f.write(json.dumps(resp).encode() + b"\n")
    f.flush()
EOF
python3 "$T/fake.py" "$T/fake.sock" "$T/fake.ready" 2>"$T/fake.err" &
FAKE_PID=$!
wait_until test -S "$T/fake.sock" || fail "the fake fidxd did not listen"
start h "$T/fake.sock" --root "$P"
waits "the first index: indexing in the header" has h "0/0  indexing... 4096 files so far" &&
    pass "while the first index is built the header says indexing, and how far"
: >"$T/fake.ready"
waits "the list fills in when it is ready" row_is h 3 "> built.c" &&
    waits "the total once ready" has h "1/7  ready  watch degraded  gen 1" &&
    pass "the list fills in once the index is ready; watch degraded shown"
$TM send-keys -t h Enter
done_with h 0 "Enter on the fake's answer"
[ "$(cat "$T/h.out")" = "built.c" ] && pass "it prints the fake's path" ||
    fail "printed: $(cat "$T/h.out")"
if python3 -c '
import json, sys
qs = [json.loads(l) for l in open(sys.argv[1])]
qs = [q for q in qs if q["op"] == "query"]
assert len(qs) >= 2, "%d queries" % len(qs)
ids = [q["id"] for q in qs]
assert ids == sorted(set(ids)), ids
for q in qs:
    assert q["supersede"] is True and q["positions"] is True, q
    assert q["limit"] == 28 and q["q"] == "", q
' "$T/fake.sock.log" 2>"$T/py.err"; then
	pass "each query carries an id, supersede, positions, a limit of the list's lines"
else
	fail "the queries sent: $(tail -n 1 "$T/py.err")"
fi

# Stale answers are dropped: a fake fidxd that answers every query, in
# order, 100 ms after the one before, with a path naming its query. After
# a burst "abc", the answers to "", "a" and "ab" come first, and the
# screen must never show them: only "q-abc.c".
cat >"$T/slow.py" <<'EOF'
import json, socket, sys, time
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1])
srv.listen(1)
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
        resp = {"id": req.get("id"), "ok": True, "projects": []}
    f.write(json.dumps(resp).encode() + b"\n")
    f.flush()
EOF
python3 "$T/slow.py" "$T/slow.sock" 2>"$T/slow.err" &
SLOW_PID=$!
wait_until test -S "$T/slow.sock" || fail "the slow fake did not listen"
start k "$T/slow.sock" --root "$P"
waits "the slow fake's first answer" has k "q-empty.c"
# One send-keys: three separate ones may land more than the fake's 100 ms
# apart on a loaded machine, and then "a"'s answer is rightly the newest.
$TM send-keys -t k abc
stale=
tries=$((100 * TIMEOUT_MULTIPLIER))
while ! has k "q-abc.c"; do
	screen k >"$T/k.screen"
	grep -qE 'q-(a|ab)[.]c' "$T/k.screen" && stale=$(grep -E 'q-(a|ab)[.]c' "$T/k.screen")
	tries=$((tries - 1))
	[ "$tries" -gt 0 ] || break
	sleep 0.02
done
if [ -n "$stale" ]; then
	fail "a stale answer was drawn: $stale"
elif has k "q-abc.c"; then
	pass "answers to older keys are dropped; the last one is shown"
else
	fail "the answer to abc never came: $(screen k | head -n 3)"
fi
$TM send-keys -t k Escape
done_with k 130 "Esc after the slow answers"

$TM kill-server 2>/dev/null
summary
