#!/bin/sh
# tests/filter.sh - `fidx filter` as a real process: exit codes, output
# formats, every input limit at limit-1/limit/limit+1, bytes that are not
# UTF-8, colour, and the same output whatever the thread count.
#
# Run by tests/run.sh with FIDX_BUILD set (default build/asan). Each check
# says what failed; the script prints a count and exits non-zero if any
# check failed. Everything lives in one mktemp -d, removed on any exit
# (tests/lib.sh has the helpers).

. "$(dirname "$0")/lib.sh"
FIDX=$FIDX_BUILD/fidx
if [ ! -x "$FIDX" ]; then
	echo "filter.sh: no $FIDX; build it first" >&2
	exit 2
fi

set -f	# queries such as 'f.*7' are passed unquoted in one loop below

# filter ARGS...: the command under test, for run, expect and check.
filter() {
	"$FIDX" filter "$@"
}

# via_pipe FILE ARGS...: run filter ARGS, with FILE on a pipe rather than
# mapped. A FIFO, not `cat | run`, so run runs in this shell and its
# counts stick.
via_pipe() {
	_in=$1
	shift
	rm -f "$T/fifo"
	mkfifo "$T/fifo" || { fail "mkfifo"; return; }
	cat "$_in" >"$T/fifo" 2>/dev/null &
	run filter "$@" <"$T/fifo"
	wait $! 2>/dev/null	# cat may die of SIGPIPE after a cut: fine
}

lines() {
	wc -l <"$1" | tr -d ' '
}

# The lines of file $1 that are not lines of file $2.
not_in() {
	awk 'NR == FNR { seen[$0] = 1; next } !($0 in seen)' "$2" "$1"
}

cat >"$T/list" <<'EOF'
src/main.c
src/match.c
lib/map.h
README.md
Makefile
tests/test_match.c
EOF

### exit codes

expect 0 "a match" filter mkfl <"$T/list"
check "a match prints Makefile" grep -qx Makefile "$T/out"
expect 1 "no match" filter zzzz <"$T/list"
check "no match prints nothing" test ! -s "$T/out"
expect 2 "unknown option" filter --bogus x <"$T/list"
expect 2 "non-numeric --limit" filter --limit abc x <"$T/list"
expect 2 "negative --limit" filter --limit -1 x <"$T/list"
expect 2 "--limit above its ceiling" filter --limit 10001 x <"$T/list"
expect 0 "--limit at its ceiling" filter --limit 10000 ma <"$T/list"
expect 2 "bad regex" filter --mode regex 'ma[i' <"$T/list"
check "bad regex names the offset" grep -q offset "$T/err"
expect 2 "bad --mode" filter --mode fuzzyy x <"$T/list"
check "bad --mode is named" grep -q -e '--mode' "$T/err"
expect 2 "missing query" filter <"$T/list"
expect 0 "two words are one query of two terms, as fidx a b" filter src ma <"$T/list"
check "two words: both terms must match" \
	test "$(sort "$T/out" | tr '\n' ,)" = "src/main.c,src/match.c,"
printf 'test -n\ntests/x\n' >"$T/words"
expect 0 "two words: an option after the query is a word" filter test -n <"$T/words"
check "two words: test -n finds the line with both" \
	test "$(cat "$T/out")" = "test -n"
expect 2 "query over the length limit" filter \
	"$(awk 'BEGIN { for (i = 0; i < 1025; i++) printf "a" }')" <"$T/list"
awk 'BEGIN { for (i = 0; i < 1024; i++) printf "a"; printf "\n" }' >"$T/a1024"
q1024=$(cat "$T/a1024")
expect 0 "query at the length limit" filter "$q1024" <"$T/a1024"
check "query at the length limit matches" cmp -s "$T/out" "$T/a1024"
expect 2 "bad --color" filter --color=sometimes x <"$T/list"
expect 2 "--threads 0" filter --threads 0 x <"$T/list"
expect 2 "--max-lines 0" filter --max-lines 0 x <"$T/list"
expect 2 "--max-line-bytes 65536" filter --max-line-bytes 65536 x <"$T/list"
expect 0 "-- ends the options" filter -- -m <<'EOF'
a-m
EOF
check "-- query matched" grep -qx 'a-m' "$T/out"

### empty input

expect 1 "empty input" filter x </dev/null
via_pipe /dev/null x
check "empty pipe exits 1 (got $rc)" test "$rc" = 1
printf '\n\n\n' >"$T/blank"
expect 1 "blank lines only" filter '' <"$T/blank"
expect 0 "empty query matches everything" filter '' <"$T/list"
check "empty query prints every line" \
	test "$(sort "$T/out" | tr '\n' ,)" = "$(sort "$T/list" | tr '\n' ,)"

### --limit

awk 'BEGIN { for (i = 0; i < 100; i++) printf "x/%03d\n", i }' >"$T/hundred"
expect 0 "default limit" filter x <"$T/hundred"
check "default limit prints 50 (got $(lines "$T/out"))" \
	test "$(lines "$T/out")" = 50
for n in 1 5 99 100 101; do
	want=$n
	[ "$n" -gt 100 ] && want=100
	expect 0 "--limit $n" filter --limit "$n" x <"$T/hundred"
	check "--limit $n prints $want (got $(lines "$T/out"))" \
		test "$(lines "$T/out")" = "$want"
done
# --limit 0 is refused, as by `fidx -n 0` (cli_parse_limit): fd reads 0
# as no limit, head as nothing, so either answer would surprise someone.
# (A heap of 0 items, once an ASan abort, is covered in test_query.c.)
expect 2 "--limit 0 is refused" filter --limit 0 x <"$T/hundred"
check "--limit 0 says why" grep -q 'not 0 (fd reads 0 as no limit' "$T/err"
check "--limit 0 prints nothing" test ! -s "$T/out"
expect 2 "-n0 is refused too" filter -n0 zzz <"$T/hundred"

### -0: NUL-separated input and output

printf 'a\nb\0c\0ab\0' >"$T/nul"
expect 0 "-0" filter -0 b <"$T/nul"
check "-0 output is NUL-terminated records with newlines kept" python3 -c '
import sys
d = open(sys.argv[1], "rb").read()
assert d.endswith(b"\0"), d
assert sorted(d[:-1].split(b"\0")) == [b"a\nb", b"ab"], d
' "$T/out"
check "-0 output has no newline separators" \
	test "$(tr -cd '\n' <"$T/out" | wc -c)" = 1
printf 'a\nb\0c' >"$T/nul2"
expect 0 "-0 with a last record unterminated" filter -0 c <"$T/nul2"
check "-0 unterminated last record" python3 -c '
import sys
assert open(sys.argv[1], "rb").read() == b"c\0"
' "$T/out"

### --json

expect 0 "--json" filter --json ma <"$T/list"
check "--json parses and has results and matched" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d["results"], list), d
assert d["matched"] == len(d["results"]) == 5, d
assert d["candidates"] == 6, d
assert d["truncated"] is False, d
for r in d["results"]:
    assert isinstance(r["path"], str) and isinstance(r["score"], int), r
    assert "path_b64" not in r, r
scores = [r["score"] for r in d["results"]]
assert scores == sorted(scores, reverse=True), scores
' "$T/out"
expect 0 "--json --limit 2" filter --json --limit 2 --positions ma <"$T/list"
check "--json counts every match but lists --limit of them" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["matched"] == 5 and len(d["results"]) == 2, d
for r in d["results"]:
    p = r["positions"]
    assert p == sorted(set(p)) and len(p) == 2, r
    assert [r["path"][i].lower() for i in p] == ["m", "a"], r
' "$T/out"
expect 1 "--json without a match" filter --json zzz <"$T/list"
check "--json without a match still prints JSON" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["results"] == [] and d["matched"] == 0, d
' "$T/out"

### --positions

printf 'Makefile\n' >"$T/mk"
run filter --positions mkfl <"$T/mk"
check "--positions plain format (got '$(cat "$T/out")')" \
	test "$(cat "$T/out")" = "$(printf '0,2,4,6\tMakefile')"
expect 0 "--positions" filter --positions 'src ma' <"$T/list"
# shellcheck disable=SC2016 # an awk program, not shell
check "--positions lines are p1,p2,...<TAB>path, increasing, on query bytes" \
	awk -F '\t' -v q='srcma' '
	NF != 2 || $1 !~ /^[0-9]+(,[0-9]+)*$/ { bad = 1 }
	{
		n = split($1, p, ",")
		for (i = 1; i <= n; i++) {
			c = tolower(substr($2, p[i] + 1, 1))
			if ((i > 1 && p[i] + 0 <= p[i - 1] + 0) ||
			    p[i] + 0 >= length($2) || index(q, c) == 0)
				bad = 1
		}
	}
	END { exit bad || NR == 0 }' "$T/out"

### bytes that are not UTF-8

printf 'caf\351\n' >"$T/latin1"
expect 0 "a Latin-1 line" filter caf <"$T/latin1"
check "a Latin-1 line is printed byte for byte" cmp -s "$T/out" "$T/latin1"
printf '\351' >"$T/e9"
expect 0 "a Latin-1 query byte" filter "$(cat "$T/e9")" <"$T/latin1"
check "a Latin-1 query byte matches it" cmp -s "$T/out" "$T/latin1"
expect 0 "--json on a Latin-1 line" filter --json caf <"$T/latin1"
check "--json has path_b64 that decodes to the same bytes" python3 -c '
import base64, json, sys
r = json.load(open(sys.argv[1]))["results"][0]
assert base64.b64decode(r["path_b64"]) == b"caf\xe9", r
assert r["path"] == "caf\ufffd", r
' "$T/out"
expect 0 "regex on a Latin-1 line" filter --mode regex 'af' <"$T/latin1"
check "regex on a Latin-1 line prints it" cmp -s "$T/out" "$T/latin1"
# PCRE2's UTF mode never matches an invalid byte: such a line runs in
# byte mode, where the Latin-1 byte is one character.
for re in 'caf.' 'caf[^e]' '^caf.$' 'caf\x{e9}'; do
	expect 0 "regex $re on a Latin-1 line" filter --mode regex "$re" <"$T/latin1"
	check "regex $re prints the Latin-1 line" cmp -s "$T/out" "$T/latin1"
done
printf 'caf\303\251\n' >"$T/utf8"
expect 0 "regex ^caf.\$ on UTF-8: one character" filter -m regex '^caf.$' <"$T/utf8"
expect 0 "a Latin-1 regex byte" filter --mode regex "$(cat "$T/e9")\$" <"$T/latin1"
check "a Latin-1 regex byte finds its line" cmp -s "$T/out" "$T/latin1"

### CRLF lists: the '\r' is not part of the name

printf 'src/main.c\r\nMakefile\r\nREADME\r\n' >"$T/crlf"
expect 0 "a CRLF list" filter -p mkfl <"$T/crlf"
check "a CRLF list prints the name without its CR" \
	test "$(cat "$T/out")" = "$(printf '0,2,4,6\tMakefile')"
expect 0 "a CRLF list, anchored at the end" filter 'README$' <"$T/crlf"
check "a CRLF list: README\$ finds README" test "$(cat "$T/out")" = README
expect 0 "a CRLF list, regex" filter -m regex 'E$' <"$T/crlf"
check "a CRLF list: regex E\$ finds README" test "$(cat "$T/out")" = README
printf 'a\r\0b\0' >"$T/crnul"
expect 0 "-0 keeps a trailing CR" filter -0 a <"$T/crnul"
check "-0 keeps a trailing CR: printed as it was" \
	test "$(od -An -c "$T/out" | tr -d ' ')" = 'a\r\0'

### --max-line-bytes

printf 'a23456789\na234567890\na2345678901\n' >"$T/lens"	# 9, 10, 11
expect 0 "--max-line-bytes 10" filter --max-line-bytes 10 a <"$T/lens"
check "a line at the limit is kept, limit-1 too" \
	test "$(sort "$T/out" | tr '\n' ,)" = "a23456789,a234567890,"
check "the longer line is reported on stderr" \
	grep -q -e '--max-line-bytes' "$T/err"
expect 0 "--max-line-bytes 11" filter --max-line-bytes 11 a <"$T/lens"
check "nothing skipped at 11" test "$(lines "$T/out")" = 3
check "no warning when nothing is skipped" test ! -s "$T/err"
expect 1 "--max-line-bytes 8 skips every line" filter --max-line-bytes 8 a \
	<"$T/lens"
check "skipping every line still warns" grep -q -e '--max-line-bytes' "$T/err"
# The ceiling: entries hold 16-bit lengths.
awk 'BEGIN { for (i = 0; i < 65535; i++) printf "a"; printf "\n" }' \
	>"$T/long65535"
awk 'BEGIN { for (i = 0; i < 65536; i++) printf "a"; printf "\n" }' \
	>"$T/long65536"
expect 0 "a 65535-byte line at --max-line-bytes 65535" filter \
	--max-line-bytes 65535 aaa <"$T/long65535"
check "the 65535-byte line comes back whole" cmp -s "$T/out" "$T/long65535"
expect 1 "a 65536-byte line is skipped" filter --max-line-bytes 65535 aaa \
	<"$T/long65536"
check "the 65536-byte line is reported" grep -q -e '--max-line-bytes' "$T/err"
expect 1 "a 4097-byte line is skipped by default" filter a <<EOF
$(awk 'BEGIN { for (i = 0; i < 4097; i++) printf "a" }')
EOF

### --max-lines

awk 'BEGIN { for (i = 1; i <= 10; i++) printf "x%02d\n", i }' >"$T/ten"
expect 0 "--max-lines 9" filter --max-lines 9 x <"$T/ten"
check "--max-lines 9 reads the first 9 lines" \
	test "$(tr '\n' , <"$T/out")" = "x01,x02,x03,x04,x05,x06,x07,x08,x09,"
check "--max-lines 9 warns" grep -q -e '--max-lines' "$T/err"
for n in 10 11; do
	expect 0 "--max-lines $n" filter --max-lines "$n" x <"$T/ten"
	check "--max-lines $n reads all 10" cmp -s "$T/out" "$T/ten"
	check "--max-lines $n does not warn" test ! -s "$T/err"
done
expect 0 "--max-lines with --json" filter --json --max-lines 9 x <"$T/ten"
check "--json shows the cut" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["candidates"] == 9 and d["matched"] == 9 and d["truncated"], d
' "$T/out"
# Blank lines are not candidates and do not count.
printf 'x1\n\n\nx2\n' >"$T/gaps"
run filter --max-lines 2 x <"$T/gaps"
check "blank lines do not count against --max-lines" \
	test "$(tr '\n' , <"$T/out")" = "x1,x2,"

### --max-input-bytes (a file is mapped, a pipe is read: test both)

printf 'aaa\nbbb\nccc\n' >"$T/abc"	# 12 bytes
for how in file pipe; do
	for n in 11 12 13; do
		if [ "$how" = file ]; then
			run filter --max-input-bytes "$n" '' <"$T/abc"
		else
			via_pipe "$T/abc" --max-input-bytes "$n" ''
		fi
		check "$how, --max-input-bytes $n: exit 0 (got $rc)" test "$rc" = 0
		check "$how, --max-input-bytes $n: no partial line" \
			test -z "$(not_in "$T/out" "$T/abc")"
		if [ "$n" -lt 12 ]; then
			check "$how, --max-input-bytes $n warns" \
				grep -q -e '--max-input-bytes' "$T/err"
			check "$how, --max-input-bytes $n keeps whole lines" \
				test "$(sort "$T/out" | tr '\n' ,)" = "aaa,bbb,"
		else
			check "$how, --max-input-bytes $n keeps all" \
				test "$(lines "$T/out")" = 3
			check "$how, --max-input-bytes $n does not warn" \
				test ! -s "$T/err"
		fi
	done
	# A cut inside the first line leaves nothing.
	if [ "$how" = file ]; then
		run filter --max-input-bytes 2 '' <"$T/abc"
	else
		via_pipe "$T/abc" --max-input-bytes 2 ''
	fi
	check "$how, cut inside the first line: exit 1 (got $rc)" test "$rc" = 1
	check "$how, cut inside the first line: no output" test ! -s "$T/out"
done
# Mapped stdin that was partly read already starts where the reader is.
(
	dd bs=4 count=1 of=/dev/null 2>/dev/null
	"$FIDX" filter '' >"$T/out" 2>"$T/err"
) <"$T/abc"
check "a mapped stdin is read from its offset" \
	test "$(sort "$T/out" | tr '\n' ,)" = "bbb,ccc,"

### --mode

expect 1 "--mode exact: no subsequence" filter --mode exact mkfl <"$T/list"
expect 0 "--mode exact: substring" filter --mode exact make <"$T/list"
check "--mode exact finds Makefile" grep -qx Makefile "$T/out"
expect 0 "--mode regex" filter --mode regex 'ma.n\.c$' <"$T/list"
check "--mode regex prints only src/main.c" \
	test "$(cat "$T/out")" = src/main.c
expect 0 "-m regex, smart case" filter -m regex 'readme' <"$T/list"
check "-m regex readme finds README.md" grep -qx README.md "$T/out"
expect 1 "-m regex, upper case is exact" filter -m regex 'ReadMe' <"$T/list"

### regex errors: a line PCRE2 gives up on is counted, never a silent miss

awk 'BEGIN { for (i = 0; i < 30; i++) printf "a"; print "!" }' >"$T/hard"
cp "$T/hard" "$T/hard2"
echo 'b!' >>"$T/hard2"
expect 2 "regex: every line undecided is an error" filter \
	-m regex '^(a|a)*b|!' <"$T/hard"
check "regex: undecided lines are reported" \
	grep -q 'could not be decided on 1 of 1 lines' "$T/err"
expect 0 "regex: a match among undecided lines" filter \
	-m regex '^(a|a)*b|!' <"$T/hard2"
check "regex: the decidable line is printed" test "$(cat "$T/out")" = 'b!'
check "regex: and the undecided one reported" \
	grep -q 'could not be decided on 1 of 2 lines' "$T/err"
run filter --json -m regex '^(a|a)*b|!' <"$T/hard2"
check "regex: --json counts regex_errors" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["regex_errors"] == 1 and d["matched"] == 1, d
' "$T/out"
run filter --json -m regex 'a' <"$T/list"
check "regex: regex_errors is 0 when every line is decided" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["regex_errors"] == 0, d
' "$T/out"
check "regex: no warning when every line is decided" test ! -s "$T/err"

### typo matches: printed, so exit 0, and never counted as matched

printf 'LICENSE\n' >"$T/license"
expect 0 "a typo match printed exits 0" filter licnese <"$T/license"
check "the typo match is printed" grep -qx LICENSE "$T/out"
expect 0 "a typo match with --json exits 0" filter --json licnese <"$T/license"
for n in 1 50; do
	run filter --json --limit $n licnese <"$T/license"
	check "typo matches are not counted as matched (--limit $n)" \
	    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["matched"] == 0, d
' "$T/out"
done

### Unicode case

printf 'docs/\303\204rger.txt\nru/\320\224\320\236\320\232.md\nplain/arger.txt\n' \
	>"$T/uni"
expect 0 "lower-case a-umlaut finds upper-case" filter "$(printf '\303\244rger')" \
	<"$T/uni"
check "ärger finds only docs/Ärger.txt" \
	test "$(cat "$T/out")" = "$(printf 'docs/\303\204rger.txt')"
expect 0 "--positions name both bytes of the letter" filter --positions \
	"$(printf '\303\244rg')" <"$T/uni"
check "ärg lights bytes 5,6,7,8" grep -q '^5,6,7,8	' "$T/out"
expect 0 "Cyrillic folds" filter "$(printf '\320\264\320\276\320\272')" \
	<"$T/uni"
check "док finds ДОК" grep -q '^ru/' "$T/out"
printf 'x/\303\244rger\n' >"$T/uni.lower"
expect 1 "upper-case A-umlaut is exact" filter "$(printf '\303\204rger')" \
	<"$T/uni.lower"

### --color

esc=$(printf '\033')
expect 0 "--color=always" filter --color=always mk <"$T/mk"
printf '\033[1;32mM\033[0ma\033[1;32mk\033[0mefile\n' >"$T/want"
check "--color=always wraps the matched bytes" cmp -s "$T/out" "$T/want"
expect 0 "--color=always, a run" filter --color=always make <"$T/mk"
printf '\033[1;32mMake\033[0mfile\n' >"$T/want"
check "--color=always wraps a run once" cmp -s "$T/out" "$T/want"
expect 0 "--color=never" filter --color=never mk <"$T/mk"
check "--color=never prints no escape" cmp -s "$T/out" "$T/mk"
expect 0 "--color=auto into a file" filter --color=auto mk <"$T/mk"
check "--color=auto into a file prints no escape" cmp -s "$T/out" "$T/mk"
expect 0 "--color=always --json" filter --color=always --json mk <"$T/mk"
check "--json never colours" test -z "$(grep "$esc" "$T/out")"

### a big input: threads and determinism

awk 'BEGIN {
	for (i = 0; i < 200000; i++)
		printf "dir%d/sub%d/file_%d.c\n", i % 97, i % 13, i
}' >"$T/big"
for args in "fl12" "--positions d1s2" "--json --positions fi99" \
	"-m exact _12" "-m regex sub1/f.*7\\.c" "--max-lines 150001 f9"; do
	# shellcheck disable=SC2086 # args is a word list on purpose
	run filter --limit 500 --threads 1 $args <"$T/big"
	rc1=$rc
	mv "$T/out" "$T/one"
	for t in 2 3 16; do
		# shellcheck disable=SC2086
		run filter --limit 500 --threads "$t" $args <"$T/big"
		check "big input, $args: exit 0 with 1 and $t threads" \
			test "$rc1$rc" = 00
		check "big input, $args: same output with 1 and $t threads" \
			cmp -s "$T/one" "$T/out"
	done
	# shellcheck disable=SC2086
	via_pipe "$T/big" --limit 500 --threads 2 $args
	check "big input, $args: a pipe gives the same output" \
		cmp -s "$T/one" "$T/out"
done
run filter --json --limit 10 --threads 2 file_ <"$T/big"
check "big input: every line matched and counted" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["matched"] == d["candidates"] == 200000, d
assert len(d["results"]) == 10, d
' "$T/out"
run filter --json --limit 10 --threads 2 --max-lines 123457 file_ <"$T/big"
check "big input, --max-lines across threads" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["matched"] == d["candidates"] == 123457 and d["truncated"], d
' "$T/out"

summary
