/*
 * test_walk.c - the directory walk over real trees and real git repos.
 *
 * Each test gets its own mkdtemp directory (removed by its teardown, which
 * cmocka runs even when the test fails), builds files, symlinks and git
 * repositories with system calls and the `git` command, walks it and
 * compares the listing as a sorted set, so readdir order never matters.
 * HOME points at a private directory for the whole run, so no one's
 * global git config or excludes file can change what is ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testsh.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/regex.h"
#include "../common/query.h"
#include "../indexer/index.h"
#include "../indexer/walk.h"

struct fixture {
	char dir[PATH_MAX];		/* the test's resolved temp directory */
	char root[2 * PATH_MAX];	/* what the last run() walked */
	struct index_builder b;
	struct walk_stats st;
	struct fidx_err err;
};

static char test_home[PATH_MAX];


static int
group_setup(void **state)
{
	(void)state;
	return sh_git_home("/tmp/fidx-walk-home-XXXXXX", test_home);
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
	char tmpl[] = "/tmp/fidx-walk-XXXXXX";
	struct fixture *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	if (mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL) {
		free(f);
		return -1;
	}
	index_builder_init(&f->b, SIZE_MAX, SIZE_MAX, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	alloc_fail_at(0);
	sh("chmod -R u+rwx '%s' && rm -rf '%s'", f->dir, f->dir);
	index_builder_release(&f->b);
	free(f);
	return 0;
}

/* Creates f->dir/rel and its parents: a directory if rel ends in '/'. */
static void
put_data(struct fixture *f, const char *rel, const char *data)
{
	char path[2 * PATH_MAX];
	size_t len;
	char *p;
	int fd;

	len = (size_t)snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	for (p = path + strlen(f->dir) + 1; (p = strchr(p, '/')) != NULL;
	    p++) {
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	if (path[len - 1] == '/')
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd == -1)
		fail_msg("create %s: %s", path, strerror(errno));
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void
put(struct fixture *f, const char *rel)
{
	put_data(f, rel, "x\n");
}

static void
unlink_at(struct fixture *f, const char *rel)
{
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	assert_int_equal(unlink(path), 0);
}

static void
link_at(struct fixture *f, const char *target, const char *rel)
{
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	assert_int_equal(symlink(target, path), 0);
}

/* Threads every walk uses: main() runs the whole suite with 1, then 3. */
static int walk_threads = 1;

/* Walks f->dir/sub (f->dir when sub is "") into a fresh builder. */
static int
run_capped(struct fixture *f, const char *sub, const struct walk_opts *o,
    size_t max_files, size_t max_bytes)
{
	struct walk_opts t = *o;

	t.threads = walk_threads;
	snprintf(f->root, sizeof(f->root), "%s%s%s", f->dir, *sub ? "/" : "",
	    sub);
	index_builder_release(&f->b);
	index_builder_init(&f->b, max_files, max_bytes, NULL);
	memset(&f->err, 0, sizeof(f->err));
	return walk_run(f->root, &t, &f->b, &f->st, &f->err);
}

static int
run(struct fixture *f, const char *sub, const struct walk_opts *o)
{
	return run_capped(f, sub, o, SIZE_MAX, SIZE_MAX);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the n strings and joins them with '\n' into a new string. */
static char *
join_sorted(char **v, size_t n)
{
	size_t i, len = 1;
	char *s;

	qsort(v, n, sizeof(*v), cmp_str);
	for (i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	s = calloc(1, len);
	assert_non_null(s);
	for (i = 0; i < n; i++) {
		strcat(s, v[i]);
		strcat(s, "\n");
	}
	return s;
}

/* Asserts the builder holds exactly the NULL-terminated set want. */
static void
assert_listing(const struct index_builder *b, const char *const *want)
{
	char **got, **exp, *gs, *ws;
	size_t i, nw = 0;

	while (want[nw] != NULL)
		nw++;
	got = calloc(b->n + 1, sizeof(*got));
	exp = calloc(nw + 1, sizeof(*exp));
	assert_true(got != NULL && exp != NULL);
	struct index_cursor c;

	assert_int_equal(index_cursor_init(&c, b), 0);
	for (i = 0; index_cursor_next(&c); i++) {
		assert_true(i < b->n);
		got[i] = strndup(c.path, c.e.len);
		assert_non_null(got[i]);
	}
	assert_int_equal(i, b->n);
	index_cursor_release(&c);
	for (i = 0; i < nw; i++)
		exp[i] = (char *)want[i];
	gs = join_sorted(got, b->n);
	ws = join_sorted(exp, nw);
	assert_string_equal(gs, ws);
	for (i = 0; i < b->n; i++)
		free(got[i]);
	free(got);
	free(exp);
	free(gs);
	free(ws);
}

static void
test_plain_tree(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	const char *want[] = { "a.txt", "src/main.c", "src/lib/util.c",
	    "docs/x/y/z.md", NULL };

	put(f, "a.txt");
	put(f, "src/main.c");
	put(f, "src/lib/util.c");
	put(f, "docs/x/y/z.md");
	put(f, "empty/");
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, want);
	assert_int_equal(f->st.files, 4);
	assert_int_equal(f->st.dirs, 7);	/* root, src, lib, docs, x, y, empty */
	assert_int_equal(f->st.ignored, 0);
	assert_false(f->b.capped);
}

static void
test_hidden(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	const char *shown[] = { "visible.txt", NULL };
	const char *all[] = { "visible.txt", ".hidden", ".config/app/conf",
	    "sub/.dotfile", NULL };

	put(f, "visible.txt");
	put(f, ".hidden");
	put(f, ".config/app/conf");
	put(f, "sub/.dotfile");
	put(f, ".git/HEAD");		/* not a repository: still skipped */
	put(f, "sub/.git");		/* a gitfile, as in a submodule */
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, shown);
	o.hidden = true;
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, all);
}

static void
test_gitignore(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	const char *want[] = { "a.c", "keep.log", "sub/keep.log",
	    "sub/top-only.txt", "local.txt", "sub/build", NULL };
	const char *hidden[] = { "a.c", "keep.log", "sub/keep.log",
	    "sub/top-only.txt", "local.txt", "sub/build", ".gitignore",
	    "sub/.gitignore", NULL };
	const char *off[] = { "a.c", "x.log", "keep.log", "sub/keep.log",
	    "build/out.o", "build/deep/y.o", "top-only.txt",
	    "sub/top-only.txt", "sub/local.txt", "local.txt", "secret.txt",
	    "sub/secret.txt", "sub/build", NULL };
	size_t i;

	sh("git init -q '%s'", f->dir);
	put_data(f, ".gitignore", "*.log\n!keep.log\nbuild/\n/top-only.txt\n");
	put_data(f, "sub/.gitignore", "local.txt\n");
	sh("echo secret.txt >> '%s/.git/info/exclude'", f->dir);
	for (i = 0; off[i] != NULL; i++)
		put(f, off[i]);

	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, want);
	/* x.log, build/, top-only.txt, sub/local.txt, both secret.txt */
	assert_int_equal(f->st.ignored, 6);
	assert_int_equal(f->st.dirs, 2);	/* build/ was not entered */

	o.hidden = true;
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, hidden);		/* and still no .git */

	o.hidden = false;
	o.gitignore = false;
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, off);
	assert_int_equal(f->st.ignored, 0);
}

/*
 * A repository owned by another user: libgit2 refuses it as git does, so
 * its rules do not apply, and the walk says so, naming safe.directory.
 * Only root can give a directory away; others skip.
 */
static void
test_git_not_owned(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	const char *all[] = { "a.c", "x.log", "sub/b.c", NULL };
	const char *ours[] = { "a.c", "sub/b.c", NULL };

	if (geteuid() != 0) {
		skip();
		return;
	}
	sh("git init -q '%s'", f->dir);
	put_data(f, ".gitignore", "*.log\n");
	put(f, "a.c");
	put(f, "x.log");
	put(f, "sub/b.c");
	sh("chown -R 65534:65534 '%s'", f->dir);
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, all);
	assert_true(f->st.git_refused);
	assert_non_null(strstr(f->st.warning, "owned by another user"));
	assert_non_null(strstr(f->st.warning, "safe.directory"));
	assert_non_null(strstr(f->st.warning, f->dir));
	/* From below the top, the same. */
	assert_int_equal(run(f, "sub", &o), 0);
	assert_true(f->st.git_refused);

	sh("chown -R 0:0 '%s'", f->dir);
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, ours);
	assert_false(f->st.git_refused);
	assert_string_equal(f->st.warning, "");

	/* Outside any repository: nothing to say. */
	sh("rm -rf '%s/.git'", f->dir);
	assert_int_equal(run(f, "", &o), 0);
	assert_false(f->st.git_refused);
}

static void
test_subdir_root(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	const char *want[] = { "a.c", "deeper/only-here.txt",
	    "deeper/anchored.txt", "keep.tmp", "deeper/nested/dir/m.c",
	    "important.log", NULL };
	const char *files[] = { "outside.c", "sub/a.c", "sub/x.log",
	    "sub/only-here.txt", "sub/deeper/only-here.txt", "sub/gen/g.c",
	    "sub/build/b.o", "sub/important.log", "sub/anchored.txt",
	    "sub/deeper/anchored.txt", "sub/t.tmp", "sub/deeper/u.tmp",
	    "sub/keep.tmp", "sub/deeper/sub", "sub/nested/dir/n.c",
	    "sub/deeper/nested/dir/m.c", NULL };
	size_t i;

	sh("git init -q '%s'", f->dir);
	put_data(f, ".gitignore", "*.log\n/sub/only-here.txt\nbuild/\n");
	put_data(f, "sub/.gitignore", "gen/\n");
	/*
	 * The root's .ignore, below the top of the work tree: anchored
	 * rules stay anchored at the root, unanchored ones never match the
	 * root itself ("sub"), blank and comment lines are no rules, and
	 * its negation beats the .gitignore's *.log.
	 */
	put_data(f, "sub/.ignore", "# comment\n\n   \n/anchored.txt\n*.tmp\n"
	    "!keep.tmp\nsub\nnested/dir/\n!important.log\n");
	for (i = 0; files[i] != NULL; i++)
		put(f, files[i]);

	assert_int_equal(run(f, "sub", &o), 0);
	assert_listing(&f->b, want);
	/*
	 * x.log, only-here.txt, gen/, build/, anchored.txt, t.tmp,
	 * deeper/u.tmp, deeper/sub, nested/dir/
	 */
	assert_int_equal(f->st.ignored, 9);
}

static void
test_ignore_file(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	const char *plain[] = { "a.c", "keep.tmp", "sub/build", NULL };
	const char *repo[] = { "keep.tmp", "sub/build", NULL };
	const char *files[] = { "a.c", "t.tmp", "keep.tmp", "build/b.c",
	    "sub/build", "sub/t.tmp", NULL };
	size_t i;

	put_data(f, ".ignore", "*.tmp\n/build\n!keep.tmp\n");
	put_data(f, ".gitignore", "a.c\n");
	for (i = 0; files[i] != NULL; i++)
		put(f, files[i]);

	/* Outside git: the .ignore applies, the .gitignore does not. */
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, plain);
	assert_int_equal(f->st.ignored, 3);

	/* The same tree as a work tree: both apply. */
	sh("git init -q '%s'", f->dir);
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, repo);
	assert_int_equal(f->st.ignored, 4);
}

/* An .ignore cut at its cap says so in the walk's warning, once. */
static void
test_ignore_file_cut(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	const char *want[] = { "a.c", "keep.c", NULL };
	size_t len = 0, cap = 1100 * 1024;
	char *text = malloc(cap + 1);
	const char *w;

	assert_non_null(text);
	len += (size_t)sprintf(text, "*.tmp\n");
	while (len < cap - 100)
		len += (size_t)sprintf(text + len, "# padding line %zu\n", len);
	/* Past the first MiB: dropped. */
	sprintf(text + len, "a.c\n");
	put_data(f, ".ignore", text);
	free(text);
	put(f, "a.c");
	put(f, "keep.c");
	put(f, "t.tmp");
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, want);
	w = f->st.warning;
	assert_non_null(strstr(w, "only the first"));
	assert_null(strstr(strstr(w, "only the first") + 1, "only the first"));
	assert_false(f->st.git_refused);

	unlink_at(f, ".ignore");
	assert_int_equal(run(f, "", &o), 0);
	assert_string_equal(f->st.warning, "");
}

static void
test_ignored_root(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	const char *want[] = { "a.c", "x.o", NULL };

	sh("git init -q '%s'", f->dir);
	put_data(f, ".gitignore", "build/\n");
	put_data(f, "build/.gitignore", "*.o\n");
	put(f, "build/a.c");
	put(f, "build/x.o");
	/* A root git ignores is walked as if outside git, not emptied. */
	assert_int_equal(run(f, "build", &o), 0);
	assert_listing(&f->b, want);
}

/* An exclude regex as fidxd compiles it (regex.h); free with rx_free. */
static struct regex *
compile(const char *re)
{
	struct regex *rx = calloc(1, sizeof(*rx));
	struct fidx_err e;

	assert_non_null(rx);
	assert_int_equal(regex_compile(rx, re, strlen(re), 0, "regex", &e), 0);
	return rx;
}

static void
rx_free(struct regex *rx)
{
	regex_release(rx);
	free(rx);
}

static void
test_exclude(void **state)
{
	struct fixture *f = *state;
	struct regex *re = compile("(^|/)node_modules$|\\.min\\.js$");
	struct walk_opts o = { .gitignore = true, .exclude = re };
	const char *want[] = { "app.js", "src/x.js", NULL };

	put(f, "node_modules/a/b.js");
	put(f, "src/node_modules/c.js");
	put(f, "app.min.js");
	put(f, "app.js");
	put(f, "src/x.js");
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, want);
	assert_int_equal(f->st.ignored, 3);
	assert_int_equal(f->st.dirs, 2);	/* neither node_modules entered */
	rx_free(re);
}

/*
 * A pattern PCRE2 gives up on (it backtracks past the match limit on a
 * long run of a's that a 'b' follows too late) neither excludes nor silently keeps: each such path
 * is listed and counted, and the warning says so once per walk.
 */
static void
test_exclude_errors(void **state)
{
	struct fixture *f = *state;
	struct regex *re = compile("^(a|a)*b");
	struct walk_opts o = { .gitignore = true, .exclude = re };
	char file[64], dir[64], in_dir[80];
	const char *want[] = { file, in_dir, "keep.c", NULL };
	const char *w;

	memset(file, 'a', 40);
	strcpy(file + 40, "!b");	/* a 'b' after all, or PCRE2 sees */
	memset(dir, 'a', 40);		/* at once that none can match */
	strcpy(dir + 40, "#b/x.c");
	snprintf(in_dir, sizeof(in_dir), "%s", dir);
	put(f, file);
	put(f, dir);
	put(f, "keep.c");
	put(f, "bx");		/* matched: excluded as ever */
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, want);
	assert_int_equal(f->st.ignored, 1);
	/* The file, the directory (still entered) and the file inside it. */
	assert_int_equal(f->st.exclude_errors, 3);
	w = f->st.warning;
	assert_non_null(strstr(w, "exclude regex gave up on 3 paths"));
	assert_null(strstr(strstr(w, "gave up") + 1, "gave up"));

	unlink_at(f, file);
	unlink_at(f, in_dir);
	assert_int_equal(run(f, "", &o), 0);
	assert_int_equal(f->st.exclude_errors, 1);	/* the directory */
	assert_non_null(strstr(f->st.warning, "gave up on 1 path ("));
	rx_free(re);
}

static void
test_symlinks(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	const char *want[] = { "real.txt", "dir/f.txt", "link_file", NULL };

	put(f, "real.txt");
	put(f, "dir/f.txt");
	link_at(f, ".", "loop");
	link_at(f, "real.txt", "link_file");
	link_at(f, "dir", "link_dir");
	link_at(f, "nowhere", "dangling");
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, want);
	assert_int_equal(f->st.symlinks_skipped, 3);
	assert_int_equal(f->st.dirs, 2);
}

static void
test_unreadable(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	const char *want[] = { "open.txt", NULL };
	char path[2 * PATH_MAX];

	put(f, "open.txt");
	put(f, "locked/secret.txt");
	snprintf(path, sizeof(path), "%s/locked", f->dir);
	assert_int_equal(chmod(path, 0), 0);
	assert_int_equal(run(f, "", &o), 0);
	if (geteuid() == 0) {
		/* root reads a mode-000 directory; nothing to count. */
		print_message("note: running as root, the unreadable-directory "
		    "count is not checked\n");
		assert_int_equal(f->st.files, 2);
		return;
	}
	assert_listing(&f->b, want);
	assert_int_equal(f->st.unreadable, 1);
}

static void
test_non_utf8(void **state)
{
	struct fixture *f = *state;
	struct regex *re = compile("zzz");
	struct walk_opts o = { .gitignore = true };
	const char *want[] = { "caf\xe9.txt", "\xff\xfe/x", NULL };

	put(f, "caf\xe9.txt");
	put(f, "\xff\xfe/x");
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, want);
	/* A pattern that matches neither name must not drop them. */
	o.exclude = re;
	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, want);
	assert_int_equal(f->st.exclude_errors, 0);
	rx_free(re);
}

/*
 * An exclude written for a name that is not UTF-8 excludes it: ".",
 * "[^/]" and "\xe9" take a Latin-1 byte (byte mode) as they take "é" in
 * a UTF-8 name (UTF mode), and the directory is not entered.
 */
static void
test_exclude_non_utf8(void **state)
{
	struct fixture *f = *state;
	/* "cafe" is "caf." too; only "\xe9" tells it apart. */
	const struct {
		const char *re;
		const char *want[3];
		size_t ignored, dirs;
	} t[] = {
		{ "^caf.$", { "x.txt", NULL }, 3, 1 },
		{ "^caf[^/]$", { "x.txt", NULL }, 3, 1 },
		{ "^caf\\xe9$", { "x.txt", "cafe/k.txt", NULL }, 2, 2 },
	};
	struct walk_opts o = { .gitignore = true };

	put(f, "caf\xe9/a.txt");		/* Latin-1 "café" */
	put(f, "caf\xe9/sub/b.txt");
	put(f, "caf\xc3\xa9/u.txt");	/* UTF-8 "café" */
	put(f, "cafe/k.txt");
	put(f, "x.txt");
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct regex *re = compile(t[i].re);

		o.exclude = re;
		assert_int_equal(run(f, "", &o), 0);
		assert_listing(&f->b, t[i].want);
		assert_int_equal(f->st.ignored, t[i].ignored);
		assert_int_equal(f->st.dirs, t[i].dirs);
		assert_int_equal(f->st.exclude_errors, 0);
		rx_free(re);
	}
}

#define CAP_N 5

static void
put_cap_tree(struct fixture *f)
{
	char name[] = "f0.txt";
	int i;

	for (i = 0; i < CAP_N; i++) {
		name[1] = (char)('0' + i);
		put(f, name);
	}
}

static void
test_cap_files(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	size_t cap;

	put_cap_tree(f);
	for (cap = CAP_N - 1; cap <= CAP_N + 1; cap++) {
		assert_int_equal(run_capped(f, "", &o, cap, SIZE_MAX), 0);
		assert_int_equal(f->b.n, cap < CAP_N ? cap : CAP_N);
		assert_int_equal(f->st.files, f->b.n);
		assert_int_equal(f->b.capped, cap < CAP_N);
	}
}

/* Empty directories hold no files, but waiting to be read they take room. */
static void
test_cap_pending_dirs(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	char name[] = "d0/";

	for (int i = 0; i < 8; i++) {
		name[1] = (char)('0' + i);
		put_data(f, name, "");
	}
	put(f, "d0/file");
	/* 8 directories wait at once under the root: a cap of 4 stops it. */
	assert_int_equal(run_capped(f, "", &o, 4, SIZE_MAX), 0);
	assert_true(f->b.capped);
	assert_true(f->b.n <= 4);
	/* With room for them all, the walk completes. */
	assert_int_equal(run_capped(f, "", &o, 9, SIZE_MAX), 0);
	assert_false(f->b.capped);
	assert_int_equal(f->b.n, 1);
}

static void
test_cap_bytes(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	size_t len = strlen("f0.txt");

	put_cap_tree(f);
	assert_int_equal(run_capped(f, "", &o, SIZE_MAX,
	    index_weight(3, 3 * len)), 0);
	assert_int_equal(f->b.n, 3);
	assert_true(f->b.capped);
	assert_int_equal(run_capped(f, "", &o, SIZE_MAX,
	    index_weight(3, 3 * len) - 1), 0);
	assert_int_equal(f->b.n, 2);
	assert_true(f->b.capped);
	assert_int_equal(run_capped(f, "", &o, SIZE_MAX,
	    index_weight(CAP_N, CAP_N * len)), 0);
	assert_int_equal(f->b.n, CAP_N);
	assert_false(f->b.capped);
}

static void
test_root_missing(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	char want[2 * PATH_MAX];

	errno = 0;
	assert_int_equal(run(f, "nope", &o), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(want, sizeof(want), "cannot open %s/nope: %s", f->dir,
	    strerror(ENOENT));
	assert_string_equal(f->err.msg, want);

	put(f, "file");
	errno = 0;
	assert_int_equal(run(f, "file", &o), -1);
	assert_int_equal(errno, ENOTDIR);
}

/* Creates name (a file, or a directory if dir) in dfd, of n copies of c. */
static int
make_at(int dfd, int c, size_t n, bool dir)
{
	char name[NAME_MAX + 1];
	int fd;

	memset(name, c, n);
	name[n] = '\0';
	if (dir) {
		assert_int_equal(mkdirat(dfd, name, 0755), 0);
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY);
	} else
		fd = openat(dfd, name, O_WRONLY | O_CREAT, 0644);
	assert_true(fd != -1);
	return fd;
}

static void
touch_at(int dfd, int c, size_t n)
{
	close(make_at(dfd, c, n, false));
}

/*
 * Twenty directories of 200 bytes make a 4019-byte path; under it the
 * listable limit (4096) is hit exactly and passed by one, for files and
 * for directories, and a 21st directory is too deep to enter.
 */
static void
test_too_long(void **state)
{
	struct fixture *f = *state;
	struct walk_opts o = { .gitignore = true };
	char deep[8192], a[8192], b[8192];
	const char *want[] = { a, b, NULL };
	size_t len = 0;
	int fd, sub, level;

	fd = open(f->dir, O_RDONLY | O_DIRECTORY);
	assert_true(fd != -1);
	for (level = 0; level < 20; level++) {
		sub = make_at(fd, 'd', 200, true);
		close(fd);
		fd = sub;
		if (level > 0)
			deep[len++] = '/';
		memset(deep + len, 'd', 200);
		len += 200;
	}
	deep[len] = '\0';
	assert_int_equal(len, 4019);

	touch_at(fd, 'f', 76);			/* 4096: listed */
	touch_at(fd, 'g', 77);			/* 4097: too long */
	sub = make_at(fd, 'h', 74, true);	/* 4094: entered */
	touch_at(sub, 'x', 1);			/* 4096: listed */
	close(sub);
	sub = make_at(fd, 'i', 75, true);	/* 4095: too deep to enter */
	touch_at(sub, 'y', 1);
	close(sub);
	sub = make_at(fd, 'd', 200, true);	/* 21st level */
	touch_at(sub, 'z', 1);
	close(sub);
	close(fd);

	memcpy(a, deep, len);
	a[len] = '/';
	memset(a + len + 1, 'f', 76);
	a[len + 1 + 76] = '\0';
	memcpy(b, deep, len);
	b[len] = '/';
	memset(b + len + 1, 'h', 74);
	strcpy(b + len + 1 + 74, "/x");
	assert_int_equal(strlen(a), FIDX_MAX_PATH_DEFAULT);
	assert_int_equal(strlen(b), FIDX_MAX_PATH_DEFAULT);

	assert_int_equal(run(f, "", &o), 0);
	assert_listing(&f->b, want);
	assert_int_equal(f->st.too_long, 3);
	assert_int_equal(f->st.dirs, 22);	/* root, 20 levels, hhh */
}

struct dirlog {
	char *seen[16];
	size_t n;
	const char *stop_at;		/* return non-zero on this one */
};

/* on_dir is called from every thread of a walk. */
static pthread_mutex_t dirlog_mu = PTHREAD_MUTEX_INITIALIZER;

static int
record_dir_locked(struct dirlog *l, const char *rel, size_t len)
{
	assert_int_equal(strlen(rel), len);
	assert_true(l->n < 16);
	l->seen[l->n] = strdup(rel);
	assert_non_null(l->seen[l->n]);
	l->n++;
	return l->stop_at != NULL && strcmp(rel, l->stop_at) == 0;
}

static int
record_dir(void *arg, const char *rel, size_t len, const struct stat *st)
{
	int r;

	/* The directory's own stat, taken as it was opened. */
	assert_true(S_ISDIR(st->st_mode));
	pthread_mutex_lock(&dirlog_mu);
	r = record_dir_locked(arg, rel, len);
	pthread_mutex_unlock(&dirlog_mu);
	return r;
}

static void
dirlog_free(struct dirlog *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->seen[i]);
}

static void
test_on_dir(void **state)
{
	struct fixture *f = *state;
	struct dirlog l = { .n = 0 };
	struct walk_opts o = { .gitignore = true, .on_dir = record_dir,
	    .arg = &l };
	char *want[] = { "", "a", "a/b", "a/b/c", "d", "e" };
	char *got, *exp;

	put(f, "a/b/c/file");
	put(f, "a/x");
	put(f, "d/");
	put(f, "e/.hidden/h");
	assert_int_equal(run(f, "", &o), 0);
	assert_true(l.n > 0);
	assert_string_equal(l.seen[0], "");	/* the root first */
	assert_int_equal(f->st.dirs, l.n);
	got = join_sorted(l.seen, l.n);
	exp = join_sorted(want, 6);
	assert_string_equal(got, exp);
	free(got);
	free(exp);
	dirlog_free(&l);
}

static void
test_on_dir_abort(void **state)
{
	struct fixture *f = *state;
	struct dirlog l = { .n = 0, .stop_at = "a/b" };
	struct walk_opts o = { .gitignore = true, .on_dir = record_dir,
	    .arg = &l };

	put(f, "a/b/c/file");
	put(f, "a/x/y");
	put(f, "d/e/f");
	assert_int_equal(run(f, "", &o), -1);
	assert_true(l.n > 0);
	if (walk_threads == 1) {
		assert_string_equal(l.seen[l.n - 1], "a/b");	/* nothing after */
	} else {
		/* Another thread may be one directory further; no more. */
		size_t i = 0;

		while (i < l.n && strcmp(l.seen[i], "a/b") != 0)
			i++;
		assert_true(i < l.n);
		assert_true(l.n - i <= (size_t)walk_threads);
	}
	assert_non_null(strstr(f->err.msg, "'a/b'"));
	dirlog_free(&l);
}

/*
 * Fails the 1st, 2nd, ... allocation of a walk that uses every buffer
 * (stack, builder, .ignore text, ignore paths) until one succeeds: each
 * failure must be -1 with ENOMEM and a message, and leak nothing.
 */
static void
test_oom(void **state)
{
	struct fixture *f = *state;
	struct regex *re = compile("\\.o$");
	struct walk_opts o = { .gitignore = true, .exclude = re };
	unsigned long n;
	int r;

	sh("git init -q '%s'", f->dir);
	put_data(f, "sub/.ignore", "*.tmp\n/top\n");
	put(f, "sub/a/b/c.txt");
	put(f, "sub/d/e.txt");
	put(f, "sub/x.o");
	for (n = 1; n < 100; n++) {
		alloc_fail_at(n);
		errno = 0;
		r = run(f, "sub", &o);
		if (!alloc_failed())
			break;
		assert_int_equal(r, -1);
		assert_int_equal(errno, ENOMEM);
		assert_non_null(strstr(f->err.msg, "out of memory"));
	}
	alloc_fail_at(0);
	assert_true(n > 1 && n < 100);
	assert_int_equal(r, 0);
	assert_int_equal(f->b.n, 2);	/* x.o is excluded */
	rx_free(re);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plain_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hidden, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gitignore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_git_not_owned, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_subdir_root, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ignore_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ignore_file_cut, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ignored_root, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_exclude, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclude_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_non_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclude_non_utf8, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cap_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_pending_dirs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cap_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_dir_abort, setup,
		    teardown),
		/* Last: the threaded run leaves it out (see main). */
		cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
	};
	size_t n = sizeof(tests) / sizeof(tests[0]);
	int failed;

	failed = _cmocka_run_group_tests("walk, 1 thread", tests, n,
	    group_setup, group_teardown);
	/*
	 * The same walks on 3 threads must find the same files. Failure
	 * injection counts allocations across threads, so the OOM walk
	 * stays single-threaded.
	 */
	walk_threads = 3;
	failed += _cmocka_run_group_tests("walk, 3 threads", tests, n - 1,
	    group_setup, group_teardown);
	return failed;
}
