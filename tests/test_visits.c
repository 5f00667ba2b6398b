/*
 * test_visits.c - the frecency store: decay, the LRU bounds, the file.
 *
 * Time is a fake clock (T0 and offsets from it), so decay is checked to
 * 1e-9 at exact half-lives. Bounds are checked at limit - 1, limit and
 * limit + 1, per project and in all, and against a reference model over
 * thousands of random visits (which also exercises the hash tables'
 * deletions). The store file is written to a mkdtemp directory per test,
 * removed by the teardown even when a test fails: round trips must give
 * the same scores and the same LRU order, a failed save must leave the
 * old file and no temporary one, every kind of bad line must be skipped
 * and counted (a bad header or size refuses the whole file) with a message
 * naming the line, and a file that did not load whole must be kept, byte
 * for byte, before a save replaces it. Allocation failures are
 * injected one by one (alloc_fail_at) into add and load.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testsh.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../indexer/visits.h"

#define T0 ((int64_t)1795000000)
#define DAY ((int64_t)24 * 3600)
#define H ((int64_t)VISITS_HALF_LIFE_DEFAULT)

struct fixture {
	char dir[PATH_MAX];		/* the test's temp directory */
	char file[PATH_MAX + 32];	/* dir/visits.json */
	struct visits *v;
	struct fidx_err err;
};


static struct visits_limits
limits(size_t per_project, size_t total)
{
	struct visits_limits lim;

	visits_limits_default(&lim);
	lim.per_project = per_project;
	lim.total = total;
	return lim;
}

static struct visits *
store(size_t per_project, size_t total)
{
	struct visits_limits lim = limits(per_project, total);
	struct visits *v = visits_new(&lim);

	assert_non_null(v);
	return v;
}

static int
setup(void **state)
{
	char tmpl[] = "/tmp/fidx-visits-XXXXXX";
	struct fixture *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	if (mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->file, sizeof(f->file), "%s/visits.json", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	alloc_fail_at(0);
	visits_free(f->v);
	sh("chmod -R u+rwx '%s' && rm -rf '%s'", f->dir, f->dir);
	free(f);
	return 0;
}

static int
add(struct visits *v, const char *root, const char *path, int64_t now)
{
	return visits_add(v, root, path, strlen(path), now);
}

static double
score(const struct visits *v, const char *root, const char *path,
    int64_t now)
{
	return visits_score(v, root, path, strlen(path), now);
}

static bool
has(const struct visits *v, const char *root, const char *path)
{
	return score(v, root, path, T0) > 0;
}

static struct visits_counts
counts(const struct visits *v)
{
	struct visits_counts c;

	visits_counts(v, &c);
	return c;
}

static void
put_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd == -1)
		fail_msg("create %s: %s", path, strerror(errno));
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* The file's bytes (NUL-terminated, for strstr); free() them. */
static char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	if (fd == -1)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	if (len != NULL)
		*len = (size_t)st.st_size;
	return buf;
}

/* Names in dir, "." and ".." aside. */
static int
dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
test_limits(void **state)
{
	struct visits_limits lim, bad;
	struct visits *v;

	(void)state;
	visits_limits_default(&lim);
	assert_int_equal(lim.per_project, 1000);
	assert_int_equal(lim.total, 20000);
	assert_int_equal(lim.half_life_s, 7 * 24 * 3600);
	assert_int_equal(lim.max_file_bytes, 16 * 1024 * 1024);
	v = visits_new(&lim);
	assert_non_null(v);
	assert_false(visits_dirty(v));
	assert_int_equal(counts(v).entries, 0);
	assert_int_equal(counts(v).projects, 0);
	assert_null(visits_project(v, "/a"));
	assert_true(score(v, "/a", "x", T0) == 0);
	visits_free(v);
	visits_free(NULL);

	bad = lim, bad.per_project = 0;
	errno = 0;
	assert_null(visits_new(&bad));
	assert_int_equal(errno, EINVAL);
	bad = lim, bad.total = 0;
	assert_null(visits_new(&bad));
	bad = lim, bad.half_life_s = 0;
	assert_null(visits_new(&bad));
	bad = lim, bad.max_file_bytes = VISITS_MAX_FILE_MIN - 1;
	assert_null(visits_new(&bad));
	bad = lim, bad.total = (size_t)VISITS_ENTRIES_CEILING + 1;
	assert_null(visits_new(&bad));
}

/* Five visits a month ago weigh less than one today. */
static void
test_frecency_order(void **state)
{
	struct fixture *f = *state;
	const struct visits_project *p;
	double old, today, busy;

	f->v = store(100, 100);
	for (int i = 0; i < 5; i++)
		assert_int_equal(add(f->v, "/r", "old.c", T0 - 30 * DAY), 0);
	assert_int_equal(add(f->v, "/r", "today.c", T0), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(add(f->v, "/r", "busy.c", T0), 0);
	old = score(f->v, "/r", "old.c", T0);
	today = score(f->v, "/r", "today.c", T0);
	busy = score(f->v, "/r", "busy.c", T0);
	assert_true(fabs(old - 5 * exp2(-30.0 / 7)) < 1e-9);
	assert_true(fabs(today - 1) < 1e-9);
	assert_true(fabs(busy - 5) < 1e-9);
	assert_true(busy > today && today > old && old > 0);
	/* Never visited, or another project: 0. */
	assert_true(score(f->v, "/r", "never.c", T0) == 0);
	assert_true(score(f->v, "/other", "today.c", T0) == 0);
	/* The hot path gives the same numbers. */
	p = visits_project(f->v, "/r");
	assert_non_null(p);
	assert_true(visits_project_score(p, "old.c", 5, T0) == old);
	assert_true(visits_project_score(p, "busy.c", 6, T0) == busy);
	assert_true(visits_project_score(p, "never.c", 7, T0) == 0);
	assert_true(visits_project_score(NULL, "old.c", 5, T0) == 0);
	assert_null(visits_project(f->v, "/other"));
	assert_int_equal(counts(f->v).entries, 3);
	assert_int_equal(counts(f->v).projects, 1);
}

static void
test_decay(void **state)
{
	struct fixture *f = *state;

	f->v = store(100, 100);
	assert_int_equal(add(f->v, "/r", "a", T0), 0);
	assert_true(fabs(score(f->v, "/r", "a", T0) - 1) < 1e-9);
	assert_true(fabs(score(f->v, "/r", "a", T0 + H) - 0.5) < 1e-9);
	assert_true(fabs(score(f->v, "/r", "a", T0 + 2 * H) - 0.25) < 1e-9);
	assert_true(fabs(score(f->v, "/r", "a", T0 + H / 2) - M_SQRT1_2) <
	    1e-9);
	/* A visit one half-life later: w = 1 * 1/2 + 1. */
	assert_int_equal(add(f->v, "/r", "a", T0 + H), 0);
	assert_true(fabs(score(f->v, "/r", "a", T0 + H) - 1.5) < 1e-9);
	assert_true(fabs(score(f->v, "/r", "a", T0 + 2 * H) - 0.75) < 1e-9);
	/* The clock stepping back never inflates a score... */
	assert_true(fabs(score(f->v, "/r", "a", T0) - 1.5) < 1e-9);
	/* ...and a visit "in the past" still counts 1, undecayed. */
	assert_int_equal(add(f->v, "/r", "a", T0), 0);
	assert_true(fabs(score(f->v, "/r", "a", T0 + H) - 2.5) < 1e-9);
	assert_true(fabs(score(f->v, "/r", "a", T0 + 2 * H) - 1.25) < 1e-9);
	/* Far in the future, everything fades to 0, never below. */
	assert_true(score(f->v, "/r", "a", T0 + 10000 * H) >= 0);
	assert_true(score(f->v, "/r", "a", T0 + 10000 * H) < 1e-300);
}

static void
test_project_bounds(void **state)
{
	struct fixture *f = *state;

	f->v = store(3, 100);
	assert_int_equal(add(f->v, "/other", "keep", T0), 0);
	/* limit - 1 */
	assert_int_equal(add(f->v, "/r", "f0", T0 + 1), 0);
	assert_int_equal(add(f->v, "/r", "f1", T0 + 2), 0);
	assert_int_equal(counts(f->v).entries, 3);
	assert_int_equal(counts(f->v).evicted, 0);
	/* limit */
	assert_int_equal(add(f->v, "/r", "f2", T0 + 3), 0);
	assert_int_equal(counts(f->v).entries, 4);
	assert_int_equal(counts(f->v).evicted, 0);
	assert_true(has(f->v, "/r", "f0"));
	/* limit + 1: f0, the project's least recent, goes. */
	assert_int_equal(add(f->v, "/r", "f3", T0 + 4), 0);
	assert_int_equal(counts(f->v).entries, 4);
	assert_int_equal(counts(f->v).evicted, 1);
	assert_false(has(f->v, "/r", "f0"));
	assert_true(has(f->v, "/r", "f1"));
	assert_true(has(f->v, "/r", "f2"));
	assert_true(has(f->v, "/r", "f3"));
	/* Another project's older entry is not the project's to evict. */
	assert_true(has(f->v, "/other", "keep"));
	/* A re-visit of f1 makes f2 the least recent. */
	assert_int_equal(add(f->v, "/r", "f1", T0 + 5), 0);
	assert_int_equal(counts(f->v).evicted, 1);
	assert_int_equal(add(f->v, "/r", "f4", T0 + 6), 0);
	assert_int_equal(counts(f->v).evicted, 2);
	assert_false(has(f->v, "/r", "f2"));
	assert_true(has(f->v, "/r", "f1"));
	assert_true(has(f->v, "/r", "f3"));
	assert_true(has(f->v, "/r", "f4"));
	assert_true(has(f->v, "/other", "keep"));
	assert_int_equal(counts(f->v).projects, 2);
	/* Re-visits never evict. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(add(f->v, "/r", "f3", T0 + 7 + i), 0);
	assert_int_equal(counts(f->v).evicted, 2);
	assert_int_equal(counts(f->v).entries, 4);
}

static void
test_total_bounds(void **state)
{
	struct fixture *f = *state;

	f->v = store(10, 4);
	/* limit - 1, across two projects */
	assert_int_equal(add(f->v, "/a", "a0", T0 + 1), 0);
	assert_int_equal(add(f->v, "/b", "b0", T0 + 2), 0);
	assert_int_equal(add(f->v, "/a", "a1", T0 + 3), 0);
	assert_int_equal(counts(f->v).entries, 3);
	/* limit */
	assert_int_equal(add(f->v, "/b", "b1", T0 + 4), 0);
	assert_int_equal(counts(f->v).entries, 4);
	assert_int_equal(counts(f->v).evicted, 0);
	/* limit + 1: a0, the least recent of all, goes. */
	assert_int_equal(add(f->v, "/b", "b2", T0 + 5), 0);
	assert_int_equal(counts(f->v).entries, 4);
	assert_int_equal(counts(f->v).evicted, 1);
	assert_false(has(f->v, "/a", "a0"));
	assert_true(has(f->v, "/b", "b0"));
	/* A re-visit of b0 makes a1 the least recent of all. */
	assert_int_equal(add(f->v, "/b", "b0", T0 + 6), 0);
	assert_int_equal(add(f->v, "/c", "c0", T0 + 7), 0);
	assert_int_equal(counts(f->v).evicted, 2);
	assert_false(has(f->v, "/a", "a1"));
	/* /a lost its last entry: the project is gone too. */
	assert_null(visits_project(f->v, "/a"));
	assert_int_equal(counts(f->v).projects, 2);
	assert_true(has(f->v, "/b", "b0"));
	assert_true(has(f->v, "/b", "b1"));
	assert_true(has(f->v, "/b", "b2"));
	assert_true(has(f->v, "/c", "c0"));
}

/* A store of one entry per project, and of one in all. */
static void
test_bounds_of_one(void **state)
{
	struct fixture *f = *state;

	f->v = store(1, 1);
	assert_int_equal(add(f->v, "/a", "x", T0), 0);
	assert_int_equal(add(f->v, "/a", "y", T0 + 1), 0);
	assert_false(has(f->v, "/a", "x"));
	assert_true(has(f->v, "/a", "y"));
	assert_int_equal(counts(f->v).projects, 1);
	assert_int_equal(add(f->v, "/b", "x", T0 + 2), 0);
	assert_false(has(f->v, "/a", "y"));
	assert_true(has(f->v, "/b", "x"));
	assert_null(visits_project(f->v, "/a"));
	assert_int_equal(counts(f->v).projects, 1);
	assert_int_equal(counts(f->v).entries, 1);
	assert_int_equal(counts(f->v).evicted, 2);
}

/* Minimal LRU model: entries with the sequence number of their last visit. */
struct model_entry {
	int proj, path;
	unsigned long seq;
	bool live;
};

/*
 * Thousands of random visits against the model: same entries, same
 * evictions. Small bounds and many distinct paths make the hash tables
 * delete constantly, so a broken backward shift loses entries here.
 */
static void
test_model(void **state)
{
	enum { PROJ = 4, PATHS = 60, PER = 9, TOTAL = 25, OPS = 20000 };
	struct fixture *f = *state;
	static struct model_entry m[PROJ * PATHS];
	unsigned long seq = 0, evicted = 0, live = 0;
	uint32_t rng = 12345;
	char root[16], path[16];

	memset(m, 0, sizeof(m));
	f->v = store(PER, TOTAL);
	for (int op = 0; op < OPS; op++) {
		int pr, pa, n_proj = 0, n_all = 0, victim = -1;
		struct model_entry *e;

		rng = rng * 1103515245u + 12345u;
		pr = (int)(rng >> 16) % PROJ;
		rng = rng * 1103515245u + 12345u;
		/* A skewed choice, so some paths are re-visited often. */
		pa = (int)((rng >> 16) % PATHS);
		if (op % 3 == 0)
			pa %= 5;
		e = &m[pr * PATHS + pa];
		snprintf(root, sizeof(root), "/p%d", pr);
		snprintf(path, sizeof(path), "dir/f%d", pa);
		assert_int_equal(add(f->v, root, path, T0 + op), 0);
		if (!e->live) {
			for (int i = 0; i < PROJ * PATHS; i++) {
				n_all += m[i].live;
				n_proj += m[i].live && i / PATHS == pr;
			}
			for (int i = 0; i < PROJ * PATHS; i++) {
				if (!m[i].live)
					continue;
				/* A full project gives up its own oldest. */
				if (n_proj >= PER && i / PATHS != pr)
					continue;
				if (victim == -1 || m[i].seq < m[victim].seq)
					victim = i;
			}
			if (n_proj >= PER || n_all >= TOTAL) {
				assert_true(victim != -1);
				m[victim].live = false;
				evicted++;
			}
			e->live = true;
		}
		e->seq = ++seq;
	}
	for (int i = 0; i < PROJ * PATHS; i++) {
		snprintf(root, sizeof(root), "/p%d", i / PATHS);
		snprintf(path, sizeof(path), "dir/f%d", i % PATHS);
		assert_int_equal(has(f->v, root, path), m[i].live);
		live += m[i].live;
	}
	assert_int_equal(counts(f->v).entries, live);
	assert_int_equal(counts(f->v).evicted, evicted);
	assert_true(evicted > 1000);
}

static void
test_refused(void **state)
{
	struct fixture *f = *state;
	char longp[VISITS_MAX_PATH + 2];

	f->v = store(10, 10);
	memset(longp, 'x', sizeof(longp));
	longp[VISITS_MAX_PATH + 1] = '\0';
	errno = 0;
	assert_int_equal(visits_add(f->v, "/r", "", 0, T0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(visits_add(f->v, "/r", "a\0b", 3, T0), -1);
	assert_int_equal(visits_add(f->v, "/r", longp, VISITS_MAX_PATH + 1,
	    T0), -1);
	assert_int_equal(add(f->v, "relative", "a", T0), -1);
	assert_int_equal(add(f->v, "", "a", T0), -1);
	/* A root that is not UTF-8 could never be saved: refused here. */
	assert_int_equal(add(f->v, "/caf\xe9", "a", T0), -1);
	longp[0] = '/';
	assert_int_equal(add(f->v, longp, "a", T0), -1);
	assert_int_equal(counts(f->v).refused, 7);
	assert_int_equal(counts(f->v).entries, 0);
	assert_false(visits_dirty(f->v));
	/* Only the form visits_path_clean() gives is stored. */
	assert_int_equal(add(f->v, "/r", "../x", T0), -1);
	assert_int_equal(add(f->v, "/r", "a/../../x", T0), -1);
	assert_int_equal(add(f->v, "/r", "./a", T0), -1);
	assert_int_equal(add(f->v, "/r", "a//b", T0), -1);
	assert_int_equal(add(f->v, "/r", "a/", T0), -1);
	assert_int_equal(add(f->v, "/r", "/etc/passwd", T0), -1);
	assert_int_equal(add(f->v, "/r", "..", T0), -1);
	/* And the root must be clean as realpath() gives it. */
	assert_int_equal(add(f->v, "/r/../s", "a", T0), -1);
	assert_int_equal(add(f->v, "/r/", "a", T0), -1);
	assert_int_equal(add(f->v, "//r", "a", T0), -1);
	assert_int_equal(add(f->v, "/r/.", "a", T0), -1);
	assert_int_equal(counts(f->v).refused, 18);
	assert_int_equal(counts(f->v).entries, 0);
	assert_int_equal(add(f->v, "/", "a", T0), 0);
	assert_int_equal(add(f->v, "/r/..s", "a", T0), 0);
	assert_int_equal(counts(f->v).entries, 2);
	visits_free(f->v);
	f->v = store(10, 10);
	/* The longest path and root allowed are fine. */
	longp[VISITS_MAX_PATH] = '\0';
	assert_int_equal(add(f->v, longp, "a", T0), 0);
	longp[0] = 'x';
	assert_int_equal(visits_add(f->v, "/r", longp, VISITS_MAX_PATH, T0),
	    0);
	/* Names with dots are names: only "." and ".." are special. */
	assert_int_equal(add(f->v, "/r", "...", T0), 0);
	assert_int_equal(add(f->v, "/r", ".a/..b/c..", T0), 0);
	assert_int_equal(counts(f->v).entries, 4);
	assert_int_equal(counts(f->v).refused, 0);
}

struct clean_case {
	const char *root;
	const char *in;
	const char *out;	/* NULL: refused */
	const char *why;	/* a phrase the refusal says */
};

static const struct clean_case clean_cases[] = {
	{ "/r", "a", "a", NULL },
	{ "/r", "a/b/c.txt", "a/b/c.txt", NULL },
	{ "/r", "a/../b", "b", NULL },
	{ "/r", "./a", "a", NULL },
	{ "/r", "a/.", "a", NULL },
	{ "/r", "a//b", "a/b", NULL },
	{ "/r", "a/b/", "a/b", NULL },
	{ "/r", "a/b//", "a/b", NULL },
	{ "/r", "a/./b/../c", "a/c", NULL },
	{ "/r", "a/b/../../c", "c", NULL },
	{ "/r", "...", "...", NULL },
	{ "/r", "..a/b..", "..a/b..", NULL },
	{ "/r", ".hidden", ".hidden", NULL },
	{ "/r", "..", NULL, "leaves the root" },
	{ "/r", "../x", NULL, "leaves the root" },
	{ "/r", "../../etc/passwd", NULL, "leaves the root" },
	{ "/r", "a/../../b", NULL, "leaves the root" },
	{ "/r", "a/../..", NULL, "leaves the root" },
	{ "/r", "./../r/a", NULL, "leaves the root" },
	{ "/r", "", NULL, "empty" },
	{ "/r", ".", NULL, "names the root itself" },
	{ "/r", "./", NULL, "names the root itself" },
	{ "/r", "a/..", NULL, "names the root itself" },
	{ "/r", "./.", NULL, "names the root itself" },
	{ "/r", "//", NULL, "not under the root" },
	/* Absolute: cleaned whole, then it must be under the root. */
	{ "/r", "/r/a", "a", NULL },
	{ "/r", "/r//a/./b/", "a/b", NULL },
	{ "/r", "/r/x/../y", "y", NULL },
	{ "/r", "//r/a", "a", NULL },
	{ "/r", "/r/../r/a", "a", NULL },
	{ "/r", "/../r/a", "a", NULL },
	{ "/r", "/r", NULL, "names the root itself" },
	{ "/r", "/r/", NULL, "names the root itself" },
	{ "/r", "/r/a/..", NULL, "names the root itself" },
	{ "/r", "/etc/passwd", NULL, "not under the root" },
	{ "/r", "/r/../etc/passwd", NULL, "not under the root" },
	{ "/r", "/rx/a", NULL, "not under the root" },
	{ "/r", "/", NULL, "not under the root" },
	{ "/home/u/p", "/home/u/p/src/m.c", "src/m.c", NULL },
	{ "/home/u/p", "/home/u/pp/m.c", NULL, "not under the root" },
	{ "/home/u/p", "/home/u/m.c", NULL, "not under the root" },
	{ "/home/u/p/", "/home/u/p/m.c", "m.c", NULL },
	{ "/", "/etc/passwd", "etc/passwd", NULL },
	{ "/", "/../etc", "etc", NULL },
	{ "/", "..", NULL, "leaves the root" },
	{ "/", "/", NULL, "names the root itself" },
};

static void
test_path_clean(void **state)
{
	const size_t n = sizeof(clean_cases) / sizeof(clean_cases[0]);
	struct fidx_err err;
	char out[64];
	size_t len;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct clean_case *c = &clean_cases[i];
		int rc;

		memset(out, '#', sizeof(out));
		err.msg[0] = '\0';
		errno = 0;
		rc = visits_path_clean(c->root, c->in, strlen(c->in), out,
		    &len, &err);
		if (c->out == NULL) {
			if (rc != -1)
				fail_msg("case %zu: %s in %s gave %.*s", i,
				    c->in, c->root, (int)len, out);
			assert_int_equal(errno, EINVAL);
			if (strstr(err.msg, c->why) == NULL)
				fail_msg("case %zu: %s: '%s' lacks '%s'", i,
				    c->in, err.msg, c->why);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu: %s in %s refused: %s", i, c->in,
			    c->root, err.msg);
		if (len != strlen(c->out) || memcmp(out, c->out, len) != 0)
			fail_msg("case %zu: %s in %s gave %.*s, want %s", i,
			    c->in, c->root, (int)len, out, c->out);
		/* Never past the input's length: callers size out by it. */
		assert_true(len <= strlen(c->in));
		/* What it gives, it gives again (and visits_add takes). */
		rc = visits_path_clean(c->root, out, len, out, &len, &err);
		assert_int_equal(rc, 0);
		assert_memory_equal(out, c->out, len);
	}
	/* A NUL inside is refused, not cut short. */
	assert_int_equal(visits_path_clean("/r", "a\0b", 3, out, &len, &err),
	    -1);
	assert_non_null(strstr(err.msg, "NUL"));
}

static void
test_dirty(void **state)
{
	struct fixture *f = *state;

	f->v = store(10, 10);
	assert_false(visits_dirty(f->v));
	assert_int_equal(add(f->v, "/r", "a", T0), 0);
	assert_true(visits_dirty(f->v));
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	assert_false(visits_dirty(f->v));
	assert_int_equal(add(f->v, "/r", "a", T0 + 1), 0);
	assert_true(visits_dirty(f->v));
	assert_int_equal(visits_load(f->v, f->file, T0, &f->err), 0);
	assert_false(visits_dirty(f->v));
	assert_int_equal(counts(f->v).saves, 1);
}

/* Visits in three projects at various times, w values far from round. */
static void
fill_mixed(struct visits *v)
{
	assert_int_equal(add(v, "/home/u/src/fidx", "common/match.c",
	    T0 - 40 * DAY), 0);
	assert_int_equal(add(v, "/home/u/src/fidx", "README.md", T0 - 9 * DAY),
	    0);
	assert_int_equal(add(v, "/home/u/src/fidx", "common/match.c",
	    T0 - 3 * DAY - 17), 0);
	assert_int_equal(add(v, "/srv/other", "a b/\"q\"\\n.txt", T0 - 2 * DAY),
	    0);
	assert_int_equal(add(v, "/home/u/src/fidx", "Makefile", T0 - DAY), 0);
	assert_int_equal(add(v, "/home/u/src/fidx", "common/match.c",
	    T0 - 3600), 0);
	assert_int_equal(add(v, "/home/u/\xc3\xa9t\xc3\xa9", "notes/\xe2\x82\xac.md",
	    T0 - 60), 0);
	assert_int_equal(add(v, "/srv/other", "x", T0 - 1), 0);
}

static const char *mixed[][2] = {
	{ "/home/u/src/fidx", "common/match.c" },
	{ "/home/u/src/fidx", "README.md" },
	{ "/home/u/src/fidx", "Makefile" },
	{ "/srv/other", "a b/\"q\"\\n.txt" },
	{ "/srv/other", "x" },
	{ "/home/u/\xc3\xa9t\xc3\xa9", "notes/\xe2\x82\xac.md" },
};

static void
test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct visits *w = store(4, 100);
	char second[PATH_MAX + 32];
	char *a, *b;
	size_t alen, blen;
	struct stat st;

	f->v = store(4, 100);
	fill_mixed(f->v);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	assert_int_equal(counts(f->v).saves, 1);
	assert_int_equal(counts(f->v).save_errors, 0);
	a = slurp(f->file, &alen);
	assert_true(strncmp(a, "{\"fidx_visits\":1}\n", 18) == 0);
	assert_int_equal(a[alen - 1], '\n');
	/* Private: the store says which files you work on. */
	assert_int_equal(stat(f->file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(add(w, "/stale", "gone", T0), 0);
	assert_int_equal(visits_load(w, f->file, T0, &f->err), 0);
	assert_int_equal(counts(w).entries, counts(f->v).entries);
	assert_int_equal(counts(w).projects, 3);
	assert_int_equal(counts(w).load_errors, 0);
	assert_false(has(w, "/stale", "gone"));
	for (size_t i = 0; i < sizeof(mixed) / sizeof(mixed[0]); i++)
		for (int64_t dt = -DAY; dt <= 60 * DAY; dt += 7 * DAY + 13) {
			double x = score(f->v, mixed[i][0], mixed[i][1], T0 + dt);
			double y = score(w, mixed[i][0], mixed[i][1], T0 + dt);

			assert_true(x > 0);
			assert_true(x == y);	/* 17 digits: exact */
		}

	/* The same order: saving the reloaded store gives the same bytes. */
	snprintf(second, sizeof(second), "%s/second.json", f->dir);
	assert_int_equal(visits_save(w, second, &f->err), 0);
	b = slurp(second, &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);

	/*
	 * And the same LRU: /home/u/src/fidx holds README.md, Makefile,
	 * match.c (least recent first); a fifth file with a bound of 4
	 * evicts README.md in both stores.
	 */
	assert_int_equal(add(f->v, "/home/u/src/fidx", "new1", T0), 0);
	assert_int_equal(add(w, "/home/u/src/fidx", "new1", T0), 0);
	assert_int_equal(add(f->v, "/home/u/src/fidx", "new2", T0), 0);
	assert_int_equal(add(w, "/home/u/src/fidx", "new2", T0), 0);
	assert_false(has(f->v, "/home/u/src/fidx", "README.md"));
	assert_false(has(w, "/home/u/src/fidx", "README.md"));
	assert_true(has(w, "/home/u/src/fidx", "Makefile"));
	assert_true(has(w, "/home/u/src/fidx", "common/match.c"));
	visits_free(w);
}

/* Loading into smaller bounds keeps the most recent, as visits would. */
static void
test_load_trims(void **state)
{
	struct fixture *f = *state;
	struct visits *w = store(2, 3);

	f->v = store(100, 100);
	fill_mixed(f->v);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	assert_int_equal(visits_load(w, f->file, T0, &f->err), 0);
	assert_int_equal(counts(w).entries, 3);
	assert_int_equal(counts(w).evicted, 3);
	/* The newest three: "x", the é project's note, match.c. */
	assert_true(has(w, "/srv/other", "x"));
	assert_true(has(w, "/home/u/\xc3\xa9t\xc3\xa9", "notes/\xe2\x82\xac.md"));
	assert_true(has(w, "/home/u/src/fidx", "common/match.c"));
	assert_false(has(w, "/home/u/src/fidx", "Makefile"));
	/* Trimmed: different from the file, so due for a save. */
	assert_true(visits_dirty(w));
	visits_free(w);
}

/* Saving over max_file_bytes leaves out (and evicts) the oldest. */
static void
test_save_file_bound(void **state)
{
	struct fixture *f = *state;
	struct visits_limits lim = limits(100, 100);
	struct visits *w;
	char path[64];
	size_t len;
	char *a;

	lim.max_file_bytes = VISITS_MAX_FILE_MIN;
	f->v = visits_new(&lim);
	assert_non_null(f->v);
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof(path), "some/longer/path/file%d.c", i);
		assert_int_equal(add(f->v, "/r", path, T0 + i), 0);
	}
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	a = slurp(f->file, &len);
	free(a);
	assert_true(len <= VISITS_MAX_FILE_MIN);
	/* Each line is ~90 bytes: two fit after the header. */
	assert_int_equal(counts(f->v).entries, 2);
	assert_int_equal(counts(f->v).evicted, 8);
	assert_true(has(f->v, "/r", "some/longer/path/file9.c"));
	assert_true(has(f->v, "/r", "some/longer/path/file8.c"));
	assert_false(visits_dirty(f->v));
	w = visits_new(&lim);
	assert_non_null(w);
	assert_int_equal(visits_load(w, f->file, T0, &f->err), 0);
	assert_int_equal(counts(w).entries, 2);
	assert_true(score(w, "/r", "some/longer/path/file9.c", T0 + 9) == 1);
	visits_free(w);
}

static void
test_save_atomic(void **state)
{
	struct fixture *f = *state;
	char missing[PATH_MAX + 32], msg[sizeof(f->err.msg)] = "";
	char *before, *after;
	size_t blen, alen;
	int fds[2], status;
	pid_t pid;

	f->v = store(10, 10);
	assert_int_equal(add(f->v, "/r", "a", T0), 0);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	/* Replacing it leaves no temporary file behind either. */
	assert_int_equal(add(f->v, "/r", "b", T0 + 1), 0);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	assert_int_equal(dir_entries(f->dir), 1);
	before = slurp(f->file, &blen);
	assert_non_null(strstr(before, "\"b\""));

	/* A directory that does not exist: -1, counted, nothing made. */
	assert_int_equal(add(f->v, "/r", "c", T0 + 2), 0);
	snprintf(missing, sizeof(missing), "%s/no/such/dir/visits.json",
	    f->dir);
	errno = 0;
	assert_int_equal(visits_save(f->v, missing, &f->err), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(f->err.msg, missing));
	assert_int_equal(counts(f->v).save_errors, 1);
	assert_int_equal(counts(f->v).saves, 2);
	assert_true(visits_dirty(f->v));

	/*
	 * A read-only directory: -1 with a message, the old file intact,
	 * no temporary file. Root writes anywhere, so as root the save
	 * runs in a child that drops to nobody first.
	 */
	assert_int_equal(chmod(f->dir, 0555), 0);
	if (geteuid() == 0) {
		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid != -1);
		if (pid == 0) {
			int rc;

			close(fds[0]);
			if (setgid(65534) == -1 || setuid(65534) == -1)
				_exit(3);
			rc = visits_save(f->v, f->file, &f->err);
			if (write(fds[1], f->err.msg, sizeof(f->err.msg)) !=
			    (ssize_t)sizeof(f->err.msg))
				_exit(4);
			_exit(rc == -1 && errno == EACCES &&
			    counts(f->v).save_errors == 2 ? 0 : 1);
		}
		close(fds[1]);
		assert_int_equal(read(fds[0], msg, sizeof(msg)),
		    (ssize_t)sizeof(msg));
		close(fds[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	} else {
		errno = 0;
		assert_int_equal(visits_save(f->v, f->file, &f->err), -1);
		assert_int_equal(errno, EACCES);
		assert_int_equal(counts(f->v).save_errors, 2);
		assert_true(visits_dirty(f->v));
		memcpy(msg, f->err.msg, sizeof(msg));
	}
	msg[sizeof(msg) - 1] = '\0';
	print_message("read-only directory: %s\n", msg);
	assert_non_null(strstr(msg, f->file));
	assert_non_null(strstr(msg, "Permission denied"));
	after = slurp(f->file, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(before, after, alen);
	assert_int_equal(dir_entries(f->dir), 1);
	free(before);
	free(after);
	assert_int_equal(chmod(f->dir, 0700), 0);
}

static void
test_missing_file(void **state)
{
	struct fixture *f = *state;

	f->v = store(10, 10);
	assert_int_equal(add(f->v, "/r", "a", T0), 0);
	assert_int_equal(visits_load(f->v, f->file, T0, &f->err), 0);
	assert_int_equal(counts(f->v).entries, 0);
	assert_int_equal(counts(f->v).projects, 0);
	assert_int_equal(counts(f->v).load_errors, 0);
	assert_false(visits_dirty(f->v));
	/* And the empty store is usable. */
	assert_int_equal(add(f->v, "/r", "a", T0), 0);
	assert_true(has(f->v, "/r", "a"));
}

struct corrupt_case {
	const char *text;	/* the file */
	const char *where;	/* "line N", or NULL */
	const char *why;	/* a phrase the message must hold */
	int err;		/* errno */
};

#define HDR "{\"fidx_visits\":1}\n"
#define GOOD "{\"root\":\"/r\",\"path\":\"a\",\"w\":1.5,\"t\":5,\"seen\":5}\n"

static const struct corrupt_case corrupt_cases[] = {
	{ HDR GOOD "{\"root\":\"/r\",\"pa\n", "line 3", "bad JSON", EINVAL },
	{ HDR GOOD "not json at all\n", "line 3", "bad JSON", EINVAL },
	{ HDR GOOD GOOD, "line 3", "second entry", EINVAL },
	{ HDR GOOD "\n", "line 3", "bad JSON", EINVAL },
	{ "", "line 1", "empty file", EINVAL },
	{ "{\"fidx_visits\":2}\n" GOOD, "line 1", "version 2", EINVAL },
	{ "{\"fidx_visits\":\"1\"}\n" GOOD, "line 1", "not a fidx visits file",
	    EINVAL },
	{ "{\"something\":1}\n", "line 1", "not a fidx visits file", EINVAL },
	{ GOOD, "line 1", "not a fidx visits file", EINVAL },
	{ "[1]\n" GOOD, "line 1", "not a fidx visits file", EINVAL },
	{ HDR "[]\n", "line 2", "not a JSON object", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":\"a\",\"w\":\"1.5\",\"t\":5,\"seen\":5}\n",
	    "line 2", "\"w\"", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":\"a\",\"w\":-1,\"t\":5,\"seen\":5}\n",
	    "line 2", "\"w\"", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":\"a\",\"w\":1,\"t\":5.5,\"seen\":5}\n",
	    "line 2", "\"t\"", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":\"a\",\"w\":1,\"t\":5}\n",
	    "line 2", "\"seen\"", EINVAL },
	{ HDR "{\"root\":5,\"path\":\"a\",\"w\":1,\"t\":5,\"seen\":5}\n",
	    "line 2", "\"root\"", EINVAL },
	{ HDR "{\"root\":\"rel\",\"path\":\"a\",\"w\":1,\"t\":5,\"seen\":5}\n",
	    "line 2", "\"root\"", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":7,\"w\":1,\"t\":5,\"seen\":5}\n",
	    "line 2", "\"path\"", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":\"\",\"w\":1,\"t\":5,\"seen\":5}\n",
	    "line 2", "path is empty", EINVAL },
	{ HDR "{\"root\":\"/r\",\"w\":1,\"t\":5,\"seen\":5}\n",
	    "line 2", "\"path_b64\"", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":\"a\",\"path_b64\":\"YQ==\",\"w\":1,"
	    "\"t\":5,\"seen\":5}\n", "line 2", "\"path_b64\"", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path_b64\":\"Y!==\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 2", "not base64", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path_b64\":\"YQ=\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 2", "not base64", EINVAL },
	{ HDR "{\"root\":\"/r/../etc\",\"path\":\"a\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 2", "\"root\" is not a clean", EINVAL },
	/* Hand-edited paths obey the rule visits_add does. */
	{ HDR "{\"root\":\"/r\",\"path\":\"../x\",\"w\":1,\"t\":5,\"seen\":5}\n",
	    "line 2", "leaves the root", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":\"a/../../etc/passwd\",\"w\":1,"
	    "\"t\":5,\"seen\":5}\n", "line 2", "leaves the root", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":\"/etc/passwd\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 2", "not under the root", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path_b64\":\"Li4veA==\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 2", "leaves the root", EINVAL },
	{ HDR GOOD "{\"root\":\"/r\",\"path\":\"./a\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 3", "second entry", EINVAL },
	/* "YR==" spells GOOD's "a" too, but not as the encoder does. */
	{ HDR GOOD "{\"root\":\"/r\",\"path_b64\":\"YR==\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 3", "\"path_b64\" is not base64", EINVAL },
	{ HDR GOOD "{\"root\":\"/r\",\"path_b64\":\"YQ==\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 3", "second entry", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path_b64\":\"YQBi\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 2", "holds a NUL", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":\"a\\u0000b\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 2", "bad JSON", EINVAL },
	{ HDR "{\"root\":\"/r\",\"root\":\"/s\",\"path\":\"a\",\"w\":1,\"t\":5,"
	    "\"seen\":5}\n", "line 2", "bad JSON", EINVAL },
	{ HDR "{\"root\":\"/r\",\"path\":\"a\",\"w\":1,\"t\":5,\"seen\":5} x\n",
	    "line 2", "bad JSON", EINVAL },
};

static void
test_corrupt(void **state)
{
	struct fixture *f = *state;
	const size_t n = sizeof(corrupt_cases) / sizeof(corrupt_cases[0]);

	f->v = store(10, 10);
	for (size_t i = 0; i < n; i++) {
		const struct corrupt_case *c = &corrupt_cases[i];

		assert_int_equal(add(f->v, "/before", "x", T0), 0);
		put_file(f->file, c->text, strlen(c->text));
		errno = 0;
		memset(f->err.msg, 0, sizeof(f->err.msg));
		/*
		 * A fault on line 1 (or an empty file) refuses the file; a
		 * bad entry line is skipped and the GOOD one before it kept.
		 */
		bool whole = strcmp(c->where, "line 1") == 0;
		size_t kept = !whole && strncmp(c->text, HDR GOOD,
		    strlen(HDR GOOD)) == 0 ? 1 : 0;
		const char *aside;
		bool done = true;

		if (visits_load(f->v, f->file, T0, &f->err) != -1)
			fail_msg("case %zu loaded: %s", i, c->text);
		print_message("case %zu: %s\n", i, f->err.msg);
		assert_int_equal(errno, c->err);
		assert_non_null(strstr(f->err.msg, f->file));
		if (c->where != NULL)
			assert_non_null(strstr(f->err.msg, c->where));
		assert_non_null(strstr(f->err.msg, c->why));
		if (!whole)
			assert_non_null(strstr(f->err.msg,
			    "1 bad line skipped"));
		assert_int_equal(counts(f->v).entries, kept);
		assert_int_equal(counts(f->v).loaded, kept);
		assert_int_equal(counts(f->v).bad_entries, whole ? 0 : 1);
		assert_int_equal(counts(f->v).projects, kept);
		assert_true(kept == 0 || score(f->v, "/r", "a", 5) == 1.5);
		assert_null(visits_project(f->v, "/before"));
		assert_false(visits_dirty(f->v));
		assert_int_equal(counts(f->v).load_errors, i + 1);
		/* Named to be kept, not yet moved: no save has run. */
		aside = visits_aside(f->v, &done);
		assert_non_null(aside);
		assert_false(done);
		assert_non_null(strstr(aside, "/visits.json.corrupt-"));
	}
	/* The same two-line file without the fault loads. */
	put_file(f->file, HDR GOOD, strlen(HDR GOOD));
	assert_int_equal(visits_load(f->v, f->file, T0, &f->err), 0);
	assert_true(score(f->v, "/r", "a", 5) == 1.5);
	assert_int_equal(counts(f->v).load_errors, n);
	{
		bool done = true;

		assert_null(visits_aside(f->v, &done));
		assert_false(done);
	}
}

static size_t
count_names(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

/*
 * The case: one good entry and a GARBAGE line. The entry is
 * kept, and the save that follows a new visit first keeps the damaged
 * file under its aside name, byte for byte; the next save and a clean
 * reload leave no second copy.
 */
static void
test_corrupt_kept(void **state)
{
	static const char text[] = HDR GOOD "GARBAGE\n"
	    "{\"root\":\"/r\",\"path\":\"b\",\"w\":1,\"t\":6,\"seen\":6}\n";
	struct fixture *f = *state;
	char want[PATH_MAX + 64], *kept, *now;
	const char *aside;
	bool done;

	f->v = store(10, 10);
	put_file(f->file, text, strlen(text));
	assert_int_equal(visits_load(f->v, f->file, T0, &f->err), -1);
	assert_non_null(strstr(f->err.msg, "line 3: bad JSON"));
	assert_non_null(strstr(f->err.msg, "1 bad line skipped"));
	assert_int_equal(counts(f->v).loaded, 2);
	assert_int_equal(counts(f->v).bad_entries, 1);
	assert_true(score(f->v, "/r", "a", 5) == 1.5);
	assert_true(score(f->v, "/r", "b", 6) == 1);
	/* T0 is 2026-11-18 11:06:40 UTC. */
	snprintf(want, sizeof(want), "%s.corrupt-20261118T110640Z", f->file);
	aside = visits_aside(f->v, &done);
	assert_string_equal(aside, want);
	assert_false(done);

	assert_int_equal(add(f->v, "/r", "x", T0), 0);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	aside = visits_aside(f->v, &done);
	assert_string_equal(aside, want);
	assert_true(done);
	kept = slurp(want, NULL);
	assert_string_equal(kept, text);
	free(kept);
	/* The new file has every entry that loaded, and the new one. */
	now = slurp(f->file, NULL);
	assert_non_null(strstr(now, "\"path\":\"a\""));
	assert_non_null(strstr(now, "\"path\":\"b\""));
	assert_non_null(strstr(now, "\"path\":\"x\""));
	assert_null(strstr(now, "GARBAGE"));
	free(now);

	/* Saved again: the copy is not made twice, nor overwritten. */
	assert_int_equal(add(f->v, "/r", "y", T0 + 1), 0);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	assert_int_equal(count_names(f->dir, "visits.json.corrupt-"), 1);
	kept = slurp(want, NULL);
	assert_string_equal(kept, text);
	free(kept);
	assert_int_equal(visits_load(f->v, f->file, T0 + 2, &f->err), 0);
	assert_int_equal(counts(f->v).entries, 4);
	assert_int_equal(counts(f->v).bad_entries, 0);
	assert_null(visits_aside(f->v, &done));

	/*
	 * Damaged again within the same second: the name is taken, so the
	 * second copy gets ".2", and the first is untouched.
	 */
	put_file(f->file, text, strlen(text) - 1);
	assert_int_equal(visits_load(f->v, f->file, T0, &f->err), -1);
	assert_int_equal(counts(f->v).loaded, 2);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	snprintf(want + strlen(want), 8, ".2");
	assert_string_equal(visits_aside(f->v, &done), want);
	assert_true(done);
	kept = slurp(want, NULL);
	assert_int_equal(strlen(kept), strlen(text) - 1);
	free(kept);
	assert_int_equal(count_names(f->dir, "visits.json.corrupt-"), 2);
}

/*
 * A file refused whole (here a later version's) is kept too: the store
 * starts empty, and the first save moves nothing it could not read.
 */
/* Copies of damaged files are bounded: the oldest go first. */
static void
test_corrupt_copies_bounded(void **state)
{
	static const char text[] = HDR "GARBAGE\n";
	struct fixture *f = *state;
	char name[sizeof(((struct fixture *)0)->file) + 64];
	const char *aside;
	struct stat st;
	bool done;
	int left = 0;

	/* Six older copies, 2026-11-0{1..6}. */
	for (int i = 1; i <= 6; i++) {
		snprintf(name, sizeof(name), "%s.corrupt-2026110%dT000000Z",
		    f->file, i);
		put_file(name, "old\n", 4);
	}
	f->v = store(10, 10);
	put_file(f->file, text, strlen(text));
	assert_int_equal(visits_load(f->v, f->file, T0, &f->err), -1);
	assert_int_equal(add(f->v, "/r", "x", T0), 0);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	aside = visits_aside(f->v, &done);
	assert_true(done);
	assert_int_equal(stat(aside, &st), 0);
	for (int i = 1; i <= 6; i++) {
		snprintf(name, sizeof(name), "%s.corrupt-2026110%dT000000Z",
		    f->file, i);
		left += stat(name, &st) == 0;
		/* The newest three old ones stay, with the new one: four. */
		assert_int_equal(stat(name, &st) == 0, i >= 4);
	}
	assert_int_equal(left + 1, VISITS_ASIDE_KEEP);
}

static void
test_corrupt_whole_kept(void **state)
{
	static const char text[] = "{\"fidx_visits\":2}\n{\"new\":\"format\"}\n";
	struct fixture *f = *state;
	const char *aside;
	char *kept;
	bool done;

	f->v = store(10, 10);
	put_file(f->file, text, strlen(text));
	assert_int_equal(visits_load(f->v, f->file, T0, &f->err), -1);
	assert_int_equal(counts(f->v).entries, 0);
	assert_int_equal(counts(f->v).loaded, 0);
	/* Nothing visited: nothing saved, the file stays where it is. */
	assert_false(visits_dirty(f->v));
	assert_int_equal(add(f->v, "/r", "x", T0), 0);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	aside = visits_aside(f->v, &done);
	assert_non_null(aside);
	assert_true(done);
	kept = slurp(aside, NULL);
	assert_string_equal(kept, text);
	free(kept);
	assert_int_equal(visits_load(f->v, f->file, T0, &f->err), 0);
	assert_true(has(f->v, "/r", "x"));

	/* A file removed before the save: nothing to keep, the save goes on. */
	put_file(f->file, text, strlen(text));
	assert_int_equal(visits_load(f->v, f->file, T0 + 5, &f->err), -1);
	assert_int_equal(unlink(f->file), 0);
	assert_int_equal(add(f->v, "/r", "y", T0), 0);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	assert_null(visits_aside(f->v, &done));
	assert_int_equal(count_names(f->dir, "visits.json.corrupt-"), 1);
}

/* A file over max_file_bytes is refused before it is read; so is a directory. */
static void
test_corrupt_size(void **state)
{
	struct fixture *f = *state;
	struct visits_limits lim = limits(10, 10);
	char big[VISITS_MAX_FILE_MIN + 64], path[VISITS_MAX_FILE_MIN];
	size_t len, pre, post;

	lim.max_file_bytes = VISITS_MAX_FILE_MIN;
	f->v = visits_new(&lim);
	assert_non_null(f->v);
	/*
	 * A valid file of exactly the limit loads; one byte more (a longer
	 * path) is refused before it is read.
	 */
	pre = strlen(HDR "{\"root\":\"/r\",\"path\":\"");
	post = strlen("\",\"w\":1,\"t\":5,\"seen\":5}\n");
	for (int extra = 0; extra <= 1; extra++) {
		size_t plen = VISITS_MAX_FILE_MIN - pre - post + (size_t)extra;

		memset(path, 'p', plen);
		path[plen] = '\0';
		len = (size_t)snprintf(big, sizeof(big), HDR "{\"root\":\"/r\","
		    "\"path\":\"%s\",\"w\":1,\"t\":5,\"seen\":5}\n", path);
		assert_int_equal(len, VISITS_MAX_FILE_MIN + (size_t)extra);
		put_file(f->file, big, len);
		assert_int_equal(add(f->v, "/before", "x", T0), 0);
		errno = 0;
		memset(f->err.msg, 0, sizeof(f->err.msg));
		if (extra == 0) {
			assert_int_equal(visits_load(f->v, f->file, T0, &f->err),
			    0);
			assert_int_equal(counts(f->v).entries, 1);
			assert_true(visits_score(f->v, "/r", path, plen, 5) ==
			    1);
			continue;
		}
		assert_int_equal(visits_load(f->v, f->file, T0, &f->err), -1);
		print_message("over the limit: %s\n", f->err.msg);
		assert_int_equal(errno, EFBIG);
		assert_non_null(strstr(f->err.msg, f->file));
		assert_non_null(strstr(f->err.msg, "257 bytes"));
		assert_non_null(strstr(f->err.msg, "over the visits file limit"));
		assert_int_equal(counts(f->v).entries, 0);
		assert_int_equal(counts(f->v).load_errors, 1);
	}

	/* A directory where the file should be. */
	assert_int_equal(unlink(f->file), 0);
	assert_int_equal(mkdir(f->file, 0700), 0);
	assert_int_equal(visits_load(f->v, f->file, T0, &f->err), -1);
	assert_non_null(strstr(f->err.msg, "not a regular file"));
	assert_int_equal(rmdir(f->file), 0);
}

/* Paths are bytes: non-UTF-8 ones travel as path_b64, exactly. */
static void
test_non_utf8(void **state)
{
	static const char *paths[] = {
		"caf\xe9.txt", "\xff\xfe/x", "\xff", "\xff\xfe", "\xff\xfe\xfd",
		"ok/\xc3\xa9.txt", "\xc3", "a\nb\tc\x01", "\xed\xa0\x80",
	};
	const size_t n = sizeof(paths) / sizeof(paths[0]);
	struct fixture *f = *state;
	struct visits *w = store(100, 100);
	char *text;

	f->v = store(100, 100);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k <= i; k++)
			assert_int_equal(add(f->v, "/r", paths[i],
			    T0 + (int64_t)(i * 1000 + k)), 0);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	text = slurp(f->file, NULL);
	assert_non_null(strstr(text, "\"path_b64\":\"Y2Fm6S50eHQ=\""));
	assert_non_null(strstr(text, "\"path_b64\":\"/w==\""));
	assert_non_null(strstr(text, "\"path_b64\":\"//4=\""));
	assert_non_null(strstr(text, "\"path_b64\":\"//79\""));
	assert_non_null(strstr(text, "\"path\":\"ok/\xc3\xa9.txt\""));
	assert_null(strchr(text, '\xff'));
	free(text);
	assert_int_equal(visits_load(w, f->file, T0, &f->err), 0);
	assert_int_equal(counts(w).entries, n);
	for (size_t i = 0; i < n; i++) {
		double x = score(f->v, "/r", paths[i], T0 + 10 * DAY);

		assert_true(x > 0);
		assert_true(x == score(w, "/r", paths[i], T0 + 10 * DAY));
	}
	visits_free(w);
}

/*
 * Every allocation of an add that makes a project, grows the project
 * table, and one that grows a project's path table, fails in turn: -1,
 * ENOMEM, the store unchanged, nothing leaked (ASan checks at exit).
 */
static void
test_oom_add(void **state)
{
	struct fixture *f = *state;
	char root[16], path[16];
	unsigned long n;
	int r = -1;

	f->v = store(100, 100);
	/* 4 projects in an 8-slot table: a fifth makes it grow. */
	for (int i = 0; i < 4; i++) {
		snprintf(root, sizeof(root), "/p%d", i);
		assert_int_equal(add(f->v, root, "f", T0), 0);
	}
	/* 4 paths in /p0's 8 slots: a fifth makes it grow. */
	for (int i = 1; i < 4; i++) {
		snprintf(path, sizeof(path), "f%d", i);
		assert_int_equal(add(f->v, "/p0", path, T0), 0);
	}
	for (int which = 0; which < 2; which++) {
		const char *rt = which == 0 ? "/new" : "/p0";
		struct visits_counts before = counts(f->v);

		for (n = 1; n < 20; n++) {
			alloc_fail_at(n);
			errno = 0;
			r = add(f->v, rt, "fresh", T0 + 1);
			if (!alloc_failed())
				break;
			assert_int_equal(r, -1);
			assert_int_equal(errno, ENOMEM);
			assert_int_equal(counts(f->v).entries, before.entries);
			assert_int_equal(counts(f->v).projects,
			    before.projects);
			assert_int_equal(counts(f->v).bytes, before.bytes);
			assert_false(has(f->v, rt, "fresh"));
		}
		alloc_fail_at(0);
		assert_int_equal(r, 0);
		/* entry, project, its table, the grown project table */
		assert_int_equal(n, which == 0 ? 5 : 3);
		assert_true(has(f->v, rt, "fresh"));
		assert_true(counts(f->v).bytes > before.bytes);
	}
	assert_int_equal(counts(f->v).entries, 9);
	assert_int_equal(counts(f->v).projects, 5);
	/* A re-visit allocates nothing. */
	alloc_fail_at(1);
	assert_int_equal(add(f->v, "/p0", "fresh", T0 + 2), 0);
	assert_false(alloc_failed());
	alloc_fail_at(0);
}

static void
test_oom_load(void **state)
{
	struct fixture *f = *state;
	struct visits *w = store(100, 100);
	struct visits_counts c;
	unsigned long n;
	int r = -1;

	f->v = store(100, 100);
	fill_mixed(f->v);
	assert_int_equal(visits_save(f->v, f->file, &f->err), 0);
	for (n = 1; n < 100; n++) {
		alloc_fail_at(n);
		errno = 0;
		r = visits_load(w, f->file, T0, &f->err);
		if (!alloc_failed())
			break;
		assert_int_equal(r, -1);
		assert_int_equal(errno, ENOMEM);
		assert_non_null(strstr(f->err.msg, "out of memory"));
		assert_non_null(strstr(f->err.msg, f->file));
		c = counts(w);
		assert_int_equal(c.entries, 0);
		assert_int_equal(c.projects, 0);
		assert_int_equal(c.load_errors, n);
	}
	alloc_fail_at(0);
	assert_true(n > 10 && n < 100);
	assert_int_equal(r, 0);
	assert_int_equal(counts(w).entries, counts(f->v).entries);
	for (size_t i = 0; i < sizeof(mixed) / sizeof(mixed[0]); i++)
		assert_true(score(w, mixed[i][0], mixed[i][1], T0) ==
		    score(f->v, mixed[i][0], mixed[i][1], T0));
	/* OOM while creating the store. */
	visits_free(w);
	for (n = 1; n < 10; n++) {
		struct visits_limits lim = limits(10, 10);

		alloc_fail_at(n);
		errno = 0;
		w = visits_new(&lim);
		if (!alloc_failed())
			break;
		assert_null(w);
		assert_int_equal(errno, ENOMEM);
	}
	alloc_fail_at(0);
	assert_non_null(w);
	visits_free(w);
}

/* Environment variables changed by a test, put back by restore_env. */
static char *saved_xdg, *saved_home;

static void
restore_env(void)
{
	if (saved_xdg != NULL)
		setenv("XDG_STATE_HOME", saved_xdg, 1);
	else
		unsetenv("XDG_STATE_HOME");
	if (saved_home != NULL)
		setenv("HOME", saved_home, 1);
	else
		unsetenv("HOME");
	free(saved_xdg);
	free(saved_home);
	saved_xdg = saved_home = NULL;
}

static void
test_default_file(void **state)
{
	struct fixture *f = *state;
	char buf[PATH_MAX], want[PATH_MAX + 64], dir[PATH_MAX + 64];
	struct stat st;
	const char *e;

	saved_xdg = (e = getenv("XDG_STATE_HOME")) ? strdup(e) : NULL;
	saved_home = (e = getenv("HOME")) ? strdup(e) : NULL;

	/* XDG_STATE_HOME, even one that does not exist yet. */
	snprintf(dir, sizeof(dir), "%s/state", f->dir);
	setenv("XDG_STATE_HOME", dir, 1);
	assert_int_equal(visits_default_file(buf, sizeof(buf), &f->err), 0);
	snprintf(want, sizeof(want), "%s/state/fidx/visits.json", f->dir);
	assert_string_equal(buf, want);
	snprintf(dir, sizeof(dir), "%s/state/fidx", f->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	/* Again: the directory exists, fine. */
	assert_int_equal(visits_default_file(buf, sizeof(buf), &f->err), 0);

	/* A relative XDG_STATE_HOME is ignored (XDG spec): HOME. */
	setenv("XDG_STATE_HOME", "relative/state", 1);
	snprintf(dir, sizeof(dir), "%s/home", f->dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	setenv("HOME", dir, 1);
	assert_int_equal(visits_default_file(buf, sizeof(buf), &f->err), 0);
	snprintf(want, sizeof(want), "%s/home/.local/state/fidx/visits.json",
	    f->dir);
	assert_string_equal(buf, want);
	snprintf(dir, sizeof(dir), "%s/home/.local/state/fidx", f->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* The file is saved there. */
	f->v = store(10, 10);
	assert_int_equal(add(f->v, "/r", "a", T0), 0);
	assert_int_equal(visits_save(f->v, buf, &f->err), 0);
	assert_int_equal(access(buf, R_OK), 0);

	/* Too small a buffer. */
	assert_int_equal(visits_default_file(buf, 10, &f->err), -1);
	assert_non_null(strstr(f->err.msg, "too long"));

	/* A file where the directory should be. */
	snprintf(dir, sizeof(dir), "%s/blocked", f->dir);
	put_file(dir, "", 0);
	setenv("XDG_STATE_HOME", dir, 1);
	assert_int_equal(visits_default_file(buf, sizeof(buf), &f->err), -1);
	assert_non_null(strstr(f->err.msg, dir));

	/* Neither. */
	unsetenv("XDG_STATE_HOME");
	unsetenv("HOME");
	assert_int_equal(visits_default_file(buf, sizeof(buf), &f->err), -1);
	assert_non_null(strstr(f->err.msg, "HOME"));
	restore_env();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits),
		cmocka_unit_test_setup_teardown(test_frecency_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_decay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_project_bounds, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_total_bounds, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bounds_of_one, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test(test_path_clean),
		cmocka_unit_test_setup_teardown(test_dirty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_load_trims, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_save_file_bound, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_save_atomic, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_kept, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_copies_bounded, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_whole_kept, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_size, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_non_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oom_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oom_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_file, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
