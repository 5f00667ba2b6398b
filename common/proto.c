/* proto.c - see proto.h. */
#include "proto.h"
#include "alloc.h"
#include "typo.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static const char *const proto_err_names[PROTO_E_COUNT] = {
	[PROTO_E_BAD_JSON] = "bad_json",
	[PROTO_E_BAD_REQUEST] = "bad_request",
	[PROTO_E_UNKNOWN_OP] = "unknown_op",
	[PROTO_E_LINE_TOO_LONG] = "line_too_long",
	[PROTO_E_BAD_ROOT] = "bad_root",
	[PROTO_E_NO_PROJECT] = "no_project",
	[PROTO_E_BAD_QUERY] = "bad_query",
	[PROTO_E_QUERY_TOO_LONG] = "query_too_long",
	[PROTO_E_CAPPED] = "capped",
	[PROTO_E_TOO_LARGE] = "too_large",
	[PROTO_E_TIMEOUT] = "timeout",
	[PROTO_E_NO_MEMORY] = "no_memory",
	[PROTO_E_FORBIDDEN] = "forbidden",
	[PROTO_E_SHUTTING_DOWN] = "shutting_down",
	[PROTO_E_BUSY] = "busy",
	[PROTO_E_CANCELLED] = "cancelled",
	[PROTO_E_NOT_A_REPOSITORY] = "not_a_repository",
	[PROTO_E_GIT_FAILED] = "git_failed",
};

void
proto_alloc_init(void)
{
	/*
	 * jansson's own mallocs never fail on purpose; fidx_pool_malloc
	 * can, and cuts an answer's blocks from a pool while one is open.
	 */
	json_set_alloc_funcs(fidx_pool_malloc, fidx_pool_free);
}

bool
proto_json_oom(const json_error_t *e)
{
	/*
	 * jansson 2.14 says json_error_out_of_memory in some places, and in
	 * others (its lexer's buffer, a value the parser makes) returns NULL
	 * with the error as json_loadb() initialised it: no text. Every
	 * syntax error has a text.
	 */
	return json_error_code(e) == json_error_out_of_memory ||
	    e->text[0] == '\0';
}

const char *
proto_err_name(enum proto_err code)
{
	return (unsigned)code < PROTO_E_COUNT ? proto_err_names[code] :
	    "internal";
}

json_t *
proto_error(json_t *id, enum proto_err code, const char *fmt, ...)
{
	char msg[512];
	json_t *r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages quote user input, which may not be UTF-8. */
	if (!proto_utf8_valid(msg, strlen(msg)))
		snprintf(msg, sizeof(msg), "%s (the details are not UTF-8)",
		    proto_err_name(code));
	if ((r = json_object()) == NULL)
		return NULL;
	if ((id != NULL && json_object_set(r, "id", id) == -1) ||
	    json_object_set_new(r, "ok", json_false()) == -1 ||
	    json_object_set_new(r, "error", json_pack("{s:s,s:s}", "code",
	    proto_err_name(code), "message", msg)) == -1) {
		json_decref(r);
		return NULL;
	}
	return r;
}

int32_t
proto_score(int32_t score)
{
	return typo_in_tier(score) ? score + TYPO_TIER : score;
}

bool
proto_utf8_valid(const char *s, size_t n)
{
	const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
	utf8proc_int32_t cp;

	while (n > 0) {
		utf8proc_ssize_t k = utf8proc_iterate(u, (utf8proc_ssize_t)n,
		    &cp);

		if (k <= 0 || cp == 0)
			return false;
		u += k;
		n -= (size_t)k;
	}
	return true;
}

/* s with every byte that does not start a valid character as U+FFFD. */
static char *
proto_utf8_lossy(const char *s, size_t n, size_t *outlen)
{
	const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
	utf8proc_int32_t cp;
	char *out, *o;

	/* U+FFFD is 3 bytes: at most 3x growth. */
	if ((out = fidx_reallocarray(NULL, n + 1, 3)) == NULL)
		return NULL;
	o = out;
	while (n > 0) {
		utf8proc_ssize_t k = utf8proc_iterate(u, (utf8proc_ssize_t)n,
		    &cp);

		if (k <= 0 || cp == 0) {
			*o++ = (char)0xef;
			*o++ = (char)0xbf;
			*o++ = (char)0xbd;
			k = 1;
		} else {
			for (utf8proc_ssize_t i = 0; i < k; i++)
				*o++ = (char)u[i];
		}
		u += k;
		n -= (size_t)k;
	}
	*outlen = (size_t)(o - out);
	return out;
}

static const char proto_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
proto_base64_encode(const char *s, size_t n, size_t *outlen)
{
	const uint8_t *u = (const uint8_t *)s;
	char *out, *o;

	if ((out = fidx_malloc((n + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	o = out;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)u[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)u[i + 1] << 8;
		if (i + 2 < n)
			v |= u[i + 2];
		*o++ = proto_b64[v >> 18 & 63];
		*o++ = proto_b64[v >> 12 & 63];
		*o++ = i + 1 < n ? proto_b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? proto_b64[v & 63] : '=';
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

int
proto_base64_decode(const char *s, size_t n, char *out, size_t *outlen)
{
	size_t o = 0, pad = 0;

	if (n == 0 || n % 4 != 0)
		return -1;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t x = 0;

		for (size_t k = 0; k < 4; k++) {
			const char *at;

			if (i + k >= n - pad) {
				x <<= 6;
				continue;
			}
			if (s[i + k] == '\0' ||
			    (at = strchr(proto_b64, s[i + k])) == NULL)
				return -1;
			x = x << 6 | (uint32_t)(at - proto_b64);
		}
		/*
		 * The bits the padding drops must be zero, or "AB==" would
		 * spell what "AA==" does: each byte string has one spelling,
		 * so two spellings never name two different paths.
		 */
		if (i + 4 == n && (x & (pad == 2 ? 0xffff : pad == 1 ? 0xff :
		    0)) != 0)
			return -1;
		out[o++] = (char)(x >> 16);
		if (i + 4 < n || pad < 2)
			out[o++] = (char)(x >> 8 & 0xff);
		if (i + 4 < n || pad < 1)
			out[o++] = (char)(x & 0xff);
	}
	*outlen = o;
	return 0;
}

json_t *
proto_text(const char *s, size_t len)
{
	char *lossy;
	size_t llen;
	json_t *o;

	if (proto_utf8_valid(s, len))
		return json_stringn_nocheck(s, len);
	if ((lossy = proto_utf8_lossy(s, len, &llen)) == NULL)
		return NULL;
	o = json_stringn_nocheck(lossy, llen);
	free(lossy);
	return o;
}

int
proto_path_set(json_t *obj, const char *path, size_t len)
{
	char *lossy = NULL, *b64 = NULL;
	size_t llen, blen;
	int rc = -1;

	if (proto_utf8_valid(path, len))
		return json_object_set_new(obj, "path",
		    json_stringn_nocheck(path, len));
	if ((lossy = proto_utf8_lossy(path, len, &llen)) == NULL ||
	    (b64 = proto_base64_encode(path, len, &blen)) == NULL)
		goto out;
	if (json_object_set_new(obj, "path",
	    json_stringn_nocheck(lossy, llen)) == -1 ||
	    json_object_set_new(obj, "path_b64",
	    json_stringn_nocheck(b64, blen)) == -1)
		goto out;
	rc = 0;
out:
	free(lossy);
	free(b64);
	return rc;
}

json_t *
proto_result_new(const char *path, size_t len, int32_t score, bool typo,
    const uint32_t *pos, int npos)
{
	json_t *o = json_object(), *pa;

	if (o == NULL || proto_path_set(o, path, len) == -1 ||
	    json_object_set_new(o, "score",
	    json_integer(proto_score(score))) == -1 ||
	    (typo && json_object_set_new(o, "typo", json_true()) == -1))
		goto fail;
	if (pos != NULL) {
		if ((pa = json_array()) == NULL ||
		    json_object_set_new(o, "positions", pa) == -1)
			goto fail;
		for (int k = 0; k < npos; k++)
			if (json_array_append_new(pa, json_integer(pos[k])) ==
			    -1)
				goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}
