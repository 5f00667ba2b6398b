/* size.c - see size.h. */
#include "size.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

int
size_parse(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long v = 0;
	size_t digits = strspn(s, "0123456789");
	const char *end = s + digits;
	int shift = 0;

	if (digits == 0) {
		errno = EINVAL;
		return -1;
	}
	if (*end != '\0') {
		shift = strchr("Kk", *end) ? 10 : strchr("Mm", *end) ? 20 :
		    strchr("Gg", *end) ? 30 : -1;
		if (shift < 0 || end[1] != '\0') {
			errno = EINVAL;
			return -1;
		}
	}
	for (const char *p = s; p < end; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (ULLONG_MAX - d) / 10) {
			errno = ERANGE;
			return -1;
		}
		v = v * 10 + d;
	}
	if (v > (ULLONG_MAX >> shift) || (v << shift) < min ||
	    (v << shift) > max) {
		errno = ERANGE;
		return -1;
	}
	*out = v << shift;
	return 0;
}
