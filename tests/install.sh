#!/bin/sh
# tests/install.sh - `make install` and `make uninstall` into a staging
# DESTDIR as a user would run them, and the systemd units they lay out.
#
# Run by tests/run.sh after test-build, which makes the release binaries
# install copies (so nothing is compiled here). Checks: every file is
# where PREFIX says, executable or not as it should be; the units name
# the installed binaries; the shell completions are those fidx shell
# prints; the Vim plugin is a package Vim loads; the Neovim plugin is
# every file of cli/nvim, and a real Neovim whose 'packpath' is the
# staged site directory loads it (:Fidx, :help fidx); systemd-analyze
# accepts the units (when this machine has it); uninstall removes what
# install put and nothing else.

. "$(dirname "$0")/lib.sh"
REPO=$(cd "$(dirname "$0")/.." && pwd -P)
D="$T/stage"
mkdir -p "$D/usr/share/keep"
: >"$D/usr/share/keep/mine"

expect 0 "make install DESTDIR PREFIX=/usr" make -s -C "$REPO" install DESTDIR="$D" PREFIX=/usr
for f in bin/fidx bin/fidxd; do
	check "installed $f, executable" test -x "$D/usr/$f"
done
U="$D/usr/lib/systemd/user"
for u in fidxd.service fidxd.socket fidx-reindex.service fidx-reindex.timer; do
	check "installed $u" test -f "$U/$u"
	check "$u is not executable" test ! -x "$U/$u"
done
check "the service runs the installed fidxd" grep -qx 'ExecStart=/usr/bin/fidxd --foreground' "$U/fidxd.service"
check "the reindex unit runs the cron line" grep -qx 'ExecStart=/usr/bin/fidx reindex --all --quiet --timeout 600' "$U/fidx-reindex.service"
check "no @BINDIR@ left in a unit" not grep -q '@BINDIR@' "$U/fidxd.service" "$U/fidx-reindex.service"
check "the installed fidx runs" "$D/usr/bin/fidx" --version
check "the service caps memory (MemoryMax)" grep -q '^MemoryMax=[0-9]*M$' "$U/fidxd.service"
check "installed fidx(1)" test -f "$D/usr/share/man/man1/fidx.1"
check "installed fidxd(8)" test -f "$D/usr/share/man/man8/fidxd.8"

# The completions, where each shell finds them by itself, are what the
# installed fidx prints with --completion (one text, two ways to get it).
for c in bash:bash-completion/completions/fidx zsh:zsh/vendor-completions/_fidx \
    fish:fish/vendor_completions.d/fidx.fish; do
	sh=${c%%:*} f="$D/usr/share/${c#*:}"
	check "installed the $sh completion ${c#*:}" test -f "$f"
	check "the $sh completion is not executable" test ! -x "$f"
	"$D/usr/bin/fidx" shell "$sh" --completion >"$T/comp" 2>&1
	check "it is what fidx shell $sh --completion prints" cmp -s "$T/comp" "$f"
done

# The Vim plugin is a package under Debian's vimfiles (in its default
# 'packpath' when PREFIX is /usr), the files as in cli/vim; a Vim with
# only that directory in 'packpath' gets :Fidx and :help fidx from it.
VP="$D/usr/share/vim/vimfiles/pack/fidx/start/fidx"
for f in plugin/fidx.vim autoload/fidx.vim autoload/fidx/picker.vim doc/fidx.txt doc/tags; do
	check "installed the Vim plugin's $f, as in cli/vim" cmp -s "$REPO/cli/vim/$f" "$VP/$f"
	check "$f is not executable" test ! -x "$VP/$f"
done
if command -v vim >/dev/null 2>&1; then
	expect 0 "vim loads the installed package" vim -es -N -u NONE -i NONE \
	    --cmd "set packpath=$D/usr/share/vim/vimfiles" -c 'packloadall' \
	    -c "call writefile([exists(':Fidx')], '$T/vim.cmd')" \
	    -c 'help fidx' -c "call writefile([expand('%:p')], '$T/vim.help')" -c 'qa!'
	check "it defines :Fidx" grep -qx 2 "$T/vim.cmd"
	check ":help fidx opens the installed fidx.txt" grep -qxF "$VP/doc/fidx.txt" "$T/vim.help"
else
	fail "vim is not installed (it is in DEB_PKGS)"
fi

# The Neovim plugin: each file of cli/nvim as it is, and the package link
# Neovim's default 'packpath' (PREFIX/share/nvim/site) loads.
N="$D/usr/share/fidx/nvim"
missing=""
for f in $(cd "$REPO/cli/nvim" && find . -type f | sed 's|^\./||' | sort); do
	cmp -s "$REPO/cli/nvim/$f" "$N/$f" || missing="$missing $f"
done
check "installed every file of cli/nvim in share/fidx/nvim:$missing" test -z "$missing"
check "none of them executable" test -z "$(find "$N" -type f -perm /111)"
L="$D/usr/share/nvim/site/pack/fidx/start/fidx"
check "the package link is relative" test "$(readlink "$L")" = ../../../../../fidx/nvim
check "and leads to the plugin" test -f "$L/plugin/fidx.lua" -a -f "$L/doc/tags"
if command -v nvim >/dev/null 2>&1; then
	expect 0 "Neovim loads the installed package from packpath" env HOME="$T" \
	    XDG_CONFIG_HOME="$T/nvconfig" XDG_DATA_HOME="$T/nvdata" \
	    nvim --headless -u NORC -i NONE -n --cmd "set packpath^=$D/usr/share/nvim/site" \
	    -c 'if exists(":Fidx") != 2 | cquit 3 | endif' \
	    -c 'help fidx-install' \
	    -c 'if expand("%:p") !~# "/usr/share/nvim/site/pack/fidx/start/fidx/doc/fidx.txt$" | cquit 4 | endif' \
	    -c 'lua assert(require("fidx").query_sync, "no fidx module")' \
	    -c 'qall!'
else
	fail "nvim is not installed (it is in DEB_PKGS)"
fi

# The man pages render without a warning, and name every subcommand and
# flag the programs' own --help lists, so neither can go stale alone.
if command -v man >/dev/null 2>&1; then
	for m in man1/fidx.1 man8/fidxd.8; do
		expect 0 "man renders $m" env MANWIDTH=80 man --warnings -l "$D/usr/share/man/$m"
		check "without a warning" test ! -s "$T/err"
		cp "$T/out" "$T/$(basename $m).txt"
	done
	"$D/usr/bin/fidxd" --help 2>&1 | grep -o -e '--[a-z-]*' | sort -u >"$T/dflags"
	missing=""
	while read -r f; do
		grep -qe "$f" "$T/fidxd.8.txt" || missing="$missing $f"
	done <"$T/dflags"
	check "fidxd(8) has every flag of fidxd --help:$missing" test -z "$missing"
	"$D/usr/bin/fidx" --help 2>&1 | sed -n 's/^ *\(usage:\)\{0,1\} *fidx \([a-z]*\).*/\2/p' | sort -u >"$T/cmds"
	"$D/usr/bin/fidx" --help 2>&1 | grep -o -e '--[a-z-]*' | sort -u >>"$T/cmds"
	missing=""
	while read -r f; do
		[ -n "$f" ] || continue
		grep -qe "$f" "$T/fidx.1.txt" || missing="$missing $f"
	done <"$T/cmds"
	check "fidx(1) has every command and option of fidx --help:$missing" test -z "$missing"
else
	pass "man is not installed: rendering skipped"
fi

# systemd-analyze checks what it can offline, the man pages the units'
# Documentation= names included; the units must pass clean.
if command -v systemd-analyze >/dev/null 2>&1; then
	P="$T/prefix"
	expect 0 "make install PREFIX (for verify: real paths)" make -s -C "$REPO" install PREFIX="$P"
	V="$P/lib/systemd/user"
	expect 0 "systemd-analyze verify the units" env MANPATH="$P/share/man" systemd-analyze verify \
	    "$V/fidxd.service" "$V/fidxd.socket" "$V/fidx-reindex.service" "$V/fidx-reindex.timer"
	check "and it had nothing to say" test ! -s "$T/err"
else
	pass "systemd-analyze is not installed: verify skipped"
fi

expect 0 "make uninstall" make -s -C "$REPO" uninstall DESTDIR="$D" PREFIX=/usr
check "uninstall removed the binaries" test ! -e "$D/usr/bin/fidx" -a ! -e "$D/usr/bin/fidxd"
check "and the units" test ! -e "$U/fidxd.service" -a ! -e "$U/fidx-reindex.timer"
check "and the man pages" test ! -e "$D/usr/share/man/man1/fidx.1" -a ! -e "$D/usr/share/man/man8/fidxd.8"
check "and the completions" test ! -e "$D/usr/share/bash-completion/completions/fidx" \
    -a ! -e "$D/usr/share/zsh/vendor-completions/_fidx" \
    -a ! -e "$D/usr/share/fish/vendor_completions.d/fidx.fish"
check "and the Vim plugin, its directories too" test ! -e "$VP"
check "and the Neovim plugin and its link" test ! -e "$D/usr/share/fidx" \
    -a ! -e "$D/usr/share/nvim/site/pack/fidx" -a ! -L "$L"
check "and nothing else" test -f "$D/usr/share/keep/mine"

summary
