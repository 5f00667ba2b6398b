/*
 * server.h - the transport: the listening socket, clients, their bounded
 * buffers in and out.
 *
 * Owns: every struct client (its socket, input and output buffers, and
 * the mark that a request is parked on it), the listening socket (binding
 * it, and binding it again when its file is deleted), the transport's
 * counters.
 * Never touches: what a line means (its handler's), projects, scoring,
 * what a parked request is (an opaque pointer to it).
 *
 * Everything runs on the loop's thread. A client's bytes go into a buffer
 * of at most lim.max_line + 1 bytes; a line that does not fit gets
 * line_too_long and the connection is closed. Each complete line goes to
 * the handler. Responses are written at once when the socket takes them;
 * what it does not take is queued, up to lim.max_output bytes per client,
 * and a client whose queue would pass that is dropped (it is not reading;
 * nobody else waits for it). Dead clients are freed by server_reap(), the
 * loop's before-sleep step, never from inside a callback.
 *
 * Order: a handler that cannot answer a line at once parks something on
 * the client (server_park); the client's later lines wait until it is
 * unparked, so answers stay in request order, and other clients are not
 * held up. While parked, each complete line waiting behind it is shown
 * once to the handler's `waiting` (so a newer query can cancel an older
 * one), then handled in order after the unpark.
 */
#ifndef FIDX_SERVER_H
#define FIDX_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/log.h"
#include "loop.h"

struct server;
struct client;

struct server_limits {
	size_t max_clients;
	size_t max_line;		/* bytes in a request line, '\n' excluded */
	size_t max_output;		/* bytes queued per client */
};

struct server_counters {
	uint64_t requests;		/* lines handed to the handler */
	uint64_t errors;		/* error responses sent */
	uint64_t clients_accepted;
	uint64_t clients_refused;	/* over the client cap */
	uint64_t clients_forbidden;	/* another uid */
	uint64_t clients_refused_fds;	/* taken and closed: out of fds */
	uint64_t clients_dropped;	/* over the output cap */
	uint64_t lines_too_long;
	uint64_t responses_too_large;
	uint64_t accept_errors;		/* EMFILE and the like */
	uint64_t accept_pauses;		/* accepting paused for one */
	uint64_t socket_rebinds;	/* our socket file was deleted */
};

struct server_handler {
	/* One complete request line of c (not NUL-terminated, no '\n'). */
	void (*line)(void *arg, struct client *c, const char *line,
	    size_t len);
	/* A line waits behind what is parked on c; each line once. */
	void (*waiting)(void *arg, struct client *c, void *parked,
	    const char *line, size_t len);
	/* c is being freed with parked on it: free it, answer nothing. */
	void (*gone)(void *arg, struct client *c, void *parked);
	/* The socket path is served by someone else: the daemon must go. */
	void (*lost)(void *lost_arg);
	void *arg;			/* for line, waiting, gone, closed */
	void *lost_arg;			/* for lost: not arg's owner */
	/* c is being freed with data set (server_set_data): free it. */
	void (*closed)(void *arg, struct client *c, void *data);
};

/* How often the socket file is checked to be still ours. */
#define SERVER_SOCKET_CHECK_MS 2000

/*
 * Binds and listens on path (no file may be there), mode 0600; the fd
 * (non-blocking, close-on-exec) or -1 with err set.
 */
int server_bind(const char *path, struct fidx_err *err);

/*
 * A server on the listening socket lfd (its own from here, even on
 * failure), registered with l. sock_path, if not NULL, is checked every
 * SERVER_SOCKET_CHECK_MS and bound again if deleted (make_dir: remake
 * its directory, the default path's). NULL with err on failure, leaving
 * nothing to release.
 */
struct server *server_new(struct loop *l, int lfd, const char *sock_path,
    bool make_dir, const struct server_limits *lim,
    const struct server_handler *h, struct fidx_err *err);

/* Closes every client (parked ones through h->gone) and the socket. */
void server_free(struct server *s);

/*
 * Queues resp (reference stolen; NULL: building it ran out of memory) on
 * c's output. A response that alone is over the output cap becomes a
 * too_large error; one that would push an unread queue over it drops
 * the client.
 */
void server_send(struct server *s, struct client *c, json_t *resp);

/* Parks p on c: c's later lines wait until server_unpark(). */
void server_park(struct server *s, struct client *c, void *p);
/* Lets c's later lines go (from the next turn); returns what was parked. */
void *server_unpark(struct server *s, struct client *c);
void *server_parked(const struct client *c);

/*
 * The handler's own state for c (NULL at first), which h->closed frees
 * when c goes: kept across c's requests, one owner, the handler.
 */
void server_set_data(struct client *c, void *data);
void *server_data(const struct client *c);

/* From now on, new connections are refused with shutting_down. */
void server_refuse_new(struct server *s);

/* Frees dead clients; the loop's before-sleep step. */
void server_reap(struct server *s);

/* Writes what each socket takes now (at exit). */
void server_flush_all(struct server *s);

/* True if the socket path still names the file we bound. */
bool server_socket_ours(const struct server *s);

struct server_stats {
	size_t clients;
	size_t output_bytes;		/* queued for all clients */
	size_t output_bytes_max;	/* the most for one */
	size_t input_bytes;		/* input buffers allocated */
	struct server_counters count;
	struct server_limits lim;
};
void server_get_stats(const struct server *s, struct server_stats *st);

#endif
