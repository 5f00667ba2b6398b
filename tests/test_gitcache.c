/*
 * test_gitcache.c - the git status cache on a fake clock: hits, misses,
 * single flight and its waiter cap, the TTL and max_age_ms, the project
 * (LRU) and byte caps at limit-1, limit and limit+1, statuses too big to
 * keep, and (on a real loop) the timer that frees expired entries.
 * The statuses are stand-ins of a chosen size: the cache never reads
 * more of one than its size and its truncated flag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../indexer/gitcache.h"

#define STATUS_BYTES 1000

static struct repo_status *
fake_status(size_t bytes, bool truncated)
{
	struct repo_status *s;

	assert_true(bytes >= sizeof(*s));
	assert_non_null(s = calloc(1, bytes));
	s->bytes = bytes;
	s->truncated = truncated;
	return s;
}

static struct gitcache *
cache_new(uint64_t ttl, size_t projects, size_t bytes, size_t waiters)
{
	struct gitcache_limits lim;
	struct gitcache *c;

	gitcache_limits_default(&lim);
	lim.ttl_ms = ttl;
	lim.max_projects = projects;
	lim.max_bytes = bytes;
	lim.max_waiters = waiters;
	assert_non_null(c = gitcache_new(&lim, NULL));
	return c;
}

/* Looks up root at now with no max age. */
static enum gitcache_answer
look(struct gitcache *c, const char *root, uint64_t now)
{
	const struct repo_status *st;
	uint64_t age;

	return gitcache_lookup(c, root, UINT64_MAX, now, &st, &age, NULL);
}

/* Computes root at now: a miss, then a put of a STATUS_BYTES status. */
static void
fill(struct gitcache *c, const char *root, uint64_t now)
{
	size_t w;

	assert_int_equal(look(c, root, now), GITCACHE_COMPUTE);
	assert_int_equal(gitcache_put(c, root, fake_status(STATUS_BYTES,
	    false), now, &w), 0);
	assert_int_equal(w, 0);
}

static struct gitcache_stats
stats(const struct gitcache *c)
{
	struct gitcache_stats st;

	gitcache_get_stats(c, &st);
	return st;
}

/* The bytes one entry of root costs (the same for roots as long). */
static size_t
entry_bytes(const char *root)
{
	struct gitcache *c = cache_new(1000, 4, SIZE_MAX, 4);
	size_t b;

	fill(c, root, 0);
	b = stats(c).bytes;
	assert_true(b > STATUS_BYTES + strlen(root));
	gitcache_free(c);
	return b;
}

static void
test_limits(void **state)
{
	struct gitcache_limits lim;

	(void)state;
	gitcache_limits_default(&lim);
	assert_int_equal(lim.ttl_ms, 5000);
	assert_int_equal(lim.max_projects, 32);
	assert_int_equal(lim.max_bytes, 64u << 20);
	assert_int_equal(lim.max_paths, 100000);
	lim.max_projects = 0;
	assert_null(gitcache_new(&lim, NULL));
	assert_int_equal(errno, EINVAL);
	lim.max_projects = FIDX_MAX_GIT_PROJECTS_CEILING + 1;
	assert_null(gitcache_new(&lim, NULL));
	lim.max_projects = 1;
	lim.ttl_ms = 0;
	assert_null(gitcache_new(&lim, NULL));
}

/* A miss computes, a second asker waits, the put answers both. */
static void
test_single_flight(void **state)
{
	struct gitcache *c = cache_new(5000, 4, SIZE_MAX, 4);
	const struct repo_status *st;
	struct repo_status *s = fake_status(STATUS_BYTES, false);
	uint64_t age;
	size_t w;

	(void)state;
	assert_int_equal(look(c, "/a", 0), GITCACHE_COMPUTE);
	assert_int_equal(look(c, "/a", 1), GITCACHE_WAIT);
	assert_int_equal(look(c, "/a", 2), GITCACHE_WAIT);
	assert_int_equal(look(c, "/b", 2), GITCACHE_COMPUTE);
	assert_int_equal(stats(c).computing, 2);
	assert_int_equal(stats(c).waiting, 2);
	assert_int_equal(gitcache_put(c, "/a", s, 10, &w), 0);
	assert_int_equal(w, 2);
	assert_int_equal(gitcache_lookup(c, "/a", UINT64_MAX, 15, &st, &age, NULL),
	    GITCACHE_HIT);
	assert_ptr_equal(st, s);
	assert_int_equal(age, 5);
	/* A failed computation answers its waiters and keeps nothing. */
	assert_int_equal(look(c, "/b", 20), GITCACHE_WAIT);
	gitcache_fail(c, "/b", &w);
	assert_int_equal(w, 1);
	assert_int_equal(look(c, "/b", 21), GITCACHE_COMPUTE);
	gitcache_fail(c, "/b", &w);
	assert_int_equal(stats(c).hits, 1);
	assert_int_equal(stats(c).misses, 3);
	assert_int_equal(stats(c).waits, 3);
	assert_int_equal(stats(c).computing, 0);
	assert_int_equal(stats(c).waiting, 0);
	gitcache_free(c);
}

/* max_waiters at limit-1, limit and limit+1 waiting requests. */
static void
test_waiters_cap(void **state)
{
	struct gitcache *c = cache_new(5000, 4, SIZE_MAX, 3);
	size_t w;

	(void)state;
	assert_int_equal(look(c, "/a", 0), GITCACHE_COMPUTE);
	assert_int_equal(look(c, "/a", 0), GITCACHE_WAIT);	/* 1 */
	assert_int_equal(look(c, "/a", 0), GITCACHE_WAIT);	/* 2: limit-1 */
	assert_int_equal(look(c, "/a", 0), GITCACHE_WAIT);	/* 3: limit */
	assert_int_equal(stats(c).waiters_refused, 0);
	assert_int_equal(look(c, "/a", 0), GITCACHE_BUSY);	/* limit+1 */
	assert_int_equal(stats(c).waiters_refused, 1);
	assert_int_equal(stats(c).waiting, 3);
	gitcache_unwait(c, "/a", 1);			/* a client left */
	assert_int_equal(stats(c).waiting, 2);
	assert_int_equal(look(c, "/a", 0), GITCACHE_WAIT);
	gitcache_fail(c, "/a", &w);
	assert_int_equal(w, 3);
	gitcache_free(c);
}

/*
 * Rounds: who needs a status begun after asking (max_age_ms 0, or none
 * while the tree changed under the computation) waits for the next
 * round; the flight goes on as it once the running one lands, and ends
 * when a round lands with nobody waiting for another.
 */
static void
test_rounds(void **state)
{
	struct gitcache *c = cache_new(5000, 4, SIZE_MAX, 8);
	const struct repo_status *st;
	uint64_t age, round;
	size_t w;

	(void)state;
	assert_int_equal(gitcache_lookup(c, "/a", UINT64_MAX, 1, &st, &age,
	    &round), GITCACHE_COMPUTE);
	assert_int_equal(round, 1);
	assert_int_equal(gitcache_lookup(c, "/a", UINT64_MAX, 1, &st, &age,
	    &round), GITCACHE_WAIT);
	assert_int_equal(round, 1);		/* takes the running one */
	assert_int_equal(gitcache_lookup(c, "/a", 0, 1, &st, &age, &round),
	    GITCACHE_WAIT);
	assert_int_equal(round, 2);		/* needs one begun later */
	assert_int_equal(gitcache_lookup(c, "/a", 0, 1, &st, &age, &round),
	    GITCACHE_WAIT);
	gitcache_unwait(c, "/a", 2);		/* one of them left */
	assert_int_equal(stats(c).waiting, 2);
	assert_int_equal(gitcache_put(c, "/a", fake_status(STATUS_BYTES,
	    false), 2, &w), 0);
	assert_int_equal(w, 1);			/* round 1's waiter */
	assert_int_equal(gitcache_again(c, "/a"), 2);
	assert_int_equal(stats(c).computing, 1);
	assert_int_equal(stats(c).waiting, 1);
	assert_int_equal(stats(c).rounds, 1);
	/* Round 2 runs: the tree changes under it; a plain ask waits on. */
	gitcache_changed(c, "/a", false);
	assert_int_equal(gitcache_lookup(c, "/a", UINT64_MAX, 3, &st, &age,
	    &round), GITCACHE_WAIT);
	assert_int_equal(round, 3);
	/* One that takes an age takes the stale entry at once. */
	assert_int_equal(gitcache_lookup(c, "/a", 1000, 3, &st, &age,
	    &round), GITCACHE_HIT);
	gitcache_fail(c, "/a", &w);
	assert_int_equal(w, 1);
	assert_int_equal(gitcache_again(c, "/a"), 3);
	assert_int_equal(gitcache_put(c, "/a", fake_status(STATUS_BYTES,
	    false), 4, &w), 0);
	assert_int_equal(w, 1);
	assert_int_equal(gitcache_again(c, "/a"), 0);
	assert_int_equal(stats(c).computing, 0);
	assert_int_equal(stats(c).waiting, 0);
	assert_int_equal(stats(c).waits_next, 3);
	gitcache_free(c);
}

/*
 * An entry is served until its TTL (ms 0..ttl-1), then not, and expiry
 * frees it, and only it, at exactly the TTL; a younger max_age_ms is a
 * miss sooner.
 */
static void
test_ttl(void **state)
{
	struct gitcache *c = cache_new(100, 4, SIZE_MAX, 4);
	const struct repo_status *st;
	uint64_t age;

	(void)state;
	fill(c, "/a", 0);
	fill(c, "/b", 50);
	assert_int_equal(look(c, "/a", 99), GITCACHE_HIT);
	/* max_age_ms 0 takes nothing cached, even from this millisecond. */
	assert_int_equal(gitcache_lookup(c, "/b", 0, 50, &st, &age, NULL),
	    GITCACHE_COMPUTE);
	gitcache_fail(c, "/b", NULL);
	assert_int_equal(gitcache_lookup(c, "/a", 10, 11, &st, &age, NULL),
	    GITCACHE_COMPUTE);
	gitcache_fail(c, "/a", NULL);
	assert_int_equal(gitcache_lookup(c, "/a", 10, 10, &st, &age, NULL),
	    GITCACHE_HIT);
	gitcache_expire(c, 99);
	assert_int_equal(stats(c).entries, 2);
	gitcache_expire(c, 100);
	assert_int_equal(stats(c).entries, 1);
	assert_int_equal(stats(c).expired, 1);
	assert_int_equal(stats(c).bytes, entry_bytes("/b"));
	assert_int_equal(look(c, "/b", 149), GITCACHE_HIT);
	assert_int_equal(look(c, "/b", 150), GITCACHE_COMPUTE);
	gitcache_fail(c, "/b", NULL);
	gitcache_expire(c, 150);
	assert_int_equal(stats(c).entries, 0);
	assert_int_equal(stats(c).bytes, 0);
	assert_int_equal(stats(c).expired, 2);
	gitcache_free(c);
}

/*
 * The watcher's changes: git's own files drop the entries at and under
 * the directory (not a sibling whose name starts the same); work-tree
 * changes make them stale, a miss for a lookup with no max age and a hit
 * for one that names an age; a computation under way when the tree
 * changes lands stale.
 */
static void
test_changed(void **state)
{
	struct gitcache *c = cache_new(1000, 8, SIZE_MAX, 4);
	const struct repo_status *st;
	uint64_t age;
	size_t w;

	(void)state;
	fill(c, "/p", 0);
	fill(c, "/p/sub", 0);
	fill(c, "/pq", 0);
	gitcache_changed(c, "/p", true);
	assert_int_equal(stats(c).entries, 1);
	assert_int_equal(stats(c).invalidated, 2);
	assert_int_equal(look(c, "/pq", 1), GITCACHE_HIT);

	fill(c, "/p", 2);
	gitcache_changed(c, "/p", false);
	assert_int_equal(stats(c).staled, 1);
	assert_int_equal(gitcache_lookup(c, "/p", 500, 3, &st, &age, NULL),
	    GITCACHE_HIT);
	assert_int_equal(look(c, "/p", 3), GITCACHE_COMPUTE);
	/* Changed again while it computes: what it finds may be old. */
	gitcache_changed(c, "/p", false);
	assert_int_equal(gitcache_put(c, "/p", fake_status(STATUS_BYTES,
	    false), 4, &w), 0);
	assert_int_equal(look(c, "/p", 5), GITCACHE_COMPUTE);
	assert_int_equal(gitcache_put(c, "/p", fake_status(STATUS_BYTES,
	    false), 6, &w), 0);
	assert_int_equal(look(c, "/p", 7), GITCACHE_HIT);
	gitcache_free(c);
}

/*
 * The project cap at limit-1, limit and limit+1 projects: the one that
 * goes is the least recently used (a hit counts as a use).
 */
static void
test_lru_cap(void **state)
{
	struct gitcache *c = cache_new(5000, 3, SIZE_MAX, 4);

	(void)state;
	fill(c, "/p0", 0);
	fill(c, "/p1", 1);
	assert_int_equal(stats(c).entries, 2);		/* limit-1 */
	fill(c, "/p2", 2);
	assert_int_equal(stats(c).entries, 3);		/* limit */
	assert_int_equal(stats(c).evicted_lru, 0);
	assert_int_equal(look(c, "/p0", 3), GITCACHE_HIT);
	fill(c, "/p3", 4);				/* limit+1 */
	assert_int_equal(stats(c).entries, 3);
	assert_int_equal(stats(c).evicted_lru, 1);
	assert_int_equal(look(c, "/p0", 5), GITCACHE_HIT);
	assert_int_equal(look(c, "/p2", 5), GITCACHE_HIT);
	assert_int_equal(look(c, "/p3", 5), GITCACHE_HIT);
	assert_int_equal(look(c, "/p1", 5), GITCACHE_COMPUTE);
	gitcache_fail(c, "/p1", NULL);
	/* A project computed again replaces its entry: no eviction. */
	{
		const struct repo_status *st;
		uint64_t age;

		assert_int_equal(gitcache_lookup(c, "/p0", 0, 6, &st, &age, NULL),
		    GITCACHE_COMPUTE);
		assert_int_equal(gitcache_put(c, "/p0",
		    fake_status(STATUS_BYTES, false), 6, NULL), 0);
	}
	assert_int_equal(look(c, "/p0", 6), GITCACHE_HIT);
	assert_int_equal(stats(c).entries, 3);
	assert_int_equal(stats(c).evicted_lru, 1);
	gitcache_free(c);
}

/*
 * The byte cap with three entries' bytes at limit+1, limit and limit-1:
 * the third insert evicts only when they would not fit, and the bytes
 * held never pass the cap.
 */
static void
test_byte_cap(void **state)
{
	size_t b = entry_bytes("/p0"), cap, i;
	long d;

	(void)state;
	for (d = 1; d >= -1; d--) {
		struct gitcache *c;

		cap = 3 * b + (size_t)d;
		c = cache_new(5000, 32, cap, 4);
		for (i = 0; i < 3; i++) {
			char root[8];

			snprintf(root, sizeof(root), "/p%zu", i);
			fill(c, root, i);
			assert_true(stats(c).bytes <= cap);
		}
		assert_int_equal(stats(c).evicted_bytes, d < 0 ? 1 : 0);
		assert_int_equal(stats(c).entries, d < 0 ? 2 : 3);
		assert_int_equal(stats(c).bytes, d < 0 ? 2 * b : 3 * b);
		if (d < 0)	/* the least recently used went */
			assert_int_equal(look(c, "/p0", 5), GITCACHE_COMPUTE);
		gitcache_free(c);
	}
}

/*
 * A status bigger than the whole byte cap is not kept (the caller keeps
 * it to answer with) and evicts nothing; a truncated one is counted.
 */
static void
test_too_big_and_truncated(void **state)
{
	size_t b = entry_bytes("/a");
	struct gitcache *c = cache_new(5000, 4, b, 4);
	struct repo_status *s = fake_status(STATUS_BYTES + 1, false);
	size_t w;

	(void)state;
	fill(c, "/a", 0);
	assert_int_equal(look(c, "/b", 1), GITCACHE_COMPUTE);
	assert_int_equal(look(c, "/b", 1), GITCACHE_WAIT);
	assert_int_equal(gitcache_put(c, "/b", s, 2, &w), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(w, 1);
	free(s);
	assert_int_equal(stats(c).too_big, 1);
	assert_int_equal(stats(c).entries, 1);
	assert_int_equal(stats(c).evicted_bytes, 0);
	assert_int_equal(stats(c).computing, 0);
	assert_int_equal(look(c, "/c", 3), GITCACHE_COMPUTE);
	assert_int_equal(gitcache_put(c, "/c", fake_status(STATUS_BYTES,
	    true), 3, &w), 0);
	assert_int_equal(stats(c).truncated, 1);
	assert_int_equal(stats(c).evicted_bytes, 1);	/* /a made room */
	gitcache_drop(c, "/c");
	assert_int_equal(stats(c).entries, 0);
	assert_int_equal(stats(c).bytes, 0);
	gitcache_free(c);
}

struct timer_run {
	struct gitcache *c;
	struct loop_timer poll, deadline;
	bool timed_out;
};

static void
poll_fire(struct loop *l, struct loop_timer *t)
{
	struct timer_run *r = t->arg;

	if (stats(r->c).entries == 0)
		loop_stop(l);
}

static void
deadline_fire(struct loop *l, struct loop_timer *t)
{
	struct timer_run *r = t->arg;

	r->timed_out = true;
	loop_stop(l);
}

/* On a real loop, the cache's own timer frees an expired entry. */
static void
test_timer_frees(void **state)
{
	struct gitcache_limits lim;
	struct timer_run r = { 0 };
	struct loop *l;
	size_t w;

	(void)state;
	assert_non_null(l = loop_new());
	gitcache_limits_default(&lim);
	lim.ttl_ms = 20;
	assert_non_null(r.c = gitcache_new(&lim, l));
	assert_int_equal(look(r.c, "/a", loop_now_ms(l)), GITCACHE_COMPUTE);
	assert_int_equal(gitcache_put(r.c, "/a", fake_status(STATUS_BYTES,
	    false), loop_now_ms(l), &w), 0);
	assert_int_equal(stats(r.c).entries, 1);
	loop_timer_start(l, &r.poll, 5, 5, poll_fire, &r);
	loop_timer_start(l, &r.deadline, 10000, 0, deadline_fire, &r);
	assert_int_equal(loop_run(l), 0);
	assert_false(r.timed_out);
	assert_int_equal(stats(r.c).expired, 1);
	assert_int_equal(stats(r.c).bytes, 0);
	loop_timer_stop(l, &r.poll);
	loop_timer_stop(l, &r.deadline);
	gitcache_free(r.c);
	loop_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_single_flight),
		cmocka_unit_test(test_waiters_cap),
		cmocka_unit_test(test_rounds),
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_changed),
		cmocka_unit_test(test_lru_cap),
		cmocka_unit_test(test_byte_cap),
		cmocka_unit_test(test_too_big_and_truncated),
		cmocka_unit_test(test_timer_frees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
