/*
 * test_topk.c - the bounded result heap of topk.h.
 *
 * The order is checked key by key as pairs (score, then length, then
 * bytes, then index). Sizes are tested at k-1, k and k+1 items, merging
 * two heaps is compared with pushing everything into one, and a seeded
 * loop compares the heap with qsort() of all items cut to the first k.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/alloc.h"
#include "../common/topk.h"
#include "testutil.h"

static struct topk_item
item(const char *path, int32_t score, uint32_t index)
{
	struct topk_item it = {
		.path = path,
		.len = (uint32_t)strlen(path),
		.index = index,
		.score = score,
		.extra = 0,
	};
	return it;
}

/* a is strictly better than b, and the order is antisymmetric. */
static void
assert_before(struct topk_item a, struct topk_item b)
{
	assert_true(topk_better(&a, &b));
	assert_false(topk_better(&b, &a));
}

static void
assert_sorted(const struct topk *t)
{
	for (size_t i = 1; i < t->n; i++)
		if (!topk_better(&t->items[i - 1], &t->items[i])) {
			print_error("items %zu and %zu out of order\n", i - 1,
			    i);
			fail();
		}
}

static void
test_order(void **state)
{
	struct topk_item a = item("same", 5, 1);

	(void)state;
	/* Higher score first, whatever the length. */
	assert_before(item("a/very/long/path", 10, 9), item("x", 9, 0));
	/* Equal scores: the shorter path. */
	assert_before(item("ab", 7, 9), item("abc", 7, 0));
	/* Equal scores and lengths: bytewise, as unsigned bytes. */
	assert_before(item("abc", 7, 9), item("abd", 7, 0));
	assert_before(item("B", 7, 9), item("a", 7, 0));
	assert_before(item("a\x7f", 7, 9), item("a\x80", 7, 0));
	/* All else equal: the smaller index. */
	assert_before(item("x", 7, 1), item("x", 7, 2));
	/* Negative scores order the same way. */
	assert_before(item("x", -1, 0), item("x", -2, 0));
	/* The order is strict. */
	assert_false(topk_better(&a, &a));
	/* extra is not part of the order. */
	struct topk_item b = a;
	b.extra = 99;
	assert_false(topk_better(&a, &b));
	assert_false(topk_better(&b, &a));
}

static void
test_k_one(void **state)
{
	struct topk t;

	(void)state;
	assert_int_equal(topk_init(&t, 1), 0);
	struct topk_item its[] = {
		item("b", 3, 0), item("a", 5, 1), item("cc", 5, 2),
		item("c", 5, 3), item("z", 1, 4),
	};
	for (size_t i = 0; i < 5; i++) {
		topk_push(&t, &its[i]);
		assert_int_equal(t.n, 1);
	}
	topk_sort(&t);
	assert_int_equal(t.items[0].index, 1);
	topk_release(&t);
	assert_null(t.items);
	assert_int_equal(t.n, 0);
}

/* Pushes items with scores 0..n-1, alternating low and high. */
static void
push_scores(struct topk *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t s = i % 2 ? n - 1 - i / 2 : i / 2;
		struct topk_item it = item("p", (int32_t)s, (uint32_t)i);

		topk_push(t, &it);
	}
}

static void
test_sizes_around_k(void **state)
{
	const size_t k = 8;

	(void)state;
	for (size_t n = k - 1; n <= k + 1; n++) {
		struct topk t;

		assert_int_equal(topk_init(&t, k), 0);
		push_scores(&t, n);
		assert_int_equal(t.n, n < k ? n : k);
		topk_sort(&t);
		assert_sorted(&t);
		/* The best come out: scores n-1 down to n-t.n. */
		for (size_t i = 0; i < t.n; i++)
			assert_int_equal(t.items[i].score, (int32_t)(n - 1 - i));
		topk_release(&t);
	}
}

static void
test_wants(void **state)
{
	struct topk t;

	(void)state;
	assert_int_equal(topk_init(&t, 2), 0);
	assert_true(topk_wants(&t, -100));	/* not full yet */
	push_scores(&t, 5);			/* keeps 4 and 3 */
	assert_true(topk_wants(&t, 4));
	assert_true(topk_wants(&t, 3));		/* ties may still win */
	assert_false(topk_wants(&t, 2));
	topk_release(&t);
}

static const char *const paths[] = {
	"a", "b", "ab", "ba", "abc", "a\xff", "\x80", "zz", "",
};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

/* Random scores and paths from a small set, so every key sees ties. */
static void
random_items(uint64_t *seed, struct topk_item *its, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		its[i] = item(paths[rnd(seed) % NPATHS],
		    (int32_t)(rnd(seed) % 7) - 3, (uint32_t)i);
		its[i].extra = (uint32_t)i;
	}
}

static void
assert_same_items(const struct topk *a, const struct topk *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_int_equal(a->items[i].index, b->items[i].index);
}

static void
test_merge(void **state)
{
	uint64_t seed = 7;
	struct topk_item its[300];

	(void)state;
	for (size_t round = 0; round < 20; round++) {
		size_t k = 1 + rnd(&seed) % 40, split = rnd(&seed) % 300;
		struct topk one, a, b;

		random_items(&seed, its, 300);
		assert_int_equal(topk_init(&one, k), 0);
		assert_int_equal(topk_init(&a, k), 0);
		assert_int_equal(topk_init(&b, k), 0);
		for (size_t i = 0; i < 300; i++) {
			topk_push(&one, &its[i]);
			topk_push(i < split ? &a : &b, &its[i]);
		}
		size_t bn = b.n;
		topk_merge(&a, &b);
		assert_int_equal(b.n, bn);	/* src is left unchanged */
		topk_sort(&one);
		topk_sort(&a);
		assert_sorted(&a);
		assert_same_items(&one, &a);
		topk_release(&one);
		topk_release(&a);
		topk_release(&b);
	}
}

static void
test_against_qsort(void **state)
{
	enum { N = 500 };
	struct topk_item *its = calloc(N, sizeof(*its));
	struct topk_item *sorted = calloc(N, sizeof(*sorted));
	uint64_t seed = 12345;
	const size_t ks[] = { 1, 2, 3, 10, 64, N - 1, N, N + 1 };

	(void)state;
	assert_non_null(its);
	assert_non_null(sorted);
	for (size_t round = 0; round < 10; round++) {
		random_items(&seed, its, N);
		memcpy(sorted, its, N * sizeof(*its));
		qsort(sorted, N, sizeof(*sorted), cmp_items);
		for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++) {
			struct topk t;
			size_t k = ks[ki];

			assert_int_equal(topk_init(&t, k), 0);
			for (size_t i = 0; i < N; i++)
				topk_push(&t, &its[i]);
			topk_sort(&t);
			assert_int_equal(t.n, k < N ? k : N);
			for (size_t i = 0; i < t.n; i++) {
				if (t.items[i].index == sorted[i].index)
					continue;
				print_error("round %zu, k %zu: item %zu is "
				    "#%u, qsort says #%u\n", round, k, i,
				    t.items[i].index, sorted[i].index);
				fail();
			}
			/* extra travels with its item. */
			for (size_t i = 0; i < t.n; i++)
				assert_int_equal(t.items[i].extra,
				    t.items[i].index);
			topk_release(&t);
		}
	}
	free(its);
	free(sorted);
}

static void
test_oom(void **state)
{
	struct topk t;

	(void)state;
	alloc_fail_at(1);
	errno = 0;
	assert_int_equal(topk_init(&t, 10), -1);
	assert_int_equal(errno, ENOMEM);
	alloc_fail_at(0);
	topk_release(&t);	/* releasing a failed heap is harmless */
	/* A k whose array size overflows fails too, without injection. */
	assert_int_equal(topk_init(&t, SIZE_MAX / 2), -1);
	topk_release(&t);
}

/*
 * Regression (topk.h, topk_wants), fixed: with k = 0 the heap holds no item, yet
 * topk_wants() reads items[0].score (a 1-byte allocation) and ASan
 * reports a heap-buffer-overflow. Expected: false, nothing is wanted.
 * Last in the list, as it aborts the binary until fixed.
 */
static void
test_k_zero(void **state)
{
	struct topk t;
	struct topk_item it = item("a", 1, 0);

	(void)state;
	assert_int_equal(topk_init(&t, 0), 0);
	topk_push(&t, &it);
	assert_int_equal(t.n, 0);
	topk_sort(&t);
	assert_int_equal(t.n, 0);
	assert_false(topk_wants(&t, 100));
	topk_release(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_k_one),
		cmocka_unit_test(test_sizes_around_k),
		cmocka_unit_test(test_wants),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_against_qsort),
		cmocka_unit_test(test_oom),
		cmocka_unit_test(test_k_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
