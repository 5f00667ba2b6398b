/*
 * project.h - the registry of projects, their states, and their rebuilds.
 *
 * Owns: every struct project (root, state, message, walk options, the
 * live snapshot reference, the watcher's pending changes and the settle
 * and degraded-rebuild timers, each project's change-log floor and the
 * directories its walks skipped), the index-bytes budget, the walker
 * threads and their job and done lists, and the eventfd that says a job
 * finished.
 * Never touches: sockets, JSON, clients (server.c and ops.c wait on
 * projects by root and generation, never by pointer across a wait),
 * inotify (watch.h hands it events; it asks watch.h for watches), git
 * (a change under .git is handed to git_changed), the change log's ring
 * (changelog.h: it only adds to it and takes numbers for floors).
 *
 * Threads: everything here runs on the event loop's thread except the
 * walk itself. A walker takes a project off the job list, walks its root
 * with its `opts` (both immutable while queued or running) into a NEW
 * snapshot and puts it on the done list; project_collect(), on the loop,
 * swaps it in. So the live index is only ever replaced, never appended
 * to, and a query never waits for a rebuild. Each project has at most one
 * job queued or running, a walk or a delta (a reindex during one sets
 * `dirty` for a walk after it; changes the watcher reports meanwhile wait
 * in `pending` for a delta after it), so both lists are bounded by the
 * project cap. New options asked for during a walk wait in `next_opts`
 * and are taken by the walk after it. A delta re-reads just the paths
 * that changed and makes the new snapshot from the live one, sharing
 * what they do not touch (index_snapshot_apply).
 */
#ifndef FIDX_PROJECT_H
#define FIDX_PROJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../common/log.h"
#include "index.h"
#include "loop.h"
#include "walk.h"
#include "watch.h"

enum project_state {
	PROJECT_INDEXING,	/* no index yet */
	PROJECT_READY,
	PROJECT_CAPPED,		/* the last walk stopped at a cap */
	PROJECT_ERROR,		/* the last walk failed: see message */
	PROJECT_GONE,		/* the root no longer exists */
};

const char *project_state_name(enum project_state s);

/* Which cap cut a walk. */
enum project_cap {
	PROJECT_CAP_NONE,
	PROJECT_CAP_FILES,	/* --max-files, per project */
	PROJECT_CAP_BYTES,	/* --max-index-bytes, all projects */
};

/* "files", "bytes", or NULL for PROJECT_CAP_NONE. */
const char *project_cap_name(enum project_cap c);

/* What a walk of the project lists. */
struct project_opts {
	bool hidden;			/* names starting with '.' */
	struct regex *exclude;		/* owned, or NULL (regex.h) */
	char *exclude_src;		/* its pattern, owned, or NULL */
};

/* Whether inotify keeps the index fresh. */
enum project_watch {
	PROJECT_WATCHING,
	PROJECT_DEGRADED,	/* not (all) watched: rebuilt periodically */
	PROJECT_UNWATCHED,	/* gone: its watches are removed */
};

const char *project_watch_name(enum project_watch w);

struct project_registry;

struct project {
	char *root;			/* resolved, absolute; immutable */
	uint32_t id;			/* for the watcher; never reused */
	struct project_registry *reg;
	enum project_state state;
	/* Why: in error and gone, which cap cut it, a kept index, git. */
	char message[1024];
	struct index_snapshot *snap;	/* live index (one reference), or NULL */
	enum project_cap cap;		/* which cap cut snap, if capped */
	bool kept_old;			/* the last walk was cut by the byte
					   cap and snap was kept: see
					   project_apply() */
	struct project_opts opts;	/* the walks': immutable while walking */
	struct project_opts next_opts;	/* asked for during a walk, if has_next */
	bool has_next;

	uint64_t last_gen;		/* generation given to the newest walk */
	uint64_t done_gen;		/* generation of the last walk finished */
	bool walking;			/* queued or running */
	bool dirty;			/* reindex asked for during the walk */
	bool removed;			/* out of the registry; freed when done */
	atomic_bool cancel;

	/* The walk: written by the walker, read after project_collect(). */
	uint64_t walk_gen;
	struct timespec walk_start;
	atomic_size_t walked;		/* files the walk running has found
					   (in steps of WALK_PROGRESS_EVERY) */
	struct index_snapshot *result;
	int result_errno;
	char result_msg[256];
	struct walk_stats wstats;

	/*
	 * Watching. Paths the watcher saw change wait in `pending` (owned
	 * strings, relative to the root) until a delta job re-reads them;
	 * the job owns the ones it took (`job`). `delta`: the job queued or
	 * running is a delta, not a walk.
	 */
	enum project_watch watch;
	char watch_why[256];		/* why degraded */
	char **pending;
	size_t npending, pcap;
	char **job;
	size_t njob;
	bool delta;
	bool job_watches;		/* the job asks for watches: read by
					   the walk, set before it is queued
					   (p->watch is the loop's) */
	struct index_snapshot *base;	/* what a delta applies to, or what
					   a walk's index replaces (a ref) */
	struct index_apply_stats jstats;	/* the job's (walker) */
	struct index_apply_stats dstats;	/* the last delta's (loop) */
	struct index_apply_stats bstats;	/* the last walk's (loop) */
	uint64_t delta_us;		/* and how long it took (walker) */
	size_t delta_paths;
	struct loop_timer settle;	/* a burst's next batch */
	struct loop_timer periodic;	/* a degraded project's rebuilds */
	uint64_t last_event_ms;
	uint32_t settle_ms;		/* grows while events keep coming */

	/*
	 * The change log (changelog.h). A token below log_floor is answered
	 * "everything": the project could not hear every change since (its
	 * first walk was not done, events were lost, it was not watched).
	 * `unwatched`: directories the walk did not enter (hidden, ignored,
	 * excluded, unreadable), relative, with a trailing '/': their
	 * insides are not watched, so every answer names them (owned; at
	 * most PROJECT_UNWATCHED_MAX, past it unwatched_over and every
	 * answer is "everything"). `skip_walk`: what the job running met
	 * (walk threads add under the registry's mu).
	 */
	uint64_t log_floor;
	bool log_wanted;		/* a hook asked: changes are logged */
	char **unwatched;
	size_t nunwatched;
	bool unwatched_over;
	char **skip_walk;
	size_t nskip_walk;
	bool skip_walk_over;
	char **entered;			/* directories a delta entered (walk
					   threads add, under mu), logged
					   when it is in; at most
					   PROJECT_ENTERED_MAX, then over */
	size_t nentered;
	bool entered_over;

	bool git_unsafe;		/* the last walk met a .gitignore that
					   is no file: libgit2 would hang */
	bool git_none;			/* the git op found no work tree here
					   (ops_git.c's; reset by a .git change) */

	time_t built_at;		/* last index swapped in (wall clock) */
	uint64_t build_ms;		/* and how long its walk took */
	struct project *next;		/* job or done list */
};

struct project_limits {
	size_t max_projects;
	size_t max_files;
	size_t max_index_bytes;
	int walkers;			/* walks at once */
	int walk_threads;		/* threads per walk */
	size_t max_pending;		/* changed paths waiting, all projects */
	size_t max_watches;		/* directories watched, all projects */
	uint32_t settle_max_ms;		/* longest a burst's batch waits */
	uint32_t degraded_rebuild_ms;	/* rebuilds of an unwatched project */
};

struct project_counters {
	uint64_t rebuilds;		/* snapshots swapped in */
	uint64_t rebuilds_capped;
	uint64_t rebuilds_failed;
	uint64_t rebuilds_kept_old;	/* cut by the byte cap; old index kept */
	uint64_t walk_git_refused;	/* repositories libgit2 would not open */
	uint64_t projects_refused;	/* add refused by the project cap */
	uint64_t walk_unreadable;	/* summed over every walk */
	uint64_t walk_vanished;
	uint64_t walk_symlinks_skipped;
	uint64_t walk_too_long;
	uint64_t walk_exclude_errors;	/* paths the exclude regex gave up on */
	uint64_t deltas;		/* watcher batches applied */
	uint64_t delta_paths;		/* paths they re-read */
	uint64_t delta_failed;
	uint64_t events_coalesced;	/* changes that joined a waiting batch */
	uint64_t overflow_rebuilds;	/* full rebuilds for lost events */
	uint64_t degraded_rebuilds;
	uint64_t roots_gone;
	uint64_t rescans;		/* directories changed before watched */
	uint64_t shared_rewalks;	/* walked again: a nested project's
					   watches were dropped */
};

/*
 * Directories a project's walk skipped that each change-log answer
 * names. git (2.39) scans its whole index for each directory named, so
 * many cost more than they save; past this the answer is "everything".
 * Flag: none. Stats: `changes.usage.unwatched_dirs`,
 * `changes.counters.unwatched_over`.
 */
#define PROJECT_UNWATCHED_MAX 256

/*
 * Directories one delta enters that the change log names once it is in
 * (a tree just made or moved in); past it the log says everything for
 * the project. Flag: none. Stats: `changes.counters.dropped` does not
 * count these; a project's floor moves (`changes.counters.answers_all`).
 */
#define PROJECT_ENTERED_MAX 4096

struct changelog;

struct project_registry {
	struct project_limits lim;
	struct changelog *log;		/* NULL: no change log kept */
	struct project **v;		/* lim.max_projects slots, n used */
	size_t n;
	struct index_budget budget;
	struct project_counters count;
	struct loop *loop;
	struct watch *watch;		/* NULL: nothing is watched */
	/*
	 * The watcher saw a change in root's git files (gitdir) or work
	 * tree: the git cache's business (fidxd.c wires it), not ours.
	 */
	void (*git_changed)(void *arg, const char *root, bool gitdir);
	void *git_arg;
	char watch_err[256];		/* why watch is NULL */
	size_t npending;		/* every project's */
	atomic_uint_least64_t walk_waits;	/* directories a full walk
					   waited to see watched */
	size_t pending_peak;
	uint32_t next_id;

	pthread_mutex_t mu;		/* guards jobs, done, stop */
	pthread_cond_t cv;
	struct project *jobs, *jobs_tail, *done;
	size_t running;			/* walks queued or running */
	bool stop;
	int efd;			/* eventfd: readable when done != NULL */
	pthread_t tids[8];
	int started;
};

/*
 * watch may be NULL (inotify could not be had: watch_err says why, and
 * every project is degraded). loop arms the settle and periodic timers.
 */
int project_registry_init(struct project_registry *r,
    const struct project_limits *lim, struct loop *loop, struct watch *watch,
    const char *watch_err, struct fidx_err *err);

/* One event from the watcher (the loop's thread); ev->path is borrowed. */
void project_watch_event(struct project_registry *r,
    const struct watch_event *ev);

/* Cancels every walk, joins the walkers, frees every project. */
void project_registry_release(struct project_registry *r);

/* The eventfd to poll; call project_collect() when it is readable. */
int project_registry_fd(const struct project_registry *r);

/* The project whose resolved root is root, or NULL. */
struct project *project_find(struct project_registry *r, const char *root);

struct project_add_opts {
	bool hidden;
	const char *exclude;		/* PCRE2 pattern, or NULL */
};

/*
 * Adds root (resolved by the caller) and starts its first walk. Returns
 * the project; *added false when it was already there (opts then
 * ignored: see project_set_opts). NULL with err when the registry is
 * full (errno ENOSPC), the exclude pattern is bad (EINVAL) or memory ran
 * out (ENOMEM).
 */
struct project *project_add(struct project_registry *r, const char *root,
    const struct project_add_opts *opts, bool *added, struct fidx_err *err);

/* The options the next walk of p uses (the newest asked for). */
const struct project_opts *project_opts_get(const struct project *p);

/*
 * Makes opts the options of p's walks. Returns 1 when they differ from
 * project_opts_get(p): a new walk with them is asked for (as by
 * project_reindex(), whose generation goes in *gen). 0 when they are the
 * same (nothing done), -1 with err when the exclude pattern is bad
 * (EINVAL) or memory ran out (ENOMEM); p is then unchanged.
 */
int project_set_opts(struct project_registry *r, struct project *p,
    const struct project_add_opts *opts, uint64_t *gen,
    struct fidx_err *err);

/*
 * Starts logging p's changes, on the first `changes` request naming it.
 * Until a hook asks, no one holds a token for p, so nothing of p's is
 * kept; tokens from before this call are answered everything.
 */
void project_log_want(struct project_registry *r, struct project *p);

/* Takes p out of the registry; a walk in progress is cancelled. */
void project_remove(struct project_registry *r, struct project *p);

/*
 * Asks for a new snapshot of p built from a walk that starts after this
 * call. Returns the generation that walk will have: the project is
 * rebuilt once p->done_gen reaches it.
 */
uint64_t project_reindex(struct project_registry *r, struct project *p);

/*
 * Applies finished walks: swaps in new snapshots, sets states, starts
 * the walks asked for meanwhile. Returns how many finished.
 */
size_t project_collect(struct project_registry *r);

/* Walks queued or running. */
size_t project_walks(struct project_registry *r);

/*
 * The newest generation p can reach without a new request: the walk or
 * delta queued or running (and the walk asked for after it, or the delta
 * of the changes pending), else the last one done. Changes the watcher
 * has not seen yet are not counted: `sync` waits for those.
 */
uint64_t project_reachable_gen(const struct project *p);

#endif
