/*
 * test_match.c - the scorer: ranking as pairs, positions, limits, and a
 * seeded property loop tying the fast score to the aligned one.
 *
 * Rankings are asserted as "a above b" (fzy's test style), never as magic
 * numbers, so the constants in match.h can be tuned without rewriting
 * the table; only the order people expect is fixed here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/fold.h"
#include "../common/limits.h"
#include "../common/match.h"
#include "../common/query.h"
#include "../common/topk.h"
#include "testutil.h"

static int32_t
score_of(const char *query, const char *path, size_t len)
{
	return score_once(query, path, len, 0);
}

static int32_t
score(const char *query, const char *path)
{
	return score_of(query, path, strlen(path));
}

/* True if path a is listed above path b for query (both must match). */
static bool
ranks_above(const char *query, const char *a, const char *b)
{
	struct topk_item x = { a, (uint32_t)strlen(a), 0, score(query, a), 0 };
	struct topk_item y = { b, (uint32_t)strlen(b), 1, score(query, b), 0 };

	if (x.score == MATCH_NONE || y.score == MATCH_NONE) {
		fprintf(stderr, "no match: %s -> %s (%d) / %s (%d)\n", query,
		    a, x.score, b, y.score);
		return false;
	}
	if (!topk_better(&x, &y))
		fprintf(stderr, "%s: expected '%s' (%d) above '%s' (%d)\n",
		    query, a, x.score, b, y.score);
	return topk_better(&x, &y);
}

/*
 * What a person expects to see first. Each row: query, the path that
 * should win, the path that should lose.
 */
static const char *const ranking_pairs[][3] = {
	/* Abbreviations of file names. */
	{ "dkrfl", "Dockerfile", "docker-compose.yml.fail" },
	{ "dkrfl", "Dockerfile", "src/dark/refill.c" },
	{ "mkfl", "Makefile", "docs/markdown/flags.txt" },
	{ "mkfl", "src/Makefile", "mk/fool.c" },
	{ "rdme", "README.md", "src/readers/meta.c" },
	/* Abbreviations drop vowels: a vowel gap is nearly free. */
	{ "mkfl", "Makefile", "doc/fn.mkfifo.html" },
	{ "lcns", "LICENSE", "lib/cons.c" },
	{ "sbprc", "lib/subprocess.py", "sub/prc/x.c" },
	/* A name's leading punctuation is free to skip. */
	{ "cvrgrc", "lit/tests/.coveragerc", "cmake/llvm/CoverageReport.cmake" },
	{ "dkrignr", "p/.dockerignore", "sdk/go/data/dockerignore" },
	/* Inside the first word, a tier below a word start (libfoo). */
	{ "git2pc", "pkgconfig/libgit2.pc",
	    "api_lib/source/__pycache__/git.cpython-312.pyc" },
	{ "gitpc", "pkgconfig/git.pc", "pkgconfig/libgit.pc" },
	{ "gitpc", "pkgconfig/libgit.pc", "pkgconfig/a_bgit.pc" },
	/* ... and a last byte typed tight that ends a word names it. */
	{ "yamlso", "x86_64-linux-gnu/libyaml-0.so.2",
	    "appengine/tools/yaml_translator.py" },
	/* A byte that only happens to end a word is no such sign. */
	{ "mkfl", "src/Makefile", "fs/fn.mkfifo.html" },
	/* Path fragments. */
	{ "src/mai", "src/main.c", "src/domain.c" },
	{ "src/mai", "src/main.c", "test/src/lib/mail.c" },
	{ "lib/py/site", "lib/python3/site.py", "lib/py/sitter/wrapper.c" },
	/* A '/' asks for a path: the typed run, not a file-name smear. */
	{ "src/mai", "v/src/main/php/Quota.php", "v/src/magick_image.inc" },
	{ "dist-packages/setup", "dist-packages/setuptools/_imp.py",
	    "dist-packages/wheel/_setuptools_logging.py" },
	/* Word starts and camelCase humps beat letters mid-word. */
	{ "fb", "FooBar.java", "fabric.java" },
	{ "fb", "foo_bar.c", "fobbed.c" },
	{ "gc", "git-config.txt", "logic.txt" },
	{ "sc", "sock_client.c", "misc.c" },
	/* Consecutive runs beat scattered matches. */
	{ "main", "main.c", "m_a_i_n.c" },
	{ "index", "index.c", "inode_dex.c" },
	/* Gaps cost. */
	{ "abc", "abxc.c", "axxxxxbxxxxxc.c" },
	/* The file name beats the same match in a directory name. */
	{ "main", "src/main.c", "main/src.c" },
	{ "util", "lib/util.h", "util/lib.h" },
	/* Equal scores: the shorter path, then bytewise order. */
	{ "foo", "a/foo.c", "abc/foo.c" },
	{ "foo", "a/foo.c", "b/foo.c" },
};

static void
test_ranking_pairs(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(ranking_pairs) / sizeof(*ranking_pairs);
	    i++)
		if (!ranks_above(ranking_pairs[i][0], ranking_pairs[i][1],
		    ranking_pairs[i][2]))
			bad++;
	assert_int_equal(bad, 0);
}

/* The intended file comes first among realistic neighbours. */
static void
test_ranking_lists(void **state)
{
	static const char *const tree[] = {
		"docs/kernel/Makefile", "drivers/block/rbd.c",
		"docker-compose.yml", "deploy/k8s/README.md", "Dockerfile",
		"src/main.c", "src/domain.c", "src/mail/smtp.c", "Makefile",
		"scripts/make-release.sh", "tests/test_main.c", "LICENSE",
		"include/config.h", "src/config/loader.c",
	};
	static const char *const want[][2] = {
		{ "dkrfl", "Dockerfile" },
		{ "mkfl", "Makefile" },
		{ "src/mai", "src/main.c" },
		{ "main", "src/main.c" },
		{ "lcns", "LICENSE" },
		{ "config.h", "include/config.h" },
		{ "Mk", "Makefile" },
	};
	(void)state;
	for (size_t w = 0; w < sizeof(want) / sizeof(*want); w++) {
		const char *best = NULL;
		struct topk_item bi = { 0 };

		for (size_t i = 0; i < sizeof(tree) / sizeof(*tree); i++) {
			struct topk_item it = { tree[i],
			    (uint32_t)strlen(tree[i]), (uint32_t)i,
			    score(want[w][0], tree[i]), 0 };

			if (it.score == MATCH_NONE)
				continue;
			if (best == NULL || topk_better(&it, &bi)) {
				best = tree[i];
				bi = it;
			}
		}
		if (best == NULL || strcmp(best, want[w][1]) != 0)
			fprintf(stderr, "%s: want %s, got %s\n", want[w][0],
			    want[w][1], best ? best : "(none)");
		assert_non_null(best);
		assert_string_equal(best, want[w][1]);
	}
}

static void
test_smart_case(void **state)
{
	(void)state;
	assert_true(score("make", "Makefile") != MATCH_NONE);
	assert_true(score("make", "makefile") != MATCH_NONE);
	assert_true(score("Make", "Makefile") != MATCH_NONE);
	assert_int_equal(score("Make", "makefile"), MATCH_NONE);
	assert_int_equal(score("MAKE", "Makefile"), MATCH_NONE);
	/* Case-insensitive scoring is the same for either case. */
	assert_int_equal(score("make", "Makefile"), score("make", "makefile"));
}

static void
test_positions(void **state)
{
	struct match_scratch *sc = match_scratch_new();
	struct match_pattern p;
	uint32_t pos[8];
	static const uint32_t dockerfile[] = { 0, 3, 5, 6, 8 };

	(void)state;
	assert_non_null(sc);
	match_pattern_init(&p, "dkrfl", 5, true);
	assert_int_not_equal(match_fuzzy(&p, "Dockerfile", 10, 0, sc, pos),
	    MATCH_NONE);
	assert_memory_equal(pos, dockerfile, sizeof(dockerfile));
	/* The file-name occurrence is the one highlighted. */
	match_pattern_init(&p, "main", 4, true);
	assert_int_not_equal(match_fuzzy(&p, "main/main.c", 11, 5, sc, pos),
	    MATCH_NONE);
	assert_int_equal(pos[0], 5);
	assert_int_equal(pos[3], 8);
	match_scratch_free(sc);
}

static void
test_empty_and_long_queries(void **state)
{
	(void)state;
	assert_int_equal(score("", "anything"), 0);
	assert_int_equal(score("   ", "anything"), 0);
	assert_int_equal(score("abcdef", "abc"), MATCH_NONE);
	assert_int_equal(score("abc", "ab"), MATCH_NONE);
	assert_int_not_equal(score("abc", "abc"), MATCH_NONE);
}

/* A path at the 16-bit ceiling, matched at both ends and in the middle. */
static void
test_very_long_path(void **state)
{
	size_t n = FIDX_MAX_PATH_CEILING;
	char *path = malloc(n);
	struct match_scratch *sc = match_scratch_new();
	struct match_pattern p;
	uint32_t pos[3];
	int32_t fast, full;

	(void)state;
	assert_non_null(path);
	assert_non_null(sc);
	memset(path, 'x', n);
	path[0] = 'a';
	path[n / 2] = 'b';
	path[n - 1] = 'c';
	match_pattern_init(&p, "abc", 3, true);
	/* Table too large for positions: greedy, still consistent. */
	fast = match_fuzzy(&p, path, n, 0, sc, NULL);
	full = match_fuzzy(&p, path, n, 0, sc, pos);
	assert_int_not_equal(fast, MATCH_NONE);
	assert_int_equal(pos[0], 0);
	assert_int_equal(pos[1], n / 2);
	assert_int_equal(pos[2], n - 1);
	assert_int_equal(full, match_score_positions(path, n, 0, pos, 3));
	assert_int_equal(fast, full);
	/* One byte over the ceiling is refused, not read. */
	assert_int_equal(match_fuzzy(&p, path, n + 1, 0, sc, NULL),
	    MATCH_NONE);
	match_scratch_free(sc);
	free(path);
}

static void
test_non_utf8(void **state)
{
	static const char path[] = "caf\xe9/r\xe9sum\xe9.txt";
	struct match_scratch *sc = match_scratch_new();
	struct match_pattern p;
	uint32_t pos[3];

	(void)state;
	assert_non_null(sc);
	match_pattern_init(&p, "rsm", 3, true);
	assert_int_not_equal(match_fuzzy(&p, path, sizeof(path) - 1,
	    match_basename(path, sizeof(path) - 1), sc, pos), MATCH_NONE);
	assert_int_equal(path[pos[0]], 'r');
	assert_int_equal(path[pos[1]], 's');
	assert_int_equal(path[pos[2]], 'm');
	/* The invalid byte itself is a matchable character. */
	match_pattern_init(&p, "\xe9", 1, false);
	assert_int_not_equal(match_fuzzy(&p, path, sizeof(path) - 1,
	    match_basename(path, sizeof(path) - 1), sc, pos), MATCH_NONE);
	assert_int_equal((uint8_t)path[pos[0]], 0xe9);
	assert_true(pos[0] >= match_basename(path, sizeof(path) - 1));
	match_scratch_free(sc);
}

static void
test_basename(void **state)
{
	(void)state;
	assert_int_equal(match_basename("a/b/c.txt", 9), 4);
	assert_int_equal(match_basename("c.txt", 5), 0);
	assert_int_equal(match_basename("a/dir/", 6), 2);
	assert_int_equal(match_basename("/", 1), 0);
	assert_int_equal(match_basename("", 0), 0);
}

static void
test_mask(void **state)
{
	(void)state;
	/* Folded: a case-sensitive pattern still passes its path's mask. */
	assert_true((match_mask("Makefile", 8) & match_mask("M", 1)) ==
	    match_mask("m", 1));
	assert_true((match_mask("abc", 3) & match_mask("abd", 3)) !=
	    match_mask("abd", 3));
}

/* Best score over every alignment, by enumeration (small inputs only). */
static int32_t
brute_best(const struct match_pattern *p, const char *s, size_t n,
    size_t base, size_t i, size_t from, uint32_t *cur)
{
	int32_t best = MATCH_NONE;

	if (i == p->len)
		return match_score_positions(s, n, base, cur, p->len);
	for (size_t j = from; j < n; j++) {
		uint8_t c = (uint8_t)s[j];

		if ((p->icase ? match_lower[c] : c) != (uint8_t)p->text[i])
			continue;
		cur[i] = (uint32_t)j;
		int32_t v = brute_best(p, s, n, base, i + 1, j + 1, cur);
		if (v > best)
			best = v;
	}
	return best;
}

/* Seeded random paths and queries: the three ways to score agree. */
static void
test_property_scores_agree(void **state)
{
	static const char alpha[] = "abcdeABC/_.-x0";
	struct match_scratch *sc = match_scratch_new();
	uint32_t pos[FIDX_MAX_QUERY];
	unsigned seed = 12345;
	int matched = 0, checked = 0;

	(void)state;
	assert_non_null(sc);
	for (int iter = 0; iter < 20000; iter++) {
		char path[96], qbuf[8];
		size_t n = 1 + (size_t)rand_r(&seed) % (sizeof(path) - 1);
		size_t m = 1 + (size_t)rand_r(&seed) % (sizeof(qbuf) - 1);
		struct match_pattern p;
		bool icase;

		for (size_t i = 0; i < n; i++)
			path[i] = alpha[rand_r(&seed) % (sizeof(alpha) - 1)];
		for (size_t i = 0; i < m; i++)
			qbuf[i] = alpha[rand_r(&seed) % 6];
		icase = !fold_has_upper(qbuf, m);
		match_pattern_init(&p, qbuf, m, icase);

		size_t base = match_basename(path, n);
		int32_t fast = match_fuzzy(&p, path, n, base, sc, NULL);
		int32_t full = match_fuzzy(&p, path, n, base, sc, pos);

		assert_int_equal(fast, full);
		if (fast == MATCH_NONE)
			continue;
		matched++;
		for (size_t i = 0; i < m; i++) {
			uint8_t c = (uint8_t)path[pos[i]];

			if (i > 0)
				assert_true(pos[i] > pos[i - 1]);
			assert_true(pos[i] < n);
			assert_int_equal(icase ? match_lower[c] : c,
			    (uint8_t)qbuf[i]);
		}
		assert_int_equal(full,
		    match_score_positions(path, n, base, pos, m));
		/* And the DP finds the optimum, checked where we can afford to. */
		if (m <= 4 && n <= 40) {
			uint32_t cur[4];

			assert_int_equal(full, brute_best(&p, path, n, base, 0,
			    0, cur));
			checked++;
		}
		/* No literal occurrence scores above the best alignment. */
		int32_t lit = match_literal(&p, MATCH_ANYWHERE, path, n, base,
		    NULL);
		if (lit != MATCH_NONE)
			assert_true(lit <= full);
	}
	/* The loop must have exercised matches, not only rejections. */
	assert_true(matched > 1000);
	assert_true(checked > 100);
	match_scratch_free(sc);
}

static void
test_scratch_oom(void **state)
{
	(void)state;
	for (unsigned long n = 1;; n++) {
		struct match_scratch *sc;

		alloc_fail_at(n);
		sc = match_scratch_new();
		if (!alloc_failed()) {
			alloc_fail_at(0);
			assert_non_null(sc);
			match_scratch_free(sc);
			break;
		}
		assert_null(sc);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranking_pairs),
		cmocka_unit_test(test_ranking_lists),
		cmocka_unit_test(test_smart_case),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_empty_and_long_queries),
		cmocka_unit_test(test_very_long_path),
		cmocka_unit_test(test_non_utf8),
		cmocka_unit_test(test_basename),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_property_scores_agree),
		cmocka_unit_test(test_scratch_oom),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
