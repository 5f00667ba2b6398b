/*
 * fold.c - Unicode case for the matcher (see fold.h).
 */
#include "fold.h"

#include <utf8proc.h>

bool
fold_has_high(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)s[i] >= 0x80)
			return true;
	return false;
}

/*
 * The character at s[i] (of n bytes) into *cp, returning its length; an
 * invalid byte is one byte long with *cp = -1.
 */
static size_t
fold_next(const char *s, size_t n, size_t i, utf8proc_int32_t *cp)
{
	utf8proc_ssize_t k;

	if ((uint8_t)s[i] < 0x80) {
		*cp = (uint8_t)s[i];
		return 1;
	}
	k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
	    (utf8proc_ssize_t)(n - i), cp);
	if (k <= 0) {
		*cp = -1;
		return 1;
	}
	return (size_t)k;
}

bool
fold_upper_at(const char *s, size_t n, size_t *len)
{
	utf8proc_int32_t cp;

	*len = fold_next(s, n, 0, &cp);
	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z';
	return utf8proc_isupper(cp);
}

bool
fold_has_upper(const char *s, size_t n)
{
	size_t len;

	for (size_t i = 0; i < n; i += len)
		if (fold_upper_at(s + i, n - i, &len))
			return true;
	return false;
}

size_t
fold_lower(const char *s, size_t n, char *out, size_t cap, uint32_t *map)
{
	utf8proc_uint8_t enc[4];
	utf8proc_int32_t cp;
	size_t o = 0, k;

	for (size_t i = 0; i < n; i += k) {
		const char *from = s + i;
		size_t m;

		k = fold_next(s, n, i, &cp);
		m = k;
		if (cp >= 0x80) {
			m = (size_t)utf8proc_encode_char(utf8proc_tolower(cp),
			    enc);
			from = (const char *)enc;
		}
		if (m > cap - o)
			return SIZE_MAX;
		for (size_t j = 0; j < m; j++) {
			out[o + j] = from[j];
			if (map != NULL)
				map[o + j] = (uint32_t)i;
		}
		o += m;
	}
	if (map != NULL)
		map[o] = (uint32_t)n;
	return o;
}
