/*
 * opsctx.h - a real fidxd context in the test's own process, for
 * tests/fuzz/fuzz_ops.c and tests/test_oom.c: requests in as bytes,
 * answers out as lines, no second process.
 *
 * Owns: one struct fidxd (fidxd_init: loop, server, ops, registry,
 * watcher, workers, git cache, visit store), its listening socket in a
 * private temporary directory, a small tree and a git repository made
 * there with `git` once per process, and the one client connection of
 * each exchange.
 * Never touches: the daemon's internals: it drives the loop (loop_run,
 * loop_stop) and reads `stats`-level figures (server_get_stats, the
 * registry's project count), as a client and main.c would.
 *
 * An exchange connects, writes the bytes (every "%T" replaced by the
 * tree's root, "%G" by the repository's, "%F" by a file in the tree),
 * then a marker request ({"op":"ping","id":"opsctx-end"}), and runs the
 * loop until the marker's answer is read, the daemon closes the
 * connection, or the deadline passes (a request parked past it: the
 * connection is closed, as an impatient client does). The reply sink
 * checks every answer line: a JSON object with a boolean "ok", and an
 * error's "code" one of proto.h's names.
 */
#ifndef FIDX_OPSCTX_H
#define FIDX_OPSCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fidxd;

/* What one exchange saw. */
struct opsctx_result {
	size_t answers;			/* lines read, the marker's included */
	size_t no_memory;		/* answers with code no_memory */
	size_t bad_lines;		/* not JSON, no "ok", an unknown code */
	bool marker;			/* the marker was answered, ok */
	bool eof;			/* the daemon closed the connection */
	bool timed_out;			/* the deadline passed first */
	bool stopped;			/* a shutdown request stopped the daemon */
	uint64_t dropped;		/* clients dropped or lines too long
					   during the exchange (a closure the
					   README allows) */
};

/*
 * Starts the context if it is not running (the tree and repository are
 * made on the first call). -1 when it cannot start (a message is on
 * stderr). The tree and repository are projects once started.
 */
int opsctx_start(void);

/* Stops and frees the context (its directory stays for the next start). */
void opsctx_stop(void);

/*
 * One exchange of n bytes (substituted; NULL when the result would not
 * fit a request line: *r untouched, -1). After it, a daemon that was
 * shut down, or whose projects are not the two of the start, is stopped,
 * so the next exchange starts from the same state.
 */
int opsctx_exchange(const char *bytes, size_t n, int deadline_ms,
    struct opsctx_result *r);

/* The running context (for the allocation tests' checks), or NULL. */
struct fidxd *opsctx_daemon(void);

#endif
