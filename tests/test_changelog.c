/*
 * test_changelog.c - the change log git's monitor hook reads: entries
 * after a number in order and per project, the newest path not logged
 * twice in a row, both bounds at limit-1, limit and limit+1 with the
 * floor rising to the last entry dropped, bump numbers no entry has, and
 * an entry over the byte bound alone refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../indexer/changelog.h"

/* What one entry of a path this long counts (changelog.c's reckoning). */
#define ENT_BYTES(len) (24 + (len) + 1 + sizeof(size_t))

struct seen {
	char buf[1024];
	size_t n;
};

static int
collect(void *arg, const char *path, size_t len)
{
	struct seen *s = arg;

	assert_int_equal(strlen(path), len);
	s->n++;
	strncat(s->buf, path, sizeof(s->buf) - strlen(s->buf) - 2);
	strcat(s->buf, " ");
	return 0;
}

static const char *
since(const struct changelog *c, uint32_t project, uint64_t seq,
    struct seen *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(changelog_since(c, project, seq, collect, s), 0);
	return s->buf;
}

static struct changelog *
log_new(size_t entries, size_t bytes)
{
	struct changelog_limits lim = { entries, bytes };
	struct changelog *c = changelog_new(&lim);

	assert_non_null(c);
	return c;
}

static void
test_order_and_projects(void **state)
{
	struct changelog *c = log_new(100, 1 << 20);
	struct changelog_stats st;
	struct seen s;
	uint64_t t;

	(void)state;
	assert_int_equal(changelog_seq(c), 0);
	assert_int_equal(changelog_add(c, 1, "a.c", 3, false), 0);
	assert_int_equal(changelog_add(c, 2, "other", 5, false), 0);
	t = changelog_seq(c);
	assert_int_equal(changelog_add(c, 1, "dir", 3, true), 0);
	assert_int_equal(changelog_add(c, 1, "b.c", 3, false), 0);
	assert_string_equal(since(c, 1, 0, &s), "a.c dir/ b.c ");
	assert_string_equal(since(c, 1, t, &s), "dir/ b.c ");
	assert_string_equal(since(c, 2, t, &s), "");
	assert_string_equal(since(c, 2, 0, &s), "other ");
	assert_string_equal(since(c, 1, changelog_seq(c), &s), "");
	/* The newest again only moves up; an older one is logged anew. */
	assert_int_equal(changelog_add(c, 1, "b.c", 3, false), 0);
	assert_int_equal(changelog_add(c, 1, "a.c", 3, false), 0);
	changelog_get_stats(c, &st);
	assert_int_equal(st.entries, 5);
	assert_int_equal(st.repeats, 1);
	assert_string_equal(since(c, 1, t + 2, &s), "b.c a.c ");
	/* A directory and a file of one name are two paths. */
	assert_int_equal(changelog_add(c, 1, "a.c", 3, true), 0);
	changelog_get_stats(c, &st);
	assert_int_equal(st.entries, 6);
	/* A bump is a number no entry has, above every one. */
	t = changelog_bump(c);
	assert_int_equal(t, changelog_seq(c));
	assert_string_equal(since(c, 1, t, &s), "");
	assert_int_equal(changelog_floor(c), 0);
	changelog_free(c);
}

/* max_entries 4: 3, 4 and 5 entries. */
static void
test_entry_bound(void **state)
{
	struct changelog *c = log_new(4, 1 << 20);
	struct changelog_stats st;
	struct seen s;
	char p[16];

	(void)state;
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "f%d", i);
		assert_int_equal(changelog_add(c, 1, p, 2, false), 0);
	}
	assert_int_equal(changelog_floor(c), 0);
	assert_int_equal(changelog_add(c, 1, "f3", 2, false), 0);
	changelog_get_stats(c, &st);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(changelog_floor(c), 0);
	assert_int_equal(changelog_add(c, 1, "f4", 2, false), 0);
	changelog_get_stats(c, &st);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.dropped, 1);
	/* f0 (number 1) went: a reader below 1 cannot be answered. */
	assert_int_equal(changelog_floor(c), 1);
	assert_string_equal(since(c, 1, 1, &s), "f1 f2 f3 f4 ");
	changelog_free(c);
}

/* max_bytes for exactly two entries of 2-byte paths. */
static void
test_byte_bound(void **state)
{
	size_t two = 2 * ENT_BYTES(2);
	struct changelog *c = log_new(100, two);
	struct changelog_stats st;
	struct seen s;

	(void)state;
	assert_int_equal(changelog_add(c, 1, "aa", 2, false), 0);
	changelog_get_stats(c, &st);
	assert_int_equal(st.bytes, ENT_BYTES(2));
	assert_int_equal(changelog_add(c, 1, "bb", 2, false), 0);
	changelog_get_stats(c, &st);
	assert_int_equal(st.bytes, two);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(changelog_add(c, 1, "cc", 2, false), 0);
	changelog_get_stats(c, &st);
	assert_true(st.bytes <= two);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(changelog_floor(c), 1);
	assert_string_equal(since(c, 1, 1, &s), "bb cc ");
	/* One entry over the whole bound is refused; nothing is dropped. */
	assert_int_equal(changelog_add(c, 1, "this path alone is over the "
	    "whole byte bound of the log", 56, false), -1);
	assert_int_equal(errno, EFBIG);
	changelog_get_stats(c, &st);
	assert_int_equal(st.entries, 2);
	changelog_free(c);
}

static void
test_limits_checked(void **state)
{
	struct changelog_limits lim = { 0, 10 };

	(void)state;
	assert_null(changelog_new(&lim));
	assert_int_equal(errno, EINVAL);
	lim = (struct changelog_limits){ 10, 0 };
	assert_null(changelog_new(&lim));
	changelog_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_projects),
		cmocka_unit_test(test_entry_bound),
		cmocka_unit_test(test_byte_bound),
		cmocka_unit_test(test_limits_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
