/* log.c - see log.h. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "fidx";
static int log_verbose;

/*
 * The log file, when log_to_file() made one stderr. Set once before any
 * thread starts; after that the counters change only under stderr's own
 * stdio lock (flockfile), which every line is written under, so a line
 * from a walker thread and a rotation never interleave.
 */
static struct {
	char file[PATH_MAX];
	char old[PATH_MAX + 2];		/* file.1 */
	size_t max_bytes;
	uint64_t rotations, rotate_errors;
} log_file;

/* Opens file as stderr (appending); -1 with errno. */
static int
log_file_open(const char *file)
{
	int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);

	if (fd == -1)
		return -1;
	if (fd != STDERR_FILENO) {
		if (dup2(fd, STDERR_FILENO) == -1) {
			int e = errno;

			close(fd);
			errno = e;
			return -1;
		}
		close(fd);
	}
	return 0;
}

/*
 * Makes room for a line of len bytes: past max_bytes, the file becomes
 * file.1 (the one before is dropped) and a new one is started, so the
 * log never takes more than twice max_bytes. stderr is locked. The size
 * comes from the file itself, so whatever else writes to stderr (a
 * library, a sanitizer) counts too.
 */
static void
log_file_room(size_t len)
{
	struct stat st;
	int e;

	if (fstat(STDERR_FILENO, &st) == -1 || st.st_size < 0 ||
	    (size_t)st.st_size + len <= log_file.max_bytes)
		return;
	/* A log removed by hand: nothing to move, a new file is all. */
	if ((rename(log_file.file, log_file.old) == 0 || errno == ENOENT) &&
	    log_file_open(log_file.file) == 0) {
		log_file.rotations++;
		return;
	}
	/* Bounded above all: start the same file over, and say so. */
	e = errno;
	log_file.rotate_errors++;
	if (ftruncate(STDERR_FILENO, 0) == 0)
		fprintf(stderr, "%s: the log passed %zu bytes and could not be "
		    "moved to %s (%s): started over\n", log_progname,
		    log_file.max_bytes, log_file.old, strerror(e));
}

void
log_init(const char *progname, int verbose)
{
	log_progname = progname;
	log_verbose = verbose;
}

static void
log_vemit(const char *fmt, va_list ap, const char *suffix)
{
	char line[1024], stamp[32] = "";
	struct tm tm;
	time_t now;
	int n;

	vsnprintf(line, sizeof(line), fmt, ap);
	flockfile(stderr);
	if (log_file.file[0] != '\0') {
		/* A file is read later: say when. */
		now = time(NULL);
		if (gmtime_r(&now, &tm) != NULL)
			strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ ",
			    &tm);
		n = snprintf(NULL, 0, "%s%s: %s%s%s\n", stamp, log_progname,
		    line, suffix != NULL ? ": " : "", suffix != NULL ? suffix :
		    "");
		log_file_room(n > 0 ? (size_t)n : 0);
	}
	if (suffix != NULL)
		fprintf(stderr, "%s%s: %s: %s\n", stamp, log_progname, line,
		    suffix);
	else
		fprintf(stderr, "%s%s: %s\n", stamp, log_progname, line);
	funlockfile(stderr);
}

int
log_to_file(const char *file, size_t max_bytes, struct fidx_err *err)
{
	int n;

	if (max_bytes < LOG_FILE_MIN)
		return fidx_error(err, "a log file needs at least %d bytes",
		    LOG_FILE_MIN);
	if (strlen(file) >= sizeof(log_file.file))
		return fidx_error(err, "the log file path %s is too long",
		    file);
	n = snprintf(log_file.old, sizeof(log_file.old), "%s.1", file);
	if (n < 0 || (size_t)n >= sizeof(log_file.old))
		return fidx_error(err, "the log file path %s is too long",
		    file);
	fflush(stderr);
	if (log_file_open(file) == -1)
		return fidx_error(err, "cannot open the log file %s: %s", file,
		    strerror(errno));
	strcpy(log_file.file, file);
	log_file.max_bytes = max_bytes;
	return 0;
}

bool
log_file_counts(struct log_file_counts *c)
{
	struct stat st;

	memset(c, 0, sizeof(*c));
	if (log_file.file[0] == '\0')
		return false;
	flockfile(stderr);
	c->file = log_file.file;
	c->max_bytes = log_file.max_bytes;
	c->bytes = fstat(STDERR_FILENO, &st) == 0 && st.st_size > 0 ?
	    (size_t)st.st_size : 0;
	c->rotations = log_file.rotations;
	c->rotate_errors = log_file.rotate_errors;
	funlockfile(stderr);
	return true;
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vemit(fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	log_vemit(fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_verbose < 2)
		return;
	va_start(ap, fmt);
	log_vemit(fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vemit(fmt, ap, strerror(saved));
	va_end(ap);
	exit(2);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(fmt, ap, NULL);
	va_end(ap);
	exit(2);
}

int
fidx_error(struct fidx_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}
