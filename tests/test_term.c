/*
 * test_term.c - term.h's key decoder: control keys, escape sequences
 * (whole, split across reads, unknown ones skipped), a lone ESC left
 * pending until term_flush_esc(), Alt-key, UTF-8 characters whole or
 * split, and a stray byte. Bytes go straight into the input buffer, as
 * term_read() would leave them; no terminal is opened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../cli/term.h"

static void
feed(struct term *t, const char *s, size_t n)
{
	assert_true(t->in_len + n <= sizeof(t->in));
	memcpy(t->in + t->in_len, s, n);
	t->in_len += n;
}

/* A literal's bytes, without its NUL. */
#define FEED(t, lit) feed((t), (lit), sizeof(lit) - 1)

static enum term_key
next(struct term *t)
{
	struct term_keypress k;

	return term_next_key(t, &k) ? k.key : TERM_KEY_NONE;
}

static void
test_controls(void **state)
{
	struct term t = { .fd = -1 };

	(void)state;
	FEED(&t, "\r\t\x7f\x08\x15\x17\x03\x07\x0e\x10\n\x0b\x01\x05\x02\x06"
	    "\x04\x1a");
	assert_int_equal(next(&t), TERM_KEY_ENTER);
	assert_int_equal(next(&t), TERM_KEY_TAB);
	assert_int_equal(next(&t), TERM_KEY_BACKSPACE);
	assert_int_equal(next(&t), TERM_KEY_BACKSPACE);
	assert_int_equal(next(&t), TERM_KEY_CTRL_U);
	assert_int_equal(next(&t), TERM_KEY_CTRL_W);
	assert_int_equal(next(&t), TERM_KEY_CTRL_C);
	assert_int_equal(next(&t), TERM_KEY_CTRL_C);
	assert_int_equal(next(&t), TERM_KEY_DOWN);
	assert_int_equal(next(&t), TERM_KEY_UP);
	assert_int_equal(next(&t), TERM_KEY_DOWN);
	assert_int_equal(next(&t), TERM_KEY_UP);
	assert_int_equal(next(&t), TERM_KEY_HOME);
	assert_int_equal(next(&t), TERM_KEY_END);
	assert_int_equal(next(&t), TERM_KEY_LEFT);
	assert_int_equal(next(&t), TERM_KEY_RIGHT);
	assert_int_equal(next(&t), TERM_KEY_DELETE);
	/* ^Z: a key like any other, since the picker stops no job. */
	assert_int_equal(next(&t), TERM_KEY_OTHER);
	assert_int_equal(next(&t), TERM_KEY_NONE);
}

static void
test_sequences(void **state)
{
	struct term t = { .fd = -1 };
	struct term_keypress k;

	(void)state;
	FEED(&t, "\033[A\033OB\033[Z\033[5~\033[6~\033[1;5Dx");
	assert_int_equal(next(&t), TERM_KEY_UP);
	assert_int_equal(next(&t), TERM_KEY_DOWN);
	assert_int_equal(next(&t), TERM_KEY_BTAB);
	assert_int_equal(next(&t), TERM_KEY_PGUP);
	assert_int_equal(next(&t), TERM_KEY_PGDN);
	/* Ctrl-Left: not Left, skipped whole, parameters and all. */
	assert_int_equal(next(&t), TERM_KEY_OTHER);
	assert_true(term_next_key(&t, &k));
	assert_int_equal(k.key, TERM_KEY_CHAR);
	assert_int_equal(k.len, 1);
	assert_int_equal(k.text[0], 'x');
	assert_false(term_pending_esc(&t));

	FEED(&t, "\033[C\033[D\033[H\033OF\033[1~\033[4~\033[3~\033[9~");
	assert_int_equal(next(&t), TERM_KEY_RIGHT);
	assert_int_equal(next(&t), TERM_KEY_LEFT);
	assert_int_equal(next(&t), TERM_KEY_HOME);
	assert_int_equal(next(&t), TERM_KEY_END);
	assert_int_equal(next(&t), TERM_KEY_HOME);
	assert_int_equal(next(&t), TERM_KEY_END);
	assert_int_equal(next(&t), TERM_KEY_DELETE);
	assert_int_equal(next(&t), TERM_KEY_OTHER);
	assert_int_equal(t.in_len, 0);

	/* Split across two reads: nothing until the final byte. */
	FEED(&t, "\033[");
	assert_int_equal(next(&t), TERM_KEY_NONE);
	assert_true(term_pending_esc(&t));
	FEED(&t, "B");
	assert_int_equal(next(&t), TERM_KEY_DOWN);
	assert_int_equal(t.in_len, 0);
}

static void
test_lone_esc(void **state)
{
	struct term t = { .fd = -1 };
	struct term_keypress k;

	(void)state;
	assert_false(term_flush_esc(&t, &k));
	FEED(&t, "\033");
	assert_int_equal(next(&t), TERM_KEY_NONE);
	assert_true(term_pending_esc(&t));
	assert_true(term_flush_esc(&t, &k));
	assert_int_equal(k.key, TERM_KEY_ESC);
	assert_int_equal(t.in_len, 0);

	/* ESC then a key (Alt-x): the Esc first, then the key. */
	FEED(&t, "\033x");
	assert_int_equal(next(&t), TERM_KEY_ESC);
	assert_int_equal(next(&t), TERM_KEY_CHAR);
	assert_int_equal(next(&t), TERM_KEY_NONE);
}

static void
test_utf8(void **state)
{
	struct term t = { .fd = -1 };
	struct term_keypress k;

	(void)state;
	/* é whole, € split after its first byte, then a stray 0xff. */
	FEED(&t, "\xc3\xa9\xe2");
	assert_true(term_next_key(&t, &k));
	assert_int_equal(k.key, TERM_KEY_CHAR);
	assert_int_equal(k.len, 2);
	assert_memory_equal(k.text, "\xc3\xa9", 2);
	assert_false(term_next_key(&t, &k));
	FEED(&t, "\x82\xac\xff");
	assert_true(term_next_key(&t, &k));
	assert_int_equal(k.len, 3);
	assert_memory_equal(k.text, "\xe2\x82\xac", 3);
	assert_true(term_next_key(&t, &k));
	assert_int_equal(k.key, TERM_KEY_CHAR);
	assert_int_equal(k.len, 1);
	assert_int_equal((unsigned char)k.text[0], 0xff);
	assert_int_equal(next(&t), TERM_KEY_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_sequences),
		cmocka_unit_test(test_lone_esc),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
