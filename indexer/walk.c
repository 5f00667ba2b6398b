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
 * Ignore rules come from libgit2 alone. Inside a git work tree the
 * repository answers, asked with each path relative to its workdir (the
 * root may sit below it). Outside one, .gitignore files do not apply (as
 * in fd without --no-require-git), but the root's .ignore still does,
 * through an in-memory repository with no workdir: libgit2 then matches
 * the rules as a bare set, reading no files and stat()ing nothing. The
 * .ignore lines become libgit2's "internal" rules, which it checks before
 * the .gitignore files, so .ignore wins, as in fd and rg. Only the root's
 * .ignore is read (a documented approximation of rg's one per directory).
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/repository.h>
#include <pcre2.h>

#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/log.h"
#include "../common/query.h"
#include "../common/thread.h"
#include "walk.h"

#define WALK_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/*
 * The longest relative path the walk builds: a directory it enters (at
 * most FIDX_MAX_PATH_DEFAULT - 2 bytes, see walk_queue_dir) plus '/' and
 * one name. Paths over FIDX_MAX_PATH_DEFAULT are built only to be tested
 * against the ignore rules, then counted as too long.
 */
#define WALK_PATH_MAX (FIDX_MAX_PATH_DEFAULT + 1 + NAME_MAX)

/*
 * Bytes of the root's .ignore that are read. A hand-written ignore file
 * is a few hundred bytes; a megabyte bounds a generated one. Past it the
 * rest is dropped (at a line boundary) and a warning says so.
 */
#define WALK_IGNORE_FILE_MAX (1024 * 1024)

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

	/*
	 * The ignore matcher, or NULL for none. gpath holds the root's
	 * offset inside the work tree ("sub/dir/", gpfx bytes, empty when
	 * the root is the top or the repository is in memory), and after it
	 * the path being asked about.
	 */
	git_repository *repo;
	char *gpath;
	size_t gpfx;

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

static pthread_once_t walk_git_once = PTHREAD_ONCE_INIT;

/*
 * libgit2 is initialised once and never shut down: the daemon owns the
 * process's lifetime, and a shutdown racing another walk would pull
 * libgit2's globals from under it.
 */
static void
walk_git_init(void)
{
	git_libgit2_init();
}

static const char *
walk_git_msg(void)
{
	const git_error *e = git_error_last();

	return e != NULL && e->message != NULL ? e->message : "unknown error";
}

/*
 * Adds a sentence for the user to w->st->warning (the project's message
 * and the log, both once per walk: every thread of a walk reads the same
 * root, and only the first thread's counters keep their warning).
 */
__attribute__((format(printf, 2, 3)))
static void
walk_warn(struct walk *w, const char *fmt, ...)
{
	char *buf = w->st->warning;
	size_t len = strlen(buf), size = sizeof(w->st->warning);
	va_list ap;

	if (len + 3 >= size)
		return;
	if (len > 0) {
		memcpy(buf + len, "; ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static int
walk_nomem(struct walk *w)
{
	errno = ENOMEM;
	fidx_error(w->err, "walk of %s: out of memory", w->root);
	errno = ENOMEM;
	return -1;
}

static int
walk_push(struct walk_stack *s, const char *rel, size_t len)
{
	if (s->n == s->ncap) {
		size_t ncap = s->ncap ? s->ncap * 2 : 64;
		size_t *off;

		if ((off = fidx_reallocarray(s->off, ncap, sizeof(*off))) ==
		    NULL)
			return -1;
		s->off = off;
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

	w->len = s->len - off;
	memcpy(w->path, s->buf + off, w->len);
	w->path[w->len] = '\0';
	s->len = off;
}

/*
 * Reads the root's .ignore into a NUL-terminated buffer (*out, NULL when
 * there is none). Only a regular file is read, so a fifo of that name
 * cannot block the walk. Returns -1 only when out of memory.
 */
static int
walk_ignore_read(struct walk *w, char **out)
{
	struct stat sb;
	char *buf = NULL, *nl;
	size_t cap, len = 0;
	ssize_t n;
	int fd;

	*out = NULL;
	fd = openat(w->rootfd, ".ignore",
	    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		if (errno != ENOENT)
			walk_warn(w, "%s/.ignore is not applied: %s", w->root,
			    strerror(errno));
		return 0;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode))
		goto out;
	cap = sb.st_size < WALK_IGNORE_FILE_MAX ? (size_t)sb.st_size :
	    WALK_IGNORE_FILE_MAX;
	if ((buf = fidx_malloc(cap + 1)) == NULL) {
		close(fd);
		return walk_nomem(w);
	}
	while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
		len += (size_t)n;
	if (sb.st_size > WALK_IGNORE_FILE_MAX) {
		walk_warn(w, "%s/.ignore: only the first %d bytes are used",
		    w->root, WALK_IGNORE_FILE_MAX);
		nl = memrchr(buf, '\n', len);
		len = nl != NULL ? (size_t)(nl - buf) : 0;
	}
	buf[len] = '\0';
	*out = buf;
out:
	close(fd);
	return 0;
}

/*
 * Rewrites one .ignore line (len > 0, trailing blanks gone) for a root
 * below the top of its work tree, where libgit2 reads internal rules as
 * if they were in the top's .gitignore. pfx is the root's offset with a
 * trailing '/'. A pattern with a slash other than a trailing one is
 * anchored at the root ("/pfx/pattern"); one without gets a "**"
 * component after pfx, so it matches at any depth below the root but
 * never the root or its parents: the meaning the same line has in a
 * .gitignore in the root itself.
 * out holds at least plen + len + 5 bytes.
 */
static void
walk_ignore_anchor(char *out, const char *pfx, size_t plen,
    const char *line, size_t len)
{
	size_t n = 0, body = len;

	if (line[0] == '!') {
		out[n++] = '!';
		line++;
		len--;
		body--;
	}
	if (body > 0 && line[body - 1] == '/')
		body--;
	out[n++] = '/';
	memcpy(out + n, pfx, plen);
	n += plen;
	if (memchr(line, '/', body) == NULL) {
		memcpy(out + n, "**/", 3);
		n += 3;
	} else if (line[0] == '/') {
		line++;
		len--;
	}
	memcpy(out + n, line, len);
	out[n + len] = '\0';
}

/* The length of line without its trailing blanks, unless escaped. */
static size_t
walk_ignore_trim(const char *line, size_t len)
{
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' ||
	    line[len - 1] == '\r') && (len < 2 || line[len - 2] != '\\'))
		len--;
	return len;
}

/*
 * Adds each rule of text (the root's .ignore) to w->repo. Blank lines,
 * comments and a lone "!" are skipped here: anchored below the top they
 * would become "/pfx/"-like rules that match the whole root.
 */
static int
walk_ignore_add(struct walk *w, char *text)
{
	char *line, *next, *rule;
	size_t len, tlen = strlen(text);

	if ((rule = fidx_malloc(w->gpfx + tlen + 6)) == NULL)
		return walk_nomem(w);
	for (line = text; *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		else
			next = line + strlen(line);
		len = walk_ignore_trim(line, strlen(line));
		if (len == 0 || line[0] == '#' || (len == 1 && line[0] == '!'))
			continue;
		if (w->gpfx == 0) {
			memcpy(rule, line, len);
			rule[len] = '\0';
		} else
			walk_ignore_anchor(rule, w->gpath, w->gpfx, line, len);
		if (git_ignore_add_rule(w->repo, rule) < 0)
			walk_warn(w, "%s/.ignore: the rule %s is not applied: "
			    "%s", w->root, rule, walk_git_msg());
	}
	free(rule);
	return 0;
}

/*
 * Makes gpath: the root's offset inside the work tree (olen bytes, a '/'
 * added when not empty), with room after it for any path the walk asks
 * about plus a trailing '/'.
 */
static int
walk_gpath_init(struct walk *w, const char *offset, size_t olen)
{
	if ((w->gpath = fidx_malloc(olen + 1 + WALK_PATH_MAX + 2)) == NULL)
		return walk_nomem(w);
	memcpy(w->gpath, offset, olen);
	if (olen > 0)
		w->gpath[olen++] = '/';
	w->gpath[olen] = '\0';
	w->gpfx = olen;
	return 0;
}

/*
 * The root's path below top, the top of its work tree ("" for the top
 * itself), or NULL when it is not below it (a worktree configured
 * elsewhere). Both paths are resolved, so symlinks cannot fool the
 * prefix test.
 */
static const char *
walk_root_offset(const char *real, const char *top)
{
	size_t tlen = strlen(top);

	while (tlen > 0 && top[tlen - 1] == '/')
		tlen--;
	if (strncmp(real, top, tlen) != 0)
		return NULL;
	if (real[tlen] == '\0')
		return real + tlen;
	if (real[tlen] != '/')
		return NULL;
	return real + tlen + 1;
}

/*
 * True when git ignores the root itself (a project added from inside an
 * ignored build/ directory). libgit2 tests every parent of a path, so it
 * would then report every entry ignored; such a root is walked as if it
 * were outside git instead, which is what fd and rg list for it.
 */
static bool
walk_root_ignored(git_repository *repo, const char *gpath, size_t gpfx)
{
	int ignored = 0;

	if (gpfx == 0)
		return false;
	if (git_ignore_path_is_ignored(&ignored, repo, gpath) < 0)
		return false;
	return ignored != 0;
}

/*
 * Records in w->st why the repository the root lies in was not opened,
 * if there is one. libgit2 1.5 refuses a repository owned by another
 * user (git's safe.directory check) with GIT_ENOTFOUND, the code for "no
 * repository" (later ones say GIT_EOWNER), so that case is told apart by
 * discovering the repository, which checks no owner. Either way what
 * is listed changes (git's ignore rules are not applied) without a word
 * unless we say so.
 */
static void
walk_repo_refused(struct walk *w, int e)
{
	char why[160], top[PATH_MAX];
	git_buf gitdir = { 0 };
	struct stat sb;
	size_t len;

	snprintf(why, sizeof(why), "%s", walk_git_msg());
	if (git_repository_discover(&gitdir, w->root, 0, NULL) < 0 ||
	    gitdir.ptr == NULL) {
		if (e != GIT_ENOTFOUND)
			log_info("%s: git: %s", w->root, why);
		git_buf_dispose(&gitdir);
		return;
	}
	/* ".../top/.git/": safe.directory names the work tree, top. */
	len = strlen(gitdir.ptr);
	while (len > 1 && gitdir.ptr[len - 1] == '/')
		len--;
	if (len >= 5 && memcmp(gitdir.ptr + len - 5, "/.git", 5) == 0)
		len -= 5;
	snprintf(top, sizeof(top), "%.*s", (int)len, gitdir.ptr);
	w->st->git_refused = true;
	if (e == GIT_EOWNER || (stat(top, &sb) == 0 && sb.st_uid !=
	    geteuid()) || (stat(gitdir.ptr, &sb) == 0 && sb.st_uid !=
	    geteuid()))
		walk_warn(w, "the git repository %s is owned by another "
		    "user, so, as git does, fidx does not use it: its ignore "
		    "rules are not applied (to trust it: git config --global "
		    "--add safe.directory %s)", top, top);
	else
		walk_warn(w, "the git repository %s cannot be opened (%s): "
		    "its ignore rules are not applied", top, why);
	git_buf_dispose(&gitdir);
}

/*
 * Opens the work tree the root lies in, if any, into w->repo and makes
 * gpath. Not being in one is not an error, nor is a repository libgit2
 * refuses (not owned by us, corrupt): both mean no .gitignore rules, and
 * the second is recorded for the user (walk_repo_refused).
 */
static int
walk_repo_open(struct walk *w)
{
	git_repository *repo = NULL;
	char *real = NULL, *top = NULL;
	const char *wd, *offset;
	int e, rc = 0;

	if ((e = git_repository_open_ext(&repo, w->root, 0, NULL)) < 0) {
		walk_repo_refused(w, e);
		return 0;
	}
	if ((wd = git_repository_workdir(repo)) == NULL)
		goto out;
	if ((real = realpath(w->root, NULL)) == NULL ||
	    (top = realpath(wd, NULL)) == NULL) {
		if (errno == ENOMEM)
			rc = walk_nomem(w);
		goto out;
	}
	if ((offset = walk_root_offset(real, top)) == NULL)
		goto out;
	if ((rc = walk_gpath_init(w, offset, strlen(offset))) == -1)
		goto out;
	if (walk_root_ignored(repo, w->gpath, w->gpfx)) {
		free(w->gpath);
		w->gpath = NULL;
		w->gpfx = 0;
		goto out;
	}
	w->repo = repo;
	repo = NULL;
out:
	free(real);
	free(top);
	git_repository_free(repo);
	return rc;
}

/*
 * A repository with no workdir and an empty config, holding only the
 * root's .ignore rules: the matcher for a root outside git. The empty
 * config keeps the user's core.excludesFile out, as git's own rules are.
 */
static int
walk_repo_memory(struct walk *w)
{
	git_config *cfg = NULL;

	if (git_repository_new(&w->repo) < 0 || git_config_new(&cfg) < 0) {
		walk_warn(w, "%s/.ignore is not applied: %s", w->root,
		    walk_git_msg());
		git_repository_free(w->repo);
		w->repo = NULL;
		return 0;
	}
	git_repository_set_config(w->repo, cfg);
	git_config_free(cfg);
	return walk_gpath_init(w, "", 0);
}

/* Chooses the ignore matcher (see the top of this file). */
static int
walk_ignore_init(struct walk *w)
{
	char *rules;
	int rc;

	pthread_once(&walk_git_once, walk_git_init);
	if (walk_repo_open(w) == -1 || walk_ignore_read(w, &rules) == -1)
		return -1;
	if (rules == NULL)
		return 0;
	rc = 0;
	if (w->repo == NULL)
		rc = walk_repo_memory(w);
	if (rc == 0 && w->repo != NULL)
		rc = walk_ignore_add(w, rules);
	free(rules);
	return rc;
}

static int
walk_init(struct walk *w)
{
	if (w->opts->exclude != NULL) {
		w->md = pcre2_match_data_create_from_pattern(w->opts->exclude,
		    NULL);
		if (w->md == NULL)
			return walk_nomem(w);
	}
	if (w->opts->gitignore)
		return walk_ignore_init(w);
	return 0;
}

static void
walk_release(struct walk *w)
{
	free(w->stack.buf);
	free(w->stack.off);
	pcre2_match_data_free(w->md);
	git_repository_free(w->repo);
	free(w->gpath);
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
 * True when opts->exclude matches w->path. A match error (a non-UTF-8
 * name under a UTF pattern, a match limit) lists the path: better shown
 * than silently lost.
 */
static bool
walk_excluded(struct walk *w)
{
	if (w->md == NULL)
		return false;
	return pcre2_match(w->opts->exclude, (PCRE2_SPTR)w->path, w->len, 0,
	    0, w->md, NULL) >= 0;
}

/*
 * True when git ignores w->path. A directory is asked with a trailing
 * '/', which both makes "dir/" rules apply and spares libgit2 a stat.
 * NEEDSWORK: each call makes libgit2 re-check (stat) the .gitignore of
 * every directory up to the top; its incremental push/pop API is not
 * public. Bench against fd before tuning anything else here.
 */
static bool
walk_git_ignored(struct walk *w, bool dir)
{
	size_t n = w->gpfx;
	int ignored = 0;

	if (w->repo == NULL)
		return false;
	memcpy(w->gpath + n, w->path, w->len);
	n += w->len;
	if (dir)
		w->gpath[n++] = '/';
	w->gpath[n] = '\0';
	if (git_ignore_path_is_ignored(&ignored, w->repo, w->gpath) < 0) {
		/* An unreadable .gitignore lists the path rather than lose it. */
		log_debug("%s: git ignore %s: %s", w->root, w->gpath,
		    walk_git_msg());
		return false;
	}
	return ignored != 0;
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
	if (walk_push(&w->stack, w->path, w->len) == -1)
		return walk_nomem(w);
	return 0;
}

static int
walk_add_file(struct walk *w)
{
	switch (index_builder_add(w->b, w->path, w->len)) {
	case 0:
		w->st->files++;
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
	if (walk_excluded(w) || walk_git_ignored(w, kind == WALK_DIR)) {
		w->st->ignored++;
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
static int
walk_entry(struct walk *w, int dfd, const struct dirent *de)
{
	const char *name = de->d_name;
	size_t dlen = w->len, nlen;
	enum walk_kind kind;
	int r;

	if (walk_skip_name(w, name))
		return 0;
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
		return 0;
	}
}

/* Tells the caller (the watcher) about the directory just opened. */
static int
walk_enter(struct walk *w)
{
	w->st->dirs++;
	if (w->opts->on_dir == NULL ||
	    w->opts->on_dir(w->opts->arg, w->path, w->len) == 0)
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
	if ((r = walk_enter(w)) == 0) {
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

	if (walk_push(to, from->buf + off, from->len - off) == -1)
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
	/* Every thread opens the same repository: one warning is enough. */
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
	if (walk_open(&w, root, opts, b, st, err) == -1)
		return -1;
	if (walk_push(&w.stack, "", 0) == -1) {
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
	pthread_cond_destroy(&sh.cv);
	pthread_mutex_destroy(&sh.mu);
	walk_release(&w);
	errno = saved;
	return rc;
single_out:
	saved = errno;
	walk_release(&w);
	errno = saved;
	return rc;
}
