/* server.c - see server.h. */
#include "server.h"
#include "ops.h"
#include "visits.h"
#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/proto.h"
#include "../common/sockpath.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
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

int64_t
server_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int
server_init(struct server *s, const struct server_limits *lim,
    int listen_fd, int sig_fd, struct project_registry *reg,
    struct search_pool *pool, struct fidx_err *err)
{
	struct epoll_event ev = { .events = EPOLLIN };

	memset(s, 0, sizeof(*s));
	s->lim = *lim;
	s->lfd = listen_fd;
	s->sigfd = sig_fd;
	s->reg = reg;
	s->pool = pool;
	s->epfd = -1;
	clock_gettime(CLOCK_MONOTONIC, &s->started);
	/* Kept to be closed when accept() hits EMFILE: see server_accept. */
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if ((s->clients = fidx_calloc(lim->max_clients ? lim->max_clients : 1,
	    sizeof(*s->clients))) == NULL)
		return fidx_error(err, "out of memory");
	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return fidx_error(err, "epoll_create1: %s", strerror(errno));
	ev.data.ptr = &s->lfd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) == -1)
		return fidx_error(err, "epoll_ctl: %s", strerror(errno));
	ev.data.ptr = &s->sigfd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sigfd, &ev) == -1)
		return fidx_error(err, "epoll_ctl: %s", strerror(errno));
	ev.data.ptr = s->reg;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, project_registry_fd(reg),
	    &ev) == -1)
		return fidx_error(err, "epoll_ctl: %s", strerror(errno));
	return 0;
}

static void
client_free(struct client *c)
{
	if (c->fd != -1)
		close(c->fd);
	if (c->wait != NULL)
		ops_wait_free(c->wait);
	free(c->in);
	free(c->out);
	free(c);
}

void
server_release(struct server *s)
{
	for (size_t i = 0; i < s->nclients; i++)
		client_free(s->clients[i]);
	free(s->clients);
	s->clients = NULL;
	s->nclients = 0;
	if (s->epfd != -1)
		close(s->epfd);
	if (s->lfd != -1)
		close(s->lfd);
	if (s->sigfd != -1)
		close(s->sigfd);
	if (s->spare_fd != -1)
		close(s->spare_fd);
	s->epfd = s->lfd = s->sigfd = s->spare_fd = -1;
}

size_t
server_output_bytes(const struct server *s, size_t *max_one)
{
	size_t sum = 0, max = 0;

	for (size_t i = 0; i < s->nclients; i++) {
		size_t q = s->clients[i]->out_len - s->clients[i]->out_off;

		sum += q;
		if (q > max)
			max = q;
	}
	if (max_one != NULL)
		*max_one = max;
	return sum;
}

/* Registers what c can do now: read while it has room, write while queued. */
static void
client_update_events(struct server *s, struct client *c)
{
	struct epoll_event ev = { .data.ptr = c };
	bool room = c->in_len - c->in_off < s->lim.max_line + 1;

	if (c->dead)
		return;
	if (!c->eof && !c->closing && room)
		ev.events |= EPOLLIN;
	if (c->out_len > c->out_off)
		ev.events |= EPOLLOUT;
	if (ev.events == c->events)
		return;
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
		log_warn("epoll_ctl");
		c->dead = true;
		return;
	}
	c->events = ev.events;
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

static void
server_accept(struct server *s)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
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
				close(s->spare_fd);
				fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
				if (fd != -1)
					server_refuse(fd, PROTO_E_CAPPED,
					    "fidxd is out of file descriptors");
				s->spare_fd = open("/dev/null",
				    O_RDONLY | O_CLOEXEC);
				continue;
			}
			log_warn("accept");
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
		    &clen) == -1 || cred.uid != geteuid()) {
			s->count.clients_forbidden++;
			server_refuse(fd, PROTO_E_FORBIDDEN,
			    "fidxd serves only its own user");
			continue;
		}
		if (s->stopping) {
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
		c->fd = fd;
		c->events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			log_warn("epoll_ctl");
			client_free(c);
			continue;
		}
		s->clients[s->nclients++] = c;
		s->count.clients_accepted++;
	}
}

/* Reads what is there, as far as the buffer has room. */
static void
client_read(struct server *s, struct client *c)
{
	size_t max = s->lim.max_line + 1;

	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
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

/* Handles c's complete lines, up to SERVER_LINES_PER_TURN. */
static void
client_process(struct server *s, struct client *c)
{
	int budget = SERVER_LINES_PER_TURN;

	c->backlog = false;
	while (!c->dead && !c->closing && c->wait == NULL &&
	    c->in_len > c->in_off) {
		char *line = c->in + c->in_off;
		size_t avail = c->in_len - c->in_off;
		char *nl = memchr(line, '\n', avail);
		size_t len;

		if (budget-- == 0) {
			c->backlog = nl != NULL || c->eof;
			break;
		}
		/*
		 * The buffer holds max_line + 1 bytes, so a line that has its
		 * '\n' in it is never too long; one that fills it without is.
		 */
		if (nl == NULL) {
			if (avail > s->lim.max_line) {
				s->count.lines_too_long++;
				server_send(s, c, proto_error(NULL,
				    PROTO_E_LINE_TOO_LONG, "a request line is "
				    "longer than %zu bytes; closing the "
				    "connection", s->lim.max_line));
				c->closing = true;
				c->in_off = c->in_len = 0;
				break;
			}
			if (!c->eof)
				break;
			len = avail;	/* the last line, without its '\n' */
			c->in_off = c->in_len;
		} else {
			len = (size_t)(nl - line);
			c->in_off += len + 1;
		}
		if (len > 0 && line[len - 1] == '\r')
			len--;
		/*
		 * Blank lines are keep-alives, as NDJSON readers may take
		 * them: answering one would put an answer no request asked
		 * for into a pipelined client's stream. A line of JSON
		 * whitespace only is blank too, not bad JSON.
		 */
		if (server_blank(line, len))
			continue;
		s->count.requests++;
		ops_request(s, c, line, len);
	}
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
}

static void
client_event(struct server *s, struct client *c, uint32_t events)
{
	if (events & EPOLLIN)
		client_read(s, c);
	if (events & EPOLLOUT)
		client_flush(c);
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN))
		c->dead = true;
	client_process(s, c);
}

/* Frees dead clients and those done closing; keeps the slot array dense. */
static void
server_reap(struct server *s)
{
	for (size_t i = 0; i < s->nclients;) {
		struct client *c = s->clients[i];
		bool drained = c->out_len == c->out_off;
		bool idle = c->wait == NULL && c->in_len == c->in_off &&
		    !c->backlog;

		if (c->dead || (drained && (c->closing || (c->eof && idle)))) {
			s->clients[i] = s->clients[--s->nclients];
			client_free(c);
			continue;
		}
		client_update_events(s, c);
		if (c->dead)
			continue;	/* reaped on the next pass */
		i++;
	}
}

/* Wakes parked requests: a walk finished, time passed, or we stop. */
static void
server_resume_waits(struct server *s, bool walks_done)
{
	int64_t now = server_now_ms();

	for (size_t i = 0; i < s->nclients; i++) {
		struct client *c = s->clients[i];

		if (c->wait == NULL || c->dead)
			continue;
		if (walks_done || s->stopping || now >= c->wait->deadline_ms)
			ops_resume(s, c, now >= c->wait->deadline_ms);
		if (c->wait == NULL)
			client_process(s, c);	/* its next lines */
	}
}

void
server_visits_save(struct server *s)
{
	struct fidx_err err = { "" };

	s->visits_save_ms = 0;
	if (s->visits == NULL || s->visits_file[0] == '\0' ||
	    !visits_dirty(s->visits))
		return;
	if (visits_save(s->visits, s->visits_file, &err) == -1)
		log_warnx("%s", err.msg);
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
	s->sock_check_ms = server_now_ms() + SERVER_SOCKET_CHECK_MS;
}

/* True if a process accepts connections on the socket file at path. */
static bool
server_socket_answers(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool yes;

	if (fd == -1)
		return true;	/* cannot tell: leave it alone */
	strcpy(sa.sun_path, path);
	yes = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
	    (errno != ECONNREFUSED && errno != ENOENT);
	close(fd);
	return yes;
}

/*
 * Binds the socket path again when its file is gone (or is a socket
 * nobody listens on), and swaps the new listener in. Connections still
 * queued on the old one are taken first. A path served by another
 * process stops us; one that is not a socket is left alone.
 */
static void
server_socket_check(struct server *s)
{
	struct fidx_err err = { "" };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->lfd };
	struct stat st;
	int fd;

	s->sock_check_ms = server_now_ms() + SERVER_SOCKET_CHECK_MS;
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
			s->stopping = true;
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
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
	close(s->lfd);
	s->lfd = fd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) == -1)
		log_warn("epoll_ctl");
	s->count.socket_rebinds++;
	s->sock_warned = false;
	log_warnx("the socket %s was deleted; bound it again", s->sock_path);
	server_socket_note(s);
}

/* epoll_wait's timeout: 0 with work pending, else the nearest deadline. */
static int
server_timeout(struct server *s)
{
	int64_t now = server_now_ms(), best = INT64_MAX;

	if (s->visits_save_ms != 0)
		best = s->visits_save_ms - now;
	if (s->sock_path != NULL && s->sock_check_ms - now < best)
		best = s->sock_check_ms - now;
	for (size_t i = 0; i < s->nclients; i++) {
		struct client *c = s->clients[i];

		if (c->backlog)
			return 0;
		if (c->wait != NULL && c->wait->deadline_ms - now < best)
			best = c->wait->deadline_ms - now;
	}
	if (best == INT64_MAX)
		return -1;
	if (best <= 0)
		return 0;
	/* +1: epoll rounds down, and waking early only loops once more. */
	return best > 60000 ? 60000 : (int)best + 1;
}

static void
server_signal(struct server *s)
{
	struct signalfd_siginfo si;

	while (read(s->sigfd, &si, sizeof(si)) == sizeof(si)) {
		log_info("signal %u: shutting down", si.ssi_signo);
		s->stopping = true;
	}
}

int
server_run(struct server *s)
{
	struct epoll_event evs[64];

	server_socket_note(s);
	while (!s->stopping) {
		int n = epoll_wait(s->epfd, evs, 64, server_timeout(s));
		bool walks_done = false;

		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_warn("epoll_wait");
			return -1;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &s->lfd)
				server_accept(s);
			else if (p == &s->sigfd)
				server_signal(s);
			else if (p == s->reg)
				walks_done = project_collect(s->reg) > 0;
			else
				client_event(s, p, evs[i].events);
		}
		for (size_t i = 0; i < s->nclients; i++)
			if (s->clients[i]->backlog)
				client_process(s, s->clients[i]);
		/* An index was dropped: give its free pages back. */
		if (walks_done)
			malloc_trim(0);
		server_resume_waits(s, walks_done || s->wake);
		s->wake = false;
		server_reap(s);
		if (s->visits_save_ms != 0 &&
		    server_now_ms() >= s->visits_save_ms)
			server_visits_save(s);
		if (s->sock_path != NULL &&
		    server_now_ms() >= s->sock_check_ms)
			server_socket_check(s);
	}
	server_visits_save(s);
	/* Parked requests hear why; everyone gets what fits in the socket. */
	server_resume_waits(s, false);
	for (size_t i = 0; i < s->nclients; i++)
		client_flush(s->clients[i]);
	return 0;
}
