/*
 * accept_fail.c - an LD_PRELOAD shim for the fault tests: accept4()
 * fails with ENOMEM for FIDX_FAULT_ACCEPT_MS milliseconds from its first
 * call, then works. A daemon that retried at once would call it
 * thousands of times meanwhile; one that pauses, a handful.
 * Built by the Makefile as build/fault/accept_fail.so; used with the
 * release fidxd (an ASan binary wants its runtime first in the list).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

static long long
fault_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int
accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	static int (*real)(int, struct sockaddr *, socklen_t *, int);
	static long long until = -1;
	const char *ms = getenv("FIDX_FAULT_ACCEPT_MS");

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "accept4");
	if (ms != NULL) {
		if (until == -1)
			until = fault_now_ms() + atoll(ms);
		if (fault_now_ms() < until) {
			errno = ENOMEM;
			return -1;
		}
	}
	return real(fd, addr, len, flags);
}
