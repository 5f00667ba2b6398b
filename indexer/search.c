/* search.c - see search.h. */
#include "search.h"
#include "../common/alloc.h"
#include "../common/thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* One thread's share of a query: its own top k and match count. */
struct search_part {
	struct query_scratch *sc;	/* kept across queries */
	struct topk top;
	size_t matched;
	size_t regex_errors;		/* this round's, from sc */
	bool failed;
};

struct search_pool;

struct search_helper {
	struct search_pool *p;
	int slot;
};

/*
 * A query is cut into chunks that threads claim one at a time, so a
 * helper that wakes late (an idle virtual CPU can take a millisecond)
 * only takes fewer chunks: the caller never waits for a helper that has
 * not started, only for one in the middle of a chunk.
 */
struct search_pool {
	int threads;
	int nice;			/* added to each helper's */
	int started;			/* helpers running */
	pthread_t tids[SEARCH_MAX_THREADS];
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	_Atomic uint64_t round;		/* bumped for each split query */
	int seen_all;			/* helpers done with `round` (mu) */
	atomic_bool stop;

	/* This round; written before it starts, read-only during it. */
	const struct query *q;
	const struct index_snapshot *s;
	const struct search_bonus *bonus;
	const atomic_bool *cancel;	/* or NULL */
	const uint64_t *sel_in;		/* search_narrow's, or NULL */
	uint64_t *sel_out;
	size_t chunk, nchunks;
	atomic_size_t next;		/* next chunk to claim */
	atomic_int busy;		/* helpers inside a claimed chunk */
	_Atomic int32_t floor;		/* the parts' shared k-th best */

	struct search_part part[SEARCH_MAX_THREADS];
	struct search_helper helpers[SEARCH_MAX_THREADS];
};

static int
search_part_bind(struct search_pool *p, struct search_part *pt)
{
	if (pt->sc == NULL ? (pt->sc = query_scratch_new(p->q)) == NULL :
	    query_scratch_bind(pt->sc, p->q) == -1) {
		pt->failed = true;
		return -1;
	}
	query_scratch_share_floor(pt->sc, p->nchunks > 1 ? &p->floor : NULL);
	query_scratch_set_bonus(pt->sc, p->bonus ? p->bonus->fn : NULL,
	    p->bonus ? p->bonus->arg : NULL, p->bonus ? p->bonus->max : 0);
	return 0;
}

/* Scores chunk c into pt. */
static void
search_chunk(struct search_pool *p, struct search_part *pt, size_t c)
{
	const struct index_snapshot *s = p->s;
	size_t from = c * p->chunk;
	size_t to = from + p->chunk < s->n ? from + p->chunk : s->n;

	/* Chunks rounded to 64 entries (sel_out) may leave the last empty. */
	if (from >= s->n)
		return;
	/* A chunk is a range of the index: the segments' parts in it. */
	for (size_t g = index_snapshot_segment_of(s, from); from < to; g++) {
		size_t end = s->starts[g + 1] < to ? s->starts[g + 1] : to;
		const struct index_segment *sg = s->segs[g];

		pt->matched += query_run_sel(p->q, sg->arena, sg->entries,
		    from - s->starts[g], end - s->starts[g], &pt->top, pt->sc,
		    p->sel_in, p->sel_out, s->starts[g]);
		from = end;
	}
	/* Counted since the bind, which this round made before any chunk. */
	pt->regex_errors = query_scratch_regex_errors(pt->sc);
}

/*
 * Claims the next chunk into *c; false once every chunk is claimed, or
 * the round was cancelled: then no thread claims another, so a cancelled
 * query stops within one chunk's time.
 */
static bool
search_claim(struct search_pool *p, size_t *c)
{
	if ((*c = atomic_fetch_add(&p->next, 1)) >= p->nchunks)
		return false;
	/*
	 * Only now: a chunk claimed means the round is alive (the caller
	 * waits for it), while a helper late for a finished round must not
	 * read its cancel flag, which lives in the caller's job.
	 */
	if (p->cancel != NULL &&
	    atomic_load_explicit(p->cancel, memory_order_relaxed)) {
		atomic_store(&p->next, p->nchunks);
		return false;
	}
	return true;
}

/* A pause that tells the CPU (and the hypervisor) we are spinning. */
static inline void
search_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static int64_t
search_now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/*
 * Spins up to SEARCH_SPIN_US for a round after `seen`: a picker sends a
 * query per keystroke, and a thread asleep on a futex can take as long
 * to wake as a whole query takes to score.
 */
static void
search_spin(struct search_pool *p, uint64_t seen)
{
	int64_t until = search_now_us() + SEARCH_SPIN_US;

	while (atomic_load_explicit(&p->round, memory_order_acquire) == seen &&
	    !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
		for (int i = 0; i < 64; i++)
			search_relax();
		if (search_now_us() > until)
			break;
	}
}

static void *
search_helper_main(void *arg)
{
	struct search_pool *p = ((struct search_helper *)arg)->p;
	struct search_part *pt = &p->part[((struct search_helper *)arg)->slot];
	uint64_t seen = 0;

	thread_settle();
	if (p->nice != 0) {
		/* Per thread on Linux: the loop keeps its priority. */
		errno = 0;
		int base = getpriority(PRIO_PROCESS, (id_t)gettid());
		if (errno == 0)
			(void)setpriority(PRIO_PROCESS, (id_t)gettid(),
			    base + p->nice);
	}
	for (;;) {
		search_spin(p, seen);
		pthread_mutex_lock(&p->mu);
		while (!atomic_load(&p->stop) && atomic_load(&p->round) == seen)
			pthread_cond_wait(&p->work, &p->mu);
		pthread_mutex_unlock(&p->mu);
		if (atomic_load(&p->stop))
			break;
		seen = atomic_load_explicit(&p->round, memory_order_acquire);

		/* busy first, then claim: the caller sees one or the other. */
		atomic_fetch_add(&p->busy, 1);
		size_t c;
		if (search_claim(p, &c) && search_part_bind(p, pt) == 0) {
			do
				search_chunk(p, pt, c);
			while (search_claim(p, &c));
		}
		atomic_fetch_sub(&p->busy, 1);
		pthread_mutex_lock(&p->mu);
		p->seen_all++;
		pthread_cond_broadcast(&p->done);
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

struct search_pool *
search_pool_new(int threads, int nice, struct fidx_err *err)
{
	struct search_pool *p;

	if (threads < 1 || threads > SEARCH_MAX_THREADS) {
		fidx_error(err, "search threads must be 1 to %d",
		    SEARCH_MAX_THREADS);
		return NULL;
	}
	if ((p = fidx_calloc(1, sizeof(*p))) == NULL) {
		fidx_error(err, "out of memory");
		return NULL;
	}
	p->threads = threads;
	p->nice = nice;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	/* Not on the loop's CPU (thread.h): a query is one round of work. */
	pthread_attr_t attr;
	bool elsewhere = threads > 1 && thread_attr_elsewhere(&attr);

	for (int i = 1; i < threads; i++) {
		int e;

		p->helpers[i].p = p;
		p->helpers[i].slot = i;
		if ((e = pthread_create(&p->tids[i], elsewhere ? &attr : NULL,
		    search_helper_main, &p->helpers[i])) != 0) {
			if (elsewhere)
				pthread_attr_destroy(&attr);
			errno = e;
			fidx_error(err, "cannot start a search thread: %s",
			    strerror(e));
			search_pool_free(p);
			return NULL;
		}
		p->started = i;
	}
	if (elsewhere)
		pthread_attr_destroy(&attr);
	p->seen_all = p->started;	/* no round yet: nobody to wait for */
	return p;
}

void
search_pool_free(struct search_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, true);
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i <= p->started; i++)
		pthread_join(p->tids[i], NULL);
	for (int i = 0; i < SEARCH_MAX_THREADS; i++)
		query_scratch_free(p->part[i].sc);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int
search_pool_threads(const struct search_pool *p)
{
	return p->threads;
}

/*
 * One round: every chunk of s scored into the parts' heaps, which are
 * merged into top. floor0 starts the parts' shared floor.
 */
static ssize_t
search_round(struct search_pool *p, int n, const struct query *q,
    const struct index_snapshot *s, struct topk *top,
    const struct search_bonus *bonus, const atomic_bool *cancel,
    int32_t floor0, size_t *regex_errors, struct search_narrow *nw)
{
	ssize_t matched = 0;
	bool failed = false;
	int ready = 0;
	size_t c;

	/* Helpers still finishing the last round must not see this one. */
	pthread_mutex_lock(&p->mu);
	while (p->seen_all < p->started)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);

	for (; ready < n; ready++) {
		struct search_part *pt = &p->part[ready];

		pt->matched = 0;
		pt->regex_errors = 0;
		pt->failed = false;
		if (topk_init(&pt->top, top->k) == -1)
			break;
	}
	if (ready < n) {
		failed = true;
		goto out;
	}
	p->q = q;
	p->s = s;
	p->bonus = bonus;
	p->cancel = cancel;
	p->sel_in = nw != NULL ? nw->in : NULL;
	p->sel_out = nw != NULL ? nw->out : NULL;
	/*
	 * Eight chunks a thread, small enough to balance a late start, and
	 * none over SEARCH_CHUNK_MAX entries, so a cancelled query stops
	 * soon.
	 */
	p->nchunks = n > 1 ? (size_t)n * 8 : 1;
	if (n > 1 && s->n / SEARCH_CHUNK_MAX > p->nchunks)
		p->nchunks = s->n / SEARCH_CHUNK_MAX;
	p->chunk = (s->n + p->nchunks - 1) / p->nchunks;
	if (p->chunk == 0)
		p->chunk = 1;
	/* Whole words of sel_out a chunk: no two threads write one. */
	if (p->sel_out != NULL)
		p->chunk = (p->chunk + 63) / 64 * 64;
	atomic_store(&p->next, 0);
	atomic_store(&p->floor, floor0);
	if (n > 1) {
		pthread_mutex_lock(&p->mu);
		p->seen_all = 0;
		/* Release: a spinning helper reads the round's fields after. */
		atomic_fetch_add_explicit(&p->round, 1, memory_order_release);
		pthread_cond_broadcast(&p->work);
		pthread_mutex_unlock(&p->mu);
	}
	/* If binding fails the helpers take every chunk; the result fails. */
	if (search_part_bind(p, &p->part[0]) == 0)
		while (search_claim(p, &c))
			search_chunk(p, &p->part[0], c);
	/*
	 * Every chunk is claimed: wait only for one in progress, spinning,
	 * as it ends within a chunk's time and a futex wake-up may not.
	 */
	while (n > 1 && (atomic_load(&p->busy) > 0 ||
	    atomic_load(&p->next) < p->nchunks))
		search_relax();
	for (int i = 0; i < n; i++) {
		failed |= p->part[i].failed;
		matched += (ssize_t)p->part[i].matched;
		*regex_errors += p->part[i].regex_errors;
		if (!failed)
			topk_merge(top, &p->part[i].top);
	}
out:
	for (int i = 0; i < ready; i++)
		topk_release(&p->part[i].top);
	if (failed) {
		top->n = 0;
		errno = ENOMEM;
		return -1;
	}
	if (cancel != NULL && atomic_load(cancel)) {
		top->n = 0;
		errno = ECANCELED;
		return -1;
	}
	return matched;
}

static int
search_cmp_desc(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return x > y ? -1 : x < y;
}

/*
 * The floor nw's paths give a query keeping k results (search_narrow):
 * the k-th best of their scores, bonus added as the scan adds it, or
 * MATCH_NONE when fewer than k match. Scored with the caller's part's
 * scratch, before the round binds it again.
 */
static int32_t
search_floor0(struct search_pool *p, const struct query *q,
    const struct search_bonus *bonus, const struct search_narrow *nw,
    size_t k)
{
	struct search_part *pt = &p->part[0];
	int32_t v[SEARCH_NARROW_TOP];
	size_t n = 0, off = 0;

	if (nw == NULL || k == 0 || nw->ntop < k || nw->ntop >
	    SEARCH_NARROW_TOP)
		return MATCH_NONE;
	if (pt->sc == NULL ? (pt->sc = query_scratch_new(q)) == NULL :
	    query_scratch_bind(pt->sc, q) == -1)
		return MATCH_NONE;	/* the round fails it again */
	for (size_t i = 0; i < nw->ntop; i++) {
		const char *path = nw->top + off;
		size_t len = nw->top_len[i];
		int32_t x = query_score(q, path, len, match_basename(path,
		    len), match_mask(path, len), pt->sc);

		off += len;
		if (x == MATCH_NONE)
			continue;
		v[n++] = x + (bonus != NULL ? bonus->fn(bonus->arg, path,
		    len) : 0);
	}
	if (n < k)
		return MATCH_NONE;
	qsort(v, n, sizeof(*v), search_cmp_desc);
	return v[k - 1];
}

ssize_t
search_run(struct search_pool *p, const struct query *q,
    const struct index_snapshot *s, struct topk *top,
    const struct search_bonus *bonus, const atomic_bool *cancel,
    size_t *regex_errors, struct search_narrow *nw)
{
	int n = s->n < SEARCH_SPLIT_MIN ? 1 : p->threads;

	*regex_errors = 0;

	/*
	 * Clean and typo matches in one round on every part: a part scores
	 * typo matches only when its own list leaves them room, and one byte
	 * rejects most paths there, so this costs less than a second round
	 * would in waking the pool again.
	 */
	return search_round(p, n, q, s, top, bonus, cancel,
	    search_floor0(p, q, bonus, nw, top->k), regex_errors, nw);
}
