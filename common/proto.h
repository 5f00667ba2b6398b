/*
 * proto.h - JSON shapes shared by the daemon's wire protocol and the CLI.
 *
 * Owns: the error object, the result object (one shape for the daemon's
 * answers and `fidx filter --json`), and how values that JSON cannot hold
 * directly are encoded.
 * Never touches: sockets or framing (the daemon's server owns those).
 *
 * Paths are bytes, JSON strings are UTF-8. A path that is valid UTF-8 is
 * sent as "path". One that is not is sent as "path" with each invalid byte
 * replaced by U+FFFD (for display), plus "path_b64": the exact bytes in
 * base64, which a client uses to open the file.
 */
#ifndef FIDX_PROTO_H
#define FIDX_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Error codes of the daemon protocol, in the README's table. The name is
 * what travels ("code"); the enum is what code compares.
 */
enum proto_err {
	PROTO_E_BAD_JSON,
	PROTO_E_BAD_REQUEST,
	PROTO_E_UNKNOWN_OP,
	PROTO_E_LINE_TOO_LONG,
	PROTO_E_BAD_ROOT,
	PROTO_E_NO_PROJECT,
	PROTO_E_BAD_QUERY,
	PROTO_E_QUERY_TOO_LONG,
	PROTO_E_CAPPED,
	PROTO_E_TOO_LARGE,
	PROTO_E_TIMEOUT,
	PROTO_E_NO_MEMORY,
	PROTO_E_FORBIDDEN,
	PROTO_E_SHUTTING_DOWN,
	PROTO_E_BUSY,
	PROTO_E_CANCELLED,
	PROTO_E_NOT_A_REPOSITORY,
	PROTO_E_GIT_FAILED,
	PROTO_E_COUNT
};

const char *proto_err_name(enum proto_err code);

/*
 * jansson allocates through fidx_malloc (alloc.h) from here on, so tests
 * can fail its allocations too. Call before any JSON value is made.
 */
void proto_alloc_init(void);

/* True if the json_loadb() that filled e failed for want of memory. */
bool proto_json_oom(const json_error_t *e);

/*
 * {"id":id,"ok":false,"error":{"code":…,"message":…}}; id may be NULL
 * (not echoed). NULL when out of memory: send PROTO_NO_MEMORY_LINE.
 */
json_t *proto_error(json_t *id, enum proto_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The error line that needs no allocation. */
#define PROTO_NO_MEMORY_LINE \
	"{\"ok\":false,\"error\":{\"code\":\"no_memory\"," \
	"\"message\":\"out of memory\"}}\n"

/*
 * The score to show for an internal one: a typo match's score within its
 * tier (it travels with "typo":true; the order is the internal one).
 */
int32_t proto_score(int32_t score);

/* s (n bytes) in base64, NUL-terminated (length in *outlen); NULL on OOM. */
char *proto_base64_encode(const char *s, size_t n, size_t *outlen);

/*
 * Decodes strict base64 (a multiple of 4 characters, '=' only as the
 * last one or two, zero bits where the padding drops some: only what
 * proto_base64_encode() writes) into out, which has room for n / 4 * 3
 * bytes. -1 for anything else.
 */
int proto_base64_decode(const char *s, size_t n, char *out, size_t *outlen);

/* True if s (n bytes) is valid UTF-8 without NUL bytes. */
bool proto_utf8_valid(const char *s, size_t n);

/*
 * A JSON string of s (len bytes) for display: a byte that does not start
 * a valid character becomes U+FFFD (a branch or root that is not UTF-8).
 * NULL on OOM.
 */
json_t *proto_text(const char *s, size_t len);

/* Sets "path" (and "path_b64" when needed) on obj. Returns -1 on OOM. */
int proto_path_set(json_t *obj, const char *path, size_t len);

/*
 * One result, as the daemon's query answer and `fidx filter --json` both
 * write it: {"path", "path_b64" (when needed), "score" (proto_score() of
 * the internal score), "typo":true (when typo), "positions" (when pos is
 * not NULL: its npos entries; npos < 0 counts as none)}, in that order.
 * NULL when out of memory.
 */
json_t *proto_result_new(const char *path, size_t len, int32_t score,
    bool typo, const uint32_t *pos, int npos);

#endif
