/* repo.c - see repo.h. */
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

#include "../common/alloc.h"
#include "../common/log.h"
#include "../common/shquote.h"
#include "repo.h"

/*
 * One thread's ignore matcher. gpath holds the root's offset inside the
 * work tree ("sub/dir/", gpfx bytes, empty when the root is the top or
 * the repository is in memory), and after it the path being asked about.
 */
struct repo {
	git_repository *git;
	char *gpath;
	size_t gpfx;
};

static pthread_once_t repo_git_once = PTHREAD_ONCE_INIT;
static int repo_git_started;	/* git_libgit2_init()'s answer, once */
static struct repo_lib_limits repo_git_limits = {
	.cache_bytes = FIDX_GIT_OBJECT_CACHE_DEFAULT,
	.mapped_bytes = FIDX_GIT_MAPPED_DEFAULT,
};

void
repo_lib_limits(const struct repo_lib_limits *lim)
{
	repo_git_limits = *lim;
}

/* Once per process, undone at exit (repo.h). */
static void
repo_git_start(void)
{
	repo_git_started = git_libgit2_init();
	if (repo_git_started < 0)
		return;
	(void)git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE,
	    (ssize_t)repo_git_limits.cache_bytes);
	(void)git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT,
	    repo_git_limits.mapped_bytes);
}

void
repo_lib_shutdown(void)
{
	/* Starts nothing: pthread_once has run, or libgit2 never started. */
	if (repo_git_started > 0) {
		(void)git_libgit2_shutdown();
		repo_git_started = -1;	/* stats read nothing from here on */
	}
}

void
repo_lib_stats(struct repo_lib_stats *st)
{
	ssize_t cur = 0, max = 0;
	size_t mapped = 0;

	memset(st, 0, sizeof(*st));
	pthread_once(&repo_git_once, repo_git_start);
	if (repo_git_started < 0)
		return;
	if (git_libgit2_opts(GIT_OPT_GET_CACHED_MEMORY, &cur, &max) == 0) {
		st->cached_bytes = cur > 0 ? (size_t)cur : 0;
		st->cache_max_bytes = max > 0 ? (size_t)max : 0;
	}
	if (git_libgit2_opts(GIT_OPT_GET_MWINDOW_MAPPED_LIMIT, &mapped) == 0)
		st->mapped_limit_bytes = mapped;
}

static const char *
repo_git_msg(void)
{
	const git_error *e = git_error_last();

	return e != NULL && e->message != NULL ? e->message : "unknown error";
}

/* Adds a sentence for the user to n->warning (see struct repo_notes). */
__attribute__((format(printf, 2, 3)))
static void
repo_warn(struct repo_notes *n, const char *fmt, ...)
{
	char *buf = n->warning;
	size_t len = strlen(buf), size = n->size;
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
repo_nomem(const char *root, struct fidx_err *err)
{
	errno = ENOMEM;
	fidx_error(err, "ignore rules of %s: out of memory", root);
	errno = ENOMEM;
	return -1;
}

/*
 * Reads the root's .ignore into a NUL-terminated buffer (*out, NULL when
 * there is none). Only a regular file is read, so a fifo of that name
 * cannot block the walk. Returns -1 only when out of memory.
 */
static int
repo_ignore_read(const char *root, int rootfd, struct repo_notes *notes,
    char **out, struct fidx_err *err)
{
	struct stat sb;
	char *buf = NULL, *nl;
	size_t cap, len = 0;
	ssize_t n;
	int fd;

	*out = NULL;
	fd = openat(rootfd, ".ignore",
	    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		if (errno != ENOENT)
			repo_warn(notes, "%s/.ignore is not applied: %s", root,
			    strerror(errno));
		return 0;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode))
		goto out;
	cap = sb.st_size < REPO_IGNORE_FILE_MAX ? (size_t)sb.st_size :
	    REPO_IGNORE_FILE_MAX;
	if ((buf = fidx_malloc(cap + 1)) == NULL) {
		close(fd);
		return repo_nomem(root, err);
	}
	while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
		len += (size_t)n;
	if (sb.st_size > REPO_IGNORE_FILE_MAX) {
		repo_warn(notes, "%s/.ignore: only the first %d bytes are used",
		    root, REPO_IGNORE_FILE_MAX);
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
repo_ignore_anchor(char *out, const char *pfx, size_t plen,
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
repo_ignore_trim(const char *line, size_t len)
{
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' ||
	    line[len - 1] == '\r') && (len < 2 || line[len - 2] != '\\'))
		len--;
	return len;
}

/*
 * Adds each rule of text (the root's .ignore) to r->git. Blank lines,
 * comments and a lone "!" are skipped here: anchored below the top they
 * would become "/pfx/"-like rules that match the whole root.
 */
static int
repo_ignore_add(struct repo *r, const char *root, char *text,
    struct repo_notes *notes, struct fidx_err *err)
{
	char *line, *next, *rule;
	size_t len, tlen = strlen(text);

	if ((rule = fidx_malloc(r->gpfx + tlen + 6)) == NULL)
		return repo_nomem(root, err);
	for (line = text; *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		else
			next = line + strlen(line);
		len = repo_ignore_trim(line, strlen(line));
		if (len == 0 || line[0] == '#' || (len == 1 && line[0] == '!'))
			continue;
		if (r->gpfx == 0) {
			memcpy(rule, line, len);
			rule[len] = '\0';
		} else
			repo_ignore_anchor(rule, r->gpath, r->gpfx, line, len);
		if (git_ignore_add_rule(r->git, rule) < 0)
			repo_warn(notes, "%s/.ignore: the rule %s is not "
			    "applied: %s", root, rule, repo_git_msg());
	}
	free(rule);
	return 0;
}

/*
 * Makes gpath: the root's offset inside the work tree (olen bytes, a '/'
 * added when not empty), with room after it for any path asked about
 * plus a trailing '/'.
 */
static int
repo_gpath_init(struct repo *r, const char *root, const char *offset,
    size_t olen, struct fidx_err *err)
{
	if ((r->gpath = fidx_malloc(olen + 1 + REPO_PATH_MAX + 2)) == NULL)
		return repo_nomem(root, err);
	memcpy(r->gpath, offset, olen);
	if (olen > 0)
		r->gpath[olen++] = '/';
	r->gpath[olen] = '\0';
	r->gpfx = olen;
	return 0;
}

/*
 * The root's path below top, the top of its work tree ("" for the top
 * itself), or NULL when it is not below it (a worktree configured
 * elsewhere). Both paths are resolved, so symlinks cannot fool the
 * prefix test.
 */
static const char *
repo_root_offset(const char *real, const char *top)
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
repo_root_ignored(git_repository *git, const char *gpath, size_t gpfx)
{
	int ignored = 0;

	if (gpfx == 0)
		return false;
	if (git_ignore_path_is_ignored(&ignored, git, gpath) < 0)
		return false;
	return ignored != 0;
}

/*
 * Records in notes why the repository the root lies in was not opened,
 * if there is one. libgit2 1.5 refuses a repository owned by another
 * user (git's safe.directory check) with GIT_ENOTFOUND, the code for "no
 * repository" (later ones say GIT_EOWNER), so that case is told apart by
 * discovering the repository, which checks no owner. Either way what
 * is listed changes (git's ignore rules are not applied) without a word
 * unless we say so.
 */
static void
repo_refused(const char *root, int e, struct repo_notes *notes)
{
	char why[160], top[PATH_MAX], word[SHQUOTE_SIZE(PATH_MAX)];
	git_buf gitdir = { 0 };
	struct stat sb;
	size_t len;

	snprintf(why, sizeof(why), "%s", repo_git_msg());
	if (git_repository_discover(&gitdir, root, 0, NULL) < 0 ||
	    gitdir.ptr == NULL) {
		if (e != GIT_ENOTFOUND)
			log_info("%s: git: %s", root, why);
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
	shquote(word, sizeof(word), top);
	notes->refused = true;
	if (e == GIT_EOWNER || (stat(top, &sb) == 0 && sb.st_uid !=
	    geteuid()) || (stat(gitdir.ptr, &sb) == 0 && sb.st_uid !=
	    geteuid()))
		repo_warn(notes, "the git repository %s is owned by another "
		    "user, so, as git does, fidx does not use it: its ignore "
		    "rules are not applied (to trust it: git config --global "
		    "--add safe.directory %s)", top, word);
	else
		repo_warn(notes, "the git repository %s cannot be opened (%s): "
		    "its ignore rules are not applied", top, why);
	git_buf_dispose(&gitdir);
}

/*
 * The work-tree step repo_open() and repo_status() share: the repository
 * root lies in into *gitp (NULL: none, or one libgit2 refuses, noted by
 * repo_refused), and the root's offset below the top of its work tree
 * into *offp (the caller's to free; "" for the top itself), NULL when
 * there is no work tree (a bare repository) or the root is not below it.
 * Returns -1 with err only when memory runs out (nothing to release).
 */
static int
repo_worktree_find(const char *root, git_repository **gitp, char **offp,
    struct repo_notes *notes, struct fidx_err *err)
{
	git_repository *git = NULL;
	char *real = NULL, *top = NULL;
	const char *wd, *offset;
	int e, rc = 0;

	*gitp = NULL;
	*offp = NULL;
	if ((e = git_repository_open_ext(&git, root, 0, NULL)) < 0) {
		repo_refused(root, e, notes);
		return 0;
	}
	if ((wd = git_repository_workdir(git)) == NULL)
		goto out;
	if ((real = realpath(root, NULL)) == NULL ||
	    (top = realpath(wd, NULL)) == NULL) {
		if (errno == ENOMEM)
			rc = repo_nomem(root, err);
		goto out;
	}
	if ((offset = repo_root_offset(real, top)) == NULL)
		goto out;
	if ((*offp = fidx_strdup(offset)) == NULL)
		rc = repo_nomem(root, err);
out:
	free(real);
	free(top);
	if (rc == 0)
		*gitp = git;
	else
		git_repository_free(git);
	return rc;
}

/*
 * Opens the work tree the root lies in, if any, into r->git and makes
 * gpath. Not being in one is not an error, nor is a repository libgit2
 * refuses (not owned by us, corrupt): both mean no .gitignore rules, and
 * the second is noted for the user (repo_refused).
 */
static int
repo_worktree_open(struct repo *r, const char *root,
    struct repo_notes *notes, struct fidx_err *err)
{
	git_repository *git;
	char *offset;
	int rc;

	if ((rc = repo_worktree_find(root, &git, &offset, notes, err)) == -1)
		return -1;
	if (git == NULL || offset == NULL)
		goto out;
	if ((rc = repo_gpath_init(r, root, offset, strlen(offset),
	    err)) == -1)
		goto out;
	if (repo_root_ignored(git, r->gpath, r->gpfx)) {
		free(r->gpath);
		r->gpath = NULL;
		r->gpfx = 0;
		goto out;
	}
	r->git = git;
	git = NULL;
out:
	free(offset);
	git_repository_free(git);
	return rc;
}

/*
 * A repository with no workdir and an empty config, holding only the
 * root's .ignore rules: the matcher for a root outside git. The empty
 * config keeps the user's core.excludesFile out, as git's own rules are.
 */
static int
repo_memory(struct repo *r, const char *root, struct repo_notes *notes,
    struct fidx_err *err)
{
	git_config *cfg = NULL;

	if (git_repository_new(&r->git) < 0 || git_config_new(&cfg) < 0) {
		repo_warn(notes, "%s/.ignore is not applied: %s", root,
		    repo_git_msg());
		git_repository_free(r->git);
		r->git = NULL;
		return 0;
	}
	git_repository_set_config(r->git, cfg);
	git_config_free(cfg);
	return repo_gpath_init(r, root, "", 0, err);
}

int
repo_open(struct repo **out, const char *root, int rootfd,
    struct repo_notes *notes, struct fidx_err *err)
{
	struct repo *r;
	char *rules = NULL;
	int rc, saved;

	*out = NULL;
	pthread_once(&repo_git_once, repo_git_start);
	if (repo_git_started < 0) {
		repo_warn(notes, "the ignore rules of %s are not applied: "
		    "libgit2 cannot start (%s)", root, repo_git_msg());
		return 0;
	}
	if ((r = fidx_calloc(1, sizeof(*r))) == NULL)
		return repo_nomem(root, err);
	rc = repo_worktree_open(r, root, notes, err);
	if (rc == 0)
		rc = repo_ignore_read(root, rootfd, notes, &rules, err);
	if (rc == 0 && rules != NULL && r->git == NULL)
		rc = repo_memory(r, root, notes, err);
	if (rc == 0 && rules != NULL && r->git != NULL)
		rc = repo_ignore_add(r, root, rules, notes, err);
	free(rules);
	if (rc == 0 && r->git != NULL) {
		*out = r;
		return 0;
	}
	saved = errno;
	repo_close(r);
	errno = saved;
	return rc;
}

bool
repo_ignored(struct repo *r, const char *rel, size_t len, bool dir)
{
	size_t n = r != NULL ? r->gpfx : 0;
	int ignored = 0;

	if (r == NULL || len > REPO_PATH_MAX)
		return false;
	memcpy(r->gpath + n, rel, len);
	n += len;
	if (dir)
		r->gpath[n++] = '/';
	r->gpath[n] = '\0';
	if (git_ignore_path_is_ignored(&ignored, r->git, r->gpath) < 0) {
		/* An unreadable .gitignore lists the path rather than lose it. */
		log_debug("git ignore %s%s: %s",
		    git_repository_workdir(r->git) != NULL ?
		    git_repository_workdir(r->git) : "", r->gpath,
		    repo_git_msg());
		return false;
	}
	return ignored != 0;
}

void
repo_close(struct repo *r)
{
	if (r == NULL)
		return;
	git_repository_free(r->git);
	free(r->gpath);
	free(r);
}

static const char *const repo_state_names[REPO_STATE_COUNT] = {
	[REPO_STATE_NONE] = NULL,
	[REPO_STATE_MERGE] = "merge",
	[REPO_STATE_REBASE] = "rebase",
	[REPO_STATE_CHERRY_PICK] = "cherry-pick",
	[REPO_STATE_REVERT] = "revert",
	[REPO_STATE_BISECT] = "bisect",
	[REPO_STATE_AM] = "am",
};

const char *
repo_state_name(enum repo_state s)
{
	return (unsigned)s < REPO_STATE_COUNT ? repo_state_names[s] : NULL;
}

static enum repo_state
repo_state_of(git_repository *git)
{
	switch (git_repository_state(git)) {
	case GIT_REPOSITORY_STATE_MERGE:
		return REPO_STATE_MERGE;
	case GIT_REPOSITORY_STATE_REVERT:
	case GIT_REPOSITORY_STATE_REVERT_SEQUENCE:
		return REPO_STATE_REVERT;
	case GIT_REPOSITORY_STATE_CHERRYPICK:
	case GIT_REPOSITORY_STATE_CHERRYPICK_SEQUENCE:
		return REPO_STATE_CHERRY_PICK;
	case GIT_REPOSITORY_STATE_BISECT:
		return REPO_STATE_BISECT;
	case GIT_REPOSITORY_STATE_REBASE:
	case GIT_REPOSITORY_STATE_REBASE_INTERACTIVE:
	case GIT_REPOSITORY_STATE_REBASE_MERGE:
		return REPO_STATE_REBASE;
	case GIT_REPOSITORY_STATE_APPLY_MAILBOX:
	case GIT_REPOSITORY_STATE_APPLY_MAILBOX_OR_REBASE:
		return REPO_STATE_AM;
	default:
		return REPO_STATE_NONE;
	}
}

/*
 * How deep repo_dir_has_file() looks for a file below an ignored
 * directory before it takes the directory as holding one: a tree of
 * empty directories deeper than this is rare, and listing it is the
 * safe side.
 */
#define REPO_EMPTY_DIR_DEPTH 8

/* One entry before it is copied into the block. */
struct repo_entry {
	const char *path, *orig;	/* libgit2's, relative to the top */
	char x, y;
};

/*
 * The unmerged pair git prints for a conflict, from which of the three
 * stages the index holds (git's wt-status.c: 1 base, 2 ours, 4 theirs).
 */
static void
repo_conflict_letters(git_index *idx, const char *path, struct repo_entry *e)
{
	static const char pairs[8][3] = { "UU", "DD", "AU", "UD", "UA",
	    "DU", "AA", "UU" };
	const git_index_entry *anc = NULL, *ours = NULL, *theirs = NULL;
	unsigned mask = 0;

	if (idx != NULL && git_index_conflict_get(&anc, &ours, &theirs, idx,
	    path) == 0)
		mask = (anc != NULL) | (ours != NULL) << 1 |
		    (theirs != NULL) << 2;
	e->x = pairs[mask][0];
	e->y = pairs[mask][1];
}

static char
repo_index_letter(unsigned st)
{
	if (st & GIT_STATUS_INDEX_RENAMED)
		return 'R';
	if (st & GIT_STATUS_INDEX_NEW)
		return 'A';
	if (st & GIT_STATUS_INDEX_MODIFIED)
		return 'M';
	if (st & GIT_STATUS_INDEX_DELETED)
		return 'D';
	if (st & GIT_STATUS_INDEX_TYPECHANGE)
		return 'T';
	return ' ';
}

static char
repo_worktree_letter(unsigned st)
{
	if (st & GIT_STATUS_WT_RENAMED)
		return 'R';
	if (st & GIT_STATUS_WT_MODIFIED)
		return 'M';
	if (st & GIT_STATUS_WT_DELETED)
		return 'D';
	if (st & GIT_STATUS_WT_TYPECHANGE)
		return 'T';
	return ' ';
}

/*
 * True when the directory dfd (closed here) holds a file at any depth,
 * looked for no deeper than depth levels. git lists an ignored directory
 * only then; libgit2 1.5 also lists an empty one (`empty/` under
 * --ignored, which git never prints). It stops at the first file, so an
 * ignored node_modules costs one read of its first directory.
 */
static bool
repo_dir_has_file(int dfd, int depth)
{
	struct dirent *d;
	bool found = false;
	DIR *dir;
	int fd;

	if ((dir = fdopendir(dfd)) == NULL) {
		close(dfd);
		return true;		/* unreadable: keep git's entry */
	}
	while (!found && (d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (d->d_type != DT_DIR && d->d_type != DT_UNKNOWN)
			found = true;
		else if (depth <= 0)
			found = true;
		else if ((fd = openat(dirfd(dir), d->d_name, O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
			found = d->d_type != DT_DIR || errno != ENOTDIR;
		else
			found = repo_dir_has_file(fd, depth - 1);
	}
	closedir(dir);
	return found;
}

/* An ignored directory entry ("build/") with no file below it. */
static bool
repo_ignored_empty(git_repository *git, const char *path)
{
	char full[PATH_MAX];
	const char *wd = git_repository_workdir(git);
	size_t len = strlen(path);
	int fd;

	if (wd == NULL || len == 0 || path[len - 1] != '/' ||
	    (size_t)snprintf(full, sizeof(full), "%s%s", wd, path) >=
	    sizeof(full))
		return false;
	if ((fd = open(full, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return false;
	return !repo_dir_has_file(fd, REPO_EMPTY_DIR_DEPTH);
}

/* True when idx holds path as an intent-to-add entry (git add -N). */
static bool
repo_intent_to_add(git_index *idx, const char *path)
{
	const git_index_entry *ie = idx != NULL ?
	    git_index_get_bypath(idx, path, 0) : NULL;

	return ie != NULL &&
	    (ie->flags_extended & GIT_INDEX_ENTRY_INTENT_TO_ADD) != 0;
}

/*
 * True for an untracked directory entry ("b/") whose name the index
 * holds as a file: a file replaced by a directory. git lists only the
 * deletion (" D b"), libgit2 1.5 the directory too.
 */
static bool
repo_dir_over_file(git_index *idx, const char *path)
{
	char name[PATH_MAX];
	size_t len = strlen(path);

	if (idx == NULL || len < 2 || len > sizeof(name) ||
	    path[len - 1] != '/')
		return false;
	memcpy(name, path, len - 1);
	name[len - 1] = '\0';
	return git_index_get_bypath(idx, name, 0) != NULL;
}

/*
 * Fills e[0] (and e[1]) from libgit2's entry, as git would print it:
 * returns how many lines that is, 0 to 2. Two for a deletion staged
 * while the file is still there: git prints "D  c" and "?? c", libgit2
 * has one entry with both flags.
 */
static int
repo_entry_of(git_repository *git, const git_status_entry *se,
    git_index *idx, struct repo_entry *e)
{
	const git_diff_delta *h = se->head_to_index, *w = se->index_to_workdir;
	unsigned st = se->status;

	if (st == GIT_STATUS_CURRENT || (h == NULL && w == NULL))
		return 0;
	e->orig = NULL;
	if (h != NULL) {
		e->path = h->new_file.path;
		if (h->status == GIT_DELTA_RENAMED ||
		    h->status == GIT_DELTA_COPIED)
			e->orig = h->old_file.path;
	} else
		e->path = w->old_file.path != NULL ? w->old_file.path :
		    w->new_file.path;
	if (st & GIT_STATUS_CONFLICTED)
		repo_conflict_letters(idx, e->path, e);
	else if (st & GIT_STATUS_IGNORED) {
		if (repo_ignored_empty(git, e->path))
			return 0;
		e->x = e->y = '!';
	} else if ((st & GIT_STATUS_WT_NEW) && repo_index_letter(st) == ' ') {
		if (repo_dir_over_file(idx, e->path))
			return 0;
		e->x = e->y = '?';
	} else if ((st & GIT_STATUS_INDEX_NEW) &&
	    repo_intent_to_add(idx, e->path)) {
		/* git add -N: nothing staged yet, the file is to come. */
		e->x = ' ';
		e->y = (st & GIT_STATUS_WT_DELETED) ? 'D' : 'A';
	} else {
		e->x = repo_index_letter(st);
		e->y = repo_worktree_letter(st);
		if ((st & GIT_STATUS_INDEX_DELETED) &&
		    (st & GIT_STATUS_WT_NEW)) {
			e->y = ' ';
			e[1] = e[0];
			e[1].x = e[1].y = '?';
			return 2;
		}
	}
	return e->x != ' ' || e->y != ' ' ? 1 : 0;
}

static void
repo_count(struct repo_status *s, const struct repo_entry *e)
{
	if (e->x == '?')
		s->counts[REPO_COUNT_UNTRACKED]++;
	else if (e->x == '!')
		s->counts[REPO_COUNT_IGNORED]++;
	else if (e->x == 'U' || e->y == 'U' || (e->x == e->y &&
	    (e->x == 'A' || e->x == 'D')))
		s->counts[REPO_COUNT_CONFLICTED]++;
	else {
		if (e->x != ' ')
			s->counts[REPO_COUNT_STAGED]++;
		if (e->y != ' ')
			s->counts[REPO_COUNT_MODIFIED]++;
	}
}

/* p relative to the root: its offset (olen bytes, no '/') taken off. */
static const char *
repo_rel(const char *p, const char *off, size_t olen)
{
	if (olen > 0 && strncmp(p, off, olen) == 0 && p[olen] == '/')
		return p + olen + 1;
	return p;
}

static int
repo_stash_one(size_t i, const char *msg, const git_oid *id, void *arg)
{
	(void)i;
	(void)msg;
	(void)id;
	(*(size_t *)arg)++;
	return 0;
}

/*
 * HEAD's branch (or short id, detached), its upstream and the distance
 * to it: into buffers branch and upstream (empty: none). An unborn
 * branch (no commit yet) is named from HEAD's symbolic target, as git
 * does. Errors leave what was found: the status itself matters more.
 */
static void
repo_head(git_repository *git, struct repo_status *s, char *branch,
    size_t bsize, char *upstream, size_t usize)
{
	git_reference *head = NULL, *up = NULL, *sym = NULL;
	const git_oid *a, *b;
	const char *t;
	int e;

	branch[0] = upstream[0] = '\0';
	if ((e = git_repository_head(&head, git)) < 0) {
		if (e == GIT_EUNBORNBRANCH &&
		    git_reference_lookup(&sym, git, "HEAD") == 0 &&
		    (t = git_reference_symbolic_target(sym)) != NULL)
			snprintf(branch, bsize, "%s",
			    strncmp(t, "refs/heads/", 11) == 0 ? t + 11 : t);
		git_reference_free(sym);
		return;
	}
	if (git_repository_head_detached(git) == 1) {
		s->detached = true;
		if ((a = git_reference_target(head)) != NULL)
			git_oid_tostr(branch, bsize < 8 ? bsize : 8, a);
		goto out;
	}
	snprintf(branch, bsize, "%s", git_reference_shorthand(head));
	if (git_branch_upstream(&up, head) < 0)
		goto out;
	snprintf(upstream, usize, "%s", git_reference_shorthand(up));
	a = git_reference_target(head);
	b = git_reference_target(up);
	if (a != NULL && b != NULL)
		git_graph_ahead_behind(&s->ahead, &s->behind, git, a, b);
out:
	git_reference_free(up);
	git_reference_free(head);
}

/* A growing list of entries, gathered before the block is made. */
struct repo_entries {
	struct repo_entry *v;
	size_t n, cap;
};

static int
repo_entries_add(struct repo_entries *es, const struct repo_entry *e)
{
	struct repo_entry *v;

	if (es->n == es->cap) {
		size_t cap = es->cap ? 2 * es->cap : 64;

		if ((v = fidx_reallocarray(es->v, cap, sizeof(*v))) == NULL)
			return -1;
		es->v = v;
		es->cap = cap;
	}
	es->v[es->n++] = *e;
	return 0;
}

static int
repo_entry_cmp(const void *a, const void *b)
{
	const struct repo_entry *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	/* Two lines for one path ("D " then "??"): git's order. */
	return c != 0 ? c : (x->x == '?') - (y->x == '?');
}

/*
 * True when the work tree sub (a submodule's repository, open) differs
 * from its HEAD: a change or an untracked file, which git shows as " M"
 * on the submodule. Its own submodules are not looked into.
 */
static bool
repo_sub_dirty(git_repository *sub)
{
	git_status_options so;
	git_status_list *list = NULL;
	bool dirty;

	if (git_status_options_init(&so, GIT_STATUS_OPTIONS_VERSION) < 0)
		return false;
	so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED |
	    GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	if (git_status_list_new(&list, sub, &so) < 0)
		return false;
	dirty = git_status_list_entrycount(list) > 0;
	git_status_list_free(list);
	return dirty;
}

/*
 * The submodules' entries, found from the index's gitlinks (below the
 * root's offset, off, olen bytes), not by libgit2's submodule code:
 * libgit2 1.5.1 leaks a PCRE2 block (~20 KiB) per .gitmodules key it
 * reads through a regex that does not match (fixed in 1.6, pull
 * request 6382), which a daemon asking every few seconds cannot pay, so
 * the status list is made with GIT_STATUS_OPT_EXCLUDE_SUBMODULES and
 * this gives what git prints instead: X 'A' (not in HEAD) or 'M' (HEAD
 * records another commit), Y 'D' (its directory gone) or 'M' (checked
 * out at another commit, or changed, or with untracked files). An
 * unpopulated submodule shows nothing, as in git.
 * NEEDSWORK: a submodule removed from the index (git rm) is not listed.
 */
static int
repo_submodules(git_repository *git, git_index *idx, const char *off,
    size_t olen, struct repo_entries *es)
{
	const char *wd = git_repository_workdir(git);
	git_reference *href = NULL;
	git_object *tree = NULL;
	size_t i, n = git_index_entrycount(idx);
	int rc = 0;

	if (git_repository_head(&href, git) == 0)
		git_reference_peel(&tree, href, GIT_OBJECT_TREE);
	for (i = 0; i < n && rc == 0; i++) {
		const git_index_entry *ie = git_index_get_byindex(idx, i);
		git_tree_entry *te = NULL;
		git_repository *sub = NULL;
		struct repo_entry e = { .x = ' ', .y = ' ' };
		char full[PATH_MAX];
		struct stat sb;
		git_oid head;

		if (ie == NULL || ie->mode != GIT_FILEMODE_COMMIT ||
		    git_index_entry_stage(ie) != 0 || (olen > 0 &&
		    (strncmp(ie->path, off, olen) != 0 ||
		    ie->path[olen] != '/')))
			continue;
		e.path = ie->path;
		if (tree == NULL || git_tree_entry_bypath(&te,
		    (git_tree *)tree, ie->path) < 0)
			e.x = 'A';
		else if (!git_oid_equal(git_tree_entry_id(te), &ie->id))
			e.x = 'M';
		git_tree_entry_free(te);
		if ((size_t)snprintf(full, sizeof(full), "%s%s", wd,
		    ie->path) >= sizeof(full))
			continue;
		if (lstat(full, &sb) == -1 && errno == ENOENT)
			e.y = 'D';
		else if (git_repository_open_ext(&sub, full,
		    GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0) {
			if (git_reference_name_to_id(&head, sub, "HEAD") == 0 &&
			    (!git_oid_equal(&head, &ie->id) ||
			    repo_sub_dirty(sub)))
				e.y = 'M';
			git_repository_free(sub);
		}
		if (e.x != ' ' || e.y != ' ')
			rc = repo_entries_add(es, &e);
	}
	git_object_free(tree);
	git_reference_free(href);
	return rc;
}

/*
 * Copies what was found into one block: the header, nfiles entries, the
 * arena. The entries are gathered first (libgit2's list, the
 * submodules), sorted by path, then counted and copied, so the block is
 * allocated once, at its exact size.
 */
static int
repo_status_build(struct repo_status **out, git_repository *git,
    git_status_list *list,
    git_index *idx, const struct repo_status *head, const char *branch,
    const char *upstream, const char *off, const struct repo_status_opts *o,
    const char *root, struct fidx_err *err)
{
	size_t i, n = git_status_list_entrycount(list), nfiles = 0, used;
	size_t hsize, arena = strlen(branch) + 1 + strlen(upstream) + 1;
	size_t olen = strlen(off);
	struct repo_entries es = { 0 };
	struct repo_status *s;
	struct repo_entry ev[2];
	int k, m;
	char *p;

	for (i = 0; i < n; i++) {
		m = repo_entry_of(git, git_status_byindex(list, i), idx, ev);
		for (k = 0; k < m; k++)
			if (repo_entries_add(&es, &ev[k]) == -1)
				goto nomem;
	}
	if (repo_submodules(git, idx, off, olen, &es) == -1)
		goto nomem;
	if (es.n > 0)
		qsort(es.v, es.n, sizeof(*es.v), repo_entry_cmp);
	for (i = 0; i < es.n && i < o->max_paths; i++) {
		nfiles++;
		arena += strlen(repo_rel(es.v[i].path, off, olen)) + 1;
		if (es.v[i].orig != NULL)
			arena += strlen(repo_rel(es.v[i].orig, off, olen)) + 1;
	}
	hsize = sizeof(*s) + nfiles * sizeof(struct repo_status_file);
	if ((s = fidx_malloc(hsize + arena)) == NULL)
		goto nomem;
	*s = *head;
	s->bytes = hsize + arena;
	s->files = (struct repo_status_file *)(s + 1);
	s->total = es.n;
	s->nfiles = nfiles;
	s->truncated = nfiles < es.n;
	p = (char *)s + hsize;
	used = strlen(branch) + 1;
	memcpy(p, branch, used);
	s->branch = p;
	p += used;
	used = strlen(upstream) + 1;
	memcpy(p, upstream, used);
	s->upstream = used > 1 ? p : NULL;
	p += used;
	for (i = 0; i < es.n; i++) {
		const struct repo_entry *e = &es.v[i];
		struct repo_status_file *f = &s->files[i];
		const char *rel;

		repo_count(s, e);
		if (i >= nfiles)
			continue;
		rel = repo_rel(e->path, off, olen);
		used = strlen(rel) + 1;
		memcpy(p, rel, used);
		f->path = p;
		f->path_len = (uint32_t)(used - 1);
		p += used;
		f->orig = NULL;
		if (e->orig != NULL) {
			rel = repo_rel(e->orig, off, olen);
			used = strlen(rel) + 1;
			memcpy(p, rel, used);
			f->orig = p;
			p += used;
		}
		f->index = e->x;
		f->worktree = e->y;
	}
	free(es.v);
	*out = s;
	return 0;
nomem:
	free(es.v);
	return repo_nomem(root, err);
}

int
repo_status(struct repo_status **out, const char *root,
    const struct repo_status_opts *o, struct fidx_err *err)
{
	git_status_options so;
	git_status_list *list = NULL;
	git_repository *git = NULL;
	git_index *idx = NULL;
	struct repo_status head = { 0 };
	char warning[512] = "", branch[256], upstream[256];
	struct repo_notes notes = { .warning = warning,
	    .size = sizeof(warning) };
	char *off = NULL, *spec;
	int rc = -1;

	*out = NULL;
	pthread_once(&repo_git_once, repo_git_start);
	if (repo_git_started < 0 ||
	    git_status_options_init(&so, GIT_STATUS_OPTIONS_VERSION) < 0) {
		fidx_error(err, "%s: libgit2 cannot start (%s)", root,
		    repo_git_msg());
		errno = EIO;
		return -1;
	}
	if (repo_worktree_find(root, &git, &off, &notes, err) == -1)
		return -1;
	if (git == NULL || off == NULL) {
		fidx_error(err, "%s is not in a git work tree%s%s", root,
		    git != NULL ? " (a bare repository has none)" :
		    warning[0] != '\0' ? ": " : "", git != NULL ? "" : warning);
		errno = ENOENT;
		goto fail;
	}
	so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	/* Submodules are repo_submodules()'s: it says why. */
	so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED |
	    GIT_STATUS_OPT_EXCLUDE_SUBMODULES |
	    GIT_STATUS_OPT_RENAMES_HEAD_TO_INDEX |
	    (o->untracked_all ? GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS : 0) |
	    (o->ignored ? GIT_STATUS_OPT_INCLUDE_IGNORED : 0) |
	    (o->ignored && o->untracked_all ?
	    GIT_STATUS_OPT_RECURSE_IGNORED_DIRS : 0);	/* as git -uall */
	if (off[0] != '\0') {
		/* A literal prefix: a '*' in a directory name is no glob. */
		spec = off;
		so.pathspec.strings = &spec;
		so.pathspec.count = 1;
		so.flags |= GIT_STATUS_OPT_DISABLE_PATHSPEC_MATCH;
	}
	if (git_status_list_new(&list, git, &so) < 0 ||
	    git_repository_index(&idx, git) < 0) {
		fidx_error(err, "git status of %s: %s", root, repo_git_msg());
		errno = EIO;
		goto fail;
	}
	repo_head(git, &head, branch, sizeof(branch), upstream,
	    sizeof(upstream));
	head.state = repo_state_of(git);
	git_stash_foreach(git, repo_stash_one, &head.stash);
	rc = repo_status_build(out, git, list, idx, &head, branch, upstream, off,
	    o, root, err);
fail:
	git_index_free(idx);
	git_status_list_free(list);
	git_repository_free(git);
	free(off);
	return rc;
}

void
repo_status_free(struct repo_status *s)
{
	free(s);
}
