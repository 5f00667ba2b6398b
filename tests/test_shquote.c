/*
 * test_shquote.c - shquote.h: the words hints spell out, plain when they
 * can be, else single-quoted with '\'' for a quote; truncation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../common/shquote.h"

static void
word_is(const char *s, const char *want)
{
	char buf[SHQUOTE_SIZE(64)];

	assert_int_equal(shquote(buf, sizeof(buf), s), strlen(want));
	assert_string_equal(buf, want);
}

static void
test_plain_and_quoted(void **state)
{
	(void)state;
	word_is("/tmp/fidx-0/sock", "/tmp/fidx-0/sock");
	word_is("a+b=c:d,e@f%g", "a+b=c:d,e@f%g");
	word_is("", "''");
	word_is("/tmp/my sock", "'/tmp/my sock'");
	word_is("/tmp/it's", "'/tmp/it'\\''s'");
	word_is("'", "''\\'''");
	word_is("$HOME`x`\\", "'$HOME`x`\\'");
	word_is("a\nb", "'a\nb'");
	word_is("\377", "'\377'");
}

/* Every byte a quote: the bound SHQUOTE_SIZE promises, exactly. */
static void
test_worst_case_size(void **state)
{
	char in[9], buf[SHQUOTE_SIZE(8)];

	(void)state;
	memset(in, '\'', 8);
	in[8] = '\0';
	assert_int_equal(shquote(buf, sizeof(buf), in), sizeof(buf) - 1);
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
}

/* Short of room: NUL-terminated, and the length it needed returned. */
static void
test_truncated(void **state)
{
	char buf[6];

	(void)state;
	assert_int_equal(shquote(buf, sizeof(buf), "/tmp/my sock"), 14);
	assert_string_equal(buf, "'/tmp");
	assert_int_equal(shquote(buf, 1, "abc"), 3);
	assert_string_equal(buf, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_quoted),
		cmocka_unit_test(test_worst_case_size),
		cmocka_unit_test(test_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
