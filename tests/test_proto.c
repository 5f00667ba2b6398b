/*
 * test_proto.c - how paths that are not UTF-8 travel in JSON (proto.h).
 *
 * proto_utf8_valid() is checked on valid, invalid and NUL-holding input.
 * proto_path_set() must give "path" alone for valid UTF-8, and for
 * anything else a display "path" with U+FFFD per invalid byte plus a
 * "path_b64" that decodes to the exact bytes. The base64 vectors were
 * computed with python3's base64 module; a small decoder here also
 * round-trips random byte strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../common/alloc.h"
#include "../common/proto.h"
#include "../common/typo.h"
#include "testutil.h"

#define S(lit) (lit), sizeof(lit) - 1

static void
test_utf8_valid(void **state)
{
	(void)state;
	assert_true(proto_utf8_valid(S("")));
	assert_true(proto_utf8_valid(S("src/main.c")));
	assert_true(proto_utf8_valid(S("caf\xc3\xa9")));		/* é */
	assert_true(proto_utf8_valid(S("\xe2\x82\xac")));		/* € */
	assert_true(proto_utf8_valid(S("\xf0\x9f\x98\x80")));	/* U+1F600 */
	assert_true(proto_utf8_valid(S("\xf4\x8f\xbf\xbf")));	/* U+10FFFF */
	assert_true(proto_utf8_valid(S("\xed\x9f\xbf")));		/* U+D7FF */

	assert_false(proto_utf8_valid(S("caf\xe9")));		/* Latin-1 */
	assert_false(proto_utf8_valid(S("\xc3")));		/* cut short */
	assert_false(proto_utf8_valid(S("\xe2\x82")));
	assert_false(proto_utf8_valid(S("\xf0\x9f\x98")));
	assert_false(proto_utf8_valid(S("\x80")));		/* lone tail */
	assert_false(proto_utf8_valid(S("\xc0\xaf")));		/* overlong / */
	assert_false(proto_utf8_valid(S("\xe0\x80\xaf")));
	assert_false(proto_utf8_valid(S("\xed\xa0\x80")));	/* surrogate */
	assert_false(proto_utf8_valid(S("\xf4\x90\x80\x80")));	/* > 10FFFF */
	assert_false(proto_utf8_valid(S("\xff")));
	assert_false(proto_utf8_valid(S("\xc3" "a")));

	/* NUL is not allowed anywhere, though it is valid UTF-8. */
	assert_false(proto_utf8_valid(S("a\0b")));
	assert_false(proto_utf8_valid(S("\0")));
	assert_false(proto_utf8_valid(S("abc\0")));

	/* Only n bytes are looked at. */
	assert_true(proto_utf8_valid("abc\xe9", 3));
	assert_true(proto_utf8_valid("a\0", 1));
	assert_false(proto_utf8_valid("\xc3\xa9", 1));
}

/* A strict base64 decoder; returns the length or -1 if s is malformed. */
static int
b64_decode(const char *s, uint8_t *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s);
	int len = 0;

	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		int pad = 0;

		for (size_t k = 0; k < 4; k++) {
			const char *c = s[i + k] ? strchr(tab, s[i + k]) : NULL;

			if (s[i + k] == '=' && i + 4 == n && k >= 2) {
				pad++;
				v <<= 6;
				continue;
			}
			if (c == NULL || pad > 0)
				return -1;
			v = v << 6 | (uint32_t)(c - tab);
		}
		out[len++] = (uint8_t)(v >> 16);
		if (pad < 2)
			out[len++] = (uint8_t)(v >> 8);
		if (pad < 1)
			out[len++] = (uint8_t)v;
	}
	return len;
}

/* Sets the path of a fresh object; the caller decrefs it. */
static json_t *
path_object(const char *path, size_t len)
{
	json_t *o = json_object();

	assert_non_null(o);
	assert_int_equal(proto_path_set(o, path, len), 0);
	return o;
}

static void
expect_plain(const char *path, size_t len)
{
	json_t *o = path_object(path, len);
	json_t *p = json_object_get(o, "path");

	assert_int_equal(json_object_size(o), 1);
	assert_non_null(p);
	assert_int_equal(json_string_length(p), len);
	assert_memory_equal(json_string_value(p), path, len);
	json_decref(o);
}

/* Invalid input: the display form and base64 are both what we expect. */
static void
expect_b64(const char *path, size_t len, const char *display, size_t dlen,
    const char *b64)
{
	json_t *o = path_object(path, len);
	json_t *p = json_object_get(o, "path");
	json_t *b = json_object_get(o, "path_b64");
	uint8_t back[256];
	int n;

	assert_int_equal(json_object_size(o), 2);
	assert_non_null(p);
	assert_non_null(b);
	assert_int_equal(json_string_length(p), dlen);
	assert_memory_equal(json_string_value(p), display, dlen);
	assert_true(proto_utf8_valid(json_string_value(p), dlen));
	assert_string_equal(json_string_value(b), b64);
	n = b64_decode(json_string_value(b), back);
	assert_int_equal(n, (int)len);
	assert_memory_equal(back, path, len);
	json_decref(o);
}

#define FFFD "\xef\xbf\xbd"

static void
test_path_set_valid(void **state)
{
	(void)state;
	expect_plain(S("src/main.c"));
	expect_plain(S("caf\xc3\xa9/\xe2\x82\xac"));
	expect_plain(S(""));
	expect_plain(S("a \"quoted\" \\ name\n"));
}

static void
test_path_set_invalid(void **state)
{
	(void)state;
	/* Vectors from python3: base64.b64encode(bytes).decode(). */
	expect_b64(S("caf\xe9"), S("caf" FFFD), "Y2Fm6Q==");
	expect_b64(S("caf\xe9/x"), S("caf" FFFD "/x"), "Y2Fm6S94");
	expect_b64(S("\xff"), S(FFFD), "/w==");
	expect_b64(S("\xff\xfe"), S(FFFD FFFD), "//4=");
	expect_b64(S("\xff\xfe\xfd"), S(FFFD FFFD FFFD), "//79");
	/* A NUL byte cannot be shown, but the base64 keeps it. */
	expect_b64(S("a\0b"), S("a" FFFD "b"), "YQBi");
	/* One U+FFFD per invalid byte, as proto.h says. */
	expect_b64(S("\xe2\x82"), S(FFFD FFFD), "4oI=");
	/* Valid characters next to invalid bytes are kept. */
	expect_b64(S("\xc3\xa9\xe9"), S("\xc3\xa9" FFFD), "w6np");
}

static void
test_path_set_roundtrip(void **state)
{
	static const uint8_t bytes[] = { 'a', '/', 0xc3, 0xa9, 0xe9, 0x80,
	    0xff, 0x00, 0xe2, 0x82, 0xac, '.' };
	uint64_t seed = 99;

	(void)state;
	for (size_t round = 0; round < 2000; round++) {
		uint8_t path[20], back[32];
		size_t len = rnd(&seed) % sizeof(path);

		for (size_t i = 0; i < len; i++)
			path[i] = bytes[rnd(&seed) % sizeof(bytes)];

		json_t *o = path_object((const char *)path, len);
		json_t *p = json_object_get(o, "path");
		json_t *b = json_object_get(o, "path_b64");
		bool valid = proto_utf8_valid((const char *)path, len);

		assert_non_null(p);
		assert_true(proto_utf8_valid(json_string_value(p),
		    json_string_length(p)));
		if (valid) {
			assert_null(b);
			assert_int_equal(json_string_length(p), len);
		} else {
			assert_non_null(b);
			assert_int_equal(b64_decode(json_string_value(b), back),
			    (int)len);
			assert_memory_equal(back, path, len);
		}
		json_decref(o);
	}
}

/* proto_base64_decode() of s: its length, or -1. */
static long
decode(const char *s, char *out)
{
	size_t n;

	if (proto_base64_decode(s, strlen(s), out, &n) == -1)
		return -1;
	return (long)n;
}

/*
 * The decoder takes exactly what the encoder writes: vectors, malformed
 * input, and every one-quantum string, which decodes if and only if it
 * is the encoding of what it decodes to ("AB==" is not: its unused bits
 * are not zero, and it would spell "AA=="'s byte a second way).
 */
static void
test_base64_decode(void **state)
{
	static const char *bad[] = { "", "A", "AA=", "AAAAA", "A===", "====",
	    "=AAA", "AA=A", "AB==", "AAB=", "Y2Fm6R==", "Y2Fm6Z==", "//5=",
	    "4oJ=", "YQ==YQ==", "AA A", NULL };
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char out[16], q[5] = "", *re;
	size_t rlen, accepted = 0;

	(void)state;
	assert_int_equal(decode("Y2Fm6Q==", out), 4);
	assert_memory_equal(out, "caf\xe9", 4);
	assert_int_equal(decode("//4=", out), 2);
	assert_memory_equal(out, "\xff\xfe", 2);
	assert_int_equal(decode("YQBi", out), 3);
	assert_memory_equal(out, "a\0b", 3);
	for (size_t i = 0; bad[i] != NULL; i++)
		if (decode(bad[i], out) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(proto_base64_decode("AA\0=", 4, out, &rlen), -1);
	for (size_t a = 0; a < 64; a++)
		for (size_t b = 0; b < 64; b++)
			for (size_t c = 0; c <= 64; c++) {
				long n;

				q[0] = alpha[a];
				q[1] = alpha[b];
				q[2] = c < 64 ? alpha[c] : '=';
				q[3] = '=';
				n = decode(q, out);
				if (n == -1)
					continue;
				accepted++;
				re = proto_base64_encode(out, (size_t)n, &rlen);
				assert_non_null(re);
				assert_string_equal(re, q);
				free(re);
			}
	/* One spelling per byte string: 256 of one byte, 65536 of two. */
	assert_int_equal(accepted, 256 + 65536);
}

static void
test_path_set_oom(void **state)
{
	unsigned long n;
	bool done = false;

	(void)state;
	for (n = 1; n < 100 && !done; n++) {
		json_t *o = json_object();
		int rc;

		assert_non_null(o);
		alloc_fail_at(n);
		rc = proto_path_set(o, S("caf\xe9"));
		if (!alloc_failed()) {
			assert_int_equal(rc, 0);
			assert_non_null(json_object_get(o, "path_b64"));
			done = true;
		} else {
			assert_int_equal(rc, -1);
		}
		alloc_fail_at(0);
		json_decref(o);
	}
	assert_true(done);
	assert_true(n > 2);	/* it allocated, so failures were tried */
}

/* What proto_result_new(o) dumps to, compactly; o is released. */
static void
expect_result(json_t *o, const char *want)
{
	char *got;

	assert_non_null(o);
	got = json_dumps(o, JSON_COMPACT);
	assert_non_null(got);
	if (strcmp(got, want) != 0)
		fail_msg("result %s, expected %s", got, want);
	free(got);
	json_decref(o);
}

/*
 * One result object for both writers (the daemon's answer, fidx filter
 * --json): its keys in the order the README shows them, each only when
 * it applies, and a typo score shown within its tier.
 */
static void
test_result_new(void **state)
{
	static const uint32_t pos[] = { 0, 3 };
	int32_t tiered = 150 - TYPO_TIER;
	unsigned long n;
	bool done = false;

	(void)state;
	assert_true(typo_in_tier(tiered));
	expect_result(proto_result_new(S("src/a.c"), 7, false, NULL, 0),
	    "{\"path\":\"src/a.c\",\"score\":7}");
	expect_result(proto_result_new(S("src/a.c"), 7, false, pos, 2),
	    "{\"path\":\"src/a.c\",\"score\":7,\"positions\":[0,3]}");
	/* Positions asked for but none found: an empty list, as before. */
	expect_result(proto_result_new(S("src/a.c"), 7, false, pos, -1),
	    "{\"path\":\"src/a.c\",\"score\":7,\"positions\":[]}");
	expect_result(proto_result_new(S("caf\xe9"), tiered, true, pos, 2),
	    "{\"path\":\"caf\xef\xbf\xbd\",\"path_b64\":\"Y2Fm6Q==\","
	    "\"score\":150,\"typo\":true,\"positions\":[0,3]}");
	/* Every allocation of ours it makes may fail: NULL, no leak. */
	for (n = 1; n < 100 && !done; n++) {
		json_t *o;

		alloc_fail_at(n);
		o = proto_result_new(S("caf\xe9"), 1, true, pos, 2);
		if (!alloc_failed()) {
			assert_non_null(o);
			done = true;
		} else {
			assert_null(o);
		}
		alloc_fail_at(0);
		json_decref(o);
	}
	assert_true(done);
	assert_true(n > 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_path_set_valid),
		cmocka_unit_test(test_path_set_invalid),
		cmocka_unit_test(test_path_set_roundtrip),
		cmocka_unit_test(test_path_set_oom),
		cmocka_unit_test(test_base64_decode),
		cmocka_unit_test(test_result_new),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
