/*
 * test_alloc.c - fidx_big_*: blocks of their own for what an index holds.
 *
 * A big block must be a mapping of its own (page-aligned header, counted
 * in alloc_big_bytes, given back whole when freed), keep its contents
 * when it grows or shrinks, cross from malloc to a mapping when it grows
 * past FIDX_BIG_MIN, fail cleanly on injected failures and on overflow,
 * and leave the old block valid when growing fails. Under ASan big blocks
 * are malloc'd by default, so each test turns mapping on (or off) itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "../common/alloc.h"

#define PAGE 4096
/* The header before each block (alloc.c's struct alloc_big). */
#define HDR 16

static size_t
mapped_len(size_t size)
{
	return (size + HDR + PAGE - 1) / PAGE * PAGE;
}

static void
fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31 + seed);
}

static int
same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(i * 31 + seed))
			return 0;
	return 1;
}

static int
setup_maps(void **state)
{
	(void)state;
	alloc_big_maps(1);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	alloc_fail_at(0);
	alloc_big_maps(0);
	assert_int_equal(alloc_big_bytes(), 0);
	return 0;
}

static void
test_big_block_is_its_own_mapping(void **state)
{
	size_t before = alloc_big_bytes();
	unsigned char *p;

	(void)state;
	p = fidx_big_malloc(FIDX_BIG_MIN);
	assert_non_null(p);
	assert_int_equal(((uintptr_t)p - HDR) % PAGE, 0);
	assert_int_equal(alloc_big_bytes() - before,
	    mapped_len(FIDX_BIG_MIN));
	fill(p, FIDX_BIG_MIN, 1);
	fidx_big_free(p);
	assert_int_equal(alloc_big_bytes(), before);
	fidx_big_free(NULL);
}

static void
test_grow_and_shrink_keep_contents(void **state)
{
	size_t n = 100 * 1024, big = 3 * 1024 * 1024;
	unsigned char *p, *q;

	(void)state;
	assert_non_null(p = fidx_big_malloc(n));
	fill(p, n, 7);
	assert_non_null(q = fidx_big_reallocarray(p, big, 1));
	assert_true(same(q, n, 7));
	assert_int_equal(alloc_big_bytes(), mapped_len(big));
	memset(q + n, 0xab, big - n);
	assert_non_null(p = fidx_big_reallocarray(q, n / 2, 1));
	assert_true(same(p, n / 2, 7));
	assert_int_equal(alloc_big_bytes(), mapped_len(n / 2));
	fidx_big_free(p);
}

static void
test_small_block_crosses_to_a_mapping(void **state)
{
	size_t n = 1000;
	unsigned char *p, *q;

	(void)state;
	assert_non_null(p = fidx_big_malloc(n));
	assert_int_equal(alloc_big_bytes(), 0);
	fill(p, n, 3);
	/* Still under the line: malloc's realloc. */
	assert_non_null(p = fidx_big_reallocarray(p, 2, n));
	assert_true(same(p, n, 3));
	assert_int_equal(alloc_big_bytes(), 0);
	assert_non_null(q = fidx_big_reallocarray(p, 70, n));
	assert_true(same(q, n, 3));
	assert_int_equal(((uintptr_t)q - HDR) % PAGE, 0);
	assert_int_equal(alloc_big_bytes(), mapped_len(70 * n));
	fidx_big_free(q);
}

static void
test_maps_off_is_malloc(void **state)
{
	unsigned char *p;

	(void)state;
	alloc_big_maps(0);
	assert_non_null(p = fidx_big_malloc(2 * FIDX_BIG_MIN));
	assert_int_equal(alloc_big_bytes(), 0);
	fill(p, 2 * FIDX_BIG_MIN, 5);
	assert_non_null(p = fidx_big_reallocarray(p, 4, FIDX_BIG_MIN));
	assert_true(same(p, 2 * FIDX_BIG_MIN, 5));
	assert_int_equal(alloc_big_bytes(), 0);
	/* Made big while mapping was off, shrunk once it is on. */
	alloc_big_maps(1);
	assert_non_null(p = fidx_big_reallocarray(p, 3, FIDX_BIG_MIN / 2));
	assert_true(same(p, 3 * FIDX_BIG_MIN / 2, 5));
	assert_int_equal(alloc_big_bytes(), mapped_len(3 * FIDX_BIG_MIN / 2));
	fidx_big_free(p);
}

static void
test_failures_leave_the_old_block(void **state)
{
	unsigned char *p, *q;

	(void)state;
	alloc_fail_at(1);
	errno = 0;
	assert_null(fidx_big_malloc(FIDX_BIG_MIN));
	assert_int_equal(errno, ENOMEM);
	assert_true(alloc_failed());
	assert_int_equal(alloc_big_bytes(), 0);

	assert_non_null(p = fidx_big_malloc(FIDX_BIG_MIN));
	fill(p, FIDX_BIG_MIN, 9);
	alloc_fail_at(1);
	assert_null(fidx_big_reallocarray(p, 8, FIDX_BIG_MIN));
	assert_true(same(p, FIDX_BIG_MIN, 9));
	assert_int_equal(alloc_big_bytes(), mapped_len(FIDX_BIG_MIN));

	/* n * size overflows, and a size no mapping can have. */
	assert_null(fidx_big_reallocarray(p, SIZE_MAX / 2, 4));
	assert_null(fidx_big_reallocarray(p, SIZE_MAX - 8, 1));
	assert_null(fidx_big_reallocarray(NULL, SIZE_MAX / 2, 4));
	assert_null(fidx_big_malloc(SIZE_MAX - 8));
	assert_true(same(p, FIDX_BIG_MIN, 9));
	assert_non_null(q = fidx_big_reallocarray(p, 2, FIDX_BIG_MIN));
	assert_true(same(q, FIDX_BIG_MIN, 9));
	fidx_big_free(q);
}

#define POOL_N 20000

static void *pool_blocks[POOL_N];

static void *
pool_free_all(void *arg)
{
	(void)arg;
	for (size_t i = 0; i < POOL_N; i++)
		fidx_pool_free(pool_blocks[i]);
	return NULL;
}

/*
 * While a pool is open, small blocks come from chunks of their own,
 * 16-byte aligned and apart; freed on another thread, the last block of a
 * chunk gives the chunk back. Closed, or with mapping off, malloc's.
 */
static void
test_pool(void **state)
{
	pthread_t t;
	void *p;

	(void)state;
	alloc_pool_begin();
	for (size_t i = 0; i < POOL_N; i++) {
		size_t n = 1 + i % 100;

		assert_non_null(pool_blocks[i] = fidx_pool_malloc(n));
		assert_int_equal((uintptr_t)pool_blocks[i] % 16, 0);
		fill(pool_blocks[i], n, (unsigned)i);
	}
	/* Large blocks are malloc's, not a chunk's. */
	assert_non_null(p = fidx_pool_malloc(128 * 1024));
	alloc_pool_end();
	assert_true(alloc_pool_chunks() >= 20000 * 32 / (256 * 1024));
	assert_true(alloc_big_bytes() >= alloc_pool_chunks() * 256 * 1024);
	for (size_t i = 0; i < POOL_N; i++)
		assert_true(same(pool_blocks[i], 1 + i % 100, (unsigned)i));
	assert_int_equal(pthread_create(&t, NULL, pool_free_all, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	fidx_pool_free(p);
	assert_int_equal(alloc_pool_chunks(), 0);
	assert_int_equal(alloc_big_bytes(), 0);

	/* No pool open: malloc's. */
	assert_non_null(p = fidx_pool_malloc(10));
	assert_int_equal(alloc_pool_chunks(), 0);
	fidx_pool_free(p);
	/* Mapping off (under ASan in fidxd): malloc's, pool or not. */
	alloc_big_maps(0);
	alloc_pool_begin();
	assert_non_null(p = fidx_pool_malloc(10));
	assert_int_equal(alloc_pool_chunks(), 0);
	alloc_pool_end();
	fidx_pool_free(p);
	alloc_big_maps(1);
	/* Injected failures reach pool blocks; a block freed in the pool. */
	alloc_pool_begin();
	alloc_fail_at(1);
	assert_null(fidx_pool_malloc(10));
	assert_true(alloc_failed());
	assert_non_null(p = fidx_pool_malloc(10));
	fidx_pool_free(p);
	assert_int_equal(alloc_pool_chunks(), 1);	/* still open */
	alloc_pool_end();
	assert_int_equal(alloc_pool_chunks(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_big_block_is_its_own_mapping, setup_maps, teardown),
		cmocka_unit_test_setup_teardown(
		    test_grow_and_shrink_keep_contents, setup_maps, teardown),
		cmocka_unit_test_setup_teardown(
		    test_small_block_crosses_to_a_mapping, setup_maps,
		    teardown),
		cmocka_unit_test_setup_teardown(test_maps_off_is_malloc,
		    setup_maps, teardown),
		cmocka_unit_test_setup_teardown(
		    test_failures_leave_the_old_block, setup_maps, teardown),
		cmocka_unit_test_setup_teardown(test_pool, setup_maps,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
