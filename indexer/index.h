/*
 * index.h - immutable file-index snapshots made of shared segments, the
 * builder that makes them from a walk, and the delta that makes a new
 * one from an old one and a change.
 *
 * Owns: every segment (one block: header, entries, path bytes), every
 * snapshot (one block: header, segment list, start offsets) and their
 * refcounts.
 * Never touches: sockets, inotify, libgit2, the project registry, the disk.
 *
 * A snapshot lists its paths in directory order (index_path_cmp) cut
 * into segments of at most INDEX_SEGMENT_FILES paths and
 * INDEX_SEGMENT_BYTES path bytes. Nothing is modified once made:
 * index_snapshot_apply() makes new segments only where a change lands
 * and shares the rest with the old snapshot, so a saved file costs one
 * segment, not the index; a rebuild (index_builder_finish_like()) walks
 * the whole tree but likewise shares every old segment it finds again
 * unchanged. Readers hold a
 * snapshot with index_snapshot_ref() and release it with
 * index_snapshot_unref(); the last reference to a snapshot drops its
 * segments' references, and the last reference to a segment frees it,
 * on whichever thread that happens. Each segment charges the budget once
 * however many snapshots share it.
 */
#ifndef FIDX_INDEX_H
#define FIDX_INDEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/match.h"

/*
 * A segment's bounds. Small enough that a one-file change copies a few
 * hundred KiB whatever the index size, large enough that a query's
 * per-segment cost (one query_run() call) is lost in its scoring.
 * tests/fuzz/fuzz_delta.c builds index.c with INDEX_SEGMENT_FILES 8, so
 * that small inputs cross many segment boundaries, and a smaller
 * INDEX_SEGMENT_BYTES (still above FIDX_MAX_PATH_CEILING, which
 * index_weight() needs), so that each writer's staging block is cheap.
 */
#ifndef INDEX_SEGMENT_FILES
#define INDEX_SEGMENT_FILES 4096
#endif
#ifndef INDEX_SEGMENT_BYTES
#define INDEX_SEGMENT_BYTES (256 * 1024)
#endif

/*
 * The index-bytes cap shared by every project: live segments (those of
 * old snapshots still held by a reader included, each once) plus every
 * builder's projected size. One counter for both, so the two snapshots
 * that exist during a rebuild are counted, and concurrent walks cannot
 * overshoot it between them.
 */
struct index_budget {
	atomic_size_t used;
	size_t limit;
};

struct index_segment {
	atomic_uint refs;
	uint32_t n;			/* paths, >= 1 */
	size_t bytes;			/* the block's size: what it charges */
	struct index_budget *budget;	/* may be NULL */
	char *arena;			/* paths back to back, not NUL-
					   terminated, then QUERY_PAD zeros */
	struct match_entry entries[];	/* n, in directory order */
};

struct index_snapshot {
	atomic_uint refs;
	struct index_budget *budget;	/* charged for this block; may be NULL */
	uint64_t generation;
	/*
	 * Unique to this snapshot in the process, never reused: what a
	 * reader that keeps no reference (a connection's narrowing set,
	 * ops_query.c) compares to know it still speaks of these entries.
	 */
	uint64_t serial;
	size_t n;			/* paths in all segments */
	size_t nseg;
	struct index_segment **segs;	/* nseg, in order; one reference each */
	size_t *starts;			/* nseg + 1: paths before segment i */
	size_t bytes;			/* this block and every segment */
	bool capped;			/* a cap cut the walk or a change */
};

/*
 * Directory order: by directory, component by component, then by file
 * name, bytewise. The files of a directory are next to each other, and
 * a directory's whole subtree (its files, then its subdirectories') is
 * one range, so a change to a tree touches one run of segments. base is
 * the file name's offset (match_basename()).
 */
int index_path_cmp(const char *a, size_t alen, size_t abase, const char *b,
    size_t blen, size_t bbase);

/*
 * Bytes the snapshot holds, every segment counted: what `stats` shows per
 * project. (The budget counts a segment shared by two snapshots once.)
 */
size_t index_snapshot_bytes(const struct index_snapshot *s);

struct index_snapshot *index_snapshot_ref(struct index_snapshot *s);
void index_snapshot_unref(struct index_snapshot *s);

/* The segment holding path number i (0 <= i < s->n). */
size_t index_snapshot_segment_of(const struct index_snapshot *s, size_t i);

/* The path of entry i of a segment (not NUL-terminated; entries[i].len). */
static inline const char *
index_segment_path(const struct index_segment *g, size_t i)
{
	return g->arena + g->entries[i].off;
}

/*
 * True if the snapshot holds exactly this path (len bytes), by a binary
 * search: for tests and for the watcher's checks, not for queries.
 */
bool index_snapshot_has(const struct index_snapshot *s, const char *path,
    size_t len);

/*
 * The heap that builders and segment writers hold now, and the most they
 * held at once since start: beyond the budget's count (which charges a
 * builder the snapshot it will make), their arenas and entry arrays as
 * allocated (growth doubles them), the sort's scratch and each writer's
 * staging block. For `stats` (memory.walk_bytes).
 */
void index_scratch_get(size_t *now, size_t *peak);

/*
 * Snapshots and segments alive now, in every project and every reader:
 * a project's current snapshot, one being replaced, and old ones a
 * query still holds. For `stats` (memory.snapshots, memory.segments).
 */
void index_live_get(size_t *snapshots, size_t *segments);

/*
 * Collects paths under two caps. The caps count what the finished
 * snapshot can hold at most (index_weight()), so a walk stops before the
 * snapshot could pass the budget, not after.
 *
 * A walk adds a directory's files one after another, so the builder
 * keeps runs: a directory's bytes once, then the names of its files
 * (index.c has the layout). A walk of /usr holds 4.1 MB where whole
 * paths and their entries were 11.5 MB: the index it will make. The
 * entries (masks) are made only as an index_cursor reads the paths
 * back, whole, in the order of the adds or, after index_builder_sort(),
 * in directory order.
 */
struct index_group;

struct index_builder {
	char *arena;			/* the runs */
	size_t used, cap;		/* arena bytes written, allocated */
	size_t run;			/* offset of the run being added to,
					   or SIZE_MAX: the next add starts one */
	size_t n;			/* paths */
	size_t len;			/* their bytes as whole paths */
	size_t longest;			/* the longest path's bytes */
	/* Made by index_builder_sort(); dropped by the next add. */
	uint32_t *order;		/* n: arena offsets of names, sorted */
	struct index_group *groups;	/* a directory each, in order */
	size_t ngroups;
	size_t max_files;
	size_t max_bytes;
	struct index_budget *budget;	/* may be NULL */
	size_t charged;			/* what this builder holds of budget */
	atomic_size_t *files;		/* max_files shared with other builders
					   of the same index, or NULL */
	bool capped;
	bool sorted;			/* by index_builder_sort(), since the
					   last add */
};

/*
 * Reads a builder's paths back, whole: in directory order when it is
 * sorted, else in the order they were added. The builder must not change
 * while a cursor reads it.
 */
struct index_cursor {
	const struct index_builder *b;
	size_t i;			/* paths read */
	size_t at;			/* unsorted: arena offset of the next
					   name; sorted: the group read */
	size_t left;			/* unsorted: names left in the run */
	size_t dlen;			/* the directory's bytes in path */
	uint64_t dmask;			/* match_mask() of them */
	char *path;			/* longest bytes: the path read */
	struct match_entry e;		/* its entry (off 0, mask made) */
};

/* -1 when out of memory (nothing to release then). */
int index_cursor_init(struct index_cursor *c, const struct index_builder *b);

/*
 * The next path, in c->path (c->e.len bytes, not NUL-terminated) and
 * c->e; false after the last.
 */
bool index_cursor_next(struct index_cursor *c);

void index_cursor_release(struct index_cursor *c);

/*
 * The most a snapshot of `files` paths of `path_bytes` bytes in all can
 * weigh, however it is cut into segments: what the caps count.
 */
size_t index_weight(size_t files, size_t path_bytes);

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
 * Puts the builder's paths in directory order, a path added twice kept
 * once. Cheap for a walk's output, where each directory's files came
 * together: it sorts directories, then the names within each, into an
 * array of four bytes a path.
 * Returns -1 when out of memory (the builder is unchanged).
 */
int index_builder_sort(struct index_builder *b);

/*
 * Turns the builder into a snapshot with refcount 1 (sorting it first);
 * the builder's charge on the budget passes to the snapshot's segments,
 * which give it back when freed. The builder is released either way.
 * NULL when out of memory.
 */
struct index_snapshot *index_builder_finish(struct index_builder *b,
    uint64_t generation);

/* What index_snapshot_apply() or index_builder_finish_like() did. */
struct index_apply_stats {
	size_t segments_made;
	size_t segments_shared;
	size_t bytes_made;		/* allocated for new segments */
	size_t removed, added;		/* a rebuild: every old and new path */
};

/*
 * The same, for a rebuild that replaces like (NULL: none): every run of
 * the new paths that is one of like's segments, path for path, shares
 * that segment instead of making its copy. The result is the snapshot
 * index_builder_finish() makes, but for where segments are cut; like is
 * not changed and must stay alive until this returns.
 */
struct index_snapshot *index_builder_finish_like(struct index_builder *b,
    const struct index_snapshot *like, uint64_t generation,
    struct index_apply_stats *st);

/*
 * Appends every path of src to dst (builders of one index, filled by
 * different threads; the caps were counted as they were filled) and
 * releases src. Returns -1 when out of memory (src is released anyway).
 */
int index_builder_absorb(struct index_builder *dst, struct index_builder *src);

void index_builder_release(struct index_builder *b);

/*
 * A change to apply: every path equal to one of `clear` or under one of
 * them as a directory goes, then every path of `add` comes in. So a
 * directory re-read from the disk is a clear of it and the files found
 * under it, and a file is a clear of it and itself, or nothing if it is
 * gone: whatever the index held there before, the result is what the
 * disk holds now. Every path of add must lie under (or be) some clear.
 */
struct index_change {
	const char *const *clear;	/* NUL-terminated relative paths */
	size_t nclear;
	struct index_builder *add;	/* sorted (index_builder_sort), or NULL */
	size_t max_files;		/* the project's cap */
};

/*
 * Sorts v and moves to its front, in order, the paths that matter as
 * clears: each once, and none that lies under another kept ("a/b" goes
 * when "a" is there; "" covers all). Returns how many; the rest of v
 * holds the ones left out, for the caller to free if it owns them.
 */
size_t index_paths_norm(const char **v, size_t n);

/*
 * A new snapshot: old with the change applied, sharing every segment the
 * change does not touch. NULL with errno ENOMEM, or ENOSPC when the new
 * segments would pass the budget (nothing is charged then). Adds past
 * max_files are dropped and the result is capped. old is not changed.
 */
struct index_snapshot *index_snapshot_apply(const struct index_snapshot *old,
    const struct index_change *ch, uint64_t generation,
    struct index_apply_stats *st);

#endif
