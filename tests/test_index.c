/*
 * test_index.c - snapshots, the builder's caps and the shared byte budget.
 *
 * The budget is what keeps fidxd under --max-index-bytes: every builder
 * charges it as it grows and every snapshot gives its bytes back when the
 * last reference goes. These tests check the charge is exact at each
 * step, that caps hold at limit - 1, limit and limit + 1, that two
 * builders sharing a budget cannot pass it between them, and that every
 * path out (finish, release, out of memory) returns what it took.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/alloc.h"
#include "../common/query.h"
#include "../indexer/index.h"

/*
 * What a snapshot of these paths weighs: the cap's own arithmetic, the
 * regex engine's pad after the last path included (query.h, QUERY_PAD).
 */
static size_t
weight(size_t files, size_t path_bytes)
{
	return sizeof(struct index_snapshot) + path_bytes +
	    (path_bytes > 0 ? QUERY_PAD : 0) +
	    files * sizeof(struct match_entry);
}

static size_t
used(struct index_budget *b)
{
	return atomic_load(&b->used);
}

static void
budget_init(struct index_budget *b, size_t limit)
{
	atomic_init(&b->used, 0);
	b->limit = limit;
}

/* Adds "f000".."fNNN" (4 bytes each) until a cap; returns how many. */
static size_t
fill(struct index_builder *b, size_t upto)
{
	char p[8];
	size_t i;

	for (i = 0; i < upto; i++) {
		snprintf(p, sizeof(p), "f%03zu", i % 1000);
		if (index_builder_add(b, p, 4) != 0)
			break;
	}
	return i;
}

static void
test_charge_is_exact(void **state)
{
	struct index_budget bud;
	struct index_builder b;
	struct index_snapshot *s;

	(void)state;
	budget_init(&bud, SIZE_MAX / 2);
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
	assert_int_equal(fill(&b, 100), 100);
	assert_int_equal(used(&bud), weight(100, 400));
	s = index_builder_finish(&b, 7);
	assert_non_null(s);
	assert_int_equal(s->n, 100);
	assert_int_equal(s->generation, 7);
	assert_false(s->capped);
	assert_int_equal(used(&bud), index_snapshot_bytes(s));
	assert_int_equal(index_snapshot_bytes(s), weight(100, 400));
	/* A reader keeps it (and its charge) alive past the owner. */
	index_snapshot_ref(s);
	index_snapshot_unref(s);
	assert_int_equal(used(&bud), weight(100, 400));
	index_snapshot_unref(s);
	assert_int_equal(used(&bud), 0);
}

/* The budget at exactly 10 files' weight: 10 fit, the 11th does not. */
static void
test_budget_edges(void **state)
{
	for (int d = -1; d <= 1; d++) {
		struct index_budget bud;
		struct index_builder b;
		struct index_snapshot *s;
		size_t want = d < 0 ? 9 : 10;

		(void)state;
		budget_init(&bud, (size_t)((long)weight(10, 40) + d));
		index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
		assert_int_equal(fill(&b, 100), want);
		assert_true(b.capped);
		assert_true(used(&bud) <= bud.limit);
		s = index_builder_finish(&b, 1);
		assert_non_null(s);
		assert_true(s->capped);
		assert_int_equal(s->n, want);
		index_snapshot_unref(s);
		assert_int_equal(used(&bud), 0);
	}
}

static void
test_max_files_edges(void **state)
{
	(void)state;
	for (size_t files = 9; files <= 11; files++) {
		struct index_builder b;
		struct index_snapshot *s;

		index_builder_init(&b, 10, SIZE_MAX, NULL);
		assert_int_equal(fill(&b, files), files < 10 ? files : 10);
		assert_int_equal(b.capped, files > 10);
		s = index_builder_finish(&b, 1);
		assert_non_null(s);
		assert_int_equal(s->capped, files > 10);
		index_snapshot_unref(s);
	}
}

/* Two rebuilds at once share one budget; neither can take it past. */
static void
test_two_builders_share(void **state)
{
	struct index_budget bud;
	struct index_builder a, b;
	struct index_snapshot *sa, *sb;
	size_t na, nb;

	(void)state;
	budget_init(&bud, weight(10, 40) * 2);
	index_builder_init(&a, SIZE_MAX, SIZE_MAX, &bud);
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
	na = fill(&a, 15);
	nb = fill(&b, 100);
	assert_int_equal(na, 15);
	assert_false(a.capped);
	assert_true(b.capped);
	assert_true(used(&bud) <= bud.limit);
	/* What b got is what a left: no more, and not much less. */
	assert_true(weight(na, na * 4) + weight(nb, nb * 4) <= bud.limit);
	assert_true(weight(na, na * 4) + weight(nb + 1, (nb + 1) * 4) >
	    bud.limit);
	sa = index_builder_finish(&a, 1);
	sb = index_builder_finish(&b, 1);
	assert_non_null(sa);
	assert_non_null(sb);
	assert_int_equal(used(&bud), index_snapshot_bytes(sa) +
	    index_snapshot_bytes(sb));
	index_snapshot_unref(sa);
	index_snapshot_unref(sb);
	assert_int_equal(used(&bud), 0);
}

/* A walk that fails gives its charge back. */
static void
test_release_returns_charge(void **state)
{
	struct index_budget bud;
	struct index_builder b;

	(void)state;
	budget_init(&bud, SIZE_MAX / 2);
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
	fill(&b, 50);
	assert_true(used(&bud) > 0);
	index_builder_release(&b);
	assert_int_equal(used(&bud), 0);
}

/*
 * The arena holds QUERY_PAD zero bytes after its last path, however it
 * was built: PCRE2's JIT reads up to 16 bytes past a subject, and the
 * last path used to end at the block's end (valgrind: "Invalid read of
 * size 16", the block from index_builder_absorb's realloc). ASan sees
 * the reads below, as it cannot see the JIT's, and its
 * malloc_usable_size() is the size asked for, so both checks are exact.
 */
static void
check_pad(const struct index_snapshot *s)
{
	assert_true(s->arena_len > 0);
	assert_true(malloc_usable_size(s->arena) >= s->arena_len + QUERY_PAD);
	for (size_t k = 0; k < QUERY_PAD; k++)
		assert_int_equal(s->arena[s->arena_len + k], 0);
}

static void
test_arena_pad(void **state)
{
	struct index_builder a, b;
	struct index_snapshot *s;
	size_t sizes[] = { 1, 15, 16, 17, 64 * 1024 - 16, 64 * 1024 };

	(void)state;
	/* One builder, at and around its growth steps. */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *p = malloc(sizes[i]);

		assert_non_null(p);
		memset(p, 'x', sizes[i]);
		index_builder_init(&b, SIZE_MAX, SIZE_MAX, NULL);
		assert_int_equal(index_builder_add(&b, p, sizes[i] < 4096 ?
		    sizes[i] : 4096), 0);
		for (size_t left = sizes[i] > 4096 ? sizes[i] - 4096 : 0;
		    left > 0;) {
			size_t n = left < 4096 ? left : 4096;

			assert_int_equal(index_builder_add(&b, p, n), 0);
			left -= n;
		}
		s = index_builder_finish(&b, 1);
		assert_non_null(s);
		assert_int_equal(s->arena_len, sizes[i]);
		check_pad(s);
		index_snapshot_unref(s);
		free(p);
	}
	/*
	 * Builders of one walk, absorbed: into one with room, and into an
	 * empty one (the walk's first thread found no file), whose realloc
	 * is sized by the absorb alone.
	 */
	for (size_t na = 0; na <= 1000; na += 1000) {
		index_builder_init(&a, SIZE_MAX, SIZE_MAX, NULL);
		index_builder_init(&b, SIZE_MAX, SIZE_MAX, NULL);
		fill(&a, na);
		fill(&b, 1000);
		assert_int_equal(index_builder_absorb(&a, &b), 0);
		s = index_builder_finish(&a, 1);
		assert_non_null(s);
		assert_int_equal(s->arena_len, 4 * (na + 1000));
		check_pad(s);
		index_snapshot_unref(s);
	}
}

/* Out of memory at each allocation: -1 or NULL, never a leak or a charge. */
/* Fills b with "dir/fNNNNN" for i in [from, to); the first rc not 0. */
static int
oom_fill(struct index_builder *b, size_t from, size_t to)
{
	char p[32];
	int rc = 0;

	for (size_t i = from; i < to && rc == 0; i++) {
		snprintf(p, sizeof(p), "dir/f%05zu", i);
		rc = index_builder_add(b, p, strlen(p));
	}
	return rc;
}

/*
 * Every allocation of a parallel build (two builders on one budget,
 * grown past their first arena and entry blocks, one absorbed into the
 * other, then finished) fails in turn: the step says so (-1 or NULL),
 * the budget goes back to 0, nothing leaks (ASan), and a large enough N
 * allocates all and gives every path in order.
 */
static void
test_oom(void **state)
{
	unsigned long n;
	bool done = false;

	(void)state;
	for (n = 1; n < 200 && !done; n++) {
		struct index_budget bud;
		struct index_builder a, b;
		struct index_snapshot *s = NULL;
		int rc;

		budget_init(&bud, SIZE_MAX / 2);
		index_builder_init(&a, SIZE_MAX, SIZE_MAX, &bud);
		index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
		alloc_fail_at(n);
		if ((rc = oom_fill(&a, 0, 20000)) != 0 ||
		    (rc = oom_fill(&b, 20000, 30000)) != 0) {
			index_builder_release(&a);
			index_builder_release(&b);
		} else if ((rc = index_builder_absorb(&a, &b)) != 0) {
			index_builder_release(&a);
		} else {
			s = index_builder_finish(&a, 1);
		}
		done = !alloc_failed();
		alloc_fail_at(0);
		if (done) {
			assert_int_equal(rc, 0);
			assert_non_null(s);
			assert_int_equal(s->n, 30000);
			for (size_t i = 0; i < s->n; i++) {
				char p[32];

				snprintf(p, sizeof(p), "dir/f%05zu", i);
				assert_int_equal(s->entries[i].len, strlen(p));
				assert_memory_equal(index_snapshot_path(s, i),
				    p, strlen(p));
			}
			assert_int_equal(used(&bud), index_snapshot_bytes(s));
		} else {
			/* A failed shrink is no failure: the build stands. */
			assert_true(rc == -1 || s == NULL || s->n == 30000);
		}
		index_snapshot_unref(s);
		assert_int_equal(used(&bud), 0);
	}
	assert_true(done);
	assert_true(n > 12);	/* the arenas and entry arrays grew */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_charge_is_exact),
		cmocka_unit_test(test_budget_edges),
		cmocka_unit_test(test_max_files_edges),
		cmocka_unit_test(test_two_builders_share),
		cmocka_unit_test(test_release_returns_charge),
		cmocka_unit_test(test_oom),
		cmocka_unit_test(test_arena_pad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
