/*
 * fuzz_visits.c - the visit store's loader (visits_load) fed any bytes
 * as its file.
 *
 * visits_load() reads a file by name (it checks it is a regular file and
 * its size first), so each input is written to a file in a private
 * directory made once. Then: the load ends in 0 or -1 with a message,
 * holds at most the entries it counts, and what loaded survives a round
 * trip: saved (over the input, as the daemon does), loaded into a fresh store (whole, this time) and saved
 * again, the two files are byte for byte the same.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../indexer/visits.h"

#define FUZZ_MAX_IN (64 * 1024)
#define FUZZ_NOW 1795000000

static char fuzz_dir[64];
static char fuzz_in[128], fuzz_out[128];

static void
fuzz_cleanup(void)
{
	unlink(fuzz_in);
	unlink(fuzz_out);
	rmdir(fuzz_dir);
}

static int
fuzz_setup(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	if (fuzz_dir[0] != '\0')
		return 0;
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fidx-fuzz-XXXXXX", base);
	if (mkdtemp(fuzz_dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	snprintf(fuzz_in, sizeof(fuzz_in), "%s/in.json", fuzz_dir);
	snprintf(fuzz_out, sizeof(fuzz_out), "%s/out.json", fuzz_dir);
	atexit(fuzz_cleanup);
	return 0;
}

static void
fuzz_write(const char *file, const uint8_t *data, size_t size)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	FUZZ_CHECK(fd != -1);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	FUZZ_CHECK(close(fd) == 0);
}

/* The file's bytes into buf (room for max); its length. */
static size_t
fuzz_read(const char *file, char *buf, size_t max)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	FUZZ_CHECK(fd != -1);
	n = read(fd, buf, max);
	FUZZ_CHECK(n >= 0 && (size_t)n < max);
	close(fd);
	return (size_t)n;
}

/* Removes the copy a failed load asks the next save to keep. */
static void
fuzz_unlink_aside(const struct visits *v)
{
	bool done;
	const char *aside = visits_aside(v, &done);

	if (aside != NULL && done)
		FUZZ_CHECK(unlink(aside) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A save rewrites what loaded; entries can grow (path_b64). */
	static char a[4 * FUZZ_MAX_IN + 4096], b[sizeof(a)];
	struct visits_limits lim;
	struct visits_counts c;
	struct fidx_err err = { "" };
	struct visits *v, *w;
	size_t alen, blen;
	int rc;

	if (size > FUZZ_MAX_IN)
		return 0;
	fuzz_setup();
	visits_limits_default(&lim);
	/* Small bounds, so eviction on load is reached too. */
	lim.per_project = 8;
	lim.total = 16;
	if ((v = visits_new(&lim)) == NULL)
		return 0;
	fuzz_write(fuzz_in, data, size);
	errno = 0;
	rc = visits_load(v, fuzz_in, FUZZ_NOW, &err);
	visits_counts(v, &c);
	FUZZ_CHECK(rc == 0 || (rc == -1 && err.msg[0] != '\0'));
	FUZZ_CHECK(c.entries <= lim.total && c.entries == c.loaded);
	FUZZ_CHECK(rc == 0 ? c.load_errors == 0 : c.load_errors == 1);
	/* Over the file it loaded, as the daemon does: the aside is kept. */
	if (visits_save(v, fuzz_in, &err) == -1) {
		/* Only out of memory could stop it, and nothing arms that. */
		fprintf(stderr, "save: %s\n", err.msg);
		abort();
	}
	fuzz_unlink_aside(v);
	visits_free(v);

	FUZZ_CHECK((w = visits_new(&lim)) != NULL);
	rc = visits_load(w, fuzz_in, FUZZ_NOW, &err);
	if (rc != 0)
		fprintf(stderr, "reload: %s\n", err.msg);
	FUZZ_CHECK(rc == 0);
	visits_counts(w, &c);
	FUZZ_CHECK(c.loaded == c.entries && c.bad_entries == 0);
	alen = fuzz_read(fuzz_in, a, sizeof(a));
	FUZZ_CHECK(visits_save(w, fuzz_out, &err) == 0);
	blen = fuzz_read(fuzz_out, b, sizeof(b));
	FUZZ_CHECK(alen == blen && memcmp(a, b, alen) == 0);
	visits_free(w);
	return 0;
}
