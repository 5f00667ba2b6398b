/*
 * walk.c - see walk.h.
 *
 * A walk is one loop over an explicit stack of pending directories, so a
 * deep tree costs heap (one byte buffer of relative paths plus their
 * offsets), never C stack, and at most two directory descriptors are open
 * at a time: the root's, and the one being read. Every directory is opened
 * by its path relative to the root descriptor with O_NOFOLLOW, so a
 * directory symlink is never entered, whatever readdir said.
 *
 * Per entry the cheap tests run first: the name (".git", hidden), the
 * type from d_type (fstatat only for DT_UNKNOWN), the exclude regex, then
 * git's ignore rules, and only a symlink that survives all of them is
 * stat()ed to see whether it names a regular file.
 *
 * Ignore rules (git's, the root's .ignore) are repo.c's: each thread of
 * a walk opens its own handle on them (repo.h says why) and asks it about
 * every entry that survives the exclude regex.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcre2.h>

#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/log.h"
#include "../common/query.h"
#include "../common/regex.h"
#include "../common/thread.h"
#include "repo.h"
#include "walk.h"

#define WALK_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/*
 * The longest relative path the walk builds: a directory it enters (at
 * most FIDX_MAX_PATH_DEFAULT - 2 bytes, see walk_queue_dir) plus '/' and
 * one name. Paths over FIDX_MAX_PATH_DEFAULT are built only to be tested
 * against the ignore rules, then counted as too long.
 */
#define WALK_PATH_MAX (FIDX_MAX_PATH_DEFAULT + 1 + NAME_MAX)
_Static_assert(WALK_PATH_MAX <= REPO_PATH_MAX,
    "repo_ignored() must take every path the walk builds");

/* What an entry is, once its type is known. */
enum walk_kind {
	WALK_SKIP,		/* a device, fifo, socket, or gone */
	WALK_FILE,
	WALK_DIR,
	WALK_LINK
};

/* Pending directories: relative paths back to back, no terminators. */
struct walk_stack {
	char *buf;
	size_t len, cap;
	size_t *off;		/* where each path starts in buf */
	bool *noignore;		/* git's rules not to be asked below it */
	size_t n, ncap;
};

struct walk_share;

struct walk {
	struct walk_share *sh;	/* the walk's other threads, or NULL */
	const char *root;
	const struct walk_opts *opts;
	struct index_builder *b;
	struct walk_stats *st;
	struct fidx_err *err;
	int rootfd;
	struct walk_stack stack;
	pcre2_match_data *md;	/* for opts->exclude, made once per walk */

	struct repo *repo;	/* this thread's ignore rules, or NULL */
	bool noignore;		/* not for the directory being read (a
				   .gitignore at or above it is no file) */

	/*
	 * The directory being read, then "dir/name" for each entry; the
	 * exclude regex reads up to QUERY_PAD bytes past it (query.h), which
	 * walk_open() zeroes with the rest.
	 */
	char path[WALK_PATH_MAX + 1 + QUERY_PAD];
	size_t len;

	/* getdents64 records (struct dirent's layout on Linux, 64-bit). */
	_Alignas(struct dirent) char dents[32 * 1024];
};

static int
walk_nomem(struct walk *w)
{
	errno = ENOMEM;
	fidx_error(w->err, "walk of %s: out of memory", w->root);
	errno = ENOMEM;
	return -1;
}

static int
walk_push(struct walk_stack *s, const char *rel, size_t len, bool noignore)
{
	if (s->n == s->ncap) {
		size_t ncap = s->ncap ? s->ncap * 2 : 64;
		size_t *off;
		bool *ni;

		if ((off = fidx_reallocarray(s->off, ncap, sizeof(*off))) ==
		    NULL)
			return -1;
		s->off = off;
		if ((ni = fidx_reallocarray(s->noignore, ncap,
		    sizeof(*ni))) == NULL)
			return -1;
		s->noignore = ni;
		s->ncap = ncap;
	}
	if (s->buf == NULL || len > s->cap - s->len) {
		size_t cap = s->cap ? s->cap : 4096;
		char *buf;

		while (len > cap - s->len)
			cap *= 2;
		if ((buf = fidx_reallocarray(s->buf, cap, 1)) == NULL)
			return -1;
		s->buf = buf;
		s->cap = cap;
	}
	s->noignore[s->n] = noignore;
	s->off[s->n++] = s->len;
	memcpy(s->buf + s->len, rel, len);
	s->len += len;
	return 0;
}

/* Moves the most recently queued directory into w->path. */
static void
walk_pop(struct walk *w)
{
	struct walk_stack *s = &w->stack;
	size_t off = s->off[--s->n];

	w->noignore = s->noignore[s->n];
	w->len = s->len - off;
	memcpy(w->path, s->buf + off, w->len);
	w->path[w->len] = '\0';
	s->len = off;
}

static int
walk_init(struct walk *w)
{
	if (w->opts->exclude != NULL) {
		w->md = pcre2_match_data_create_from_pattern(
		    regex_any(w->opts->exclude), NULL);
		if (w->md == NULL)
			return walk_nomem(w);
	}
	if (w->opts->gitignore) {
		struct repo_notes notes = {
			.warning = w->st->warning,
			.size = sizeof(w->st->warning),
		};
		int rc = repo_open(&w->repo, w->root, w->rootfd, &notes,
		    w->err);

		w->st->git_refused = notes.refused;
		return rc;
	}
	return 0;
}

static void
walk_release(struct walk *w)
{
	free(w->stack.buf);
	free(w->stack.off);
	free(w->stack.noignore);
	pcre2_match_data_free(w->md);
	repo_close(w->repo);
	if (w->rootfd != -1)
		close(w->rootfd);
}

/* Names never listed: ".", "..", ".git", and hidden ones unless asked. */
static bool
walk_skip_name(const struct walk *w, const char *name)
{
	if (name[0] != '.')
		return false;
	if (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))
		return true;
	if (strcmp(name, ".git") == 0)
		return true;
	return !w->opts->hidden;
}

static enum walk_kind
walk_kind_of(mode_t mode)
{
	if (S_ISREG(mode))
		return WALK_FILE;
	if (S_ISDIR(mode))
		return WALK_DIR;
	if (S_ISLNK(mode))
		return WALK_LINK;
	return WALK_SKIP;
}

/* The entry's type from d_type; fstatat only when the filesystem has none. */
static enum walk_kind
walk_kind(struct walk *w, int dfd, const struct dirent *de)
{
	struct stat sb;

	switch (de->d_type) {
	case DT_REG:
		return WALK_FILE;
	case DT_DIR:
		return WALK_DIR;
	case DT_LNK:
		return WALK_LINK;
	case DT_UNKNOWN:
		break;
	default:
		return WALK_SKIP;
	}
	if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
		w->st->vanished++;
		return WALK_SKIP;
	}
	return walk_kind_of(sb.st_mode);
}

/*
 * True when opts->exclude matches w->path. When PCRE2 gives up instead
 * (a match, depth or heap limit: a pattern that backtracks without end
 * on this path) the path is listed and counted, and the walk's warning
 * says so: better shown than silently lost, and a pattern that fails on
 * a few paths must not hide them.
 */
static bool
walk_excluded(struct walk *w)
{
	int rc;

	if (w->md == NULL)
		return false;
	rc = pcre2_match(regex_code(w->opts->exclude, w->path, w->len),
	    (PCRE2_SPTR)w->path, w->len, 0, 0, w->md, NULL);
	if (rc >= 0)
		return true;
	if (rc != PCRE2_ERROR_NOMATCH)
		w->st->exclude_errors++;
	return false;
}

/*
 * True when the symlink at w->path names a regular file. One to a
 * directory is never followed (that is how loops are avoided); one that
 * dangles, loops or names a device is skipped too, and counted.
 */
static bool
walk_link_is_file(struct walk *w, int dfd, const char *name)
{
	struct stat sb;

	if (fstatat(dfd, name, &sb, 0) == 0 && S_ISREG(sb.st_mode))
		return true;
	w->st->symlinks_skipped++;
	return false;
}

/*
 * Queues the directory at w->path. One too deep to hold a listable child
 * ("dir/x" over FIDX_MAX_PATH_DEFAULT) is not entered but counted once as
 * too long: all it holds would be, and past PATH_MAX it could not even be
 * opened by its relative path. Directories waiting to be read are bounded
 * by the file cap too (a tree of a million empty directories would
 * otherwise grow the stack without bound): past it the walk is capped.
 * Returns 0, 1 at that cap, -1 when out of memory.
 */
static int
walk_queue_dir(struct walk *w)
{
	if (w->len + 2 > FIDX_MAX_PATH_DEFAULT) {
		w->st->too_long++;
		return 0;
	}
	if (w->stack.n >= w->b->max_files) {
		w->b->capped = true;
		return 1;
	}
	if (walk_push(&w->stack, w->path, w->len, w->noignore) == -1)
		return walk_nomem(w);
	return 0;
}

static int
walk_add_file(struct walk *w)
{
	switch (index_builder_add(w->b, w->path, w->len)) {
	case 0:
		if (++w->st->files % WALK_PROGRESS_EVERY == 0 &&
		    w->opts->progress != NULL)
			atomic_fetch_add_explicit(w->opts->progress,
			    WALK_PROGRESS_EVERY, memory_order_relaxed);
		return 0;
	case 1:
		return 1;
	default:
		return walk_nomem(w);
	}
}

/*
 * Filters the entry now at w->path, then queues it (a directory) or lists
 * it. Returns 0 to go on, 1 at a cap, -1 on failure.
 */
static int
walk_take(struct walk *w, int dfd, const char *name, enum walk_kind kind)
{
	if (walk_excluded(w) || (!w->noignore &&
	    repo_ignored(w->repo, w->path, w->len, kind == WALK_DIR))) {
		w->st->ignored++;
		if (kind == WALK_DIR && w->opts->on_skip != NULL)
			w->opts->on_skip(w->opts->arg, w->path, w->len);
		return 0;
	}
	if (kind == WALK_DIR)
		return walk_queue_dir(w);
	if (w->len > FIDX_MAX_PATH_DEFAULT) {
		w->st->too_long++;
		return 0;
	}
	if (kind == WALK_LINK && !walk_link_is_file(w, dfd, name))
		return 0;
	return walk_add_file(w);
}

/* One directory entry; w->path is its directory and is restored after. */
/* name, in the directory at w->path, is not entered: on_skip says so. */
static void
walk_skipped(struct walk *w, const char *name)
{
	char rel[FIDX_MAX_PATH_DEFAULT + NAME_MAX + 2];
	int n = snprintf(rel, sizeof(rel), "%s%s%s", w->path,
	    w->len > 0 ? "/" : "", name);

	if (n > 0 && (size_t)n < sizeof(rel))
		w->opts->on_skip(w->opts->arg, rel, (size_t)n);
}

static int
walk_entry(struct walk *w, int dfd, const struct dirent *de)
{
	const char *name = de->d_name;
	size_t dlen = w->len, nlen;
	enum walk_kind kind;
	int r;

	if (walk_skip_name(w, name)) {
		/* A hidden directory (not . .. .git): not watched either. */
		if (w->opts->on_skip != NULL && name[1] != '\0' &&
		    (name[1] != '.' || name[2] != '\0') &&
		    strcmp(name, ".git") != 0 &&
		    walk_kind(w, dfd, de) == WALK_DIR)
			walk_skipped(w, name);
		return 0;
	}
	if ((nlen = strlen(name)) > NAME_MAX) {
		w->st->too_long++;
		return 0;
	}
	if ((kind = walk_kind(w, dfd, de)) == WALK_SKIP)
		return 0;
	if (dlen > 0)
		w->path[w->len++] = '/';
	memcpy(w->path + w->len, name, nlen + 1);
	w->len += nlen;
	r = walk_take(w, dfd, name, kind);
	w->len = dlen;
	w->path[dlen] = '\0';
	return r;
}

/*
 * True when dfd's .gitignore is there but not a file (a fifo, a socket, a
 * device, or a symlink to one). libgit2 opens every .gitignore with a
 * blocking open(), and a fifo blocks it, and the walk, for good; git
 * itself hangs on one. A directory named .gitignore only fails to read.
 */
static bool
walk_gitignore_unsafe(int dfd)
{
	struct stat sb;

	if (fstatat(dfd, ".gitignore", &sb, AT_SYMLINK_NOFOLLOW) == -1 ||
	    S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode))
		return false;
	if (S_ISLNK(sb.st_mode))
		return fstatat(dfd, ".gitignore", &sb, 0) == 0 &&
		    !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode);
	return true;
}

/*
 * git's rules are not asked about w->path and below (they would need its
 * .gitignore read): their paths are listed, as when a .gitignore cannot
 * be read, and the warning says where, once per walk thread.
 */
static void
walk_noignore(struct walk *w)
{
	size_t len = strlen(w->st->warning);

	w->noignore = true;
	if (w->st->gitignore_unsafe++ > 0)
		return;
	snprintf(w->st->warning + len, sizeof(w->st->warning) - len,
	    "%sgit's ignore rules are not applied in %s%s%s and below: its "
	    ".gitignore is not a regular file (a fifo?), which git itself "
	    "would hang on", len > 0 ? "; " : "", w->root,
	    w->len > 0 ? "/" : "", w->path);
}

/*
 * One of opts->starts: a path the rules are asked about as if the walk
 * had met it in its directory (each of its names, then the ignore rules
 * and exclude on the whole path), then listed or queued. Gone is nothing.
 */
static int
walk_start(struct walk *w, const char *rel)
{
	size_t len = strlen(rel);
	struct stat sb;
	enum walk_kind kind;

	if (len == 0)
		return walk_push(&w->stack, "", 0, false) == -1 ?
		    walk_nomem(w) : 0;
	if (len > FIDX_MAX_PATH_DEFAULT) {
		w->st->too_long++;
		return 0;
	}
	for (const char *c = rel; c != NULL;) {
		const char *end = strchr(c, '/');
		char name[NAME_MAX + 1];
		size_t n = end != NULL ? (size_t)(end - c) : strlen(c);

		if (n == 0 || n > NAME_MAX)
			return 0;
		memcpy(name, c, n);
		name[n] = '\0';
		if (walk_skip_name(w, name))
			return 0;
		c = end != NULL ? end + 1 : NULL;
	}
	if (fstatat(w->rootfd, rel, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;
	if ((kind = walk_kind_of(sb.st_mode)) == WALK_SKIP)
		return 0;
	/* Asking about rel reads every .gitignore above it: none may block. */
	w->noignore = false;
	if (w->repo != NULL) {
		for (size_t i = 0; i <= len && !w->noignore; i++) {
			int dfd;

			if (i < len && rel[i] != '/')
				continue;
			if (i == len && kind != WALK_DIR)
				break;
			memcpy(w->path, rel, i);
			w->path[i] = '\0';
			w->len = i;
			dfd = openat(w->rootfd, i > 0 ? w->path : ".",
			    WALK_OPEN_FLAGS);
			if (dfd != -1 && walk_gitignore_unsafe(dfd))
				walk_noignore(w);
			if (dfd != -1)
				close(dfd);
		}
		/* The root's own, above the first '/'. */
		if (!w->noignore && walk_gitignore_unsafe(w->rootfd)) {
			w->len = 0;
			w->path[0] = '\0';
			walk_noignore(w);
		}
	}
	memcpy(w->path, rel, len + 1);
	w->len = len;
	int r = walk_take(w, w->rootfd, rel, kind);

	w->len = 0;
	w->path[0] = '\0';
	return r;
}

/*
 * A directory seen in its parent that will not open. Gone or replaced
 * (by a file, or by a symlink: O_NOFOLLOW) counts as vanished, anything
 * else as unreadable; neither stops the walk. Running out of descriptors
 * or memory does: the index would be silently partial.
 */
static int
walk_dir_failed(struct walk *w)
{
	int saved = errno;

	switch (saved) {
	case ENOENT:
	case ENOTDIR:
	case ELOOP:
		w->st->vanished++;
		return 0;
	case EMFILE:
	case ENFILE:
	case ENOMEM:
		fidx_error(w->err, "cannot open %s/%s: %s", w->root, w->path,
		    strerror(saved));
		errno = saved;
		return -1;
	default:
		w->st->unreadable++;
		if (w->opts->on_skip != NULL)
			w->opts->on_skip(w->opts->arg, w->path, w->len);
		return 0;
	}
}

/* Tells the caller (the watcher) about the directory just opened. */
static int
walk_enter(struct walk *w, int fd)
{
	struct stat sb;

	w->st->dirs++;
	if (w->opts->on_dir == NULL)
		return 0;
	if (fstat(fd, &sb) == -1)
		memset(&sb, 0, sizeof(sb));
	if (w->opts->on_dir(w->opts->arg, w->path, w->len, &sb) == 0)
		return 0;
	fidx_error(w->err, "walk of %s stopped at directory '%s'", w->root,
	    w->len > 0 ? w->path : ".");
	errno = ECANCELED;
	return -1;
}

/*
 * Lists the directory at w->path. Returns 0, 1 at a cap, -1 on failure.
 * getdents64 straight into a buffer kept for the walk: fdopendir() would
 * add an fstat and two fcntl calls per directory, a sixth of the walk's
 * system calls.
 */
static int
walk_dir(struct walk *w)
{
	int fd, r, saved;
	ssize_t got;

	fd = openat(w->rootfd, w->len > 0 ? w->path : ".", WALK_OPEN_FLAGS);
	if (fd == -1)
		return walk_dir_failed(w);
	if (w->repo != NULL && !w->noignore && walk_gitignore_unsafe(fd))
		walk_noignore(w);
	if ((r = walk_enter(w, fd)) == 0) {
		while ((got = getdents64(fd, w->dents, sizeof(w->dents))) > 0) {
			for (ssize_t at = 0; at < got && r == 0;) {
				const struct dirent *de = (const struct dirent *)
				    (void *)(w->dents + at);

				at += de->d_reclen;
				r = walk_entry(w, fd, de);
			}
			if (r != 0)
				break;
		}
		/* A removed directory just ends; an error is I/O. */
		if (got == -1 && r == 0)
			w->st->unreadable++;
	}
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/*
 * A walk on several threads. Each has its own struct walk (path buffer,
 * ignore matcher, builder, counters) and its own stack of directories; a
 * thread that finds others idle hands them half of its stack through
 * this shared one. The walk ends when every thread is idle with nothing
 * shared, or at once on a cap, an error or a cancel.
 */
struct walk_share {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct walk_stack stack;	/* directories handed over */
	int threads, idle;
	bool done;
	atomic_int idle_hint;		/* idle, read without the lock */
	atomic_bool stop;
	atomic_size_t files;		/* the index's file count, for its cap */
};

/* Ends the walk for every thread (a cap, an error, a cancel). */
static void
walk_share_stop(struct walk_share *sh)
{
	pthread_mutex_lock(&sh->mu);
	atomic_store(&sh->stop, true);
	sh->done = true;
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
}

/* Moves the top entry of from onto to. -1 when out of memory. */
static int
walk_move_one(struct walk_stack *from, struct walk_stack *to)
{
	size_t off = from->off[from->n - 1];

	if (walk_push(to, from->buf + off, from->len - off,
	    from->noignore[from->n - 1]) == -1)
		return -1;
	from->n--;
	from->len = off;
	return 0;
}

/*
 * Takes a directory from the shared stack into w's, waiting while others
 * may still hand some over. Returns 1 with one taken, 0 when the walk is
 * over, -1 when out of memory.
 */
static int
walk_share_take(struct walk *w)
{
	struct walk_share *sh = w->sh;
	int rc = 0;

	pthread_mutex_lock(&sh->mu);
	while (sh->stack.n == 0 && !sh->done) {
		if (++sh->idle == sh->threads) {
			sh->done = true;	/* nobody holds work: all done */
			pthread_cond_broadcast(&sh->cv);
		} else {
			atomic_fetch_add(&sh->idle_hint, 1);
			pthread_cond_wait(&sh->cv, &sh->mu);
			atomic_fetch_sub(&sh->idle_hint, 1);
		}
		sh->idle--;
	}
	if (sh->stack.n > 0 && !atomic_load(&sh->stop))
		rc = walk_move_one(&sh->stack, &w->stack) == -1 ? -1 : 1;
	pthread_mutex_unlock(&sh->mu);
	return rc;
}

/* Hands half of w's pending directories to idle threads. */
static int
walk_share_give(struct walk *w)
{
	struct walk_share *sh = w->sh;
	size_t half = w->stack.n / 2;
	int rc = 0;

	if (half == 0 || atomic_load(&sh->idle_hint) == 0)
		return 0;
	pthread_mutex_lock(&sh->mu);
	for (size_t i = 0; i < half && rc == 0; i++)
		rc = walk_move_one(&w->stack, &sh->stack);
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	return rc;
}

/* One thread's part of a walk: 0 done, 1 stopped at a cap, -1 failed. */
static int
walk_loop(struct walk *w)
{
	int r;

	for (;;) {
		if (w->sh != NULL && atomic_load(&w->sh->stop))
			return 0;
		if (w->stack.n == 0) {
			if (w->sh == NULL)
				return 0;
			if ((r = walk_share_take(w)) <= 0)
				return r == 0 ? 0 : walk_nomem(w);
		}
		walk_pop(w);
		if ((r = walk_dir(w)) != 0)
			return r;
		if (w->sh != NULL && walk_share_give(w) == -1)
			return walk_nomem(w);
	}
}

/* Sets up w for one thread of a walk of root. */
static int
walk_open(struct walk *w, const char *root, const struct walk_opts *opts,
    struct index_builder *b, struct walk_stats *st, struct fidx_err *err)
{
	int saved;

	memset(st, 0, sizeof(*st));
	memset(w, 0, sizeof(*w));
	w->root = root;
	w->opts = opts;
	w->b = b;
	w->st = st;
	w->err = err;
	if ((w->rootfd = open(root, WALK_OPEN_FLAGS)) == -1) {
		saved = errno;
		fidx_error(err, "cannot open %s: %s", root, strerror(saved));
		errno = saved;
		return -1;
	}
	if (walk_init(w) == -1) {
		saved = errno;
		walk_release(w);
		errno = saved;
		return -1;
	}
	return 0;
}

/* A helper thread of a walk: its own walk, builder and counters. */
struct walk_helper {
	struct walk w;
	struct index_builder b;
	struct walk_stats st;
	struct fidx_err err;
	pthread_t tid;
	bool opened, started;
	int rc, saved_errno;
};

static void *
walk_helper_main(void *arg)
{
	struct walk_helper *h = arg;

	thread_settle();
	h->rc = walk_loop(&h->w);
	h->saved_errno = errno;
	if (h->rc != 0)
		walk_share_stop(h->w.sh);
	return NULL;
}

static void
walk_stats_add(struct walk_stats *to, const struct walk_stats *from)
{
	to->files += from->files;
	to->dirs += from->dirs;
	to->ignored += from->ignored;
	to->unreadable += from->unreadable;
	to->vanished += from->vanished;
	to->too_long += from->too_long;
	to->symlinks_skipped += from->symlinks_skipped;
	to->exclude_errors += from->exclude_errors;
	to->gitignore_unsafe += from->gitignore_unsafe;
	/* Every thread opens the same repository: one warning is enough. */
}

/*
 * A helper thread's "rules not applied in DIR" sentence, if the walk's
 * warning has none yet: where it happened is the useful part.
 */
static void
walk_warn_gitignore(struct walk_stats *to, const struct walk_stats *from)
{
	static const char mark[] = "git's ignore rules are not applied in ";
	const char *at = strstr(from->warning, mark), *end;
	size_t len = strlen(to->warning);

	if (at == NULL || strstr(to->warning, mark) != NULL)
		return;
	end = strstr(at, "; ");
	snprintf(to->warning + len, sizeof(to->warning) - len, "%s%.*s",
	    len > 0 ? "; " : "", (int)(end != NULL ? (size_t)(end - at) :
	    strlen(at)), at);
}

/* Adds the warnings that sum every thread's counters, once per walk. */
static void
walk_warn_totals(struct walk_stats *st)
{
	size_t len = strlen(st->warning);

	/* A helper thread's first one is counted here, its path not kept. */
	if (st->gitignore_unsafe > 0 && strstr(st->warning,
	    ".gitignore is not a regular file") == NULL) {
		snprintf(st->warning + len, sizeof(st->warning) - len, "%sgit's "
		    "ignore rules are not applied below %zu director%s whose "
		    ".gitignore is not a regular file (a fifo?), which git "
		    "itself would hang on", len > 0 ? "; " : "",
		    st->gitignore_unsafe, st->gitignore_unsafe == 1 ? "y" :
		    "ies");
		len = strlen(st->warning);
	}
	if (st->exclude_errors == 0)
		return;
	snprintf(st->warning + len, sizeof(st->warning) - len, "%sthe "
	    "exclude regex gave up on %zu path%s (PCRE2's match, depth or "
	    "heap limit), which %s listed: simplify the pattern",
	    len > 0 ? "; " : "", st->exclude_errors,
	    st->exclude_errors == 1 ? "" : "s",
	    st->exclude_errors == 1 ? "is" : "are");
}

int
walk_run(const char *root, const struct walk_opts *opts,
    struct index_builder *b, struct walk_stats *st, struct fidx_err *err)
{
	struct walk_helper h[WALK_MAX_THREADS];
	struct walk_share sh;
	struct walk w;
	int nthreads = opts->threads > 1 ? opts->threads : 1;
	int r, rc = -1, saved = 0;

	if (nthreads > WALK_MAX_THREADS)
		nthreads = WALK_MAX_THREADS;
	/* A byte cap of one builder cannot be split among several. */
	if (b->max_bytes != SIZE_MAX)
		nthreads = 1;
	if (opts->starts != NULL)
		nthreads = 1;
	if (walk_open(&w, root, opts, b, st, err) == -1)
		return -1;
	if (opts->starts != NULL) {
		for (size_t i = 0; i < opts->nstarts; i++)
			if ((r = walk_start(&w, opts->starts[i])) != 0) {
				rc = r == -1 ? -1 : 0;
				goto single_out;
			}
	} else if (walk_push(&w.stack, "", 0, false) == -1) {
		walk_nomem(&w);
		goto single_out;
	}
	if (nthreads == 1) {
		r = walk_loop(&w);
		rc = r == -1 ? -1 : 0;
		goto single_out;
	}

	memset(&sh, 0, sizeof(sh));
	pthread_mutex_init(&sh.mu, NULL);
	pthread_cond_init(&sh.cv, NULL);
	sh.threads = 1;
	atomic_init(&sh.files, b->n);
	memset(h, 0, sizeof(h));
	w.sh = &sh;
	b->files = &sh.files;
	/* Helpers start off this CPU (thread.h). */
	pthread_attr_t attr;
	bool elsewhere = nthreads > 1 && thread_attr_elsewhere(&attr);

	for (int i = 1; i < nthreads; i++) {
		struct walk_helper *hp = &h[i];

		index_builder_init(&hp->b, b->max_files, b->max_bytes,
		    b->budget);
		hp->b.files = &sh.files;
		if (walk_open(&hp->w, root, opts, &hp->b, &hp->st,
		    &hp->err) == -1)
			break;
		hp->opened = true;
		hp->w.sh = &sh;
		pthread_mutex_lock(&sh.mu);
		sh.threads++;
		pthread_mutex_unlock(&sh.mu);
		if (pthread_create(&hp->tid, elsewhere ? &attr : NULL,
		    walk_helper_main, hp) != 0) {
			pthread_mutex_lock(&sh.mu);
			sh.threads--;
			pthread_mutex_unlock(&sh.mu);
			break;
		}
		hp->started = true;
	}
	if (elsewhere)
		pthread_attr_destroy(&attr);
	r = walk_loop(&w);
	if (r != 0)
		walk_share_stop(&sh);
	if (r == -1)
		saved = errno;
	for (int i = 1; i < nthreads; i++)
		if (h[i].started)
			pthread_join(h[i].tid, NULL);
	rc = r == -1 ? -1 : 0;
	for (int i = 1; i < nthreads; i++) {
		struct walk_helper *hp = &h[i];

		if (!hp->opened) {
			index_builder_release(&hp->b);
			continue;
		}
		walk_stats_add(st, &hp->st);
		walk_warn_gitignore(st, &hp->st);
		if (hp->rc == -1 && rc == 0) {
			*err = hp->err;
			rc = -1;
			saved = hp->saved_errno;
		}
		walk_release(&hp->w);
		if (index_builder_absorb(b, &hp->b) == -1 && rc == 0) {
			walk_nomem(&w);
			rc = -1;
			saved = ENOMEM;
		}
	}
	b->files = NULL;
	free(sh.stack.buf);
	free(sh.stack.off);
	free(sh.stack.noignore);
	pthread_cond_destroy(&sh.cv);
	pthread_mutex_destroy(&sh.mu);
	walk_release(&w);
	walk_warn_totals(st);
	errno = saved;
	return rc;
single_out:
	saved = errno;
	walk_release(&w);
	walk_warn_totals(st);
	errno = saved;
	return rc;
}
