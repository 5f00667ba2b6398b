/* shquote.c - see shquote.h. */
#include "shquote.h"

#include <string.h>

/* POSIX's portable file name characters and a few no shell expands. */
#define SHQUOTE_PLAIN "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789/._-+=:,@%"

/* Appends c at *at, counting it even when buf has no room left. */
static void
shquote_put(char *buf, size_t size, size_t *at, char c)
{
	if (*at + 1 < size)
		buf[*at] = c;
	(*at)++;
}

size_t
shquote(char *buf, size_t size, const char *s)
{
	size_t at = 0;

	if (s[0] != '\0' && strspn(s, SHQUOTE_PLAIN) == strlen(s)) {
		for (; *s != '\0'; s++)
			shquote_put(buf, size, &at, *s);
	} else {
		shquote_put(buf, size, &at, '\'');
		for (; *s != '\0'; s++) {
			if (*s != '\'') {
				shquote_put(buf, size, &at, *s);
				continue;
			}
			/* Close the quotes, an escaped ', open them again. */
			shquote_put(buf, size, &at, '\'');
			shquote_put(buf, size, &at, '\\');
			shquote_put(buf, size, &at, '\'');
			shquote_put(buf, size, &at, '\'');
		}
		shquote_put(buf, size, &at, '\'');
	}
	buf[at < size ? at : size - 1] = '\0';
	return at;
}
