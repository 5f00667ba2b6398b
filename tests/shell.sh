#!/bin/sh
# tests/shell.sh - `fidx shell`: the scripts it prints, and the key
# bindings and completion they install in a real bash, zsh and fish.
#
# Each shell starts clean (bash --norc --noprofile, zsh -f, fish
# --no-config; HOME, XDG_RUNTIME_DIR and the rest in $T, PATH starting
# with $FIDX_BUILD) in its own session of a private tmux server (its
# socket in $T, killed on exit), evaluates `fidx shell SHELL` as a user
# would, and is driven with send-keys; a real fidxd answers on the default
# socket under that XDG_RUNTIME_DIR. Checked in each: Ctrl-T inserts
# the picked paths (a space and a quote in them) quoted, at the cursor,
# and the line runs with them as words; FIDX_CTRL_T_OPTS reaches the
# picker; Esc keeps the line; completion of a subcommand, an operand and a
# path with a space; Alt-C changes directory. tests/lib.sh has the helpers and the
# rules: every wait polls the screen with a deadline, never a bare sleep.
# The sanitizers write their reports to files in $T/san: any is a failure.

. "$(dirname "$0")/lib.sh"
REPO=$(cd "$(dirname "$0")/.." && pwd -P)
BIN=$(cd "$FIDX_BUILD" && pwd -P)
FIDX=$BIN/fidx
FIDXD=$BIN/fidxd
for b in "$FIDX" "$FIDXD"; do
	[ -x "$b" ] || { echo "FAIL: $b is not built (run make)"; exit 1; }
done
# make test's deps target installs them (DEB_PKGS): missing is a failure.
for c in tmux bash zsh fish; do
	command -v "$c" >/dev/null 2>&1 ||
	    { echo "FAIL: $c is not installed (make deps installs it)"; exit 1; }
done

RUN="$T/run"
H="$T/home"
mkdir -p "$H" "$T/san"
mkdir -m 0700 "$RUN"
TM="tmux -S $T/tmux.sock -f /dev/null"
DAEMON_PID=
on_exit() {
	$TM kill-server 2>/dev/null
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
}
SAN_ASAN="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/san/asan"
SAN_UBSAN="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/san/ubsan"

# What fidx shell prints: the files of cli/shell/, bindings first.
for sh in bash zsh fish; do
	K="$REPO/cli/shell/key-bindings.$sh"
	C="$REPO/cli/shell/completion.$sh"
	cat "$K" "$C" >"$T/want"
	expect 0 "fidx shell $sh" "$FIDX" shell "$sh" &&
	    check "fidx shell $sh: the key bindings, then the completion" cmp -s "$T/want" "$T/out"
	cp "$T/out" "$T/all.$sh"
	expect 0 "fidx shell $sh --completion" "$FIDX" shell "$sh" --completion &&
	    check "fidx shell $sh --completion: the completion alone" cmp -s "$C" "$T/out"
	expect 0 "fidx shell $sh --key-bindings" "$FIDX" shell --key-bindings "$sh" &&
	    check "fidx shell $sh --key-bindings: the bindings alone" cmp -s "$K" "$T/out"
	expect 0 "$sh -n accepts the script" "$sh" -n "$T/all.$sh"
done
expect 2 "fidx shell with no shell" "$FIDX" shell
expect 2 "fidx shell tcsh: no such scripts" "$FIDX" shell tcsh
check "and says which shells there are" grep -q 'bash, zsh or fish' "$T/err"
expect 2 "fidx shell with two shells" "$FIDX" shell bash zsh
expect 2 "--completion with --key-bindings" "$FIDX" shell bash --completion --key-bindings
expect 0 "fidx shell --help" "$FIDX" shell --help
check "fidx shell --help shows the eval line" grep -qF 'eval "$(fidx shell bash)"' "$T/out"

# Every subcommand of fidx --help is offered by each completion.
"$FIDX" --help 2>&1 | sed -n 's/^ *\(usage:\)\{0,1\} *fidx \([a-z][a-z]*\).*/\2/p' | sort -u >"$T/cmds"
for sh in bash zsh fish; do
	missing=
	while read -r c; do
		grep -qw -e "$c" "$REPO/cli/shell/completion.$sh" || missing="$missing $c"
	done <"$T/cmds"
	check "completion.$sh names every subcommand:$missing" test -z "$missing"
done

# The fixture: a name with a space in a directory with a space, one with
# a single quote, and plain ones.
P="$T/proj"
mkdir -p "$P/src" "$P/my dir"
for f in "my dir/some file.txt" "src/it's.c" src/main.c src/util.c README.md Makefile; do
	: >"$P/$f"
done
NFILES=6

unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_COMMON_DIR
# A failed wait shows the screen, not the last command's output.
: >"$T/out"
: >"$T/err"
# On the default socket, made by fidxd itself under XDG_RUNTIME_DIR.
env XDG_RUNTIME_DIR="$RUN" XDG_STATE_HOME="$T/state" "$FIDXD" --foreground >"$T/fidxd.log" 2>&1 &
DAEMON_PID=$!
wait_until env XDG_RUNTIME_DIR="$RUN" "$FIDX" daemon status >/dev/null 2>&1 ||
    { echo "FAIL: fidxd did not answer on $RUN/fidx/sock"; exit 1; }
env XDG_RUNTIME_DIR="$RUN" GIT_CEILING_DIRECTORIES="$T" "$FIDX" add --wait "$P" >/dev/null 2>&1 ||
    { echo "FAIL: add $P"; exit 1; }

# start-shell.sh SHELL ARGS...: the shell in $P, with nothing of the
# caller's environment but TERM (tmux's).
cat >"$T/start-shell.sh" <<EOF2
#!/bin/sh
cd "$P" || exit 1
exec env -i TERM="\$TERM" HOME="$H" PATH="$BIN:/usr/bin:/bin" LANG=C.UTF-8 \
    XDG_RUNTIME_DIR="$RUN" XDG_STATE_HOME="$T/state" \
    XDG_CONFIG_HOME="$H/.config" XDG_DATA_HOME="$H/.local/share" \
    GIT_CEILING_DIRECTORIES="$T" PS1='\$ ' \
    ASAN_OPTIONS="$SAN_ASAN" UBSAN_OPTIONS="$SAN_UBSAN" "\$@"
EOF2

screen() {
	$TM capture-pane -p -J -t "$1" 2>/dev/null
}

# has NAME TEXT: the screen of NAME shows TEXT (fixed string).
has() {
	screen "$1" | grep -qF -- "$2"
}

# has_line NAME LINE: a line of NAME's screen is exactly LINE.
has_line() {
	screen "$1" | grep -qxF -- "$2"
}

# waits NAME DESC CMD...: wait_until CMD; if it never holds, a failed
# check that shows NAME's screen.
waits() {
	_n=$1 _desc=$2
	shift 2
	wait_until "$@" && return 0
	fail "$_desc (screen below)"
	screen "$_n" | sed 's/^/    | /'
	return 1
}

# synced NAME: every key sent so far has been read and run by NAME's
# shell (a command's output, which its echo cannot look like, is shown).
SYNC=0
synced() {
	SYNC=$((SYNC + 1))
	$TM send-keys -t "$1" -l "echo sync-$SYNC-x | tr x y"
	$TM send-keys -t "$1" Enter
	waits "$1" "$1 runs commands" has_line "$1" "sync-$SYNC-y"
}

# pick_open NAME: the picker is up with the whole fixture listed.
pick_open() {
	waits "$1" "$1: the picker opens" has "$1" "$NFILES/$NFILES  ready"
}

# closed_shows NAME TEXT: the picker is gone, and the screen shows TEXT.
closed_shows() {
	! has "$1" "  ready" && has "$1" "$2"
}

# pick_closed NAME TEXT: wait for closed_shows NAME TEXT. Keys sent
# before then could reach the picker, not the shell.
pick_closed() {
	waits "$1" "$1: the picker closes, the line shows $2" closed_shows "$1" "$2"
}

# ran_ctrl_t NAME: the printf of the Ctrl-T line printed three words.
ran_ctrl_t() {
	has_line "$1" "[src/it's.c]" && has_line "$1" "[my dir/some file.txt]" &&
	    has_line "$1" "[X]"
}

for sh in bash zsh fish; do
	case $sh in
	bash)
		cmd="bash --norc --noprofile"
		setup='eval "$(fidx shell bash)"' ;;
	zsh)
		cmd="zsh -f"
		setup='autoload -Uz compinit && compinit -u -D && eval "$(fidx shell zsh)"' ;;
	fish)
		cmd="fish --no-config"
		setup='set -g fish_greeting; set -g fish_autosuggestion_enabled 0; function fish_prompt; echo "\$ "; end; fidx shell fish | source' ;;
	esac
	$TM new-session -d -s "$sh" -x 120 -y 30 sh "$T/start-shell.sh" $cmd
	$TM send-keys -t "$sh" -l "$setup"
	$TM send-keys -t "$sh" Enter
	synced "$sh" || continue

	# Ctrl-T, two paths marked: each quoted, space-separated, at the
	# cursor (before the X already typed).
	$TM send-keys -t "$sh" -l "printf '[%s]\\n' X"
	$TM send-keys -t "$sh" Left C-t
	if pick_open "$sh"; then
		$TM send-keys -t "$sh" i t
		waits "$sh" "$sh: typing narrows" has "$sh" "2/$NFILES  ready" &&
		    pass "$sh: Ctrl-T opens fidx pick; typing narrows"
		$TM send-keys -t "$sh" Tab Tab Enter
		if pick_closed "$sh" "file.txt"; then
			$TM send-keys -t "$sh" Enter
			waits "$sh" "$sh: the line runs with the paths as two words" \
			    ran_ctrl_t "$sh" &&
			    pass "$sh: Ctrl-T inserts the picked paths quoted, at the cursor"
		fi
	fi
	synced "$sh"

	# Ctrl-T with FIDX_CTRL_T_OPTS, then Esc: the picker takes the
	# options; nothing is inserted, the line is as it was.
	if [ "$sh" = fish ]; then
		$TM send-keys -t "$sh" -l "set -g FIDX_CTRL_T_OPTS '--query some'"
	else
		$TM send-keys -t "$sh" -l "FIDX_CTRL_T_OPTS='--query some'"
	fi
	$TM send-keys -t "$sh" Enter
	synced "$sh"
	$TM send-keys -t "$sh" -l "echo kept"
	$TM send-keys -t "$sh" C-t
	if waits "$sh" "$sh: FIDX_CTRL_T_OPTS's --query" has "$sh" "1/$NFILES  ready"; then
		pass "$sh: Ctrl-T's picker takes FIDX_CTRL_T_OPTS"
		$TM send-keys -t "$sh" Escape
		if pick_closed "$sh" "echo kept"; then
			$TM send-keys -t "$sh" Enter
			waits "$sh" "$sh: Esc keeps the line" has_line "$sh" "kept" &&
			    pass "$sh: Esc in the picker leaves the line as it was"
		fi
	fi
	synced "$sh"

	# Completion: a subcommand, an operand, a path with a space.
	$TM send-keys -t "$sh" -l "fidx re"
	$TM send-keys -t "$sh" Tab
	# (A space first: send-keys takes "--help" alone for its own flag.)
	$TM send-keys -t "$sh" -l " --help"
	$TM send-keys -t "$sh" Enter
	waits "$sh" "$sh: fidx re<Tab> completes reindex" has "$sh" "usage: fidx reindex [DIR" &&
	    pass "$sh: fidx re<Tab> completes to reindex"
	synced "$sh"
	$TM send-keys -t "$sh" -l "fidx daemon stat"
	$TM send-keys -t "$sh" Tab Enter
	waits "$sh" "$sh: fidx daemon stat<Tab> completes status" has "$sh" "running, pid $DAEMON_PID" &&
	    pass "$sh: fidx daemon stat<Tab> completes to status"
	synced "$sh"
	# An option's value, after which no subcommand is offered.
	$TM send-keys -t "$sh" -l "fidx --mode ex"
	$TM send-keys -t "$sh" Tab
	$TM send-keys -t "$sh" -l "Makefile"
	$TM send-keys -t "$sh" Enter
	waits "$sh" "$sh: fidx --mode ex<Tab> completes exact" has_line "$sh" "Makefile" &&
	    pass "$sh: fidx --mode ex<Tab> completes to exact"
	synced "$sh"
	$TM send-keys -t "$sh" -l "fidx -n 3 rei"
	$TM send-keys -t "$sh" Tab
	$TM send-keys -t "$sh" -l "X"
	$TM send-keys -t "$sh" Enter
	waits "$sh" "$sh: a query's word after an option's value" has "$sh" "fidx -n 3 reiX" &&
	    pass "$sh: no subcommand is offered for a query's word after -n 3"
	synced "$sh"
	$TM send-keys -t "$sh" -l "fidx visit my"
	$TM send-keys -t "$sh" Tab
	$TM send-keys -t "$sh" -l "so"
	$TM send-keys -t "$sh" Tab
	waits "$sh" "$sh: fidx visit my<Tab>so<Tab> completes the file" \
	    has "$sh" 'fidx visit my\ dir/some\ file.txt' &&
	    pass "$sh: fidx visit completes a path with a space, quoted"
	$TM send-keys -t "$sh" C-u
	synced "$sh"

	# Alt-C: into the picked file's directory, whose name has a space.
	$TM send-keys -t "$sh" M-c
	if pick_open "$sh"; then
		$TM send-keys -t "$sh" s o m e
		waits "$sh" "$sh: Alt-C's picker narrows" has "$sh" "1/$NFILES  ready"
		$TM send-keys -t "$sh" Enter
		waits "$sh" "$sh: the picker closes" not has "$sh" "  ready"
		$TM send-keys -t "$sh" -l "pwd"
		$TM send-keys -t "$sh" Enter
		waits "$sh" "$sh: Alt-C changes directory" has_line "$sh" "$P/my dir" &&
		    pass "$sh: Alt-C changes into the picked file's directory"
	fi
	# The session stays until the end: killing the last one would stop
	# the server under the next new-session.
	synced "$sh"
done

$TM kill-server 2>/dev/null
set -- "$T"/san/*
if [ -e "$1" ]; then
	fail "a sanitizer report from fidx under a shell"
	head -n 40 "$@" | sed 's/^/    /'
else
	pass "no sanitizer report from fidx under the shells"
fi
summary
