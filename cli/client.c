/*
 * client.c - see client.h.
 *
 * Start-up follows tmux's client_connect: try the socket; if nobody
 * listens, take a lock beside it and try again (another client may have
 * started fidxd meanwhile); if still nobody, run fidxd. Its first process
 * exits only once the socket listens (0) or on an error such as "already
 * running" (2, said on stderr), so a bounded number of connects follows.
 */
#include "client.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../common/proto.h"
#include "../common/shquote.h"

#define CLIENT_FIRST_BUF (64u * 1024)
#define CLIENT_HINT "is build/fidxd built? run make"

/* "fidx --socket PATH", PATH one shell word (shquote), to be pasted. */
static void
client_set_cmd(struct client *c)
{
	size_t at = (size_t)snprintf(c->cmd, sizeof(c->cmd), "fidx --socket ");

	shquote(c->cmd + at, sizeof(c->cmd) - at, c->path);
}

int
client_init(struct client *c, const char *path, struct fidx_err *err)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	strcpy(c->cmd, "fidx");
	if (path == NULL)
		return sockpath_default(c->path, sizeof(c->path), err);
	if (strlen(path) > SOCKPATH_MAX)
		return fidx_error(err, "socket path '%s' is longer than %d "
		    "bytes", path, SOCKPATH_MAX);
	strcpy(c->path, path);
	c->explicit_path = true;
	client_set_cmd(c);
	return 0;
}

static void
client_disconnect(struct client *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->used = 0;
	c->line_len = 0;
}

void
client_release(struct client *c)
{
	client_disconnect(c);
	free(c->buf);
	c->buf = NULL;
	c->cap = 0;
}

bool
client_not_running(int saved_errno)
{
	return saved_errno == ENOENT || saved_errno == ECONNREFUSED;
}

int
client_connect(struct client *c, struct fidx_err *err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, saved;

	client_disconnect(c);
	memcpy(sun.sun_path, c->path, strlen(c->path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		saved = errno;
		fidx_error(err, "socket: %s", strerror(saved));
		errno = saved;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		close(fd);
		fidx_error(err, "cannot connect to %s: %s", c->path,
		    strerror(saved));
		errno = saved;
		return -1;
	}
	/* A socket in a directory others can write is not ours to trust. */
	if (sockpath_check_dir(c->path, false, err) == -1) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	c->fd = fd;
	return 0;
}

bool
client_pid_alive(long pid)
{
	char path[64], buf[512], *paren;
	ssize_t n;
	int fd;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	if ((paren = strrchr(buf, ')')) == NULL || paren[1] == '\0')
		return true;
	return paren[2] != 'Z' && paren[2] != 'X';
}

/*
 * Reads the pid file rather than testing its lock: a test lock, however
 * brief, could make a starting fidxd think another one runs. A pid
 * left by a crash is told apart by the process's name.
 */
long
client_daemon_pid(const struct client *c)
{
	char path[PATH_MAX], buf[64];
	long pid;
	ssize_t n;
	char *end;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s.pid", c->path) >=
	    sizeof(path) ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') ||
	    !client_pid_alive(pid))
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strcmp(buf, "fidxd\n") == 0 ? pid : 0;
}

int
client_connect_live(struct client *c, long *pid, struct fidx_err *err)
{
	struct stat st;
	int saved;
	long p;

	if (pid != NULL)
		*pid = 0;
	if (client_connect(c, err) == 0)
		return 0;
	saved = errno;
	if (!client_not_running(saved) || (p = client_daemon_pid(c)) == 0) {
		errno = saved;
		return -1;
	}
	/* fidxd leaves a file that is not a socket alone: no use waiting. */
	for (int i = 0; i < CLIENT_REBIND_TRIES &&
	    (lstat(c->path, &st) == -1 || S_ISSOCK(st.st_mode)); i++) {
		client_pause();
		if (client_connect(c, err) == 0)
			return 0;
		if (!client_not_running(errno))
			return -1;
	}
	if (pid != NULL)
		*pid = p;
	fidx_error(err, "fidxd (pid %ld) runs but does not answer on %s; "
	    "`%s daemon stop` stops it", p, c->path, c->cmd);
	errno = ENOTCONN;
	return -1;
}

/* The fidxd beside this fidx binary, if there is one. */
static int
client_sibling_daemon(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	char *slash;

	if (n <= 0 || (size_t)n >= size - 1)
		return -1;
	buf[n] = '\0';
	if ((slash = strrchr(buf, '/')) == NULL ||
	    (size_t)(slash + 1 - buf) + sizeof("fidxd") > size)
		return -1;
	strcpy(slash + 1, "fidxd");
	return access(buf, X_OK);
}

/*
 * Child side of client_spawn: stdin and stdout on /dev/null (a daemon
 * must not hold a pipe its caller waits on), stderr kept for the
 * daemon's errors. An exec failure is written to errfd as an int.
 */
static _Noreturn void
client_exec_daemon(const char *exe, bool sibling, const struct client *c,
    int errfd)
{
	char *argv[4] = { (char *)exe, NULL, NULL, NULL };
	int null, e;

	if ((null = open("/dev/null", O_RDWR)) != -1) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	if (c->explicit_path) {
		argv[1] = "--socket";
		argv[2] = (char *)c->path;
	}
	if (sibling)
		execv(exe, argv);
	else
		execvp(exe, argv);
	e = errno;
	if (write(errfd, &e, sizeof(e)) == -1)
		_exit(127);
	_exit(127);
}

/*
 * Runs fidxd and waits for its first process. Returns its exit status
 * (0 or the daemon's error status), or -1 with err set when it could not
 * be run or died of a signal.
 */
static int
client_spawn(const struct client *c, struct fidx_err *err)
{
	char exe[PATH_MAX];
	bool sibling = client_sibling_daemon(exe, sizeof(exe)) == 0;
	int pfd[2], st, e = 0;
	ssize_t r;
	pid_t pid;

	if (!sibling)
		strcpy(exe, "fidxd");
	if (pipe2(pfd, O_CLOEXEC) == -1)
		return fidx_error(err, "cannot start fidxd: pipe: %s",
		    strerror(errno));
	fflush(NULL);
	if ((pid = fork()) == -1) {
		e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return fidx_error(err, "cannot start fidxd: fork: %s",
		    strerror(e));
	}
	if (pid == 0) {
		close(pfd[0]);
		client_exec_daemon(exe, sibling, c, pfd[1]);
	}
	close(pfd[1]);
	/* The pipe closes on a successful exec: no bytes means it ran. */
	do
		r = read(pfd[0], &e, sizeof(e));
	while (r == -1 && errno == EINTR);
	close(pfd[0]);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return fidx_error(err, "cannot start fidxd: waitpid: "
			    "%s", strerror(errno));
	if (r == (ssize_t)sizeof(e))
		return fidx_error(err, "cannot start fidxd: %s: %s; "
		    CLIENT_HINT, exe, strerror(e));
	if (WIFSIGNALED(st))
		return fidx_error(err, "cannot start fidxd: %s died of "
		    "signal %d", exe, WTERMSIG(st));
	return WEXITSTATUS(st);
}

void
client_pause(void)
{
	struct timespec ts = { 0, CLIENT_CONNECT_PAUSE_MS * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Takes the start-up lock beside the socket (making the socket's private
 * directory if needed). Returns its fd, or -1 when it cannot be had: then
 * we start without it, as tmux does, and fidxd's own "already running"
 * check settles a race.
 */
static int
client_lock(const struct client *c)
{
	char lock[PATH_MAX];
	int fd;

	if (sockpath_check_dir(c->path, true, NULL) == -1 ||
	    (size_t)snprintf(lock, sizeof(lock), "%s.lock", c->path) >=
	    sizeof(lock) ||
	    (fd = open(lock, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return -1;
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Connects, bounded in time, to a daemon that just ran with status. */
static int
client_connect_new(struct client *c, int status, struct fidx_err *err)
{
	for (int i = 0; i < CLIENT_CONNECT_TRIES; i++) {
		if (client_connect(c, err) == 0)
			return 0;
		if (!client_not_running(errno))
			return -1;
		client_pause();
	}
	if (status != 0)
		return fidx_error(err, "cannot start fidxd: it exited with "
		    "status %d (its message is above)", status);
	return fidx_error(err, "fidxd started but %s accepts no connections "
	    "after %d ms", c->path,
	    CLIENT_CONNECT_TRIES * CLIENT_CONNECT_PAUSE_MS);
}

int
client_connect_or_start(struct client *c, bool *started,
    struct fidx_err *err)
{
	int status, lockfd, rc = -1;

	if (started != NULL)
		*started = false;
	if (client_connect_live(c, NULL, err) == 0)
		return 0;
	if (!client_not_running(errno))
		return -1;
	/*
	 * Lock, then connect again: another client may have started fidxd
	 * while we waited for the lock (tmux's client_connect).
	 */
	if ((lockfd = client_lock(c)) != -1) {
		if (client_connect(c, err) == 0) {
			rc = 0;
			goto out;
		}
		if (!client_not_running(errno))
			goto out;
	}
	if ((status = client_spawn(c, err)) == -1 ||
	    client_connect_new(c, status, err) == -1)
		goto out;
	if (started != NULL)
		*started = status == 0;
	rc = 0;
out:
	if (lockfd != -1)
		close(lockfd);
	return rc;
}

/* Sends all of p; -1 with errno set (not reported) if the socket fails. */
static int
client_write_all(struct client *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Reads until buf holds a whole line; sets line_len. quiet: failures
 * are not reported (the caller has a better message).
 */
static int
client_read_line(struct client *c, bool quiet)
{
	size_t scanned = 0;
	char *nl, *nbuf;

	for (;;) {
		ssize_t r;

		nl = c->len > scanned ? memchr(c->buf + scanned, '\n',
		    c->len - scanned) : NULL;
		if (nl != NULL) {
			c->line_len = (size_t)(nl - c->buf);
			c->used = c->line_len + 1;
			return 0;
		}
		scanned = c->len;
		if (c->len == c->cap) {
			size_t ncap = c->cap ? c->cap * 2 : CLIENT_FIRST_BUF;

			if (c->cap >= CLIENT_MAX_RESPONSE) {
				log_warnx("the response from fidxd is longer "
				    "than %u MiB; ask for fewer results "
				    "(--limit)", CLIENT_MAX_RESPONSE >> 20);
				return -1;
			}
			if (ncap > CLIENT_MAX_RESPONSE)
				ncap = CLIENT_MAX_RESPONSE;
			if ((nbuf = fidx_reallocarray(c->buf, ncap, 1)) ==
			    NULL) {
				log_warn("reading the response from fidxd");
				return -1;
			}
			c->buf = nbuf;
			c->cap = ncap;
		}
		r = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			if (!quiet)
				log_warn("reading from fidxd on %s", c->path);
			return -1;
		}
		if (r == 0) {
			if (!quiet)
				log_warnx("fidxd closed the connection "
				    "without an answer");
			return -1;
		}
		c->len += (size_t)r;
	}
}

/*
 * The daemon's message in the CLI's words: each "fidx SUBCOMMAND" hint
 * spelled as c's command, so that it names --socket when a non-default
 * one is in use, and the field "timeout_ms" as the flag --timeout.
 */
static void
client_hint_socket(const struct client *c, const char *msg, char *buf,
    size_t size)
{
	static const char *const words[] = { "ls", "add", "rm", "reindex",
	    "stats", "daemon", "visit" };
	static const char field[] = "\"timeout_ms\"";
	size_t at = 0;

	while (*msg != '\0' && at + 1 < size) {
		bool hint = strncmp(msg, "fidx ", 5) == 0;

		/* The CLI's name for the protocol's "timeout_ms". */
		if (strncmp(msg, field, sizeof(field) - 1) == 0) {
			at += (size_t)snprintf(buf + at, size - at,
			    "--timeout SECONDS");
			if (at >= size)
				at = size - 1;
			msg += sizeof(field) - 1;
			continue;
		}

		for (size_t i = 0; hint && i < sizeof(words) / sizeof(*words);
		    i++) {
			size_t n = strlen(words[i]);

			/* strchr finds the NUL too: a hint may end msg. */
			if (strncmp(msg + 5, words[i], n) == 0 &&
			    strchr(" )`'.,;", msg[5 + n]) != NULL)
				break;
			if (i + 1 == sizeof(words) / sizeof(*words))
				hint = false;
		}
		if (hint && c->explicit_path) {
			at += (size_t)snprintf(buf + at, size - at, "%s ",
			    c->cmd);
			if (at >= size)
				at = size - 1;
			msg += 5;
			continue;
		}
		buf[at++] = *msg++;
	}
	buf[at] = '\0';
}

static void
client_report_error(struct client *c, json_t *resp)
{
	json_t *e = json_object_get(resp, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));
	char text[1024];

	snprintf(c->error_code, sizeof(c->error_code), "%s", code ? code :
	    "");
	client_hint_socket(c, msg ? msg : "fidxd reported an error", text,
	    sizeof(text));
	log_warnx("%s (%s)", text, code ? code : "no code");
}

int
client_request(struct client *c, json_t *req, json_t **resp)
{
	json_error_t jerr;
	json_t *r;
	char *text;
	int rc;

	*resp = NULL;
	c->error_code[0] = '\0';
	if (c->fd == -1)
		fatalx("client_request without a connection");
	/* Drop the previous answer; keep any bytes read past it. */
	if (c->used > 0) {
		memmove(c->buf, c->buf + c->used, c->len - c->used);
		c->len -= c->used;
		c->used = 0;
		c->line_len = 0;
	}
	if ((text = json_dumps(req, JSON_COMPACT)) == NULL) {
		log_warnx("out of memory building a request");
		return -1;
	}
	rc = client_write_all(c, text, strlen(text));
	free(text);
	if (rc == 0)
		rc = client_write_all(c, "\n", 1);
	if (rc == -1) {
		int saved = errno;

		/*
		 * A daemon that refuses a client (over --max-clients, or
		 * stopping) writes why and closes, often before our request
		 * is sent: its line is waiting, and says more than EPIPE.
		 */
		if ((saved != EPIPE && saved != ECONNRESET) ||
		    client_read_line(c, true) == -1) {
			errno = saved;
			log_warn("writing to fidxd on %s", c->path);
			return -1;
		}
	} else if (client_read_line(c, false) == -1) {
		return -1;
	}
	r = json_loadb(c->buf, c->line_len, 0, &jerr);
	if (!json_is_object(r)) {
		log_warnx("fidxd answered with a line that is not a JSON "
		    "object: %s", r ? "not an object" : jerr.text);
		json_decref(r);
		return -1;
	}
	if (!json_is_true(json_object_get(r, "ok"))) {
		client_report_error(c, r);
		json_decref(r);
		return -1;
	}
	*resp = r;
	return 0;
}

int
client_send(struct client *c, json_t *req, struct fidx_err *err)
{
	char *text;
	int rc;

	if (c->fd == -1)
		fatalx("client_send without a connection");
	if ((text = json_dumps(req, JSON_COMPACT)) == NULL)
		return fidx_error(err, "out of memory building a request");
	rc = client_write_all(c, text, strlen(text));
	free(text);
	if (rc == 0)
		rc = client_write_all(c, "\n", 1);
	if (rc == -1)
		return fidx_error(err, "fidxd on %s went away (writing: %s)",
		    c->path, strerror(errno));
	return 0;
}

/* Drops the line handed out last, keeping any bytes read past it. */
static void
client_consume(struct client *c)
{
	if (c->used == 0)
		return;
	memmove(c->buf, c->buf + c->used, c->len - c->used);
	c->len -= c->used;
	c->used = 0;
	c->line_len = 0;
}

int
client_receive(struct client *c, json_t **resp, struct fidx_err *err)
{
	json_error_t jerr;
	char *nl, *nbuf;
	ssize_t r;
	json_t *o;

	*resp = NULL;
	client_consume(c);
	while ((nl = c->len > 0 ? memchr(c->buf, '\n', c->len) : NULL) ==
	    NULL) {
		if (c->len == c->cap) {
			size_t ncap = c->cap ? c->cap * 2 : CLIENT_FIRST_BUF;

			if (c->cap >= CLIENT_MAX_RESPONSE)
				return fidx_error(err, "a response from fidxd "
				    "is longer than %u MiB",
				    CLIENT_MAX_RESPONSE >> 20);
			if (ncap > CLIENT_MAX_RESPONSE)
				ncap = CLIENT_MAX_RESPONSE;
			if ((nbuf = fidx_reallocarray(c->buf, ncap, 1)) ==
			    NULL)
				return fidx_error(err, "out of memory reading "
				    "from fidxd");
			c->buf = nbuf;
			c->cap = ncap;
		}
		r = recv(c->fd, c->buf + c->len, c->cap - c->len,
		    MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (r == -1)
			return fidx_error(err, "fidxd on %s went away "
			    "(reading: %s)", c->path, strerror(errno));
		if (r == 0)
			return fidx_error(err, "fidxd on %s went away (it "
			    "closed the connection)", c->path);
		c->len += (size_t)r;
	}
	c->line_len = (size_t)(nl - c->buf);
	c->used = c->line_len + 1;
	o = json_loadb(c->buf, c->line_len, 0, &jerr);
	if (!json_is_object(o)) {
		json_decref(o);
		return fidx_error(err, "fidxd answered with a line that is "
		    "not a JSON object");
	}
	*resp = o;
	return 1;
}

const char *
client_response_line(const struct client *c, size_t *len)
{
	*len = c->line_len;
	return c->buf;
}

int
client_root_check(const char *root, struct fidx_err *err)
{
	if (!proto_utf8_valid(root, strlen(root)))
		return fidx_error(err, "%s: the protocol names a project by a "
		    "JSON string, so its root must be valid UTF-8", root);
	return 0;
}

/*
 * libgit2, loaded when a root must be found: it pulls in some twenty
 * libraries whose dynamic linking cost every `fidx` start about 3 ms,
 * a tenth of a `fidx filter` run, which never needs them.
 */
#define CLIENT_LIBGIT2 "libgit2.so.1.5"

struct client_git {
	int (*init)(void);
	int (*shutdown)(void);
	int (*open_ext)(git_repository **, const char *, unsigned int,
	    const char *);
	int (*discover)(git_buf *, const char *, int, const char *);
	void (*buf_dispose)(git_buf *);
	const char *(*workdir)(const git_repository *);
	void (*free)(git_repository *);
	const git_error *(*last)(void);
};

/* Fills g from a freshly loaded libgit2; the handle, or NULL. */
static void *
client_git_load(struct client_git *g)
{
	void *h = dlopen(CLIENT_LIBGIT2, RTLD_NOW | RTLD_LOCAL);

	if (h == NULL)
		return NULL;
	*(void **)&g->init = dlsym(h, "git_libgit2_init");
	*(void **)&g->shutdown = dlsym(h, "git_libgit2_shutdown");
	*(void **)&g->open_ext = dlsym(h, "git_repository_open_ext");
	*(void **)&g->discover = dlsym(h, "git_repository_discover");
	*(void **)&g->buf_dispose = dlsym(h, "git_buf_dispose");
	*(void **)&g->workdir = dlsym(h, "git_repository_workdir");
	*(void **)&g->free = dlsym(h, "git_repository_free");
	*(void **)&g->last = dlsym(h, "git_error_last");
	if (g->init == NULL || g->shutdown == NULL || g->open_ext == NULL ||
	    g->discover == NULL || g->buf_dispose == NULL ||
	    g->workdir == NULL || g->free == NULL || g->last == NULL) {
		dlclose(h);
		return NULL;
	}
	return h;
}

/*
 * Warns when open_ext refused a repository that is there, and says which
 * root is used instead. libgit2 1.5 refuses one owned by another user
 * (git's safe.directory check) with GIT_ENOTFOUND, the code for "no
 * repository" (later ones say GIT_EOWNER), so the two are told apart by
 * discovering it, which checks no owner, as fidxd's repo_refused() does.
 * Silent, the root and the ignore rules would change without a word.
 */
static void
client_git_refused(struct client_git *g, int grc, const char *why)
{
	const char *start = getenv("GIT_DIR");
	char top[PATH_MAX], cwd[PATH_MAX], word[SHQUOTE_SIZE(PATH_MAX)];
	git_buf gitdir = { 0 };
	struct stat st;
	size_t len;

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		strcpy(cwd, ".");
	/* The same search as open_ext's FROM_ENV: GIT_DIR, the ceilings. */
	if (g->discover(&gitdir, start != NULL && start[0] != '\0' ? start :
	    ".", 0, getenv("GIT_CEILING_DIRECTORIES")) < 0 ||
	    gitdir.ptr == NULL) {
		if (grc != GIT_ENOTFOUND)
			log_warnx("ignoring the git repository here: %s; the "
			    "project root is the current directory, %s (or "
			    "pass --root)", why, cwd);
		g->buf_dispose(&gitdir);
		return;
	}
	/* ".../top/.git/": safe.directory names the work tree, top. */
	len = strlen(gitdir.ptr);
	while (len > 1 && gitdir.ptr[len - 1] == '/')
		len--;
	if (len >= 5 && memcmp(gitdir.ptr + len - 5, "/.git", 5) == 0)
		len -= 5;
	snprintf(top, sizeof(top), "%.*s", (int)len, gitdir.ptr);
	shquote(word, sizeof(word), top);
	if (grc == GIT_EOWNER || (stat(top, &st) == 0 && st.st_uid !=
	    geteuid()) || (stat(gitdir.ptr, &st) == 0 && st.st_uid !=
	    geteuid()))
		log_warnx("the git repository %s is owned by another user, so, "
		    "as git does, fidx does not use it: the project root is "
		    "the current directory, %s, and its ignore rules are not "
		    "applied (to trust it: git config --global --add "
		    "safe.directory %s; or pass --root)", top, cwd, word);
	else
		log_warnx("the git repository %s cannot be opened (%s): the "
		    "project root is the current directory, %s (or pass "
		    "--root)", top, why, cwd);
	g->buf_dispose(&gitdir);
}

/* The git work tree enclosing the current directory, into buf. */
static int
client_git_root(char *buf, size_t size)
{
	struct client_git g;
	git_repository *repo = NULL;
	const git_error *e;
	const char *wd;
	char why[256];
	int rc = -1, grc;
	void *h;

	if ((h = client_git_load(&g)) == NULL) {
		log_warnx("cannot load %s (%s); using the current directory "
		    "as the root (or pass --root)", CLIENT_LIBGIT2, dlerror());
		return -1;
	}
	g.init();
	/* FROM_ENV: GIT_DIR, GIT_WORK_TREE, GIT_CEILING_DIRECTORIES, as git. */
	grc = g.open_ext(&repo, NULL, GIT_REPOSITORY_OPEN_FROM_ENV, NULL);
	if (grc == 0 && (wd = g.workdir(repo)) != NULL &&
	    strlen(wd) < size && realpath(wd, buf) != NULL) {
		rc = 0;
	} else if (grc != 0) {
		/* Kept before discovery, which sets libgit2's last error. */
		e = g.last();
		snprintf(why, sizeof(why), "%s", e != NULL && e->message !=
		    NULL ? e->message : "unknown error");
		client_git_refused(&g, grc, why);
	}
	g.free(repo);
	g.shutdown();
	dlclose(h);
	return rc;
}

/* Appends the path's components to buf (absolute), "." and ".." applied. */
static int
client_lexical_join(char *buf, size_t size, const char *path)
{
	size_t len = strlen(buf);

	while (*path != '\0') {
		size_t n = strcspn(path, "/");

		if (n == 0 || (n == 1 && path[0] == '.')) {
			/* nothing */
		} else if (n == 2 && path[0] == '.' && path[1] == '.') {
			while (len > 1 && buf[len - 1] != '/')
				len--;
			if (len > 1)
				len--;
			buf[len] = '\0';
		} else {
			if (len + (len > 1) + n + 1 > size)
				return -1;
			if (len > 1)
				buf[len++] = '/';
			memcpy(buf + len, path, n);
			len += n;
			buf[len] = '\0';
		}
		path += n;
		if (*path == '/')
			path++;
	}
	return 0;
}

int
client_named_root(const char *dir, char *buf, size_t size,
    struct fidx_err *err)
{
	char abs[PATH_MAX], head[PATH_MAX];
	size_t cut;

	if (size < PATH_MAX)
		fatalx("client_named_root: buffer under PATH_MAX");
	if (realpath(dir, buf) != NULL)
		return client_root_check(buf, err);
	if (errno != ENOENT && errno != ENOTDIR)
		return fidx_error(err, "%s: %s", dir, strerror(errno));
	strcpy(abs, "/");
	if (dir[0] != '/' && (getcwd(abs, sizeof(abs)) == NULL ||
	    abs[0] != '/'))
		return fidx_error(err, "%s: the current directory: %s", dir,
		    strerror(errno));
	if (client_lexical_join(abs, sizeof(abs), dir) == -1)
		return fidx_error(err, "%s: path too long", dir);
	/* The deepest parent that exists, resolved; the rest as written. */
	for (cut = strlen(abs); cut > 0; ) {
		while (cut > 0 && abs[cut] != '/')
			cut--;
		memcpy(head, abs, cut);
		head[cut] = '\0';
		if (realpath(cut == 0 ? "/" : head, buf) != NULL)
			break;
		if (cut == 0)
			return fidx_error(err, "%s: %s", dir, strerror(errno));
		cut--;
	}
	if (client_lexical_join(buf, size, abs + cut) == -1)
		return fidx_error(err, "%s: path too long", dir);
	return client_root_check(buf, err);
}

int
client_project_root(const char *dir, char *buf, size_t size,
    struct fidx_err *err)
{
	char tmp[PATH_MAX];
	struct stat st;

	if (size < PATH_MAX)
		fatalx("client_project_root: buffer under PATH_MAX");
	if (dir == NULL) {
		if (client_git_root(buf, size) == 0)
			return client_root_check(buf, err);
		dir = ".";
	}
	if (realpath(dir, tmp) == NULL)
		return fidx_error(err, "%s: %s", dir, strerror(errno));
	if (stat(tmp, &st) == -1 || !S_ISDIR(st.st_mode))
		return fidx_error(err, "%s: not a directory", dir);
	strcpy(buf, tmp);
	return client_root_check(buf, err);
}
