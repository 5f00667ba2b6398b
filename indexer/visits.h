/*
 * visits.h - the frecency store: the files you open, ranked by how often
 * and how lately, bounded, persisted atomically.
 *
 * Owns: every visit entry (root, path bytes, decayed weight, times), the
 * per-project hash tables and the two LRU lists, the store file's format
 * (JSON lines, through jansson), its atomic replacement and the copy kept
 * of a file that did not load whole, and the one lexical form of a path
 * (visits_path_clean).
 * Never touches: sockets, threads, the project registry, the index (a
 * visit need not name a file the index holds: files come and go, the
 * memory of using them fades on its own), the wall clock (every call that
 * needs the time is given it, so tests run on a fake clock).
 *
 * Frecency: each visit at time t counts 2^(-(now - t) / half_life) now.
 * The sum is kept as one value per entry, (w, t_ref): a visit does
 * w = w * 2^(-(now - t_ref) / H) + 1, t_ref = now, and the score at now
 * is w * 2^(-(now - t_ref) / H). So a visit is worth 1 when made, 1/2 a
 * half-life later, and five visits a month ago weigh less than one today.
 * A clock that steps back never inflates a score: a negative elapsed time
 * counts as 0.
 *
 * Bounds: at most per_project entries per project and total in all; the
 * one that goes to make room is the least recently visited (of the
 * project, else of the whole store). A project with no entries left is
 * freed. The store file is at most max_file_bytes: a save that would pass
 * it leaves out (and evicts) the least recently visited entries, so what
 * is written can always be loaded again. Every eviction is counted.
 *
 * File: "visits.json" under $XDG_STATE_HOME/fidx/, else
 * $HOME/.local/state/fidx/. JSON lines: {"fidx_visits":1} first, then one
 * object per entry, least recently visited first, so loading in order
 * rebuilds both LRU lists:
 *   {"root":"/abs","path":"rel/path","w":1.5,"t":1795000000,"seen":1795000000}
 * "t" is t_ref, "seen" the time of the last visit as the caller gave it
 * (they differ only after the clock stepped back). A path that is not
 * valid UTF-8 is written as "path_b64" (its bytes in base64) instead of
 * "path". A save writes a temporary file in the same directory, fsyncs
 * it, renames it over the old one and fsyncs the directory, so a crash
 * leaves the old file or the new one, never half of either (and the
 * temporary file, which the next start removes: visits_remove_temps). A load keeps
 * every good entry and skips (and counts) a bad line; a file it could not
 * take whole (a bad line, a bad header, too big, unreadable) is never
 * saved over: the next save first keeps it as
 * "visits.json.corrupt-<UTC time of the load>", and `stats` says where.
 *
 * Threads: none of its own and no locks. Calls that change the store
 * (add, load, save, free) need the caller's exclusion; between them,
 * any number of threads may read (score, project, project_score).
 */
#ifndef FIDX_VISITS_H
#define FIDX_VISITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../common/limits.h"
#include "../common/log.h"

/*
 * Files remembered per project. A person opens a few hundred distinct
 * files of a project over months; 1,000 keeps them all, and the ones
 * evicted are by then long unvisited, so their score was near 0 anyway.
 * Flag: none yet. Stats: `visits_evicted`.
 */
#define VISITS_PER_PROJECT_DEFAULT 1000

/*
 * Files remembered in all: 20 busy projects' worth. Each entry costs its
 * path plus ~80 bytes and two hash slots, so ~3 MiB at typical path
 * lengths and ~90 MiB if every path were 4 KiB long.
 */
#define VISITS_TOTAL_DEFAULT 20000

/*
 * Half-life of a visit, in seconds: 7 days. Last week's files keep half
 * their weight, a burst of work a month ago falls to 1/20, so the ranking
 * follows what you work on now without forgetting it over a weekend.
 */
#define VISITS_HALF_LIFE_DEFAULT (7 * 24 * 3600)

/*
 * Bytes of the store file. 20,000 entries at typical path lengths take
 * ~3 MiB; 16 MiB is five times that, and keeps a wrong or damaged file
 * from costing start-up its size in memory. A save never writes more
 * (the least recently visited entries are left out); a bigger file is
 * refused by the load.
 */
#define VISITS_MAX_FILE_DEFAULT (16u * 1024 * 1024)

/* Smallest max_file_bytes: the header line and a short entry fit. */
#define VISITS_MAX_FILE_MIN 256

/*
 * Copies of a store file that did not load (visits.json.corrupt-<time>)
 * kept beside it: before a new one is made, the oldest go until fewer
 * than this are left, so at most VISITS_ASIDE_KEEP x max_file_bytes of
 * them. Enough to go back a few failures; more means the file keeps
 * breaking, which the log says each time. Names scanned at most
 * VISITS_ASIDE_SCAN (the rest, if any, stay).
 */
#define VISITS_ASIDE_KEEP 4
#define VISITS_ASIDE_SCAN 256

/*
 * Ceiling of per_project and total: each table has at most twice that
 * many slots, so sizes stay far from overflow.
 */
#define VISITS_ENTRIES_CEILING (1u << 24)

/* Bytes in a root and in a path (Linux's PATH_MAX). */
#define VISITS_MAX_PATH FIDX_MAX_PATH_DEFAULT

/* The store file's name in its directory. */
#define VISITS_FILE_NAME "visits.json"

struct visits_limits {
	size_t per_project;	/* 1..VISITS_ENTRIES_CEILING */
	size_t total;		/* 1..VISITS_ENTRIES_CEILING */
	int64_t half_life_s;	/* > 0 */
	size_t max_file_bytes;	/* >= VISITS_MAX_FILE_MIN */
};

struct visits;			/* opaque */
struct visits_project;		/* one project's entries; opaque */

/* Fills lim with the defaults above. */
void visits_limits_default(struct visits_limits *lim);

/* The limits v was made with (for `stats`). */
void visits_limits(const struct visits *v, struct visits_limits *lim);

/* An empty store. NULL with errno ENOMEM, or EINVAL for limits out of range. */
struct visits *visits_new(const struct visits_limits *lim);

void visits_free(struct visits *v);

/*
 * Puts path (len bytes) in the one form the store keeps, lexically (no
 * symlink is followed: the file need not exist, and the index lists the
 * tree as walked, symlinks unresolved): "." and empty components go, each
 * ".." takes back the component before it, a trailing slash goes.
 *   "a/../b" -> "b", "./a" -> "a", "a//b/" -> "a/b"
 * A relative path is taken from root, and refused when a ".." would leave
 * it ("..", "a/../../b"). An absolute path is cleaned whole first, then
 * must lie under root (root, absolute, is its prefix; "/.." is "/"), and
 * is made relative to it: "/r/x/../y" under "/r" -> "y", "/r/../etc" is
 * refused. A path that names root itself ("." or "a/.."), an empty one
 * and one holding a NUL are refused. Writes the result to out (room for
 * len bytes; no NUL is added; out may be path itself) and its length to
 * *outlen. Returns 0, or -1
 * with errno EINVAL and err saying why. Both visits_add's callers and the
 * store's loader use it, so what a client sends and what a hand-edited
 * file holds obey one rule.
 */
int visits_path_clean(const char *root, const char *path, size_t len,
    char *out, size_t *outlen, struct fidx_err *err);

/*
 * Records a visit of path (len bytes relative to root: any bytes but NUL,
 * 1..VISITS_MAX_PATH, in the form visits_path_clean() gives, so "../x"
 * and "a/./b" are refused) in the project root (absolute and as clean, so
 * "/r/../s" and "/r/" are refused; valid UTF-8; at most
 * VISITS_MAX_PATH bytes: a root that could not be saved is refused here,
 * not lost later) at time now, in seconds. When the project is full its
 * least recently visited entry goes; when the store is full, the least
 * recently visited of all. Returns 0, or -1 with errno EINVAL (bad root
 * or path; counted in `refused`) or ENOMEM (the store is unchanged).
 * Pointers from visits_project() are invalid afterwards.
 */
int visits_add(struct visits *v, const char *root, const char *path,
    size_t len, int64_t now);

/* The frecency of path in root at time now; 0 if it was never visited. */
double visits_score(const struct visits *v, const char *root,
    const char *path, size_t len, int64_t now);

/*
 * For the query hot path: look up the project once per query, then score
 * each candidate in O(1) (one hash of the path bytes and a probe of an
 * open-addressing table). NULL when the project has no visits; then
 * visits_project_score(NULL, ...) is 0, so callers need no branch.
 * Valid until the next visits_add, visits_load, visits_save or
 * visits_free.
 */
const struct visits_project *visits_project(const struct visits *v,
    const char *root);
double visits_project_score(const struct visits_project *p,
    const char *path, size_t len, int64_t now);

/*
 * A query that runs off the loop cannot read the store, which the loop
 * changes meanwhile: it takes a view instead, an immutable copy of one
 * project's scores at time now (one flat table and one block of path
 * bytes, about the project's entries x (32 + path) bytes; at most
 * max_visits_per_project entries). NULL with errno ENOMEM, or errno 0
 * when p is NULL (nothing to score: visits_view_score(NULL, ...) is 0).
 */
struct visits_view;
struct visits_view *visits_view_new(const struct visits_project *p,
    int64_t now);
double visits_view_score(const struct visits_view *v, const char *path,
    size_t len);
void visits_view_free(struct visits_view *v);

/* For `stats`: use against the limits, and counters since visits_new. */
struct visits_counts {
	size_t entries;		/* in all, <= total */
	size_t projects;	/* with at least one entry */
	size_t bytes;		/* heap the store holds (entries, tables) */
	uint64_t evicted;	/* entries dropped for a bound (add, load, save) */
	uint64_t refused;	/* visits_add calls refused (EINVAL) */
	uint64_t load_errors;	/* loads that did not take the file whole */
	uint64_t saves;		/* saves that replaced the file */
	uint64_t save_errors;	/* saves that failed: the old file stays */
	size_t loaded;		/* entries the last load kept */
	size_t bad_entries;	/* lines the last load skipped */
};

void visits_counts(const struct visits *v, struct visits_counts *c);

/*
 * Where the file the last load could not take whole is kept: NULL when
 * it loaded whole (or was missing). *done is false while that is still
 * to happen (at the next save), true once the file is there.
 */
const char *visits_aside(const struct visits *v, bool *done);

/* True when the store changed since the last load or save. */
bool visits_dirty(const struct visits *v);

/*
 * Writes the store file's path ($XDG_STATE_HOME/fidx/visits.json when
 * XDG_STATE_HOME is absolute, else $HOME/.local/state/fidx/visits.json)
 * into buf, creating each missing directory on the way with mode 0700.
 * Returns 0, or -1 with err (no usable HOME, too long, mkdir failed).
 */
int visits_default_file(char *buf, size_t size, struct fidx_err *err);

/*
 * Writes the store to file atomically (temporary file in the same
 * directory, fsync, rename, fsync of the directory) and clears dirty.
 * Entries that would take the file past max_file_bytes, the least
 * recently visited, are left out and evicted. When the last load could
 * not take the file whole, the file is first kept under visits_aside()'s
 * name (a hard link, else a rename that replaces nothing; ".N" is added
 * when the name is taken); if that fails the save fails. Returns 0, or -1
 * with err and errno: the old file is intact, no temporary file is left,
 * the store stays dirty, save_errors++.
 */
int visits_save(struct visits *v, const char *file, struct fidx_err *err);

/*
 * Removes the temporary files of saves that never finished (FILE.XXXXXX,
 * mkostemp's names, regular files last changed min_age_s or more before
 * now: a daemon killed between writing one and renaming it leaves it
 * behind, one more each time). Younger ones may be another daemon's save
 * under way. Returns how many were removed, or -1 (errno) when the
 * directory cannot be read.
 */
int visits_remove_temps(const char *file, time_t now, int min_age_s);

/*
 * Replaces the store's contents with the file's, applying the bounds as
 * visits would (entries past them are evicted, oldest first, and the
 * store is left dirty so the next save writes the trimmed set). A missing
 * file is an empty store: 0; so is a file that loads whole.
 * A bad entry line (not JSON, not a valid entry, a path that leaves its
 * root, a duplicate) is skipped and counted (bad_entries); the others
 * load: -1 with errno EINVAL and err naming the file, the first bad line
 * and why, and how many were skipped.
 * A file that cannot be read as a whole (over max_file_bytes, not a
 * regular file, a bad header or version, empty, open or read failing,
 * out of memory): -1 with err naming the file (and line), errno EFBIG,
 * EINVAL, ENOMEM or open's or read's, and the store EMPTY.
 * Either way load_errors++, the store is not dirty, and the file is kept
 * under visits_aside()'s name (now is the time in it) before the next
 * save replaces it, so nothing that did not load is lost.
 */
int visits_load(struct visits *v, const char *file, int64_t now,
    struct fidx_err *err);

#endif
