/* search.c - see search.h. */
#include "search.h"
#include "../common/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct search_part {
	struct query_scratch *sc;	/* kept across queries */
	_Atomic int32_t *floor;		/* the pool's, or NULL alone */
	const struct query *q;
	const struct index_snapshot *s;
	size_t from, to;
	struct topk top;
	size_t matched;
	bool failed;
};

struct search_pool;

struct search_helper {
	struct search_pool *p;
	int slot;
};

struct search_pool {
	int threads;
	int started;			/* helpers running */
	pthread_t tids[SEARCH_MAX_THREADS];
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	uint64_t round;			/* bumped for each split query */
	int parts;			/* parts in this round */
	_Atomic int32_t floor;		/* the parts' shared k-th best */
	int pending;			/* helper parts not finished */
	bool stop;
	struct search_part part[SEARCH_MAX_THREADS];
	struct search_helper helpers[SEARCH_MAX_THREADS];
};

static void
search_part_run(struct search_part *pt)
{
	if (pt->sc == NULL ? (pt->sc = query_scratch_new(pt->q)) == NULL :
	    query_scratch_bind(pt->sc, pt->q) == -1) {
		pt->failed = true;
		return;
	}
	query_scratch_share_floor(pt->sc, pt->floor);
	pt->matched = query_run(pt->q, pt->s->arena, pt->s->entries, pt->from,
	    pt->to, &pt->top, pt->sc);
}

static void *
search_helper_main(void *arg)
{
	struct search_pool *p = ((struct search_helper *)arg)->p;
	int slot = ((struct search_helper *)arg)->slot;
	uint64_t seen = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->round == seen)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break;
		seen = p->round;
		if (slot >= p->parts)
			continue;
		pthread_mutex_unlock(&p->mu);
		search_part_run(&p->part[slot]);
		pthread_mutex_lock(&p->mu);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct search_pool *
search_pool_new(int threads, struct fidx_err *err)
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
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	for (int i = 1; i < threads; i++) {
		int e;

		p->helpers[i].p = p;
		p->helpers[i].slot = i;
		if ((e = pthread_create(&p->tids[i], NULL, search_helper_main,
		    &p->helpers[i])) != 0) {
			errno = e;
			fidx_error(err, "cannot start a search thread: %s",
			    strerror(e));
			search_pool_free(p);
			return NULL;
		}
		p->started = i;
	}
	return p;
}

void
search_pool_free(struct search_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
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

ssize_t
search_run(struct search_pool *p, const struct query *q,
    const struct index_snapshot *s, struct topk *top)
{
	int n = s->n < SEARCH_SPLIT_MIN ? 1 : p->threads;
	ssize_t matched = 0;
	bool failed = false;
	int ready = 0;

	for (; ready < n; ready++) {
		struct search_part *pt = &p->part[ready];
		struct query_scratch *sc = pt->sc;

		memset(pt, 0, sizeof(*pt));
		pt->sc = sc;
		pt->floor = n > 1 ? &p->floor : NULL;
		pt->q = q;
		pt->s = s;
		pt->from = s->n * (size_t)ready / (size_t)n;
		pt->to = s->n * (size_t)(ready + 1) / (size_t)n;
		if (topk_init(&pt->top, top->k) == -1)
			break;
	}
	if (ready < n) {
		failed = true;
		goto out;
	}
	if (n > 1) {
		atomic_store(&p->floor, MATCH_NONE);
		pthread_mutex_lock(&p->mu);
		p->parts = n;
		p->pending = n - 1;
		p->round++;
		pthread_cond_broadcast(&p->work);
		pthread_mutex_unlock(&p->mu);
	}
	search_part_run(&p->part[0]);
	if (n > 1) {
		pthread_mutex_lock(&p->mu);
		while (p->pending > 0)
			pthread_cond_wait(&p->done, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
	for (int i = 0; i < n; i++) {
		failed |= p->part[i].failed;
		matched += (ssize_t)p->part[i].matched;
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
	return matched;
}
