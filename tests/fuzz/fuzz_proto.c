/*
 * fuzz_proto.c - the value encodings of common/proto.c.
 *
 * Input: any bytes (at most FUZZ_MAX_IN). These must hold:
 *   - strict base64: what proto_base64_decode() accepts, encoding gives
 *     back byte for byte (one spelling per byte string); and any bytes
 *     encoded decode to themselves;
 *   - proto_utf8_valid() agrees with jansson's own UTF-8 check plus "no
 *     NUL" (the two libraries must agree on what a JSON string may be);
 *   - proto_path_set() and proto_result_new() succeed on any bytes, the
 *     "path" they set is valid UTF-8, and "path_b64" (present exactly
 *     when the bytes are not) decodes to the bytes.
 */
#include "fuzz.h"

#include <jansson.h>
#include <string.h>

#include "../../common/proto.h"

#define FUZZ_MAX_IN 8192

static char fuzz_dec[FUZZ_MAX_IN / 4 * 3 + 3];
static char fuzz_dec2[FUZZ_MAX_IN / 4 * 3 + 3];

static void
fuzz_base64(const char *s, size_t n)
{
	char *enc;
	size_t dlen, elen, d2len;

	if (proto_base64_decode(s, n, fuzz_dec, &dlen) == 0) {
		FUZZ_CHECK(dlen <= n / 4 * 3);
		if ((enc = proto_base64_encode(fuzz_dec, dlen, &elen)) ==
		    NULL)
			return;
		FUZZ_CHECK(elen == n && memcmp(enc, s, n) == 0);
		free(enc);
	}
	if ((enc = proto_base64_encode(s, n, &elen)) == NULL)
		return;
	FUZZ_CHECK(elen == (n + 2) / 3 * 4 && strlen(enc) == elen);
	if (n == 0) {
		/* "" is no spelling the decoder takes (a path is never empty). */
		FUZZ_CHECK(proto_base64_decode(enc, elen, fuzz_dec2,
		    &d2len) == -1);
	} else {
		FUZZ_CHECK(proto_base64_decode(enc, elen, fuzz_dec2,
		    &d2len) == 0);
		FUZZ_CHECK(d2len == n && memcmp(fuzz_dec2, s, n) == 0);
	}
	free(enc);
}

static void
fuzz_check_path(json_t *o, const char *s, size_t n, bool valid)
{
	json_t *jp = json_object_get(o, "path");
	json_t *jb = json_object_get(o, "path_b64");
	const char *p;
	size_t plen, dlen;

	FUZZ_CHECK(json_is_string(jp));
	p = json_string_value(jp);
	plen = json_string_length(jp);
	FUZZ_CHECK(proto_utf8_valid(p, plen) || plen == 0);
	if (valid) {
		FUZZ_CHECK(jb == NULL);
		FUZZ_CHECK(plen == n && memcmp(p, s, n) == 0);
		return;
	}
	FUZZ_CHECK(json_is_string(jb));
	FUZZ_CHECK(proto_base64_decode(json_string_value(jb),
	    json_string_length(jb), fuzz_dec, &dlen) == 0);
	FUZZ_CHECK(dlen == n && memcmp(fuzz_dec, s, n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t pos[] = { 0, 1, 2 };
	const char *s = (const char *)data;
	json_t *o, *js;
	char *dump;
	bool valid, jvalid;

	if (size > FUZZ_MAX_IN)
		return 0;
	fuzz_base64(s, size);

	valid = proto_utf8_valid(s, size);
	js = json_stringn(s, size);
	jvalid = js != NULL && memchr(s, '\0', size) == NULL;
	json_decref(js);
	FUZZ_CHECK(valid == jvalid);

	if ((o = json_object()) == NULL)
		return 0;
	if (proto_path_set(o, s, size) == 0) {
		fuzz_check_path(o, s, size, valid);
		dump = json_dumps(o, JSON_COMPACT);
		FUZZ_CHECK(dump != NULL);
		free(dump);
	}
	json_decref(o);

	o = proto_result_new(s, size, size > 0 ? (int32_t)data[0] - 128 : 0,
	    size % 2 == 1, size >= 3 ? pos : NULL, size >= 3 ? 3 : -1);
	if (o != NULL) {
		fuzz_check_path(o, s, size, valid);
		FUZZ_CHECK(json_is_integer(json_object_get(o, "score")));
		dump = json_dumps(o, JSON_COMPACT);
		FUZZ_CHECK(dump != NULL);
		free(dump);
		json_decref(o);
	}
	return 0;
}
