#!/bin/sh
# tests/run.sh - runs each test (a cmocka binary, a shell script or a
# Python file) in its own process with a timeout, and prints one closing line:
#   tests: N passed, N failed
# TIMEOUT_MULTIPLIER scales the per-test timeout (sanitizer builds are slow).
# FIDX_BUILD names the build directory whose binaries the scripts test.

: "${TIMEOUT_MULTIPLIER:=3}"
: "${TEST_TIMEOUT:=60}"
: "${FIDX_BUILD:=build/asan}"
export FIDX_BUILD TIMEOUT_MULTIPLIER
# The suites' fixtures are thousands of small files: on a tmpfs, making
# them does not wait on a disk that other work keeps busy (3000 files for
# daemon_bounds.py took 2-6 s on an ext4 /tmp while another job wrote to
# it, 0.1 s on /dev/shm). A TMPDIR of the caller's own is kept.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMPDIR=/dev/shm
	export TMPDIR
fi
# The suites name their sockets; a caller's FIDX_SOCKET would override
# the defaults some of them test.
unset FIDX_SOCKET
# Leak checks are on, and any sanitizer report fails the test.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

pass=0
fail=0
failed=""
limit=$((TEST_TIMEOUT * TIMEOUT_MULTIPLIER))
for t in "$@"; do
	name=$(basename "$t")
	log="$FIDX_BUILD/log/$name.log"
	mkdir -p "$FIDX_BUILD/log"
	case "$t" in
	*.sh) cmd="sh $t" ;;
	*.py) cmd="python3 $t" ;;
	*) cmd="$t" ;;
	esac
	if timeout -k 5 "$limit" $cmd >"$log" 2>&1; then
		pass=$((pass + 1))
		echo "ok   $name"
	else
		rc=$?
		fail=$((fail + 1))
		failed="$failed $name"
		[ "$rc" = 124 ] && echo "timed out after ${limit}s" >>"$log"
		echo "FAIL $name (exit $rc); last lines of $log:"
		tail -n 30 "$log" | sed 's/^/     /'
	fi
done
echo
echo "tests: $pass passed, $fail failed"
[ "$fail" = 0 ] || { echo "failed:$failed"; exit 1; }
