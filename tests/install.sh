#!/bin/sh
# tests/install.sh - `make install` and `make uninstall` into a staging
# DESTDIR as a user would run them, and the systemd units they lay out.
#
# Run by tests/run.sh after test-build, which makes the release binaries
# install copies (so nothing is compiled here). Checks: every file is
# where PREFIX says, executable or not as it should be; the units name
# the installed binaries; systemd-analyze accepts the units (when this
# machine has it); uninstall removes what install put and nothing else.

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

# systemd-analyze checks what it can offline; the units must pass clean.
# (--man=no until the man pages exist: Documentation= names them.)
if command -v systemd-analyze >/dev/null 2>&1; then
	P="$T/prefix"
	expect 0 "make install PREFIX (for verify: real paths)" make -s -C "$REPO" install PREFIX="$P"
	V="$P/lib/systemd/user"
	expect 0 "systemd-analyze verify the units" systemd-analyze verify --man=no \
	    "$V/fidxd.service" "$V/fidxd.socket" "$V/fidx-reindex.service" "$V/fidx-reindex.timer"
	check "and it had nothing to say" test ! -s "$T/err"
else
	pass "systemd-analyze is not installed: verify skipped"
fi

expect 0 "make uninstall" make -s -C "$REPO" uninstall DESTDIR="$D" PREFIX=/usr
check "uninstall removed the binaries" test ! -e "$D/usr/bin/fidx" -a ! -e "$D/usr/bin/fidxd"
check "and the units" test ! -e "$U/fidxd.service" -a ! -e "$U/fidx-reindex.timer"
check "and nothing else" test -f "$D/usr/share/keep/mine"

summary
