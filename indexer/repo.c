/* repo.c - see repo.h. */
#include <sys/stat.h>
#include <sys/types.h>

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

/* Once per process, never undone: repo.h says why. */
static void
repo_git_start(void)
{
	repo_git_started = git_libgit2_init();
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
 * Opens the work tree the root lies in, if any, into r->git and makes
 * gpath. Not being in one is not an error, nor is a repository libgit2
 * refuses (not owned by us, corrupt): both mean no .gitignore rules, and
 * the second is noted for the user (repo_refused).
 */
static int
repo_worktree_open(struct repo *r, const char *root,
    struct repo_notes *notes, struct fidx_err *err)
{
	git_repository *git = NULL;
	char *real = NULL, *top = NULL;
	const char *wd, *offset;
	int e, rc = 0;

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
	free(real);
	free(top);
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
