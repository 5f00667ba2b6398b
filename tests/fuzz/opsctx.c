/* opsctx.c - see opsctx.h. */
#include "opsctx.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <git2.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../common/alloc.h"
#include "../../common/limits.h"
#include "../../common/proto.h"
#include "../../indexer/fidxd.h"
#include "../../indexer/search.h"

#define OPSCTX_MARKER "opsctx-end"
/* Room left in a request line for the marker and the newlines. */
#define OPSCTX_MAX_BYTES (FIDX_MAX_LINE_DEFAULT - 64)

static char opsctx_dir[PATH_MAX - 64], opsctx_tree[PATH_MAX - 32];
static char opsctx_repo[PATH_MAX], opsctx_file[PATH_MAX];
static char opsctx_sock[PATH_MAX];
static struct fidxd opsctx_d;
static bool opsctx_up, opsctx_exit_set;
static size_t opsctx_projects;
static bool opsctx_verbose;

/* One connection's exchange, driven from the loop. */
struct opsctx_x {
	int fd;
	const char *out;
	size_t outlen, off;
	char *in;			/* plain malloc: not the code under test */
	size_t inlen, incap;
	struct opsctx_result *r;
	struct loop_io io;
	struct loop_timer deadline;
};

static int
opsctx_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int
opsctx_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
opsctx_atexit(void)
{
	opsctx_stop();
	if (opsctx_dir[0] != '\0')
		nftw(opsctx_dir, opsctx_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* The tree and the repository, once per process. */
static int
opsctx_make(void)
{
	static const char *const files[] = {
		"src/main.c", "src/util/str.h", "src/util/str.c",
		"docs/README.md", "a b/c d.txt", "\xff\xfe.bin",
		".hidden/h.txt", "deep/1/2/3/4/5/f.txt", "Makefile",
	};
	const char *tmp = getenv("TMPDIR");
	char path[PATH_MAX + 64], cmd[3 * PATH_MAX];

	snprintf(opsctx_dir, sizeof(opsctx_dir), "%s/fidx-opsctx-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(opsctx_dir) == NULL) {
		perror("opsctx: mkdtemp");
		opsctx_dir[0] = '\0';
		return -1;
	}
	if (!opsctx_exit_set) {
		/*
		 * libgit2 first (repo.c starts it once, never undone), so
		 * that OpenSSL, which it starts, registers its own atexit
		 * cleanup before ours: ours then runs first, and the threads
		 * it joins free their OpenSSL state while OpenSSL is there
		 * (else 904 bytes of it leak per thread that used it).
		 */
		git_libgit2_init();
		atexit(opsctx_atexit);
		opsctx_exit_set = true;
	}
	snprintf(opsctx_tree, sizeof(opsctx_tree), "%s/tree", opsctx_dir);
	snprintf(opsctx_repo, sizeof(opsctx_repo), "%s/repo", opsctx_dir);
	snprintf(opsctx_file, sizeof(opsctx_file), "%s/src/main.c",
	    opsctx_tree);
	snprintf(opsctx_sock, sizeof(opsctx_sock), "%s/s.sock", opsctx_dir);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", opsctx_tree, files[i]);
		/* mkdir -p of its directory. */
		for (char *p = path + strlen(opsctx_dir) + 1; *p; p++)
			if (*p == '/') {
				*p = '\0';
				mkdir(path, 0700);
				*p = '/';
			}
		if (opsctx_write_file(path, "x\n") == -1) {
			perror(path);
			return -1;
		}
	}
	mkdir(opsctx_repo, 0700);
	snprintf(path, sizeof(path), "%s/sub", opsctx_repo);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/sub/d.txt", opsctx_repo);
	opsctx_write_file(path, "d\n");
	snprintf(path, sizeof(path), "%s/a.txt", opsctx_repo);
	opsctx_write_file(path, "a\n");
	snprintf(path, sizeof(path), "%s/c.txt", opsctx_repo);
	opsctx_write_file(path, "c\n");
	/* A repository with a commit, a change and an untracked file. */
	snprintf(cmd, sizeof(cmd), "cd '%s' && git init -q && "
	    "git -c user.email=f@example.org -c user.name=f add a.txt c.txt "
	    "sub && git -c user.email=f@example.org -c user.name=f commit "
	    "-qm init && echo more >>c.txt && echo b >b.txt", opsctx_repo);
	if (system(cmd) != 0)
		fprintf(stderr, "opsctx: git failed: %s is a plain directory\n",
		    opsctx_repo);
	return 0;
}

/* Every "%T", "%G" and "%F" replaced; NULL past a request line. */
static char *
opsctx_subst(const char *in, size_t n, size_t *outlen)
{
	char *out = malloc(OPSCTX_MAX_BYTES + 1);
	size_t k = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *rep = NULL;
		size_t rl;

		if (in[i] == '%' && i + 1 < n)
			rep = in[i + 1] == 'T' ? opsctx_tree :
			    in[i + 1] == 'G' ? opsctx_repo :
			    in[i + 1] == 'F' ? opsctx_file : NULL;
		rl = rep != NULL ? strlen(rep) : 1;
		if (k + rl > OPSCTX_MAX_BYTES) {
			free(out);
			return NULL;
		}
		if (rep != NULL) {
			memcpy(out + k, rep, rl);
			i++;
		} else {
			out[k] = in[i];
		}
		k += rl;
	}
	*outlen = k;
	return out;
}

/* One answer line: the reply sink's checks. */
static void
opsctx_answer(struct opsctx_x *x, const char *line, size_t len)
{
	json_t *o, *ok, *err, *code, *id;
	bool good = false;

	x->r->answers++;
	/* OPSCTX_VERBOSE=1: every answer on stderr, to see what a test did. */
	if (opsctx_verbose)
		fprintf(stderr, "opsctx: < %.*s\n", (int)(len > 300 ? 300 :
		    len), line);
	/* The sink's own parsing is not an allocation under test. */
	alloc_exempt(true);
	o = json_loadb(line, len, 0, NULL);
	alloc_exempt(false);
	if (o == NULL && len == strlen(PROTO_NO_MEMORY_LINE) - 1 &&
	    memcmp(line, PROTO_NO_MEMORY_LINE, len) == 0) {
		/* The answer that needs no allocation (and no parse). */
		x->r->no_memory++;
		return;
	}
	if (o == NULL) {
		/* Out of memory in the sink itself: no verdict on the line. */
		x->r->bad_lines++;
		fprintf(stderr, "opsctx: not JSON: %.*s\n", (int)(len > 200 ?
		    200 : len), line);
		return;
	}
	ok = json_object_get(o, "ok");
	id = json_object_get(o, "id");
	if (json_is_true(ok)) {
		good = true;
		if (json_is_string(id) && strcmp(json_string_value(id),
		    OPSCTX_MARKER) == 0) {
			x->r->marker = true;
			loop_stop(opsctx_d.loop);
		}
	} else if (json_is_false(ok)) {
		err = json_object_get(o, "error");
		code = json_object_get(err, "code");
		for (int c = 0; c < PROTO_E_COUNT && json_is_string(code); c++)
			if (strcmp(json_string_value(code),
			    proto_err_name((enum proto_err)c)) == 0) {
				good = true;
				if (c == PROTO_E_NO_MEMORY)
					x->r->no_memory++;
			}
		if (json_is_string(id) && strcmp(json_string_value(id),
		    OPSCTX_MARKER) == 0)
			loop_stop(opsctx_d.loop);
	}
	if (!good) {
		x->r->bad_lines++;
		fprintf(stderr, "opsctx: bad answer: %.*s\n", (int)(len > 200 ?
		    200 : len), line);
	}
	alloc_exempt(true);
	json_decref(o);
	alloc_exempt(false);
}

static void
opsctx_event(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct opsctx_x *x = io->arg;
	char buf[65536];
	ssize_t n;

	(void)events;
	while (x->off < x->outlen) {
		n = write(x->fd, x->out + x->off, x->outlen - x->off);
		if (n > 0) {
			x->off += (size_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		/* Closed under us: what is left to read says why. */
		x->off = x->outlen;
	}
	if (x->off == x->outlen && (io->events & LOOP_WRITE))
		loop_io_set(l, io, LOOP_READ);
	for (;;) {
		n = read(x->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			x->r->eof = true;
			loop_stop(l);
			return;
		}
		if (x->inlen + (size_t)n > x->incap) {
			size_t cap = (x->inlen + (size_t)n) * 2;
			char *p = realloc(x->in, cap);

			if (p == NULL)
				abort();
			x->in = p;
			x->incap = cap;
		}
		memcpy(x->in + x->inlen, buf, (size_t)n);
		x->inlen += (size_t)n;
		for (char *nl; (nl = memchr(x->in, '\n', x->inlen)) != NULL;) {
			size_t len = (size_t)(nl - x->in);

			opsctx_answer(x, x->in, len);
			memmove(x->in, nl + 1, x->inlen - len - 1);
			x->inlen -= len + 1;
		}
	}
}

static void
opsctx_deadline(struct loop *l, struct loop_timer *t)
{
	struct opsctx_x *x = t->arg;

	x->r->timed_out = true;
	loop_stop(l);
}

static void
opsctx_halt(struct loop *l, struct loop_timer *t)
{
	(void)t;
	loop_stop(l);
}

static uint64_t
opsctx_closures(void)
{
	struct server_stats ss;

	server_get_stats(opsctx_d.server, &ss);
	return ss.count.clients_dropped + ss.count.lines_too_long;
}

/* The bytes as they are, then the marker: one connection. */
static int
opsctx_run(const char *bytes, size_t n, int deadline_ms,
    struct opsctx_result *r)
{
	/*
	 * Twice: when an injected allocation failure lands on the first
	 * (answered no_memory, so without its id), the second is answered.
	 */
	static const char marker[] = "\n{\"op\":\"ping\",\"id\":\""
	    OPSCTX_MARKER "\"}\n{\"op\":\"ping\",\"id\":\"" OPSCTX_MARKER
	    "\"}\n";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct opsctx_x x = { .fd = -1, .r = r };
	uint64_t closures = opsctx_closures();
	char *out;

	memset(r, 0, sizeof(*r));
	if ((out = malloc(n + sizeof(marker))) == NULL)
		return -1;
	memcpy(out, bytes, n);
	memcpy(out + n, marker, sizeof(marker) - 1);
	x.out = out;
	x.outlen = n + sizeof(marker) - 1;
	strcpy(sa.sun_path, opsctx_sock);
	if ((x.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(x.fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    fcntl(x.fd, F_SETFL, O_NONBLOCK) == -1) {
		perror("opsctx: connect");
		if (x.fd != -1)
			close(x.fd);
		free(out);
		return -1;
	}
	if (loop_io_start(opsctx_d.loop, &x.io, x.fd, LOOP_READ | LOOP_WRITE,
	    opsctx_event, &x) == -1) {
		close(x.fd);
		free(out);
		return -1;
	}
	loop_timer_start(opsctx_d.loop, &x.deadline, (uint64_t)deadline_ms, 0,
	    opsctx_deadline, &x);
	loop_run(opsctx_d.loop);
	loop_timer_stop(opsctx_d.loop, &x.deadline);
	loop_io_stop(opsctx_d.loop, &x.io);
	close(x.fd);
	free(x.in);
	free(out);
	r->stopped = opsctx_d.stopping;
	r->dropped = opsctx_closures() - closures;
	return 0;
}

int
opsctx_start(void)
{
	struct fidx_err err = { "" };
	struct fidxd_config cfg;
	struct opsctx_result r;
	char add[3 * PATH_MAX];
	sigset_t none;
	int lfd, sigfd;

	if (opsctx_up)
		return 0;
	opsctx_verbose = getenv("OPSCTX_VERBOSE") != NULL;
	if (opsctx_dir[0] == '\0' && opsctx_make() == -1)
		return -1;
	unlink(opsctx_sock);
	if ((lfd = server_bind(opsctx_sock, &err)) == -1) {
		fprintf(stderr, "opsctx: %s\n", err.msg);
		return -1;
	}
	/* As fidxd does: a peer gone is a write error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	if ((sigfd = signalfd(-1, &none, SFD_NONBLOCK | SFD_CLOEXEC)) == -1) {
		perror("opsctx: signalfd");
		close(lfd);
		return -1;
	}
	/* main.c's defaults, smaller where an input could make work. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.srv.max_clients = 16;
	cfg.srv.max_line = FIDX_MAX_LINE_DEFAULT;
	cfg.srv.max_output = 16 * 1024 * 1024;
	cfg.proj.max_projects = 4;
	cfg.proj.max_files = 2000;
	cfg.proj.max_index_bytes = 16 * 1024 * 1024;
	cfg.proj.walkers = 1;
	cfg.proj.walk_threads = 1;
	cfg.proj.max_pending = 1024;
	cfg.proj.max_watches = 4096;
	cfg.proj.settle_max_ms = 20;
	cfg.proj.degraded_rebuild_ms = FIDX_DEGRADED_REBUILD_MS_DEFAULT;
	visits_limits_default(&cfg.visits);
	gitcache_limits_default(&cfg.git);
	cfg.changes.max_entries = 1024;
	cfg.changes.max_bytes = 64 * 1024;
	cfg.threads = 2;
	cfg.max_queued_queries = 8;
	cfg.inline_max_files = SEARCH_SPLIT_MIN;
	cfg.narrow_bytes = FIDX_NARROW_BYTES_DEFAULT;
	cfg.narrow_total_bytes = FIDX_NARROW_TOTAL_BYTES_DEFAULT;
	cfg.wait_ms = 300;
	cfg.sock_path = opsctx_sock;
	cfg.visits_file = NULL;
	if (fidxd_init(&opsctx_d, &cfg, lfd, sigfd, &err) == -1) {
		fprintf(stderr, "opsctx: %s\n", err.msg);
		return -1;
	}
	opsctx_up = true;
	snprintf(add, sizeof(add), "{\"op\":\"add\",\"root\":\"%s\","
	    "\"wait\":true}\n{\"op\":\"add\",\"root\":\"%s\",\"wait\":true}",
	    opsctx_tree, opsctx_repo);
	if (opsctx_run(add, strlen(add), 60000, &r) == -1 || !r.marker ||
	    opsctx_d.reg.n != 2) {
		fprintf(stderr, "opsctx: the projects were not added\n");
		opsctx_stop();
		return -1;
	}
	opsctx_projects = opsctx_d.reg.n;
	return 0;
}

void
opsctx_stop(void)
{
	struct loop_timer t = { 0 };

	if (!opsctx_up)
		return;
	/* fidxd_run's ending (parked requests told, workers joined) after
	 * one turn of the loop. */
	loop_timer_start(opsctx_d.loop, &t, 0, 0, opsctx_halt, NULL);
	fidxd_run(&opsctx_d);
	loop_timer_stop(opsctx_d.loop, &t);
	fidxd_release(&opsctx_d);
	unlink(opsctx_sock);
	opsctx_up = false;
}

int
opsctx_exchange(const char *bytes, size_t n, int deadline_ms,
    struct opsctx_result *r)
{
	size_t len;
	char *in;
	int rc;

	if (opsctx_start() == -1)
		return -1;
	if ((in = opsctx_subst(bytes, n, &len)) == NULL)
		return -1;
	rc = opsctx_run(in, len, deadline_ms, r);
	free(in);
	if (rc == 0 && (r->stopped || opsctx_d.reg.n != opsctx_projects))
		opsctx_stop();
	return rc;
}

struct fidxd *
opsctx_daemon(void)
{
	return opsctx_up ? &opsctx_d : NULL;
}
