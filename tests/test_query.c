/*
 * test_query.c - the query syntax of query.h, its limits, and its results.
 *
 * Each syntax element is checked as pairs: a path it must match and one
 * it must not, and scores are compared with other queries' scores, never
 * with magic numbers. Limits are tested at limit-1, limit and limit+1.
 * A seeded property loop checks, over random paths and queries, that an
 * exact match is also a fuzzy match and that positions are consistent
 * with scores. Allocation failures are injected with alloc_fail_at().
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pcre2.h>

#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/match.h"
#include "../common/typo.h"
#include "../common/query.h"
#include "../common/topk.h"
#include "testutil.h"

/* A compiled query with its scratch, freed together. */
struct fx {
	struct query *q;
	struct query_scratch *sc;
};

static struct fx
fx_compile(const char *text, size_t len, enum query_mode mode)
{
	struct fidx_err err = { "" };
	struct fx f;

	f.q = query_compile(text, len, mode, &err);
	if (f.q == NULL) {
		print_error("query '%.*s' (%s) failed to compile: %s\n",
		    (int)len, text, query_mode_name(mode), err.msg);
		fail();
	}
	f.sc = query_scratch_new(f.q);
	assert_non_null(f.sc);
	return f;
}

static struct fx
fx_new(const char *text, enum query_mode mode)
{
	return fx_compile(text, strlen(text), mode);
}

static void
fx_free(struct fx *f)
{
	query_scratch_free(f->sc);
	query_free(f->q);
}

static int32_t
fx_score(struct fx *f, const char *path, size_t n)
{
	return query_score(f->q, path, n, match_basename(path, n),
	    match_mask(path, n), f->sc);
}

static int
fx_positions(struct fx *f, const char *path, size_t n, uint32_t *pos)
{
	return query_positions(f->q, path, n, match_basename(path, n), f->sc,
	    pos);
}

/* Score of path under a one-off query, MATCH_NONE if none. */
static int32_t
qscore(const char *query, enum query_mode mode, const char *path)
{
	struct fx f = fx_new(query, mode);
	int32_t v = fx_score(&f, path, strlen(path));

	fx_free(&f);
	return v;
}

static void
expect(enum query_mode mode, const char *query, const char *path, bool want)
{
	bool got = qscore(query, mode, path) != MATCH_NONE;

	if (got != want) {
		print_error("%s query '%s' on '%s': expected %s, got %s\n",
		    query_mode_name(mode), query, path,
		    want ? "a match" : "no match", got ? "a match" : "none");
		fail();
	}
}

#define MATCHES(q, p) expect(QUERY_FUZZY, (q), (p), true)
#define MISSES(q, p) expect(QUERY_FUZZY, (q), (p), false)
#define EX_MATCHES(q, p) expect(QUERY_EXACT, (q), (p), true)
#define EX_MISSES(q, p) expect(QUERY_EXACT, (q), (p), false)
#define RE_MATCHES(q, p) expect(QUERY_REGEX, (q), (p), true)
#define RE_MISSES(q, p) expect(QUERY_REGEX, (q), (p), false)

/* Compiling must fail, with a message containing want. */
static void
expect_error(const char *text, size_t len, enum query_mode mode,
    const char *want)
{
	struct fidx_err err = { "" };
	struct query *q = query_compile(text, len, mode, &err);

	if (q != NULL) {
		print_error("query '%.*s' compiled; expected '%s'\n",
		    (int)(len > 60 ? 60 : len), text, want);
		query_free(q);
		fail();
	}
	if (strstr(err.msg, want) == NULL) {
		print_error("error '%s' does not mention '%s'\n", err.msg, want);
		fail();
	}
}

/*
 * Checks the positions of a matching path: strictly increasing, inside
 * the path, and each on a byte equal (case-folded) to some query byte.
 * Returns the count.
 */
static int
check_positions(struct fx *f, const char *query, const char *path, size_t n)
{
	uint32_t *pos = calloc(n + 1, sizeof(*pos));
	int np;

	assert_non_null(pos);
	np = fx_positions(f, path, n, pos);
	if (np < 0) {
		print_error("'%s' on '%.*s': no positions for a match\n", query,
		    (int)n, path);
		fail();
	}
	for (int k = 0; k < np; k++) {
		if (pos[k] >= n || (k > 0 && pos[k] <= pos[k - 1])) {
			print_error("'%s' on '%.*s': bad position %u at %d\n",
			    query, (int)n, path, pos[k], k);
			fail();
		}
		uint8_t c = match_lower[(uint8_t)path[pos[k]]];
		bool found = false;
		for (const char *s = query; *s; s++)
			if (match_lower[(uint8_t)*s] == c)
				found = true;
		if (!found) {
			print_error("'%s' on '%.*s': position %u holds '%c', "
			    "not a query byte\n", query, (int)n, path, pos[k],
			    path[pos[k]]);
			fail();
		}
	}
	free(pos);
	return np;
}

/* The positions of query on path as a bitmask (paths under 64 bytes). */
static uint64_t
pos_set(const char *query, enum query_mode mode, const char *path)
{
	struct fx f = fx_new(query, mode);
	size_t n = strlen(path);
	uint32_t pos[64];
	uint64_t set = 0;
	int np;

	assert_true(n < 64);
	np = fx_positions(&f, path, n, pos);
	assert_true(np >= 0);
	for (int k = 0; k < np; k++)
		set |= 1ull << pos[k];
	fx_free(&f);
	return set;
}

static void
test_mode_names(void **state)
{
	enum query_mode m;

	(void)state;
	for (m = QUERY_FUZZY; m <= QUERY_REGEX; m++) {
		enum query_mode back;

		assert_int_equal(query_mode_parse(query_mode_name(m), &back), 0);
		assert_int_equal(back, m);
	}
	assert_int_equal(query_mode_parse("Fuzzy", &m), -1);
	assert_int_equal(query_mode_parse("", &m), -1);
}

static void
test_fuzzy_term(void **state)
{
	(void)state;
	MATCHES("mkfl", "Makefile");
	MATCHES("srcmain", "src/main.c");
	MISSES("lfkm", "Makefile");	/* order matters */
	MISSES("mkfll", "Makefile");	/* each byte is used once */
	MISSES("xyz", "src/main.c");
	MISSES("main.c", "main");	/* longer than the path */
}

static void
test_quoted_exact(void **state)
{
	(void)state;
	MATCHES("'make", "Makefile");
	MISSES("'mkfl", "Makefile");
	MATCHES("'n.c", "src/main.c");
	/* A quoted term scores as the literal run a fuzzy term may pick. */
	assert_int_equal(qscore("'main", QUERY_FUZZY, "src/main.c"),
	    qscore("main", QUERY_FUZZY, "src/main.c"));
}

static void
test_prefix_suffix_whole(void **state)
{
	(void)state;
	MATCHES("^src", "src/main.c");
	MISSES("^src", "lib/src/x.c");
	MISSES("^sr/m", "src/main.c");	/* an anchored term is literal */
	MATCHES("^SRC", "SRC/x");
	MISSES("^SRC", "src/x");

	MATCHES(".c$", "src/main.c");
	MISSES(".c$", "src/main.cc");
	MISSES(".c$", "src/main.h");
	MISSES("mc$", "src/main.c");	/* literal, not fuzzy */

	MATCHES("^main.c$", "main.c");
	MATCHES("^MAIN.c$", "MAIN.c");
	MISSES("^main.c$", "src/main.c");
	MISSES("^main.c$", "main.cc");
	MISSES("^main.c$", "main.");
}

static void
test_negation(void **state)
{
	(void)state;
	MISSES("!test", "tests/x.c");
	MATCHES("!test", "src/x.c");
	/* Negation is an inverse exact match: a mere subsequence passes. */
	MATCHES("!tst", "tests/x.c");
	MISSES("!^src", "src/x.c");
	MATCHES("!^src", "lib/src/x.c");
	MISSES("!.c$", "a/b.c");
	MATCHES("!.c$", "a/b.h");
	/* Smart case applies to negated terms too. */
	MATCHES("!Test", "tests/x.c");
	MISSES("!test", "TESTS/x.c");
	/* A negated term adds nothing to the score. */
	assert_int_equal(qscore("main !test", QUERY_FUZZY, "src/main.c"),
	    qscore("main", QUERY_FUZZY, "src/main.c"));
	assert_int_equal(qscore("!test", QUERY_FUZZY, "src/main.c"), 0);
}

static void
test_inverse_fuzzy(void **state)
{
	(void)state;
	MISSES("!'tst", "tests/x.c");
	MATCHES("!'tst", "src/x.c");
	MISSES("!'tst", "t/s/t");
	MATCHES("main !'tst", "src/main.c");
	MISSES("main !'tst", "test/main.c");
}

static void
test_or_groups(void **state)
{
	(void)state;
	MATCHES("foo | bar", "x/foo.c");
	MATCHES("foo | bar", "x/bar.c");
	MISSES("foo | bar", "x/baz.c");
	MATCHES("a | b | zzz", "zzz");
	/* "|" binds its neighbours only: a AND (b OR c). */
	MATCHES("src main | util", "src/util.c");
	MATCHES("src main | util", "src/main.c");
	MISSES("src main | util", "lib/main.c");
	MATCHES("'.h$ | .c$", "x.c");
	MATCHES("!foo | bar", "foo/bar");
	MISSES("!foo | zzz", "foo/bar");
	/* A group scores its best alternative. */
	assert_int_equal(qscore("main | zzz", QUERY_FUZZY, "src/main.c"),
	    qscore("main", QUERY_FUZZY, "src/main.c"));
	assert_int_equal(qscore("zzz | main", QUERY_FUZZY, "src/main.c"),
	    qscore("main", QUERY_FUZZY, "src/main.c"));
	int32_t both = qscore("mn | main", QUERY_FUZZY, "src/main.c");
	int32_t a = qscore("mn", QUERY_FUZZY, "src/main.c");
	int32_t b = qscore("main", QUERY_FUZZY, "src/main.c");
	assert_int_equal(both, a > b ? a : b);
}

static void
test_and_terms(void **state)
{
	(void)state;
	MATCHES("src main", "src/main.c");
	MATCHES("main src", "src/main.c");	/* terms in any order */
	MISSES("src main", "src/util.c");
	MISSES("src main", "lib/main.c");
	MATCHES("  src   main  ", "src/main.c");
	/*
	 * The score is the sum of the terms' scores, each over the whole
	 * path (with no directory, that is how one term alone scores too),
	 * and QUERY_BONUS_ORDER when they follow in the order typed.
	 */
	int32_t sum = qscore("src", QUERY_FUZZY, "src_main.c") +
	    qscore("main", QUERY_FUZZY, "src_main.c");
	assert_int_equal(qscore("src main", QUERY_FUZZY, "src_main.c"),
	    sum + QUERY_BONUS_ORDER);
	assert_int_equal(qscore("main src", QUERY_FUZZY, "src_main.c"), sum);
	/* Overlapping alignments are no order. */
	assert_int_equal(qscore("sr rc", QUERY_FUZZY, "src"),
	    qscore("sr", QUERY_FUZZY, "src") + qscore("rc", QUERY_FUZZY, "src"));
	/* Only when every term is a plain fuzzy one. */
	assert_int_equal(qscore("src main !zz", QUERY_FUZZY, "src_main.c"),
	    qscore("main src !zz", QUERY_FUZZY, "src_main.c"));
	assert_int_equal(qscore("src 'main", QUERY_FUZZY, "src_main.c"),
	    qscore("'main src", QUERY_FUZZY, "src_main.c"));
	/* The order people name a path in: directory, then file. */
	assert_true(qscore("ssh config", QUERY_FUZZY, "/etc/ssh/ssh_config") >
	    qscore("ssh config", QUERY_FUZZY, "/usr/lib/compute/config_ssh.py"));
	/* Folded terms are ordered by the path's own bytes. */
	assert_int_equal(qscore("ärger txt", QUERY_FUZZY, "d/Ärger.txt"),
	    qscore("txt ärger", QUERY_FUZZY, "d/Ärger.txt") +
	    QUERY_BONUS_ORDER);
	/* Several terms describe a path: "bin" names the directory here. */
	assert_true(qscore("bin python", QUERY_FUZZY, "usr/bin/python3") >
	    qscore("bin python", QUERY_FUZZY, "doc/bench/python_bindings.md"));
}

static void
test_escapes(void **state)
{
	(void)state;
	MATCHES("foo\\ bar", "x/foo bar.txt");
	MISSES("foo\\ bar", "x/foo_bar.txt");
	MATCHES("foo bar", "x/foo_bar.txt");	/* unescaped: two terms */
	MATCHES("'foo\\ bar", "x/foo bar.txt");
	MISSES("'foo\\ bar", "x/foo  bar.txt");
	/* An escaped operator is a literal byte. */
	MATCHES("\\!x", "a!x");
	MISSES("\\!x", "x");
	MATCHES("\\^x", "a^x");
	MISSES("\\^x", "xa");
	MATCHES("x\\$", "ax$b");
	MISSES("x\\$", "ax");
	MATCHES("\\|", "a|b");
	MATCHES("a\\\\b", "a\\b");	/* an escaped backslash */
	MISSES("a\\\\b", "ab");
	MATCHES("a\\", "a\\b");		/* a trailing backslash is literal */
}

static void
test_lone_operators(void **state)
{
	(void)state;
	MATCHES("!", "hi!");
	MISSES("!", "hi");
	MATCHES("^", "a^b");
	MISSES("^", "ab");
	MATCHES("$", "cost$");
	MISSES("$", "cost");
	MATCHES("|", "a|b");
	MISSES("|", "ab");
	MATCHES("'", "it's");
	MISSES("'", "its");
	/* At the edges of a query "|" has nothing to join: it is literal. */
	MATCHES("| a", "a|");
	MISSES("| a", "a");
	MATCHES("a |", "a|");
	MISSES("a |", "a");
}

/*
 * Regression (query.c, query_term_init), fixed: only the escape state of a token's
 * first and last bytes is kept, so after an unescaped '!' an escaped '\''
 * or '^' still acts as an operator. The query !\'tst must mean "does not
 * contain 'tst" but acts as !'tst (inverse fuzzy); !\^src must mean
 * "does not contain ^src" but acts as !^src (not a prefix).
 */
static void
test_escaped_operator_after_negation(void **state)
{
	(void)state;
	MISSES("!\\!x", "!x");		/* this one works */
	MATCHES("!\\!x", "x");
	MISSES("!\\'tst", "x'tst");
	MATCHES("!\\'tst", "tests/x");
	MISSES("!\\^src", "a^src");
	MATCHES("!\\^src", "src/x");
}

/*
 * BUG (query.c, query_term_init), against query.h's "a term of operators
 * only is taken literally": "^$" is read as "starts with $", and "!!" as
 * "does not contain !". Taken literally, "^$" fuzzy-matches "a^b$" and
 * not "$x"; "!!" matches "a!!" and not "x".
 */
static void
test_operator_only_terms(void **state)
{
	(void)state;
	MATCHES("''", "a''b");
	MISSES("''", "it's");
	MATCHES("^$", "a^b$");
	MISSES("^$", "$x");
	MATCHES("!!", "a!!");
	MISSES("!!", "x");
}

static void
test_exact_mode(void **state)
{
	(void)state;
	EX_MATCHES("make", "Makefile");
	EX_MISSES("mkfl", "Makefile");
	EX_MATCHES("'mkfl", "Makefile");	/* ' turns fuzzy */
	EX_MISSES("'lfkm", "Makefile");
	EX_MATCHES("^src", "src/a");
	EX_MISSES("^src", "a/src");
	EX_MATCHES(".c$", "a.c");
	EX_MISSES("!test", "tests/a.c");
	EX_MATCHES("!tst", "tests/a.c");
	EX_MATCHES("src main", "src/main.c");
	EX_MISSES("src mn", "src/main.c");
	EX_MATCHES("zz | main", "src/main.c");
	EX_MISSES("Make", "makefile");
}

static void
test_regex_mode(void **state)
{
	(void)state;
	RE_MATCHES("ma.n\\.c$", "src/main.c");
	RE_MISSES("ma.n\\.c$", "src/main.cc");
	RE_MATCHES("^src/", "src/x");
	RE_MISSES("^src/", "lib/src/x");
	RE_MATCHES("a|zz", "a");	/* the whole query is one pattern */
	RE_MATCHES("a b", "a b");
	RE_MISSES("a b", "a/b");
	/* Smart case. */
	RE_MATCHES("readme", "README.md");
	RE_MATCHES("README", "README.md");
	RE_MISSES("README", "readme.md");
	RE_MISSES("Readme", "README.md");
	/* An escape such as \S or \W is not an upper-case letter. */
	RE_MATCHES("\\Sead", "README");
	RE_MATCHES("\\Wread", "x/README");
	RE_MISSES("\\Sead", "R-ad");
	/* An escaped backslash does not hide the letter after it. */
	RE_MISSES("\\\\Sx", "\\sx");
	RE_MATCHES("\\\\Sx", "\\Sx");
}

/*
 * A path that is not valid UTF-8 is matched a byte at a time: "." and
 * "[^e]" take a Latin-1 byte as one character (in PCRE2's UTF mode no
 * item matches an invalid byte, so these missed), while a valid path
 * keeps UTF mode ("." is one whole "é").
 */
static void
test_regex_invalid_utf8(void **state)
{
	(void)state;
	RE_MATCHES("caf.", "caf\xe9");
	RE_MATCHES("caf[^e]", "caf\xe9");
	RE_MATCHES("^caf.$", "caf\xe9");
	RE_MATCHES("caf\\x{e9}", "caf\xe9");
	RE_MATCHES("^.{4}$", "caf\xe9");
	/* Valid UTF-8 stays character-wise: é is one ".". */
	RE_MATCHES("^caf.$", "caf\xc3\xa9");
	RE_MATCHES("caf\\x{e9}", "caf\xc3\xa9");
	RE_MISSES("^.{5}$", "caf\xc3\xa9");
	/* A pattern only UTF mode can read still runs everywhere. */
	RE_MATCHES("\\x{100}|f", "caf\xe9");
	RE_MISSES("\\x{100}", "caf\xe9");
	RE_MATCHES("\\x{100}", "\xc4\x80");
	/* A Latin-1 byte in the pattern is a byte, not a bad regex. */
	RE_MATCHES("caf\xe9$", "caf\xe9");
	RE_MISSES("caf\xe9$", "cafe");
	/* Smart case as before; an upper-case byte stays exact. */
	RE_MATCHES("CAF.", "x/CAF\xe9");
	RE_MISSES("CAF.", "caf\xe9");
}

static void
test_regex_error(void **state)
{
	static const char bad[] = "ma[i";
	PCRE2_UCHAR want[128];
	PCRE2_SIZE off;
	int code;
	pcre2_code *re;

	(void)state;
	/* PCRE2's own message for this pattern, found independently. */
	re = pcre2_compile((PCRE2_SPTR)bad, strlen(bad), PCRE2_UTF, &code,
	    &off, NULL);
	assert_null(re);
	assert_true(pcre2_get_error_message(code, want, sizeof(want)) > 0);
	expect_error(bad, strlen(bad), QUERY_REGEX, (const char *)want);
	expect_error(bad, strlen(bad), QUERY_REGEX, "offset");
	expect_error("(a", 2, QUERY_REGEX, "offset");
	expect_error("a)", 2, QUERY_REGEX, "offset");
	/* The same text is fine as a fuzzy or exact query. */
	MISSES("ma[i", "main");
	MATCHES("ma[i", "ma[i]n");
	EX_MATCHES("ma[i", "ma[i]n");
}

static void
test_smart_case_per_term(void **state)
{
	(void)state;
	MATCHES("make", "MAKEFILE");
	MISSES("Make", "makefile");
	MATCHES("Make", "Makefile");
	MATCHES("Make file", "Makefile");
	MISSES("Make File", "Makefile");
	MATCHES("MAKE file", "MAKEFILE");	/* each term decides alone */
	MISSES("MAKE file", "makefile");
	MATCHES("'Make", "Makefile");
	MISSES("'Make", "makefile");
	MISSES("^Src", "src/x");
	MATCHES("^Src", "Src/x");
	MATCHES("Src | lib", "lib/x");
	MISSES("Src | Lib", "src/lib");
}

/* A query of n bytes of 'a'. */
static char *
query_of_as(size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, 'a', n);
	s[n] = '\0';
	return s;
}

static void
test_query_length_limit(void **state)
{
	char *path = query_of_as(FIDX_MAX_QUERY);

	(void)state;
	for (size_t n = FIDX_MAX_QUERY - 1; n <= FIDX_MAX_QUERY; n++) {
		char *text = query_of_as(n);
		struct fx f = fx_compile(text, n, QUERY_FUZZY);

		/* A query at the limit still matches and has positions. */
		assert_int_not_equal(fx_score(&f, path, FIDX_MAX_QUERY),
		    MATCH_NONE);
		assert_int_equal(check_positions(&f, "a", path,
		    FIDX_MAX_QUERY), (int)n);
		assert_int_equal(fx_score(&f, path, n - 1), MATCH_NONE);
		fx_free(&f);
		f = fx_compile(text, n, QUERY_EXACT);
		assert_int_not_equal(fx_score(&f, path, FIDX_MAX_QUERY),
		    MATCH_NONE);
		fx_free(&f);
		f = fx_compile(text, n, QUERY_REGEX);
		assert_int_not_equal(fx_score(&f, path, FIDX_MAX_QUERY),
		    MATCH_NONE);
		fx_free(&f);
		free(text);
	}
	char *text = query_of_as(FIDX_MAX_QUERY + 1);
	expect_error(text, FIDX_MAX_QUERY + 1, QUERY_FUZZY, "longer");
	expect_error(text, FIDX_MAX_QUERY + 1, QUERY_EXACT, "limit");
	expect_error(text, FIDX_MAX_QUERY + 1, QUERY_REGEX, "limit");
	free(text);
	free(path);
}

/* n terms "a", joined by sep (" " or " | "). */
static char *
terms_of(size_t n, const char *sep)
{
	size_t cap = n * (strlen(sep) + 1) + 1;
	char *s = malloc(cap), *o = s;

	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		o += sprintf(o, "%sa", i ? sep : "");
	return s;
}

static void
test_too_many_terms(void **state)
{
	static const char *seps[] = { " ", " | " };

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		for (size_t n = FIDX_MAX_TERMS - 1; n <= FIDX_MAX_TERMS; n++) {
			char *text = terms_of(n, seps[k]);
			struct fx f = fx_new(text, QUERY_FUZZY);

			assert_int_not_equal(fx_score(&f, "a", 1), MATCH_NONE);
			assert_int_equal(fx_score(&f, "b", 1), MATCH_NONE);
			fx_free(&f);
			free(text);
		}
		char *text = terms_of(FIDX_MAX_TERMS + 1, seps[k]);
		expect_error(text, strlen(text), QUERY_FUZZY, "too many terms");
		expect_error(text, strlen(text), QUERY_EXACT, "too many terms");
		free(text);
	}
	/* Regex mode has one pattern, however many spaces it holds. */
	char *text = terms_of(FIDX_MAX_TERMS + 1, " ");
	struct fx f = fx_new(text, QUERY_REGEX);
	assert_int_not_equal(fx_score(&f, text, strlen(text)), MATCH_NONE);
	assert_int_equal(fx_score(&f, "a", 1), MATCH_NONE);
	fx_free(&f);
	free(text);
}

static void
test_empty_query(void **state)
{
	static const char *queries[] = { "", " ", "    " };
	static const char *paths[] = { "a", "src/main.c", "caf\xe9", "" };
	uint32_t pos[16];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		for (enum query_mode m = QUERY_FUZZY; m <= QUERY_EXACT; m++) {
			struct fx f = fx_new(queries[i], m);

			for (size_t j = 0; j < 4; j++) {
				size_t n = strlen(paths[j]);

				assert_int_equal(fx_score(&f, paths[j], n), 0);
				assert_int_equal(fx_positions(&f, paths[j], n,
				    pos), 0);
			}
			fx_free(&f);
		}
	}
	/* An empty regex matches too (score aside). */
	struct fx f = fx_new("", QUERY_REGEX);
	assert_int_not_equal(fx_score(&f, "abc", 3), MATCH_NONE);
	assert_int_equal(fx_positions(&f, "abc", 3, pos), 0);
	fx_free(&f);
}

static void
test_non_utf8(void **state)
{
	static const char path[] = "caf\xe9/x";
	size_t n = sizeof(path) - 1;
	static const struct {
		const char *q;
		enum query_mode mode;
		bool match;
	} cases[] = {
		{ "caf", QUERY_FUZZY, true },
		{ "\xe9", QUERY_FUZZY, true },
		{ "\xe9/x", QUERY_FUZZY, true },
		{ "c\xe9x", QUERY_FUZZY, true },
		{ "'f\xe9/", QUERY_FUZZY, true },
		{ "^caf\xe9", QUERY_FUZZY, true },
		{ "\xe9x", QUERY_EXACT, false },
		{ "\xe8", QUERY_FUZZY, false },
		{ "!\xe9", QUERY_FUZZY, false },
		{ "caf", QUERY_REGEX, true },
		{ "/x$", QUERY_REGEX, true },
		{ "^caf", QUERY_REGEX, true },
		{ "^caf/", QUERY_REGEX, false },
		{ "^caf./x$", QUERY_REGEX, true },
		{ "zz", QUERY_REGEX, false },
	};
	uint32_t pos[16];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx f = fx_new(cases[i].q, cases[i].mode);
		bool got = fx_score(&f, path, n) != MATCH_NONE;

		if (got != cases[i].match) {
			print_error("case %zu: %s query on \"caf\\xe9/x\": "
			    "expected %s\n", i, query_mode_name(cases[i].mode),
			    cases[i].match ? "a match" : "no match");
			fail();
		}
		if (got && cases[i].mode != QUERY_REGEX)
			check_positions(&f, cases[i].q, path, n);
		fx_free(&f);
	}
	/* The high byte itself is what is highlighted. */
	struct fx f = fx_new("\xe9", QUERY_FUZZY);
	assert_int_equal(fx_positions(&f, path, n, pos), 1);
	assert_int_equal(pos[0], 3);
	fx_free(&f);
	f = fx_new("caf", QUERY_REGEX);
	assert_int_equal(fx_positions(&f, path, n, pos), 3);
	assert_int_equal(pos[0], 0);
	assert_int_equal(pos[2], 2);
	fx_free(&f);
	/*
	 * A regex that is itself invalid UTF-8 is read as bytes (as a
	 * fuzzy query is); one bad as bytes too is an error naming why.
	 */
	f = fx_new("\xe9/", QUERY_REGEX);
	assert_int_not_equal(fx_score(&f, path, n), MATCH_NONE);
	fx_free(&f);
	expect_error("\xe9(", 2, QUERY_REGEX, "missing closing parenthesis");
	/* Regex over paths made only of invalid bytes: no crash. */
	f = fx_new("x", QUERY_REGEX);
	assert_int_equal(fx_score(&f, "\xff\xfe\xc3", 3), MATCH_NONE);
	assert_int_not_equal(fx_score(&f, "\xff\xfex\xc3", 4), MATCH_NONE);
	fx_free(&f);
}

static void
test_positions(void **state)
{
	static const struct {
		const char *q, *path;
	} cases[] = {
		{ "mkfl", "Makefile" },
		{ "src main", "src/main.c" },
		{ "'main", "src/domain/main.c" },
		{ "^src", "src/src.c" },
		{ ".c$", "a.c/b.c" },
		{ "^a.c$", "a.c" },
		{ "SRC", "SRC/src" },
		{ "a a a", "banana" },
		{ "zz | in", "main" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx f = fx_new(cases[i].q, QUERY_FUZZY);

		check_positions(&f, cases[i].q, cases[i].path,
		    strlen(cases[i].path));
		fx_free(&f);
	}
	/* Anchors put the positions where they say. */
	assert_int_equal(pos_set("^src", QUERY_FUZZY, "src/src.c"), 0x7);
	assert_int_equal(pos_set(".c$", QUERY_FUZZY, "a.c/b.c"), 0x60);
	/* A non-matching path has no positions. */
	struct fx f = fx_new("zz", QUERY_FUZZY);
	uint32_t pos[8];
	assert_int_equal(fx_positions(&f, "main", 4, pos), -1);
	fx_free(&f);
	/* Negated terms highlight nothing; an OR group its best member. */
	assert_int_equal(pos_set("main !test", QUERY_FUZZY, "src/main.c"),
	    pos_set("main", QUERY_FUZZY, "src/main.c"));
	assert_int_equal(pos_set("zz | main", QUERY_FUZZY, "src/main.c"),
	    pos_set("main", QUERY_FUZZY, "src/main.c"));
	/* Regex: the bytes of the match. */
	assert_int_equal(pos_set("a.n", QUERY_REGEX, "src/main.c"),
	    0xe0);
}

static void
test_positions_union(void **state)
{
	static const struct {
		const char *a, *b, *path;
	} cases[] = {
		/*
		 * No '/': several terms score the whole path, one alone its
		 * file name, and here the two are the same.
		 */
		{ "src", "main", "src_main.c" },
		{ "ab", "cd", "xabycd" },
		{ "main", "ai", "src_main.c" },	/* overlapping terms */
		/*
		 * Regression (query_run.c, query_positions), fixed: terms overlap and their
		 * positions together outnumber the path's bytes; the union
		 * {0,1,2} comes back as {0,1} because positions are capped
		 * at len before duplicates are removed.
		 */
		{ "ab", "bc", "abc" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char both[64];
		uint64_t want, got;

		snprintf(both, sizeof(both), "%s %s", cases[i].a, cases[i].b);
		want = pos_set(cases[i].a, QUERY_FUZZY, cases[i].path) |
		    pos_set(cases[i].b, QUERY_FUZZY, cases[i].path);
		got = pos_set(both, QUERY_FUZZY, cases[i].path);
		if (got != want) {
			print_error("positions of '%s' on '%s': got %#llx, "
			    "want the union %#llx\n", both, cases[i].path,
			    (unsigned long long)got, (unsigned long long)want);
			fail();
		}
	}
}

/* A flat candidate list as query_run takes it. */
struct list {
	char arena[4096];
	size_t used;
	struct match_entry e[64];
	size_t n;
};

/* mask = false gives MATCH_MASK_ANY, as a list scanned once has. */
static void
list_add(struct list *l, const char *path, bool mask)
{
	size_t len = strlen(path);

	assert_true(l->used + len <= sizeof(l->arena) && l->n < 64);
	memcpy(l->arena + l->used, path, len);
	match_entry_init(&l->e[l->n++], l->arena, (uint32_t)l->used,
	    (uint16_t)len, mask);
	l->used += len;
}

/*
 * query_run() over entries[0, n) with a heap of k must count every match
 * and keep exactly the k best that scoring each path alone and sorting
 * them all gives: whatever it skips early must not change the result.
 */
static void
check_run(struct fx *f, const char *arena, const struct match_entry *e,
    size_t n, size_t k)
{
	struct topk_item *all = calloc(n + 1, sizeof(*all));
	size_t nall = 0, matched, typos = 0;
	struct topk top;

	assert_non_null(all);
	for (size_t i = 0; i < n; i++) {
		const char *p = arena + e[i].off;
		int32_t v = fx_score(f, p, e[i].len);

		if (v == MATCH_NONE)
			continue;
		typos += query_is_typo(f->q, p, e[i].len,
		    match_basename(p, e[i].len), f->sc);
		all[nall].path = p;
		all[nall].len = e[i].len;
		all[nall].index = (uint32_t)i;
		all[nall].score = v;
		nall++;
	}
	qsort(all, nall, sizeof(*all), cmp_items);
	assert_int_equal(topk_init(&top, k), 0);
	matched = query_run(f->q, arena, e, 0, n, &top, f->sc);
	/* Typo matches are listed but not counted. */
	assert_int_equal(matched, nall - typos);
	assert_int_equal(top.n, k < nall ? k : nall);
	topk_sort(&top);
	for (size_t i = 0; i < top.n; i++) {
		const struct topk_item *it = &top.items[i];

		assert_ptr_equal(it->path, arena + e[it->index].off);
		if (it->index != all[i].index || it->score != all[i].score) {
			print_error("k %zu, result %zu: path '%.*s' score %d, "
			    "but scoring all gives '%.*s' score %d\n", k, i,
			    (int)it->len, it->path, it->score,
			    (int)all[i].len, all[i].path, all[i].score);
			fail();
		}
	}
	topk_release(&top);
	free(all);
}

/*
 * Unicode case (fold.h): a term without an upper-case letter ignores the
 * case of non-ASCII letters too, positions name the path's own bytes, and
 * bytes that are not UTF-8 still match as bytes.
 */
static void
test_unicode_case(void **state)
{
	uint32_t pos[64];
	int np;

	(void)state;
	MATCHES("ärger", "docs/Ärger.txt");
	MATCHES("ärger", "docs/ärger.txt");
	MATCHES("Ärger", "docs/Ärger.txt");
	MISSES("Ärger", "docs/ärger.txt");	/* smart case, beyond ASCII */
	MATCHES("café", "CAFÉ/menu");
	MISSES("Café", "CAFÉ/menu");
	MATCHES("документ", "ru/ДОКУМЕНТ.txt");
	MISSES("Документ", "ru/документ.txt");
	MATCHES("σοφία", "gr/Σοφία.txt");
	MATCHES("ärger txt", "docs/ÄRGER.TXT");
	MATCHES("'rgé", "x/ÄRGÉ");		/* substring */
	MATCHES("^äp", "Äpfel/x");		/* prefix */
	MATCHES("ärger$", "x/Ärger");		/* suffix */
	MISSES("!ärger", "x/ÄRGER");		/* negation folds too */
	MATCHES("äx | zz", "Äx");
	RE_MATCHES("ärger", "x/ÄRGER");
	RE_MISSES("Ärger", "x/ärger");
	RE_MATCHES("ä\\S", "Äb");		/* an escape's letter is no case */
	/*
	 * İ lowers to ASCII i and the Kelvin sign to k: a path's mask,
	 * taken of its raw bytes, lacks them, yet it matches (MATCHES
	 * scores with the path's mask, as the daemon's index does).
	 */
	MATCHES("istanbul_ş", "İstanbul_ş.txt");
	MATCHES("ş_k", "Ş_\xe2\x84\xaa");

	/* Folding changes no score: Ä is as good a match as ä. */
	struct fx f = fx_new("ärger", QUERY_FUZZY);
	assert_int_equal(fx_score(&f, "d/Ärger.txt", 12),
	    fx_score(&f, "d/ärger.txt", 12));
	/* ... and as good as a term that needs no folding. */
	struct fx g = fx_new("Ärger", QUERY_FUZZY);
	assert_int_equal(fx_score(&f, "Ärger", 6), fx_score(&g, "Ärger", 6));
	assert_int_equal(fx_score(&f, "d/Ärger", 8),
	    fx_score(&g, "d/Ärger", 8));
	fx_free(&g);
	/* Both bytes of Ä are highlighted, in the path as it is. */
	np = fx_positions(&f, "d/Ärger.txt", 12, pos);
	assert_int_equal(np, 6);
	for (int k = 0; k < np; k++)
		assert_int_equal(pos[k], 2 + (uint32_t)k);
	/* Invalid bytes before it pass through; the map stays right. */
	np = fx_positions(&f, "\xff\xfe/Ärger", 9, pos);
	assert_int_equal(np, 6);
	assert_int_equal(pos[0], 3);
	assert_int_equal(pos[5], 8);
	/* Latin-1 Ä (0xc4) is not UTF-8: no match for a UTF-8 ä. */
	assert_int_equal(fx_score(&f, "d/\xc4rger", 7), MATCH_NONE);
	fx_free(&f);

	/*
	 * A letter whose lower case is longer (U+023A, 2 bytes, lowers to
	 * U+2C65, 3 bytes): positions still name the path's 2 bytes, and
	 * the file name starts where the path's does.
	 */
	f = fx_new("\xe2\xb1\xa5x", QUERY_FUZZY);
	np = fx_positions(&f, "\xc8\xba/a\xc8\xbax", 7, pos);
	assert_int_equal(np, 3);
	assert_int_equal(pos[0], 4);
	assert_int_equal(pos[1], 5);
	assert_int_equal(pos[2], 6);
	assert_int_equal(fx_score(&f, "\xc8\xba/a\xc8\xbax", 7),
	    fx_score(&f, "\xe2\xb1\xa5/a\xe2\xb1\xa5x", 9));
	fx_free(&f);

	/* A term that is not UTF-8 matches bytewise, folding nothing. */
	f = fx_new("\xc4rg", QUERY_FUZZY);
	np = fx_positions(&f, "l/\xc4rger", 7, pos);
	assert_int_equal(np, 3);
	assert_int_equal(pos[0], 2);
	assert_int_equal(fx_score(&f, "l/\xe4rger", 7), MATCH_NONE);
	fx_free(&f);

	/* query_run() with and without masks, typos on, = scoring all. */
	static const char *paths[] = {
		"docs/Ärger.txt", "docs/ärger.md", "src/ÄRGERLICH/x.c",
		"ärgre", "arger", "gr/Σοφία.txt", "\xff/Ärgr", "l/\xc4rger",
	};
	struct list *l = calloc(1, sizeof(*l));
	struct list *nomask = calloc(1, sizeof(*nomask));
	static const char *queries[] = { "ärger", "ärgr", "σοφ", "ärger c" };

	assert_non_null(l);
	assert_non_null(nomask);
	for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
		list_add(l, paths[i], true);
		list_add(nomask, paths[i], false);
	}
	for (size_t w = 0; w < sizeof(queries) / sizeof(*queries); w++) {
		f = fx_new(queries[w], QUERY_FUZZY);
		assert_int_equal(query_set_typos(f.q, 2), 0);
		for (size_t k = 1; k <= l->n; k++) {
			check_run(&f, l->arena, l->e, l->n, k);
			check_run(&f, nomask->arena, nomask->e, nomask->n, k);
		}
		fx_free(&f);
	}
	/*
	 * A mistyped letter of two bytes goes whole: "докуменп" is
	 * Документ with its last letter wrong, and no stray byte of it
	 * makes Документация (whose а shares п's lead byte) a closer typo.
	 */
	f = fx_new("докуменп", QUERY_FUZZY);
	assert_int_equal(query_set_typos(f.q, 2), 0);
	const char *doc = "ru/Документ.txt", *docs = "x/Документация.txt";

	assert_true(query_is_typo(f.q, doc, strlen(doc), 3, f.sc));
	assert_true(fx_score(&f, doc, strlen(doc)) >=
	    fx_score(&f, docs, strlen(docs)));
	np = fx_positions(&f, doc, strlen(doc), pos);
	assert_int_equal(np, 14);	/* Докумен, every byte */
	assert_int_equal(pos[0], 3);
	assert_int_equal(pos[13], 16);
	fx_free(&f);
	/* A stray byte after a letter is a byte of its own, left out alone. */
	f = fx_new("abcde\xd0\xb6\x80", QUERY_FUZZY);
	assert_int_equal(query_set_typos(f.q, 2), 0);
	assert_true(query_is_typo(f.q, "abcde\x80", 6, 0, f.sc));
	fx_free(&f);
	/* "ärgre" (a swap) still finds Ärger, as a typo. */
	f = fx_new("ärgre", QUERY_FUZZY);
	assert_int_equal(query_set_typos(f.q, 1), 0);
	assert_true(fx_score(&f, "docs/Ärger.txt", 15) != MATCH_NONE);
	assert_true(query_is_typo(f.q, "docs/Ärger.txt", 15, 5, f.sc));
	fx_free(&f);
	free(nomask);
	free(l);
}

/*
 * Unicode folding over random paths made of ASCII, whole letters in both
 * cases and stray bytes that are not UTF-8: a lower-case query scores a
 * path exactly as it scores the path with its letters lowered, with the
 * same positions; and query_run() agrees with scoring each path.
 */
static void
test_unicode_property(void **state)
{
	/* Upper-case units, then each one's lower case at +UNI_LOWER. */
	static const char *const units[] = {
		"\xc3\x84", "\xce\xa3", "\xd0\x94",	/* Ä Σ Д */
		"\xc3\xa4", "\xcf\x83", "\xd0\xb4",	/* ä σ д */
		"a", "b", "/", "_", ".", "\xc3", "\xa4", "\xff",
	};
	enum { UNI_UPPER = 3, UNI_LOWER = 3, UNI_UNITS = 14, UNI_QUERY = 8 };
	uint64_t seed = 20261123;
	size_t hits = 0;
	uint32_t pa[128], pb[128];

	(void)state;
	for (int round = 0; round < 40; round++) {
		struct list *l = calloc(1, sizeof(*l));
		char paths[64][64], lower[64][64], text[32] = "";
		size_t np = 64;

		assert_non_null(l);
		/* A query of 1-4 units from the lower-case half and ASCII. */
		for (size_t k = 0, nq = 1 + rnd(&seed) % 4; k < nq; k++)
			strcat(text, units[UNI_LOWER + rnd(&seed) % UNI_QUERY]);
		for (size_t i = 0; i < np; i++) {
			paths[i][0] = lower[i][0] = '\0';
			for (size_t k = 0, nu = 1 + rnd(&seed) % 12; k < nu;
			    k++) {
				size_t u = rnd(&seed) % UNI_UNITS;

				strcat(paths[i], units[u]);
				strcat(lower[i], units[u < UNI_UPPER ?
				    u + UNI_LOWER : u]);
			}
			list_add(l, paths[i], i % 2 == 0);
		}
		struct fx f = fx_new(text, QUERY_FUZZY);

		assert_int_equal(query_set_typos(f.q, 2), 0);
		for (size_t i = 0; i < np; i++) {
			size_t n = strlen(paths[i]);
			int32_t v = fx_score(&f, paths[i], n);

			assert_int_equal(strlen(lower[i]), n);
			if (v != fx_score(&f, lower[i], n)) {
				print_error("'%s' scores '%s' %d but its lower "
				    "case '%s' %d\n", text, paths[i], v,
				    lower[i], fx_score(&f, lower[i], n));
				fail();
			}
			if (v == MATCH_NONE)
				continue;
			hits++;
			int na = fx_positions(&f, paths[i], n, pa);
			int nb = fx_positions(&f, lower[i], n, pb);

			assert_int_equal(na, nb);
			assert_true(na > 0 && (size_t)na <= n);
			for (int k = 0; k < na; k++) {
				assert_int_equal(pa[k], pb[k]);
				assert_true(pa[k] < n);
				assert_true(k == 0 || pa[k] > pa[k - 1]);
			}
		}
		for (size_t k = 1; k <= np; k += 21)
			check_run(&f, l->arena, l->e, l->n, k);
		fx_free(&f);
		free(l);
	}
	/* The loop found matches to compare, not only misses. */
	assert_true(hits > 100);
}

static void
test_query_run_topk(void **state)
{
	static const char *paths[] = {
		"src/main.c", "src/match.c", "src/query.c", "lib/map.h",
		"tests/test_match.c", "README.md", "Makefile", "docs/man.1",
		"a/m/a/i/n", "main", "mn", "zzz", "src/topk.c", "x/amazing",
	};
	size_t npaths = sizeof(paths) / sizeof(paths[0]);
	struct list *l = calloc(1, sizeof(*l));
	struct list *nomask = calloc(1, sizeof(*nomask));
	struct fx f = fx_new("ma", QUERY_FUZZY);
	size_t want = 0;

	(void)state;
	assert_non_null(l);
	assert_non_null(nomask);
	for (size_t i = 0; i < npaths; i++) {
		list_add(l, paths[i], true);
		list_add(nomask, paths[i], false);
		if (fx_score(&f, paths[i], strlen(paths[i])) != MATCH_NONE)
			want++;
	}
	assert_true(want > 4 && want < npaths);
	for (size_t k = 1; k <= want + 1; k++) {
		check_run(&f, l->arena, l->e, l->n, k);
		check_run(&f, nomask->arena, nomask->e, nomask->n, k);
	}
	/* A sub-range counts only its own matches. */
	struct topk top;
	assert_int_equal(topk_init(&top, 50), 0);
	size_t part = query_run(f.q, l->arena, l->e, 0, 5, &top, f.sc);
	size_t rest = query_run(f.q, l->arena, l->e, 5, l->n, &top, f.sc);
	assert_int_equal(part + rest, want);
	assert_int_equal(top.n, want);
	topk_release(&top);
	/* Without masks the same paths match. */
	assert_int_equal(topk_init(&top, 50), 0);
	assert_int_equal(query_run(f.q, nomask->arena, nomask->e, 0,
	    nomask->n, &top, f.sc), want);
	topk_release(&top);
	fx_free(&f);
	/* Multi-term queries prune by the sum of bounds: same results. */
	static const char *const multi[] = { "ma c", "s m", "m a i", "t c" };
	for (size_t w = 0; w < sizeof(multi) / sizeof(*multi); w++) {
		struct fx g = fx_new(multi[w], QUERY_FUZZY);

		for (size_t k = 1; k <= npaths; k++)
			check_run(&g, l->arena, l->e, l->n, k);
		fx_free(&g);
	}
	free(nomask);
	free(l);
}

static void
random_string(uint64_t *seed, const char *alphabet, size_t minlen,
    size_t maxlen, char *out)
{
	size_t na = strlen(alphabet);
	size_t n = minlen + rnd(seed) % (maxlen - minlen + 1);

	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[rnd(seed) % na];
	out[n] = '\0';
}

/* A bonus that is a fixed function of the path: its bytes' sum mod 17. */
static int32_t
bonus_of(void *arg, const char *path, size_t len)
{
	uint32_t sum = 0;

	(void)arg;
	for (size_t i = 0; i < len; i++)
		sum += (uint8_t)path[i];
	return (int32_t)(sum % 17);
}

/*
 * With a bonus, query_run() keeps the k best of score + bonus: pruning
 * leaves the bonus room, so a path just under the floor can still enter.
 */
static void
test_query_run_bonus(void **state)
{
	static const char *const queries[] = { "ma", "s", "ai", "c" };
	struct list *l = calloc(1, sizeof(*l));
	uint64_t seed = 7;
	char path[24];

	(void)state;
	assert_non_null(l);
	for (size_t i = 0; i < 60; i++) {
		random_string(&seed, "mains/c._", 3, 20, path);
		list_add(l, path, i % 2 == 0);
	}
	for (size_t qi = 0; qi < sizeof(queries) / sizeof(*queries); qi++) {
		struct fx f = fx_new(queries[qi], QUERY_FUZZY);
		struct topk_item all[64];
		size_t nall = 0;

		for (size_t i = 0; i < l->n; i++) {
			const char *p = l->arena + l->e[i].off;
			int32_t v = fx_score(&f, p, l->e[i].len);

			if (v == MATCH_NONE)
				continue;
			all[nall] = (struct topk_item){ p, l->e[i].len,
			    (uint32_t)i, v + bonus_of(NULL, p, l->e[i].len), 0 };
			nall++;
		}
		assert_true(nall > 3);
		qsort(all, nall, sizeof(*all), cmp_items);
		query_scratch_set_bonus(f.sc, bonus_of, NULL, 16);
		for (size_t k = 1; k <= nall; k++) {
			struct topk top;

			assert_int_equal(topk_init(&top, k), 0);
			assert_int_equal(query_run(f.q, l->arena, l->e, 0, l->n,
			    &top, f.sc), nall);
			topk_sort(&top);
			for (size_t i = 0; i < top.n; i++) {
				assert_int_equal(top.items[i].index,
				    all[i].index);
				assert_int_equal(top.items[i].score,
				    all[i].score);
			}
			topk_release(&top);
		}
		fx_free(&f);
	}
	free(l);
}

#define PROP_PATHS 2000
#define PROP_QUERIES 40

static void
test_property_loop(void **state)
{
	static const char path_abc[] = "abcdeABC/_.-x";
	static const char query_abc[] = "abcdAB/_.";
	char (*paths)[48] = calloc(PROP_PATHS, sizeof(*paths));
	uint64_t seed = 20240601;
	uint32_t pos[64];
	size_t fuzzy_hits = 0, exact_hits = 0, typo_hits = 0;

	char *arena = malloc(sizeof(*paths) * PROP_PATHS);
	struct match_entry *ents = calloc(PROP_PATHS, sizeof(*ents));
	size_t used = 0;

	(void)state;
	assert_non_null(paths);
	assert_non_null(arena);
	assert_non_null(ents);
	for (size_t i = 0; i < PROP_PATHS; i++) {
		size_t n;

		random_string(&seed, path_abc, 1, 40, paths[i]);
		n = strlen(paths[i]);
		memcpy(arena + used, paths[i], n);
		/* Half the list has presence masks, half scans without. */
		match_entry_init(&ents[i], arena, (uint32_t)used, (uint16_t)n,
		    i % 2 == 0);
		used += n;
	}
	for (size_t qi = 0; qi < PROP_QUERIES; qi++) {
		char text[16];
		bool single;

		random_string(&seed, query_abc, 1, 4, text);
		/* A quarter of the queries get a second term. */
		if (rnd(&seed) % 4 == 0) {
			size_t n = strlen(text);

			text[n] = ' ';
			random_string(&seed, query_abc, 1, 3, text + n + 1);
		}
		single = strchr(text, ' ') == NULL;

		struct fx fz = fx_new(text, QUERY_FUZZY);
		struct fx ex = fx_new(text, QUERY_EXACT);

		for (size_t i = 0; i < PROP_PATHS; i++) {
			const char *p = paths[i];
			size_t n = strlen(p);
			int32_t vf = fx_score(&fz, p, n);
			int32_t ve = fx_score(&ex, p, n);

			if (ve != MATCH_NONE) {
				exact_hits++;
				if (vf == MATCH_NONE) {
					print_error("'%s' is an exact match "
					    "of '%s' but not a fuzzy one\n",
					    text, p);
					fail();
				}
				check_positions(&ex, text, p, n);
			}
			if (vf == MATCH_NONE) {
				assert_int_equal(fx_positions(&fz, p, n, pos),
				    -1);
				continue;
			}
			fuzzy_hits++;
			int np = check_positions(&fz, text, p, n);
			if (!single)
				continue;
			/* One fuzzy term: its positions explain its score. */
			assert_int_equal(np, (int)strlen(text));
			assert_int_equal(fx_positions(&fz, p, n, pos), np);
			for (int k = 0; k < np; k++)
				assert_int_equal(match_lower[(uint8_t)p[pos[k]]],
				    match_lower[(uint8_t)text[k]]);
			/* A '/' in the query scores the path as a whole. */
			int32_t again = match_score_positions(p, n,
			    strchr(text, '/') ? 0 : match_basename(p, n), pos,
			    (size_t)np);
			if (again != vf) {
				print_error("'%s' on '%s': query_score %d, but "
				    "its positions score %d\n", text, p, vf,
				    again);
				fail();
			}
		}
		/* Results never exceed the limit, and are the true best. */
		for (size_t k = 1; k <= 64; k *= 4) {
			check_run(&fz, arena, ents, PROP_PATHS, k);
			check_run(&ex, arena, ents, PROP_PATHS, k);
		}
		/* With typos (a longer query: 4 bytes and up have a budget). */
		{
			char tt[16];
			struct fx ft;

			/* No '/': a path query has no typo reading. */
			random_string(&seed, "abcdAB_.", 4, 9, tt);
			ft = fx_new(tt, QUERY_FUZZY);
			assert_int_equal(query_set_typos(ft.q, 2), 0);
			assert_true(query_has_typos(ft.q));
			for (size_t k = 1; k <= 64; k *= 4)
				check_run(&ft, arena, ents, PROP_PATHS, k);
			for (size_t i = 0; i < PROP_PATHS; i++) {
				const char *p = paths[i];
				size_t n = strlen(p);
				int32_t v = fx_score(&ft, p, n);

				bool typo = query_is_typo(ft.q, p, n,
				    match_basename(p, n), ft.sc);

				typo_hits += typo;
				(void)v;
				if (typo)
					check_positions(&ft, tt, p, n);
			}
			fx_free(&ft);
		}
		fx_free(&fz);
		fx_free(&ex);
	}
	/* The loop is only worth something if it saw both outcomes. */
	assert_true(exact_hits > 100);
	assert_true(typo_hits > 10);
	assert_true(fuzzy_hits > exact_hits);
	assert_true(fuzzy_hits < (size_t)PROP_PATHS * PROP_QUERIES);
	free(ents);
	free(arena);
	free(paths);
}

/*
 * query_score_above(floor) is query_score() for every floor at or below
 * the score, typo matches included (it once skipped the typo reading
 * under any floor: "licnese" found LICENSE at 210 unbounded, nothing
 * bounded), and MATCH_BELOW or the score itself above it.
 */
static void
check_above(struct fx *f, const char *path)
{
	size_t n = strlen(path), base = match_basename(path, n);
	uint64_t mask = match_mask(path, n);
	int32_t v = query_score(f->q, path, n, base, mask, f->sc);
	int32_t floors[] = { MATCH_NONE, -(TYPO_TIER * 2),
	    -TYPO_TIER - 1000, -1, 0, 1, 50, 100, 200, 300, 400 };

	for (size_t i = 0; i < sizeof(floors) / sizeof(floors[0]); i++) {
		int32_t fl = floors[i], got;

		got = query_score_above(f->q, path, n, base, mask, f->sc, fl);
		/* With typos, "below" may mean no match (query.h). */
		bool below_ok = got == MATCH_BELOW && (v != MATCH_NONE ||
		    query_has_typos(f->q));

		if (v != MATCH_NONE && fl <= v ? got != v :
		    v == MATCH_NONE ? got != MATCH_NONE && !below_ok :
		    got != v && !below_ok) {
			print_error("'%s': query_score %d, query_score_above(%d) "
			    "%d\n", path, v, fl, got);
			fail();
		}
	}
	/* And every floor up to the score, one by one, near it. */
	if (v == MATCH_NONE)
		return;
	for (int32_t fl = v - 64; fl <= v; fl++)
		assert_int_equal(query_score_above(f->q, path, n, base, mask,
		    f->sc, fl), v);
}

static void
test_score_above_agrees(void **state)
{
	static const char path_abc[] = "abcdeiln/_.-LICENSE";
	struct fx f;
	uint64_t seed = 7;
	size_t typos = 0;

	(void)state;
	f = fx_new("licnese", QUERY_FUZZY);
	assert_int_equal(query_set_typos(f.q, 2), 0);
	assert_true(query_score(f.q, "LICENSE", 7, 0, match_mask("LICENSE", 7),
	    f.sc) != MATCH_NONE);
	check_above(&f, "LICENSE");
	check_above(&f, "src/LICENSE.txt");
	check_above(&f, "lib/licenses/x");
	fx_free(&f);
	/* Seeded: one- and two-term queries, typos on, random paths. */
	for (int qi = 0; qi < 60; qi++) {
		char text[24], path[48];

		random_string(&seed, "abcdeiln_.", 4, 8, text);
		if (qi % 3 == 0) {
			size_t k = strlen(text);

			text[k] = ' ';
			random_string(&seed, "abcdeln", 1, 3, text + k + 1);
		}
		f = fx_new(text, QUERY_FUZZY);
		assert_int_equal(query_set_typos(f.q, 2), 0);
		for (int pi = 0; pi < 300; pi++) {
			size_t n, base;

			random_string(&seed, path_abc, 1, 40, path);
			/* Half the paths start their file name as text does. */
			n = strlen(path);
			base = match_basename(path, n);
			if (pi % 2 == 0 && base < n)
				path[base] = text[0];
			if (query_is_typo(f.q, path, n, base, f.sc))
				typos++;
			check_above(&f, path);
		}
		fx_free(&f);
	}
	/* The loop is only worth something if it met typo matches. */
	assert_true(typos > 20);
}

/*
 * Regression (topk.h, topk_wants), fixed: with k = 0 it reads items[0] of a heap that
 * holds no item (a 1-byte allocation), so query_run() with a limit of 0
 * overflows the heap under ASan; `fidx filter --limit 0` did the same
 * before it refused 0 (cli_parse_limit).
 * Expected: nothing kept, the matches still counted.
 */
static void
test_query_run_limit_zero(void **state)
{
	struct fx f = fx_new("ma", QUERY_FUZZY);
	struct list *l = calloc(1, sizeof(*l));
	struct topk top;

	(void)state;
	assert_non_null(l);
	list_add(l, "main", true);
	list_add(l, "map", true);
	list_add(l, "zzz", true);
	assert_int_equal(topk_init(&top, 0), 0);
	assert_int_equal(query_run(f.q, l->arena, l->e, 0, l->n, &top, f.sc),
	    2);
	assert_int_equal(top.n, 0);
	topk_release(&top);
	fx_free(&f);
	free(l);
}

static void
test_oom(void **state)
{
	static const char text[] = "a 'b ^c d$ | e";
	unsigned long n;
	bool done = false;

	(void)state;
	for (n = 1; n < 1000 && !done; n++) {
		struct fidx_err err = { "" };
		struct query *q;
		struct query_scratch *sc = NULL;

		alloc_fail_at(n);
		q = query_compile(text, strlen(text), QUERY_FUZZY, &err);
		if (q != NULL)
			sc = query_scratch_new(q);
		if (!alloc_failed()) {
			/* No failure was injected: everything must work. */
			alloc_fail_at(0);
			assert_non_null(q);
			assert_non_null(sc);
			assert_int_equal(fx_score(&(struct fx){ q, sc },
			    "a/b/c_d", 7), MATCH_NONE);
			assert_int_not_equal(fx_score(&(struct fx){ q, sc },
			    "cab/d", 5), MATCH_NONE);
			done = true;
		} else if (q == NULL) {
			assert_non_null(strstr(err.msg, "out of memory"));
		} else {
			assert_null(sc);
		}
		alloc_fail_at(0);
		query_scratch_free(sc);
		query_free(q);
	}
	assert_true(done);
	assert_true(n > 3);	/* compile and scratch both allocate */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_names),
		cmocka_unit_test(test_fuzzy_term),
		cmocka_unit_test(test_quoted_exact),
		cmocka_unit_test(test_prefix_suffix_whole),
		cmocka_unit_test(test_negation),
		cmocka_unit_test(test_inverse_fuzzy),
		cmocka_unit_test(test_or_groups),
		cmocka_unit_test(test_and_terms),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_lone_operators),
		cmocka_unit_test(test_escaped_operator_after_negation),
		cmocka_unit_test(test_operator_only_terms),
		cmocka_unit_test(test_exact_mode),
		cmocka_unit_test(test_regex_mode),
		cmocka_unit_test(test_regex_invalid_utf8),
		cmocka_unit_test(test_regex_error),
		cmocka_unit_test(test_smart_case_per_term),
		cmocka_unit_test(test_query_length_limit),
		cmocka_unit_test(test_too_many_terms),
		cmocka_unit_test(test_empty_query),
		cmocka_unit_test(test_non_utf8),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_positions_union),
		cmocka_unit_test(test_query_run_topk),
		cmocka_unit_test(test_query_run_bonus),
		cmocka_unit_test(test_unicode_case),
		cmocka_unit_test(test_unicode_property),
		cmocka_unit_test(test_property_loop),
		cmocka_unit_test(test_score_above_agrees),
		cmocka_unit_test(test_oom),
		/* Last: while its bug stands it aborts the binary. */
		cmocka_unit_test(test_query_run_limit_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
