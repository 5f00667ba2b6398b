/*
 * test_gitstatus.c - repo_status() against git itself: each test makes a
 * real repository with the `git` command, puts it in one state, and
 * checks that the file statuses repo_status() finds are exactly those
 * `git status --porcelain=v1 -z` prints for the same repository (the
 * same set of "XY path <- orig" lines), then what git prints of the
 * branch, upstream, state and stash.
 * HOME points at a private directory, so no one's git config counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testsh.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../indexer/repo.h"

static char test_home[PATH_MAX];

struct fixture {
	char dir[PATH_MAX + 16];	/* the repository's top */
};


/* The first line of a command's output, without its newline. */
static void
sh_out(char *buf, size_t size, const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_non_null(p = popen(cmd, "r"));
	if (fgets(buf, (int)size, p) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	assert_int_equal(pclose(p), 0);
}

static int
group_setup(void **state)
{
	char cfg[PATH_MAX + 16];
	FILE *fp;

	(void)state;
	if (sh_git_home("/tmp/fidx-gitstatus-home-XXXXXX", test_home) == -1)
		return -1;
	snprintf(cfg, sizeof(cfg), "%s/.gitconfig", test_home);
	if ((fp = fopen(cfg, "w")) == NULL)
		return -1;
	fputs("[user]\n\tname = t\n\temail = t@example.com\n"
	    "[init]\n\tdefaultBranch = main\n"
	    "[protocol \"file\"]\n\tallow = always\n"
	    "[advice]\n\tdetachedHead = false\n", fp);
	return fclose(fp) == 0 ? 0 : -1;
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
	char tmpl[] = "/tmp/fidx-gitstatus-XXXXXX";
	struct fixture *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
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

	sh("rm -rf '%s' '%s.wt' '%s.src'", f->dir, f->dir, f->dir);
	free(f);
	return 0;
}

/* A repository at f->dir with the files a..h committed. */
static void
repo_base(struct fixture *f)
{
	sh("cd '%s' && git init -q && for n in a b c d e f g h; do "
	    "printf 'line one of %%s\\nline two\\nline three\\n' $n > $n; "
	    "done && git add . && git commit -qm base", f->dir);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the n lines in v and joins them into one string (caller frees). */
static char *
join_sorted(char **v, size_t n)
{
	size_t i, len = 1;
	char *out;

	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_str);
	for (i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	assert_non_null(out = malloc(len));
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		strcat(out, v[i]);
		strcat(out, "\n");
		free(v[i]);
	}
	free(v);
	return out;
}

/*
 * What git prints: `git status --porcelain=v1 -z` run in root (args
 * added), paths made relative to root by taking off prefix (root's
 * offset below the top, "" or "sub/"), one "XY path" line per entry,
 * " <- orig" after a rename's or copy's new path.
 */
static char *
git_lines(const char *root, const char *prefix, const char *args)
{
	char cmd[4 * PATH_MAX], *buf = NULL, *line, **v = NULL;
	size_t cap = 0, len = 0, n = 0, i, plen = strlen(prefix);
	FILE *p;
	int c;

	snprintf(cmd, sizeof(cmd), "cd '%s' && git status --porcelain=v1 -z "
	    "%s -- .", root, args);
	assert_non_null(p = popen(cmd, "r"));
	while ((c = fgetc(p)) != EOF) {
		if (len + 1 >= cap)
			assert_non_null(buf = realloc(buf, cap = 2 * cap + 256));
		buf[len++] = (char)c;
	}
	assert_int_equal(pclose(p), 0);
	for (i = 0; i < len; i += strlen(buf + i) + 1) {
		const char *path = buf + i + 3, *orig = NULL;

		line = buf + i;
		assert_true(strlen(line) > 3);
		if (line[0] == 'R' || line[0] == 'C') {
			i += strlen(buf + i) + 1;
			orig = buf + i;
		}
		if (strncmp(path, prefix, plen) == 0)
			path += plen;
		if (orig != NULL && strncmp(orig, prefix, plen) == 0)
			orig += plen;
		assert_non_null(v = realloc(v, (n + 1) * sizeof(*v)));
		assert_true(asprintf(&v[n], "%c%c %s%s%s", line[0], line[1],
		    path, orig != NULL ? " <- " : "", orig != NULL ? orig :
		    "") > 0);
		n++;
	}
	free(buf);
	return join_sorted(v, n);
}

/* The same lines from what repo_status() found. */
static char *
status_lines(const struct repo_status *s)
{
	char **v = calloc(s->nfiles + 1, sizeof(*v));
	size_t i;

	assert_non_null(v);
	for (i = 0; i < s->nfiles; i++) {
		const struct repo_status_file *e = &s->files[i];

		assert_int_equal(strlen(e->path), e->path_len);
		assert_true(asprintf(&v[i], "%c%c %s%s%s", e->index,
		    e->worktree, e->path, e->orig != NULL ? " <- " : "",
		    e->orig != NULL ? e->orig : "") > 0);
	}
	return join_sorted(v, s->nfiles);
}

/*
 * repo_status() of f->dir/sub, checked against git for the same options;
 * returns the status (the caller frees it).
 */
static struct repo_status *
check(struct fixture *f, const char *sub, bool all, bool ignored)
{
	struct repo_status_opts o = { .max_paths = 100000,
	    .untracked_all = all, .ignored = ignored };
	char root[2 * PATH_MAX], prefix[PATH_MAX], args[64], *want, *got;
	struct repo_status *s = NULL;
	struct fidx_err err = { "" };
	size_t n;

	snprintf(root, sizeof(root), "%s%s%s", f->dir, *sub ? "/" : "", sub);
	snprintf(prefix, sizeof(prefix), "%s%s", sub, *sub ? "/" : "");
	snprintf(args, sizeof(args), "%s %s", all ? "--untracked-files=all" :
	    "", ignored ? "--ignored" : "");
	if (repo_status(&s, root, &o, &err) != 0)
		fail_msg("repo_status(%s): %s", root, err.msg);
	want = git_lines(root, prefix, args);
	got = status_lines(s);
	if (strcmp(want, got) != 0)
		fail_msg("%s%s:\ngit status says:\n%srepo_status says:\n%s",
		    root, args, want, got);
	n = s->counts[REPO_COUNT_STAGED] + s->counts[REPO_COUNT_MODIFIED] +
	    s->counts[REPO_COUNT_UNTRACKED] + s->counts[REPO_COUNT_IGNORED] +
	    s->counts[REPO_COUNT_CONFLICTED];
	assert_true(n >= s->total);
	assert_false(s->truncated);
	free(want);
	free(got);
	return s;
}

/* The one entry for path, or NULL. */
static const struct repo_status_file *
entry(const struct repo_status *s, const char *path)
{
	size_t i;

	for (i = 0; i < s->nfiles; i++)
		if (strcmp(s->files[i].path, path) == 0)
			return &s->files[i];
	return NULL;
}

/*
 * Every kind of change at once: modified, staged, both, deleted (each
 * side), renamed, type change, added then modified, untracked files and
 * a whole untracked directory, ignored files and directories.
 */
static void
test_changes(void **state)
{
	struct fixture *f = *state;
	const struct repo_status_file *e;
	struct repo_status *s;

	repo_base(f);
	sh("cd '%s' && echo more >> a && echo more >> b && git add b && "
	    "echo more >> c && git add c && echo again >> c && rm d && "
	    "git rm -q e && git mv f renamed && rm g && ln -s a g && "
	    "echo new > n && git add n && echo more >> n && echo u > u && "
	    "mkdir -p newdir/deep && echo x > newdir/x && "
	    "echo y > newdir/deep/y && printf '*.log\\nbuild/\\n' > .gitignore "
	    "&& echo l > x.log && mkdir build && echo o > build/o && "
	    "mkdir onlyignored && echo l > onlyignored/y.log && mkdir empty",
	    f->dir);
	s = check(f, "", false, false);
	assert_non_null(e = entry(s, "renamed"));
	assert_int_equal(e->index, 'R');
	assert_string_equal(e->orig, "f");
	assert_non_null(e = entry(s, "g"));
	assert_int_equal(e->worktree, 'T');
	assert_non_null(entry(s, "newdir/"));
	assert_null(entry(s, "x.log"));
	assert_int_equal(s->counts[REPO_COUNT_UNTRACKED], 3);
	assert_int_equal(s->counts[REPO_COUNT_STAGED], 5);	/* b c e renamed n */
	assert_string_equal(s->branch, "main");
	assert_false(s->detached);
	assert_null(s->upstream);
	assert_int_equal(s->state, REPO_STATE_NONE);
	repo_status_free(s);
	repo_status_free(check(f, "", true, false));
	repo_status_free(check(f, "", false, true));
	repo_status_free(check(f, "", true, true));
}

/*
 * The rarer kinds: a mode change, intent to add (git add -N), a file
 * replaced by a directory, a nested repository (untracked: one entry;
 * it holds a file, as libgit2 1.5 does not list an empty one, which git
 * does),
 * a staged deletion whose file came back untracked, and names with
 * spaces, quotes and non-ASCII bytes.
 */
static void
test_rarer(void **state)
{
	struct fixture *f = *state;

	repo_base(f);
	sh("cd '%s' && chmod +x a && echo n > newi && git add -N newi && "
	    "rm b && mkdir b && echo x > b/inner && git init -q nested && "
	    "echo x > nested/x && "
	    "git rm -q --cached c && echo 'x' > 'sp ace' && "
	    "echo x > \"q\" && printf x > \"$(printf 'caf\\351')\" && "
	    "echo x > \"$(printf '\\303\\251t\\303\\251')\"", f->dir);
	repo_status_free(check(f, "", false, false));
	repo_status_free(check(f, "", true, true));
}

/* A root below the top: only its paths, relative to it. */
static void
test_subdir(void **state)
{
	struct fixture *f = *state;
	struct repo_status *s;

	repo_base(f);
	sh("cd '%s' && mkdir -p sub/in 'st*r' && echo 1 > sub/one && "
	    "echo 2 > 'st*r/two' && git add . && git commit -qm sub && "
	    "echo more >> sub/one && echo u > sub/in/u && echo more >> a && "
	    "echo more >> 'st*r/two' && echo u > stX", f->dir);
	s = check(f, "sub", false, false);
	assert_non_null(entry(s, "one"));
	assert_null(entry(s, "a"));
	repo_status_free(s);
	/* A '*' in the root's name is no glob: stX is not below st*r. */
	s = check(f, "st*r", false, false);
	assert_int_equal(s->nfiles, 1);
	repo_status_free(s);
}

/* Conflicts: both modified, both added, deleted by us, deleted by them. */
static void
test_conflict(void **state)
{
	struct fixture *f = *state;
	struct repo_status *s;

	repo_base(f);
	sh("cd '%s' && git checkout -q -b other && echo theirs > a && "
	    "echo theirs > both && git rm -q b && echo theirs > c && "
	    "git add . && git commit -qm other && git checkout -q main && "
	    "echo ours > a && echo ours > both && echo ours > b && git rm -q c "
	    "&& git add . && git commit -qm ours && "
	    "! git merge -q other >/dev/null 2>&1", f->dir);
	s = check(f, "", false, false);
	assert_int_equal(s->state, REPO_STATE_MERGE);
	assert_string_equal(repo_state_name(s->state), "merge");
	assert_int_equal(s->counts[REPO_COUNT_CONFLICTED], 4);
	assert_int_equal(entry(s, "a")->index, 'U');
	assert_int_equal(entry(s, "both")->index, 'A');
	repo_status_free(s);
}

/* Cherry-pick, revert and bisect are each named. */
static void
test_states(void **state)
{
	struct fixture *f = *state;
	struct repo_status *s;
	struct repo_status_opts o = { .max_paths = 10 };
	struct fidx_err err;

	repo_base(f);
	sh("cd '%s' && git checkout -q -b other && echo theirs > a && "
	    "git commit -qam other && git checkout -q main && echo ours > a && "
	    "git commit -qam ours && ! git cherry-pick other >/dev/null 2>&1",
	    f->dir);
	s = check(f, "", false, false);
	assert_string_equal(repo_state_name(s->state), "cherry-pick");
	repo_status_free(s);
	sh("cd '%s' && git cherry-pick --abort && "
	    "! git revert --no-edit HEAD~1 >/dev/null 2>&1", f->dir);
	s = check(f, "", false, false);
	assert_string_equal(repo_state_name(s->state), "revert");
	repo_status_free(s);
	sh("cd '%s' && git revert --abort && git bisect start -q 2>/dev/null "
	    "|| git bisect start >/dev/null", f->dir);
	assert_int_equal(repo_status(&s, f->dir, &o, &err), 0);
	assert_string_equal(repo_state_name(s->state), "bisect");
	repo_status_free(s);
}

/* Detached HEAD: the short id, as git rev-parse --short=7 gives it. */
static void
test_detached(void **state)
{
	struct fixture *f = *state;
	struct repo_status *s;
	char id[64];

	repo_base(f);
	sh("cd '%s' && echo 2 >> a && git commit -qam two && "
	    "git checkout -q --detach HEAD~1 && echo x >> b", f->dir);
	sh_out(id, sizeof(id), "cd '%s' && git rev-parse --short=7 HEAD",
	    f->dir);
	s = check(f, "", false, false);
	assert_true(s->detached);
	assert_string_equal(s->branch, id);
	assert_null(s->upstream);
	repo_status_free(s);
}

/* A branch tracking a local one, 2 ahead and 1 behind it. */
static void
test_ahead_behind(void **state)
{
	struct fixture *f = *state;
	struct repo_status *s;
	char counts[64];

	repo_base(f);
	sh("cd '%s' && git checkout -q --track -b feature main 2>/dev/null && "
	    "echo 1 >> a && git commit -qam 1 && echo 2 >> a && "
	    "git commit -qam 2 && git checkout -q main && echo 3 >> b && "
	    "git commit -qam 3 && git checkout -q feature", f->dir);
	sh_out(counts, sizeof(counts), "cd '%s' && git rev-list --left-right "
	    "--count feature...main", f->dir);
	assert_string_equal(counts, "2\t1");
	s = check(f, "", false, false);
	assert_string_equal(s->branch, "feature");
	assert_string_equal(s->upstream, "main");
	assert_int_equal(s->ahead, 2);
	assert_int_equal(s->behind, 1);
	repo_status_free(s);
}

/* Two stashes are counted; the tree they leave is clean. */
static void
test_stash(void **state)
{
	struct fixture *f = *state;
	struct repo_status *s;

	repo_base(f);
	sh("cd '%s' && echo 1 >> a && git stash -q && echo 2 >> b && "
	    "git stash -q && echo 3 >> c", f->dir);
	s = check(f, "", false, false);
	assert_int_equal(s->stash, 2);
	assert_int_equal(s->nfiles, 1);
	repo_status_free(s);
}

/*
 * Submodules are entries, their own files not listed: changed content,
 * only an untracked file, new commits, a new commit staged, one added
 * and not committed, one whose directory is gone, one not populated.
 * Leak checks run with no suppression: repo_submodules() keeps libgit2's
 * leaking .gitmodules reader out.
 */
static void
test_submodule(void **state)
{
	struct fixture *f = *state;
	struct repo_status *s;

	repo_base(f);
	sh("git init -q '%s.src' && cd '%s.src' && echo s > s && "
	    "git add s && git commit -qm s && cd '%s' && "
	    "for m in m1 m2 m3 m4 m5 m6; do "
	    "git submodule add -q '%s.src' $m 2>/dev/null || exit 1; done && "
	    "git commit -qm sm && echo changed > m1/s && echo u > m2/u && "
	    "(cd m3 && echo t >> s && git commit -qam t) && "
	    "(cd m4 && echo t >> s && git commit -qam t) && git add m4 && "
	    "rm -rf m5 && git submodule deinit -q m6 && "
	    "git submodule add -q '%s.src' m7 2>/dev/null",
	    f->dir, f->dir, f->dir, f->dir, f->dir);
	s = check(f, "", false, false);
	assert_non_null(entry(s, "m1"));
	assert_null(entry(s, "m1/s"));
	assert_int_equal(entry(s, "m4")->index, 'M');
	assert_int_equal(entry(s, "m7")->index, 'A');
	repo_status_free(s);
	repo_status_free(check(f, "", true, true));
}

/* A linked worktree: its own branch and changes. */
static void
test_worktree(void **state)
{
	struct fixture *f = *state;
	struct fixture wt;
	struct repo_status *s;

	repo_base(f);
	assert_true(strlen(f->dir) + 4 <= sizeof(wt.dir));
	strcpy(wt.dir, f->dir);
	strcat(wt.dir, ".wt");
	sh("cd '%s' && git worktree add -q -b other '%s' && cd '%s' && "
	    "echo 1 >> a && echo u > u && echo x >> b && git add b",
	    f->dir, wt.dir, wt.dir);
	s = check(&wt, "", false, false);
	assert_string_equal(s->branch, "other");
	assert_int_equal(s->nfiles, 3);
	repo_status_free(s);
	s = check(f, "", false, false);
	assert_int_equal(s->nfiles, 0);
	repo_status_free(s);
}

/* No commit yet: HEAD's branch by name, everything untracked or added. */
static void
test_unborn(void **state)
{
	struct fixture *f = *state;
	struct repo_status *s;

	sh("cd '%s' && git init -q && echo a > a && echo b > b && git add b",
	    f->dir);
	s = check(f, "", false, false);
	assert_string_equal(s->branch, "main");
	assert_int_equal(s->nfiles, 2);
	repo_status_free(s);
}

/* No repository, and a bare one: ENOENT and a message saying which. */
static void
test_not_a_repository(void **state)
{
	struct fixture *f = *state;
	struct repo_status_opts o = { .max_paths = 10 };
	struct repo_status *s = (struct repo_status *)f;
	struct fidx_err err = { "" };
	char bare[2 * PATH_MAX];

	assert_int_equal(repo_status(&s, f->dir, &o, &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_null(s);
	assert_non_null(strstr(err.msg, "not in a git work tree"));
	snprintf(bare, sizeof(bare), "%s/b.git", f->dir);
	sh("git init -q --bare '%s'", bare);
	assert_int_equal(repo_status(&s, bare, &o, &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err.msg, "bare"));
}

/*
 * The path cap at limit-1, limit and limit+1 entries: held up to the
 * cap, counted past it, and the block's size is exactly its header,
 * entries and the strings it holds.
 */
static void
test_max_paths(void **state)
{
	struct fixture *f = *state;
	struct repo_status_opts o = { 0 };
	struct repo_status *s;
	struct fidx_err err;
	size_t cap, i, strings;

	repo_base(f);
	sh("cd '%s' && for n in 1 2 3 4 5; do echo $n > u$n; done", f->dir);
	for (cap = 4; cap <= 6; cap++) {
		o.max_paths = cap;
		assert_int_equal(repo_status(&s, f->dir, &o, &err), 0);
		assert_int_equal(s->total, 5);
		assert_int_equal(s->nfiles, cap < 5 ? cap : 5);
		assert_int_equal(s->truncated, cap < 5);
		assert_int_equal(s->counts[REPO_COUNT_UNTRACKED], 5);
		strings = strlen(s->branch) + 1 + 1;
		for (i = 0; i < s->nfiles; i++)
			strings += s->files[i].path_len + 1;
		assert_int_equal(s->bytes, sizeof(*s) + s->nfiles *
		    sizeof(s->files[0]) + strings);
		repo_status_free(s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rarer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ahead_behind, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submodule, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_worktree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unborn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_repository, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_max_paths, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
