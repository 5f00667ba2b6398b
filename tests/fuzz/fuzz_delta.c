/*
 * fuzz_delta.c - the watcher's batches as index_snapshot_apply() takes
 * them (indexer/index.c), against a full rebuild of the same file set.
 *
 * A universe of FD_DIRS directories x FD_NAMES names (names chosen to
 * sort on both sides of '/': "a-", "a.b", "a0", a directory "a" beside a
 * file "a", a long name, UTF-8); a model says which paths exist. Input:
 * FD_UNIVERSE / 8 bytes of the first file set, then batches, each a
 * count byte and that many two-byte changes:
 *   - a file comes or goes (a clear of it, and the file if it is there);
 *   - a directory (or the root) re-read: every path under it set from a
 *     pseudo-random bit (a clear of the directory, and what is left);
 *   - a change with max_files just under the model's count (the cap).
 * Each batch's clears may repeat and nest, as the watcher's do. After
 * each batch:
 *   - the delta's paths equal a full build of the model's paths (added
 *     in a shuffled order, as walk threads absorb them), entry by entry,
 *     in directory order, and a rebuild's that shares the old snapshot's
 *     segments (index_builder_finish_like); without a cap,
 *     index_snapshot_has() agrees with the model for every path of the
 *     universe;
 *   - every segment holds 1..INDEX_SEGMENT_FILES paths and the starts
 *     add up;
 *   - the budget holds exactly both snapshots' bytes, shared segments
 *     once, and after the old one goes, the new one's; zero at the end;
 *   - capped: the result keeps what the change did not clear, then the
 *     adds in order up to max_files, says capped, and the next batch
 *     goes on from what it holds.
 * Built with INDEX_SEGMENT_FILES 8 (Makefile), so a few hundred paths
 * make dozens of segments and every change lands near a boundary.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "../../common/limits.h"
#include "../../indexer/index.h"

static const char *const fd_dirs[] = {
	"", "a", "a/a", "a/b", "a/b/c", "a-", "a.b", "a0", "b", "b/a",
	"b/a/a", "ab", "z", "\xc3\xa4", "a/b/c/d", "d",
};
static const char *const fd_names[] = {
	"a", "b", "a-", "a.b", "a0", "f", "g", "ab", "\xc3\xa4", "z",
	"c", "a/", "x", "y.txt", "Makefile",
	("a-very-long-file-name-that-takes-many-bytes-of-the-segment-arena-"
	"0123456789abcdef0123456789abcdef0123456789abcdef"),
};
#define FD_DIRS (sizeof(fd_dirs) / sizeof(fd_dirs[0]))
#define FD_NAMES (sizeof(fd_names) / sizeof(fd_names[0]))
#define FD_UNIVERSE (FD_DIRS * FD_NAMES)
#define FD_MAX_BATCHES 32
#define FD_MAX_CLEARS 16

/* The universe's paths, made once; the name "a/" is skipped (not a name). */
static char fd_path[FD_UNIVERSE][160];
static size_t fd_len[FD_UNIVERSE];
static bool fd_valid[FD_UNIVERSE];

static void
fd_universe(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	for (size_t d = 0; d < FD_DIRS; d++)
		for (size_t n = 0; n < FD_NAMES; n++) {
			size_t u = d * FD_NAMES + n;

			snprintf(fd_path[u], sizeof(fd_path[u]), "%s%s%s",
			    fd_dirs[d], *fd_dirs[d] ? "/" : "", fd_names[n]);
			fd_len[u] = strlen(fd_path[u]);
			fd_valid[u] = strchr(fd_names[n], '/') == NULL;
		}
}

/* p equals c, or lies under c as a directory ("" covers all). */
static bool
fd_under(const char *p, const char *c)
{
	size_t n = strlen(c);

	if (n == 0)
		return true;
	return strncmp(p, c, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* A walk's build of the model, as a rebuild replacing like (or NULL). */
static struct index_snapshot *
fd_build(const bool *model, uint32_t shuffle, struct index_budget *bud,
    const struct index_snapshot *like)
{
	struct index_apply_stats st;
	struct index_builder b;
	size_t order[FD_UNIVERSE];

	for (size_t i = 0; i < FD_UNIVERSE; i++)
		order[i] = i;
	/* A walk adds directories in whatever order its threads finish. */
	for (size_t i = FD_UNIVERSE; i > 1; i--) {
		size_t j;

		shuffle = shuffle * 1103515245u + 12345u;
		j = (shuffle >> 8) % i;
		size_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	index_builder_init(&b, SIZE_MAX, SIZE_MAX, bud);
	for (size_t i = 0; i < FD_UNIVERSE; i++) {
		size_t u = order[i];

		if (model[u])
			FUZZ_CHECK(index_builder_add(&b, fd_path[u],
			    fd_len[u]) == 0);
	}
	return index_builder_finish_like(&b, like, 1, &st);
}

static const char *
fd_at(const struct index_snapshot *s, size_t i, size_t *len)
{
	size_t g = index_snapshot_segment_of(s, i);
	const struct index_segment *seg = s->segs[g];

	*len = seg->entries[i - s->starts[g]].len;
	return index_segment_path(seg, i - s->starts[g]);
}

static void
fd_shape(const struct index_snapshot *s)
{
	size_t sum = 0;

	FUZZ_CHECK(s->starts[0] == 0);
	for (size_t g = 0; g < s->nseg; g++) {
		FUZZ_CHECK(s->segs[g]->n >= 1);
		FUZZ_CHECK(s->segs[g]->n <= INDEX_SEGMENT_FILES);
		FUZZ_CHECK(s->starts[g + 1] - s->starts[g] == s->segs[g]->n);
		sum += s->segs[g]->n;
	}
	FUZZ_CHECK(sum == s->n);
}

static void
fd_same(const struct index_snapshot *a, const struct index_snapshot *b)
{
	FUZZ_CHECK(a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		size_t la, lb;
		const char *pa = fd_at(a, i, &la), *pb = fd_at(b, i, &lb);

		FUZZ_CHECK(la == lb && memcmp(pa, pb, la) == 0);
	}
}

/* a's paths are in directory order and each is in the model. */
static void
fd_subset(const struct index_snapshot *a, const bool *model)
{
	for (size_t i = 0; i < a->n; i++) {
		size_t la;
		const char *pa = fd_at(a, i, &la);
		bool found = false;

		for (size_t u = 0; u < FD_UNIVERSE && !found; u++)
			found = model[u] && fd_len[u] == la &&
			    memcmp(fd_path[u], pa, la) == 0;
		FUZZ_CHECK(found);
		if (i > 0) {
			size_t lp;
			const char *pp = fd_at(a, i - 1, &lp);

			FUZZ_CHECK(index_path_cmp(pp, lp,
			    match_basename(pp, lp), pa, la,
			    match_basename(pa, la)) < 0);
		}
	}
}

static size_t
fd_shared(const struct index_snapshot *a, const struct index_snapshot *b)
{
	size_t sum = 0;

	for (size_t i = 0; i < a->nseg; i++)
		for (size_t j = 0; j < b->nseg; j++)
			if (a->segs[i] == b->segs[j])
				sum += a->segs[i]->bytes;
	return sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool model[FD_UNIVERSE];
	struct index_budget bud;
	struct index_snapshot *cur;
	size_t pos = FD_UNIVERSE / 8, count;
	uint64_t gen = 1;

	fd_universe();
	if (size < pos)
		return 0;
	for (size_t u = 0; u < FD_UNIVERSE; u++)
		model[u] = fd_valid[u] && (data[u / 8] >> (u % 8) & 1);
	atomic_init(&bud.used, 0);
	bud.limit = SIZE_MAX / 2;
	FUZZ_CHECK((cur = fd_build(model, 1, &bud, NULL)) != NULL);
	fd_shape(cur);
	for (int batch = 0; batch < FD_MAX_BATCHES && pos < size; batch++) {
		char store[FD_MAX_CLEARS][160];
		const char *clear[FD_MAX_CLEARS];
		size_t nclear = 0, max_files = SIZE_MAX;
		size_t nops = data[pos++] % FD_MAX_CLEARS + 1;

		for (size_t o = 0; o < nops && pos + 2 <= size; o++) {
			uint8_t k = data[pos], t = data[pos + 1];

			pos += 2;
			if (k % 4 != 3) {	/* a file comes or goes */
				size_t u = (size_t)t % FD_UNIVERSE;

				if (!fd_valid[u])
					continue;
				memcpy(store[nclear], fd_path[u], fd_len[u] + 1);
				model[u] = k >> 2 & 1;
			} else {		/* a tree, re-read */
				const char *d = fd_dirs[t % FD_DIRS];
				uint32_t bits = (uint32_t)k * 2654435761u ^ t;

				snprintf(store[nclear], sizeof(store[0]), "%s", d);
				for (size_t u = 0; u < FD_UNIVERSE; u++) {
					if (!fd_valid[u] || !fd_under(fd_path[u], d))
						continue;
					bits = bits * 1103515245u + 12345u;
					model[u] = bits >> 16 & 1;
				}
			}
			clear[nclear] = store[nclear];
			nclear++;
			/* One batch in 8 is cut by the cap. */
			if ((k & 0xe0) == 0xe0)
				max_files = 0;
		}
		/* The adds: what the model holds under the clears. */
		struct index_builder add;

		index_builder_init(&add, SIZE_MAX, SIZE_MAX, NULL);
		count = 0;
		for (size_t u = 0; u < FD_UNIVERSE; u++) {
			if (!model[u])
				continue;
			count++;
			for (size_t c = 0; c < nclear; c++)
				if (fd_under(fd_path[u], clear[c])) {
					FUZZ_CHECK(index_builder_add(&add,
					    fd_path[u], fd_len[u]) == 0);
					break;
				}
		}
		FUZZ_CHECK(index_builder_sort(&add) == 0);
		if (max_files == 0)
			max_files = count > 0 ? count - 1 : 0;

		struct index_change ch = { clear, nclear, &add, max_files };
		struct index_apply_stats st;
		struct index_snapshot *next, *want;
		size_t both, kept = count - add.n, expect;

		/* What stays, then the adds in order while there is room. */
		expect = kept + (max_files > kept ? (max_files - kept < add.n ?
		    max_files - kept : add.n) : 0);

		next = index_snapshot_apply(cur, &ch, ++gen, &st);
		index_builder_release(&add);
		FUZZ_CHECK(next != NULL);
		FUZZ_CHECK(next->generation == gen);
		fd_shape(next);
		FUZZ_CHECK(next->n == expect);
		FUZZ_CHECK(st.removed + next->n == cur->n + st.added);
		if (expect < count) {
			/* Cut: a subset of the model, in order, and says so. */
			FUZZ_CHECK(next->capped);
			fd_subset(next, model);
			/* What was cut is gone from the model too: the next
			 * batch compares against what the index holds. */
			for (size_t u = 0; u < FD_UNIVERSE; u++)
				if (model[u])
					model[u] = index_snapshot_has(next,
					    fd_path[u], fd_len[u]);
		} else {
			FUZZ_CHECK((want = fd_build(model, (uint32_t)gen,
			    NULL, NULL)) != NULL);
			fd_same(next, want);
			index_snapshot_unref(want);
			/* A rebuild sharing cur's segments lists the same. */
			FUZZ_CHECK((want = fd_build(model, (uint32_t)gen,
			    NULL, cur)) != NULL);
			fd_shape(want);
			fd_same(want, next);
			index_snapshot_unref(want);
			for (size_t u = 0; u < FD_UNIVERSE; u++)
				FUZZ_CHECK(index_snapshot_has(next, fd_path[u],
				    fd_len[u]) == model[u]);
		}
		both = index_snapshot_bytes(cur) + index_snapshot_bytes(next) -
		    fd_shared(cur, next);
		FUZZ_CHECK(atomic_load(&bud.used) == both);
		index_snapshot_unref(cur);
		cur = next;
		FUZZ_CHECK(atomic_load(&bud.used) == index_snapshot_bytes(cur));
	}
	index_snapshot_unref(cur);
	FUZZ_CHECK(atomic_load(&bud.used) == 0);
	return 0;
}
