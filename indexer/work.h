/*
 * work.h - a bounded queue of jobs, run by a fixed set of worker threads,
 * finished on the loop.
 *
 * Owns: the worker threads, the queue of jobs not yet started (at most
 * max_queued of them: a full queue refuses, it never grows), the list of
 * jobs finished but not yet handed back, and the eventfd through which
 * the workers wake the loop.
 * Never touches: what a job does, the jobs' memory (the caller's: a
 * struct work lives inside the request it serves), sockets, JSON.
 *
 * A job's run() is called on a worker thread; its done() always on the
 * loop's thread, exactly once, whether it ran, was cancelled before it
 * started, or the pool is being freed. Between work_submit() and done()
 * the job belongs to the pool: its owner may only call work_cancel().
 *
 * Cancelling is cooperative: a job still queued is taken off the queue
 * and never runs; a running one sees work_cancelled() turn true and is
 * expected to stop at its next chunk. Either way done() is told.
 *
 * Workers run at a lower priority than the loop (a higher nice value),
 * so a long query cannot keep `ping` or a small project's query off the
 * CPU: with as many workers as cores, the loop would otherwise queue for
 * a core behind them.
 */
#ifndef FIDX_WORK_H
#define FIDX_WORK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/log.h"
#include "loop.h"

#define WORK_MAX_THREADS 16

struct work;
typedef void work_run_fn(struct work *w);
/* cancelled: run() never started, or work_cancel() came while it ran. */
typedef void work_done_fn(struct work *w, bool cancelled);

struct work {
	work_run_fn *run;
	work_done_fn *done;
	void *arg;			/* the owner's */
	atomic_bool cancel;
	bool ran;
	enum { WORK_IDLE, WORK_QUEUED, WORK_RUNNING, WORK_FINISHED } state;
	struct work *next;
};

struct work_limits {
	int threads;			/* 1..WORK_MAX_THREADS */
	size_t max_queued;		/* jobs waiting for a worker */
	int nice;			/* added to the workers' nice value */
};

struct work_counters {
	uint64_t submitted;
	uint64_t refused_busy;		/* the queue was full */
	uint64_t cancelled;		/* queued ones dropped + running told */
	uint64_t completed;		/* done() called after run() */
};

struct work_pool;

/*
 * Starts lim->threads workers whose finished jobs the loop l hands back.
 * NULL with err on failure, leaving nothing to release.
 */
struct work_pool *work_pool_new(struct loop *l, const struct work_limits *lim,
    struct fidx_err *err);

/*
 * Cancels every job, waits for the running ones, calls every pending
 * done() (with cancelled true for those that did not finish), joins the
 * workers and frees the pool. Called on the loop's thread.
 */
void work_pool_free(struct work_pool *p);

/*
 * Queues w to run run(w) on a worker, then done(w, ...) on the loop.
 * -1 with errno EBUSY when max_queued jobs are already waiting (w is
 * untouched and stays the caller's), ESHUTDOWN when the pool is stopping.
 */
int work_submit(struct work_pool *p, struct work *w, work_run_fn *run,
    work_done_fn *done, void *arg);

/*
 * Asks w to stop: a queued job is dropped at once (its done() comes from
 * the loop, not from inside this call); a running one is told through
 * work_cancelled(). Either way, and also for one that finished but whose
 * done() has not been called yet, done() is told cancelled: a caller
 * cancels because the answer is no longer wanted. A no-op once done()
 * was called.
 */
void work_cancel(struct work_pool *p, struct work *w);

/* For run(): true once the job has been cancelled. */
bool work_cancelled(const struct work *w);

struct work_stats {
	size_t queued, max_queued;
	size_t running;
	int threads;
	struct work_counters count;
};
void work_get_stats(struct work_pool *p, struct work_stats *st);

#endif
