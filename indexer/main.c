/*
 * main.c - fidxd: flags, the single-instance lock, the socket, signals,
 * and handing all of it to the event loop.
 *
 * Start-up order matters for `fidx`, which starts fidxd on demand and
 * waits for its first process: every check that can fail (flags, the
 * socket directory, the lock, bind) happens before the fork, so the first
 * process exits 2 with a message on stderr, or 0 once the socket accepts
 * connections. The pidfile `<socket>.pid` is also the lock: a live fidxd
 * holds flock() on it, and a crashed one's lock went with its process, so
 * a leftover socket file is known to be stale and is replaced. The
 * detached daemon closes every descriptor it inherited but its own.
 * Started by systemd's fidxd.socket, it takes the listening socket it is
 * given (LISTEN_FDS, fd 3) instead of binding, and leaves the socket
 * file, which is systemd's, where it is.
 */
#include "../common/limits.h"
#include "../common/log.h"
#include "../common/proto.h"
#include "../common/regex.h"
#include "../common/shquote.h"
#include "../common/size.h"
#include "../common/sockpath.h"
#include "fidxd.h"
#include "repo.h"
#include "search.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Parked requests (add --wait, a first query) give up after this. */
#define FIDXD_WAIT_MS_DEFAULT 10000

struct fidxd_opts {
	bool foreground;
	int verbose;
	char sock[SOCKPATH_MAX + 1];
	bool explicit_sock;
	struct project_limits proj;
	struct server_limits srv;
	uint32_t wait_ms;
	int threads;
	size_t max_queued_queries;
	size_t inline_max_files;
	size_t narrow_bytes, narrow_total_bytes;
	int worker_nice;
	struct visits_limits visits;
	struct gitcache_limits git;
	struct changelog_limits changes;
	struct repo_lib_limits git_lib;
	size_t max_log;
};

static void
fidxd_usage(FILE *f)
{
	fprintf(f,
"usage: fidxd [--foreground] [--socket PATH] [-v] [limits]\n"
"\n"
"  --foreground            stay attached (for tests and systemd)\n"
"  --socket PATH           listen here (default $FIDX_SOCKET, else\n"
"                          $XDG_RUNTIME_DIR/fidx/sock, else /tmp/fidx-$UID/sock)\n"
"  -v, --verbose           log more (twice: debug)\n"
"  --max-projects N        projects held at once (default %d)\n"
"  --max-files N           files per project (default %d)\n"
"  --max-index-bytes N     index bytes, all projects (default %lluM)\n"
"  --max-clients N         connected clients (default %d)\n"
"  --max-line-bytes N      bytes in a request line (default %d)\n"
"  --max-output-bytes N    queued output per client (default %d)\n"
"  --wait-ms N             how long a request waits for an index (default %d)\n"
"  --walkers N             directory walks at once (default 2)\n"
"  --threads N             threads per query and per walk (default: cores)\n"
"  --max-queued-queries N  queries waiting for the query worker (default %d)\n"
"  --inline-max-files N    indexes smaller than this are queried on the\n"
"                          loop thread, larger ones on the worker (default %d;\n"
"                          0: every query on the worker)\n"
"  --max-narrow-bytes N    a picker connection's kept candidate set, at most\n"
"                          (default %uK; 0: narrowing off)\n"
"  --max-narrow-total-bytes N   and all connections' (default %uM)\n"
"  --worker-nice N         added to the query and git workers' nice value,\n"
"                          0 to 19 (default 0; 19 puts the loop first)\n"
"  --max-visits N          files remembered as visited, in all (default %d)\n"
"  --max-visits-per-project N   and per project (default %d)\n"
"  --git-ttl-ms N          how long a git status is kept (default %d)\n"
"  --max-git-projects N    projects whose git status is kept (default %d)\n"
"  --max-git-bytes N       bytes of git status kept, all projects\n"
"                          (default %uM)\n"
"  --max-git-paths N       paths held in one project's git status\n"
"                          (default %d; the rest are counted)\n"
"  --git-object-cache-bytes N   libgit2's object cache, all repositories\n"
"                          (default %uM)\n"
"  --git-mapped-bytes N    pack-file windows libgit2 maps at once\n"
"                          (default %uM)\n"
"  --watch-queue N         watcher events and changed paths waiting, all\n"
"                          projects (default %d; past it: a full rebuild)\n"
"  --max-watches N         directories watched, all projects (default %d;\n"
"                          past it or the kernel's limit: degraded)\n"
"  --max-changes N         paths in the change log git's monitor hook\n"
"                          reads, all projects (default %d)\n"
"  --max-changes-bytes N   and its bytes (default %uM; past either, the\n"
"                          oldest go: older tokens get everything)\n"
"  --watch-settle-max-ms N the longest a burst of changes waits to be\n"
"                          applied together (default %d; a lone change: at once)\n"
"  --degraded-rebuild-ms N how often a project inotify cannot watch is\n"
"                          walked again (default %u)\n"
"  --max-log-bytes N       the log file of a detached fidxd, before it moves\n"
"                          to fidxd.log.1 (default %uM, at least %d)\n"
"Sizes take a K, M or G suffix. Detached, fidxd logs to fidxd.log in\n"
"$XDG_STATE_HOME/fidx/ (else ~/.local/state/fidx/); --foreground, to stderr.\n",
	    FIDX_MAX_PROJECTS_DEFAULT, FIDX_MAX_FILES_DEFAULT,
	    FIDX_MAX_INDEX_BYTES_DEFAULT >> 20, FIDX_MAX_CLIENTS_DEFAULT,
	    FIDX_MAX_LINE_DEFAULT, FIDX_MAX_OUTPUT_DEFAULT,
	    FIDXD_WAIT_MS_DEFAULT, FIDX_MAX_QUEUED_QUERIES_DEFAULT,
	    SEARCH_SPLIT_MIN, FIDX_NARROW_BYTES_DEFAULT >> 10,
	    FIDX_NARROW_TOTAL_BYTES_DEFAULT >> 20, VISITS_TOTAL_DEFAULT,
	    VISITS_PER_PROJECT_DEFAULT, FIDX_GIT_TTL_MS_DEFAULT,
	    FIDX_MAX_GIT_PROJECTS_DEFAULT, FIDX_MAX_GIT_BYTES_DEFAULT >> 20,
	    FIDX_MAX_GIT_PATHS_DEFAULT, FIDX_GIT_OBJECT_CACHE_DEFAULT >> 20,
	    FIDX_GIT_MAPPED_DEFAULT >> 20, FIDX_WATCH_QUEUE_DEFAULT,
	    FIDX_MAX_WATCHES_DEFAULT, FIDX_MAX_CHANGES_DEFAULT,
	    FIDX_MAX_CHANGES_BYTES_DEFAULT >> 20,
	    FIDX_WATCH_SETTLE_MAX_MS_DEFAULT, FIDX_DEGRADED_REBUILD_MS_DEFAULT,
	    LOG_FILE_MAX_DEFAULT >> 20,
	    LOG_FILE_MIN);
}

/* A positive count or size (size.h: K/M/G suffixes) no larger than max. */
static int
fidxd_num(const char *flag, const char *s, unsigned long long max,
    unsigned long long *out)
{
	if (size_parse(s, 1, max, out) == -1) {
		log_warnx("%s wants a number from 1 to %llu (K, M or G "
		    "multiplies by 1024, 1024^2, 1024^3), not '%s'", flag, max,
		    s);
		return -1;
	}
	return 0;
}

static int
fidxd_parse(int argc, char **argv, struct fidxd_opts *o)
{
	enum {
		O_FG = 256, O_SOCK, O_PROJ, O_FILES, O_IBYTES, O_CLIENTS,
		O_LINE, O_OUT, O_WAIT, O_WALKERS, O_THREADS, O_HELP, O_VERSION,
		O_VISITS, O_VISITS_PROJ, O_LOG_MAX, O_QUEUED, O_INLINE, O_NICE,
		O_GIT_TTL, O_GIT_PROJ, O_GIT_BYTES, O_GIT_PATHS, O_WQUEUE,
		O_GIT_CACHE, O_GIT_MAPPED,
		O_SETTLE, O_DEGRADED, O_WATCHES, O_CHANGES, O_CHANGES_BYTES,
		O_NARROW, O_NARROW_TOTAL,
	};
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, O_FG },
		{ "socket", required_argument, NULL, O_SOCK },
		{ "verbose", no_argument, NULL, 'v' },
		{ "max-projects", required_argument, NULL, O_PROJ },
		{ "max-files", required_argument, NULL, O_FILES },
		{ "max-index-bytes", required_argument, NULL, O_IBYTES },
		{ "max-clients", required_argument, NULL, O_CLIENTS },
		{ "max-line-bytes", required_argument, NULL, O_LINE },
		{ "max-output-bytes", required_argument, NULL, O_OUT },
		{ "wait-ms", required_argument, NULL, O_WAIT },
		{ "walkers", required_argument, NULL, O_WALKERS },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "max-visits", required_argument, NULL, O_VISITS },
		{ "max-visits-per-project", required_argument, NULL,
		    O_VISITS_PROJ },
		{ "max-log-bytes", required_argument, NULL, O_LOG_MAX },
		{ "max-queued-queries", required_argument, NULL, O_QUEUED },
		{ "inline-max-files", required_argument, NULL, O_INLINE },
		{ "max-narrow-bytes", required_argument, NULL, O_NARROW },
		{ "max-narrow-total-bytes", required_argument, NULL,
		    O_NARROW_TOTAL },
		{ "worker-nice", required_argument, NULL, O_NICE },
		{ "git-ttl-ms", required_argument, NULL, O_GIT_TTL },
		{ "max-git-projects", required_argument, NULL, O_GIT_PROJ },
		{ "max-git-bytes", required_argument, NULL, O_GIT_BYTES },
		{ "max-git-paths", required_argument, NULL, O_GIT_PATHS },
		{ "git-object-cache-bytes", required_argument, NULL,
		    O_GIT_CACHE },
		{ "git-mapped-bytes", required_argument, NULL, O_GIT_MAPPED },
		{ "watch-queue", required_argument, NULL, O_WQUEUE },
		{ "max-watches", required_argument, NULL, O_WATCHES },
		{ "max-changes", required_argument, NULL, O_CHANGES },
		{ "max-changes-bytes", required_argument, NULL,
		    O_CHANGES_BYTES },
		{ "watch-settle-max-ms", required_argument, NULL, O_SETTLE },
		{ "degraded-rebuild-ms", required_argument, NULL, O_DEGRADED },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long v;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int ch;

	memset(o, 0, sizeof(*o));
	o->proj.max_projects = FIDX_MAX_PROJECTS_DEFAULT;
	o->proj.max_files = FIDX_MAX_FILES_DEFAULT;
	o->proj.max_index_bytes = FIDX_MAX_INDEX_BYTES_DEFAULT;
	o->proj.walkers = 2;
	o->proj.max_pending = FIDX_WATCH_QUEUE_DEFAULT;
	o->changes.max_entries = FIDX_MAX_CHANGES_DEFAULT;
	o->changes.max_bytes = FIDX_MAX_CHANGES_BYTES_DEFAULT;
	o->proj.max_watches = FIDX_MAX_WATCHES_DEFAULT;
	o->proj.settle_max_ms = FIDX_WATCH_SETTLE_MAX_MS_DEFAULT;
	o->proj.degraded_rebuild_ms = FIDX_DEGRADED_REBUILD_MS_DEFAULT;
	o->srv.max_clients = FIDX_MAX_CLIENTS_DEFAULT;
	o->srv.max_line = FIDX_MAX_LINE_DEFAULT;
	o->srv.max_output = FIDX_MAX_OUTPUT_DEFAULT;
	o->wait_ms = FIDXD_WAIT_MS_DEFAULT;
	o->max_queued_queries = FIDX_MAX_QUEUED_QUERIES_DEFAULT;
	o->inline_max_files = SEARCH_SPLIT_MIN;
	o->narrow_bytes = FIDX_NARROW_BYTES_DEFAULT;
	o->narrow_total_bytes = FIDX_NARROW_TOTAL_BYTES_DEFAULT;
	o->worker_nice = FIDXD_WORKER_NICE;
	visits_limits_default(&o->visits);
	gitcache_limits_default(&o->git);
	o->git_lib.cache_bytes = FIDX_GIT_OBJECT_CACHE_DEFAULT;
	o->git_lib.mapped_bytes = FIDX_GIT_MAPPED_DEFAULT;
	o->max_log = LOG_FILE_MAX_DEFAULT;
	o->threads = cores < 1 ? 1 : cores > SEARCH_MAX_THREADS ?
	    SEARCH_MAX_THREADS : (int)cores;
	while ((ch = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (ch) {
		case O_FG:
			o->foreground = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case O_SOCK:
			if (strlen(optarg) > SOCKPATH_MAX || optarg[0] == '\0') {
				log_warnx("--socket: the path must be 1 to %d "
				    "bytes", SOCKPATH_MAX);
				return -1;
			}
			strcpy(o->sock, optarg);
			o->explicit_sock = true;
			break;
		case O_PROJ:
			if (fidxd_num("--max-projects", optarg,
			    FIDX_MAX_PROJECTS_CEILING, &v))
				return -1;
			o->proj.max_projects = v;
			break;
		case O_FILES:
			if (fidxd_num("--max-files", optarg,
			    FIDX_MAX_FILES_CEILING, &v))
				return -1;
			o->proj.max_files = v;
			break;
		case O_IBYTES:
			if (fidxd_num("--max-index-bytes", optarg,
			    FIDX_MAX_INDEX_BYTES_CEILING, &v))
				return -1;
			o->proj.max_index_bytes = v;
			break;
		case O_CLIENTS:
			if (fidxd_num("--max-clients", optarg,
			    FIDX_MAX_CLIENTS_CEILING, &v))
				return -1;
			o->srv.max_clients = v;
			break;
		case O_LINE:
			/* A maximal query must still fit in a line. */
			if (fidxd_num("--max-line-bytes", optarg,
			    64 << 20, &v))
				return -1;
			if (v < 2 * FIDX_MAX_QUERY) {
				log_warnx("--max-line-bytes must be at least "
				    "%d", 2 * FIDX_MAX_QUERY);
				return -1;
			}
			o->srv.max_line = v;
			break;
		case O_OUT:
			if (fidxd_num("--max-output-bytes", optarg,
			    1ull << 32, &v))
				return -1;
			if (v < 4096) {
				log_warnx("--max-output-bytes must be at least "
				    "4096");
				return -1;
			}
			o->srv.max_output = v;
			break;
		case O_WAIT:
			if (fidxd_num("--wait-ms", optarg, 3600000, &v))
				return -1;
			o->wait_ms = (uint32_t)v;
			break;
		case O_WALKERS:
			if (fidxd_num("--walkers", optarg, 8, &v))
				return -1;
			o->proj.walkers = (int)v;
			break;
		case O_THREADS:
			if (fidxd_num("--threads", optarg, SEARCH_MAX_THREADS,
			    &v))
				return -1;
			o->threads = (int)v;
			break;
		case O_VISITS:
			if (fidxd_num("--max-visits", optarg,
			    VISITS_ENTRIES_CEILING, &v))
				return -1;
			o->visits.total = v;
			break;
		case O_VISITS_PROJ:
			if (fidxd_num("--max-visits-per-project", optarg,
			    VISITS_ENTRIES_CEILING, &v))
				return -1;
			o->visits.per_project = v;
			break;
		case O_QUEUED:
			if (fidxd_num("--max-queued-queries", optarg,
			    FIDX_MAX_QUEUED_QUERIES_CEILING, &v))
				return -1;
			o->max_queued_queries = v;
			break;
		case O_INLINE:
			/* 0 is a setting here: every query on the worker. */
			if (size_parse(optarg, 0, FIDX_MAX_FILES_CEILING,
			    &v) == -1) {
				log_warnx("--inline-max-files wants a number "
				    "from 0 to %llu, not '%s'",
				    (unsigned long long)FIDX_MAX_FILES_CEILING,
				    optarg);
				return -1;
			}
			o->inline_max_files = v;
			break;
		case O_NARROW:
		case O_NARROW_TOTAL:
			/* 0 is a setting here: no narrowing. */
			if (size_parse(optarg, 0, FIDX_NARROW_BYTES_CEILING,
			    &v) == -1) {
				log_warnx("--max-narrow-%sbytes wants a number "
				    "from 0 to %llu, not '%s'",
				    ch == O_NARROW ? "" : "total-",
				    (unsigned long long)
				    FIDX_NARROW_BYTES_CEILING, optarg);
				return -1;
			}
			if (ch == O_NARROW)
				o->narrow_bytes = v;
			else
				o->narrow_total_bytes = v;
			break;
		case O_GIT_TTL:
			if (fidxd_num("--git-ttl-ms", optarg,
			    FIDX_GIT_TTL_MS_CEILING, &v))
				return -1;
			o->git.ttl_ms = v;
			break;
		case O_GIT_PROJ:
			if (fidxd_num("--max-git-projects", optarg,
			    FIDX_MAX_GIT_PROJECTS_CEILING, &v))
				return -1;
			o->git.max_projects = v;
			break;
		case O_GIT_BYTES:
			if (fidxd_num("--max-git-bytes", optarg,
			    FIDX_MAX_GIT_BYTES_CEILING, &v))
				return -1;
			o->git.max_bytes = v;
			break;
		case O_WQUEUE:
			if (fidxd_num("--watch-queue", optarg,
			    FIDX_WATCH_QUEUE_CEILING, &v))
				return -1;
			o->proj.max_pending = v;
			break;
		case O_CHANGES:
			if (fidxd_num("--max-changes", optarg,
			    FIDX_MAX_CHANGES_CEILING, &v))
				return -1;
			o->changes.max_entries = v;
			break;
		case O_CHANGES_BYTES:
			if (fidxd_num("--max-changes-bytes", optarg,
			    FIDX_MAX_CHANGES_BYTES_CEILING, &v))
				return -1;
			o->changes.max_bytes = v;
			break;
		case O_WATCHES:
			if (fidxd_num("--max-watches", optarg,
			    FIDX_MAX_WATCHES_CEILING, &v))
				return -1;
			o->proj.max_watches = v;
			break;
		case O_SETTLE:
			if (fidxd_num("--watch-settle-max-ms", optarg,
			    FIDX_WATCH_SETTLE_MAX_MS_CEILING, &v))
				return -1;
			o->proj.settle_max_ms = (uint32_t)v;
			break;
		case O_DEGRADED:
			if (fidxd_num("--degraded-rebuild-ms", optarg,
			    FIDX_DEGRADED_REBUILD_MS_CEILING, &v))
				return -1;
			o->proj.degraded_rebuild_ms = (uint32_t)v;
			break;
		case O_GIT_PATHS:
			if (fidxd_num("--max-git-paths", optarg,
			    FIDX_MAX_GIT_PATHS_CEILING, &v))
				return -1;
			o->git.max_paths = v;
			break;
		case O_GIT_CACHE:
			if (fidxd_num("--git-object-cache-bytes", optarg,
			    FIDX_GIT_OBJECT_CACHE_CEILING, &v))
				return -1;
			o->git_lib.cache_bytes = v;
			break;
		case O_GIT_MAPPED:
			if (fidxd_num("--git-mapped-bytes", optarg,
			    FIDX_GIT_MAPPED_CEILING, &v))
				return -1;
			o->git_lib.mapped_bytes = v;
			break;
		case O_NICE:
			if (size_parse(optarg, 0, FIDXD_WORKER_NICE_MAX,
			    &v) == -1) {
				log_warnx("--worker-nice wants a number from 0 "
				    "to %d, not '%s'", FIDXD_WORKER_NICE_MAX,
				    optarg);
				return -1;
			}
			o->worker_nice = (int)v;
			break;
		case O_LOG_MAX:
			if (fidxd_num("--max-log-bytes", optarg, SIZE_MAX / 2,
			    &v))
				return -1;
			if (v < LOG_FILE_MIN) {
				log_warnx("--max-log-bytes must be at least %d",
				    LOG_FILE_MIN);
				return -1;
			}
			o->max_log = v;
			break;
		case O_HELP:
			fidxd_usage(stdout);
			exit(0);
		case O_VERSION:
			printf("fidxd %s\n", FIDX_VERSION);
			exit(0);
		default:
			fidxd_usage(stderr);
			return -1;
		}
	}
	/* One walk uses as many threads as one query. */
	o->proj.walk_threads = o->threads < WALK_MAX_THREADS ? o->threads :
	    WALK_MAX_THREADS;
	if (optind != argc) {
		log_warnx("unexpected argument '%s'", argv[optind]);
		fidxd_usage(stderr);
		return -1;
	}
	return 0;
}

/*
 * Takes the lock on <sock>.pid. Returns its fd; -1 with a message when
 * another fidxd holds it or it cannot be had.
 */
static int
fidxd_lock(const char *sock, bool explicit_sock, char *pidpath, size_t size)
{
	char buf[32] = "", word[SHQUOTE_SIZE(SOCKPATH_MAX)];
	ssize_t n;
	int fd;

	if ((size_t)snprintf(pidpath, size, "%s.pid", sock) >= size) {
		log_warnx("socket path too long: %s", sock);
		return -1;
	}
	if ((fd = open(pidpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) == -1) {
		log_warn("%s", pidpath);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	if (errno == EWOULDBLOCK) {
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		shquote(word, sizeof(word), sock);
		log_warnx("already running on %s (pid %s); `fidx%s%s daemon "
		    "stop` stops it", sock, buf[0] ? buf : "unknown",
		    explicit_sock ? " --socket " : "",
		    explicit_sock ? word : "");
	} else {
		log_warn("flock %s", pidpath);
	}
	close(fd);
	return -1;
}

/* Binds and listens on sock, replacing a stale socket file. */
static int
fidxd_listen(const char *sock)
{
	struct fidx_err err = { "" };
	struct stat st;
	int fd;

	/* We hold the lock, so whatever is there belongs to no live fidxd. */
	if (lstat(sock, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_warnx("%s exists and is not a socket; not "
			    "replacing it", sock);
			return -1;
		}
		log_info("replacing the stale socket %s", sock);
		if (unlink(sock) == -1) {
			log_warn("unlink %s", sock);
			return -1;
		}
	}
	if ((fd = server_bind(sock, &err)) == -1)
		log_warnx("%s", err.msg);
	return fd;
}

/*
 * The listening socket systemd passed (sd_listen_fds(3)'s protocol: fd
 * 3, LISTEN_PID our pid, LISTEN_FDS 1), or -1 when there is none; -2
 * with a message when it is not one fidxd can serve. Its path goes in
 * sock; the variables are unset, so nothing we start sees them.
 */
static int
fidxd_listen_activated(char *sock, size_t size)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int on = 0, type = 0, fl;
	socklen_t olen = sizeof(on), tlen = sizeof(type);

	if (pid == NULL || fds == NULL ||
	    strtol(pid, NULL, 10) != (long)getpid())
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (strcmp(fds, "1") != 0) {
		log_warnx("systemd passed LISTEN_FDS=%s; fidxd serves exactly "
		    "one socket (ListenStream= once in fidxd.socket)", fds);
		return -2;
	}
	memset(&sa, 0, sizeof(sa));
	if (getsockname(3, (struct sockaddr *)&sa, &len) == -1 ||
	    sa.sun_family != AF_UNIX || sa.sun_path[0] == '\0' ||
	    getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &on, &olen) == -1 ||
	    !on || getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &tlen) == -1 ||
	    type != SOCK_STREAM) {
		log_warnx("the socket systemd passed (fd 3) is not a listening "
		    "Unix stream socket with a path");
		return -2;
	}
	if (strlen(sa.sun_path) >= size) {
		log_warnx("the socket systemd passed has too long a path");
		return -2;
	}
	strcpy(sock, sa.sun_path);
	/* As server_bind() makes its own: non-blocking, not inherited. */
	if ((fl = fcntl(3, F_GETFL)) == -1 ||
	    fcntl(3, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(3, F_SETFD, FD_CLOEXEC) == -1) {
		log_warn("fd 3");
		return -2;
	}
	return 3;
}

/* Blocks the stop signals in every thread; they arrive on a signalfd. */
static int
fidxd_signals(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1) {
		log_warn("signalfd");
		return -1;
	}
	return fd;
}

/* Room for every client, walk and index file: raise the soft fd limit. */
static void
fidxd_rlimit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_debug("setrlimit: %s", strerror(errno));
	}
}

/* Closes each descriptor in [lo, hi] (hi may be ~0U: all the rest). */
static void
fidxd_close_range(unsigned lo, unsigned hi)
{
	DIR *d;
	struct dirent *de;
	long max;

	if (lo > hi)
		return;
	/* Linux 5.9+; older kernels say ENOSYS. */
	if (close_range(lo, hi, 0) == 0)
		return;
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char *end;
			unsigned long fd = strtoul(de->d_name, &end, 10);

			if (*end == '\0' && end != de->d_name && fd >= lo &&
			    fd <= hi && (int)fd != dirfd(d))
				close((int)fd);
		}
		closedir(d);
		return;
	}
	/* No /proc either: every number the fd limit allows. */
	max = sysconf(_SC_OPEN_MAX);
	for (long fd = lo; fd < (max > 0 ? max : 1024) && fd <= hi; fd++)
		close((int)fd);
}

/*
 * Closes every descriptor above stderr but the keep[n] ones (ours: the
 * lock and the listening socket). A daemon started from a pipeline
 * inherits its caller's other descriptors (bats runs tests with a pipe
 * on fd 3; `{ fidx x; } 3>&1 | cat`): held open, the reader never sees
 * EOF, and waits for as long as fidxd lives.
 */
static void
fidxd_close_inherited(const int *keep, size_t n)
{
	int sorted[8];
	unsigned lo = STDERR_FILENO + 1;

	if (n > sizeof(sorted) / sizeof(sorted[0]))
		fatalx("fidxd_close_inherited: too many descriptors to keep");
	memcpy(sorted, keep, n * sizeof(*keep));
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && sorted[k - 1] > sorted[k]; k--) {
			int t = sorted[k];

			sorted[k] = sorted[k - 1];
			sorted[k - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		if (sorted[i] < (int)lo)
			continue;
		fidxd_close_range(lo, (unsigned)sorted[i] - 1);
		lo = (unsigned)sorted[i] + 1;
	}
	fidxd_close_range(lo, ~0U);
}

/*
 * The detached daemon's log: fidxd.log beside the visits file (the state
 * directory, made by visits_default_file), into buf; "" when there is no
 * such place or the file cannot be opened, said while still attached.
 */
static void
fidxd_log_path(const char *vfile, char *buf, size_t size)
{
	const char *slash = strrchr(vfile, '/');
	int n, fd;

	buf[0] = '\0';
	if (slash == NULL)
		return;
	n = snprintf(buf, size, "%.*s/fidxd.log", (int)(slash - vfile),
	    vfile);
	if (n < 0 || (size_t)n >= size) {
		log_warnx("no log file: the path under %.*s is too long",
		    (int)(slash - vfile), vfile);
		buf[0] = '\0';
		return;
	}
	if ((fd = open(buf, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		log_warn("no log file: %s", buf);
		buf[0] = '\0';
		return;
	}
	close(fd);
}

/*
 * Forks; the first process exits 0 (the socket already listens). The
 * daemon closes what it inherited but keep[n], and leaves the session
 * and the terminal.
 */
static int
fidxd_daemonize(const int *keep, size_t n)
{
	pid_t pid;
	int null;

	fflush(NULL);
	if ((pid = fork()) == -1) {
		log_warn("fork");
		return -1;
	}
	if (pid > 0)
		_exit(0);
	/* First, before anything of the daemon's own is opened. */
	fidxd_close_inherited(keep, n);
	setsid();
	if (chdir("/") == -1)
		log_debug("chdir /: %s", strerror(errno));
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) != -1) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	return 0;
}

/*
 * A relative --socket made absolute: the daemon works from "/", and
 * binds the path again if it is deleted.
 */
static int
fidxd_absolute_sock(struct fidxd_opts *o)
{
	char cwd[PATH_MAX], abs[PATH_MAX + SOCKPATH_MAX + 2];

	if (o->sock[0] == '/')
		return 0;
	if (getcwd(cwd, sizeof(cwd)) == NULL ||
	    (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, o->sock) >
	    SOCKPATH_MAX) {
		log_warnx("--socket %s: give an absolute path of at most %d "
		    "bytes", o->sock, SOCKPATH_MAX);
		return -1;
	}
	strcpy(o->sock, abs);
	return 0;
}

int
main(int argc, char **argv)
{
	struct fidxd_opts o;
	struct fidx_err err = { "" };
	struct fidxd_config cfg;
	struct fidxd d;
	char pidpath[PATH_MAX], pidline[32], vfile[PATH_MAX];
	char logpath[PATH_MAX] = "";
	int lockfd = -1, lfd = -1, sigfd = -1, rc = 2, n;
	bool d_ok = false, bound = false, activated;

	log_init("fidxd", 0);
	if (fidxd_parse(argc, argv, &o) == -1)
		return 2;
	log_init("fidxd", o.verbose);
	fidxd_rlimit();
	/*
	 * A fixed threshold turns off glibc's sliding one, which after the
	 * first freed index would serve the next index from the heap, where
	 * a freed one leaves holes; mmapped, a dropped index goes back to
	 * the kernel whole. 64 KiB, not 256: the blocks between (a delta's
	 * segments, a walk's first arena and entry arrays, answers being
	 * dumped, client buffers) came and went in the arenas and left
	 * holes there that stayed resident: bench/soak.sh, 600 s, with the
	 * trim of fidxd.h's FIDXD_TRIM_MS, 256 KiB: RSS slope +341 KiB/min
	 * after warm-up, end +8.4% against warm-up, malloc_free_bytes
	 * rising +340 KiB/min; 64 KiB: +143 KiB/min, -1.1%, free bytes
	 * flat. Two arenas: threads do not each keep their own.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	mallopt(M_ARENA_MAX, 2);
	proto_alloc_init();
	/* systemd's socket, if it gave one, is the one to serve. */
	if ((lfd = fidxd_listen_activated(o.sock, sizeof(o.sock))) == -2)
		return 2;
	if ((activated = lfd != -1))
		o.explicit_sock = true;
	if (!o.explicit_sock && sockpath_default(o.sock, sizeof(o.sock),
	    &err) == -1) {
		log_warnx("%s", err.msg);
		return 2;
	}
	if (fidxd_absolute_sock(&o) == -1)
		return 2;
	if (sockpath_check_dir(o.sock, !o.explicit_sock, &err) == -1) {
		log_warnx("%s", err.msg);
		return 2;
	}
	if ((lockfd = fidxd_lock(o.sock, o.explicit_sock, pidpath,
	    sizeof(pidpath))) == -1 ||
	    (!activated && (lfd = fidxd_listen(o.sock)) == -1))
		goto out;
	/* A socket systemd made is systemd's to remove, and to bind again. */
	bound = !activated;
	/* Before the fork, so a problem is still seen on the terminal. */
	if (visits_default_file(vfile, sizeof(vfile), &err) == -1) {
		log_warnx("visits will not be kept, nor a log: %s", err.msg);
		vfile[0] = '\0';
	}
	if (!o.foreground)
		fidxd_log_path(vfile, logpath, sizeof(logpath));
	if (!o.foreground && fidxd_daemonize((int[]){ lockfd, lfd },
	    2) == -1)
		goto out;
	/* Detached, stderr is /dev/null: the daemon's log is a file. */
	if (logpath[0] != '\0' && log_to_file(logpath, o.max_log,
	    &err) == 0)
		log_warnx("fidxd %s (pid %ld) on %s", FIDX_VERSION,
		    (long)getpid(), o.sock);
	n = snprintf(pidline, sizeof(pidline), "%ld\n", (long)getpid());
	if (ftruncate(lockfd, 0) == -1 || pwrite(lockfd, pidline, (size_t)n,
	    0) != n)
		log_warn("%s", pidpath);
	/* Threads start after the fork and inherit the blocked signals. */
	if ((sigfd = fidxd_signals()) == -1)
		goto out;
	cfg = (struct fidxd_config){
		.srv = o.srv, .proj = o.proj, .visits = o.visits,
		.git = o.git, .changes = o.changes,
		.threads = o.threads, .wait_ms = o.wait_ms,
		.max_queued_queries = o.max_queued_queries,
		.inline_max_files = o.inline_max_files,
		.narrow_bytes = o.narrow_bytes,
		.narrow_total_bytes = o.narrow_total_bytes,
		.worker_nice = o.worker_nice,
		.sock_path = activated ? NULL : o.sock,
		.sock_make_dir = !o.explicit_sock,
		.visits_file = vfile,
	};
	/* Before any thread can open a repository. */
	repo_lib_limits(&o.git_lib);
	/* From here the daemon owns (and closes) lfd and sigfd. */
	if (fidxd_init(&d, &cfg, lfd, sigfd, &err) == -1) {
		lfd = sigfd = -1;
		log_warnx("%s", err.msg);
		goto out;
	}
	lfd = sigfd = -1;
	d_ok = true;
	log_info("listening on %s", o.sock);
	rc = fidxd_run(&d) == 0 ? 0 : 1;
out:
	if (lfd != -1)
		close(lfd);
	if (sigfd != -1)
		close(sigfd);
	/* Not a socket someone else put there after ours was deleted. */
	if (bound && (!d_ok || server_socket_ours(d.server)))
		unlink(o.sock);
	if (d_ok)
		fidxd_release(&d);
	/* Every thread is joined: libgit2's globals and PCRE2's can go. */
	repo_lib_shutdown();
	regex_shutdown();
	if (lockfd != -1) {
		/* Empty, not removed: removing a locked file races a starter. */
		if (ftruncate(lockfd, 0) == -1)
			log_debug("truncate pidfile: %s", strerror(errno));
		close(lockfd);
	}
	return rc;
}
