/* index.c - see index.h. */
#include "index.h"
#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/query.h"

#include <stdlib.h>
#include <string.h>

/* An arena's heap size: its paths and the regex engine's pad (QUERY_PAD). */
static size_t
index_arena_bytes(size_t len)
{
	return len > 0 ? len + QUERY_PAD : 0;
}

size_t
index_snapshot_bytes(const struct index_snapshot *s)
{
	return sizeof(*s) + index_arena_bytes(s->arena_len) +
	    s->n * sizeof(*s->entries);
}

struct index_snapshot *
index_snapshot_ref(struct index_snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void
index_snapshot_unref(struct index_snapshot *s)
{
	if (s == NULL)
		return;
	/* acq_rel: the freeing thread must see every reader's last access. */
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (s->budget != NULL)
		atomic_fetch_sub(&s->budget->used, index_snapshot_bytes(s));
	free(s->arena);
	free(s->entries);
	free(s);
}

void
index_builder_init(struct index_builder *b, size_t max_files,
    size_t max_bytes, struct index_budget *budget)
{
	memset(b, 0, sizeof(*b));
	b->max_files = max_files;
	b->max_bytes = max_bytes;
	b->budget = budget;
}

/* Charges the budget up to need bytes; false if that would pass it. */
static bool
index_builder_charge(struct index_builder *b, size_t need)
{
	size_t delta, before;

	if (b->budget == NULL || need <= b->charged)
		return true;
	delta = need - b->charged;
	before = atomic_fetch_add(&b->budget->used, delta);
	if (before + delta > b->budget->limit) {
		atomic_fetch_sub(&b->budget->used, delta);
		return false;
	}
	b->charged = need;
	return true;
}

int
index_builder_add(struct index_builder *b, const char *path, size_t len)
{
	size_t need = sizeof(struct index_snapshot) +
	    index_arena_bytes(b->len + len) + (b->n + 1) * sizeof(*b->entries);

	if (len == 0 || len > FIDX_MAX_PATH_CEILING)
		return 0;
	if (b->n >= b->max_files || need > b->max_bytes ||
	    b->len + len > UINT32_MAX) {
		b->capped = true;
		return 1;
	}
	/* Shared with sibling builders: the count is the index's, not ours. */
	if (b->files != NULL &&
	    atomic_fetch_add(b->files, 1) >= b->max_files) {
		atomic_fetch_sub(b->files, 1);
		b->capped = true;
		return 1;
	}
	if (!index_builder_charge(b, need)) {
		if (b->files != NULL)
			atomic_fetch_sub(b->files, 1);
		b->capped = true;
		return 1;
	}
	if (index_arena_bytes(b->len + len) > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 64 * 1024;
		char *a;

		while (ncap < index_arena_bytes(b->len + len))
			ncap *= 2;
		if ((a = fidx_reallocarray(b->arena, ncap, 1)) == NULL)
			return -1;
		b->arena = a;
		b->cap = ncap;
	}
	if (b->n == b->ecap) {
		size_t ncap = b->ecap ? b->ecap * 2 : 4096;
		struct match_entry *e;

		if ((e = fidx_reallocarray(b->entries, ncap,
		    sizeof(*e))) == NULL)
			return -1;
		b->entries = e;
		b->ecap = ncap;
	}
	memcpy(b->arena + b->len, path, len);
	match_entry_init(&b->entries[b->n++], b->arena, (uint32_t)b->len,
	    (uint16_t)len, true);
	b->len += len;
	return 0;
}

struct index_snapshot *
index_builder_finish(struct index_builder *b, uint64_t generation)
{
	struct index_snapshot *s;

	if ((s = fidx_calloc(1, sizeof(*s))) == NULL) {
		index_builder_release(b);
		return NULL;
	}
	/* Shrink to fit: the cap counted exact sizes, so must the heap. */
	if (index_arena_bytes(b->len) < b->cap && b->len > 0) {
		char *a = fidx_reallocarray(b->arena, index_arena_bytes(b->len),
		    1);

		if (a != NULL)
			b->arena = a;
	}
	/* The last path is followed by QUERY_PAD defined bytes. */
	if (b->len > 0)
		memset(b->arena + b->len, 0, QUERY_PAD);
	if (b->n < b->ecap && b->n > 0) {
		struct match_entry *e = fidx_reallocarray(b->entries, b->n,
		    sizeof(*e));

		if (e != NULL)
			b->entries = e;
	}
	atomic_init(&s->refs, 1);
	s->budget = b->budget;
	s->generation = generation;
	s->arena = b->arena;
	s->arena_len = b->len;
	s->entries = b->entries;
	s->n = b->n;
	s->capped = b->capped;
	/* The charge becomes exactly what the snapshot holds. */
	if (s->budget != NULL) {
		size_t bytes = index_snapshot_bytes(s);

		if (bytes > b->charged)
			atomic_fetch_add(&s->budget->used, bytes - b->charged);
		else
			atomic_fetch_sub(&s->budget->used, b->charged - bytes);
	}
	b->charged = 0;
	b->arena = NULL;
	b->entries = NULL;
	index_builder_release(b);
	return s;
}

int
index_builder_absorb(struct index_builder *dst, struct index_builder *src)
{
	size_t len = dst->len + src->len, n = dst->n + src->n;
	int rc = -1;

	if (len > UINT32_MAX)
		goto out;
	if (index_arena_bytes(len) > dst->cap) {
		char *a = fidx_reallocarray(dst->arena, index_arena_bytes(len),
		    1);

		if (a == NULL)
			goto out;
		dst->arena = a;
		dst->cap = index_arena_bytes(len);
	}
	if (n > dst->ecap) {
		struct match_entry *e = fidx_reallocarray(dst->entries, n,
		    sizeof(*e));

		if (e == NULL)
			goto out;
		dst->entries = e;
		dst->ecap = n;
	}
	if (src->len > 0)
		memcpy(dst->arena + dst->len, src->arena, src->len);
	for (size_t i = 0; i < src->n; i++) {
		dst->entries[dst->n + i] = src->entries[i];
		dst->entries[dst->n + i].off += (uint32_t)dst->len;
	}
	dst->len = len;
	dst->n = n;
	dst->capped |= src->capped;
	/* Its charge was for these very bytes: it moves with them. */
	if (dst->budget == src->budget) {
		dst->charged += src->charged;
		src->charged = 0;
	}
	rc = 0;
out:
	index_builder_release(src);
	return rc;
}

void
index_builder_release(struct index_builder *b)
{
	if (b->budget != NULL && b->charged > 0)
		atomic_fetch_sub(&b->budget->used, b->charged);
	free(b->arena);
	free(b->entries);
	memset(b, 0, sizeof(*b));
}
