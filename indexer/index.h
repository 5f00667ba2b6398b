/*
 * index.h - immutable file-index snapshots, and the builder that makes them.
 *
 * Owns: each snapshot's path arena, entry array, header and refcount.
 * Never touches: sockets, inotify, libgit2, the project registry, the disk.
 *
 * A snapshot is three allocations: every path's bytes (relative to the
 * project root) back to back in one arena, one 16-byte struct match_entry
 * per file, and this header. It is never modified after
 * index_builder_finish(): a rebuild makes a new one and the project swaps
 * the pointer. Readers hold it with index_snapshot_ref() and release it
 * with index_snapshot_unref(); the last unref frees it, on whichever
 * thread that happens, so no reader ever sees a freed or changing index.
 */
#ifndef FIDX_INDEX_H
#define FIDX_INDEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/match.h"

/*
 * The index-bytes cap shared by every project: live snapshots (old ones
 * still held by a reader included) plus every builder's projected size.
 * One counter for both, so the two snapshots that exist during a rebuild
 * are counted, and concurrent walks cannot overshoot it between them.
 */
struct index_budget {
	atomic_size_t used;
	size_t limit;
};

struct index_snapshot {
	atomic_uint refs;
	struct index_budget *budget;	/* charged index_snapshot_bytes(); may be NULL */
	uint64_t generation;
	char *arena;			/* paths, not NUL-terminated, then
					   QUERY_PAD zero bytes */
	size_t arena_len;
	struct match_entry *entries;
	size_t n;
	bool capped;			/* the walk stopped at a cap */
};

/*
 * Bytes the snapshot holds: what the index-bytes cap counts, the arena's
 * QUERY_PAD bytes after its last path included.
 */
size_t index_snapshot_bytes(const struct index_snapshot *s);

struct index_snapshot *index_snapshot_ref(struct index_snapshot *s);
void index_snapshot_unref(struct index_snapshot *s);

/* The path of entry i (not NUL-terminated; length entries[i].len). */
static inline const char *
index_snapshot_path(const struct index_snapshot *s, size_t i)
{
	return s->arena + s->entries[i].off;
}

/*
 * Collects paths under two caps. The caps count what the finished
 * snapshot will hold (arena bytes + entries), so a walk stops before the
 * snapshot could pass the budget, not after.
 */
struct index_builder {
	char *arena;
	size_t len, cap;
	struct match_entry *entries;
	size_t n, ecap;
	size_t max_files;
	size_t max_bytes;
	struct index_budget *budget;	/* may be NULL */
	size_t charged;			/* what this builder holds of budget */
	atomic_size_t *files;		/* max_files shared with other builders
					   of the same index, or NULL */
	bool capped;
};

/* budget may be NULL; the builder charges it as it grows. */
void index_builder_init(struct index_builder *b, size_t max_files,
    size_t max_bytes, struct index_budget *budget);

/*
 * Adds one path (len bytes, 1..FIDX_MAX_PATH_CEILING). Returns 0 when
 * added, 1 when a cap is reached (nothing added; b->capped is set and
 * the caller should stop), -1 when out of memory.
 */
int index_builder_add(struct index_builder *b, const char *path, size_t len);

/*
 * Turns the builder into a snapshot with refcount 1, shrinking its
 * allocations to fit; the builder's charge on the budget passes to the
 * snapshot, which gives it back when freed. The builder is released
 * either way. NULL when out of memory.
 */
struct index_snapshot *index_builder_finish(struct index_builder *b,
    uint64_t generation);

/*
 * Appends every path of src to dst (builders of one index, filled by
 * different threads; the caps were counted as they were filled) and
 * releases src. Returns -1 when out of memory (src is released anyway).
 */
int index_builder_absorb(struct index_builder *dst, struct index_builder *src);

void index_builder_release(struct index_builder *b);

#endif
