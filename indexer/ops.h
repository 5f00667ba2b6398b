/*
 * ops.h - what each request means: parsing it, doing it, answering it.
 *
 * Owns: the op table, request validation, response shapes, the parked
 * requests (each parsed once, with its own deadline timer) and the rules
 * for parking a request until an index is built, or on a git status
 * being computed (one per cache key, the others waiting on it); the
 * request counters.
 * Never touches: sockets and buffers (it answers with server_send() and
 * parks with server_park()), walking, snapshot internals beyond reading
 * them under a reference.
 *
 * Three files, one module: ops.c (the table, field readers, parking, the
 * small ops), ops_query.c (queries, on the loop or the worker), ops_git.c
 * (the git op); ops_impl.h is what they share.
 */
#ifndef FIDX_OPS_H
#define FIDX_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fidxd.h"

struct ops;
struct client;

struct ops_counters {
	uint64_t queries;
	uint64_t waits;			/* requests parked */
	uint64_t waits_timed_out;
	uint64_t queries_busy;		/* refused: the worker queue was full */
	uint64_t queries_cancelled;	/* superseded or cancelled */
	/*
	 * Narrowing (ops_query.c), of the queries sent with supersede on an
	 * index large enough for the worker: scored within the last one's
	 * candidate set; scored whole; why the set kept was not used.
	 */
	uint64_t narrowed;
	uint64_t narrow_full;
	uint64_t narrow_refused_snapshot;	/* the index changed since */
	uint64_t narrow_refused_query;	/* its set may miss a match */
	uint64_t narrow_over_cap;	/* its set was not kept: a cap */
	uint64_t narrow_not_kept;	/* no candidate test (regex, ...) */
};

/* The requests of d; NULL when out of memory. */
struct ops *ops_new(struct fidxd *d);
/* Parked requests must be gone (ops_stop, or the server freed first). */
void ops_free(struct ops *o);

/* The server's handler: lines, lines behind a parked one, a client gone. */
void ops_line(void *arg, struct client *c, const char *line, size_t len);
void ops_waiting(void *arg, struct client *c, void *parked,
    const char *line, size_t len);
void ops_gone(void *arg, struct client *c, void *parked);
/* c is freed with a narrowing set kept for it: the set goes too. */
void ops_closed(void *arg, struct client *c, void *data);

/* Walks finished: answers the parked requests that are ready now. */
void ops_walks_done(struct ops *o);

/*
 * The watcher saw root's git files (gitdir) or work tree change: its
 * cached git statuses go, or go stale (gitcache_changed).
 */
void ops_git_changed(struct ops *o, const char *root, bool gitdir);

/* The watcher took every event before sync cookie c (watch_sync). */
void ops_sync_arrived(struct ops *o, uint64_t c);

/* The daemon stops: every parked request hears it. */
void ops_stop(struct ops *o);

void ops_get_counters(const struct ops *o, struct ops_counters *c);

#endif
