#!/bin/sh
# tests/vim.sh - the Vim plugin (cli/vim) against a real fidxd on a temp
# socket, two ways:
#
# - vim -es -N -u NONE with cli/vim first in 'runtimepath' drives the
#   plugin's functions (fidx#query_sync(), the picker through
#   fidx#picker#key()) from a script that writes "ok: ..." or
#   "FAIL: ..." lines to a file, each counted here;
# - a real Vim in a private tmux server (its own socket in $T, killed on
#   exit), keys sent with send-keys: :Fidx, typing, <CR>, <C-v>, <C-t>,
#   a daemon killed and restarted under it, a missing fidx binary. Vim
#   writes each buffer it enters to a file (BufEnter), which is what the
#   suite waits on, with the screen from capture-pane.
#
# tests/lib.sh has the helpers and the rules: every wait polls a file or
# the screen with a deadline, never a bare sleep.

. "$(dirname "$0")/lib.sh"
REPO=$(cd "$(dirname "$0")/.." && pwd -P)
FIDX=$(cd "$FIDX_BUILD" && pwd -P)/fidx
FIDXD=$(cd "$FIDX_BUILD" && pwd -P)/fidxd
for b in "$FIDX" "$FIDXD"; do
	[ -x "$b" ] || { echo "FAIL: $b is not built (run make)"; exit 1; }
done
for p in vim tmux git; do
	command -v "$p" >/dev/null 2>&1 ||
	    { echo "FAIL: $p is not installed (make deps)"; exit 1; }
done

unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_COMMON_DIR VIMINIT EXINIT
GIT_CEILING_DIRECTORIES=$T
XDG_STATE_HOME=$T/state
export GIT_CEILING_DIRECTORIES XDG_STATE_HOME
S="$T/sock"
TM="tmux -S $T/tmux.sock -f /dev/null"
DAEMON_PID=
# Waits in the Vim scripts: 5 s, scaled as wait_until's are.
WAIT_MS=$((5000 * ${TIMEOUT_MULTIPLIER:-1}))

# ours PID: PID is a fidxd serving this suite's socket (not a pid file
# left behind, whose number another process may have now).
ours() {
	[ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = fidxd ] &&
	    tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$S"
}

# stop_daemon PID: TERM, then wait for it to be gone (it may be ours or
# one the plugin started, which is no child of this shell).
stop_daemon() {
	ours "$1" || return 0
	kill "$1"
	if [ "$1" = "$DAEMON_PID" ]; then
		wait "$1"	# a child of this shell: reaped here
	else
		wait_until not ours "$1"
	fi
}

on_exit() {
	$TM kill-server 2>/dev/null
	stop_daemon "$DAEMON_PID"
	# A daemon the plugin started (fidx daemon start) has its pid here.
	[ -f "$S.pid" ] && stop_daemon "$(cat "$S.pid")"
}

start_daemon() {
	"$FIDXD" --foreground --socket "$S" >>"$T/fidxd.log" 2>&1 &
	DAEMON_PID=$!
	wait_until "$FIDX" --socket "$S" daemon status >/dev/null 2>&1 ||
	    { echo "FAIL: fidxd did not answer on $S"; exit 1; }
}

# The fixture: a git work tree with a commit, one file changed and one
# untracked, and a plain directory beside it.
P="$T/proj"
Q="$T/plain"
mkdir -p "$P/src" "$P/docs" "$Q/sub"
for f in src/main.c src/util.c docs/guide.txt README.md Makefile; do
	echo "$f" >"$P/$f"
done
for f in sub/notes.txt alpha.txt \
    a_very_long_directory_name_for_the_width_test/another_long_one/target_file.txt; do
	mkdir -p "$Q/$(dirname "$f")"
	: >"$Q/$f"
done
git -C "$P" init -q && git -C "$P" add . &&
    git -C "$P" -c user.name=t -c user.email=t@t commit -qm fixture ||
    { echo "FAIL: git fixture"; exit 1; }
echo changed >>"$P/src/util.c"
: >"$P/src/untracked.c"

start_daemon
"$FIDX" --socket "$S" add --wait "$P" >/dev/null 2>&1 &&
    "$FIDX" --socket "$S" add --wait "$Q" >/dev/null 2>&1 ||
    { echo "FAIL: add the fixtures"; exit 1; }

# vim_es NAME: runs $T/NAME.vim in vim -es with cli/vim in 'runtimepath';
# the script writes its checks to $T/NAME.out and exits 0 (else cquit).
# Each "ok:"/"FAIL:" line is one check here; no lines, or a status the
# lines do not explain, is a failure too.
vim_es() {
	_n=$1
	shift
	rm -f "$T/$_n.out"
	(cd "${ES_CWD:-$P}" && env "$@" vim -es -N -u NONE -i NONE \
	    --cmd "set rtp^=$REPO/cli/vim" --cmd "let g:wait_ms = $WAIT_MS" \
	    --cmd "let g:out = '$T/$_n.out'" -S "$T/lib.vim" \
	    -S "$T/$_n.vim" </dev/null >"$T/$_n.stdout" 2>&1)
	_rc=$?
	if [ ! -s "$T/$_n.out" ]; then
		fail "$_n: vim -es wrote no checks (exit $_rc)"
		sed 's/^/    /' "$T/$_n.stdout" | head -n 20
		return
	fi
	while IFS= read -r _l; do
		case "$_l" in
		ok:*) pass "$_n: ${_l#ok: }" ;;
		*) fail "$_n: ${_l#FAIL: }" ;;
		esac
	done <"$T/$_n.out"
	grep -q '^FAIL' "$T/$_n.out" && _want=1 || _want=0
	[ "$_rc" -eq "$_want" ] || fail "$_n: vim exited $_rc, its checks say $_want"
}

# What the -es scripts share: Check(), WaitFor(), Done().
cat >"$T/lib.vim" <<'EOF'
let g:checks = []
function! Check(desc, cond) abort
  call add(g:checks, (a:cond ? 'ok: ' : 'FAIL: ') . a:desc)
endfunction
" Polls the expression until it is true, for at most g:wait_ms.
function! WaitFor(expr) abort
  let start = reltime()
  while !eval(a:expr)
    if reltimefloat(reltime(start)) * 1000 > g:wait_ms
      return 0
    endif
    sleep 5m
  endwhile
  return 1
endfunction
function! Done() abort
  call writefile(g:checks, g:out)
  if !empty(filter(copy(g:checks), 'v:val =~# "^FAIL"'))
    cquit
  endif
  qall!
endfunction
EOF

# --- The functions, in vim -es -------------------------------------------

cat >"$T/socket.vim" <<'EOF'
try
  call Check('XDG_RUNTIME_DIR/fidx/sock', fidx#socket() ==# $XDG_RUNTIME_DIR . '/fidx/sock')
  let $XDG_RUNTIME_DIR = 'relative'
  call Check('a relative XDG_RUNTIME_DIR is not used: /tmp/fidx-UID/sock',
      \ fidx#socket() ==# '/tmp/fidx-' . $WANT_UID . '/sock')
  let $FIDX_SOCKET = '/from/env'
  call Check('$FIDX_SOCKET before XDG_RUNTIME_DIR', fidx#socket() ==# '/from/env')
  let g:fidx_socket = '/some/where'
  call Check('g:fidx_socket wins', fidx#socket() ==# '/some/where')
catch
  call Check('no exception: ' . v:exception . ' at ' . v:throwpoint, 0)
endtry
call Done()
EOF
vim_es socket XDG_RUNTIME_DIR="$T/xdg" WANT_UID="$(id -u)"

cat >"$T/query.vim" <<'EOF'
try
  let g:fidx_socket = $S
  let [root, is_git] = fidx#root($P . '/src')
  call Check('the root of a subdirectory is the git work tree', root ==# $P)
  call Check('and it is a git work tree', is_git)
  let [root, is_git] = fidx#root($Q . '/sub')
  call Check('outside git the root is the directory itself: ' . root, root ==# $Q . '/sub')
  call Check('and not a git work tree', !is_git)
  call Check('no root given: the current directory''s work tree', fidx#root()[0] ==# $P)

  let r = fidx#query_sync('mkfl', {'root': $P})
  call Check('query_sync mkfl finds Makefile first: ' . string(r), !empty(r) && r[0].path ==# 'Makefile')
  call Check('with its positions', !empty(r) && r[0].positions == [0, 2, 4, 6])
  let r = fidx#query_sync('utilc', {'root': $P, 'git': 1})
  call Check('git: src/util.c is " M": ' . string(r), !empty(r) && r[0].path ==# 'src/util.c' && get(r[0], 'git', '') ==# ' M')
  let r = fidx#query_sync('notes', {'root': $Q})
  call Check('query_sync in the plain project', !empty(r) && r[0].path ==# 'sub/notes.txt')
  let r = fidx#query_sync('^docs/', {'root': $P, 'mode': 'regex', 'limit': 5})
  call Check('mode regex', map(copy(r), 'v:val.path') == ['docs/guide.txt'])
  " A project that fidxd does not have yet is added by its first query.
  let r = fidx#query_sync('alpha', {'root': $NEW})
  call Check('a new root is added by its first query: ' . string(r), !empty(r) && r[0].path ==# 'alpha.c')
  let threw = ''
  try
    call fidx#query_sync('(', {'root': $P, 'mode': 'regex'})
  catch /^fidx:/
    let threw = v:exception
  endtry
  call Check('a bad regex is thrown as "fidx: ...": ' . threw, threw =~# '^fidx: bad regex')
  let resp = fidx#request_sync({'op': 'ping'})
  call Check('request_sync ping', get(resp, 'ok', 0) && has_key(resp, 'version'))
  call Check('one channel, still open', fidx#connected())
catch
  call Check('no exception: ' . v:exception . ' at ' . v:throwpoint, 0)
endtry
call Done()
EOF
mkdir -p "$T/new"
: >"$T/new/alpha.c"
vim_es query S="$S" P="$P" Q="$Q" NEW="$T/new"

# The picker, driven by its key function. Keys sent back to back leave
# Vim no time to read between them, so the answers to the first three
# arrive after the fourth is sent: each must be dropped, and only the
# last query's answer shown.
cat >"$T/picker.vim" <<'EOF'
try
  let g:fidx_socket = $S
  let id = fidx#picker#open('', {'root': $P, 'git': 1})
  call Check('the popup opens', id > 0 && !empty(popup_getpos(id)))
  call Check('the list fills in', WaitFor('len(fidx#picker#state().paths) == 6'))
  let before = len(fidx#picker#state().history)
  for k in ['m', 'k', 'f', 'l']
    call fidx#picker#key(k)
  endfor
  call Check('typing narrows to Makefile', WaitFor('fidx#picker#state().paths == ["Makefile"]'))
  call WaitFor('!fidx#picker#state().waiting')
  let shown = fidx#picker#state().history[before :]
  call Check('only the last query''s answers were shown: ' . string(shown),
      \ !empty(shown) && empty(filter(copy(shown), 'v:val !=# "mkfl"')))
  let buf = winbufnr(id)
  let text = getbufline(buf, 1, '$')
  call Check('the prompt line: ' . string(text[0]), text[0] =~# '^> mkfl .* 1 matched$')
  call Check('a clean file''s git letters are blank: ' . string(text[1]), text[1] =~# '^>    Makefile *$')
  let cols = map(filter(prop_list(2, {'bufnr': buf}), 'v:val.type ==# "fidx_match"'), 'v:val.col')
  " "> " and "   " come before the path: its byte 0 is column 6.
  call Check('the matched bytes are highlighted: ' . string(cols), cols == [6, 8, 10, 12])
  call fidx#picker#key("\<C-u>")
  call Check('CTRL-U clears the query', WaitFor('len(fidx#picker#state().paths) == 6'))
  call Check('the changed file has its git letters',
      \ WaitFor('!empty(filter(getbufline(winbufnr(fidx#picker#state().winid), 2, "$"), "v:val =~# ''^.. M src/util.c *$''"))'))
  call Check('the untracked file has "??": ' . string(getbufline(buf, 1, '$')),
      \ !empty(filter(getbufline(buf, 2, '$'), 'v:val =~# ''^..?? src/untracked.c *$''')))
  call fidx#picker#key("\<C-n>")
  call fidx#picker#key("\<Down>")
  call fidx#picker#key("\<C-p>")
  call Check('CTRL-N, Down, CTRL-P: cursor on the second', fidx#picker#state().cursor == 1)
  for k in ['g', 'u', 'i', 'x', "\<BS>"]
    call fidx#picker#key(k)
  endfor
  call Check('BS deletes a character', WaitFor('fidx#picker#state().paths == ["docs/guide.txt"]'))
  call fidx#picker#key("\<C-v>")
  call Check('CTRL-V closes the picker', empty(fidx#picker#state()) && empty(popup_getpos(id)))
  call Check('and opens the file in a vertical split',
      \ WaitFor('expand("%:p") ==# $P . "/docs/guide.txt"') && winlayout()[0] ==# 'row')
  call Check('and tells fidxd it was visited',
      \ WaitFor('fidx#request_sync({"op": "stats"}).visits.usage.entries == 1'))
  " A regex being typed is said on the prompt line, not thrown.
  call fidx#picker#open('(', {'root': $P, 'mode': 'regex'})
  call Check('a bad regex is the message', WaitFor('fidx#picker#state().msg =~# "regex"'))
  call fidx#picker#key("\<Esc>")
  call Check('Esc closes the picker', empty(fidx#picker#state()) && empty(popup_list()))
  " No git letters outside a git work tree.
  let id = fidx#picker#open('subnotes', {'root': $Q, 'git': 0})
  call Check('the plain project lists notes', WaitFor('fidx#picker#state().paths == ["sub/notes.txt"]'))
  let l = getbufline(winbufnr(id), 2)
  call Check('without a git column: ' . string(l), l[0] =~# '^> sub/notes.txt *$')
  call fidx#picker#close()
  " A path wider than the picker keeps its end behind "..", and the
  " highlighted columns are still the matched characters.
  let g:fidx_width = 40
  let id = fidx#picker#open('trgtfl', {'root': $Q, 'git': 0})
  call Check('the long path is listed', WaitFor('len(fidx#picker#state().paths) == 1'))
  let l = getbufline(winbufnr(id), 2)[0]
  call Check('its head is cut: ' . string(l), l =~# '^> \.\.[a-z_/]*/target_file\.txt$' && strdisplaywidth(l) == 40)
  let cols = map(filter(prop_list(2, {'bufnr': winbufnr(id)}), 'v:val.type ==# "fidx_match"'), 'v:val.col')
  call Check('the highlighted columns hold t, r, g, t, f, l: ' . string(cols),
      \ join(map(copy(cols), 'l[v:val - 1]'), '') ==# 'trgtfl')
  call fidx#picker#close()
catch
  call Check('no exception: ' . v:exception . ' at ' . v:throwpoint, 0)
endtry
call Done()
EOF
vim_es picker S="$S" P="$P" Q="$Q"

# :help finds the plugin's help with only cli/vim in 'runtimepath', and
# the shipped doc/tags is what :helptags makes of doc/fidx.txt.
cat >"$T/help.vim" <<'EOF'
try
  let &runtimepath = $REPO . '/cli/vim'
  for tag in ['fidx', ':Fidx', 'fidx-keys', 'g:fidx_socket', 'fidx#query_sync()']
    let ok = 0
    try
      execute 'help' tag
      let ok = expand('%:p') ==# $REPO . '/cli/vim/doc/fidx.txt'
    catch
    endtry
    call Check(':help ' . tag . ' opens cli/vim/doc/fidx.txt', ok)
    helpclose
  endfor
  call mkdir($T . '/doc', 'p')
  call writefile(readfile($REPO . '/cli/vim/doc/fidx.txt'), $T . '/doc/fidx.txt')
  execute 'helptags' fnameescape($T . '/doc')
  call Check('doc/tags is what :helptags makes (run it in cli/vim/doc)',
      \ readfile($T . '/doc/tags') == readfile($REPO . '/cli/vim/doc/tags'))
catch
  call Check('no exception: ' . v:exception . ' at ' . v:throwpoint, 0)
endtry
call Done()
EOF
vim_es help REPO="$REPO" T="$T"

# --- A real Vim in tmux -------------------------------------------------

# Each buffer entered: its full name, the window layout and the tab count.
cat >"$T/vimrc" <<EOF
set nocompatible
set runtimepath^=$REPO/cli/vim
let g:fidx_socket = '$S'
let g:fidx_bin = '$FIDX'
set ttimeout ttimeoutlen=20 hidden shortmess+=I
autocmd BufEnter * call writefile([expand('%:p') . ' ' . winlayout()[0]
    \\ . ' ' . tabpagenr('\$')], '$T/entered', 'a')
EOF
: >"$T/entered"
# HOME is $T: no ~/.vim of the user's is loaded beside the plugin.
$TM new-session -d -s v -x 100 -y 30 "cd '$P/src' && HOME='$T' vim -N -u '$T/vimrc' -i NONE" ||
    { echo "FAIL: tmux"; exit 1; }

screen() {
	$TM capture-pane -p -t v 2>/dev/null
}

has() {
	screen | grep -qF -- "$1"
}

# entered WANT: the last buffer Vim entered is "WANT" (path layout tabs).
entered() {
	[ "$(tail -n 1 "$T/entered")" = "$1" ]
}

# waits DESC CMD...: wait_until CMD, a failed check with the screen if not.
waits() {
	_desc=$1
	shift
	wait_until "$@" && return 0
	fail "$_desc (screen below; last entered: $(tail -n 1 "$T/entered"))"
	screen | sed 's/^/    | /'
	return 1
}

# No error of Vim's own on the screen (a stack of them is what a plugin
# that lets an exception out shows).
no_vim_error() {
	! screen | grep -q -e 'Error detected while processing' -e 'E[0-9][0-9]*:'
}

waits "vim starts" test -s "$T/entered"

$TM send-keys -t v ':Fidx' Enter
waits ":Fidx lists the project" has "6 matched" && pass ":Fidx opens the picker"
waits "the git letters of the changed file" has " M src/util.c" &&
    pass "with the git letters of the changed file"
$TM send-keys -t v m k f l
waits "typing narrows" has "1 matched" && pass "typing narrows to one"
$TM send-keys -t v Enter
waits "<CR> opens Makefile" entered "$P/Makefile leaf 1" &&
    pass "<CR> opens the chosen file"
check "the picker is gone" not has "matched"
check "no Vim error on the screen" no_vim_error
# visits N: fidxd's visit store has N entries.
visits() {
	"$FIDX" --socket "$S" stats --json 2>/dev/null | python3 -c \
	    'import json, sys; sys.exit(json.load(sys.stdin)["visits"]["usage"]["entries"] != int(sys.argv[1]))' "$1"
}
# One from the -es picker above, one now.
waits "<CR> sent visit" visits 2 && pass "<CR> told fidxd of the visit"

$TM send-keys -t v ':Fidx main' Enter
waits ":Fidx main" has "1 matched"
$TM send-keys -t v C-v
waits "<C-v> opens a vertical split" entered "$P/src/main.c row 1" &&
    pass "<C-v> opens src/main.c in a vertical split"
$TM send-keys -t v ':only' Enter ':Fidx guide' Enter
waits ":Fidx guide" has "1 matched"
$TM send-keys -t v C-x
waits "<C-x> opens a split" entered "$P/docs/guide.txt col 1" &&
    pass "<C-x> opens docs/guide.txt in a split"
$TM send-keys -t v ':only' Enter ':Fidx readme' Enter
waits ":Fidx readme" has "1 matched"
$TM send-keys -t v C-t
waits "<C-t> opens a tab" entered "$P/README.md leaf 2" &&
    pass "<C-t> opens README.md in a new tab"
$TM send-keys -t v ':tabonly' Enter ':Fidx' Enter
waits ":Fidx again" has "6 matched"
$TM send-keys -t v Escape
waits "<Esc> closes the picker" not has "matched" && pass "<Esc> closes the picker"

# A file written with :w is found by the next :Fidx (it asks sync first).
$TM send-keys -t v ":e $P/docs/freshly_written.txt" Enter ':w' Enter
waits ":w writes the file" test -f "$P/docs/freshly_written.txt"
$TM send-keys -t v ':Fidx frshwrt' Enter
waits "the file just written is found" has "docs/freshly_written.txt" &&
    pass "a file written with :w is found by the next :Fidx"
$TM send-keys -t v Escape
waits "Esc" not has "matched"

# The daemon killed and another started on the same socket while the
# picker is open: the next key reaches the new one.
$TM send-keys -t v ':Fidx' Enter
waits ":Fidx before the restart" has "7 matched"
old=$DAEMON_PID
stop_daemon "$DAEMON_PID"
DAEMON_PID=
check "the old daemon is gone" not ours "$old"
start_daemon
$TM send-keys -t v u t i l
waits "typing after a restart" has "1 matched" &&
    pass "a daemon restarted under an open picker is reconnected to"
check "by the daemon the suite started" test "$(cat "$S.pid")" = "$DAEMON_PID"
$TM send-keys -t v Enter
waits "<CR> after the restart" entered "$P/src/util.c leaf 1" &&
    pass "and <CR> opens src/util.c"

# No daemon at all: :Fidx starts one (fidx daemon start) and lists.
stop_daemon "$DAEMON_PID"
DAEMON_PID=
$TM send-keys -t v ':Fidx mkfl' Enter
waits ":Fidx with no daemon starts one" has "1 matched" &&
    pass ":Fidx starts fidxd when none answers"
started=$(cat "$S.pid" 2>/dev/null)
check "a new fidxd runs (pid $started)" kill -0 "$started"
$TM send-keys -t v Escape
waits "Esc" not has "matched"
stop_daemon "$started"

# No daemon and no fidx binary: one message that says what to do.
$TM send-keys -t v ':messages clear' Enter ":let g:fidx_bin = '$T/no/fidx'" Enter ':Fidx' Enter
waits "the message for a missing binary" has "Press ENTER"
$TM send-keys -t v Enter ":call writefile(split(execute('messages'), \"\\n\"), '$T/messages')" Enter
waits "the messages are written" test -s "$T/messages"
check "a missing fidx binary gives the message" grep -qxF \
    "fidx: fidxd does not answer on $S and it cannot be started: '$T/no/fidx' is not an executable (install fidx with \`make install\`, or set g:fidx_bin)" "$T/messages"
check "and only that message, no Vim error: $(cat "$T/messages")" test "$(wc -l <"$T/messages")" -eq 1
check "not a stack of Vim errors on the screen" no_vim_error
check "and no picker" not has "matched"

$TM send-keys -t v Enter ':qa!' Enter
waits "vim exits" not $TM has-session -t v 2>/dev/null

if grep -q -e 'Sanitizer' -e 'runtime error:' "$T/fidxd.log"; then
	fail "sanitizer report in fidxd's log"
	head -n 40 "$T/fidxd.log"
fi
summary
