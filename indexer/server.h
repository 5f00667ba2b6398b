/*
 * server.h - the event loop: the listening socket, clients, their bounded
 * buffers, and waking requests that wait for an index.
 *
 * Owns: every struct client (its socket, input and output buffers, its
 * one parked request), the epoll set, the server counters, and the
 * listening socket: binding it, and binding it again when its file is
 * deleted.
 * Never touches: what a request means (ops.c), how projects are walked
 * (project.c), scoring (search.c).
 *
 * One thread runs it all. A client's bytes go into a buffer of at most
 * lim.max_line + 1 bytes; a line that does not fit gets line_too_long and
 * the connection is closed. Responses are written at once when the
 * socket takes them; what it does not take is queued, up to
 * lim.max_output bytes per client, and a client whose queue would pass
 * that is dropped (it is not reading; nobody else waits for it). A
 * request that must wait for an index is parked on its client; the
 * client's later lines wait behind it, so answers stay in order.
 */
#ifndef FIDX_SERVER_H
#define FIDX_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "../common/log.h"
#include "project.h"
#include "search.h"

struct visits;

struct server_limits {
	size_t max_clients;
	size_t max_line;		/* bytes in a request line, '\n' excluded */
	size_t max_output;		/* bytes queued per client */
	uint32_t wait_ms;		/* default bound on a parked request */
};

struct server_counters {
	uint64_t requests;
	uint64_t errors;		/* error responses sent */
	uint64_t queries;
	uint64_t clients_accepted;
	uint64_t clients_refused;	/* over the client cap */
	uint64_t clients_forbidden;	/* another uid */
	uint64_t clients_dropped;	/* over the output cap */
	uint64_t lines_too_long;
	uint64_t responses_too_large;
	uint64_t waits;
	uint64_t waits_timed_out;
	uint64_t accept_errors;		/* EMFILE and the like */
	uint64_t socket_rebinds;	/* our socket file was deleted */
};

/* A project and the generation a parked request waits for. */
struct server_wait_target {
	char *root;
	uint64_t gen;
};

/* A request parked until its projects reach their generations. */
struct server_wait {
	json_t *req;			/* owned */
	int op;				/* ops.c's id of the op to resume */
	struct server_wait_target *t;	/* owned, n entries */
	size_t n;
	int64_t deadline_ms;		/* CLOCK_MONOTONIC */
	unsigned flags;			/* ops.c's, e.g. add: it was new */
};

struct client {
	int fd;
	uint32_t events;		/* registered with epoll */
	char *in;
	size_t in_off, in_len, in_cap;	/* unread bytes are [in_off, in_len) */
	char *out;
	size_t out_off, out_len, out_cap;
	struct server_wait *wait;
	bool eof;			/* the peer shut its write side */
	bool closing;			/* close once the output is written */
	bool dead;			/* close now */
	bool backlog;			/* complete lines left unprocessed */
};

struct server {
	struct server_limits lim;
	int epfd, lfd, sigfd, spare_fd;
	struct client **clients;	/* lim.max_clients slots */
	size_t nclients;
	struct project_registry *reg;
	struct search_pool *pool;
	struct server_counters count;
	bool stopping;
	bool wake;			/* re-check parked requests now */
	struct timespec started;
	/*
	 * The socket file we bound (its dev and inode), checked every
	 * SERVER_SOCKET_CHECK_MS: a temp cleaner that deletes it would
	 * leave us running and unreachable, so we bind it again.
	 */
	const char *sock_path;
	bool sock_make_dir;		/* the default path: remake its dir */
	bool sock_known;		/* sock_dev/sock_ino are set */
	bool sock_warned;		/* a replacement was reported once */
	dev_t sock_dev;
	ino_t sock_ino;
	int64_t sock_check_ms;
	uint64_t request_us_max;

	/* The frecency store, its file ("" if none), its next save. */
	struct visits *visits;
	char visits_file[4096];
	int64_t visits_save_ms;		/* 0: nothing to save */
};

/* Visits are saved this long after the first unsaved one (and at exit). */
#define SERVER_VISITS_SAVE_MS 2000

/* How often the loop checks that its socket file is still its own. */
#define SERVER_SOCKET_CHECK_MS 2000

/*
 * Binds and listens on path (no file may be there), mode 0600; the fd
 * (non-blocking, close-on-exec) or -1 with err set.
 */
int server_bind(const char *path, struct fidx_err *err);

/* Saves the frecency store now if it changed; failures are logged. */
void server_visits_save(struct server *s);

/* listen_fd and sig_fd are the server's to close from here on. */
int server_init(struct server *s, const struct server_limits *lim,
    int listen_fd, int sig_fd, struct project_registry *reg,
    struct search_pool *pool, struct fidx_err *err);

/* Runs until a signal or a shutdown request. */
int server_run(struct server *s);

/* Closes every client and the sockets; reg and pool stay the caller's. */
void server_release(struct server *s);

/*
 * Queues resp (reference stolen) on c's output. A response that alone is
 * over the output cap becomes a too_large error; one that would push an
 * unread queue over it drops the client.
 */
void server_send(struct server *s, struct client *c, json_t *resp);

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t server_now_ms(void);

/* Bytes queued for all clients, and the most for one. */
size_t server_output_bytes(const struct server *s, size_t *max_one);

#endif
