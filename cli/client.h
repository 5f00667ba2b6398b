/*
 * client.h - the CLI's side of the daemon protocol.
 *
 * Owns: one connection to fidxd (socket, read buffer), starting fidxd
 * when nothing listens, finding a running one by its pid file when its
 * socket file is gone, how hints name the command ("fidx --socket S"),
 * and how the CLI names a project (its root).
 * Never touches: the daemon's state except through requests; output
 * formatting (output.c).
 *
 * One request is one JSON object and '\n'; its answer is exactly one
 * line, read into a buffer that grows to CLIENT_MAX_RESPONSE and no
 * further. The connection speaks in order, so a caller may send several
 * requests on it one after another.
 */
#ifndef FIDX_CLIENT_H
#define FIDX_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../common/log.h"
#include "../common/shquote.h"
#include "../common/sockpath.h"

/*
 * Longest response line read. 10,000 results of long paths with
 * positions fit; past it the request fails with a message that says to
 * ask for fewer results.
 */
#define CLIENT_MAX_RESPONSE (64u * 1024 * 1024)

/* Connect attempts after starting fidxd, and the pause between them. */
#define CLIENT_CONNECT_TRIES 50
#define CLIENT_CONNECT_PAUSE_MS 20

/*
 * Polls for fidxd to go after `shutdown` (10 s in all: it may be joining
 * a walk in progress and freeing large indexes).
 */
#define CLIENT_STOP_TRIES 500

struct client {
	int fd;				/* -1 while not connected */
	char path[SOCKPATH_MAX + 1];
	bool explicit_path;		/* from --socket: passed on to fidxd */
	/* "fidx", or "fidx --socket PATH" (quoted): how hints name it. */
	char cmd[sizeof("fidx --socket ") + SHQUOTE_SIZE(SOCKPATH_MAX)];
	char *buf;			/* bytes read, not yet consumed */
	size_t len, cap;
	size_t line_len;		/* the last response line, at buf */
	size_t used;			/* its bytes and '\n': dropped next */
	/* The "code" of the last "ok":false answer; "" after any other. */
	char error_code[32];
};

/* Sets the socket path: path, or the default when path is NULL. */
int client_init(struct client *c, const char *path, struct fidx_err *err);

/* Closes the connection and frees the buffer; c may be initialised again. */
void client_release(struct client *c);

/*
 * Connects without starting anything. On failure errno is ENOENT or
 * ECONNREFUSED when no daemon listens (see client_not_running()), and
 * err says what happened.
 */
int client_connect(struct client *c, struct fidx_err *err);

/* True if the errno left by a failed client_connect() means "no daemon". */
bool client_not_running(int saved_errno);

/* True while pid runs; a zombie (not yet reaped by its parent) has exited. */
bool client_pid_alive(long pid);

/*
 * The pid of a live fidxd that holds this socket's pid file (the
 * daemon's lock), or 0. It may run while its socket file is gone.
 */
long client_daemon_pid(const struct client *c);

/*
 * How long a daemon whose socket file was deleted may take to bind it
 * again: fidxd checks every 2 s (SERVER_SOCKET_CHECK_MS).
 */
#define CLIENT_REBIND_TRIES 150

/*
 * client_connect(), and when nothing listens but a live fidxd holds the
 * pid file, a bounded wait for it to bind its socket again. Still
 * unreachable: -1 with errno ENOTCONN, *pid set and err naming the stop
 * command. pid may be NULL.
 */
int client_connect_live(struct client *c, long *pid, struct fidx_err *err);

/*
 * Connects, starting fidxd first if nothing listens. *started tells
 * whether this call started it (may be NULL).
 */
int client_connect_or_start(struct client *c, bool *started,
    struct fidx_err *err);

/* Sleeps CLIENT_CONNECT_PAUSE_MS: the step of every bounded poll. */
void client_pause(void);

/*
 * Sends req (not consumed) and reads one response into *resp (the
 * caller's reference). An "ok":false answer, a dead daemon or a response
 * too long is reported on stderr ("fidx: <message> (<code>)") and
 * returns -1 with *resp NULL; the code of an "ok":false answer is kept
 * in c->error_code for the caller's exit status.
 */
int client_request(struct client *c, json_t *req, json_t **resp);

/*
 * The pipelined side, for a caller that polls c->fd itself (the picker):
 * client_send() writes one request line and returns without waiting for
 * its answer; client_receive() returns the next whole answer already
 * read, reading only what the socket has without blocking. Neither
 * writes to stderr (a picker owns the terminal): a failure fills err.
 * The caller bounds how many requests it has in flight, so a blocking
 * write of one small line never waits on a daemon that stops reading.
 */
int client_send(struct client *c, json_t *req, struct fidx_err *err);

/*
 * 1 with *resp (the caller's reference; "ok" true or false, as sent), 0
 * when no whole line is there yet, -1 with err when the daemon closed
 * the connection, the read failed or a line is not a JSON object.
 */
int client_receive(struct client *c, json_t **resp, struct fidx_err *err);

/* The raw line of the last response, without '\n'; valid until the next
 * request or client_release(). */
const char *client_response_line(const struct client *c, size_t *len);

/*
 * Resolves the project root into buf (PATH_MAX bytes): dir when not
 * NULL, else the work tree of the git repository enclosing the current
 * directory, else the current directory; always a realpath.
 */
int client_project_root(const char *dir, char *buf, size_t size,
    struct fidx_err *err);

/*
 * A root the daemon may know though it is gone from the disk (rm,
 * reindex, a query's --root): its realpath when it exists, else the
 * realpath of its deepest existing parent and the rest of it, "." and
 * ".." applied, so that the daemon, not the CLI, says what it is.
 */
int client_named_root(const char *dir, char *buf, size_t size,
    struct fidx_err *err);

/* Fails unless root can travel in a JSON string (valid UTF-8). */
int client_root_check(const char *root, struct fidx_err *err);

#endif
