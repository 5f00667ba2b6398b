/* regex.c - see regex.h. */
#include "regex.h"
#include "fold.h"

#include "alloc.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <utf8proc.h>

/*
 * PCRE2 allocates (compiled patterns, match data, the interpreter's
 * backtracking frames) through a general context on fidx_malloc, so that
 * an allocation failure in PCRE2 is injected like any other (alloc.h).
 * Match data made from a pattern, and pcre2_match() without a match
 * context, use the pattern's functions: the compile context is enough.
 * Made once, read-only after; NULL (PCRE2's malloc) if it cannot be.
 */
static pcre2_compile_context *regex_ccontext;
static pthread_once_t regex_once = PTHREAD_ONCE_INIT;

static void *
regex_malloc(PCRE2_SIZE size, void *data)
{
	(void)data;
	return fidx_malloc(size);
}

static void
regex_free(void *p, void *data)
{
	(void)data;
	free(p);
}

static void
regex_contexts(void)
{
	pcre2_general_context *g;

	alloc_exempt(1);
	g = pcre2_general_context_create(regex_malloc, regex_free, NULL);
	if (g != NULL)
		regex_ccontext = pcre2_compile_context_create(g);
	/* The compile context copied the functions; g is not needed. */
	pcre2_general_context_free(g);
	alloc_exempt(0);
}

void
regex_shutdown(void)
{
	pcre2_compile_context_free(regex_ccontext);
	regex_ccontext = NULL;
}

/* Compiles text with opts (JIT too when it can); NULL with err's reason. */
static pcre2_code *
regex_compile_one(const char *text, size_t len, uint32_t opts,
    const char *what, struct fidx_err *err)
{
	PCRE2_UCHAR msg[128];
	PCRE2_SIZE erroff;
	pcre2_code *re;
	int errcode;

	pthread_once(&regex_once, regex_contexts);
	re = pcre2_compile((PCRE2_SPTR)text, len, opts, &errcode, &erroff,
	    regex_ccontext);
	if (re == NULL) {
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		if (errcode == PCRE2_ERROR_HEAP_FAILED) {
			fidx_error(err, "out of memory compiling the %s", what);
			errno = ENOMEM;
			return NULL;
		}
		fidx_error(err, "bad %s at offset %zu: %s", what,
		    (size_t)erroff, (char *)msg);
		errno = EINVAL;
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
	int utf_errno, byte_errno;

	errno = 0;
	rx->utf = regex_compile_one(text, len, opts | PCRE2_UTF |
	    PCRE2_MATCH_INVALID_UTF, what, err);
	utf_errno = rx->utf == NULL ? errno : 0;
	errno = 0;
	rx->bytes = regex_compile_one(text, len, opts, what, &byte_err);
	byte_errno = rx->bytes == NULL ? errno : 0;
	/* Out of memory in either mode is not a bad pattern: say so. */
	if (utf_errno == ENOMEM || byte_errno == ENOMEM) {
		if (byte_errno == ENOMEM)
			*err = byte_err;
		regex_release(rx);
		errno = ENOMEM;
		return -1;
	}
	if (rx->utf != NULL || rx->bytes != NULL)
		return 0;
	/* A pattern that is not UTF-8 was meant for bytes: say why not. */
	if (!regex_utf8_valid(text, len))
		*err = byte_err;
	errno = EINVAL;
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
