/*
 * test_index.c - snapshots, the builder's caps and the shared byte budget.
 *
 * The budget is what keeps fidxd under --max-index-bytes: every builder
 * charges it as it grows and every snapshot gives its bytes back when the
 * last reference goes. These tests check the charge is exact at each
 * step, that caps hold at limit - 1, limit and limit + 1, that two
 * builders sharing a budget cannot pass it between them, and that every
 * path out (finish, release, out of memory) returns what it took.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/alloc.h"
#include "../common/query.h"
#include "../indexer/index.h"

/* What a snapshot of these paths may weigh: the caps' own arithmetic. */
#define weight index_weight

static size_t
used(struct index_budget *b)
{
	return atomic_load(&b->used);
}

static void
budget_init(struct index_budget *b, size_t limit)
{
	atomic_init(&b->used, 0);
	b->limit = limit;
}

/* Adds "f000".."f999" (4 bytes each) until a cap; returns how many. */
static size_t
fill_as(struct index_builder *b, size_t upto, char c)
{
	char p[8];
	size_t i;

	for (i = 0; i < upto && i < 1000; i++) {
		snprintf(p, sizeof(p), "%c%03zu", c, i);
		if (index_builder_add(b, p, 4) != 0)
			break;
	}
	return i;
}

static size_t
fill(struct index_builder *b, size_t upto)
{
	return fill_as(b, upto, 'f');
}

/* Path i of s (its length in *len). */
static const char *
path_at(const struct index_snapshot *s, size_t i, size_t *len)
{
	size_t g = index_snapshot_segment_of(s, i);
	const struct index_segment *seg = s->segs[g];

	*len = seg->entries[i - s->starts[g]].len;
	return index_segment_path(seg, i - s->starts[g]);
}

static void
test_charge_is_exact(void **state)
{
	struct index_budget bud;
	struct index_builder b;
	struct index_snapshot *s;

	(void)state;
	budget_init(&bud, SIZE_MAX / 2);
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
	assert_int_equal(fill(&b, 100), 100);
	assert_int_equal(used(&bud), weight(100, 400));
	s = index_builder_finish(&b, 7);
	assert_non_null(s);
	assert_int_equal(s->n, 100);
	assert_int_equal(s->generation, 7);
	assert_false(s->capped);
	assert_int_equal(used(&bud), index_snapshot_bytes(s));
	assert_int_equal(index_snapshot_bytes(s), weight(100, 400));
	/* A reader keeps it (and its charge) alive past the owner. */
	index_snapshot_ref(s);
	index_snapshot_unref(s);
	assert_int_equal(used(&bud), weight(100, 400));
	index_snapshot_unref(s);
	assert_int_equal(used(&bud), 0);
}

/* The budget at exactly 10 files' weight: 10 fit, the 11th does not. */
static void
test_budget_edges(void **state)
{
	for (int d = -1; d <= 1; d++) {
		struct index_budget bud;
		struct index_builder b;
		struct index_snapshot *s;
		size_t want = d < 0 ? 9 : 10;

		(void)state;
		budget_init(&bud, (size_t)((long)weight(10, 40) + d));
		index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
		assert_int_equal(fill(&b, 100), want);
		assert_true(b.capped);
		assert_true(used(&bud) <= bud.limit);
		s = index_builder_finish(&b, 1);
		assert_non_null(s);
		assert_true(s->capped);
		assert_int_equal(s->n, want);
		index_snapshot_unref(s);
		assert_int_equal(used(&bud), 0);
	}
}

static void
test_max_files_edges(void **state)
{
	(void)state;
	for (size_t files = 9; files <= 11; files++) {
		struct index_builder b;
		struct index_snapshot *s;

		index_builder_init(&b, 10, SIZE_MAX, NULL);
		assert_int_equal(fill(&b, files), files < 10 ? files : 10);
		assert_int_equal(b.capped, files > 10);
		s = index_builder_finish(&b, 1);
		assert_non_null(s);
		assert_int_equal(s->capped, files > 10);
		index_snapshot_unref(s);
	}
}

/* Two rebuilds at once share one budget; neither can take it past. */
static void
test_two_builders_share(void **state)
{
	struct index_budget bud;
	struct index_builder a, b;
	struct index_snapshot *sa, *sb;
	size_t na, nb;

	(void)state;
	budget_init(&bud, weight(10, 40) * 2);
	index_builder_init(&a, SIZE_MAX, SIZE_MAX, &bud);
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
	na = fill(&a, 15);
	nb = fill_as(&b, 100, 'g');
	assert_int_equal(na, 15);
	assert_false(a.capped);
	assert_true(b.capped);
	assert_true(used(&bud) <= bud.limit);
	/* What b got is what a left: no more, and not much less. */
	assert_true(weight(na, na * 4) + weight(nb, nb * 4) <= bud.limit);
	assert_true(weight(na, na * 4) + weight(nb + 1, (nb + 1) * 4) >
	    bud.limit);
	sa = index_builder_finish(&a, 1);
	sb = index_builder_finish(&b, 1);
	assert_non_null(sa);
	assert_non_null(sb);
	assert_int_equal(used(&bud), index_snapshot_bytes(sa) +
	    index_snapshot_bytes(sb));
	index_snapshot_unref(sa);
	index_snapshot_unref(sb);
	assert_int_equal(used(&bud), 0);
}

/* A walk that fails gives its charge back. */
static void
test_release_returns_charge(void **state)
{
	struct index_budget bud;
	struct index_builder b;

	(void)state;
	budget_init(&bud, SIZE_MAX / 2);
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
	fill(&b, 50);
	assert_true(used(&bud) > 0);
	index_builder_release(&b);
	assert_int_equal(used(&bud), 0);
}

/*
 * The arena holds QUERY_PAD zero bytes after its last path, however it
 * was built: PCRE2's JIT reads up to 16 bytes past a subject, and the
 * last path used to end at the block's end (valgrind: "Invalid read of
 * size 16", the block from index_builder_absorb's realloc). ASan sees
 * the reads below, as it cannot see the JIT's: under ASan a segment is
 * a malloc'd block exactly fidx_big_size() long, so both checks are
 * exact.
 */
static void
check_pad(const struct index_snapshot *s)
{
	assert_true(s->nseg > 0);
	for (size_t g = 0; g < s->nseg; g++) {
		const struct index_segment *seg = s->segs[g];
		const struct match_entry *last = &seg->entries[seg->n - 1];
		const char *end = seg->arena + last->off + last->len;

		assert_true(fidx_big_size(seg) >= seg->bytes);
		assert_true(end + QUERY_PAD <= (const char *)seg + seg->bytes);
		for (size_t k = 0; k < QUERY_PAD; k++)
			assert_int_equal(end[k], 0);
	}
}

/* The bytes of every path of s. */
static size_t
path_bytes(const struct index_snapshot *s)
{
	size_t sum = 0, len;

	for (size_t i = 0; i < s->n; i++) {
		path_at(s, i, &len);
		sum += len;
	}
	return sum;
}

static void
test_arena_pad(void **state)
{
	struct index_builder a, b;
	struct index_snapshot *s;
	size_t sizes[] = { 1, 15, 16, 17, 64 * 1024 - 16, 64 * 1024 };

	(void)state;
	/* One builder, at and around its growth steps. */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *p = malloc(sizes[i]);
		size_t k = 0;

		assert_non_null(p);
		memset(p, 'x', sizes[i]);
		index_builder_init(&b, SIZE_MAX, SIZE_MAX, NULL);
		/* Distinct paths: a path added twice is kept once. */
		for (size_t left = sizes[i]; left > 0; k++) {
			size_t n = left < 4096 ? left : 4096;

			p[0] = (char)('a' + k);
			assert_int_equal(index_builder_add(&b, p, n), 0);
			left -= n;
		}
		s = index_builder_finish(&b, 1);
		assert_non_null(s);
		assert_int_equal(path_bytes(s), sizes[i]);
		check_pad(s);
		index_snapshot_unref(s);
		free(p);
	}
	/*
	 * Builders of one walk, absorbed: into one with room, and into an
	 * empty one (the walk's first thread found no file).
	 */
	for (size_t na = 0; na <= 1000; na += 1000) {
		index_builder_init(&a, SIZE_MAX, SIZE_MAX, NULL);
		index_builder_init(&b, SIZE_MAX, SIZE_MAX, NULL);
		fill_as(&a, na, 'a');
		fill_as(&b, 1000, 'b');
		assert_int_equal(index_builder_absorb(&a, &b), 0);
		s = index_builder_finish(&a, 1);
		assert_non_null(s);
		assert_int_equal(path_bytes(s), 4 * (na + 1000));
		check_pad(s);
		index_snapshot_unref(s);
	}
}

/* Out of memory at each allocation: -1 or NULL, never a leak or a charge. */
/* Fills b with "dir/fNNNNN" for i in [from, to); the first rc not 0. */
static int
oom_fill(struct index_builder *b, size_t from, size_t to)
{
	char p[32];
	int rc = 0;

	for (size_t i = from; i < to && rc == 0; i++) {
		snprintf(p, sizeof(p), "dir/f%05zu", i);
		rc = index_builder_add(b, p, strlen(p));
	}
	return rc;
}

/*
 * Every allocation of a parallel build (two builders on one budget,
 * grown past their first arena and entry blocks, one absorbed into the
 * other, then finished) fails in turn: the step says so (-1 or NULL),
 * the budget goes back to 0, nothing leaks (ASan), and a large enough N
 * allocates all and gives every path in order.
 */
static void
test_oom(void **state)
{
	unsigned long n;
	bool done = false;

	(void)state;
	for (n = 1; n < 200 && !done; n++) {
		struct index_budget bud;
		struct index_builder a, b;
		struct index_snapshot *s = NULL;
		int rc;

		budget_init(&bud, SIZE_MAX / 2);
		index_builder_init(&a, SIZE_MAX, SIZE_MAX, &bud);
		index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
		alloc_fail_at(n);
		if ((rc = oom_fill(&a, 0, 20000)) != 0 ||
		    (rc = oom_fill(&b, 20000, 30000)) != 0) {
			index_builder_release(&a);
			index_builder_release(&b);
		} else if ((rc = index_builder_absorb(&a, &b)) != 0) {
			index_builder_release(&a);
		} else {
			s = index_builder_finish(&a, 1);
		}
		done = !alloc_failed();
		alloc_fail_at(0);
		if (done) {
			assert_int_equal(rc, 0);
			assert_non_null(s);
			assert_int_equal(s->n, 30000);
			for (size_t i = 0; i < s->n; i++) {
				char p[32];
				size_t len;
				const char *got = path_at(s, i, &len);

				snprintf(p, sizeof(p), "dir/f%05zu", i);
				assert_int_equal(len, strlen(p));
				assert_memory_equal(got, p, strlen(p));
			}
			assert_int_equal(used(&bud), index_snapshot_bytes(s));
		} else {
			/* A failed shrink is no failure: the build stands. */
			assert_true(rc == -1 || s == NULL || s->n == 30000);
		}
		index_snapshot_unref(s);
		assert_int_equal(used(&bud), 0);
	}
	assert_true(done);
	assert_true(n > 12);	/* the arenas and entry arrays grew */
}

/* ---- directory order and deltas ---- */

static int
cmp_paths(const char *a, const char *b)
{
	return index_path_cmp(a, strlen(a), match_basename(a, strlen(a)), b,
	    strlen(b), match_basename(b, strlen(b)));
}

/*
 * A directory's files first, then its subdirectories', component by
 * component, so a subtree is one range whatever bytes its siblings'
 * names hold.
 */
static void
test_order(void **state)
{
	const char *sorted[] = { "a", "z", "a/z", "a/b/x", "a/b/y", "a/b/c/d",
	    "a/b-c/x", "a/b.c/x", "a/bb/x", "a.c/x", "a0/x" };
	size_t n = sizeof(sorted) / sizeof(sorted[0]);

	(void)state;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int r = cmp_paths(sorted[i], sorted[j]);

			assert_int_equal(r < 0, i < j);
			assert_int_equal(r == 0, i == j);
		}
}

#define U_DIRS 15
#define U_FILES 1000
static const char *u_dirs[U_DIRS] = { "", "d0", "d0/s0", "d0/s1", "d1",
    "d1/s0", "d1/s0/t", "d1.x", "d1-y", "d2", "d2/s0", "a", "a/b", "a.b",
    "zz" };

static void
u_path(char *buf, size_t cap, size_t u)
{
	const char *d = u_dirs[u / U_FILES];

	snprintf(buf, cap, "%s%sf%04zu", d, *d ? "/" : "", u % U_FILES);
}

static bool
u_under(const char *path, const char *c)
{
	size_t n = strlen(c);

	return n == 0 || strcmp(path, c) == 0 ||
	    (strncmp(path, c, n) == 0 && path[n] == '/');
}

/*
 * A full build of the paths the model holds, added in a random order, as
 * a rebuild that replaces like (or NULL) makes it.
 */
static struct index_snapshot *
u_rebuild(const bool *model, struct index_budget *bud,
    const struct index_snapshot *like, struct index_apply_stats *st)
{
	static size_t order[U_DIRS * U_FILES];
	struct index_builder b;
	char p[64];

	for (size_t i = 0; i < U_DIRS * U_FILES; i++)
		order[i] = i;
	for (size_t i = U_DIRS * U_FILES - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, bud);
	for (size_t i = 0; i < U_DIRS * U_FILES; i++)
		if (model[order[i]]) {
			u_path(p, sizeof(p), order[i]);
			assert_int_equal(index_builder_add(&b, p, strlen(p)), 0);
		}
	return index_builder_finish_like(&b, like, 1, st);
}

static struct index_snapshot *
u_build(const bool *model, struct index_budget *bud)
{
	struct index_apply_stats st;

	return u_rebuild(model, bud, NULL, &st);
}

static void
assert_same_paths(const struct index_snapshot *a,
    const struct index_snapshot *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		size_t la, lb;
		const char *pa = path_at(a, i, &la), *pb = path_at(b, i, &lb);

		assert_int_equal(la, lb);
		assert_memory_equal(pa, pb, la);
	}
	/* Segments within their bounds, starts consistent, none empty. */
	for (size_t g = 0; g < a->nseg; g++) {
		assert_true(a->segs[g]->n >= 1);
		assert_true(a->segs[g]->n <= INDEX_SEGMENT_FILES);
		assert_int_equal(a->starts[g + 1] - a->starts[g],
		    a->segs[g]->n);
	}
}

/*
 * A full build gives the builder's pages back as its segments take the
 * paths (index_builder_finish): built with its arrays mapped, the
 * snapshot must equal one built from malloc'd arrays, added in a random
 * order (pages go late) and in the walk's order, directory by directory
 * (most of the arena and entries go back before the build ends).
 */
static void
test_giveback(void **state)
{
	static bool all[U_DIRS * U_FILES];
	struct index_snapshot *ref, *s;
	struct index_builder b;
	size_t before, bytes = 0;
	char p[64];

	(void)state;
	for (size_t i = 0; i < U_DIRS * U_FILES; i++)
		all[i] = true;
	alloc_big_maps(0);
	srand(7);
	assert_non_null(ref = u_build(all, NULL));
	alloc_big_maps(1);
	srand(7);
	assert_non_null(s = u_build(all, NULL));
	assert_same_paths(s, ref);
	index_snapshot_unref(s);

	before = alloc_big_discarded();
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, NULL);
	for (size_t u = 0; u < U_DIRS * U_FILES; u++) {
		u_path(p, sizeof(p), u);
		assert_int_equal(index_builder_add(&b, p, strlen(p)), 0);
	}
	/* Its arena and the sort's order array, as pages. */
	bytes = b.used + b.n * sizeof(uint32_t);
	assert_non_null(s = index_builder_finish(&b, 1));
	assert_same_paths(s, ref);
	assert_true(alloc_big_discarded() - before >= bytes / 2);
	index_snapshot_unref(s);
	index_snapshot_unref(ref);
	alloc_big_maps(0);
	assert_int_equal(alloc_big_bytes(), 0);
}

/* The path p's entry as a segment would hold it (off 0). */
static void
assert_entry_of(const struct index_cursor *c, const char *p)
{
	struct match_entry e;

	match_entry_init(&e, p, 0, (uint16_t)strlen(p), true);
	assert_int_equal(c->e.len, e.len);
	assert_memory_equal(c->path, p, e.len);
	assert_int_equal(c->e.base, e.base);
	assert_true(c->e.mask == e.mask);
	assert_int_equal(c->e.off, 0);
}

/*
 * The builder keeps a directory once per run of its files: a cursor reads
 * the paths back whole, with the entries a segment holds, in the order
 * added, then, sorted, in directory order with a path added twice once
 * (a directory listed in two parts, as a walk may, sorts as one). And a
 * walk's output costs under half what its snapshot weighs.
 */
static void
test_builder_runs(void **state)
{
	static const char *const added[] = { "b/x", "b/a", "top", "a/b/c",
	    "b/m", "a/b/c", "a-c", "a/z", "b/", "a/b/a", "/", NULL };
	static const char *const sorted[] = { "/", "a-c", "b/", "top", "a/z",
	    "a/b/a", "a/b/c", "b/a", "b/m", "b/x", NULL };
	struct index_builder b;
	struct index_cursor c;
	char p[64];
	size_t i;

	(void)state;
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, NULL);
	for (i = 0; added[i] != NULL; i++)
		assert_int_equal(index_builder_add(&b, added[i],
		    strlen(added[i])), 0);
	assert_int_equal(index_cursor_init(&c, &b), 0);
	for (i = 0; index_cursor_next(&c); i++)
		assert_entry_of(&c, added[i]);
	assert_null(added[i]);
	index_cursor_release(&c);

	assert_int_equal(index_builder_sort(&b), 0);
	assert_int_equal(b.n, 10);
	assert_int_equal(index_cursor_init(&c, &b), 0);
	for (i = 0; index_cursor_next(&c); i++) {
		assert_non_null(sorted[i]);
		assert_entry_of(&c, sorted[i]);
		if (i > 0)
			assert_true(index_path_cmp(sorted[i - 1],
			    strlen(sorted[i - 1]), match_basename(sorted[i - 1],
			    strlen(sorted[i - 1])), c.path, c.e.len,
			    c.e.base) < 0);
	}
	assert_null(sorted[i]);
	index_cursor_release(&c);
	/* An add after the sort: unsorted again, read as added. */
	assert_int_equal(index_builder_add(&b, "0", 1), 0);
	assert_false(b.sorted);
	assert_null(b.order);
	index_builder_release(&b);

	index_builder_init(&b, SIZE_MAX, SIZE_MAX, NULL);
	for (size_t u = 0; u < U_DIRS * U_FILES; u++) {
		u_path(p, sizeof(p), u);
		assert_int_equal(index_builder_add(&b, p, strlen(p)), 0);
	}
	assert_true(b.used < index_weight(b.n, b.len) / 2);
	index_builder_release(&b);
}

/* Bytes of the segments a and b both hold: the budget counts them once. */
static size_t
shared_bytes(const struct index_snapshot *a, const struct index_snapshot *b)
{
	size_t sum = 0;

	for (size_t i = 0; i < a->nseg; i++)
		for (size_t j = 0; j < b->nseg; j++)
			if (a->segs[i] == b->segs[j])
				sum += a->segs[i]->bytes;
	return sum;
}

/*
 * *cur gives way to next: the budget counts both, segments they share
 * once, then next's alone (the old one's shared segments stay).
 */
static void
swap_counted(struct index_snapshot **cur, struct index_snapshot *next,
    struct index_budget *bud)
{
	assert_int_equal(atomic_load(&bud->used), index_snapshot_bytes(*cur) +
	    index_snapshot_bytes(next) - shared_bytes(*cur, next));
	index_snapshot_unref(*cur);
	*cur = next;
	assert_int_equal(atomic_load(&bud->used), index_snapshot_bytes(next));
}

/*
 * The property: a delta over a snapshot equals a full build of the same
 * file set, over random batches of file adds and removes, directory
 * clears and re-reads, and the root's; a small change shares all but a
 * segment or two; the budget counts a shared segment once, and the last
 * snapshot holding a segment frees it.
 */
static void
test_delta_equals_build(void **state)
{
	static bool model[U_DIRS * U_FILES];
	struct index_budget bud;
	struct index_snapshot *cur;
	char p[64];

	(void)state;
	srand(12345);
	budget_init(&bud, SIZE_MAX / 2);
	for (size_t i = 0; i < U_DIRS * U_FILES; i++)
		model[i] = rand() % 3 != 0;
	assert_non_null(cur = u_build(model, &bud));
	assert_true(cur->nseg >= 3);
	for (int round = 0; round < 300; round++) {
		const char *clear[16];
		char store[16][64];
		size_t nclear = 0;
		bool small = true;
		int ops = 1 + rand() % 4;

		for (int o = 0; o < ops; o++) {
			int kind = rand() % 10;
			size_t u = (size_t)rand() % (U_DIRS * U_FILES);

			if (kind < 7) {		/* a file comes or goes */
				u_path(store[nclear], sizeof(store[0]), u);
				model[u] = rand() % 2;
			} else {		/* a tree, re-read */
				const char *d = u_dirs[(size_t)rand() %
				    U_DIRS];

				if (*d == '\0' && rand() % 4 != 0)
					d = "d1";
				snprintf(store[nclear], sizeof(store[0]), "%s",
				    d);
				for (size_t v = 0; v < U_DIRS * U_FILES; v++) {
					u_path(p, sizeof(p), v);
					if (u_under(p, d))
						model[v] = rand() % 2;
				}
				small = false;
			}
			clear[nclear] = store[nclear];
			nclear++;
		}
		/* The adds: what the model holds under the clears. */
		struct index_builder add;

		index_builder_init(&add, SIZE_MAX, SIZE_MAX, NULL);
		for (size_t v = U_DIRS * U_FILES; v-- > 0;) {
			if (!model[v])
				continue;
			u_path(p, sizeof(p), v);
			for (size_t c = 0; c < nclear; c++)
				if (u_under(p, clear[c])) {
					assert_int_equal(index_builder_add(&add,
					    p, strlen(p)), 0);
					break;
				}
		}
		assert_int_equal(index_builder_sort(&add), 0);

		struct index_change ch = { clear, nclear, &add, SIZE_MAX };
		struct index_apply_stats st;
		struct index_snapshot *next, *want;

		next = index_snapshot_apply(cur, &ch, (uint64_t)round + 2, &st);
		index_builder_release(&add);
		assert_non_null(next);
		assert_int_equal(next->generation, (uint64_t)round + 2);
		assert_non_null(want = u_build(model, NULL));
		assert_same_paths(next, want);
		index_snapshot_unref(want);
		for (size_t v = 0; v < U_DIRS * U_FILES; v += 97) {
			u_path(p, sizeof(p), v);
			assert_int_equal(index_snapshot_has(next, p, strlen(p)),
			    model[v]);
		}
		if (small) {
			assert_true(st.segments_shared + 2 * (size_t)ops >=
			    cur->nseg);
			assert_true(st.bytes_made <= (size_t)ops * 2 *
			    (INDEX_SEGMENT_BYTES + INDEX_SEGMENT_FILES *
			    sizeof(struct match_entry)));
		}
		swap_counted(&cur, next, &bud);
		assert_int_equal(path_bytes(cur) > 0, cur->n > 0);
	}
	index_snapshot_unref(cur);
	assert_int_equal(atomic_load(&bud.used), 0);
}

/* Segments of s that t holds too (the same blocks). */
static size_t
shared_segments(const struct index_snapshot *s, const struct index_snapshot *t)
{
	size_t k = 0;

	for (size_t i = 0; i < s->nseg; i++)
		for (size_t j = 0; j < t->nseg; j++)
			k += s->segs[i] == t->segs[j];
	return k;
}

/*
 * A rebuild shares what did not change (index_builder_finish_like): over
 * rounds of a few files or a tree changed on the disk, then the whole
 * model built again against the index it replaces, the result lists
 * exactly what a build from nothing lists; an unchanged tree makes no
 * segment; a few changes make about a segment each; the budget counts
 * shared segments once; and the segments stay as few as a build's.
 */
static void
test_rebuild_shares(void **state)
{
	static bool model[U_DIRS * U_FILES];
	struct index_budget bud;
	struct index_apply_stats st;
	struct index_snapshot *cur, *next, *want;
	size_t fresh_nseg;

	(void)state;
	srand(4242);
	budget_init(&bud, SIZE_MAX / 2);
	for (size_t i = 0; i < U_DIRS * U_FILES; i++)
		model[i] = rand() % 3 != 0;
	assert_non_null(cur = u_build(model, &bud));
	fresh_nseg = cur->nseg;
	assert_true(fresh_nseg >= 3);

	/* Nothing changed: every segment is the old one. */
	assert_non_null(next = u_rebuild(model, &bud, cur, &st));
	assert_int_equal(st.segments_made, 0);
	assert_int_equal(st.bytes_made, 0);
	assert_int_equal(st.segments_shared, cur->nseg);
	assert_int_equal(shared_segments(cur, next), cur->nseg);
	assert_int_equal(next->nseg, cur->nseg);
	assert_same_paths(next, cur);
	assert_int_equal(atomic_load(&bud.used), index_snapshot_bytes(cur) +
	    index_snapshot_bytes(next) - shared_bytes(cur, next));
	index_snapshot_unref(cur);
	cur = next;

	for (int round = 0; round < 200; round++) {
		int ops = rand() % 5;	/* 0: a rebuild of nothing changed */
		bool tree = rand() % 8 == 0;

		for (int o = 0; o < ops; o++)
			model[(size_t)rand() % (U_DIRS * U_FILES)] ^= true;
		if (tree) {		/* a directory's files all flip */
			size_t d = (size_t)rand() % U_DIRS;

			for (size_t f = 0; f < U_FILES; f++)
				model[d * U_FILES + f] = rand() % 2;
		}
		assert_non_null(next = u_rebuild(model, &bud, cur, &st));
		assert_non_null(want = u_build(model, NULL));
		assert_same_paths(next, want);
		/* Masks too: a shared segment's entries are a build's. */
		for (size_t i = 0; i < next->n; i += 7) {
			size_t a = index_snapshot_segment_of(next, i);
			size_t b = index_snapshot_segment_of(want, i);
			const struct match_entry *ea = &next->segs[a]->entries[
			    i - next->starts[a]];
			const struct match_entry *eb = &want->segs[b]->entries[
			    i - want->starts[b]];

			assert_int_equal(ea->mask, eb->mask);
			assert_int_equal(ea->base, eb->base);
		}
		index_snapshot_unref(want);
		assert_int_equal(st.segments_shared, shared_segments(next, cur));
		assert_int_equal(st.segments_made + st.segments_shared,
		    next->nseg);
		if (!tree)
			assert_true(st.segments_made <= 2 * (size_t)ops);
		swap_counted(&cur, next, &bud);
		/* Cut where the old ones were, still about as few. */
		assert_true(cur->nseg <= 2 * fresh_nseg + 1);
	}
	index_snapshot_unref(cur);
	assert_int_equal(atomic_load(&bud.used), 0);
}

/* A reader's snapshot outlives the owner's and a newer one's. */
static void
test_reader_keeps_segments(void **state)
{
	static bool model[U_DIRS * U_FILES];
	struct index_snapshot *old, *next, *reader;
	const char *clear[] = { "d0/f0001" };
	struct index_change ch = { clear, 1, NULL, SIZE_MAX };
	struct index_apply_stats st;
	size_t len;

	(void)state;
	for (size_t i = 0; i < U_DIRS * U_FILES; i++)
		model[i] = true;
	assert_non_null(old = u_build(model, NULL));
	reader = index_snapshot_ref(old);
	assert_non_null(next = index_snapshot_apply(old, &ch, 2, &st));
	assert_int_equal(st.removed, 1);
	assert_int_equal(next->n, old->n - 1);
	index_snapshot_unref(old);	/* the owner swaps */
	index_snapshot_unref(next);	/* and swaps again */
	/* ASan would see a freed segment here. */
	for (size_t i = 0; i < reader->n; i += 101)
		assert_true(path_at(reader, i, &len) != NULL && len > 0);
	assert_true(index_snapshot_has(reader, "d0/f0001", 8));
	index_snapshot_unref(reader);
}

/* Adds past max_files are dropped and say so; past the budget, ENOSPC. */
static void
test_apply_caps(void **state)
{
	struct index_builder b, add;
	struct index_snapshot *s, *t;
	struct index_budget bud;
	struct index_apply_stats st;
	const char *clear[] = { "n" };

	(void)state;
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, NULL);
	fill(&b, 10);
	assert_non_null(s = index_builder_finish(&b, 1));
	index_builder_init(&add, SIZE_MAX, SIZE_MAX, NULL);
	for (int i = 0; i < 5; i++) {
		char p[16];

		snprintf(p, sizeof(p), "n/%d", i);
		assert_int_equal(index_builder_add(&add, p, strlen(p)), 0);
	}
	assert_int_equal(index_builder_sort(&add), 0);
	struct index_change ch = { clear, 1, &add, 12 };

	assert_non_null(t = index_snapshot_apply(s, &ch, 2, &st));
	assert_int_equal(t->n, 12);
	assert_true(t->capped);
	assert_false(s->capped);
	index_snapshot_unref(t);
	index_snapshot_unref(s);

	/* A budget with no room for one more segment. */
	budget_init(&bud, SIZE_MAX / 2);
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, &bud);
	fill(&b, 10);
	assert_non_null(s = index_builder_finish(&b, 1));
	bud.limit = atomic_load(&bud.used) + 8;
	ch.max_files = SIZE_MAX;
	errno = 0;
	assert_null(index_snapshot_apply(s, &ch, 2, &st));
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(atomic_load(&bud.used), index_snapshot_bytes(s));
	index_builder_release(&add);
	index_snapshot_unref(s);
	assert_int_equal(atomic_load(&bud.used), 0);
}

/*
 * A watched project is never rebuilt, only changed: files made and
 * deleted among full segments (as an editor's or a build's churn does)
 * must keep its segments about as few as a full build's (no two small
 * ones side by side: at most 4n / INDEX_SEGMENT_FILES + 1). Left as
 * segments of their own, a delta's remains (a full segment given one
 * path splits) let them multiply: 28 of them here at the end, 5 with.
 */
static void
test_churn_keeps_segments_few(void **state)
{
	enum { DIRS = 30, FILES = 400, ALIVE = 200, ROUNDS = 3000 };
	static size_t alive[ALIVE];
	struct index_builder b;
	struct index_snapshot *cur;
	size_t n = 0, nalive = 0, next_name = 0;
	char p[64];

	(void)state;
	srand(7);
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, NULL);
	for (size_t v = 0; v < DIRS * FILES; v++) {
		snprintf(p, sizeof(p), "d%02zu/f%05zu", v % DIRS, v / DIRS);
		assert_int_equal(index_builder_add(&b, p, strlen(p)), 0);
		n++;
	}
	assert_non_null(cur = index_builder_finish(&b, 1));
	for (int round = 0; round < ROUNDS; round++) {
		/* A new name in a random directory, or one made before goes. */
		bool make = nalive < ALIVE && (nalive == 0 || rand() % 2 == 0);
		size_t k = make ? 0 : (size_t)rand() % nalive;
		struct index_builder add;
		const char *clear[1] = { p };
		struct index_apply_stats st;
		struct index_snapshot *next;

		if (make) {
			/* Spread over the directories, never in order. */
			next_name += 1 + (size_t)rand() % 7;
			alive[nalive++] = next_name;
			snprintf(p, sizeof(p), "d%02zu/g%06zu", next_name % DIRS,
			    next_name);
		} else {
			/* Its directory is in the name's number. */
			snprintf(p, sizeof(p), "d%02zu/g%06zu", alive[k] % DIRS,
			    alive[k]);
		}
		index_builder_init(&add, SIZE_MAX, SIZE_MAX, NULL);
		if (make)
			assert_int_equal(index_builder_add(&add, p, strlen(p)),
			    0);
		assert_int_equal(index_builder_sort(&add), 0);
		struct index_change ch = { clear, 1, &add, SIZE_MAX };

		assert_non_null(next = index_snapshot_apply(cur, &ch,
		    (uint64_t)round + 2, &st));
		index_builder_release(&add);
		index_snapshot_unref(cur);
		cur = next;
		n += make ? 1 : -(size_t)1;
		if (!make)
			alive[k] = alive[--nalive];
		assert_int_equal(cur->n, n);
	}
	assert_true(cur->nseg <= 4 * n / INDEX_SEGMENT_FILES + 1);
	index_snapshot_unref(cur);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_charge_is_exact),
		cmocka_unit_test(test_budget_edges),
		cmocka_unit_test(test_max_files_edges),
		cmocka_unit_test(test_two_builders_share),
		cmocka_unit_test(test_release_returns_charge),
		cmocka_unit_test(test_oom),
		cmocka_unit_test(test_arena_pad),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_giveback),
		cmocka_unit_test(test_builder_runs),
		cmocka_unit_test(test_delta_equals_build),
		cmocka_unit_test(test_rebuild_shares),
		cmocka_unit_test(test_reader_keeps_segments),
		cmocka_unit_test(test_apply_caps),
		cmocka_unit_test(test_churn_keeps_segments_few),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
