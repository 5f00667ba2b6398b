# tests/lib.sh - what the shell suites (cli.sh, filter.sh, valgrind.sh)
# share, sourced first: . "$(dirname "$0")/lib.sh"
#
# Owns: the suite's private temp dir $T (mktemp -d, its real path) and the
# trap that removes it on every exit, after the suite's own on_exit
# function if it defines one (to stop the daemons it started); the check
# counters and the closing line "NAME: N passed, N failed".
# Never touches: anything outside $T, a daemon it was not told about.
#
# The rules of the suites: every check can fail and says why; a sanitizer
# report or a death by a signal is always a failure; every wait polls a
# condition with a deadline (wait_until), never a bare sleep; every check
# runs to the end, and the exit status says whether any failed.
#
#   pass DESC, fail DESC    one check passed / failed (fail shows the last
#                           run's stdout and stderr)
#   check DESC CMD...       CMD must succeed
#   run CMD...              stdout in $T/out, stderr in $T/err, status in
#                           $rc; returns 1 (a failed check) on a sanitizer
#                           report or a death by a signal
#   expect CODE DESC CMD... CMD exits with exactly CODE
#   must_fail DESC CMD...   any error exit passes; success or a signal
#                           fails (git's test_must_fail)
#   wait_until CMD...       polls CMD until it succeeds, for at most
#                           5 s x TIMEOUT_MULTIPLIER; returns 1 if it never did
#   not CMD...              CMD's status negated, for wait_until
#   summary                 the closing line; returns 1 if any check failed

: "${FIDX_BUILD:=build/asan}"
: "${TIMEOUT_MULTIPLIER:=1}"
LIB_NAME=$(basename "$0")
passed=0
failed=0

T=$(mktemp -d "${TMPDIR:-/tmp}/fidx-${LIB_NAME%.sh}.XXXXXX") || exit 2
T=$(cd "$T" && pwd -P) || exit 2

lib_exit() {
	# on_exit may be defined by the suite after sourcing this file.
	if command -v on_exit >/dev/null 2>&1; then
		on_exit
	fi
	rm -rf "$T"
}
trap lib_exit EXIT
trap 'exit 130' HUP INT TERM

pass() {
	passed=$((passed + 1))
	echo "ok: $*"
}

fail() {
	failed=$((failed + 1))
	echo "FAIL: $*"
	if [ -s "$T/out" ]; then
		echo "  out:"
		head -n 20 "$T/out" | sed 's/^/    /'
	fi
	if [ -s "$T/err" ]; then
		echo "  err:"
		head -n 40 "$T/err" | sed 's/^/    /'
	fi
}

check() {
	_desc=$1
	shift
	if "$@"; then pass "$_desc"; else fail "$_desc"; fi
}

run() {
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	if grep -q -e 'Sanitizer' -e 'runtime error:' "$T/err"; then
		fail "sanitizer report from: $*"
		return 1
	fi
	if [ "$rc" -gt 128 ]; then
		fail "died of signal $((rc - 128)): $*"
		return 1
	fi
	return 0
}

expect() {
	_want=$1 _desc=$2
	shift 2
	run "$@" || return 1
	if [ "$rc" -ne "$_want" ]; then
		fail "$_desc: exit $rc, wanted $_want"
		return 1
	fi
	pass "$_desc"
}

must_fail() {
	_desc=$1
	shift
	run "$@" || return 1
	if [ "$rc" -eq 0 ]; then
		fail "$_desc: succeeded, wanted an error"
		return 1
	fi
	pass "$_desc"
}

wait_until() {
	_tries=$((100 * TIMEOUT_MULTIPLIER))
	while ! "$@"; do
		_tries=$((_tries - 1))
		[ "$_tries" -gt 0 ] || return 1
		sleep 0.05
	done
}

not() {
	! "$@"
}

summary() {
	echo
	echo "$LIB_NAME: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
