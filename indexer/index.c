/* index.c - see index.h. */
#include "index.h"
#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/query.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A path's place in directory order: its directory, then its name. */
struct index_key {
	const char *dir;
	size_t dlen;
	const char *name;
	size_t nlen;
};

static struct index_key
index_key_of(const char *path, size_t len, size_t base)
{
	struct index_key k = { path, base > 0 ? base - 1 : 0, path + base,
	    len - base };

	return k;
}

static struct index_key
index_key_entry(const struct index_segment *g, size_t i)
{
	const struct match_entry *e = &g->entries[i];

	return index_key_of(g->arena + e->off, e->len, e->base);
}

/*
 * Directories compare component by component: as bytes with '/' below
 * every other byte, so "a/b" sorts before "a.c" and "a"'s subtree is
 * one range.
 */
static int
index_dir_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	size_t n = an < bn ? an : bn, i = 0;
	unsigned ca, cb;

	/* Eight bytes at a time to the first difference: paths share long
	   prefixes, and sorting a walk's directories is mostly this. */
	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;

		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y) {
			i += (size_t)__builtin_ctzll(x ^ y) / 8;
			goto differ;
		}
	}
	while (i < n && a[i] == b[i])
		i++;
	if (i == n)
		return an < bn ? -1 : an > bn;
differ:
	ca = (unsigned char)a[i];
	cb = (unsigned char)b[i];
	ca = ca == '/' ? 0 : ca;
	cb = cb == '/' ? 0 : cb;
	return ca < cb ? -1 : 1;
}

static int
index_key_cmp(const struct index_key *a, const struct index_key *b)
{
	int r = index_dir_cmp(a->dir, a->dlen, b->dir, b->dlen);
	size_t n;

	if (r != 0)
		return r;
	n = a->nlen < b->nlen ? a->nlen : b->nlen;
	if (n > 0 && (r = memcmp(a->name, b->name, n)) != 0)
		return r;
	return a->nlen < b->nlen ? -1 : a->nlen > b->nlen;
}

int
index_path_cmp(const char *a, size_t alen, size_t abase, const char *b,
    size_t blen, size_t bbase)
{
	struct index_key ka = index_key_of(a, alen, abase);
	struct index_key kb = index_key_of(b, blen, bbase);

	return index_key_cmp(&ka, &kb);
}

/* True if k lies in the tree of directory p ("" is the root's). */
static bool
index_key_under(const struct index_key *k, const char *p, size_t plen)
{
	return plen == 0 || (k->dlen >= plen && memcmp(k->dir, p, plen) == 0 &&
	    (k->dlen == plen || k->dir[plen] == '/'));
}

/* ---- segments and snapshots ---- */

static size_t
index_segment_block(size_t n, size_t len)
{
	return sizeof(struct index_segment) + n * sizeof(struct match_entry) +
	    len + QUERY_PAD;
}

static size_t
index_snapshot_block(size_t nseg)
{
	return sizeof(struct index_snapshot) +
	    nseg * sizeof(struct index_segment *) +
	    (nseg + 1) * sizeof(size_t);
}

size_t
index_weight(size_t files, size_t path_bytes)
{
	/*
	 * Every segment but the last is full: INDEX_SEGMENT_FILES paths, or
	 * more than INDEX_SEGMENT_BYTES less one longest path of bytes.
	 */
	size_t nseg = files == 0 ? 0 : files / INDEX_SEGMENT_FILES +
	    path_bytes / (INDEX_SEGMENT_BYTES - FIDX_MAX_PATH_CEILING) + 1;

	return index_snapshot_block(nseg) + nseg * index_segment_block(0, 0) +
	    files * sizeof(struct match_entry) + path_bytes;
}

/* Alive in the process, whoever holds them (index_live_get). */
static atomic_size_t index_live_snapshots, index_live_segments;

void
index_live_get(size_t *snapshots, size_t *segments)
{
	*snapshots = atomic_load(&index_live_snapshots);
	*segments = atomic_load(&index_live_segments);
}

static void
index_segment_unref(struct index_segment *g)
{
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (g->budget != NULL)
		atomic_fetch_sub(&g->budget->used, g->bytes);
	atomic_fetch_sub(&index_live_segments, 1);
	fidx_big_free(g);
}

size_t
index_snapshot_bytes(const struct index_snapshot *s)
{
	return s->bytes;
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
	for (size_t i = 0; i < s->nseg; i++)
		index_segment_unref(s->segs[i]);
	if (s->budget != NULL)
		atomic_fetch_sub(&s->budget->used, index_snapshot_block(s->nseg));
	atomic_fetch_sub(&index_live_snapshots, 1);
	free(s);
}

size_t
index_snapshot_segment_of(const struct index_snapshot *s, size_t i)
{
	size_t lo = 0, hi = s->nseg;

	/* The last segment whose start is <= i. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->starts[mid] <= i)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The segment a key belongs in: the last whose first path is <= k, or 0. */
static size_t
index_locate(const struct index_snapshot *s, const struct index_key *k)
{
	size_t lo = 0, hi = s->nseg;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		struct index_key f = index_key_entry(s->segs[mid], 0);

		if (index_key_cmp(&f, k) <= 0)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The first entry of g not before k (g->n if none). */
static size_t
index_segment_lower(const struct index_segment *g, const struct index_key *k)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct index_key e = index_key_entry(g, mid);

		if (index_key_cmp(&e, k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool
index_snapshot_has(const struct index_snapshot *s, const char *path,
    size_t len)
{
	struct index_key k = index_key_of(path, len, match_basename(path, len));
	const struct index_segment *g;
	size_t i;

	if (s->nseg == 0)
		return false;
	g = s->segs[index_locate(s, &k)];
	i = index_segment_lower(g, &k);
	if (i == g->n)
		return false;
	struct index_key e = index_key_entry(g, i);

	return index_key_cmp(&e, &k) == 0;
}

/*
 * The heap builders and segment writers hold beyond what the budget
 * counts (issue 16): the budget charges a builder the size of the
 * snapshot it will make, but its arena doubles as it grows (a third of
 * that snapshot, held up to twice over), its sort adds four bytes a path
 * and one group a directory, and while it finishes, its arena and the
 * new segments exist together.
 * These bytes are counted here as allocated (what each one holds, as it
 * changes; a writer's segment pointer array and a delta's mark and
 * clear arrays, a few bytes per segment, are left out), so `stats`
 * (memory.walk_bytes and its peak) shows the transient beside the
 * index bytes.
 */
static atomic_size_t index_scratch_now, index_scratch_peak;

static void
index_scratch_add(size_t n)
{
	size_t v = atomic_fetch_add(&index_scratch_now, n) + n;
	size_t p = atomic_load(&index_scratch_peak);

	while (v > p && !atomic_compare_exchange_weak(&index_scratch_peak,
	    &p, v))
		;
}

static void
index_scratch_sub(size_t n)
{
	atomic_fetch_sub(&index_scratch_now, n);
}

void
index_scratch_get(size_t *now, size_t *peak)
{
	*now = atomic_load(&index_scratch_now);
	*peak = atomic_load(&index_scratch_peak);
}

#define INDEX_SEGW_STAGING (INDEX_SEGMENT_FILES * sizeof(struct match_entry) \
    + INDEX_SEGMENT_BYTES)

/*
 * Writes paths, in order, into new segments of at most
 * INDEX_SEGMENT_FILES paths and INDEX_SEGMENT_BYTES bytes, through one
 * staging block reused for each.
 */
struct index_segw {
	struct index_budget *budget;
	struct index_builder *from;	/* whose charge the segments take over,
					   or NULL: charge the budget, checked */
	struct match_entry *ent;	/* INDEX_SEGMENT_FILES */
	char *arena;			/* INDEX_SEGMENT_BYTES */
	size_t n, len;
	struct index_segment **out;
	size_t nout, cap;
	size_t made_bytes;
	int err;			/* errno of the first failure, or 0 */
};

static int
index_segw_init(struct index_segw *w, struct index_budget *budget,
    struct index_builder *from)
{
	memset(w, 0, sizeof(*w));
	w->budget = budget;
	w->from = from;
	w->ent = fidx_big_reallocarray(NULL, INDEX_SEGMENT_FILES,
	    sizeof(*w->ent));
	w->arena = fidx_big_malloc(INDEX_SEGMENT_BYTES);
	if (w->ent == NULL || w->arena == NULL) {
		fidx_big_free(w->ent);
		fidx_big_free(w->arena);
		w->ent = NULL;
		w->arena = NULL;
		errno = ENOMEM;
		return -1;
	}
	index_scratch_add(INDEX_SEGW_STAGING);
	return 0;
}

/* Charges bytes for a new block; false (errno ENOSPC) past the budget. */
static bool
index_segw_charge(struct index_segw *w, size_t bytes)
{
	if (w->budget == NULL)
		return true;
	if (w->from != NULL) {
		/* The builder's charge was for these bytes: it moves. */
		size_t take = bytes < w->from->charged ? bytes :
		    w->from->charged;

		w->from->charged -= take;
		if (bytes > take)
			atomic_fetch_add(&w->budget->used, bytes - take);
		return true;
	}
	if (atomic_fetch_add(&w->budget->used, bytes) + bytes >
	    w->budget->limit) {
		atomic_fetch_sub(&w->budget->used, bytes);
		errno = ENOSPC;
		return false;
	}
	return true;
}

static int
index_segw_push(struct index_segw *w, struct index_segment *g)
{
	if (w->nout == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 16;
		struct index_segment **v = fidx_reallocarray(w->out, ncap,
		    sizeof(*v));

		if (v == NULL)
			return -1;
		w->out = v;
		w->cap = ncap;
	}
	w->out[w->nout++] = g;
	return 0;
}

static void
index_segw_flush(struct index_segw *w)
{
	size_t bytes = index_segment_block(w->n, w->len);
	struct index_segment *g;

	if (w->n == 0 || w->err != 0)
		return;
	if ((g = fidx_big_malloc(bytes)) == NULL) {
		w->err = ENOMEM;
		return;
	}
	if (!index_segw_charge(w, bytes)) {
		fidx_big_free(g);
		w->err = ENOSPC;
		return;
	}
	atomic_init(&g->refs, 1);
	atomic_fetch_add(&index_live_segments, 1);
	g->n = (uint32_t)w->n;
	g->bytes = bytes;
	g->budget = w->budget;
	g->arena = (char *)(g->entries + w->n);
	memcpy(g->entries, w->ent, w->n * sizeof(*w->ent));
	memcpy(g->arena, w->arena, w->len);
	memset(g->arena + w->len, 0, QUERY_PAD);
	if (index_segw_push(w, g) == -1) {
		w->err = ENOMEM;
		index_segment_unref(g);
		return;
	}
	w->made_bytes += bytes;
	w->n = 0;
	w->len = 0;
}

static void
index_segw_put(struct index_segw *w, const char *path,
    const struct match_entry *e)
{
	if (w->n == INDEX_SEGMENT_FILES ||
	    w->len + e->len > INDEX_SEGMENT_BYTES)
		index_segw_flush(w);
	if (w->err != 0)
		return;
	memcpy(w->arena + w->len, path, e->len);
	w->ent[w->n] = *e;
	w->ent[w->n].off = (uint32_t)w->len;
	w->n++;
	w->len += e->len;
}

/* Shares an old segment: what was staged goes first. */
static void
index_segw_share(struct index_segw *w, struct index_segment *g)
{
	index_segw_flush(w);
	if (w->err != 0)
		return;
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	if (index_segw_push(w, g) == -1) {
		w->err = ENOMEM;
		index_segment_unref(g);
	}
}

/* A segment's path bytes (its arena before the pad). */
static size_t
index_segment_len(const struct index_segment *g)
{
	return g->bytes - index_segment_block(g->n, 0);
}

/* Under half a segment, by paths and by bytes: worth merging. */
static bool
index_segment_small(size_t n, size_t len)
{
	return n < INDEX_SEGMENT_FILES / 2 && len < INDEX_SEGMENT_BYTES / 2;
}

/* Copies g's paths into what w stages (the caller checked they fit). */
static void
index_segw_copy(struct index_segw *w, const struct index_segment *g)
{
	for (size_t j = 0; j < g->n && w->err == 0; j++)
		index_segw_put(w, index_segment_path(g, j), &g->entries[j]);
}

/*
 * Takes old segment g into the new snapshot: shared as it is, unless it
 * is small and can be merged, with what w stages or with the small
 * segment w wrote last (taken back and copied first: it comes before).
 * Without this a delta left its remains as segments of their own (a
 * full segment given one path split in two, a deletion shrank one), and
 * a watched project, never rebuilt, went from 48 segments to 361 in
 * three minutes of a soak's churn, each a block of its own. With it no
 * two small segments stay side by side where a delta passed, so a
 * snapshot keeps about n / (INDEX_SEGMENT_FILES / 2) of them. Returns
 * true when g was shared.
 */
static bool
index_segw_take(struct index_segw *w, struct index_segment *g,
    size_t *shared)
{
	size_t glen = index_segment_len(g);

	if (!index_segment_small(g->n, glen)) {
		index_segw_share(w, g);
		return true;
	}
	if (w->n == 0 && w->nout > 0) {
		struct index_segment *last = w->out[w->nout - 1];
		size_t llen = index_segment_len(last);

		if (index_segment_small(last->n, llen) &&
		    last->n + g->n <= INDEX_SEGMENT_FILES &&
		    llen + glen <= INDEX_SEGMENT_BYTES) {
			w->nout--;
			index_segw_copy(w, last);
			if (atomic_load(&last->refs) > 1)
				(*shared)--;	/* was an old one, shared */
			else
				w->made_bytes -= last->bytes;
			index_segment_unref(last);
		}
	}
	if (w->n > 0 && w->n + g->n <= INDEX_SEGMENT_FILES &&
	    w->len + glen <= INDEX_SEGMENT_BYTES) {
		index_segw_copy(w, g);
		return false;
	}
	index_segw_share(w, g);
	return true;
}

static void
index_segw_drop(struct index_segw *w)
{
	for (size_t i = 0; i < w->nout; i++)
		index_segment_unref(w->out[i]);
	if (w->arena != NULL)
		index_scratch_sub(INDEX_SEGW_STAGING);
	free(w->out);
	fidx_big_free(w->ent);
	fidx_big_free(w->arena);
	memset(w, 0, sizeof(*w));
}

/* Every snapshot's serial, from 1 (index_snapshot.serial). */
static _Atomic uint64_t index_serials;

/* The snapshot of the segments written; w is spent. NULL: see w->err. */
static struct index_snapshot *
index_segw_finish(struct index_segw *w, uint64_t generation, bool capped)
{
	struct index_snapshot *s = NULL;
	size_t block;

	index_segw_flush(w);
	block = index_snapshot_block(w->nout);
	if (w->err == 0 && (s = fidx_calloc(1, block)) == NULL)
		w->err = ENOMEM;
	if (w->err == 0 && !index_segw_charge(w, block)) {
		free(s);
		w->err = ENOSPC;
	}
	if (w->err != 0) {
		int e = w->err;

		index_segw_drop(w);
		errno = e;
		return NULL;
	}
	atomic_init(&s->refs, 1);
	atomic_fetch_add(&index_live_snapshots, 1);
	s->budget = w->budget;
	s->generation = generation;
	s->serial = atomic_fetch_add(&index_serials, 1) + 1;
	s->nseg = w->nout;
	s->segs = (struct index_segment **)(s + 1);
	s->starts = (size_t *)(s->segs + w->nout);
	s->bytes = block;
	s->capped = capped;
	for (size_t i = 0; i < w->nout; i++) {
		s->segs[i] = w->out[i];
		s->starts[i] = s->n;
		s->n += w->out[i]->n;
		s->bytes += w->out[i]->bytes;
	}
	s->starts[w->nout] = s->n;
	w->nout = 0;
	index_segw_drop(w);
	return s;
}

/* ---- the builder ---- */

/*
 * The arena is runs, back to back, each a directory and files in it:
 *     u32 count   u16 dlen   dir bytes (dlen: the paths' base, its '/'
 *                            included; 0 at the root)
 * then count names, each
 *     u16 nlen    name bytes (the path after base)
 * unaligned, read with memcpy. A path is its run's directory then its
 * name; a walk lists a directory's files together, so there are about
 * as many runs as directories and most bytes are names.
 */
#define INDEX_RUN_HDR 6u
#define INDEX_NAME_HDR 2u
#define INDEX_NO_RUN SIZE_MAX

/* A directory's files, in order[] after a sort; one run before it. */
struct index_group {
	uint32_t dir;		/* arena offset of the directory's bytes */
	uint16_t dlen;
	uint32_t first;		/* sorted: into order[]; a run: the arena
				   offset of its first name */
	uint32_t n;
};

static uint32_t
index_get32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint16_t
index_get16(const char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* A name record's bytes, its header included. */
static size_t
index_name_size(const char *arena, size_t off)
{
	return INDEX_NAME_HDR + index_get16(arena + off);
}

/* What a builder holds on the heap (its arrays, as allocated). */
static size_t
index_builder_held(const struct index_builder *b)
{
	return b->cap + (b->order != NULL ? fidx_big_size(b->order) : 0) +
	    (b->groups != NULL ? fidx_big_size(b->groups) : 0);
}

/* b changed its allocations from `before` bytes held: the count follows. */
static void
index_builder_held_was(const struct index_builder *b, size_t before)
{
	size_t after = index_builder_held(b);

	if (after > before)
		index_scratch_add(after - before);
	else
		index_scratch_sub(before - after);
}

/* Drops the sort's arrays: the builder is about to change. */
static void
index_builder_unsort(struct index_builder *b)
{
	size_t held = index_builder_held(b);

	fidx_big_free(b->order);
	fidx_big_free(b->groups);
	b->order = NULL;
	b->groups = NULL;
	b->ngroups = 0;
	b->sorted = false;
	index_builder_held_was(b, held);
}

void
index_builder_init(struct index_builder *b, size_t max_files,
    size_t max_bytes, struct index_budget *budget)
{
	memset(b, 0, sizeof(*b));
	b->run = INDEX_NO_RUN;
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

/* True if the run being added to is the directory path[0, base). */
static bool
index_builder_in_run(const struct index_builder *b, const char *path,
    size_t base)
{
	const char *h;

	if (b->run == INDEX_NO_RUN)
		return false;
	h = b->arena + b->run;
	return index_get16(h + 4) == base &&
	    memcmp(h + INDEX_RUN_HDR, path, base) == 0;
}

int
index_builder_add(struct index_builder *b, const char *path, size_t len)
{
	size_t need = index_weight(b->n + 1, b->len + len), base, nlen, grow;
	bool same;

	if (len == 0 || len > FIDX_MAX_PATH_CEILING)
		return 0;
	base = match_basename(path, len);
	nlen = len - base;
	same = index_builder_in_run(b, path, base);
	grow = INDEX_NAME_HDR + nlen + (same ? 0 : INDEX_RUN_HDR + base);
	if (b->n >= b->max_files || need > b->max_bytes ||
	    b->used + grow > UINT32_MAX) {
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
	if (b->used + grow > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 64 * 1024, held;
		char *a;

		while (ncap < b->used + grow)
			ncap *= 2;
		if ((a = fidx_big_reallocarray(b->arena, ncap, 1)) == NULL)
			goto nomem;
		held = index_builder_held(b);
		b->arena = a;
		b->cap = ncap;
		index_builder_held_was(b, held);
	}
	if (b->order != NULL)
		index_builder_unsort(b);
	if (!same) {
		uint32_t zero = 0;
		uint16_t d = (uint16_t)base;

		b->run = b->used;
		memcpy(b->arena + b->used, &zero, 4);
		memcpy(b->arena + b->used + 4, &d, 2);
		memcpy(b->arena + b->used + INDEX_RUN_HDR, path, base);
		b->used += INDEX_RUN_HDR + base;
	}
	uint32_t count = index_get32(b->arena + b->run) + 1;
	uint16_t nl = (uint16_t)nlen;

	memcpy(b->arena + b->run, &count, 4);
	memcpy(b->arena + b->used, &nl, 2);
	memcpy(b->arena + b->used + INDEX_NAME_HDR, path + base, nlen);
	b->used += INDEX_NAME_HDR + nlen;
	b->n++;
	b->len += len;
	if (len > b->longest)
		b->longest = len;
	b->sorted = false;
	return 0;
nomem:
	/* The charge for this path stays: release() gives it all back. */
	if (b->files != NULL)
		atomic_fetch_sub(b->files, 1);
	return -1;
}

/* The run at arena offset at, as a group; *end is past its names. */
static struct index_group
index_run_at(const struct index_builder *b, size_t at, size_t *end)
{
	const char *a = b->arena;
	struct index_group r = { (uint32_t)(at + INDEX_RUN_HDR),
	    index_get16(a + at + 4), 0, index_get32(a + at) };
	size_t off = at + INDEX_RUN_HDR + r.dlen;

	r.first = (uint32_t)off;
	for (uint32_t j = 0; j < r.n; j++)
		off += index_name_size(a, off);
	*end = off;
	return r;
}

static int
index_group_cmp(const void *x, const void *y, void *arg)
{
	const char *arena = arg;
	const struct index_group *a = x, *c = y;

	return index_dir_cmp(arena + a->dir, a->dlen ? a->dlen - 1u : 0,
	    arena + c->dir, c->dlen ? c->dlen - 1u : 0);
}

/* Within one directory: by file name alone. */
static int
index_name_cmp(const void *x, const void *y, void *arg)
{
	const char *arena = arg;
	uint32_t ao, co;

	memcpy(&ao, x, sizeof(ao));
	memcpy(&co, y, sizeof(co));
	size_t an = index_get16(arena + ao), cn = index_get16(arena + co);
	int r = memcmp(arena + ao + INDEX_NAME_HDR, arena + co +
	    INDEX_NAME_HDR, an < cn ? an : cn);

	return r != 0 ? r : an < cn ? -1 : an > cn;
}

int
index_builder_sort(struct index_builder *b)
{
	struct index_group *runs;
	uint32_t *order;
	size_t nruns = 0, n = 0, k = 0, held, end;

	/* One path, or none: in order as it is (the cursor reads runs). */
	if (b->sorted || b->n < 2)
		goto done;
	for (size_t at = 0; at < b->used; at = end, nruns++)
		(void)index_run_at(b, at, &end);
	if ((runs = fidx_big_reallocarray(NULL, nruns, sizeof(*runs))) ==
	    NULL)
		return -1;
	if ((order = fidx_big_reallocarray(NULL, b->n, sizeof(*order))) ==
	    NULL) {
		fidx_big_free(runs);
		return -1;
	}
	nruns = 0;
	for (size_t at = 0; at < b->used; at = end)
		runs[nruns++] = index_run_at(b, at, &end);
	qsort_r(runs, nruns, sizeof(*runs), index_group_cmp, b->arena);
	/*
	 * Runs of one directory (a walk may list it in parts) sort as one
	 * group; each group is written over the runs already read.
	 */
	for (size_t r = 0, q; r < nruns; r = q) {
		struct index_group g = runs[r];
		size_t from = n, kept;

		for (q = r; q < nruns && index_group_cmp(&runs[r], &runs[q],
		    b->arena) == 0; q++)
			for (size_t j = 0, off = runs[q].first; j < runs[q].n;
			    j++, off += index_name_size(b->arena, off))
				order[n++] = (uint32_t)off;
		qsort_r(order + from, n - from, sizeof(*order), index_name_cmp,
		    b->arena);
		/* A path listed twice is kept once: never twice in an index. */
		kept = from + 1;
		for (size_t i = from + 1; i < n; i++)
			if (index_name_cmp(&order[kept - 1], &order[i],
			    b->arena) != 0)
				order[kept++] = order[i];
		n = kept;
		g.first = (uint32_t)from;
		g.n = (uint32_t)(n - from);
		runs[k++] = g;
	}
	held = index_builder_held(b);
	b->order = order;
	b->groups = runs;
	b->ngroups = k;
	index_builder_held_was(b, held);
	if (b->files != NULL && n < b->n)
		atomic_fetch_sub(b->files, b->n - n);
	b->n = n;
done:
	b->sorted = true;
	return 0;
}

int
index_cursor_init(struct index_cursor *c, const struct index_builder *b)
{
	memset(c, 0, sizeof(*c));
	c->b = b;
	if ((c->path = fidx_malloc(b->longest ? b->longest : 1)) == NULL)
		return -1;
	return 0;
}

/* Back to the first path. */
static void
index_cursor_rewind(struct index_cursor *c)
{
	c->i = c->at = c->left = 0;
}

bool
index_cursor_next(struct index_cursor *c)
{
	const struct index_builder *b = c->b;
	const char *a;
	size_t name, nlen;

	if (b == NULL || c->i >= b->n)
		return false;
	a = b->arena;
	while (c->left == 0) {
		const char *dir;

		if (b->order != NULL) {
			const struct index_group *g = &b->groups[c->at++];

			dir = a + g->dir;
			c->dlen = g->dlen;
			c->left = g->n;
		} else {
			c->left = index_get32(a + c->at);
			c->dlen = index_get16(a + c->at + 4);
			dir = a + c->at + INDEX_RUN_HDR;
			c->at += INDEX_RUN_HDR + c->dlen;
		}
		memcpy(c->path, dir, c->dlen);
		/* A mask is the set of the bytes seen: the directory's once. */
		c->dmask = match_mask(dir, c->dlen);
	}
	name = b->order != NULL ? b->order[c->i] : c->at;
	nlen = index_get16(a + name);
	memcpy(c->path + c->dlen, a + name + INDEX_NAME_HDR, nlen);
	if (b->order == NULL)
		c->at += INDEX_NAME_HDR + nlen;
	c->e.mask = c->dmask | match_mask(c->path + c->dlen, nlen);
	c->e.off = 0;
	c->e.len = (uint16_t)(c->dlen + nlen);
	c->e.base = (uint16_t)c->dlen;
	c->left--;
	c->i++;
	return true;
}

void
index_cursor_release(struct index_cursor *c)
{
	free(c->path);
	memset(c, 0, sizeof(*c));
}

/*
 * A full rebuild gives the builder's pages back as its segments take
 * their contents over, so its peak is the old index, the new one and a
 * little, not also the whole builder (bench/soak.sh: the rebuild's
 * saw-tooth, old + builder + new, was twice the index). The order goes
 * as it is read. An arena page goes once every name on it is written and
 * every directory on it is done with: left[] counts them, one per page
 * of memory (not of arena offsets: the block does not start on a page).
 * A directory's names lie side by side in the arena and the sorted
 * order keeps a subtree together, as the walk did, so pages go as the
 * writing passes. Nothing when the arrays are not mappings (under ASan)
 * or left[] cannot be had.
 */
#define INDEX_PAGE 4096
#define INDEX_GIVEBACK_ORDER 4096

struct index_giveback {
	uint16_t *left;		/* per page: names and directories on it
				   still to be read; at most INDEX_PAGE + 1 */
	uintptr_t base;		/* the page the arena starts in */
	size_t npages;
};

static size_t
index_giveback_page(const struct index_giveback *g,
    const struct index_builder *b, size_t off)
{
	return ((uintptr_t)b->arena + off - g->base) / INDEX_PAGE;
}

/* [off, off + len) of the arena is read (-1) or to be read (+1). */
static void
index_giveback_count(struct index_giveback *g, struct index_builder *b,
    size_t off, size_t len, int d)
{
	for (size_t p = index_giveback_page(g, b, off);
	    p <= index_giveback_page(g, b, off + len - 1); p++) {
		uintptr_t at = g->base + p * INDEX_PAGE;

		if (d > 0) {
			g->left[p]++;
			continue;
		}
		/* The first page holds the block's header: never whole. */
		if (--g->left[p] > 0 || at < (uintptr_t)b->arena)
			continue;
		fidx_big_discard(b->arena, at - (uintptr_t)b->arena,
		    INDEX_PAGE);
	}
}

static void
index_giveback_init(struct index_giveback *g, struct index_builder *b)
{
	memset(g, 0, sizeof(*g));
	if (b->order == NULL || !fidx_big_mapped(b->arena))
		return;
	g->base = (uintptr_t)b->arena & ~(uintptr_t)(INDEX_PAGE - 1);
	g->npages = index_giveback_page(g, b, b->used - 1) + 1;
	if ((g->left = fidx_calloc(g->npages, sizeof(*g->left))) == NULL)
		return;
	for (size_t k = 0; k < b->ngroups; k++)
		if (b->groups[k].dlen > 0)
			index_giveback_count(g, b, b->groups[k].dir,
			    b->groups[k].dlen, 1);
	for (size_t i = 0; i < b->n; i++)
		index_giveback_count(g, b, b->order[i],
		    index_name_size(b->arena, b->order[i]), 1);
}

/* The cursor c over b has just read a path. */
static void
index_giveback_read(struct index_giveback *g, struct index_builder *b,
    const struct index_cursor *c)
{
	size_t i = c->i - 1;

	if (g->left == NULL)
		return;
	index_giveback_count(g, b, b->order[i],
	    index_name_size(b->arena, b->order[i]), -1);
	if (c->left == 0 && c->dlen > 0)
		index_giveback_count(g, b, b->groups[c->at - 1].dir,
		    c->dlen, -1);
	if (c->i % INDEX_GIVEBACK_ORDER == 0)
		fidx_big_discard(b->order, 0, c->i * sizeof(*b->order));
}

/*
 * A rebuild's writer against the snapshot it replaces: the new paths are
 * cut where old segments start, and a run of them that is an old
 * segment, path for path, is that segment, shared. So rebuilding a tree
 * that changed in a few places makes segments only there, and the
 * rebuild holds the old index and the builder, not two indexes (the
 * soak's back-to-back reindexes of a 100,000-file tree under churn made
 * RSS saw-tooth by a second index each time).
 */
struct index_like {
	const struct index_snapshot *s;	/* or NULL: share nothing */
	size_t k;			/* the next old segment not reached */
	struct index_segment *cand;	/* the old segment staged so far */
	size_t matched;			/* its paths staged, in order */
	size_t at_n, at_len;		/* what was staged before them */
};

static bool
index_like_same(const struct index_segment *g, size_t i, const char *path,
    const struct match_entry *e)
{
	return g->entries[i].len == e->len &&
	    memcmp(index_segment_path(g, i), path, e->len) == 0;
}

/* Stages the next path, or shares the old segment it completes. */
static void
index_like_put(struct index_like *l, struct index_segw *w, const char *path,
    const struct match_entry *e, struct index_apply_stats *st)
{
	for (; l->s != NULL && l->k < l->s->nseg; l->k++) {
		struct index_segment *g = l->s->segs[l->k];
		int r = index_path_cmp(index_segment_path(g, 0),
		    g->entries[0].len, g->entries[0].base, path, e->len,
		    e->base);

		if (r > 0)
			break;
		if (r == 0) {
			/*
			 * An old segment starts here. So that its copy is
			 * staged whole (no flush cuts it), what is staged
			 * goes first unless both fit in one segment.
			 */
			if (w->n + g->n > INDEX_SEGMENT_FILES ||
			    w->len + index_segment_len(g) > INDEX_SEGMENT_BYTES)
				index_segw_flush(w);
			l->cand = g;
			l->matched = 0;
			l->at_n = w->n;
			l->at_len = w->len;
			l->k++;
			break;
		}
	}
	if (l->cand != NULL && !index_like_same(l->cand, l->matched, path, e))
		l->cand = NULL;
	index_segw_put(w, path, e);
	if (l->cand == NULL || w->err != 0 || ++l->matched < l->cand->n)
		return;
	/* The staged copy is the old segment: it goes in instead. */
	w->n = l->at_n;
	w->len = l->at_len;
	if (index_segw_take(w, l->cand, &st->segments_shared))
		st->segments_shared++;
	l->cand = NULL;
}

struct index_snapshot *
index_builder_finish(struct index_builder *b, uint64_t generation)
{
	struct index_apply_stats st;

	return index_builder_finish_like(b, NULL, generation, &st);
}

struct index_snapshot *
index_builder_finish_like(struct index_builder *b,
    const struct index_snapshot *like, uint64_t generation,
    struct index_apply_stats *st)
{
	struct index_snapshot *s = NULL;
	struct index_giveback g = { 0 };
	struct index_cursor c = { 0 };
	struct index_like l = { .s = like };
	struct index_segw w;

	memset(st, 0, sizeof(*st));
	if (index_builder_sort(b) == -1 || index_cursor_init(&c, b) == -1 ||
	    index_segw_init(&w, b->budget, b) == -1)
		goto out;
	index_giveback_init(&g, b);
	while (w.err == 0 && index_cursor_next(&c)) {
		index_like_put(&l, &w, c.path, &c.e, st);
		index_giveback_read(&g, b, &c);
	}
	index_segw_flush(&w);
	st->added = b->n;
	st->removed = like != NULL ? like->n : 0;
	st->segments_made = w.nout - st->segments_shared;
	st->bytes_made = w.made_bytes;
	s = index_segw_finish(&w, generation, b->capped);
	free(g.left);
out:
	index_cursor_release(&c);
	/* What the segments did not take over goes back with the builder. */
	index_builder_release(b);
	return s;
}

int
index_builder_absorb(struct index_builder *dst, struct index_builder *src)
{
	size_t used = dst->used + src->used;
	int rc = -1;

	if (used > UINT32_MAX)
		goto out;
	if (used > dst->cap) {
		char *a = fidx_big_reallocarray(dst->arena, used, 1);
		size_t held = index_builder_held(dst);

		if (a == NULL)
			goto out;
		dst->arena = a;
		dst->cap = used;
		index_builder_held_was(dst, held);
	}
	if (dst->order != NULL)
		index_builder_unsort(dst);
	/* Runs are whole in themselves: src's follow dst's as they are. */
	if (src->used > 0)
		memcpy(dst->arena + dst->used, src->arena, src->used);
	dst->used = used;
	dst->run = INDEX_NO_RUN;
	dst->n += src->n;
	dst->len += src->len;
	if (src->longest > dst->longest)
		dst->longest = src->longest;
	dst->capped |= src->capped;
	dst->sorted = false;
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
	index_scratch_sub(index_builder_held(b));
	fidx_big_free(b->arena);
	fidx_big_free(b->order);
	fidx_big_free(b->groups);
	memset(b, 0, sizeof(*b));
	b->run = INDEX_NO_RUN;
}

/* ---- deltas ---- */

static int
index_str_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* True if sorted set v (n) holds s[0..len). */
static bool
index_set_has(const char *const *v, size_t n, const char *s, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strncmp(v[mid], s, len);

		if (r == 0 && v[mid][len] != '\0')
			r = 1;
		if (r == 0)
			return true;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* True if the path is one of the clears or under one of them. */
static bool
index_cleared(const char *const *v, size_t n, const char *path, size_t len)
{
	if (n > 0 && v[0][0] == '\0')
		return true;		/* the root: everything */
	for (size_t i = 0; i < len; i++)
		if (path[i] == '/' && index_set_has(v, n, path, i))
			return true;
	return index_set_has(v, n, path, len);
}

size_t
index_paths_norm(const char **v, size_t n)
{
	size_t k = 0;

	qsort(v, n, sizeof(*v), index_str_cmp);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(v[i]);
		const char *t;

		/* An ancestor sorts before it; search those kept so far. */
		if (k > 0 && (strcmp(v[k - 1], v[i]) == 0 ||
		    (len > 0 && index_cleared(v, k, v[i], len))))
			continue;
		t = v[k];
		v[k++] = v[i];
		v[i] = t;
	}
	return k;
}

/* The clears that matter (index_paths_norm), in a copy. */
static const char **
index_clears_norm(const struct index_change *ch, size_t *np)
{
	const char **v = fidx_reallocarray(NULL, ch->nclear ? ch->nclear : 1,
	    sizeof(*v));

	if (v == NULL)
		return NULL;
	memcpy(v, ch->clear, ch->nclear * sizeof(*v));
	*np = index_paths_norm(v, ch->nclear);
	return v;
}

enum index_mark {
	INDEX_KEEP,			/* shared as it is */
	INDEX_DROP,			/* every path in it goes */
	INDEX_TOUCH,			/* rebuilt */
};

/* Marks the segments the clear of p reaches. */
static void
index_mark_clear(const struct index_snapshot *s, uint8_t *mark, const char *p)
{
	size_t plen = strlen(p);
	struct index_key k = index_key_of(p, plen, match_basename(p, plen));
	struct index_key lo = { p, plen, "", 0 };
	size_t i = index_locate(s, &k), at;

	/* The file p itself. */
	at = index_segment_lower(s->segs[i], &k);
	if (at < s->segs[i]->n) {
		struct index_key e = index_key_entry(s->segs[i], at);

		if (index_key_cmp(&e, &k) == 0)
			mark[i] = INDEX_TOUCH;
	}
	/* The tree under p: a range starting at (p, ""). */
	i = plen == 0 ? 0 : index_locate(s, &lo);
	at = plen == 0 ? 0 : index_segment_lower(s->segs[i], &lo);
	for (; i < s->nseg; i++, at = 0) {
		const struct index_segment *g = s->segs[i];
		struct index_key e, last;

		if (at == g->n)
			continue;
		e = index_key_entry(g, at);
		if (!index_key_under(&e, p, plen))
			break;
		last = index_key_entry(g, g->n - 1);
		if (at == 0 && index_key_under(&last, p, plen)) {
			if (mark[i] == INDEX_KEEP)
				mark[i] = INDEX_DROP;
			continue;
		}
		mark[i] = INDEX_TOUCH;
		if (!index_key_under(&last, p, plen))
			break;
	}
}

/* Moves c to the next add, if one of the first nadd is left. */
static bool
index_apply_next(struct index_cursor *c, size_t nadd)
{
	return c->i < nadd && index_cursor_next(c);
}

struct index_snapshot *
index_snapshot_apply(const struct index_snapshot *old,
    const struct index_change *ch, uint64_t generation,
    struct index_apply_stats *st)
{
	const struct index_builder *add = ch->add;
	size_t nadd = add != NULL ? add->n : 0, nclear = 0;
	size_t removed = 0, room;
	const char **clear = NULL;
	uint8_t *mark = NULL;
	struct index_snapshot *s = NULL;
	struct index_cursor cur = { 0 };	/* the add to place next */
	struct index_segw w;
	bool capped = old->capped, have;

	memset(st, 0, sizeof(*st));
	if ((clear = index_clears_norm(ch, &nclear)) == NULL ||
	    (mark = fidx_calloc(old->nseg ? old->nseg : 1, 1)) == NULL ||
	    (add != NULL && index_cursor_init(&cur, add) == -1) ||
	    index_segw_init(&w, old->budget, NULL) == -1) {
		index_cursor_release(&cur);
		free(clear);
		free(mark);
		errno = ENOMEM;
		return NULL;
	}
	while (old->nseg > 0 && index_cursor_next(&cur)) {
		struct index_key k = index_key_of(cur.path, cur.e.len,
		    cur.e.base);

		mark[index_locate(old, &k)] = INDEX_TOUCH;
	}
	index_cursor_rewind(&cur);
	for (size_t c = 0; c < nclear && old->nseg > 0; c++)
		index_mark_clear(old, mark, clear[c]);

	/* What goes, so the cap can be kept before anything is written. */
	for (size_t i = 0; i < old->nseg; i++) {
		const struct index_segment *g = old->segs[i];

		if (mark[i] == INDEX_DROP)
			removed += g->n;
		else if (mark[i] == INDEX_TOUCH)
			for (size_t j = 0; j < g->n; j++)
				removed += index_cleared(clear, nclear,
				    index_segment_path(g, j),
				    g->entries[j].len);
	}
	room = old->n - removed < ch->max_files ?
	    ch->max_files - (old->n - removed) : 0;
	if (nadd > room) {
		nadd = room;
		capped = true;
	}
	st->removed = removed;
	st->added = nadd;
	have = index_apply_next(&cur, nadd);

	for (size_t i = 0; i < old->nseg && w.err == 0; i++) {
		const struct index_segment *g = old->segs[i];
		struct index_key next;
		bool last = i + 1 == old->nseg;

		if (mark[i] == INDEX_KEEP) {
			if (index_segw_take(&w, old->segs[i],
			    &st->segments_shared))
				st->segments_shared++;
			continue;
		}
		if (mark[i] == INDEX_DROP)
			continue;
		if (!last)
			next = index_key_entry(old->segs[i + 1], 0);
		/* Merge what stays of g with the adds that land in it. */
		for (size_t j = 0; j < g->n && w.err == 0;) {
			const struct match_entry *e = &g->entries[j];
			const char *path = index_segment_path(g, j);
			int r = !have ? 1 : index_path_cmp(cur.path, cur.e.len,
			    cur.e.base, path, e->len, e->base);

			if (r < 0) {
				index_segw_put(&w, cur.path, &cur.e);
				have = index_apply_next(&cur, nadd);
				continue;
			}
			/* Never twice: an add equal to a path held is that path. */
			if (r == 0) {
				index_segw_put(&w, path, e);
				have = index_apply_next(&cur, nadd);
			} else if (!index_cleared(clear, nclear, path, e->len))
				index_segw_put(&w, path, e);
			j++;
		}
		for (; have && w.err == 0; have = index_apply_next(&cur, nadd)) {
			struct index_key k = index_key_of(cur.path, cur.e.len,
			    cur.e.base);

			if (!last && index_key_cmp(&k, &next) >= 0)
				break;
			index_segw_put(&w, cur.path, &cur.e);
		}
	}
	/* An empty index: every add is new. */
	for (; have && w.err == 0; have = index_apply_next(&cur, nadd))
		index_segw_put(&w, cur.path, &cur.e);
	index_segw_flush(&w);
	st->segments_made = w.nout - st->segments_shared;
	st->bytes_made = w.made_bytes;
	s = index_segw_finish(&w, generation, capped);
	index_cursor_release(&cur);
	free(clear);
	free(mark);
	return s;
}
