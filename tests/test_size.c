/*
 * test_size.c - the number syntax of size.h, shared by fidxd's flags and
 * fidx filter's: suffixes, bounds at min-1, min, max and max+1, and
 * what it refuses.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../common/size.h"

static unsigned long long
ok(const char *s, unsigned long long min, unsigned long long max)
{
	unsigned long long v = 12345;

	assert_int_equal(size_parse(s, min, max, &v), 0);
	return v;
}

static void
bad(const char *s, unsigned long long min, unsigned long long max, int e)
{
	unsigned long long v = 12345;

	errno = 0;
	assert_int_equal(size_parse(s, min, max, &v), -1);
	assert_int_equal(errno, e);
	assert_int_equal(v, 12345);	/* untouched */
}

static void
test_suffixes(void **state)
{
	(void)state;
	assert_int_equal(ok("0", 0, 10), 0);
	assert_int_equal(ok("4096", 1, ULLONG_MAX), 4096);
	assert_int_equal(ok("64K", 1, ULLONG_MAX), 65536);
	assert_int_equal(ok("64k", 1, ULLONG_MAX), 65536);
	assert_int_equal(ok("3M", 1, ULLONG_MAX), 3ull << 20);
	assert_int_equal(ok("2g", 1, ULLONG_MAX), 2ull << 30);
	assert_int_equal(ok("007", 1, 10), 7);
}

static void
test_bounds(void **state)
{
	(void)state;
	bad("0", 1, 10, ERANGE);		/* min - 1 */
	assert_int_equal(ok("1", 1, 10), 1);	/* min */
	assert_int_equal(ok("10", 1, 10), 10);	/* max */
	bad("11", 1, 10, ERANGE);		/* max + 1 */
	assert_int_equal(ok("4K", 1, 4096), 4096);
	bad("4K", 1, 4095, ERANGE);
	bad("4K", 4097, ULLONG_MAX, ERANGE);
	/* 64 bits: the largest, one past it, and a suffix that overflows. */
	assert_true(ok("18446744073709551615", 0, ULLONG_MAX) == ULLONG_MAX);
	bad("18446744073709551616", 0, ULLONG_MAX, ERANGE);
	bad("17179869184G", 0, ULLONG_MAX, ERANGE);
	assert_true(ok("17179869183G", 0, ULLONG_MAX) == 17179869183ull << 30);
}

static void
test_refused(void **state)
{
	static const char *const junk[] = { "", "-1", "+1", " 1", "1 ", "K",
	    "1KB", "1T", "1.5", "0x10", "1KK", "1e3", "--1" };

	(void)state;
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		bad(junk[i], 0, ULLONG_MAX, EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suffixes),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
