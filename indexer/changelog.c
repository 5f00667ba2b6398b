/* changelog.c - see changelog.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/alloc.h"
#include "changelog.h"

/* A path and its record: one allocation, counted whole. */
struct changelog_ent {
	uint64_t seq;
	uint32_t project;
	uint32_t len;			/* path's bytes, '/' of a dir included */
	char *path;			/* owned, NUL-terminated */
};

struct changelog {
	struct changelog_limits lim;
	struct changelog_ent *ring;	/* cap entries, grown to max_entries */
	size_t cap, head, n;
	uint64_t seq, floor;
	struct changelog_stats st;
};

/* What an entry holds: its record, its path and malloc's word. */
static size_t
changelog_ent_bytes(size_t len)
{
	return sizeof(struct changelog_ent) + len + 1 + sizeof(size_t);
}

struct changelog *
changelog_new(const struct changelog_limits *lim)
{
	struct changelog *c;

	if (lim->max_entries < 1 || lim->max_bytes < 1) {
		errno = EINVAL;
		return NULL;
	}
	if ((c = fidx_calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->lim = *lim;
	return c;
}

void
changelog_free(struct changelog *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->ring[(c->head + i) % c->cap].path);
	free(c->ring);
	free(c);
}

uint64_t
changelog_seq(const struct changelog *c)
{
	return c->seq;
}

uint64_t
changelog_bump(struct changelog *c)
{
	return ++c->seq;
}

uint64_t
changelog_floor(const struct changelog *c)
{
	return c->floor;
}

/* Drops the oldest entry; the floor rises to it. */
static void
changelog_drop(struct changelog *c)
{
	struct changelog_ent *e = &c->ring[c->head];

	c->floor = e->seq;
	c->st.bytes -= changelog_ent_bytes(e->len);
	free(e->path);
	c->head = (c->head + 1) % c->cap;
	c->n--;
	c->st.dropped++;
}

/* Room for one more record: the ring doubles, up to max_entries. */
static int
changelog_grow(struct changelog *c)
{
	size_t ncap = c->cap ? c->cap * 2 : 256;
	struct changelog_ent *r;

	if (ncap > c->lim.max_entries)
		ncap = c->lim.max_entries;
	if ((r = fidx_reallocarray(NULL, ncap, sizeof(*r))) == NULL)
		return -1;
	for (size_t i = 0; i < c->n; i++)
		r[i] = c->ring[(c->head + i) % c->cap];
	free(c->ring);
	c->ring = r;
	c->cap = ncap;
	c->head = 0;
	return 0;
}

int
changelog_add(struct changelog *c, uint32_t project, const char *rel,
    size_t len, bool dir)
{
	size_t plen = len + (dir ? 1 : 0), bytes = changelog_ent_bytes(plen);
	struct changelog_ent *e;
	char *path;

	if (c->n > 0) {
		e = &c->ring[(c->head + c->n - 1) % c->cap];
		if (e->project == project && e->len == plen &&
		    memcmp(e->path, rel, len) == 0 &&
		    (!dir || e->path[len] == '/')) {
			/* The newest already: it only moves up. */
			e->seq = ++c->seq;
			c->st.repeats++;
			return 0;
		}
	}
	if (bytes > c->lim.max_bytes) {
		errno = EFBIG;
		return -1;
	}
	if ((path = fidx_malloc(plen + 1)) == NULL)
		return -1;
	memcpy(path, rel, len);
	if (dir)
		path[len] = '/';
	path[plen] = '\0';
	/* Evict before insert: neither bound is passed, even for a moment. */
	while (c->n > 0 && (c->n + 1 > c->lim.max_entries ||
	    c->st.bytes + bytes > c->lim.max_bytes))
		changelog_drop(c);
	if (c->n == c->cap && changelog_grow(c) == -1) {
		free(path);
		return -1;
	}
	e = &c->ring[(c->head + c->n++) % c->cap];
	e->seq = ++c->seq;
	e->project = project;
	e->len = (uint32_t)plen;
	e->path = path;
	c->st.bytes += bytes;
	c->st.added++;
	return 0;
}

int
changelog_since(const struct changelog *c, uint32_t project, uint64_t since,
    int (*fn)(void *arg, const char *path, size_t len), void *arg)
{
	size_t lo = 0, hi = c->n;
	int rc;

	/* Numbers rise along the ring: the first after since, halving. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->ring[(c->head + mid) % c->cap].seq <= since)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < c->n; i++) {
		const struct changelog_ent *e = &c->ring[(c->head + i) %
		    c->cap];

		if (e->project == project &&
		    (rc = fn(arg, e->path, e->len)) != 0)
			return rc;
	}
	return 0;
}

void
changelog_get_stats(const struct changelog *c, struct changelog_stats *st)
{
	*st = c->st;
	st->entries = c->n;
	st->max_entries = c->lim.max_entries;
	st->max_bytes = c->lim.max_bytes;
	st->seq = c->seq;
	st->floor = c->floor;
}
