/*
 * test_regex.c - one pattern, two modes (regex.h): which compilation a
 * subject gets, which patterns have only one, and the error message.
 * query.c (test_query.c) and the walk's exclude (test_walk.c) test what
 * matching with it finds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../common/regex.h"

static bool
matches(const struct regex *rx, const char *s)
{
	pcre2_match_data *md;
	int rc;

	md = pcre2_match_data_create_from_pattern(regex_any(rx), NULL);
	assert_non_null(md);
	rc = pcre2_match(regex_code(rx, s, strlen(s)), (PCRE2_SPTR)s,
	    strlen(s), 0, 0, md, NULL);
	pcre2_match_data_free(md);
	assert_true(rc >= 0 || rc == PCRE2_ERROR_NOMATCH);
	return rc >= 0;
}

/* A UTF-8 subject is read by characters, any other by bytes. */
static void
test_modes(void **state)
{
	struct regex rx;
	struct fidx_err err;

	(void)state;
	assert_int_equal(regex_compile(&rx, "^caf.$", 6, 0, "regex", &err), 0);
	assert_non_null(rx.utf);
	assert_non_null(rx.bytes);
	assert_ptr_equal(regex_code(&rx, "cafe", 4), rx.utf);
	assert_ptr_equal(regex_code(&rx, "caf\xc3\xa9", 5), rx.utf);
	assert_ptr_equal(regex_code(&rx, "caf\xe9", 4), rx.bytes);
	assert_true(matches(&rx, "caf\xc3\xa9"));	/* é is one character */
	assert_true(matches(&rx, "caf\xe9"));		/* and so is \xe9 */
	assert_false(matches(&rx, "caf\xe9\xe9"));
	regex_release(&rx);
	regex_release(&rx);	/* released twice is fine */
}

/*
 * A pattern that needs UTF mode has only that one; a pattern that is
 * not UTF-8 only byte mode; each is then used for every subject.
 */
static void
test_one_mode(void **state)
{
	struct regex rx;
	struct fidx_err err;

	(void)state;
	assert_int_equal(regex_compile(&rx, "\\x{100}", 7, 0, "regex", &err), 0);
	assert_non_null(rx.utf);
	assert_null(rx.bytes);
	assert_ptr_equal(regex_code(&rx, "caf\xe9", 4), rx.utf);
	assert_true(matches(&rx, "a\xc4\x80"));
	regex_release(&rx);

	assert_int_equal(regex_compile(&rx, "caf\xe9", 4, 0, "regex", &err), 0);
	assert_null(rx.utf);
	assert_non_null(rx.bytes);
	assert_ptr_equal(regex_code(&rx, "cafe", 4), rx.bytes);
	assert_true(matches(&rx, "x/caf\xe9"));
	regex_release(&rx);
}

/* A bad pattern names what it was for, and leaves nothing to free. */
static void
test_bad(void **state)
{
	struct regex rx;
	struct fidx_err err;

	(void)state;
	assert_int_equal(regex_compile(&rx, "a(", 2, 0, "exclude regex", &err),
	    -1);
	assert_null(rx.utf);
	assert_null(rx.bytes);
	assert_non_null(strstr(err.msg, "bad exclude regex at offset 2"));
	/* Not UTF-8 and bad in byte mode too: byte mode's reason. */
	assert_int_equal(regex_compile(&rx, "\xe9(", 2, 0, "regex", &err), -1);
	assert_non_null(strstr(err.msg, "bad regex at offset 2"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_one_mode),
		cmocka_unit_test(test_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
