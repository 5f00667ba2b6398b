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
 * snapshot it will make, but while it grows its arena and entry array
 * double (up to twice that), its sort takes one more entry array, and
 * while it finishes, its arena and the new segments exist together.
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

/* What a builder holds on the heap (its arena and entries, as allocated). */
static size_t
index_builder_held(const struct index_builder *b)
{
	return b->cap + b->ecap * sizeof(struct match_entry);
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
	size_t need = index_weight(b->n + 1, b->len + len);

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
	if (b->len + len > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 64 * 1024, held;
		char *a;

		while (ncap < b->len + len)
			ncap *= 2;
		if ((a = fidx_big_reallocarray(b->arena, ncap, 1)) == NULL)
			return -1;
		held = index_builder_held(b);
		b->arena = a;
		b->cap = ncap;
		index_builder_held_was(b, held);
	}
	if (b->n == b->ecap) {
		size_t ncap = b->ecap ? b->ecap * 2 : 4096, held;
		struct match_entry *e;

		if ((e = fidx_big_reallocarray(b->entries, ncap,
		    sizeof(*e))) == NULL)
			return -1;
		held = index_builder_held(b);
		b->entries = e;
		b->ecap = ncap;
		index_builder_held_was(b, held);
	}
	memcpy(b->arena + b->len, path, len);
	match_entry_init(&b->entries[b->n++], b->arena, (uint32_t)b->len,
	    (uint16_t)len, true);
	b->len += len;
	b->sorted = false;
	return 0;
}

/* One directory's files as the walk left them: entries [first, first+n). */
struct index_run {
	const char *dir;
	size_t dlen;
	size_t first, n;
};

static int
index_run_cmp(const void *x, const void *y)
{
	const struct index_run *a = x, *c = y;

	return index_dir_cmp(a->dir, a->dlen, c->dir, c->dlen);
}

/* Within one directory: by file name alone. */
static int
index_name_cmp(const void *x, const void *y, void *arg)
{
	const char *arena = arg;
	const struct match_entry *a = x, *c = y;
	size_t an = a->len - a->base, cn = c->len - c->base;
	int r = memcmp(arena + a->off + a->base, arena + c->off + c->base,
	    an < cn ? an : cn);

	return r != 0 ? r : an < cn ? -1 : an > cn;
}

static bool
index_same_dir(const char *arena, const struct match_entry *a,
    const struct match_entry *c)
{
	return a->base == c->base &&
	    memcmp(arena + a->off, arena + c->off, a->base) == 0;
}

int
index_builder_sort(struct index_builder *b)
{
	struct index_run *runs = NULL;
	struct match_entry *out = NULL;
	char *dirs = NULL, *at;
	size_t nruns = 0, dbytes = 0, n = 0, r, scratch, held;

	if (b->sorted || b->n < 2)
		goto done;
	for (size_t i = 0; i < b->n; i++)
		if (i == 0 || !index_same_dir(b->arena, &b->entries[i - 1],
		    &b->entries[i])) {
			nruns++;
			dbytes += b->entries[i].base;
		}
	if ((runs = fidx_big_reallocarray(NULL, nruns, sizeof(*runs))) ==
	    NULL || (dirs = fidx_big_malloc(dbytes + 1)) == NULL ||
	    (out = fidx_big_reallocarray(NULL, b->n, sizeof(*out))) == NULL) {
		fidx_big_free(runs);
		fidx_big_free(dirs);
		return -1;
	}
	/* The scratch, while it lives; out then replaces the entries. */
	scratch = nruns * sizeof(*runs) + dbytes + 1 + b->n * sizeof(*out);
	index_scratch_add(scratch);
	/*
	 * The directories' names, copied together: sorting them reads a few
	 * MiB in cache instead of a byte here and there of the whole arena.
	 */
	at = dirs;
	r = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct match_entry *e = &b->entries[i];

		if (i == 0 || !index_same_dir(b->arena, &b->entries[i - 1], e)) {
			memcpy(at, b->arena + e->off, e->base);
			runs[r++] = (struct index_run){ at,
			    e->base ? e->base - 1u : 0, i, 0 };
			at += e->base;
		}
		runs[r - 1].n++;
	}
	qsort(runs, nruns, sizeof(*runs), index_run_cmp);
	/* Runs of one directory (a walk may list it in parts) sort as one. */
	for (r = 0; r < nruns;) {
		size_t from = n, q = r, kept;

		for (; q < nruns && index_run_cmp(&runs[r], &runs[q]) == 0;
		    q++) {
			memcpy(out + n, b->entries + runs[q].first,
			    runs[q].n * sizeof(*out));
			n += runs[q].n;
		}
		qsort_r(out + from, n - from, sizeof(*out), index_name_cmp,
		    b->arena);
		/* A path listed twice is kept once: never twice in an index. */
		kept = from + 1;
		for (size_t i = from + 1; i < n; i++)
			if (index_name_cmp(&out[kept - 1], &out[i],
			    b->arena) != 0)
				out[kept++] = out[i];
		n = kept;
		r = q;
	}
	fidx_big_free(runs);
	fidx_big_free(dirs);
	fidx_big_free(b->entries);
	held = index_builder_held(b);
	b->entries = out;
	b->ecap = b->n;
	index_scratch_sub(scratch);
	index_builder_held_was(b, held);
	if (b->files != NULL && n < b->n)
		atomic_fetch_sub(b->files, b->n - n);
	b->n = n;
done:
	b->sorted = true;
	return 0;
}

/*
 * A full rebuild gives the builder's pages back as its segments take
 * their contents over, so its peak is the old index, the new one and a
 * little, not also the whole builder (bench/soak.sh: the rebuild's
 * saw-tooth, old + builder + new, was twice the index). The entries go
 * in order, as they are read. An arena page goes once every path on it
 * is written: left[] counts them, one per page of memory (not of arena
 * offsets: the block does not start on a page). A directory's paths lie
 * side by side in the arena and the sorted order keeps a subtree
 * together, as the walk did, so pages go as the writing passes. Nothing
 * when the arrays are not mappings (under ASan) or left[] cannot be had.
 */
#define INDEX_PAGE 4096
#define INDEX_GIVEBACK_ENTRIES 4096

struct index_giveback {
	uint16_t *left;		/* per page: paths on it not yet written;
				   at most INDEX_PAGE + 1 */
	uintptr_t base;		/* the page the arena starts in */
};

static size_t
index_giveback_page(const struct index_giveback *g,
    const struct index_builder *b, size_t off)
{
	return ((uintptr_t)b->arena + off - g->base) / INDEX_PAGE;
}

static void
index_giveback_init(struct index_giveback *g, const struct index_builder *b)
{
	memset(g, 0, sizeof(*g));
	if (b->n == 0 || !fidx_big_mapped(b->arena) ||
	    !fidx_big_mapped(b->entries))
		return;
	g->base = (uintptr_t)b->arena & ~(uintptr_t)(INDEX_PAGE - 1);
	if ((g->left = fidx_calloc(index_giveback_page(g, b, b->len) + 1,
	    sizeof(*g->left))) == NULL)
		return;
	for (size_t i = 0; i < b->n; i++) {
		const struct match_entry *e = &b->entries[i];

		for (size_t p = index_giveback_page(g, b, e->off);
		    p <= index_giveback_page(g, b, e->off + e->len - 1); p++)
			g->left[p]++;
	}
}

/* Entry i of b is written. */
static void
index_giveback_written(struct index_giveback *g, struct index_builder *b,
    size_t i)
{
	const struct match_entry *e = &b->entries[i];

	if (g->left == NULL)
		return;
	for (size_t p = index_giveback_page(g, b, e->off);
	    p <= index_giveback_page(g, b, e->off + e->len - 1); p++) {
		uintptr_t at = g->base + p * INDEX_PAGE;

		if (--g->left[p] > 0)
			continue;
		/* The first page holds the block's header: never whole. */
		if (at < (uintptr_t)b->arena)
			continue;
		fidx_big_discard(b->arena, at - (uintptr_t)b->arena,
		    INDEX_PAGE);
	}
	if ((i + 1) % INDEX_GIVEBACK_ENTRIES == 0)
		fidx_big_discard(b->entries, 0, (i + 1) * sizeof(*e));
}

struct index_snapshot *
index_builder_finish(struct index_builder *b, uint64_t generation)
{
	struct index_snapshot *s = NULL;
	struct index_giveback g = { 0 };
	struct index_segw w;

	if (index_builder_sort(b) == -1 ||
	    index_segw_init(&w, b->budget, b) == -1)
		goto out;
	index_giveback_init(&g, b);
	for (size_t i = 0; i < b->n && w.err == 0; i++) {
		index_segw_put(&w, b->arena + b->entries[i].off,
		    &b->entries[i]);
		index_giveback_written(&g, b, i);
	}
	s = index_segw_finish(&w, generation, b->capped);
	free(g.left);
out:
	/* What the segments did not take over goes back with the builder. */
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
	if (len > dst->cap) {
		char *a = fidx_big_reallocarray(dst->arena, len, 1);
		size_t held = index_builder_held(dst);

		if (a == NULL)
			goto out;
		dst->arena = a;
		dst->cap = len;
		index_builder_held_was(dst, held);
	}
	if (n > dst->ecap) {
		struct match_entry *e = fidx_big_reallocarray(dst->entries,
		    n, sizeof(*e));
		size_t held = index_builder_held(dst);

		if (e == NULL)
			goto out;
		dst->entries = e;
		dst->ecap = n;
		index_builder_held_was(dst, held);
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
	fidx_big_free(b->entries);
	memset(b, 0, sizeof(*b));
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

struct index_snapshot *
index_snapshot_apply(const struct index_snapshot *old,
    const struct index_change *ch, uint64_t generation,
    struct index_apply_stats *st)
{
	const struct index_builder *add = ch->add;
	size_t nadd = add != NULL ? add->n : 0, a = 0, nclear = 0;
	size_t removed = 0, room;
	const char **clear = NULL;
	uint8_t *mark = NULL;
	struct index_snapshot *s = NULL;
	struct index_segw w;
	bool capped = old->capped;

	memset(st, 0, sizeof(*st));
	if ((clear = index_clears_norm(ch, &nclear)) == NULL ||
	    (mark = fidx_calloc(old->nseg ? old->nseg : 1, 1)) == NULL ||
	    index_segw_init(&w, old->budget, NULL) == -1) {
		free(clear);
		free(mark);
		errno = ENOMEM;
		return NULL;
	}
	for (size_t j = 0; j < nadd && old->nseg > 0; j++) {
		const struct match_entry *e = &add->entries[j];
		struct index_key k = index_key_of(add->arena + e->off, e->len,
		    e->base);

		mark[index_locate(old, &k)] = INDEX_TOUCH;
	}
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
			const struct match_entry *ae = a < nadd ?
			    &add->entries[a] : NULL;
			const char *path = index_segment_path(g, j);

			int r = ae == NULL ? 1 : index_path_cmp(add->arena +
			    ae->off, ae->len, ae->base, path, e->len, e->base);

			if (r < 0) {
				index_segw_put(&w, add->arena + ae->off, ae);
				a++;
				continue;
			}
			/* Never twice: an add equal to a path held is that path. */
			if (r == 0) {
				index_segw_put(&w, path, e);
				a++;
			} else if (!index_cleared(clear, nclear, path, e->len))
				index_segw_put(&w, path, e);
			j++;
		}
		for (; a < nadd && w.err == 0; a++) {
			const struct match_entry *ae = &add->entries[a];
			struct index_key k = index_key_of(add->arena + ae->off,
			    ae->len, ae->base);

			if (!last && index_key_cmp(&k, &next) >= 0)
				break;
			index_segw_put(&w, add->arena + ae->off, ae);
		}
	}
	/* An empty index: every add is new. */
	for (; a < nadd && w.err == 0; a++)
		index_segw_put(&w, add->arena + add->entries[a].off,
		    &add->entries[a]);
	index_segw_flush(&w);
	st->segments_made = w.nout - st->segments_shared;
	st->bytes_made = w.made_bytes;
	s = index_segw_finish(&w, generation, capped);
	free(clear);
	free(mark);
	return s;
}
