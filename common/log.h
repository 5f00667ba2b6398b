/*
 * log.h - diagnostics to stderr, and the error convention of common/.
 *
 * Owns: the program name prefix and the verbosity level.
 * Never touches: sockets, files other than stderr, the process's exit
 * status except in fatal()/fatalx().
 *
 * Convention for common/: functions return 0 (or a count) on success and
 * -1 on failure. Where a caller must show the user why, the function takes
 * a `struct fidx_err *` and fills its message; otherwise errno is set.
 * The words are OpenBSD's: log_warn adds strerror(errno), log_warnx does
 * not; fatal and fatalx exit and are kept for broken invariants and for
 * running out of memory on small fixed control structures.
 */
#ifndef FIDX_LOG_H
#define FIDX_LOG_H

#include <stddef.h>

#define FIDX_ERR_MAX 256

/* A human-readable reason a call failed, filled by the callee. */
struct fidx_err {
	char msg[FIDX_ERR_MAX];
};

/* Sets the prefix of every line ("fidx", "fidxd") and the verbosity. */
void log_init(const char *progname, int verbose);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Formats into err (if not NULL) and returns -1, so error paths are one line. */
int fidx_error(struct fidx_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
