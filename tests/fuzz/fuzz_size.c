/*
 * fuzz_size.c - the one number syntax (common/size.c) and the one
 * lexical form of a visited path (visits_path_clean, indexer/visits.c).
 *
 * Input: one byte choosing a root and the bounds, then a string.
 *   - size_parse() agrees with a second, plain reading of size.h's
 *     grammar (digits, at most one K/M/G suffix, range, 64 bits), errno
 *     included;
 *   - visits_path_clean(): a result is non-empty, no longer than the
 *     input, relative, without an empty, "." or ".." component; cleaning
 *     it again is the identity; and a relative path cleans as root + "/"
 *     + path does.
 */
#include "fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "../../common/log.h"
#include "../../common/size.h"
#include "../../indexer/visits.h"

#define FUZZ_MAX_IN 8192

static const char *const fuzz_roots[] = { "/", "/r", "/r/s", "/home/u/p" };
static const unsigned long long fuzz_bounds[][2] = {
	{ 0, ~0ull }, { 1, 1024 }, { 256, 1ull << 40 }, { 5, 5 },
};

/* size.h's grammar read another way: 0, or -1 with *e EINVAL or ERANGE. */
static int
fuzz_size_ref(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out, int *e)
{
	unsigned long long v = 0, mult = 1;
	size_t i = 0;
	bool big = false;

	while (s[i] >= '0' && s[i] <= '9') {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (unsigned)(s[i] - '0'), &v))
			big = true;
		i++;
	}
	if (i == 0)
		goto bad;
	switch (s[i]) {
	case '\0': break;
	case 'K': case 'k': mult = 1ull << 10; i++; break;
	case 'M': case 'm': mult = 1ull << 20; i++; break;
	case 'G': case 'g': mult = 1ull << 30; i++; break;
	default: goto bad;
	}
	if (s[i] != '\0')
		goto bad;
	if (big || __builtin_mul_overflow(v, mult, &v) || v < min || v > max) {
		*e = ERANGE;
		return -1;
	}
	*out = v;
	return 0;
bad:
	*e = EINVAL;
	return -1;
}

static void
fuzz_size(const char *s, unsigned long long min, unsigned long long max)
{
	unsigned long long got = 0, want = 0;
	int rc, wrc, e = 0;

	errno = 0;
	rc = size_parse(s, min, max, &got);
	wrc = fuzz_size_ref(s, min, max, &want, &e);
	FUZZ_CHECK(rc == wrc);
	if (rc == 0)
		FUZZ_CHECK(got == want && got >= min && got <= max);
	else
		FUZZ_CHECK(errno == e);
}

static bool
fuzz_clean_form(const char *p, size_t n)
{
	if (n == 0 || p[0] == '/' || p[n - 1] == '/')
		return false;
	for (size_t i = 0; i <= n;) {
		size_t j = i;

		while (j < n && p[j] != '/')
			j++;
		if (j == i || (j - i == 1 && p[i] == '.') ||
		    (j - i == 2 && p[i] == '.' && p[i + 1] == '.'))
			return false;
		i = j + 1;
	}
	return true;
}

static void
fuzz_clean(const char *root, const char *path, size_t len)
{
	static char out[FUZZ_MAX_IN], again[FUZZ_MAX_IN];
	static char abs[FUZZ_MAX_IN + 64], absout[FUZZ_MAX_IN + 64];
	struct fidx_err err = { "" };
	size_t n, n2, rlen = strlen(root), alen;

	if (visits_path_clean(root, path, len, out, &n, &err) == -1) {
		FUZZ_CHECK(errno == EINVAL && err.msg[0] != '\0');
		return;
	}
	FUZZ_CHECK(n <= len);
	FUZZ_CHECK(fuzz_clean_form(out, n));
	FUZZ_CHECK(memchr(out, '\0', n) == NULL);
	FUZZ_CHECK(visits_path_clean(root, out, n, again, &n2, &err) == 0);
	FUZZ_CHECK(n2 == n && memcmp(again, out, n) == 0);
	/* In place, as the header allows. */
	memcpy(again, path, len);
	FUZZ_CHECK(visits_path_clean(root, again, len, again, &n2, &err) == 0);
	FUZZ_CHECK(n2 == n && memcmp(again, out, n) == 0);
	if (path[0] == '/')
		return;
	memcpy(abs, root, rlen);
	alen = rlen;
	if (rlen > 1)
		abs[alen++] = '/';
	memcpy(abs + alen, path, len);
	alen += len;
	FUZZ_CHECK(visits_path_clean(root, abs, alen, absout, &n2, &err) == 0);
	FUZZ_CHECK(n2 == n && memcmp(absout, out, n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char s[FUZZ_MAX_IN + 1];
	const char *root;
	size_t len;

	if (size < 1 || size > FUZZ_MAX_IN + 1)
		return 0;
	root = fuzz_roots[data[0] & 3];
	len = size - 1;
	memcpy(s, data + 1, len);
	s[len] = '\0';
	fuzz_size(s, fuzz_bounds[data[0] >> 2 & 3][0],
	    fuzz_bounds[data[0] >> 2 & 3][1]);
	fuzz_clean(root, s, len);
	return 0;
}
