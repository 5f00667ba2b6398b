/*
 * test_log.c - the bounded log file of a detached daemon.
 *
 * log_to_file() makes a file in a mkdtemp directory this process's
 * stderr; lines of a known length are written, and the bound is checked
 * at limit - 1, limit and limit + 1: the file never passes max_bytes, one
 * line more moves it to FILE.1. A log removed by hand is started again; a
 * FILE.1 that cannot be replaced (a directory there) starts the same file
 * over, counted and said. stderr is put back after each test, so cmocka's
 * own messages are seen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"

struct fixture {
	char dir[PATH_MAX];
	char file[PATH_MAX + 16];
	char old[PATH_MAX + 16];
	int saved_stderr;
};

/* Each line: a 21-byte time stamp, "t: ", the message, "\n". */
#define LINE 64
#define MSG (LINE - 21 - 3 - 1)

static int
setup(void **state)
{
	char tmpl[] = "/tmp/fidx-log-XXXXXX";
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || mkdtemp(tmpl) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s", tmpl);
	snprintf(f->file, sizeof(f->file), "%s/fidxd.log", f->dir);
	snprintf(f->old, sizeof(f->old), "%s/fidxd.log.1", f->dir);
	fflush(stderr);
	f->saved_stderr = dup(STDERR_FILENO);
	log_init("t", 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[2 * PATH_MAX];

	fflush(stderr);
	dup2(f->saved_stderr, STDERR_FILENO);
	close(f->saved_stderr);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static off_t
size_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return -1;
	return st.st_size;
}

static void
lines(int n)
{
	char msg[MSG + 1];

	memset(msg, 'm', MSG);
	msg[MSG] = '\0';
	for (int i = 0; i < n; i++)
		log_warnx("%s", msg);
}

static struct log_file_counts
counts(void)
{
	struct log_file_counts c;

	assert_true(log_file_counts(&c));
	return c;
}

static void
test_bound(void **state)
{
	struct fixture *f = *state;
	const int per_file = LOG_FILE_MIN / LINE;
	struct fidx_err err;
	struct log_file_counts c;

	assert_int_equal(log_to_file(f->file, LOG_FILE_MIN - 1, &err), -1);
	assert_non_null(strstr(err.msg, "at least"));
	assert_int_equal(log_to_file(f->file, LOG_FILE_MIN, &err), 0);
	c = counts();
	assert_string_equal(c.file, f->file);
	assert_int_equal(c.max_bytes, LOG_FILE_MIN);
	/* limit - 1 line, then exactly the limit: no move. */
	lines(per_file - 1);
	assert_int_equal(size_of(f->file), LOG_FILE_MIN - LINE);
	lines(1);
	assert_int_equal(size_of(f->file), LOG_FILE_MIN);
	assert_int_equal(counts().rotations, 0);
	assert_int_equal(size_of(f->old), -1);
	/* One line more: the full file moves, the line starts a new one. */
	lines(1);
	assert_int_equal(size_of(f->old), LOG_FILE_MIN);
	assert_int_equal(size_of(f->file), LINE);
	c = counts();
	assert_int_equal(c.rotations, 1);
	assert_int_equal(c.bytes, LINE);
	/* And again: the older FILE.1 is dropped, never a FILE.2. */
	lines(per_file);
	assert_int_equal(counts().rotations, 2);
	assert_int_equal(size_of(f->old), LOG_FILE_MIN);
	assert_int_equal(size_of(f->file), LINE);
	assert_int_equal(counts().rotate_errors, 0);
}

static void
test_removed_and_stuck(void **state)
{
	struct fixture *f = *state;
	const int per_file = LOG_FILE_MIN / LINE;
	struct fidx_err err;
	char *buf;
	FILE *in;
	size_t n;

	assert_int_equal(log_to_file(f->file, LOG_FILE_MIN, &err), 0);
	lines(per_file);
	/* Removed by hand: the next move finds nothing and starts anew. */
	assert_int_equal(unlink(f->file), 0);
	lines(1);
	assert_int_equal(size_of(f->file), LINE);
	assert_int_equal(size_of(f->old), -1);
	assert_int_equal(counts().rotate_errors, 0);
	/* FILE.1 cannot be replaced: the file starts over, and says so. */
	assert_int_equal(mkdir(f->old, 0700), 0);
	lines(per_file);
	assert_int_equal(counts().rotate_errors, 1);
	assert_true(size_of(f->file) <= LOG_FILE_MIN);
	assert_non_null(in = fopen(f->file, "r"));
	assert_non_null(buf = calloc(1, LOG_FILE_MIN + 1));
	n = fread(buf, 1, LOG_FILE_MIN, in);
	fclose(in);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "could not be moved"));
	assert_non_null(strstr(buf, "started over"));
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_and_stuck, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
