/*
 * walk.h - one walk of a project directory into an index builder.
 *
 * Owns: the walk's own state (directory stack, one ignore handle from
 * repo.h per walk thread) for the duration of walk_run(); nothing
 * survives the call but its counters.
 * Never touches: libgit2 (repo.c asks it), snapshots once built, the
 * project registry, sockets, inotify (it reports each directory through
 * on_dir so the watcher can add it during this same walk, never by a
 * second walk).
 *
 * Rules: never follows a directory symlink (so no loops); a symlink to a
 * regular file is listed; `.git` is never entered; hidden names (leading
 * '.') are skipped unless opts.hidden; in a git work tree, paths ignored
 * by git (.gitignore files, .git/info/exclude, core.excludesFile) are
 * skipped, and so are those the root's `.ignore` file (gitignore syntax)
 * names, in or out of git (repo.h has the rules); paths matching
 * opts.exclude (a PCRE2 pattern, regex.h, against the relative path) are
 * skipped, and a matching directory is not entered; a path that is not
 * UTF-8 is matched in byte mode, so "caf." excludes a Latin-1 "caf\xe9".
 * Unreadable directories and entries that vanish mid-walk are counted and
 * skipped, never fatal; running out of descriptors or memory is (-1), so
 * an index is never silently partial.
 * The root is opened with O_NOFOLLOW: it must be resolved (realpath).
 * NEEDSWORK: the ignore query costs ~10 us an entry, 20x a plain walk
 * (repo_ignored); O_NOFOLLOW guards only the last component against a directory swapped
 * for a symlink mid-walk (openat2 RESOLVE_BENEATH would close that).
 * Thread-safe: walks of different projects may run at once, and one walk
 * may run on several threads (opts.threads): each has its own ignore
 * handle, path buffer and counters, and only the pending directories are
 * shared, under a lock.
 */
#ifndef FIDX_WALK_H
#define FIDX_WALK_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "../common/log.h"
#include "index.h"

struct regex;

struct walk_opts {
	bool hidden;		/* list names starting with '.' */
	bool gitignore;		/* honour git's ignore rules (default on) */
	const struct regex *exclude;	/* or NULL; read only, shared */
	/*
	 * Called for each directory entered, the root ("", 0) first, with
	 * its path relative to the root and its fstat() from just before it
	 * is read (the watcher compares its mtime once the directory is
	 * watched). A non-zero return stops the walk: walk_run returns -1,
	 * errno ECANCELED, err naming the directory.
	 */
	int (*on_dir)(void *arg, const char *rel, size_t len,
	    const struct stat *st);
	void *arg;
	/*
	 * Or NULL. Called for each directory the walk does not enter
	 * (hidden, ignored, excluded, unreadable; never .git), with its
	 * path relative to the root: what is in it is not watched, so the
	 * change log cannot speak for it (changelog.h). From any walk
	 * thread, as on_dir.
	 */
	void (*on_skip)(void *arg, const char *rel, size_t len);
	/*
	 * Threads to walk with (0 or 1: this one alone). With more, on_dir
	 * is called from all of them, and the order of the paths in the
	 * builder varies from walk to walk (their set does not). A builder
	 * with a max_bytes cap walks alone: share bytes through its budget.
	 */
	int threads;
	/*
	 * Walk only these paths (relative, NUL-terminated) instead of the
	 * whole root: each a file (listed if the rules let it), a directory
	 * (walked, its tree) or gone (nothing). Used to re-read what the
	 * watcher saw change; the walk then runs on this thread alone.
	 */
	const char *const *starts;
	size_t nstarts;
	/*
	 * Files found so far, for who waits on the walk (or NULL): raised
	 * every WALK_PROGRESS_EVERY files by each thread, so threads do not
	 * fight over one cache line per file.
	 */
	atomic_size_t *progress;
};

#define WALK_PROGRESS_EVERY 1024

#define WALK_MAX_THREADS 8

/* Zeroed by walk_run() before it starts. */
struct walk_stats {
	size_t files;
	size_t dirs;		/* directories entered, the root included */
	size_t ignored;		/* by git rules or exclude (not hidden, not .git) */
	size_t unreadable;	/* directories we could not open (EACCES...) */
	size_t vanished;	/* entries gone between readdir and use */
	size_t too_long;	/* paths over FIDX_MAX_PATH_DEFAULT; a directory too
				   deep for any child to fit counts once */
	size_t symlinks_skipped;	/* to directories or devices, dangling, loops */
	/*
	 * Paths the exclude regex could not decide (PCRE2 gave up: its
	 * match, depth or heap limit). They are listed, and the warning
	 * says how many: an extra path shown beats one silently lost.
	 */
	size_t exclude_errors;
	/*
	 * Directories whose .gitignore is no regular file (a fifo): git's
	 * rules are not asked there and below (they would block the walk).
	 */
	size_t gitignore_unsafe;
	/*
	 * The root is in a git repository that libgit2 would not open (not
	 * owned by us, corrupt), so git's ignore rules were not applied.
	 */
	bool git_refused;
	/*
	 * For the user, "" when all went as asked: why ignore rules were not
	 * (all) applied and what to do (a refused repository, a bad or
	 * oversized .ignore, paths the exclude regex could not decide).
	 * walk_run() logs nothing of it: the caller says it once, where the
	 * user sees it.
	 */
	char warning[2 * PATH_MAX + 512];
};

/*
 * Walks root (an absolute, resolved directory) into b, which the caller
 * has initialised with the caps. Stops early, returning 0, when b reports
 * a cap (b->capped). Returns -1 with err set when the root itself cannot
 * be opened (errno kept: ENOENT for a deleted root), when memory runs
 * out, or when on_dir asks to stop.
 */
int walk_run(const char *root, const struct walk_opts *opts,
    struct index_builder *b, struct walk_stats *st, struct fidx_err *err);

#endif
