/* sockpath.c - see sockpath.h. */
#include "sockpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
sockpath_default(char *buf, size_t size, struct fidx_err *err)
{
	const char *env = getenv("FIDX_SOCKET");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	/* One variable that every front end honours: editors, the shell's
	 * key bindings and git's fsmonitor hook start fidx with no flags. */
	if (env != NULL && env[0] != '\0') {
		n = snprintf(buf, size, "%s", env);
		if (n < 0 || (size_t)n >= size || n > SOCKPATH_MAX)
			return fidx_error(err, "FIDX_SOCKET is longer than "
			    "%d bytes", SOCKPATH_MAX);
		return 0;
	}
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, size, "%s/fidx/sock", xdg);
	else
		n = snprintf(buf, size, "/tmp/fidx-%u/sock",
		    (unsigned)getuid());
	if (n < 0 || (size_t)n >= size || n > SOCKPATH_MAX)
		return fidx_error(err, "socket path under '%s' is longer than "
		    "%d bytes; use --socket", xdg ? xdg : "/tmp", SOCKPATH_MAX);
	return 0;
}

int
sockpath_check_dir(const char *path, bool create, struct fidx_err *err)
{
	char dir[SOCKPATH_MAX + 1];
	const char *slash = strrchr(path, '/');
	struct stat st;
	size_t len;

	if (slash == NULL)
		return 0;	/* relative to the working directory: the user's choice */
	len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= sizeof(dir))
		return fidx_error(err, "socket path '%s' is too long", path);
	memcpy(dir, path, len);
	dir[len] = '\0';
	if (create && mkdir(dir, 0700) == -1 && errno != EEXIST)
		return fidx_error(err, "cannot create %s: %s", dir,
		    strerror(errno));
	if (lstat(dir, &st) == -1)
		return fidx_error(err, "cannot use %s: %s", dir,
		    strerror(errno));
	/* Only the private directory we make is checked strictly. */
	if (strcmp(slash, "/sock") != 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return fidx_error(err, "%s is not a directory", dir);
	if (st.st_uid != getuid())
		return fidx_error(err, "%s belongs to uid %u, not to us", dir,
		    (unsigned)st.st_uid);
	if ((st.st_mode & 077) != 0)
		return fidx_error(err, "%s is accessible to others (mode %o); "
		    "it must be 0700", dir, (unsigned)(st.st_mode & 0777));
	return 0;
}
