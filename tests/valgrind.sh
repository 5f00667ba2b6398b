#!/bin/sh
# tests/valgrind.sh - what ASan cannot see, under valgrind: reads of
# memory never written (MemorySanitizer needs clang) and reads past a
# block by code ASan does not instrument (PCRE2's JIT, see QUERY_PAD).
#
# Runs the scorer's unit test and `fidx filter` over a real path list,
# both built without sanitizers (valgrind and ASan do not mix), for each
# kind of query: fuzzy, typo, several terms, exact, regex on a mapped
# file and on a pipe (a malloc'd buffer). Any valgrind report fails.
# (The index arena's pad is checked exactly by test_index under ASan.)
# FIDX_VG_BUILD names the build directory (default build); tests/lib.sh
# has the temp dir, the counters and the closing line.

. "$(dirname "$0")/lib.sh"
: "${FIDX_VG_BUILD:=build}"
FIDX=$FIDX_VG_BUILD/fidx
UNIT=$FIDX_VG_BUILD/vg/test_match
for f in "$FIDX" "$UNIT"; do
	if [ ! -x "$f" ]; then
		echo "valgrind.sh: no $f; build it first" >&2
		exit 2
	fi
done
if ! command -v valgrind >/dev/null 2>&1; then
	echo "valgrind.sh: valgrind is not installed (make deps installs it)" >&2
	exit 2
fi

set -f

# vg DESC CMD...: CMD under valgrind must report no error (exit 99 if it
# does), and leave nothing allocated at exit, reachable blocks included
# (as `make valgrind` asks of fidxd); its own exit status must be 0 or 1
# (grep's: matched or not).
vg() {
	_vdesc=$1
	shift
	run valgrind -q --leak-check=full --errors-for-leak-kinds=all \
	    --error-exitcode=99 "$@" || return
	if [ "$rc" = 0 ] || [ "$rc" = 1 ]; then
		pass "$_vdesc"
	else
		fail "$_vdesc: exit $rc"
	fi
}

vg "the scorer's unit test" "$UNIT"

# A real list: the files of this machine, as users feed fidx filter.
find /usr -type f 2>/dev/null | head -10000 >"$T/paths"
[ "$(wc -l <"$T/paths")" -gt 1000 ] || { echo "FAIL: too few paths"; exit 1; }

for q in dkrfl licnese 'share doc' 'bin py | pl' "'usr/lib !gz"; do
	vg "fidx filter -p $q" "$FIDX" filter -p "$q" <"$T/paths"
done
vg "fidx filter --mode exact" "$FIDX" filter -m exact -p lib <"$T/paths"

# Regex: PCRE2's JIT reads past the last line (QUERY_PAD), in a mapped
# file and in a pipe's malloc'd buffer, which only valgrind sees.
mkfifo "$T/fifo" || exit 2
for q in 'doc/.*\.gz$' '[^e]x'; do
	vg "fidx filter --mode regex $q (mapped)" \
	    "$FIDX" filter -m regex -p "$q" <"$T/paths"
	# A FIFO, so vg runs in this shell and its counts stick.
	cat "$T/paths" >"$T/fifo" &
	vg "fidx filter --mode regex $q (pipe)" \
	    "$FIDX" filter -m regex -p "$q" <"$T/fifo"
	wait $!
done

summary
