/*
 * test_loop.c - the event loop: timer order, handles stopped from their
 * own callbacks, the before-sleep step, stop.
 *
 * Nothing here depends on how fast the machine is: orders and counts are
 * what the loop promises whatever the timing, and every test arms a
 * watchdog timer that fails it if the loop would otherwise run for ever.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../indexer/loop.h"

#define WATCHDOG_MS 10000

static void
watchdog_fire(struct loop *l, struct loop_timer *t)
{
	(void)l;
	(void)t;
	fail_msg("the loop was still running after %d ms", WATCHDOG_MS);
}

/* A loop with a watchdog armed; the caller stops the watchdog. */
static struct loop *
loop_with_watchdog(struct loop_timer *wd)
{
	struct loop *l = loop_new();

	assert_non_null(l);
	memset(wd, 0, sizeof(*wd));
	loop_timer_start(l, wd, WATCHDOG_MS, 0, watchdog_fire, NULL);
	return l;
}

/* Fired timers write their number here, in order. */
struct order {
	int seen[16];
	int n;
	int last;		/* the number whose firing stops the loop */
};

struct numbered {
	struct loop_timer t;
	struct order *o;
	int num;
};

static void
numbered_fire(struct loop *l, struct loop_timer *t)
{
	struct numbered *nt = t->arg;

	assert_true(nt->o->n < 16);
	nt->o->seen[nt->o->n++] = nt->num;
	if (nt->num == nt->o->last)
		loop_stop(l);
}

static void
test_timers_fire_in_order(void **state)
{
	/* Due times; equal ones fire in the order armed. */
	static const uint64_t after[] = { 30, 10, 20, 0, 10, 0 };
	static const int want[] = { 3, 5, 1, 4, 2, 0 };
	struct numbered nt[6];
	struct order o = { .last = 0 };
	struct loop_timer wd;
	struct loop *l = loop_with_watchdog(&wd);
	struct loop_stats st;

	(void)state;
	memset(nt, 0, sizeof(nt));
	for (int i = 0; i < 6; i++) {
		nt[i].o = &o;
		nt[i].num = i;
		loop_timer_start(l, &nt[i].t, after[i], 0, numbered_fire,
		    &nt[i]);
	}
	loop_get_stats(l, &st);
	assert_int_equal(st.timers, 7);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(o.n, 6);
	assert_memory_equal(o.seen, want, sizeof(want));
	for (int i = 0; i < 6; i++)
		assert_false(loop_timer_armed(&nt[i].t));
	loop_timer_stop(l, &wd);
	loop_get_stats(l, &st);
	assert_int_equal(st.timers, 0);
	assert_int_equal(st.timers_fired, 6);
	loop_free(l);
}

static void
test_timer_moved_and_stopped(void **state)
{
	struct numbered a = { 0 }, b = { 0 }, c = { 0 };
	struct order o = { .last = 3 };
	struct loop_timer wd;
	struct loop *l = loop_with_watchdog(&wd);

	(void)state;
	a.o = b.o = c.o = &o;
	a.num = 1;
	b.num = 2;
	c.num = 3;
	loop_timer_start(l, &a.t, 0, 0, numbered_fire, &a);
	loop_timer_start(l, &b.t, 0, 0, numbered_fire, &b);
	loop_timer_start(l, &c.t, 5, 0, numbered_fire, &c);
	/* Re-arming moves a timer; stopping one never fires it. Moved past
	 * the watchdog, a cannot fall due with c even on a machine slow
	 * enough to wake late (10 ms did, once, under load). */
	loop_timer_start(l, &a.t, WATCHDOG_MS * 2, 0, numbered_fire, &a);
	loop_timer_stop(l, &b.t);
	loop_timer_stop(l, &b.t);
	assert_false(loop_timer_armed(&b.t));
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.seen[0], 3);
	assert_true(loop_timer_armed(&a.t));
	loop_timer_stop(l, &a.t);
	loop_timer_stop(l, &wd);
	loop_free(l);
}

/* Two timers due in one turn: the first stops the second. */
struct pair {
	struct loop_timer first, second, end;
	int first_n, second_n;
};

static void
pair_first(struct loop *l, struct loop_timer *t)
{
	struct pair *p = t->arg;

	p->first_n++;
	loop_timer_stop(l, &p->second);
}

static void
pair_second(struct loop *l, struct loop_timer *t)
{
	struct pair *p = t->arg;

	(void)l;
	p->second_n++;
}

static void
pair_end(struct loop *l, struct loop_timer *t)
{
	(void)t;
	loop_stop(l);
}

static void
test_timer_stopped_by_an_earlier_one_in_its_turn(void **state)
{
	struct pair p;
	struct loop_timer wd;
	struct loop *l = loop_with_watchdog(&wd);

	(void)state;
	memset(&p, 0, sizeof(p));
	loop_timer_start(l, &p.first, 0, 0, pair_first, &p);
	loop_timer_start(l, &p.second, 0, 0, pair_second, &p);
	loop_timer_start(l, &p.end, 1, 0, pair_end, &p);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(p.first_n, 1);
	assert_int_equal(p.second_n, 0);
	loop_timer_stop(l, &wd);
	loop_free(l);
}

/* A repeating timer that stops itself after its third firing. */
struct rep {
	struct loop_timer t;
	int n;
};

static void
rep_fire(struct loop *l, struct loop_timer *t)
{
	struct rep *r = t->arg;

	assert_true(loop_timer_armed(t));	/* re-armed before the call */
	if (++r->n == 3) {
		loop_timer_stop(l, t);
		loop_stop(l);
	}
}

static void
test_repeating_timer(void **state)
{
	struct rep r = { 0 };
	struct loop_timer wd;
	struct loop *l = loop_with_watchdog(&wd);
	struct loop_stats st;

	(void)state;
	loop_timer_start(l, &r.t, 0, 2, rep_fire, &r);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.n, 3);
	assert_false(loop_timer_armed(&r.t));
	loop_get_stats(l, &st);
	/* Each firing took a turn of its own: no burst. */
	assert_true(st.turns >= 3);
	loop_timer_stop(l, &wd);
	loop_free(l);
}

/*
 * A timer that re-arms itself at 0 ms fires once per turn, and a
 * readable fd still gets its turn.
 */
struct starve {
	struct loop_timer t;
	struct loop_io io;
	int timer_n, io_n;
};

static void
starve_timer(struct loop *l, struct loop_timer *t)
{
	struct starve *s = t->arg;

	s->timer_n++;
	loop_timer_start(l, t, 0, 0, starve_timer, s);
}

static void
starve_io(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct starve *s = io->arg;

	assert_true(events & LOOP_READ);
	s->io_n++;
	loop_stop(l);
}

static void
test_zero_timer_does_not_starve_fds(void **state)
{
	struct starve s;
	struct loop_timer wd;
	struct loop *l = loop_with_watchdog(&wd);
	struct loop_stats st;
	int fds[2];

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(pipe(fds), 0);
	loop_timer_start(l, &s.t, 0, 0, starve_timer, &s);
	assert_int_equal(loop_io_start(l, &s.io, fds[0], LOOP_READ,
	    starve_io, &s), 0);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(s.io_n, 1);
	loop_get_stats(l, &st);
	assert_true((uint64_t)s.timer_n <= st.turns);
	loop_io_stop(l, &s.io);
	loop_timer_stop(l, &s.t);
	loop_timer_stop(l, &wd);
	close(fds[0]);
	close(fds[1]);
	loop_free(l);
}

/*
 * Two readable pipes in one batch; whichever is dispatched first stops
 * and frees both handles (as a server frees two clients at once). The
 * other must get no callback: ASan would see the freed handle read.
 */
struct twin {
	struct loop_io io;
	struct twin **both;
	int fd;
};

static int twin_calls;

static void
twin_fire(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct twin **both = ((struct twin *)io->arg)->both;

	(void)events;
	twin_calls++;
	for (int i = 0; i < 2; i++) {
		loop_io_stop(l, &both[i]->io);
		close(both[i]->fd);
		free(both[i]);
		both[i] = NULL;
	}
	loop_stop(l);
}

static void
test_io_stopped_inside_a_callback(void **state)
{
	struct twin *both[2];
	int w[2];
	struct loop_timer wd;
	struct loop *l = loop_with_watchdog(&wd);
	struct loop_stats st;

	(void)state;
	twin_calls = 0;
	for (int i = 0; i < 2; i++) {
		int fds[2];

		assert_int_equal(pipe(fds), 0);
		both[i] = calloc(1, sizeof(*both[i]));
		assert_non_null(both[i]);
		both[i]->both = both;
		both[i]->fd = fds[0];
		w[i] = fds[1];
		assert_int_equal(loop_io_start(l, &both[i]->io, fds[0],
		    LOOP_READ, twin_fire, both[i]), 0);
		assert_int_equal(write(fds[1], "x", 1), 1);
	}
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(twin_calls, 1);
	assert_null(both[0]);
	assert_null(both[1]);
	loop_get_stats(l, &st);
	assert_int_equal(st.ios, 0);
	loop_timer_stop(l, &wd);
	close(w[0]);
	close(w[1]);
	loop_free(l);
}

/* Write interest turned on and off; the before-sleep step once a turn. */
struct rw {
	struct loop_io io;
	int writable_n, steps, turns_at_stop;
};

static void
rw_fire(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct rw *r = io->arg;

	assert_true(events & LOOP_WRITE);
	r->writable_n++;
	/* Asking for what is already asked for changes nothing. */
	assert_int_equal(loop_io_set(l, io, LOOP_WRITE), 0);
	assert_int_equal(loop_io_set(l, io, LOOP_READ), 0);
}

static void
rw_step(struct loop *l, void *arg)
{
	struct rw *r = arg;
	struct loop_stats st;

	r->steps++;
	loop_get_stats(l, &st);
	/* Two quiet turns after the write: reading only gives no events. */
	if (r->writable_n == 1 && r->steps >= 3) {
		r->turns_at_stop = (int)st.turns + 1;
		loop_stop(l);
	}
}

static void
rw_tick(struct loop *l, struct loop_timer *t)
{
	(void)l;
	(void)t;
}

static void
test_io_set_and_before_sleep(void **state)
{
	struct rw r;
	struct loop_timer wd, tick;
	struct loop *l = loop_with_watchdog(&wd);
	struct loop_stats st;
	int fds[2];

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(&tick, 0, sizeof(tick));
	assert_int_equal(pipe(fds), 0);
	/* The write end of an empty pipe is writable at once. */
	assert_int_equal(loop_io_start(l, &r.io, fds[1], LOOP_WRITE, rw_fire,
	    &r), 0);
	loop_before_sleep(l, rw_step, &r);
	/* Keeps turns coming while nothing else happens. */
	loop_timer_start(l, &tick, 1, 1, rw_tick, NULL);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.writable_n, 1);
	loop_get_stats(l, &st);
	assert_int_equal(st.turns, (uint64_t)r.turns_at_stop);
	assert_int_equal((uint64_t)r.steps, st.turns);
	loop_io_stop(l, &r.io);
	loop_io_stop(l, &r.io);
	assert_int_equal(loop_io_set(l, &r.io, LOOP_READ), -1);
	loop_timer_stop(l, &tick);
	loop_timer_stop(l, &wd);
	close(fds[0]);
	close(fds[1]);
	loop_free(l);
}

static void
test_io_start_fails_cleanly(void **state)
{
	struct loop *l = loop_new();
	struct loop_io io;
	struct loop_stats st;

	(void)state;
	assert_non_null(l);
	assert_int_equal(loop_io_start(l, &io, -1, LOOP_READ, NULL, NULL),
	    -1);
	assert_false(io.active);
	loop_io_stop(l, &io);
	loop_get_stats(l, &st);
	assert_int_equal(st.ios, 0);
	loop_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_fire_in_order),
		cmocka_unit_test(test_timer_moved_and_stopped),
		cmocka_unit_test(test_timer_stopped_by_an_earlier_one_in_its_turn),
		cmocka_unit_test(test_repeating_timer),
		cmocka_unit_test(test_zero_timer_does_not_starve_fds),
		cmocka_unit_test(test_io_stopped_inside_a_callback),
		cmocka_unit_test(test_io_set_and_before_sleep),
		cmocka_unit_test(test_io_start_fails_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
