/*
 * proto.h - JSON shapes shared by the daemon's wire protocol and the CLI.
 *
 * Owns: how values that JSON cannot hold directly are encoded.
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

/* True if s (n bytes) is valid UTF-8 without NUL bytes. */
bool proto_utf8_valid(const char *s, size_t n);

/* Sets "path" (and "path_b64" when needed) on obj. Returns -1 on OOM. */
int proto_path_set(json_t *obj, const char *path, size_t len);

#endif
