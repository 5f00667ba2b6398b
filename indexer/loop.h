/*
 * loop.h - the daemon's one event loop: fds, timers, a before-sleep step.
 *
 * Owns: the epoll instance, the list of armed timers, the cached clock.
 * Never touches: what the callbacks do, sockets' contents, threads (it
 * runs on one thread; other threads wake it through an fd of their own,
 * such as an eventfd registered here).
 *
 * Handles are the caller's memory (libuv's style): a struct loop_io or
 * struct loop_timer lives inside whatever it serves (a client, a project,
 * a parked request), so registering allocates nothing and nothing here
 * grows with input; the number of handles is bounded by their owners'
 * own caps. An owner must stop a handle before freeing it.
 *
 * Callbacks may start and stop any handle, their own included, and may
 * stop the loop. An io stopped inside a callback gets no further events
 * from the batch being dispatched, so its owner may free it at once.
 *
 * One turn: wait for fds until the nearest timer is due (or forever),
 * dispatch the fds that are ready, fire the timers that are due, then run
 * the before-sleep step, which is where deferred work belongs (freeing
 * dead clients, answering requests that became ready): it runs once per
 * turn, after everything that could have made work.
 */
#ifndef FIDX_LOOP_H
#define FIDX_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_io;
struct loop_timer;

/* events: LOOP_READ and/or LOOP_WRITE, plus LOOP_HUP or LOOP_ERR. */
#define LOOP_READ	0x1u
#define LOOP_WRITE	0x4u	/* EPOLLIN and EPOLLOUT, so no translation */
#define LOOP_ERR	0x8u
#define LOOP_HUP	0x10u

typedef void loop_io_fn(struct loop *l, struct loop_io *io, uint32_t events);
typedef void loop_timer_fn(struct loop *l, struct loop_timer *t);
typedef void loop_step_fn(struct loop *l, void *arg);

struct loop_io {
	int fd;
	uint32_t events;		/* what is asked for */
	loop_io_fn *fn;
	void *arg;			/* the owner's, untouched here */
	bool active;
};

struct loop_timer {
	uint64_t due_ms;		/* on the loop's monotonic clock */
	uint64_t every_ms;		/* 0: one-shot */
	uint64_t seq;			/* ties fire in the order armed */
	loop_timer_fn *fn;
	void *arg;
	struct loop_timer *prev, *next;
	enum { LOOP_TIMER_IDLE, LOOP_TIMER_ARMED, LOOP_TIMER_READY } state;
};

/* A new loop; NULL with errno set (nothing to release). */
struct loop *loop_new(void);
/* Frees l; every handle must already be stopped. */
void loop_free(struct loop *l);

/*
 * Watches fd for events (LOOP_READ, LOOP_WRITE) and calls fn with the
 * ones that happened; io->arg is set to arg. -1 with errno on failure,
 * with io left inactive.
 */
int loop_io_start(struct loop *l, struct loop_io *io, int fd,
    uint32_t events, loop_io_fn *fn, void *arg);
/* Changes what io waits for; a no-op when it is unchanged. */
int loop_io_set(struct loop *l, struct loop_io *io, uint32_t events);
/* Stops io (before its fd is closed); safe on an inactive io. */
void loop_io_stop(struct loop *l, struct loop_io *io);

/*
 * Arms t to fire after after_ms, then every every_ms (0: once). Arming
 * an armed timer moves it. A timer armed while timers are firing waits
 * for the next turn however short its delay, so a timer that keeps
 * re-arming itself at 0 ms cannot starve the fds.
 */
void loop_timer_start(struct loop *l, struct loop_timer *t,
    uint64_t after_ms, uint64_t every_ms, loop_timer_fn *fn, void *arg);
/* Disarms t; safe on a timer that is not armed. */
void loop_timer_stop(struct loop *l, struct loop_timer *t);
bool loop_timer_armed(const struct loop_timer *t);

/* Sets the one step run at the end of every turn (NULL: none). */
void loop_before_sleep(struct loop *l, loop_step_fn *fn, void *arg);

/* Runs turns until loop_stop(); 0 then, -1 with errno if epoll failed. */
int loop_run(struct loop *l);
/* Makes loop_run() return once the current turn is over. */
void loop_stop(struct loop *l);

/* The monotonic clock in ms, as read at the start of this turn's work. */
uint64_t loop_now_ms(const struct loop *l);

/* For stats: what is registered now, and turns run so far. */
struct loop_stats {
	uint64_t ios;
	uint64_t timers;
	uint64_t turns;
	uint64_t timers_fired;
};
void loop_get_stats(const struct loop *l, struct loop_stats *st);

#endif
