/*
 * watch.h - the inotify watcher: one thread reads inotify for every
 * project and hands what changed to the loop.
 *
 * Owns: libinotifytools (process-wide state, not thread-safe: only
 * watch.c includes it and only the watcher thread calls it), the table of
 * watched directories (wd, project, absolute path), the bounded request
 * ring (directories to watch, from walk threads), the bounded event queue
 * to the loop with its eventfd, the ring of files written (its own, as
 * long as the queue: a storm of writes never costs a rebuild, only the
 * change log's knowledge, marked lost), and a private wake directory.
 * Never touches: projects, snapshots, walks, sockets, the loop itself
 * (the loop reads watch_fd() and calls watch_take()).
 *
 * Directories come from the indexer's own walk (watch_dir from its
 * on_dir hook), never from a second walk. libinotifytools waits with
 * select() on its private fd, in whole seconds: so watch_new() runs at
 * start-up, before clients can push that fd past 1024, and the thread is
 * woken by creating a file in a directory of its own (the same trick
 * answers sync: a cookie file's event comes after every event the kernel
 * queued before it, as watchman's cookies do). The library does not
 * follow renames and keeps a watch the kernel dropped, so this module
 * keeps the paths itself: a directory moved or deleted loses its watches
 * and those of everything under it, and a watch the kernel drops
 * (IN_IGNORED) is forgotten by both tables.
 */
#ifndef FIDX_WATCH_H
#define FIDX_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../common/log.h"

struct watch;

enum watch_kind {
	WATCH_PATH,		/* path: something in it was made, gone or moved */
	WATCH_OVERFLOW,		/* events were lost (project, or all if 0) */
	WATCH_NOSPACE,		/* watches ran out (project), or inotify stopped (0) */
	WATCH_ROOT_GONE,	/* path: a project's root, deleted or moved */
	WATCH_SYNC,		/* cookie: every event before it has been taken */
	WATCH_RESCAN,		/* path: a directory that changed between its
				   listing and its watch: read it again */
	WATCH_CONTENT,		/* project: a file's content was written (no
				   path: one per project however many) */
	WATCH_WRITTEN,		/* path: a file written or its mode changed,
				   for the change log; no path: such paths
				   were lost (project, or all if 0) */
};

struct watch_event {
	enum watch_kind kind;
	uint32_t project;	/* who watched the directory; 0: every one */
	bool dir;		/* the path is a directory */
	uint64_t cookie;	/* WATCH_SYNC */
	char *path;		/* absolute; owned by the taker, or NULL */
};

struct watch_limits {
	size_t max_events;	/* queued for the loop; past it, overflow */
	size_t max_watches;	/* ours, under the kernel's; past it, as
				   when the kernel's runs out */
};

struct watch_stats {
	size_t watches;		/* directories watched */
	size_t max_watches;
	size_t max_user_watches;	/* the kernel's limit (every process) */
	size_t queued, queued_peak, max_events;
	size_t queue_slots;	/* the most slots of either ring ever
				   written: what of them is resident */
	size_t bytes;		/* our table, the queue, and an estimate of
				   libinotifytools' own path per watch */
	uint64_t events;	/* taken from inotify */
	size_t written, written_peak;	/* written paths queued (their own
					   ring, max_events long) */
	uint64_t written_lost;	/* dropped: that ring was full */
	uint64_t overflows;	/* ours (queue full) and the kernel's */
	uint64_t nospace;	/* watches refused by max_user_watches */
	size_t stale;		/* dropped by the kernel, kept by the library */
	uint64_t restarts;	/* of the library, to shed stale ones */
};

/*
 * Starts the watcher thread. NULL with err when inotify cannot be had
 * (the daemon then runs without: every project is degraded).
 */
struct watch *watch_new(const struct watch_limits *lim, struct fidx_err *err);

/* Stops and joins the thread, removes every watch and the wake directory. */
void watch_free(struct watch *w);

/* Readable when events wait for watch_take(). */
int watch_fd(const struct watch *w);

/*
 * Asks for the directory at abs (absolute, no trailing '/') to be
 * watched for project (>= 1); root: it is the project's root. Called from
 * walk threads. With wait, returns once the watch is in place (a
 * directory about to be listed must be watched first, or what is made in
 * it meanwhile is missed); otherwise it may return before, and seen (or
 * NULL) is the directory's mtime when the walk opened it: a directory
 * newly watched whose mtime moved since gets a WATCH_RESCAN, so what
 * changed in that gap is read again. Blocks while the request ring is
 * full. -1 when the watcher has stopped.
 */
int watch_dir(struct watch *w, uint32_t project, const char *abs, bool root,
    bool wait, const struct timespec *seen);

/*
 * A directory whose mtime is closer than this to now cannot promise that
 * a change right after would move it (filesystem clocks tick by a jiffy
 * on older kernels): a walk waits for such a directory's watch.
 */
#define WATCH_RECENT_MS 20

/* Removes every watch of project (asynchronously). */
void watch_forget(struct watch *w, uint32_t project);

/*
 * Returns a cookie; a WATCH_SYNC event with it is queued once every
 * event the kernel had queued before this call has been (0: failed).
 */
uint64_t watch_sync(struct watch *w);

/* Moves up to max queued events into out; the caller frees each path. */
size_t watch_take(struct watch *w, struct watch_event *out, size_t max);

void watch_stats_get(struct watch *w, struct watch_stats *st);

#endif
