/* regex.c - see regex.h. */
#include "regex.h"
#include "fold.h"

#include <string.h>
#include <utf8proc.h>

/* Compiles text with opts (JIT too when it can); NULL with err's reason. */
static pcre2_code *
regex_compile_one(const char *text, size_t len, uint32_t opts,
    const char *what, struct fidx_err *err)
{
	PCRE2_UCHAR msg[128];
	PCRE2_SIZE erroff;
	pcre2_code *re;
	int errcode;

	re = pcre2_compile((PCRE2_SPTR)text, len, opts, &errcode, &erroff,
	    NULL);
	if (re == NULL) {
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		fidx_error(err, "bad %s at offset %zu: %s", what,
		    (size_t)erroff, (char *)msg);
		return NULL;
	}
	/* Without JIT (unsupported CPU, no memory) the interpreter still works. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

/* True if s (n bytes) is valid UTF-8 (utf8proc's reading of it). */
static bool
regex_utf8_valid(const char *s, size_t n)
{
	const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
	utf8proc_int32_t cp;

	while (n > 0) {
		utf8proc_ssize_t k;

		if (*u < 0x80) {
			u++, n--;
			continue;
		}
		if ((k = utf8proc_iterate(u, (utf8proc_ssize_t)n, &cp)) <= 0)
			return false;
		u += k;
		n -= (size_t)k;
	}
	return true;
}

int
regex_compile(struct regex *rx, const char *text, size_t len, uint32_t opts,
    const char *what, struct fidx_err *err)
{
	struct fidx_err byte_err;

	rx->utf = regex_compile_one(text, len, opts | PCRE2_UTF |
	    PCRE2_MATCH_INVALID_UTF, what, err);
	rx->bytes = regex_compile_one(text, len, opts, what, &byte_err);
	if (rx->utf != NULL || rx->bytes != NULL)
		return 0;
	/* A pattern that is not UTF-8 was meant for bytes: say why not. */
	if (!regex_utf8_valid(text, len))
		*err = byte_err;
	return -1;
}

const pcre2_code *
regex_any(const struct regex *rx)
{
	return rx->utf != NULL ? rx->utf : rx->bytes;
}

const pcre2_code *
regex_code(const struct regex *rx, const char *s, size_t len)
{
	if (rx->utf == NULL || rx->bytes == NULL)
		return regex_any(rx);
	return fold_has_high(s, len) && !regex_utf8_valid(s, len) ?
	    rx->bytes : rx->utf;
}

void
regex_release(struct regex *rx)
{
	pcre2_code_free(rx->utf);
	pcre2_code_free(rx->bytes);
	rx->utf = NULL;
	rx->bytes = NULL;
}
