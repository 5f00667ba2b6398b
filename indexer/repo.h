/*
 * repo.h - the libgit2 module: libgit2's lifetime, the git repository a
 * project root lies in, and the ignore rules that apply below the root.
 *
 * Owns: libgit2's initialisation (once per process, on the first
 * repo_open(), undone only at exit by repo_lib_shutdown()), each handle's git_repository and path buffer,
 * the discovery of a root's work tree (and telling a repository libgit2
 * refuses, such as another user's, from no repository at all), the
 * root's `.ignore` file, and the "is this path ignored" question.
 * Never touches: the directory walk or its stack, the index, snapshots,
 * the project registry, sockets, threads (it starts none).
 *
 * The rules are libgit2's alone, never a hand-written matcher. Inside a
 * git work tree the repository answers (.gitignore files, .git/info/
 * exclude, core.excludesFile), asked with each path relative to its
 * workdir: the root may sit below the top. Outside one, .gitignore files
 * do not apply (as in fd without --no-require-git), but the root's
 * .ignore still does, through an in-memory repository with no workdir:
 * libgit2 then matches the rules as a bare set, reading no files and
 * stat()ing nothing. The .ignore lines become libgit2's "internal" rules,
 * which it checks before the .gitignore files, so .ignore wins, as in fd
 * and rg. Only the root's .ignore is read (a documented approximation of
 * rg's one per directory), at most REPO_IGNORE_FILE_MAX bytes of it.
 * libgit2 1.5 opens each .gitignore with a blocking open(), so a fifo of
 * that name in the tree would block the thread asking for good (checked:
 * `git status` hangs on it too). So nobody asks about such a tree: the
 * walk finds a .gitignore that is no file before it asks about its
 * directory and lists that tree without git's rules, saying so (walk.c),
 * and the git op refuses a project whose walk met one (ops_git.c). The
 * root's .ignore is read by us, with O_NONBLOCK and regular files only.
 *
 * Threads: libgit2 lets threads share a git_repository only to read
 * objects; an ignore query goes through the repository's attribute cache
 * and libgit2's per-thread error state, so a struct repo is used by one
 * thread at a time. A walk on several threads opens one handle per
 * thread (walk.c's walk_open), each reading the same root; handles are
 * independent, so walks of different projects, and the threads of one
 * walk, run at once. repo_open() and repo_close() may be called from any
 * thread.
 *
 * libgit2 is started once and shut down only at exit (repo_lib_shutdown,
 * after main has joined every thread). A count per handle
 * (git_libgit2_init() in repo_open, git_libgit2_shutdown() in
 * repo_close) was tried: every time the count fell to zero libgit2 freed
 * its globals and the next open started it again, 7 ms a start here
 * (measured), which made test_walk ten times slower (0.7 s to 7.8 s) and
 * would charge it again to every walk the daemon starts while no other
 * runs; and a shutdown that drops libgit2's per-thread state key must
 * come after every thread that used libgit2 has exited, or their state
 * leaks. At exit nothing of libgit2's stays, so valgrind can be asked
 * for reachable blocks too.
 *
 * For the git cache (issue 13): libgit2 1.5's status, branch, ahead/
 * behind, state and stash calls (git_status_list_new() with a pathspec,
 * git_repository_head(), git_graph_ahead_behind(), git_repository_state(),
 * git_stash_foreach()) all take a work tree's git_repository, used by one
 * thread at a time. So repo_status() opens a handle of its own on the
 * calling thread (the cache's worker), through this module's work-tree
 * step (repo_worktree_find(): discovery, the refusal note, the root's
 * offset for the pathspec), not through repo_open(), which trades a root
 * git ignores for an in-memory repository; and closes it before it
 * returns, so nothing of libgit2 outlives the call.
 * Submodules are not left to libgit2 1.5.1's status: its .gitmodules
 * reader leaks a PCRE2 block (~20 KiB) per key its regex does not match
 * (fixed in libgit2 1.6, pull request 6382), each time, which the cache
 * asking every few seconds would turn into steady growth; repo.c finds
 * them from the index's gitlinks instead (repo_submodules()).
 * Also owns: each struct repo_status, one block (header, entries, path
 * arena) so its byte size, which the cache bounds, is exact.
 */
#ifndef FIDX_REPO_H
#define FIDX_REPO_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/limits.h"
#include "../common/log.h"

/*
 * Bytes of the root's .ignore that are read. A hand-written ignore file
 * is a few hundred bytes; a megabyte bounds a generated one. Past it the
 * rest is dropped (at a line boundary) and a warning says so.
 */
#define REPO_IGNORE_FILE_MAX (1024 * 1024)

/*
 * The longest relative path repo_ignored() is asked about: a directory
 * that can hold a listable child plus '/' and one name. Paths past the
 * walk's cap are still asked (a too-long path is counted only if it is
 * not ignored), which is why this is over FIDX_MAX_PATH_DEFAULT.
 */
#define REPO_PATH_MAX (FIDX_MAX_PATH_DEFAULT + 1 + NAME_MAX)

struct repo;

/*
 * What opening the rules found that the user must hear of. Each sentence
 * is appended to the caller's buffer, "; " between them (cut, never
 * overrun); repo logs none of it, so the caller says it once, where the
 * user sees it.
 */
struct repo_notes {
	char *warning;		/* the caller's NUL-terminated buffer */
	size_t size;		/* its size in bytes */
	bool refused;		/* in a repository libgit2 would not open */
};

/*
 * libgit2's own memory, set when it starts (once per process). Its object
 * cache is shared by every open repository and defaults to 256 MiB; a
 * status reads the index and a few trees, so 16 MiB is plenty, and the
 * cache is emptied as each repository is closed (no handle outlives its
 * walk or status). Pack files are mapped in windows, by default up to 8
 * GiB at once on 64-bit: 256 MiB bounds what a huge repository's status
 * maps (RssFile), libgit2 unmapping the least recently used windows past
 * it. Both in `stats` (limits.git_object_cache_bytes,
 * limits.git_mapped_bytes; git.usage.object_cache_bytes).
 */
struct repo_lib_limits {
	size_t cache_bytes;	/* FIDX_GIT_OBJECT_CACHE_DEFAULT */
	size_t mapped_bytes;	/* FIDX_GIT_MAPPED_DEFAULT */
};

/*
 * Sets the bounds libgit2 gets when it starts. Call before anything else
 * here (main does, from its flags); later calls change nothing. Without
 * it the defaults apply.
 */
void repo_lib_limits(const struct repo_lib_limits *lim);

/*
 * Undoes libgit2's start, if it started: its global state (thread-local
 * error buffers, TLS and hash back ends) freed, so a leak checker at exit
 * sees only what fidx leaked. Call once, at exit, after every thread that
 * used a repository has been joined.
 */
void repo_lib_shutdown(void);

struct repo_lib_stats {
	size_t cached_bytes;		/* libgit2's object cache now */
	size_t cache_max_bytes;		/* its bound */
	size_t mapped_limit_bytes;	/* the pack windows' bound */
};

/* libgit2's figures (starts it if it is not running). */
void repo_lib_stats(struct repo_lib_stats *st);

/*
 * Opens the ignore rules of root (absolute, resolved; rootfd its open
 * directory, used only for the duration of the call) into *out: the
 * work tree's rules with the root's .ignore added, or the .ignore alone,
 * or none (*out NULL: not in git, no .ignore). A root git itself ignores
 * (a project added inside a build/ directory) is treated as outside git,
 * since every path below it would be ignored. Not being in a work tree
 * is no error, nor is a repository libgit2 refuses, an unreadable or
 * oversized .ignore or a rule libgit2 rejects: those go to notes.
 * Returns -1 with err set, errno ENOMEM, only when memory runs out.
 */
int repo_open(struct repo **out, const char *root, int rootfd,
    struct repo_notes *notes, struct fidx_err *err);

/*
 * True when the rules of r (NULL: none) ignore rel (len bytes at most
 * REPO_PATH_MAX, relative to the root, no leading '/'); dir says rel
 * is a directory (its "dir/" rules apply, and libgit2 is spared a
 * stat). A rule file libgit2 cannot read leaves the path not ignored:
 * better listed than lost.
 * NEEDSWORK: each call makes libgit2 re-check (stat) the .gitignore of
 * every directory up to the top, ~10 us a path, 20x a plain walk; its
 * incremental push/pop API is not public.
 */
bool repo_ignored(struct repo *r, const char *rel, size_t len, bool dir);

/* Frees r; NULL is fine. */
void repo_close(struct repo *r);

/*
 * A project's git status, as `git status --porcelain=v1 --branch` and
 * `git stash list` would tell it, in one allocation of exactly `bytes`
 * bytes: this header, then the entries, then the arena of NUL-terminated
 * strings (branch, upstream, paths) they point into. Freed with free()
 * or repo_status_free(); never changed after repo_status() returns, so
 * any thread may read it.
 */
enum repo_state {
	REPO_STATE_NONE,
	REPO_STATE_MERGE,
	REPO_STATE_REBASE,
	REPO_STATE_CHERRY_PICK,
	REPO_STATE_REVERT,
	REPO_STATE_BISECT,
	REPO_STATE_AM,			/* git am (or am-or-rebase) */
	REPO_STATE_COUNT
};

/* Counts over every entry found, truncated or not. */
enum repo_count {
	REPO_COUNT_STAGED,		/* index side A M D R C T */
	REPO_COUNT_MODIFIED,		/* work-tree side M D T (not ? or !) */
	REPO_COUNT_UNTRACKED,		/* ?? */
	REPO_COUNT_IGNORED,		/* !! (only when asked for) */
	REPO_COUNT_CONFLICTED,		/* DD AU UD UA DU AA UU */
	REPO_COUNT_KINDS
};

/*
 * One path's two letters: X (index) and Y (work tree) of porcelain v1,
 * '?' '?' untracked, '!' '!' ignored. path is relative to the root (not
 * the top of the work tree); orig is the rename's source, NULL if none.
 * An untracked directory is one entry ending in '/', as git lists it.
 */
struct repo_status_file {
	const char *path;
	const char *orig;
	uint32_t path_len;
	char index;
	char worktree;
};

struct repo_status {
	size_t bytes;			/* of the whole block */
	const char *branch;		/* "main"; detached: HEAD's short id */
	bool detached;
	const char *upstream;		/* "origin/main", "main"; NULL: none */
	size_t ahead, behind;		/* against upstream; 0 without one */
	enum repo_state state;
	size_t stash;			/* entries in refs/stash */
	size_t counts[REPO_COUNT_KINDS];
	size_t total;			/* entries found */
	size_t nfiles;			/* entries held: total, or max_paths */
	bool truncated;			/* nfiles < total */
	struct repo_status_file *files;	/* in git's order (by path) */
};

struct repo_status_opts {
	size_t max_paths;		/* entries held at most; >= 0 */
	bool untracked_all;		/* list files in untracked dirs */
	bool ignored;			/* add ignored ones, as --ignored */
};

/* "merge", "rebase", ... ; NULL for REPO_STATE_NONE. */
const char *repo_state_name(enum repo_state s);

/*
 * The status of the work tree root lies in, limited to paths below root
 * (absolute), into *out. Renames between HEAD and the index are found as
 * git finds them by default, untracked directories are one entry unless
 * untracked_all, submodules are entries (their own status not listed).
 * Past max_paths entries the rest are counted, not held (truncated).
 * Returns 0, or -1 with err and errno: ENOENT when root is in no work
 * tree (a bare repository, no repository, one libgit2 refuses: err says
 * which), ENOMEM, EIO when libgit2 fails otherwise.
 */
int repo_status(struct repo_status **out, const char *root,
    const struct repo_status_opts *o, struct fidx_err *err);

/* Frees s; NULL is fine. */
void repo_status_free(struct repo_status *s);

#endif
