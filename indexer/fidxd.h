/*
 * fidxd.h - the daemon's context: what one running fidxd is made of.
 *
 * Owns: the loop, the server (transport), the ops (what requests mean),
 * the project registry, the search pools and the query worker (queries
 * on large indexes run there, so the loop stays free), the git workers
 * and the git status cache (libgit2 runs only there), the visit store
 * and its save timer, the signalfd; and the wiring between them: which fd wakes what,
 * what runs before the loop sleeps, how the daemon stops.
 * Never touches: flags, the lock or daemonising (main.c), a module's
 * own fields (each is reached through its functions).
 *
 * Modules get the context, not each other: ops.c reads the registry,
 * the pool and the visit store from here, and answers through the server.
 */
#ifndef FIDX_FIDXD_H
#define FIDX_FIDXD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../common/log.h"
#include "changelog.h"
#include "gitcache.h"
#include "loop.h"
#include "project.h"
#include "server.h"
#include "visits.h"

struct ops;
struct search_pool;
struct work_pool;

/*
 * Threads computing git statuses: a status is one libgit2 walk of the
 * work tree, I/O more than CPU, so two projects at once overlap their
 * waits without taking both cores from queries. Their queue holds at
 * most one job per project the cache can hold (single flight).
 */
#define FIDXD_GIT_WORKERS 2

/*
 * Added to the query worker's nice value and its scoring threads'
 * (--worker-nice, 0 to 19). Measured on the 1.1 M-file benchmark tree,
 * 2 cores: on a quiet machine nice 19 brings ping's p99 under load to
 * its idle p99 (0.4-0.7 ms against 0.3-0.4), where nice 0, 5 and 10
 * leave it at 2-5 ms (the scoring threads fill both cores, and the loop
 * and its clients wait for one); but whenever other processes want the
 * CPU, a nice worker gives way to them too: nice 5 made large queries
 * 1.17x slower then (nice 0: 0.95x of the loop-thread daemon,
 * bench/daemon_ab.py), and with two `yes >/dev/null` running, nice 19
 * made every query 36x slower than nice 0. A 5 ms ping is nothing to a
 * person; a picker that stalls during `make -j` is. So 0, and the flag
 * for those who want the loop first.
 */
#define FIDXD_WORKER_NICE 0
#define FIDXD_WORKER_NICE_MAX 19

/*
 * malloc_trim(0) this long after a turn that did work (then not again
 * until more work): glibc gives back on its own only the free space at
 * the top of an arena, and the holes that answers, watcher deltas and
 * client buffers leave below live chunks stay resident. Measured with
 * bench/soak.sh for 120 s without its reindexes (deltas, queries,
 * clients, git, visits; SOAK_SKIP=reindex): RSS grew 4.0 MiB/min, and
 * malloc's free bytes with it, against 0.7 MiB/min with a trim every
 * second; the floor between bursts stayed at 31 MiB instead of climbing
 * to 35.5. A trim takes about a millisecond, on the loop: on a worker of
 * its own at nice 19 one took 20 ms (descheduled holding an arena's
 * lock, it held up every thread that needed that arena: a 600 s soak,
 * 4,655 trims, 94 s). Stats: memory.malloc_trims, memory.malloc_trim_us.
 */
#define FIDXD_TRIM_MS 1000

/* Visits are saved this long after the first unsaved one (and at exit). */
#define FIDXD_VISITS_SAVE_MS 2000

/*
 * A visit store's temporary file older than this at start is a save
 * that never finished (killed mid-save) and is removed; a younger one
 * may be another daemon's save under way.
 */
#define FIDXD_VISITS_TEMP_AGE_S 60

struct fidxd_config {
	struct server_limits srv;
	struct project_limits proj;
	struct visits_limits visits;
	struct gitcache_limits git;
	struct changelog_limits changes;	/* the change log's bounds */
	int threads;			/* scoring threads */
	int worker_nice;		/* added to the query worker's nice */
	size_t max_queued_queries;	/* waiting for the query worker */
	size_t inline_max_files;	/* smaller indexes: queried inline */
	size_t narrow_bytes;		/* a connection's narrowing set, at most */
	size_t narrow_total_bytes;	/* all of them; 0: no narrowing */
	uint32_t wait_ms;		/* default bound on a parked request */
	const char *sock_path;		/* checked and bound again if deleted */
	bool sock_make_dir;
	const char *visits_file;	/* "" or NULL: not kept */
};

struct fidxd {
	struct loop *loop;
	struct server *server;
	struct ops *ops;
	struct project_registry reg;
	struct search_pool *pool;	/* the query worker's, every thread */
	struct search_pool *loop_pool;	/* the loop's own, one thread */
	struct work_pool *work;		/* the query worker and its queue */
	struct work_pool *gitwork;	/* git status workers and their queue */
	size_t inline_max_files;
	size_t narrow_bytes, narrow_total_bytes;	/* as the config's */
	struct visits *visits;
	struct gitcache *git;		/* git status cache (gitcache.h) */
	struct changelog *changes;	/* the change log (changelog.h) */
	char instance[24];		/* names this run in change-log tokens:
					   another run's are never honoured */
	struct watch *watch;		/* inotify (watch.h), or NULL */
	struct loop_io watch_io;
	char visits_file[4096];
	struct loop_timer visits_save;
	struct loop_timer trim;		/* FIDXD_TRIM_MS after work */
	bool trim_ran;			/* this turn was the trim's */
	uint64_t trims, trim_us;	/* for stats: how many, how long */
	struct loop_io sig_io, walk_io;
	int sigfd;
	uint32_t wait_ms;
	struct timespec started;	/* CLOCK_MONOTONIC */
	bool stopping;
	bool reg_ok;
};

/*
 * Builds d on the listening socket lfd and the signalfd sigfd (both its
 * own from here, even on failure). -1 with err on failure, leaving
 * nothing to release.
 */
int fidxd_init(struct fidxd *d, const struct fidxd_config *cfg, int lfd,
    int sigfd, struct fidx_err *err);

/* Runs until fidxd_stop(); then answers what waits and saves visits. */
int fidxd_run(struct fidxd *d);

/* Frees everything d holds. */
void fidxd_release(struct fidxd *d);

/* Ends fidxd_run() after this turn: a signal, `shutdown`, a lost socket. */
void fidxd_stop(struct fidxd *d);

/* A visit was recorded: the store is saved within FIDXD_VISITS_SAVE_MS. */
void fidxd_visits_touched(struct fidxd *d);

#endif
