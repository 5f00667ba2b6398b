/*
 * ops.h - what each request means: parsing it, doing it, answering it.
 *
 * Owns: the op table, request validation, response shapes, and the
 * rules for parking a request until an index is built.
 * Never touches: sockets and buffers (it answers with server_send()),
 * walking, snapshot internals beyond reading them under a reference.
 */
#ifndef FIDX_OPS_H
#define FIDX_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "server.h"

/* Handles one request line (without its '\n'). */
void ops_request(struct server *s, struct client *c, const char *line,
    size_t len);

/*
 * Answers c's parked request if its projects are ready, or with an
 * error if expired (its deadline passed) or the server is stopping.
 * Leaves it parked otherwise.
 */
void ops_resume(struct server *s, struct client *c, bool expired);

void ops_wait_free(struct server_wait *w);

#endif
