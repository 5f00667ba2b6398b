/*
 * testsh.h - shell and git fixtures the unit tests share: run a command
 * (a failure fails the test), and give git a private, empty HOME.
 *
 * Owns: nothing at run time; static inline functions only.
 * Include cmocka.h first: a command that fails fails the test.
 */
#ifndef FIDX_TESTSH_H
#define FIDX_TESTSH_H

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs a shell command; anything but exit 0 fails the test. */
__attribute__((format(printf, 1, 2)))
static inline void
sh(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	assert_int_equal(rc, 0);
}

/*
 * Makes a private HOME for git (no user or system config, no GIT_DIR
 * from the caller) under a new temp directory named from tmpl, resolved
 * into home (PATH_MAX). -1 if it cannot be made.
 */
static inline int
sh_git_home(const char *tmpl, char *home)
{
	char t[PATH_MAX];

	snprintf(t, sizeof(t), "%s", tmpl);
	if (mkdtemp(t) == NULL || realpath(t, home) == NULL)
		return -1;
	setenv("HOME", home, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("GIT_DIR");
	unsetenv("GIT_WORK_TREE");
	unsetenv("GIT_INDEX_FILE");
	return 0;
}

#endif
