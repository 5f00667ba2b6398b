/*
 * gitcache.h - the git status cache: one computed status per project,
 * bounded by age (TTL), by projects (LRU) and by bytes, with one
 * computation per project at a time (single flight).
 *
 * Owns: each entry (its root and the struct repo_status it was given),
 * the LRU and age lists, the record of which projects are being
 * computed and how many requests wait on each, the expiry timer, the
 * counters.
 * Never touches: libgit2 or the computation itself (the caller runs
 * repo_status() where it likes and hands the result in), sockets,
 * threads (every call is from one thread, the loop's), the waiting
 * requests themselves (the caller parks them; this module counts and
 * bounds them), the wall clock: every call is given now, in ms on one
 * monotonic clock, so tests run on a fake one.
 *
 * Bounds, each enforced before an insert, so no cap is passed even for
 * the length of a call: at most max_projects entries (the least
 * recently used goes first) and max_bytes over all entries, counting
 * each entry's whole allocation (its header and root, and the status
 * block's exact size). A status larger than max_bytes alone is not
 * kept (put refuses it; the caller answers with it and frees it). An
 * entry lives ttl_ms from its computation: expiry frees it, from the
 * loop timer this module arms for the oldest entry (when given a loop)
 * or from gitcache_expire(). Statuses are computed with at most
 * max_paths entries (repo_status_opts.max_paths); a truncated one is
 * kept, counted, and says so itself.
 *
 * Single flight: a lookup that finds no fresh entry while the project is
 * being computed is told to wait (at most max_waiters per project, then
 * busy); one that finds none and no computation is told to compute, and
 * the project is marked until gitcache_put() or gitcache_fail() for it.
 * Each computation of a flight is a round (1, 2, ...). A lookup that
 * needs a status begun after it asked (max_age_ms 0, or no max_age_ms
 * while the tree changed under the computation running) waits for the
 * round after the one running: when that one lands, the flight goes on
 * as the next round (gitcache_again() says so) and the caller computes
 * again for them.
 */
#ifndef FIDX_GITCACHE_H
#define FIDX_GITCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/limits.h"
#include "loop.h"
#include "repo.h"

/*
 * Requests waiting on one project's computation. An editor asks once per
 * keystroke or file switch; 64 in flight for one project is a client
 * gone wrong, and each holds a parked request. Ceiling: as the query
 * queue's. Flag: none yet. Stats: `git.counters.waiters_refused`.
 */
#define GITCACHE_WAITERS_DEFAULT 64

struct gitcache_limits {
	uint64_t ttl_ms;		/* 1..FIDX_GIT_TTL_MS_CEILING */
	size_t max_projects;		/* 1..FIDX_MAX_GIT_PROJECTS_CEILING */
	size_t max_bytes;		/* >= 1 */
	size_t max_paths;		/* 1..FIDX_MAX_GIT_PATHS_CEILING */
	size_t max_waiters;		/* per project, >= 1 */
};

struct gitcache;

/* Fills lim with the defaults of common/limits.h. */
void gitcache_limits_default(struct gitcache_limits *lim);

/*
 * An empty cache. With l, expired entries are freed by a timer on l
 * (whose clock must be the one now is read from); without, only by
 * gitcache_expire(). NULL with errno EINVAL (limits out of range) or
 * ENOMEM.
 */
struct gitcache *gitcache_new(const struct gitcache_limits *lim,
    struct loop *l);

/* Frees every entry and stops the timer; NULL is fine. */
void gitcache_free(struct gitcache *c);

enum gitcache_answer {
	GITCACHE_HIT,			/* *out is fresh enough */
	GITCACHE_COMPUTE,		/* the caller computes, then puts */
	GITCACHE_WAIT,			/* being computed: wait for put/fail */
	GITCACHE_BUSY,			/* too many wait already */
};

/*
 * Looks up root's status at now. An entry at most max_age_ms old
 * (UINT64_MAX: any the TTL keeps) is a hit: *out (valid until the next
 * call that changes c) and *age_ms are set and it becomes the most
 * recently used. Otherwise see enum gitcache_answer; a WAIT counts the
 * caller among the waiters of the round *round names (the one running,
 * or the one after it), a COMPUTE is round *round (round may be NULL).
 */
enum gitcache_answer gitcache_lookup(struct gitcache *c, const char *root,
    uint64_t max_age_ms, uint64_t now, const struct repo_status **out,
    uint64_t *age_ms, uint64_t *round);

/*
 * Stores st, computed at now, as root's entry (replacing an older one),
 * after evicting what must go for it to fit; ends root's computation.
 * Takes st on success: 0. -1 with errno EFBIG when st alone is over
 * max_bytes, or ENOMEM: st stays the caller's. Either way *waiters (if
 * not NULL) is how many waited on the computation, now the caller's to
 * answer.
 */
int gitcache_put(struct gitcache *c, const char *root,
    struct repo_status *st, uint64_t now, size_t *waiters);

/* Ends root's computation without a result; *waiters as for put. */
void gitcache_fail(struct gitcache *c, const char *root, size_t *waiters);

/* One waiter of root's round (its client went) left uncounted. */
void gitcache_unwait(struct gitcache *c, const char *root, uint64_t round);

/*
 * After put or fail: the round root's flight goes on as (waiters of the
 * round after the one landed: the caller computes it and puts or fails
 * again), or 0 when the flight has ended.
 */
uint64_t gitcache_again(const struct gitcache *c, const char *root);

/* Drops root's entry (a project removed); its computation is kept. */
void gitcache_drop(struct gitcache *c, const char *root);

/*
 * The watcher saw a change under dir: in git's own files (gitdir: HEAD,
 * the index, refs; every entry at or under dir goes at once), or in the
 * work tree (they become stale: a lookup without max_age_ms computes
 * again, one with it may still take them). A computation running is
 * stored stale when it lands.
 */
void gitcache_changed(struct gitcache *c, const char *dir, bool gitdir);

/* Frees every entry older than the TTL at now. */
void gitcache_expire(struct gitcache *c, uint64_t now);

/* The limits c was made with. */
void gitcache_limits(const struct gitcache *c, struct gitcache_limits *lim);

struct gitcache_stats {
	size_t entries, bytes;		/* held now */
	size_t computing;		/* projects being computed now */
	size_t waiting;			/* requests waiting on them now */
	uint64_t hits, misses;		/* misses: lookups that computed */
	uint64_t expired;		/* entries freed by age */
	uint64_t evicted_lru;		/* by the project cap */
	uint64_t evicted_bytes;		/* by the byte cap */
	uint64_t too_big;		/* statuses over max_bytes alone */
	uint64_t truncated;		/* statuses stored past max_paths */
	uint64_t waits;			/* lookups that waited (single flight) */
	uint64_t waits_next;		/* ... for the round after the one
					   running, begun before they asked */
	uint64_t rounds;		/* computations run again for them */
	uint64_t waiters_refused;	/* lookups answered busy */
	uint64_t invalidated;		/* dropped: git's files changed */
	uint64_t staled;		/* marked stale: the work tree changed */
};

void gitcache_get_stats(const struct gitcache *c, struct gitcache_stats *st);

#endif
