/* loop.c - see loop.h. */
#include "loop.h"
#include "../common/alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

_Static_assert(LOOP_READ == EPOLLIN && LOOP_WRITE == EPOLLOUT &&
    LOOP_ERR == EPOLLERR && LOOP_HUP == EPOLLHUP,
    "loop events are epoll's");

/* Events taken per epoll_wait; more simply wait for the next turn. */
#define LOOP_BATCH 64

struct loop {
	int epfd;
	bool stopping;
	uint64_t now_ms;
	uint64_t seq;

	/*
	 * Armed timers sorted by (due, seq), and those due this turn. A
	 * sorted list: inserting is linear, but the timers are few (a
	 * handful of the daemon's own plus one per parked request, so at
	 * most the client cap) and the nearest is always at the head.
	 */
	struct loop_timer *armed;
	struct loop_timer *ready, *ready_tail;

	/* The batch being dispatched, so loop_io_stop() can blank it. */
	struct epoll_event batch[LOOP_BATCH];
	int batch_n, batch_i;

	loop_step_fn *step;
	void *step_arg;
	struct loop_stats st;
};

static uint64_t
loop_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop *
loop_new(void)
{
	/* One per daemon, of fixed size: no input could make it fail. */
	struct loop *l = xcalloc(1, sizeof(*l));

	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		int e = errno;

		free(l);
		errno = e;
		return NULL;
	}
	l->now_ms = loop_clock_ms();
	return l;
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	close(l->epfd);
	free(l);
}

int
loop_io_start(struct loop *l, struct loop_io *io, int fd, uint32_t events,
    loop_io_fn *fn, void *arg)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->fd = fd;
	io->events = events;
	io->fn = fn;
	io->arg = arg;
	io->active = false;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		return -1;
	io->active = true;
	l->st.ios++;
	return 0;
}

int
loop_io_set(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (!io->active) {
		errno = EINVAL;
		return -1;
	}
	if (events == io->events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) == -1)
		return -1;
	io->events = events;
	return 0;
}

void
loop_io_stop(struct loop *l, struct loop_io *io)
{
	if (!io->active)
		return;
	/* Cannot fail for a registered fd that is still open. */
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->active = false;
	l->st.ios--;
	/* Its owner may free it as soon as we return. */
	for (int i = l->batch_i; i < l->batch_n; i++)
		if (l->batch[i].data.ptr == io)
			l->batch[i].data.ptr = NULL;
}

static void
loop_timer_unlink(struct loop *l, struct loop_timer *t)
{
	struct loop_timer **head = t->state == LOOP_TIMER_READY ? &l->ready :
	    &l->armed;

	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		*head = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	else if (t->state == LOOP_TIMER_READY)
		l->ready_tail = t->prev;
	t->prev = t->next = NULL;
	t->state = LOOP_TIMER_IDLE;
	l->st.timers--;
}

static void
loop_timer_insert(struct loop *l, struct loop_timer *t)
{
	struct loop_timer *prev = NULL, *cur = l->armed;

	while (cur != NULL && (cur->due_ms < t->due_ms ||
	    (cur->due_ms == t->due_ms && cur->seq < t->seq))) {
		prev = cur;
		cur = cur->next;
	}
	t->prev = prev;
	t->next = cur;
	if (prev != NULL)
		prev->next = t;
	else
		l->armed = t;
	if (cur != NULL)
		cur->prev = t;
	t->state = LOOP_TIMER_ARMED;
	l->st.timers++;
}

void
loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t after_ms,
    uint64_t every_ms, loop_timer_fn *fn, void *arg)
{
	if (t->state != LOOP_TIMER_IDLE)
		loop_timer_unlink(l, t);
	t->due_ms = l->now_ms + after_ms;
	t->every_ms = every_ms;
	t->seq = ++l->seq;
	t->fn = fn;
	t->arg = arg;
	loop_timer_insert(l, t);
}

void
loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	if (t->state != LOOP_TIMER_IDLE)
		loop_timer_unlink(l, t);
}

bool
loop_timer_armed(const struct loop_timer *t)
{
	return t->state != LOOP_TIMER_IDLE;
}

void
loop_before_sleep(struct loop *l, loop_step_fn *fn, void *arg)
{
	l->step = fn;
	l->step_arg = arg;
}

void
loop_stop(struct loop *l)
{
	l->stopping = true;
}

uint64_t
loop_now_ms(const struct loop *l)
{
	return l->now_ms;
}

void
loop_get_stats(const struct loop *l, struct loop_stats *st)
{
	*st = l->st;
}

/* epoll_wait's timeout: until the nearest timer, 0 if one is due. */
static int
loop_timeout(const struct loop *l)
{
	uint64_t now, left;

	if (l->armed == NULL)
		return -1;
	now = loop_clock_ms();
	if (l->armed->due_ms <= now)
		return 0;
	left = l->armed->due_ms - now;
	return left > 60000 ? 60000 : (int)left;
}

/*
 * Moves every timer due now to the ready list first, then fires them one
 * by one: a timer that a callback arms goes on the armed list, so it
 * waits for the next turn however short its delay.
 */
static void
loop_fire_timers(struct loop *l)
{
	struct loop_timer *t;

	while ((t = l->armed) != NULL && t->due_ms <= l->now_ms) {
		loop_timer_unlink(l, t);
		t->state = LOOP_TIMER_READY;
		t->prev = l->ready_tail;
		if (l->ready_tail != NULL)
			l->ready_tail->next = t;
		else
			l->ready = t;
		l->ready_tail = t;
		l->st.timers++;
	}
	while ((t = l->ready) != NULL) {
		loop_timer_unlink(l, t);
		if (t->every_ms != 0) {
			/* A late turn does not make a repeating timer burst. */
			t->due_ms += t->every_ms;
			if (t->due_ms <= l->now_ms)
				t->due_ms = l->now_ms + t->every_ms;
			t->seq = ++l->seq;
			loop_timer_insert(l, t);
		}
		l->st.timers_fired++;
		t->fn(l, t);
	}
}

int
loop_run(struct loop *l)
{
	l->stopping = false;
	while (!l->stopping) {
		int n = epoll_wait(l->epfd, l->batch, LOOP_BATCH,
		    loop_timeout(l));

		if (n == -1 && errno != EINTR)
			return -1;
		l->now_ms = loop_clock_ms();
		l->batch_n = n > 0 ? n : 0;
		for (l->batch_i = 0; l->batch_i < l->batch_n;) {
			struct epoll_event *ev = &l->batch[l->batch_i++];
			struct loop_io *io = ev->data.ptr;

			if (io != NULL)
				io->fn(l, io, ev->events);
		}
		l->batch_n = l->batch_i = 0;
		loop_fire_timers(l);
		if (l->step != NULL)
			l->step(l, l->step_arg);
		l->st.turns++;
	}
	return 0;
}
