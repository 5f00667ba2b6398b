/* work.c - see work.h. */
#include "work.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

struct work_pool {
	struct loop *loop;
	struct work_limits lim;
	struct loop_io io;
	int efd;

	pthread_mutex_t mu;		/* guards everything below */
	pthread_cond_t cv;
	struct work *queue, *queue_tail;
	size_t queued;
	struct work *finished, *finished_tail;
	struct work *current[WORK_MAX_THREADS];	/* what each worker runs */
	size_t running;
	bool stop;
	struct work_counters count;

	pthread_t tids[WORK_MAX_THREADS];
	int started;
};

struct work_worker {
	struct work_pool *p;
	int slot;
};

/* Under mu. The loop is woken by work_wake() once mu is released. */
static void
work_finish_locked(struct work_pool *p, struct work *w)
{
	w->state = WORK_FINISHED;
	w->next = NULL;
	if (p->finished_tail != NULL)
		p->finished_tail->next = w;
	else
		p->finished = w;
	p->finished_tail = w;
}

static void
work_wake(struct work_pool *p)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: the loop will wake. */
	(void)!write(p->efd, &one, sizeof(one));
}

static void *
work_main(void *arg)
{
	struct work_pool *p = ((struct work_worker *)arg)->p;
	int slot = ((struct work_worker *)arg)->slot;
	struct work *w;

	free(arg);
	/* Per thread on Linux: only this worker gives way to the loop. */
	errno = 0;
	int base = getpriority(PRIO_PROCESS, (id_t)gettid());
	if (errno == 0 && p->lim.nice != 0)
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(),
		    base + p->lim.nice);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->queue == NULL && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->queue == NULL)
			break;
		w = p->queue;
		if ((p->queue = w->next) == NULL)
			p->queue_tail = NULL;
		p->queued--;
		w->state = WORK_RUNNING;
		p->current[slot] = w;
		p->running++;
		pthread_mutex_unlock(&p->mu);

		w->run(w);

		pthread_mutex_lock(&p->mu);
		w->ran = true;
		p->current[slot] = NULL;
		p->running--;
		work_finish_locked(p, w);
		pthread_mutex_unlock(&p->mu);
		work_wake(p);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Hands finished jobs back, on the loop's thread. */
static void
work_drain(struct work_pool *p)
{
	struct work *w, *next;

	pthread_mutex_lock(&p->mu);
	w = p->finished;
	p->finished = p->finished_tail = NULL;
	pthread_mutex_unlock(&p->mu);
	for (; w != NULL; w = next) {
		bool ran = w->ran;
		bool cancelled = !ran || atomic_load(&w->cancel);

		/* done() may free w or submit it again. */
		next = w->next;
		w->state = WORK_IDLE;
		w->next = NULL;
		if (ran) {
			pthread_mutex_lock(&p->mu);
			p->count.completed++;
			pthread_mutex_unlock(&p->mu);
		}
		w->done(w, cancelled);
	}
}

static void
work_readable(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct work_pool *p = io->arg;
	uint64_t n;

	(void)l;
	(void)events;
	(void)!read(p->efd, &n, sizeof(n));
	work_drain(p);
}

struct work_pool *
work_pool_new(struct loop *l, const struct work_limits *lim,
    struct fidx_err *err)
{
	struct work_pool *p;

	if (lim->threads < 1 || lim->threads > WORK_MAX_THREADS) {
		fidx_error(err, "workers must be 1 to %d, not %d",
		    WORK_MAX_THREADS, lim->threads);
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		fidx_error(err, "out of memory");
		return NULL;
	}
	p->loop = l;
	p->lim = *lim;
	p->efd = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		fidx_error(err, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (loop_io_start(l, &p->io, p->efd, LOOP_READ, work_readable,
	    p) == -1) {
		fidx_error(err, "cannot watch the workers' eventfd: %s",
		    strerror(errno));
		goto fail;
	}
	for (; p->started < lim->threads; p->started++) {
		struct work_worker *a = malloc(sizeof(*a));
		int e;

		if (a == NULL) {
			fidx_error(err, "out of memory");
			goto fail;
		}
		a->p = p;
		a->slot = p->started;
		if ((e = pthread_create(&p->tids[p->started], NULL, work_main,
		    a)) != 0) {
			free(a);
			fidx_error(err, "cannot start a worker: %s",
			    strerror(e));
			goto fail;
		}
	}
	return p;
fail:
	work_pool_free(p);
	return NULL;
}

void
work_pool_free(struct work_pool *p)
{
	struct work *w;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	while ((w = p->queue) != NULL) {
		p->queue = w->next;
		atomic_store(&w->cancel, true);
		p->count.cancelled++;
		work_finish_locked(p, w);
	}
	p->queue_tail = NULL;
	p->queued = 0;
	for (int i = 0; i < p->started; i++) {
		if (p->current[i] != NULL) {
			atomic_store(&p->current[i]->cancel, true);
			p->count.cancelled++;
		}
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->started; i++)
		pthread_join(p->tids[i], NULL);
	work_drain(p);
	if (p->io.active)
		loop_io_stop(p->loop, &p->io);
	if (p->efd >= 0)
		close(p->efd);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int
work_submit(struct work_pool *p, struct work *w, work_run_fn *run,
    work_done_fn *done, void *arg)
{
	pthread_mutex_lock(&p->mu);
	if (p->stop) {
		pthread_mutex_unlock(&p->mu);
		errno = ESHUTDOWN;
		return -1;
	}
	if (p->queued >= p->lim.max_queued) {
		p->count.refused_busy++;
		pthread_mutex_unlock(&p->mu);
		errno = EBUSY;
		return -1;
	}
	w->run = run;
	w->done = done;
	w->arg = arg;
	atomic_store(&w->cancel, false);
	w->ran = false;
	w->state = WORK_QUEUED;
	w->next = NULL;
	if (p->queue_tail != NULL)
		p->queue_tail->next = w;
	else
		p->queue = w;
	p->queue_tail = w;
	p->queued++;
	p->count.submitted++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void
work_cancel(struct work_pool *p, struct work *w)
{
	bool wake = false;

	pthread_mutex_lock(&p->mu);
	if (w->state == WORK_QUEUED) {
		struct work **pp = &p->queue, *prev = NULL;

		/* Linear, but the queue is at most max_queued long. */
		while (*pp != w) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = w->next;
		if (p->queue_tail == w)
			p->queue_tail = prev;
		p->queued--;
		atomic_store(&w->cancel, true);
		p->count.cancelled++;
		work_finish_locked(p, w);
		wake = true;
	} else if ((w->state == WORK_RUNNING || w->state == WORK_FINISHED) &&
	    !atomic_load(&w->cancel)) {
		/* Finished but not handed back: its answer is stale too. */
		atomic_store(&w->cancel, true);
		p->count.cancelled++;
	}
	pthread_mutex_unlock(&p->mu);
	if (wake)
		work_wake(p);
}

bool
work_cancelled(const struct work *w)
{
	return atomic_load_explicit(&w->cancel, memory_order_relaxed);
}

void
work_get_stats(struct work_pool *p, struct work_stats *st)
{
	pthread_mutex_lock(&p->mu);
	st->queued = p->queued;
	st->max_queued = p->lim.max_queued;
	st->running = p->running;
	st->threads = p->started;
	st->count = p->count;
	pthread_mutex_unlock(&p->mu);
}
