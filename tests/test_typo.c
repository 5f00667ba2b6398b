/*
 * test_typo.c - typo matching (typo.h): what a typo finds, where it ranks
 * against clean matches, and the edit budget at its limits.
 *
 * Rankings are pairs, as in test_match.c: "a above b", never a number.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../common/match.h"
#include "../common/query.h"
#include "../common/typo.h"
#include "testutil.h"

static int32_t
score(const char *query, const char *path)
{
	return score_once(query, path, strlen(path), 0);
}

/* score() with typo matching on (query_set_typos). */
static int32_t
score_typo(const char *query, const char *path)
{
	return score_once(query, path, strlen(path), 2);
}

/* True if query finds path only with a typo forgiven. */
static bool
typo_only(const char *query, const char *path)
{
	return score(query, path) == MATCH_NONE &&
	    score_typo(query, path) != MATCH_NONE;
}

/*
 * Typos: found; below a clean match of similar quality; for a word,
 * above a scattered clean match; for an abbreviation, below every clean
 * match; fewer edits first; and never junk for a random string.
 */
static void
test_typos(void **state)
{
	/* query, a path it finds only with a typo forgiven */
	static const char *const found[][2] = {
		{ "licnese", "LICENSE" },	/* swapped */
		{ "licemse", "LICENSE" },	/* wrong */
		{ "licennse", "LICENSE" },	/* extra */
		{ "dockrefile", "Dockerfile" },
		{ "conifg.h", "src/config.h" },
		{ "readmee", "README.md" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++)
		if (!typo_only(found[i][0], found[i][1]))
			fail_msg("%s should find %s with a typo", found[i][0],
			    found[i][1]);
	/* A missing byte is a gap: a clean match, no typo needed. */
	assert_int_not_equal(score("makfile", "Makefile"), MATCH_NONE);
	/* 3 bytes have no budget; 8 have two edits. */
	assert_int_equal(score_typo("lcn", "lnc"), MATCH_NONE);
	assert_true(typo_only("abcdefgh", "abcdefgx_y"));
	assert_int_equal(score_typo("abcdefgh", "abcdexxx"), MATCH_NONE);
	/* A clean match of the same quality is above the typo match. */
	assert_true(score_typo("licnese", "doc/LICNESE.txt") >
	    score_typo("licnese", "doc/LICENSE.txt"));
	/* A word: a near-perfect typo beats a match smeared over words. */
	assert_true(score_typo("licnese", "LICENSE") >
	    score_typo("licnese", "man3/libssh2_channel_setenv.3"));
	/* An abbreviation: every clean match is above every typo match. */
	assert_true(score_typo("lcns", "lib/gconv/libCNS.so") >
	    score_typo("lcns", "usr/bin/lnstat"));
	assert_true(score_typo("dkrfl", "a/long/way/to/the/Dockerfile") >
	    score_typo("dkrfl", "drop-flags.html"));
	assert_true(typo_only("dkrfl", "drop-flags.html"));
	/* Among typo matches, one edit beats two. */
	assert_true(score_typo("conifg.h", "include/config.h") >
	    score_typo("conifg.h", "include/conf.h"));
	/* A poor alignment of what is left is no typo match: no junk. */
	assert_int_equal(score_typo("zzqx", "x-zerosize.xml"), MATCH_NONE);
	assert_int_equal(score_typo("qxjzv", "a/q/x/j/z/b.c"), MATCH_NONE);
}

/*
 * Which typo matches compete with clean ones is read from the name: one
 * whose start is a word the pattern is an edit from ("scirpt": script,
 * a swap in a one-vowel word) ranks as that word, above clean smears and
 * other typo readings; a smear of the pattern over a path does not hide
 * it; a swap mid-word is found; a wrong byte costs more than a swap.
 */
static void
test_typo_near_word(void **state)
{
	(void)state;
	/* A one-vowel word, swapped: above a clean smear over a path. */
	assert_true(score_typo("scirpt", "/usr/bin/script") >
	    score_typo("scirpt",
	    "/usr/lib/perf-core/scripts/python/bin/sched-migration-report"));
	assert_true(typo_in_tier(score_typo("scirpt", "/usr/bin/script")) ==
	    false);
	/* A clean smear (s, d, t over usr/include/) hides no word. */
	assert_true(score_typo("sdtlib.h", "/usr/include/stdlib.h") >
	    score_typo("sdtlib.h", "/usr/include/X11/SM/SMlib.h"));
	/* A swap mid-word, which leaves no 3-gram and a poor alignment. */
	assert_true(typo_only("sybmol", "Symbol.pm"));
	assert_true(typo_only("wranings", "lib/warnings.pm"));
	assert_true(score_typo("wranings", "lib/warnings.pm") >
	    score_typo("wranings", "Pod/Simple/PullParserEndToken.pm"));
	/* A clean match missing a byte beats a word with a wrong one. */
	assert_true(score_typo("makfile", "src/Makefile") >
	    score_typo("makfile", "zsh/mapfile.so"));
	/* Four bytes: a swap makes a word, a wrong byte does not. */
	assert_false(typo_in_tier(score_typo("bahs", "/usr/bin/bash")));
	assert_true(score_typo("mkfl", "src/Makefile") >
	    score_typo("mkfl", "sbin/mkfs"));
	/* A name that is no word of the pattern stays below clean ones. */
	assert_true(typo_in_tier(score_typo("licnese", "lic-ense-notes")));
}

/* The budget at each of its limits: 3|4 bytes, 7|8, 64|65. */
static void
test_typo_budget(void **state)
{
	(void)state;
	assert_int_equal(typo_budget(0), 0);
	assert_int_equal(typo_budget(3), 0);
	assert_int_equal(typo_budget(4), 1);
	assert_int_equal(typo_budget(7), 1);
	assert_int_equal(typo_budget(8), 2);
	assert_int_equal(typo_budget(TYPO_MAX_LEN - 1), 2);
	assert_int_equal(typo_budget(TYPO_MAX_LEN), 2);
	assert_int_equal(typo_budget(TYPO_MAX_LEN + 1), 0);
}

/*
 * The module alone, below the query: typo_match() finds LICENSE for
 * "licnese" as the word it was meant to be, its positions strictly
 * increasing on bytes of the pattern, in the typo tier only for a name
 * that is no such word.
 */
static void
test_typo_match_direct(void **state)
{
	static const char path[] = "doc/LICENSE";
	size_t n = sizeof(path) - 1, base = match_basename(path, n);
	struct match_pattern p;
	struct match_scratch *sc = match_scratch_new();
	struct typo *t = calloc(1, sizeof(*t));
	uint32_t pos[16];
	int npos = -1;
	int32_t v;

	(void)state;
	assert_non_null(sc);
	assert_non_null(t);
	match_pattern_init(&p, "licnese", 7, true);
	assert_int_equal(match_fuzzy(&p, path, n, base, sc, NULL), MATCH_NONE);
	typo_init(t, &p, 2);
	assert_int_equal(t->edits, 1);	/* capped by the budget of 7 bytes */
	v = typo_match(&p, t, path, n, base, sc, MATCH_NONE, pos, &npos);
	assert_int_not_equal(v, MATCH_NONE);
	assert_false(typo_in_tier(v));	/* a word competes with clean ones */
	assert_int_equal(npos, 7);	/* the word it was meant to be */
	for (int k = 0; k < npos; k++) {
		assert_true(pos[k] >= base && pos[k] < n);
		assert_true(k == 0 || pos[k] > pos[k - 1]);
		assert_non_null(memchr("licnese", match_lower[(uint8_t)
		    path[pos[k]]], 7));
	}
	/* Without positions, the same score. */
	assert_int_equal(typo_match(&p, t, path, n, base, sc, MATCH_NONE, NULL,
	    NULL), v);
	/* An abbreviation's typo match sits in the tier below clean ones. */
	match_pattern_init(&p, "dkrfl", 5, true);
	typo_init(t, &p, 2);
	v = typo_match(&p, t, "drop-flags.html", 15, 0, sc, MATCH_NONE, NULL,
	    NULL);
	assert_true(typo_in_tier(v));
	/* Off: no typo reading at all. */
	typo_init(t, &p, 0);
	assert_int_equal(typo_match(&p, t, "drop-flags.html", 15, 0, sc,
	    MATCH_NONE, NULL, NULL), MATCH_NONE);
	free(t);
	match_scratch_free(sc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_typos),
		cmocka_unit_test(test_typo_near_word),
		cmocka_unit_test(test_typo_budget),
		cmocka_unit_test(test_typo_match_direct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
