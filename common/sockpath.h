/*
 * sockpath.h - where the daemon's socket lives, for the daemon and clients.
 *
 * Owns: the naming rule and the private directory's checks.
 * Never touches: sockets themselves (no connect, no bind).
 *
 * $FIDX_SOCKET when set and not empty, else
 * $XDG_RUNTIME_DIR/fidx/sock when XDG_RUNTIME_DIR is set, else
 * /tmp/fidx-$UID/sock. The directory must be ours and mode 0700, so no
 * other user can plant a socket where our client would talk to it.
 */
#ifndef FIDX_SOCKPATH_H
#define FIDX_SOCKPATH_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

/* Longest socket path: sun_path's size less its NUL. */
#define SOCKPATH_MAX 107

/* Writes the default socket path into buf (SOCKPATH_MAX + 1 bytes). */
int sockpath_default(char *buf, size_t size, struct fidx_err *err);

/*
 * Makes the directory holding path (mode 0700) if create is set, and
 * checks that it is a directory owned by us, not accessible to others.
 */
int sockpath_check_dir(const char *path, bool create, struct fidx_err *err);

#endif
