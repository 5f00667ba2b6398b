/* server.c - see server.h. */
#include "server.h"
#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/proto.h"
#include "../common/sockpath.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Lines one client may have handled per loop turn before others go. */
#define SERVER_LINES_PER_TURN 16
/* First size of a client's input buffer; it grows to max_line + 1. */
#define SERVER_IN_FIRST 4096
/* Output buffers larger than this are freed once drained. */
#define SERVER_OUT_KEEP (64 * 1024)

struct client {
	struct server *s;
	struct loop_io io;
	int fd;
	char *in;
	size_t in_off, in_len, in_cap;	/* unread bytes are [in_off, in_len) */
	size_t shown;			/* bytes of it shown to h.waiting */
	char *out;
	size_t out_off, out_len, out_cap;
	void *parked;			/* the handler's, opaque */
	void *data;			/* the handler's (server_set_data) */
	bool eof;			/* the peer shut its write side */
	bool closing;			/* close once the output is written */
	bool dead;			/* close now */
	bool backlog;			/* complete lines left unprocessed */
};

struct server {
	struct loop *loop;
	struct server_limits lim;
	struct server_handler h;
	struct loop_io lio;
	int lfd, spare_fd;
	struct client **clients;	/* lim.max_clients slots */
	size_t nclients;
	struct server_counters count;
	bool refuse_new;

	/* Clients with lines left over run again from this 0 ms timer. */
	struct loop_timer backlog;

	/*
	 * The socket file we bound (its dev and inode), checked every
	 * SERVER_SOCKET_CHECK_MS: a temp cleaner that deletes it would
	 * leave us running and unreachable, so we bind it again.
	 */
	char *sock_path;
	bool sock_make_dir;		/* the default path: remake its dir */
	bool sock_known;		/* sock_dev/sock_ino are set */
	bool sock_warned;		/* a replacement was reported once */
	dev_t sock_dev;
	ino_t sock_ino;
	struct loop_timer sock_check;

	/* Accepting paused after an error that would repeat at once. */
	struct loop_timer accept_resume;
};

/*
 * How long accepting pauses after accept() fails for want of memory or
 * descriptors: the listen socket stays readable, so going on at once
 * would spin the loop (and the log) until the shortage passes.
 */
#define SERVER_ACCEPT_PAUSE_MS 100

static void server_accept(struct server *s);
static void client_process(struct server *s, struct client *c);
static void client_event(struct loop *l, struct loop_io *io, uint32_t events);
static void server_backlog(struct loop *l, struct loop_timer *t);

static void
client_free(struct server *s, struct client *c)
{
	loop_io_stop(s->loop, &c->io);
	if (c->fd != -1)
		close(c->fd);
	if (c->parked != NULL)
		s->h.gone(s->h.arg, c, c->parked);
	if (c->data != NULL && s->h.closed != NULL)
		s->h.closed(s->h.arg, c, c->data);
	free(c->in);
	free(c->out);
	free(c);
}

/* Asks for what c can do now: read while it has room, write while queued. */
static void
client_update_events(struct server *s, struct client *c)
{
	bool room = c->in_len - c->in_off < s->lim.max_line + 1;
	uint32_t ev = 0;

	if (c->dead)
		return;
	if (!c->eof && !c->closing && room)
		ev |= LOOP_READ;
	if (c->out_len > c->out_off)
		ev |= LOOP_WRITE;
	if (loop_io_set(s->loop, &c->io, ev) == -1) {
		log_warn("epoll_ctl");
		c->dead = true;
	}
}

/* Writes what the socket takes. Marks c dead on a write error. */
static void
client_flush(struct client *c)
{
	while (c->out_len > c->out_off) {
		ssize_t n = send(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		c->dead = true;		/* EPIPE, ECONNRESET: the peer left */
		return;
	}
	c->out_off = c->out_len = 0;
	if (c->out_cap > SERVER_OUT_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
}

struct server_dump {
	struct client *c;
	size_t limit;			/* out_len may not pass out_off + limit */
	bool over, nomem;
};

static int
server_dump_cb(const char *buf, size_t size, void *arg)
{
	struct server_dump *d = arg;
	struct client *c = d->c;
	size_t need = c->out_len + size + 1;	/* room for the '\n' */

	if (need - c->out_off > d->limit) {
		d->over = true;
		return -1;
	}
	if (need > c->out_cap) {
		size_t ncap = c->out_cap ? c->out_cap : 4096;
		char *o;

		/* Moving the unsent bytes down first keeps the cap exact. */
		if (c->out_off > 0) {
			memmove(c->out, c->out + c->out_off,
			    c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
			need = c->out_len + size + 1;
		}
		while (ncap < need)
			ncap *= 2;
		if (ncap > d->limit + 1 && need <= d->limit + 1)
			ncap = d->limit + 1;
		if (ncap > c->out_cap) {
			if ((o = fidx_reallocarray(c->out, ncap, 1)) == NULL) {
				d->nomem = true;
				return -1;
			}
			c->out = o;
			c->out_cap = ncap;
		}
	}
	memcpy(c->out + c->out_len, buf, size);
	c->out_len += size;
	return 0;
}

/* Appends raw bytes (a small fixed line) if they fit; false if not. */
static bool
client_queue_raw(struct server *s, struct client *c, const char *line)
{
	struct server_dump d = { .c = c, .limit = s->lim.max_output };

	return server_dump_cb(line, strlen(line), &d) == 0;
}

void
server_send(struct server *s, struct client *c, json_t *resp)
{
	struct server_dump d = { .c = c, .limit = s->lim.max_output };
	size_t queued;
	json_t *id;

	if (resp == NULL) {
		/* Building the response ran out of memory. */
		s->count.errors++;
		if (!client_queue_raw(s, c, PROTO_NO_MEMORY_LINE))
			c->dead = true;
		goto out;
	}
	if (json_is_false(json_object_get(resp, "ok")))
		s->count.errors++;
	if (c->dead) {
		json_decref(resp);
		return;
	}
	queued = c->out_len - c->out_off;
	if (json_dump_callback(resp, server_dump_cb, &d, JSON_COMPACT) == 0) {
		c->out[c->out_len++] = '\n';
		json_decref(resp);
		goto out;
	}
	/* Roll back the partial line; out_off may have moved, not the tail. */
	c->out_len = c->out_off + queued;
	if (d.over && queued == 0) {
		json_t *err;

		s->count.responses_too_large++;
		id = json_object_get(resp, "id");
		err = proto_error(id, PROTO_E_TOO_LARGE, "the response is over "
		    "the %zu-byte output limit; ask for fewer results",
		    s->lim.max_output);
		json_decref(resp);
		server_send(s, c, err);
		return;
	}
	json_decref(resp);
	if (d.over) {
		/* It has an unread queue and asks for more: it is not reading. */
		s->count.clients_dropped++;
		log_debug("client %d dropped: output over %zu bytes", c->fd,
		    s->lim.max_output);
		c->dead = true;
		return;
	}
	s->count.errors++;
	if (!client_queue_raw(s, c, PROTO_NO_MEMORY_LINE))
		c->dead = true;
out:
	client_flush(c);
}

/* Writes one line to a socket we are about to close, if it takes it. */
static void
server_refuse(int fd, enum proto_err code, const char *msg)
{
	char line[512];
	int n = snprintf(line, sizeof(line),
	    "{\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
	    proto_err_name(code), msg);

	if (n > 0 && send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) <
	    0)
		log_debug("refused client did not take its error");
	close(fd);
}

/* Reads what is there, as far as the buffer has room. */
static void
client_read(struct server *s, struct client *c)
{
	size_t max = s->lim.max_line + 1;

	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		/*
		 * What was shown to h.waiting moves down with the bytes.
		 * NEEDSWORK: no test pins this; over a real socket the
		 * second read races the parked request's end. It wants a
		 * loop that runs one turn and a client on a socketpair.
		 */
		c->shown = c->shown > c->in_off ? c->shown - c->in_off : 0;
		c->in_off = 0;
	}
	while (c->in_len < max && !c->eof) {
		ssize_t n;

		if (c->in_len == c->in_cap) {
			size_t ncap = c->in_cap ? c->in_cap * 2 :
			    SERVER_IN_FIRST;
			char *in;

			if (ncap > max)
				ncap = max;
			if ((in = fidx_reallocarray(c->in, ncap, 1)) == NULL) {
				/*
				 * Its bytes stay unread, so level-triggered
				 * epoll would wake us for them at once, for
				 * ever: tell it and close it.
				 */
				log_warnx("out of memory for a client buffer");
				server_send(s, c, NULL);
				c->closing = true;
				return;
			}
			c->in = in;
			c->in_cap = ncap;
		}
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			continue;
		}
		if (n == 0) {
			c->eof = true;
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			c->dead = true;
		return;
	}
}

/* True if the line (len bytes, no terminator) is only JSON whitespace. */
static bool
server_blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			return false;
	return true;
}

int
server_bind(const char *path, struct fidx_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, saved;

	if (strlen(path) >= sizeof(sa.sun_path))
		return fidx_error(err, "socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return fidx_error(err, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    chmod(path, 0600) == -1 || listen(fd, 128) == -1) {
		saved = errno;
		close(fd);
		return fidx_error(err, "%s: %s", path, strerror(saved));
	}
	return fd;
}

/* True if a process accepts connections on the socket file at path. */
static bool
server_socket_answers(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* Non-blocking: a hung listener with a full backlog (EAGAIN) is
	 * someone's, and must not stop our loop. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	bool yes;

	if (fd == -1)
		return true;	/* cannot tell: leave it alone */
	strcpy(sa.sun_path, path);
	yes = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
	    (errno != ECONNREFUSED && errno != ENOENT);
	close(fd);
	return yes;
}

static void
server_accept_resume(struct loop *l, struct loop_timer *t)
{
	struct server *s = t->arg;

	if (loop_io_set(l, &s->lio, LOOP_READ) == -1)
		log_warn("epoll_ctl: the listen socket");
}

/* Stops accepting for SERVER_ACCEPT_PAUSE_MS; said once per pause. */
static void
server_accept_pause(struct server *s, int e)
{
	s->count.accept_pauses++;
	log_warnx("accept: %s; accepting again in %d ms", strerror(e),
	    SERVER_ACCEPT_PAUSE_MS);
	if (loop_io_set(s->loop, &s->lio, 0) == -1)
		log_warn("epoll_ctl: the listen socket");
	loop_timer_start(s->loop, &s->accept_resume, SERVER_ACCEPT_PAUSE_MS,
	    0, server_accept_resume, s);
}

static void
server_accept(struct server *s)
{
	for (;;) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		struct client *c;
		int fd = accept4(s->lfd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			s->count.accept_errors++;
			if ((errno == EMFILE || errno == ENFILE) &&
			    s->spare_fd != -1) {
				/*
				 * Out of descriptors: the listen socket would
				 * stay readable and spin the loop. Free one,
				 * take the connection and close it, so the
				 * peer sees a refusal, not a hang.
				 */
				int e;

				close(s->spare_fd);
				fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
				e = errno;
				if (fd != -1) {
					s->count.clients_refused_fds++;
					server_refuse(fd, PROTO_E_CAPPED,
					    "fidxd is out of file descriptors");
				}
				s->spare_fd = open("/dev/null",
				    O_RDONLY | O_CLOEXEC);
				if (fd != -1)
					continue;
				/*
				 * Linux takes the descriptor before it looks
				 * at the queue, so EMFILE comes with nobody
				 * waiting too (the last free one went to the
				 * client before): going round again would spin
				 * here for good. Nobody waits: done.
				 */
				if (e == EAGAIN || e == EWOULDBLOCK)
					return;
				if (e == EINTR || e == ECONNABORTED)
					continue;
				server_accept_pause(s, e);
				return;
			}
			/* ENOBUFS, ENOMEM, or descriptors with none spare. */
			server_accept_pause(s, errno);
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
		    &clen) == -1 || cred.uid != geteuid()) {
			s->count.clients_forbidden++;
			server_refuse(fd, PROTO_E_FORBIDDEN,
			    "fidxd serves only its own user");
			continue;
		}
		if (s->refuse_new) {
			server_refuse(fd, PROTO_E_SHUTTING_DOWN,
			    "fidxd is stopping");
			continue;
		}
		if (s->nclients >= s->lim.max_clients) {
			char msg[160];

			s->count.clients_refused++;
			snprintf(msg, sizeof(msg), "too many clients (the "
			    "limit is %zu%s)", s->lim.max_clients,
			    s->lim.max_clients < FIDX_MAX_CLIENTS_CEILING ?
			    "; fidxd --max-clients raises it" : "");
			server_refuse(fd, PROTO_E_CAPPED, msg);
			continue;
		}
		if ((c = fidx_calloc(1, sizeof(*c))) == NULL) {
			server_refuse(fd, PROTO_E_NO_MEMORY, "out of memory");
			continue;
		}
		c->s = s;
		c->fd = fd;
		if (loop_io_start(s->loop, &c->io, fd, LOOP_READ,
		    client_event, c) == -1) {
			log_warn("epoll_ctl");
			client_free(s, c);
			continue;
		}
		s->clients[s->nclients++] = c;
		s->count.clients_accepted++;
	}
}

/*
 * The next complete line of c from off, or NULL: its length in *len
 * (without '\n' or a '\r' before it), the bytes it takes in *used.
 * A line without '\n' counts once the peer has shut its side.
 */
static const char *
client_line(const struct client *c, size_t off, size_t *len, size_t *used)
{
	const char *line = c->in + off;
	size_t avail = c->in_len - off;
	const char *nl = memchr(line, '\n', avail);

	if (avail == 0 || (nl == NULL && !c->eof))
		return NULL;
	*len = nl != NULL ? (size_t)(nl - line) : avail;
	*used = nl != NULL ? *len + 1 : avail;
	if (*len > 0 && line[*len - 1] == '\r')
		(*len)--;
	return line;
}

/* Shows the handler each line that came in behind c's parked request. */
static void
client_show_waiting(struct server *s, struct client *c)
{
	const char *line;
	size_t len, used;

	if (c->shown < c->in_off)
		c->shown = c->in_off;
	while (c->parked != NULL && !c->dead &&
	    (line = client_line(c, c->shown, &len, &used)) != NULL) {
		c->shown += used;
		if (!server_blank(line, len))
			s->h.waiting(s->h.arg, c, c->parked, line, len);
	}
}

/* Handles c's complete lines, up to SERVER_LINES_PER_TURN. */
static void
client_process(struct server *s, struct client *c)
{
	int budget = SERVER_LINES_PER_TURN;

	c->backlog = false;
	while (!c->dead && !c->closing && c->parked == NULL &&
	    c->in_len > c->in_off) {
		const char *line;
		size_t len, used;

		/*
		 * The buffer holds max_line + 1 bytes, so a line that has its
		 * '\n' in it is never too long; one that fills it without is,
		 * and so is a last line (the peer shut its side) that long.
		 */
		line = client_line(c, c->in_off, &len, &used);
		if (line == NULL || len > s->lim.max_line) {
			if (c->in_len - c->in_off > s->lim.max_line) {
				s->count.lines_too_long++;
				server_send(s, c, proto_error(NULL,
				    PROTO_E_LINE_TOO_LONG, "a request line is "
				    "longer than %zu bytes; closing the "
				    "connection", s->lim.max_line));
				c->closing = true;
				c->in_off = c->in_len = 0;
			}
			break;
		}
		if (budget-- == 0) {
			c->backlog = true;
			break;
		}
		c->in_off += used;
		/*
		 * Blank lines are keep-alives, as NDJSON readers may take
		 * them: answering one would put an answer no request asked
		 * for into a pipelined client's stream. A line of JSON
		 * whitespace only is blank too, not bad JSON.
		 */
		if (server_blank(line, len))
			continue;
		s->count.requests++;
		s->h.line(s->h.arg, c, line, len);
	}
	client_show_waiting(s, c);
	if (c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
		c->shown = 0;
	}
	if (c->backlog && !loop_timer_armed(&s->backlog))
		loop_timer_start(s->loop, &s->backlog, 0, 0, server_backlog,
		    s);
}

static void
client_event(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct client *c = io->arg;
	struct server *s = c->s;

	(void)l;
	if (events & LOOP_READ)
		client_read(s, c);
	if (events & LOOP_WRITE)
		client_flush(c);
	if ((events & (LOOP_ERR | LOOP_HUP)) && !(events & LOOP_READ))
		c->dead = true;
	client_process(s, c);
}

/* Lines left over from a busy client, or behind a request unparked. */
static void
server_backlog(struct loop *l, struct loop_timer *t)
{
	struct server *s = t->arg;

	(void)l;
	for (size_t i = 0; i < s->nclients; i++)
		if (s->clients[i]->backlog)
			client_process(s, s->clients[i]);
}

void
server_reap(struct server *s)
{
	for (size_t i = 0; i < s->nclients;) {
		struct client *c = s->clients[i];
		bool drained = c->out_len == c->out_off;
		bool idle = c->parked == NULL && c->in_len == c->in_off &&
		    !c->backlog;

		if (c->dead || (drained && (c->closing || (c->eof && idle)))) {
			s->clients[i] = s->clients[--s->nclients];
			client_free(s, c);
			continue;
		}
		client_update_events(s, c);
		if (c->dead)
			continue;	/* reaped on the next pass */
		i++;
	}
}

void
server_park(struct server *s, struct client *c, void *p)
{
	(void)s;
	c->parked = p;
	c->shown = c->in_off;
}

void *
server_unpark(struct server *s, struct client *c)
{
	void *p = c->parked;

	c->parked = NULL;
	/* Not from here: the handler may be inside a line of c's. */
	c->backlog = true;
	if (!loop_timer_armed(&s->backlog))
		loop_timer_start(s->loop, &s->backlog, 0, 0, server_backlog,
		    s);
	return p;
}

void *
server_parked(const struct client *c)
{
	return c->parked;
}

void
server_set_data(struct client *c, void *data)
{
	c->data = data;
}

void *
server_data(const struct client *c)
{
	return c->data;
}

void
server_refuse_new(struct server *s)
{
	s->refuse_new = true;
}

void
server_flush_all(struct server *s)
{
	for (size_t i = 0; i < s->nclients; i++)
		client_flush(s->clients[i]);
}

/* Remembers which file the socket path names now: the one we bound. */
static void
server_socket_note(struct server *s)
{
	struct stat st;

	s->sock_known = s->sock_path != NULL && lstat(s->sock_path, &st) == 0;
	if (s->sock_known) {
		s->sock_dev = st.st_dev;
		s->sock_ino = st.st_ino;
	}
}

bool
server_socket_ours(const struct server *s)
{
	struct stat st;

	if (s->sock_path == NULL || !s->sock_known ||
	    lstat(s->sock_path, &st) == -1)
		return true;
	return st.st_dev == s->sock_dev && st.st_ino == s->sock_ino;
}

static void
server_listen_event(struct loop *l, struct loop_io *io, uint32_t events)
{
	(void)l;
	(void)events;
	server_accept(io->arg);
}

/*
 * Binds the socket path again when its file is gone (or is a socket
 * nobody listens on), and swaps the new listener in. Connections still
 * queued on the old one are taken first. A path served by another
 * process stops us; one that is not a socket is left alone.
 */
static void
server_socket_check(struct loop *l, struct loop_timer *t)
{
	struct server *s = t->arg;
	struct fidx_err err = { "" };
	struct stat st;
	int fd;

	if (lstat(s->sock_path, &st) == 0) {
		if (s->sock_known && st.st_dev == s->sock_dev &&
		    st.st_ino == s->sock_ino)
			return;
		if (S_ISSOCK(st.st_mode) &&
		    server_socket_answers(s->sock_path)) {
			/*
			 * Another daemon serves the path now (its directory
			 * was deleted with our pid file, and a client started
			 * a new one): nobody new can reach us, so go.
			 */
			log_warnx("another process serves %s now; stopping",
			    s->sock_path);
			loop_timer_stop(l, t);
			s->h.lost(s->h.lost_arg);
			return;
		}
		if (!S_ISSOCK(st.st_mode)) {
			if (!s->sock_warned)
				log_warnx("%s is no longer our socket but a "
				    "file we leave alone; `fidx daemon stop` "
				    "stops us by the pid file", s->sock_path);
			s->sock_warned = true;
			return;
		}
		if (unlink(s->sock_path) == -1) {
			log_warn("unlink %s", s->sock_path);
			return;
		}
	} else if (errno != ENOENT) {
		return;
	}
	if ((s->sock_make_dir &&
	    sockpath_check_dir(s->sock_path, true, &err) == -1) ||
	    (fd = server_bind(s->sock_path, &err)) == -1) {
		/* Tried again every check; said once. */
		if (!s->sock_warned)
			log_warnx("cannot bind %s again: %s", s->sock_path,
			    err.msg);
		s->sock_warned = true;
		return;
	}
	server_accept(s);
	loop_io_stop(l, &s->lio);
	close(s->lfd);
	s->lfd = fd;
	if (loop_io_start(l, &s->lio, s->lfd, LOOP_READ, server_listen_event,
	    s) == -1) {
		/* Bound but deaf: nobody new could reach us, so go. */
		log_warn("cannot watch the socket bound again; stopping");
		loop_timer_stop(l, t);
		s->h.lost(s->h.lost_arg);
		return;
	}
	s->count.socket_rebinds++;
	s->sock_warned = false;
	log_warnx("the socket %s was deleted; bound it again", s->sock_path);
	server_socket_note(s);
}

struct server *
server_new(struct loop *l, int lfd, const char *sock_path, bool make_dir,
    const struct server_limits *lim, const struct server_handler *h,
    struct fidx_err *err)
{
	struct server *s;

	if ((s = fidx_calloc(1, sizeof(*s))) == NULL) {
		close(lfd);
		fidx_error(err, "out of memory");
		return NULL;
	}
	s->loop = l;
	s->lim = *lim;
	s->h = *h;
	s->lfd = lfd;
	/* Kept to be closed when accept() hits EMFILE: see server_accept. */
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if ((s->clients = fidx_calloc(lim->max_clients ? lim->max_clients : 1,
	    sizeof(*s->clients))) == NULL) {
		fidx_error(err, "out of memory");
		goto fail;
	}
	if (sock_path != NULL &&
	    (s->sock_path = fidx_strdup(sock_path)) == NULL) {
		fidx_error(err, "out of memory");
		goto fail;
	}
	s->sock_make_dir = make_dir;
	if (loop_io_start(l, &s->lio, lfd, LOOP_READ, server_listen_event,
	    s) == -1) {
		fidx_error(err, "epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	if (s->sock_path != NULL) {
		server_socket_note(s);
		loop_timer_start(l, &s->sock_check, SERVER_SOCKET_CHECK_MS,
		    SERVER_SOCKET_CHECK_MS, server_socket_check, s);
	}
	return s;
fail:
	server_free(s);
	return NULL;
}

void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nclients; i++)
		client_free(s, s->clients[i]);
	free(s->clients);
	loop_timer_stop(s->loop, &s->backlog);
	loop_timer_stop(s->loop, &s->sock_check);
	loop_timer_stop(s->loop, &s->accept_resume);
	loop_io_stop(s->loop, &s->lio);
	if (s->lfd != -1)
		close(s->lfd);
	if (s->spare_fd != -1)
		close(s->spare_fd);
	free(s->sock_path);
	free(s);
}

void
server_get_stats(const struct server *s, struct server_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->clients = s->nclients;
	for (size_t i = 0; i < s->nclients; i++) {
		const struct client *c = s->clients[i];
		size_t q = c->out_len - c->out_off;

		st->output_bytes += q;
		if (q > st->output_bytes_max)
			st->output_bytes_max = q;
		st->input_bytes += c->in_cap;
	}
	st->count = s->count;
	st->lim = s->lim;
}
