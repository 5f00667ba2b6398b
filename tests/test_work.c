/*
 * test_work.c - the bounded worker queue: a full queue refuses, jobs
 * start in the order queued, cancel before and during a run, every
 * done() exactly once on the loop's thread, freeing a busy pool, and the
 * workers' lower priority.
 *
 * A "gate" holds a worker inside a job until the test opens it, so what
 * is queued and what is running is known, not hoped for; every wait has
 * a deadline, and every loop a watchdog timer.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../indexer/loop.h"
#include "../indexer/work.h"

#define DEADLINE_S 10

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int started;			/* jobs whose run() began */
static int run_order[16], run_n;
static int done_n, done_cancelled, done_stop_at;
static pthread_t loop_thread;
static int seen_nice;

struct job {
	struct work w;
	int num;
	bool gated;			/* wait for the gate */
	bool spin;			/* run until cancelled */
	bool saw_cancel;
	bool done_called;
	bool done_cancelled;
	bool on_loop_thread;		/* where run() ran: must be false */
};

static void
reset(void)
{
	gate_open = false;
	started = run_n = done_n = done_cancelled = 0;
	done_stop_at = -1;
	seen_nice = 99;
	loop_thread = pthread_self();
}

static struct timespec
deadline(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += DEADLINE_S;
	return ts;
}

static void
job_run(struct work *w)
{
	struct job *j = w->arg;
	struct timespec dl = deadline();

	/* No cmocka assert here: it would longjmp out of another thread. */
	j->on_loop_thread = pthread_equal(pthread_self(), loop_thread);
	pthread_mutex_lock(&mu);
	errno = 0;
	seen_nice = getpriority(PRIO_PROCESS, (id_t)gettid());
	run_order[run_n++] = j->num;
	started++;
	pthread_cond_broadcast(&cv);
	while (j->gated && !gate_open)
		if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&mu);
	if (j->spin) {
		/* A long query polling its flag between chunks. */
		while (!work_cancelled(w)) {
			struct timespec now;

			clock_gettime(CLOCK_REALTIME, &now);
			if (now.tv_sec > dl.tv_sec)
				return;
			usleep(100);
		}
		j->saw_cancel = true;
	}
}

static void
job_done(struct work *w, bool cancelled)
{
	struct job *j = w->arg;

	assert_true(pthread_equal(pthread_self(), loop_thread));
	assert_false(j->done_called);
	assert_false(j->on_loop_thread);
	j->done_called = true;
	j->done_cancelled = cancelled;
	done_n++;
	done_cancelled += cancelled;
}

static void
stop_when_done(struct loop *l, void *arg)
{
	(void)arg;
	if (done_n == done_stop_at)
		loop_stop(l);
}

static void
watchdog_fire(struct loop *l, struct loop_timer *t)
{
	(void)l;
	(void)t;
	fail_msg("the loop was still running after %d s", DEADLINE_S);
}

/* Runs the loop until n done() calls have come. */
static void
run_until_done(struct loop *l, int n)
{
	struct loop_timer wd;

	memset(&wd, 0, sizeof(wd));
	done_stop_at = n;
	if (done_n == n)
		return;
	loop_timer_start(l, &wd, DEADLINE_S * 1000, 0, watchdog_fire, NULL);
	loop_before_sleep(l, stop_when_done, NULL);
	assert_int_equal(loop_run(l), 0);
	loop_timer_stop(l, &wd);
	loop_before_sleep(l, NULL, NULL);
}

/* Waits (with a deadline) until n jobs have started running. */
static void
wait_started(int n)
{
	struct timespec dl = deadline();

	pthread_mutex_lock(&mu);
	while (started < n)
		if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT)
			break;
	assert_int_equal(started, n);
	pthread_mutex_unlock(&mu);
}

static void
open_gate(void)
{
	pthread_mutex_lock(&mu);
	gate_open = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static struct work_pool *
pool(struct loop *l, int threads, size_t max_queued, int nice)
{
	struct work_limits lim = { threads, max_queued, nice };
	struct fidx_err err;
	struct work_pool *p = work_pool_new(l, &lim, &err);

	if (p == NULL)
		fail_msg("work_pool_new: %s", err.msg);
	return p;
}

static void
submit(struct work_pool *p, struct job *j)
{
	assert_int_equal(work_submit(p, &j->w, job_run, job_done, j), 0);
}

static void
test_full_queue_refuses_then_drains_in_order(void **state)
{
	struct loop *l = loop_new();
	struct work_pool *p;
	struct job j[5], extra;
	struct work_stats st;

	(void)state;
	reset();
	memset(j, 0, sizeof(j));
	memset(&extra, 0, sizeof(extra));
	p = pool(l, 1, 3, 0);
	for (int i = 0; i < 5; i++) {
		j[i].num = i;
		j[i].gated = i == 0;
	}
	submit(p, &j[0]);
	wait_started(1);
	/* One running, three queued: the queue's limit. */
	for (int i = 1; i < 4; i++)
		submit(p, &j[i]);
	assert_int_equal(work_submit(p, &extra.w, job_run, job_done, &extra),
	    -1);
	assert_int_equal(errno, EBUSY);
	work_get_stats(p, &st);
	assert_int_equal(st.queued, 3);
	assert_int_equal(st.max_queued, 3);
	assert_int_equal(st.running, 1);
	assert_int_equal(st.count.refused_busy, 1);
	assert_int_equal(st.count.submitted, 4);
	open_gate();
	run_until_done(l, 4);
	/* Room again once the queue drained. */
	submit(p, &j[4]);
	run_until_done(l, 5);
	assert_int_equal(run_n, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(run_order[i], i);
		assert_true(j[i].done_called);
		assert_false(j[i].done_cancelled);
	}
	assert_false(extra.done_called);
	work_get_stats(p, &st);
	assert_int_equal(st.count.completed, 5);
	assert_int_equal(st.queued, 0);
	work_pool_free(p);
	loop_free(l);
}

static void
test_cancel_queued_never_runs(void **state)
{
	struct loop *l = loop_new();
	struct work_pool *p;
	struct job j[3];
	struct work_stats st;

	(void)state;
	reset();
	memset(j, 0, sizeof(j));
	p = pool(l, 1, 4, 0);
	for (int i = 0; i < 3; i++)
		j[i].num = i;
	j[0].gated = true;
	submit(p, &j[0]);
	wait_started(1);
	submit(p, &j[1]);
	submit(p, &j[2]);
	work_cancel(p, &j[1].w);
	/* done() comes from the loop, not from inside work_cancel(). */
	assert_false(j[1].done_called);
	work_cancel(p, &j[1].w);
	run_until_done(l, 1);
	assert_true(j[1].done_called);
	assert_true(j[1].done_cancelled);
	open_gate();
	run_until_done(l, 3);
	assert_int_equal(run_n, 2);
	assert_int_equal(run_order[0], 0);
	assert_int_equal(run_order[1], 2);
	assert_false(j[2].done_cancelled);
	work_get_stats(p, &st);
	assert_int_equal(st.count.cancelled, 1);
	assert_int_equal(st.count.completed, 2);
	/* A finished job: cancelling it is a no-op. */
	work_cancel(p, &j[2].w);
	work_get_stats(p, &st);
	assert_int_equal(st.count.cancelled, 1);
	work_pool_free(p);
	loop_free(l);
}

static void
test_cancel_running_job_stops_it(void **state)
{
	struct loop *l = loop_new();
	struct work_pool *p;
	struct job j = { .num = 0, .spin = true };

	(void)state;
	reset();
	p = pool(l, 2, 4, 0);
	submit(p, &j);
	wait_started(1);
	work_cancel(p, &j.w);
	run_until_done(l, 1);
	assert_true(j.saw_cancel);
	assert_true(j.done_cancelled);
	work_pool_free(p);
	loop_free(l);
}

static void
test_free_busy_pool_calls_every_done(void **state)
{
	struct loop *l = loop_new();
	struct work_pool *p;
	struct job *j = calloc(4, sizeof(*j));

	(void)state;
	reset();
	assert_non_null(j);
	p = pool(l, 1, 8, 0);
	j[0].spin = true;
	for (int i = 0; i < 4; i++) {
		j[i].num = i;
		submit(p, &j[i]);
	}
	wait_started(1);
	work_pool_free(p);
	assert_int_equal(done_n, 4);
	assert_int_equal(done_cancelled, 4);
	assert_true(j[0].saw_cancel);
	assert_int_equal(run_n, 1);
	free(j);
	loop_free(l);
}

static void
test_workers_give_way_to_the_loop(void **state)
{
	struct loop *l = loop_new();
	struct work_pool *p;
	struct job j = { .num = 0 };
	int base;

	(void)state;
	reset();
	errno = 0;
	base = getpriority(PRIO_PROCESS, 0);
	assert_int_equal(errno, 0);
	p = pool(l, 1, 1, 5);
	submit(p, &j);
	run_until_done(l, 1);
	assert_int_equal(seen_nice, base + 5 > 19 ? 19 : base + 5);
	/* The process itself (the loop) kept its priority. */
	assert_int_equal(getpriority(PRIO_PROCESS, 0), base);
	work_pool_free(p);
	loop_free(l);
}

static void
test_bad_limits_leave_nothing(void **state)
{
	struct loop *l = loop_new();
	struct work_limits lim = { 0, 1, 0 };
	struct fidx_err err;

	(void)state;
	assert_null(work_pool_new(l, &lim, &err));
	assert_non_null(strstr(err.msg, "workers must be"));
	lim.threads = WORK_MAX_THREADS + 1;
	assert_null(work_pool_new(l, &lim, &err));
	loop_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_queue_refuses_then_drains_in_order),
		cmocka_unit_test(test_cancel_queued_never_runs),
		cmocka_unit_test(test_cancel_running_job_stops_it),
		cmocka_unit_test(test_free_busy_pool_calls_every_done),
		cmocka_unit_test(test_workers_give_way_to_the_loop),
		cmocka_unit_test(test_bad_limits_leave_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
