/*
 * search.h - runs one compiled query over one snapshot, on every core.
 *
 * Owns: a fixed pool of scoring threads, created once, and the per-query
 * split of a snapshot's entries among them (one top-k heap each, merged).
 * Never touches: sockets, the project registry, snapshot lifetimes (the
 * caller holds a reference for the duration of search_run).
 *
 * Only one thread at a time calls search_run() on a pool (the loop has
 * one for small indexes, the query worker one for large ones); the pool
 * is not a queue. A query over a small index runs on the caller alone: waking
 * helpers costs more than scoring a few thousand paths.
 */
#ifndef FIDX_SEARCH_H
#define FIDX_SEARCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/log.h"
#include "../common/query.h"
#include "../common/topk.h"
#include "index.h"

/* Snapshots with fewer entries are scored on the calling thread alone. */
#define SEARCH_SPLIT_MIN 16384
/* Entries a chunk holds at most: how soon a cancelled query stops. */
#define SEARCH_CHUNK_MAX 16384
#define SEARCH_MAX_THREADS 16
/* How long a helper spins for the next query before it sleeps. */
#define SEARCH_SPIN_US 2000
/* Paths search_narrow.top holds at most (the floor's candidates). */
#define SEARCH_NARROW_TOP 256

struct search_pool;

/* A bonus added to each match (query_scratch_set_bonus), or none. */
struct search_bonus {
	query_bonus_fn *fn;	/* called from every scoring thread */
	void *arg;
	int32_t max;
};

/*
 * threads in 1..SEARCH_MAX_THREADS, the caller counting as one; the
 * helpers add nice to their nice value (the caller sets its own).
 */
struct search_pool *search_pool_new(int threads, int nice,
    struct fidx_err *err);
void search_pool_free(struct search_pool *p);
int search_pool_threads(const struct search_pool *p);

/*
 * Narrowing (query.h): which entries of the snapshot to score, and where
 * to keep the candidate set of this query among them. Bitmaps of one bit
 * per entry of the snapshot (bit i: entry i in snapshot order), whole
 * 64-bit words, owned by the caller for the duration of search_run.
 */
struct search_narrow {
	const uint64_t *in;	/* score only these; NULL: every entry */
	uint64_t *out;		/* clear; C(q) of those scored is set in it
				   (q must be query_narrowable); or NULL */
	/*
	 * Paths of this snapshot among `in` (the last answer's best, back
	 * to back, top_len[i] bytes each; ntop of them), scored first: if k
	 * of them match, the k-th best is a floor no path below can pass,
	 * so the scan prunes from its first entry (the answer is the same:
	 * they are scored again where the scan meets them).
	 */
	const char *top;
	const uint32_t *top_len;
	size_t ntop;
};

/*
 * Scores every entry of s into top (initialised by the caller with its
 * k), each match's score plus bonus (may be NULL). Returns the number of
 * entries that matched, or -1 with errno ENOMEM when out of memory or
 * ECANCELED once *cancel (if not NULL) turned true, which stops it
 * within a chunk (top is then left empty); *regex_errors gets the number
 * of entries the regex engine gave up on (query_scratch_regex_errors),
 * which the caller reports. nw (NULL: none) scores only nw->in's entries
 * and keeps q's candidates among them in nw->out.
 */
ssize_t search_run(struct search_pool *p, const struct query *q,
    const struct index_snapshot *s, struct topk *top,
    const struct search_bonus *bonus, const atomic_bool *cancel,
    size_t *regex_errors, struct search_narrow *nw);

#endif
