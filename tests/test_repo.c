/*
 * test_repo.c - the libgit2 module alone: repo_open() and repo_ignored()
 * over real directories and real git repositories (made with `git`).
 * The walk's own tests (test_walk.c) check the same rules end to end;
 * these ask the module directly, as the git cache will.
 * HOME points at a private directory, so no one's global git config or
 * excludes file can change what is ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testsh.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../indexer/repo.h"

struct fixture {
	char dir[PATH_MAX];
	char warning[512];
	struct repo_notes notes;
	struct fidx_err err;
	int fd;
};

static char test_home[PATH_MAX];


static int
group_setup(void **state)
{
	(void)state;
	return sh_git_home("/tmp/fidx-repo-home-XXXXXX", test_home);
}

static int
group_teardown(void **state)
{
	(void)state;
	sh("rm -rf '%s'", test_home);
	return 0;
}

static int
setup(void **state)
{
	char tmpl[] = "/tmp/fidx-repo-XXXXXX";
	struct fixture *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	f->fd = -1;
	if (mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	alloc_fail_at(0);
	if (f->fd != -1)
		close(f->fd);
	sh("chmod -R u+rwx '%s' && rm -rf '%s'", f->dir, f->dir);
	free(f);
	return 0;
}

/* Creates f->dir/rel with data, and its parents. */
static void
put_data(struct fixture *f, const char *rel, const char *data)
{
	char path[2 * PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	sh("mkdir -p \"$(dirname '%s')\"", path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd != -1);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

/* repo_open() of f->dir/sub, with fresh notes; returns its result. */
static int
open_at(struct fixture *f, const char *sub, struct repo **r)
{
	char root[2 * PATH_MAX];

	snprintf(root, sizeof(root), "%s%s%s", f->dir, *sub ? "/" : "", sub);
	if (f->fd != -1)
		close(f->fd);
	f->fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->fd != -1);
	f->warning[0] = '\0';
	f->notes = (struct repo_notes){ .warning = f->warning,
	    .size = sizeof(f->warning) };
	memset(&f->err, 0, sizeof(f->err));
	return repo_open(r, root, f->fd, &f->notes, &f->err);
}

static bool
ignored(struct repo *r, const char *rel, bool dir)
{
	return repo_ignored(r, rel, strlen(rel), dir);
}

/* Outside git and with no .ignore there are no rules: no handle at all. */
static void
test_no_rules(void **state)
{
	struct fixture *f = *state;
	struct repo *r = (struct repo *)f;	/* must be overwritten */

	put_data(f, ".gitignore", "*.c\n");
	assert_int_equal(open_at(f, "", &r), 0);
	assert_null(r);
	assert_false(ignored(r, "a.c", false));
	assert_string_equal(f->warning, "");
	assert_false(f->notes.refused);
	repo_close(r);
}

/* Outside git the root's .ignore alone applies, .gitignore does not. */
static void
test_ignore_file_alone(void **state)
{
	struct fixture *f = *state;
	struct repo *r;

	put_data(f, ".ignore", "*.tmp\nbuild/\n!keep.tmp\n/top.txt\n");
	put_data(f, ".gitignore", "*.c\n");
	assert_int_equal(open_at(f, "", &r), 0);
	assert_non_null(r);
	assert_true(ignored(r, "x.tmp", false));
	assert_true(ignored(r, "deep/er/x.tmp", false));
	assert_false(ignored(r, "keep.tmp", false));
	assert_true(ignored(r, "build", true));
	assert_false(ignored(r, "build", false));	/* a file: "build/" is not */
	assert_true(ignored(r, "top.txt", false));
	assert_false(ignored(r, "sub/top.txt", false));
	assert_false(ignored(r, "a.c", false));
	assert_string_equal(f->warning, "");
	repo_close(r);
}

/*
 * A root below the top of a work tree: paths are asked relative to the
 * root, git's rules (the top's .gitignore, info/exclude) and the root's
 * .ignore apply, each with its own anchoring.
 */
static void
test_worktree_subdir(void **state)
{
	struct fixture *f = *state;
	struct repo *r;

	sh("git init -q '%s'", f->dir);
	put_data(f, ".gitignore", "*.log\n/sub/only.txt\n");
	put_data(f, "sub/.ignore", "/anchored.txt\n*.tmp\n!keep.log\n");
	sh("echo secret.txt >> '%s/.git/info/exclude'", f->dir);
	assert_int_equal(open_at(f, "sub", &r), 0);
	assert_non_null(r);
	assert_true(ignored(r, "x.log", false));
	assert_false(ignored(r, "keep.log", false));	/* .ignore wins */
	assert_true(ignored(r, "only.txt", false));
	assert_true(ignored(r, "secret.txt", false));
	assert_true(ignored(r, "anchored.txt", false));
	assert_false(ignored(r, "d/anchored.txt", false));
	assert_true(ignored(r, "d/x.tmp", false));
	assert_false(ignored(r, "a.c", false));
	repo_close(r);
}

/* A root git ignores is treated as outside git: nothing below it is. */
static void
test_ignored_root(void **state)
{
	struct fixture *f = *state;
	struct repo *r;

	sh("git init -q '%s'", f->dir);
	put_data(f, ".gitignore", "build/\n");
	put_data(f, "build/x.o", "");
	assert_int_equal(open_at(f, "build", &r), 0);
	assert_null(r);
	put_data(f, "build/.ignore", "*.o\n");
	assert_int_equal(open_at(f, "build", &r), 0);
	assert_non_null(r);
	assert_true(ignored(r, "x.o", false));
	assert_false(ignored(r, "a.c", false));
	repo_close(r);
}

/*
 * What repo_open() tells the user goes to the caller's buffer, joined
 * with "; ", and a buffer too small is cut, never overrun.
 */
static void
test_notes(void **state)
{
	struct fixture *f = *state;
	char small[12];
	struct repo_notes n = { .warning = small, .size = sizeof(small) };
	struct repo *r;

	put_data(f, ".ignore", "*.tmp\n");
	if (geteuid() != 0) {
		char path[2 * PATH_MAX];

		snprintf(path, sizeof(path), "%s/.ignore", f->dir);
		assert_int_equal(chmod(path, 0), 0);
		assert_int_equal(open_at(f, "", &r), 0);
		assert_null(r);
		assert_non_null(strstr(f->warning, ".ignore is not applied"));
		assert_non_null(strstr(f->warning, strerror(EACCES)));
		assert_int_equal(chmod(path, 0644), 0);
	}
	/* An oversized .ignore is cut, and says so. */
	{
		size_t cap = REPO_IGNORE_FILE_MAX + 100, len = 0;
		char *text = malloc(cap + 1);

		assert_non_null(text);
		while (len < cap - 40)
			len += (size_t)sprintf(text + len, "# pad %zu\n", len);
		put_data(f, ".ignore", text);
		free(text);
	}
	assert_int_equal(open_at(f, "", &r), 0);
	assert_non_null(strstr(f->warning, "only the first"));
	repo_close(r);

	small[0] = '\0';
	assert_int_equal(repo_open(&r, f->dir, f->fd, &n, &f->err), 0);
	assert_true(strlen(small) < sizeof(small));
	assert_true(strlen(small) > 0);
	repo_close(r);
}

/* A path past REPO_PATH_MAX is never asked (and never overruns). */
static void
test_path_max(void **state)
{
	struct fixture *f = *state;
	char *p = malloc(REPO_PATH_MAX + 2);
	struct repo *r;

	assert_non_null(p);
	put_data(f, ".ignore", "*x\n");
	assert_int_equal(open_at(f, "", &r), 0);
	memset(p, 'x', REPO_PATH_MAX + 1);
	p[REPO_PATH_MAX + 1] = '\0';
	assert_true(repo_ignored(r, p, REPO_PATH_MAX, false));
	assert_false(repo_ignored(r, p, REPO_PATH_MAX + 1, false));
	repo_close(r);
	free(p);
}

/* Fails each allocation of an open in turn: -1, ENOMEM, no leak. */
static void
test_oom(void **state)
{
	struct fixture *f = *state;
	struct repo *r;
	unsigned long n;
	int rc;

	sh("git init -q '%s'", f->dir);
	put_data(f, "sub/.ignore", "*.tmp\n");
	for (n = 1; n < 50; n++) {
		alloc_fail_at(n);
		errno = 0;
		rc = open_at(f, "sub", &r);
		if (!alloc_failed())
			break;
		assert_int_equal(rc, -1);
		assert_int_equal(errno, ENOMEM);
		assert_null(r);
		assert_non_null(strstr(f->err.msg, "out of memory"));
	}
	alloc_fail_at(0);
	assert_true(n > 1 && n < 50);
	assert_int_equal(rc, 0);
	assert_true(ignored(r, "a.tmp", false));
	repo_close(r);
}

/*
 * The threads rule of repo.h: one handle per thread, all on one root,
 * asked at once, each answers as it would alone.
 */
struct asker {
	struct repo *r;
	pthread_t tid;
	int wrong;
};

static void *
asker_main(void *arg)
{
	struct asker *a = arg;
	char path[64];

	for (int i = 0; i < 2000; i++) {
		snprintf(path, sizeof(path), "d%d/f%d.%s", i % 7, i,
		    i % 2 ? "log" : "c");
		if (ignored(a->r, path, false) != (i % 2 == 1))
			a->wrong++;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct fixture *f = *state;
	struct asker a[4];

	sh("git init -q '%s'", f->dir);
	put_data(f, ".gitignore", "*.log\n");
	for (int i = 0; i < 4; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		assert_int_equal(open_at(f, "", &a[i].r), 0);
		assert_non_null(a[i].r);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&a[i].tid, NULL, asker_main,
		    &a[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(a[i].tid, NULL);
		assert_int_equal(a[i].wrong, 0);
		repo_close(a[i].r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ignore_file_alone, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_worktree_subdir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ignored_root, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_notes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_max, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
