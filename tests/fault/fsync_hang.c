/*
 * fsync_hang.c - an LD_PRELOAD shim for the fault tests: fsync() of a
 * file whose path holds FIDX_FAULT_FSYNC_PATH (after the first
 * FIDX_FAULT_FSYNC_SKIP such calls, default 0) creates the file
 * FIDX_FAULT_FSYNC_MARK and never returns, so that a test can kill -9
 * the daemon in the middle of a save, at a known point: the temporary
 * file written, not yet renamed over the old one.
 * Built by the Makefile as build/fault/fsync_hang.so; used with the
 * release fidxd (an ASan binary wants its runtime first in the list).
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fsync(int fd);

int
fsync(int fd)
{
	static int (*real)(int);
	static int seen;
	const char *pat = getenv("FIDX_FAULT_FSYNC_PATH");
	const char *skip = getenv("FIDX_FAULT_FSYNC_SKIP");
	const char *mark = getenv("FIDX_FAULT_FSYNC_MARK");
	char link[64], path[PATH_MAX];
	ssize_t n;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "fsync");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if (pat != NULL && mark != NULL &&
	    (n = readlink(link, path, sizeof(path) - 1)) > 0) {
		path[n] = '\0';
		if (strstr(path, pat) != NULL &&
		    seen++ >= (skip != NULL ? atoi(skip) : 0)) {
			int m = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC,
			    0600);

			if (m != -1)
				close(m);
			for (;;)
				pause();
		}
	}
	return real(fd);
}
