/* gitcache.c - see gitcache.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/alloc.h"
#include "gitcache.h"

/*
 * One project's status. The entry and its root are one allocation, so
 * bytes (this block plus the status block) is exactly what it holds.
 */
struct gitcache_entry {
	struct gitcache_entry *lru_prev, *lru_next;	/* head: most recent */
	struct gitcache_entry *age_prev, *age_next;	/* head: oldest */
	struct repo_status *st;
	uint64_t computed_ms;
	size_t bytes;
	bool stale;			/* the work tree changed since */
	char root[];
};

/* A project being computed, and how many requests wait on it. */
struct gitcache_flight {
	struct gitcache_flight *next;
	uint64_t round;			/* which computation: 1, 2, ... */
	size_t waiters;			/* on this round */
	size_t next_waiters;		/* on the round after: they need a
					   status begun after they asked */
	bool stale;			/* changed while computed */
	char root[];
};

struct gitcache {
	struct gitcache_limits lim;
	struct loop *loop;		/* NULL: no timer */
	struct loop_timer timer;
	struct gitcache_entry *lru_head, *lru_tail;
	struct gitcache_entry *age_head, *age_tail;
	struct gitcache_flight *flights;
	struct gitcache_stats st;
};

void
gitcache_limits_default(struct gitcache_limits *lim)
{
	lim->ttl_ms = FIDX_GIT_TTL_MS_DEFAULT;
	lim->max_projects = FIDX_MAX_GIT_PROJECTS_DEFAULT;
	lim->max_bytes = FIDX_MAX_GIT_BYTES_DEFAULT;
	lim->max_paths = FIDX_MAX_GIT_PATHS_DEFAULT;
	lim->max_waiters = GITCACHE_WAITERS_DEFAULT;
}

struct gitcache *
gitcache_new(const struct gitcache_limits *lim, struct loop *l)
{
	struct gitcache *c;

	if (lim->ttl_ms < 1 || lim->ttl_ms > FIDX_GIT_TTL_MS_CEILING ||
	    lim->max_projects < 1 ||
	    lim->max_projects > FIDX_MAX_GIT_PROJECTS_CEILING ||
	    lim->max_bytes < 1 || lim->max_paths < 1 ||
	    lim->max_paths > FIDX_MAX_GIT_PATHS_CEILING ||
	    lim->max_waiters < 1) {
		errno = EINVAL;
		return NULL;
	}
	if ((c = fidx_calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->lim = *lim;
	c->loop = l;
	return c;
}

static struct gitcache_entry *
gitcache_find(const struct gitcache *c, const char *root)
{
	struct gitcache_entry *e;

	for (e = c->lru_head; e != NULL; e = e->lru_next)
		if (strcmp(e->root, root) == 0)
			return e;
	return NULL;
}

static struct gitcache_flight **
gitcache_flight_find(struct gitcache *c, const char *root)
{
	struct gitcache_flight **fp;

	for (fp = &c->flights; *fp != NULL; fp = &(*fp)->next)
		if (strcmp((*fp)->root, root) == 0)
			return fp;
	return fp;
}

static void
gitcache_lru_unlink(struct gitcache *c, struct gitcache_entry *e)
{
	if (e->lru_prev != NULL)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->lru_head = e->lru_next;
	if (e->lru_next != NULL)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void
gitcache_lru_push(struct gitcache *c, struct gitcache_entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = c->lru_head;
	if (c->lru_head != NULL)
		c->lru_head->lru_prev = e;
	else
		c->lru_tail = e;
	c->lru_head = e;
}

/* Unlinks e from both lists and frees it with its status. */
static void
gitcache_remove(struct gitcache *c, struct gitcache_entry *e)
{
	gitcache_lru_unlink(c, e);
	if (e->age_prev != NULL)
		e->age_prev->age_next = e->age_next;
	else
		c->age_head = e->age_next;
	if (e->age_next != NULL)
		e->age_next->age_prev = e->age_prev;
	else
		c->age_tail = e->age_prev;
	c->st.entries--;
	c->st.bytes -= e->bytes;
	repo_status_free(e->st);
	free(e);
}

static void gitcache_timer_fire(struct loop *l, struct loop_timer *t);

/* Arms the timer for the oldest entry's expiry (or stops it: none). */
static void
gitcache_timer_arm(struct gitcache *c, uint64_t now)
{
	uint64_t due;

	if (c->loop == NULL)
		return;
	if (c->age_head == NULL) {
		loop_timer_stop(c->loop, &c->timer);
		return;
	}
	due = c->age_head->computed_ms + c->lim.ttl_ms;
	loop_timer_start(c->loop, &c->timer, due > now ? due - now : 0, 0,
	    gitcache_timer_fire, c);
}

static void
gitcache_timer_fire(struct loop *l, struct loop_timer *t)
{
	gitcache_expire(t->arg, loop_now_ms(l));
}

void
gitcache_expire(struct gitcache *c, uint64_t now)
{
	/* Entries are in computation order, so the old ones lead. */
	while (c->age_head != NULL &&
	    now - c->age_head->computed_ms >= c->lim.ttl_ms) {
		gitcache_remove(c, c->age_head);
		c->st.expired++;
	}
	gitcache_timer_arm(c, now);
}

enum gitcache_answer
gitcache_lookup(struct gitcache *c, const char *root, uint64_t max_age_ms,
    uint64_t now, const struct repo_status **out, uint64_t *age_ms,
    uint64_t *round)
{
	struct gitcache_entry *e = gitcache_find(c, root);
	struct gitcache_flight **fp, *f;
	size_t len;

	*out = NULL;
	*age_ms = 0;
	if (round != NULL)
		*round = 0;
	if (e != NULL) {
		uint64_t age = now > e->computed_ms ? now - e->computed_ms : 0;

		/*
		 * A stale one only for who asked for an age (max_age_ms).
		 * max_age_ms 0 takes nothing cached: the clock reads whole
		 * milliseconds, and a status computed in the same one may
		 * predate the change the asker just made.
		 */
		if (age < c->lim.ttl_ms && age <= max_age_ms &&
		    max_age_ms > 0 && (!e->stale || max_age_ms != UINT64_MAX)) {
			gitcache_lru_unlink(c, e);
			gitcache_lru_push(c, e);
			c->st.hits++;
			*out = e->st;
			*age_ms = age;
			return GITCACHE_HIT;
		}
	}
	fp = gitcache_flight_find(c, root);
	if ((f = *fp) != NULL) {
		/*
		 * max_age_ms 0 asks for a status begun after the request; so
		 * does one taking no stale answer when the tree changed under
		 * the computation. The one running began before: they wait
		 * for the round after it (gitcache_again()).
		 */
		bool later = max_age_ms == 0 ||
		    (max_age_ms == UINT64_MAX && f->stale);

		if (f->waiters + f->next_waiters >= c->lim.max_waiters) {
			c->st.waiters_refused++;
			return GITCACHE_BUSY;
		}
		if (later) {
			f->next_waiters++;
			c->st.waits_next++;
		} else {
			f->waiters++;
		}
		if (round != NULL)
			*round = f->round + later;
		c->st.waiting++;
		c->st.waits++;
		return GITCACHE_WAIT;
	}
	len = strlen(root) + 1;
	/* A small control record; a broken machine if it cannot be had. */
	f = xmalloc(sizeof(*f) + len);
	f->next = NULL;
	f->round = 1;
	f->waiters = f->next_waiters = 0;
	f->stale = false;
	memcpy(f->root, root, len);
	*fp = f;
	if (round != NULL)
		*round = f->round;
	c->st.computing++;
	c->st.misses++;
	return GITCACHE_COMPUTE;
}

/*
 * Ends root's computation: *waiters gets how many waited on it. True if
 * the tree changed while it ran (what it found may be old already).
 * With waiters for the round after, the flight goes on as that round
 * (their count becomes its own), for the caller to compute again.
 */
static bool
gitcache_land(struct gitcache *c, const char *root, size_t *waiters)
{
	struct gitcache_flight **fp = gitcache_flight_find(c, root), *f;
	size_t n = 0;
	bool stale = false;

	if ((f = *fp) != NULL) {
		n = f->waiters;
		stale = f->stale;
		c->st.waiting -= n;
		if (f->next_waiters > 0) {
			f->round++;
			f->waiters = f->next_waiters;
			f->next_waiters = 0;
			f->stale = false;
			c->st.rounds++;
		} else {
			*fp = f->next;
			c->st.computing--;
			free(f);
		}
	}
	if (waiters != NULL)
		*waiters = n;
	return stale;
}

void
gitcache_fail(struct gitcache *c, const char *root, size_t *waiters)
{
	(void)gitcache_land(c, root, waiters);
}

int
gitcache_put(struct gitcache *c, const char *root, struct repo_status *st,
    uint64_t now, size_t *waiters)
{
	struct gitcache_entry *e, *old;
	size_t len = strlen(root) + 1, bytes = sizeof(*e) + len + st->bytes;
	bool stale = gitcache_land(c, root, waiters);

	if ((old = gitcache_find(c, root)) != NULL)
		gitcache_remove(c, old);
	if (bytes > c->lim.max_bytes) {
		c->st.too_big++;
		gitcache_timer_arm(c, now);
		errno = EFBIG;
		return -1;
	}
	if ((e = fidx_malloc(sizeof(*e) + len)) == NULL) {
		gitcache_timer_arm(c, now);
		errno = ENOMEM;
		return -1;
	}
	/* Evict before insert: neither cap is passed, even for a moment. */
	while (c->st.entries + 1 > c->lim.max_projects) {
		gitcache_remove(c, c->lru_tail);
		c->st.evicted_lru++;
	}
	while (c->st.bytes + bytes > c->lim.max_bytes) {
		gitcache_remove(c, c->lru_tail);
		c->st.evicted_bytes++;
	}
	memcpy(e->root, root, len);
	e->st = st;
	e->computed_ms = now;
	e->bytes = bytes;
	e->stale = stale;
	gitcache_lru_push(c, e);
	/* Computed now, so it is the youngest: the age list stays sorted. */
	e->age_next = NULL;
	e->age_prev = c->age_tail;
	if (c->age_tail != NULL)
		c->age_tail->age_next = e;
	else
		c->age_head = e;
	c->age_tail = e;
	c->st.entries++;
	c->st.bytes += bytes;
	if (st->truncated)
		c->st.truncated++;
	gitcache_timer_arm(c, now);
	return 0;
}

void
gitcache_unwait(struct gitcache *c, const char *root, uint64_t round)
{
	struct gitcache_flight *f = *gitcache_flight_find(c, root);
	size_t *n;

	if (f == NULL)
		return;
	n = round > f->round ? &f->next_waiters : &f->waiters;
	if (*n > 0) {
		(*n)--;
		c->st.waiting--;
	}
}

uint64_t
gitcache_again(const struct gitcache *c, const char *root)
{
	struct gitcache_flight *f;

	for (f = c->flights; f != NULL; f = f->next)
		if (strcmp(f->root, root) == 0)
			return f->round;
	return 0;
}

void
gitcache_drop(struct gitcache *c, const char *root)
{
	struct gitcache_entry *e = gitcache_find(c, root);

	if (e != NULL)
		gitcache_remove(c, e);
}

/* True if root is dir or lies under it. */
static bool
gitcache_under(const char *root, const char *dir, size_t dlen)
{
	return strncmp(root, dir, dlen) == 0 &&
	    (root[dlen] == '\0' || root[dlen] == '/');
}

void
gitcache_changed(struct gitcache *c, const char *dir, bool gitdir)
{
	size_t dlen = strlen(dir);
	struct gitcache_entry *e, *next;

	for (e = c->lru_head; e != NULL; e = next) {
		next = e->lru_next;
		if (!gitcache_under(e->root, dir, dlen))
			continue;
		if (gitdir) {
			gitcache_remove(c, e);
			c->st.invalidated++;
		} else if (!e->stale) {
			e->stale = true;
			c->st.staled++;
		}
	}
	/* A computation under way may have read the tree before the change. */
	for (struct gitcache_flight *f = c->flights; f != NULL; f = f->next)
		if (gitcache_under(f->root, dir, dlen))
			f->stale = true;
}

void
gitcache_limits(const struct gitcache *c, struct gitcache_limits *lim)
{
	*lim = c->lim;
}

void
gitcache_get_stats(const struct gitcache *c, struct gitcache_stats *st)
{
	*st = c->st;
}

void
gitcache_free(struct gitcache *c)
{
	struct gitcache_flight *f;

	if (c == NULL)
		return;
	if (c->loop != NULL)
		loop_timer_stop(c->loop, &c->timer);
	while (c->lru_head != NULL)
		gitcache_remove(c, c->lru_head);
	while ((f = c->flights) != NULL) {
		c->flights = f->next;
		free(f);
	}
	free(c);
}
