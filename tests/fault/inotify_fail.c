/*
 * inotify_fail.c - an LD_PRELOAD shim for the fault tests: inotify
 * cannot be had (inotify_init and inotify_init1 fail with EMFILE, as
 * when fs.inotify.max_user_instances is used up by other programs).
 * fidxd must run on, every project degraded and saying why.
 */
#include <errno.h>
#include <sys/inotify.h>

int
inotify_init(void)
{
	errno = EMFILE;
	return -1;
}

int
inotify_init1(int flags)
{
	(void)flags;
	errno = EMFILE;
	return -1;
}
