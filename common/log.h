/*
 * log.h - diagnostics to stderr, and the error convention of common/.
 *
 * Owns: the program name prefix and the verbosity level, and the log
 * file a detached daemon writes instead of a terminal (log_to_file: it
 * becomes stderr, and is kept under a size by moving it to FILE.1).
 * Never touches: sockets, files other than stderr and that log file, the
 * process's exit status except in fatal()/fatalx().
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FIDX_ERR_MAX 256

/*
 * Bytes of a log file before it is moved to FILE.1 and started over (the
 * log then takes at most twice this). A daemon logs a few lines a day
 * when all is well, a line per walk when a tree has trouble (an
 * unreadable .ignore, a repository git refuses); 4 MiB holds months of
 * the one and days of the other. The minimum holds a few lines.
 * Flag: fidxd --max-log-bytes. Stats: `log`.
 */
#define LOG_FILE_MAX_DEFAULT (4u * 1024 * 1024)
#define LOG_FILE_MIN 4096

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

/*
 * Makes file (created 0600, appended to) the process's stderr, each line
 * stamped with its UTC time; a line that would take it past max_bytes
 * (>= LOG_FILE_MIN) first moves it to file.1, replacing the one before.
 * Call it before any thread starts. Returns 0, or -1 with err (stderr is
 * then as it was).
 */
int log_to_file(const char *file, size_t max_bytes, struct fidx_err *err);

/* The log file for `stats`; false (and *c zeroed) when there is none. */
struct log_file_counts {
	const char *file;		/* valid for the process's life */
	size_t bytes;			/* the file's size now */
	size_t max_bytes;
	uint64_t rotations;		/* moves to file.1 */
	uint64_t rotate_errors;		/* moves that failed: started over */
};

bool log_file_counts(struct log_file_counts *c);

/* Formats into err (if not NULL) and returns -1, so error paths are one line. */
int fidx_error(struct fidx_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
