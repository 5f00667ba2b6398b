/*
 * changelog.h - the watcher's change log: which paths changed, in the
 * order the loop heard of them, for git's file-system monitor hook
 * (`fidx fsmonitor`, the `changes` op).
 *
 * Owns: one ring of entries for every project (a sequence number, the
 * project's id, a path relative to its root, a copy), the sequence
 * counter, the floor below which the log no longer knows, the counters.
 * Never touches: projects (the caller keeps each project's own floor:
 * changes it could not hear, such as an overflow, move that floor with
 * changelog_bump()), inotify, sockets, threads (the loop's alone).
 *
 * A reader holds a sequence number s ("I have seen every change up to
 * s") and asks for the entries after it. That is exact only if nothing
 * after s was dropped: an entry dropped to stay under a bound raises the
 * floor to its own number, and a reader whose s is below the floor is
 * told "everything" (as git's protocol allows). Bounded by entries and
 * by bytes (each entry's record plus its path), both enforced before an
 * insert, so neither is passed even for a moment.
 */
#ifndef FIDX_CHANGELOG_H
#define FIDX_CHANGELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct changelog_limits {
	size_t max_entries;		/* >= 1 */
	size_t max_bytes;		/* >= 1 */
};

struct changelog;

/* NULL with errno EINVAL (limits out of range) or ENOMEM. */
struct changelog *changelog_new(const struct changelog_limits *lim);
void changelog_free(struct changelog *c);

/* The number of the newest entry (or bump); 0 before any. */
uint64_t changelog_seq(const struct changelog *c);

/*
 * Takes a number no entry has, for a floor: a reader that holds an
 * older one is answered "everything".
 */
uint64_t changelog_bump(struct changelog *c);

/* Readers below this are answered "everything": entries were dropped. */
uint64_t changelog_floor(const struct changelog *c);

/*
 * Logs that rel (len bytes, relative to project's root; dir: a
 * directory, logged with a trailing '/') changed. The newest entry for
 * the same path is not logged twice in a row. Drops the oldest entries
 * to make room. -1 with ENOMEM (nothing logged: the caller must treat it
 * as lost, a bump), or EFBIG for one entry over max_bytes alone.
 */
int changelog_add(struct changelog *c, uint32_t project, const char *rel,
    size_t len, bool dir);

/*
 * Calls fn for each entry of project after since (with the trailing '/'
 * of a directory), oldest first, until fn returns non-zero (returned).
 * The caller has checked since against the floors.
 */
int changelog_since(const struct changelog *c, uint32_t project,
    uint64_t since, int (*fn)(void *arg, const char *path, size_t len),
    void *arg);

struct changelog_stats {
	size_t entries, bytes;		/* held now */
	size_t max_entries, max_bytes;
	uint64_t seq, floor;
	uint64_t added;			/* entries logged */
	uint64_t repeats;		/* not logged: the newest already */
	uint64_t dropped;		/* the oldest, dropped for room */
};

void changelog_get_stats(const struct changelog *c,
    struct changelog_stats *st);

#endif
