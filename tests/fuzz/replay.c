/*
 * replay.c - runs a fuzz target over files, without libFuzzer: the
 * regression half of fuzzing, part of `make test`.
 *
 * Usage: fuzz_<target> [FILE|DIR]...; with no argument, every file of
 * tests/fuzz/corpus/<target>/ (FUZZ_NAME, set by the Makefile). Each file
 * is one input. Exits 0 when every input ran (a broken invariant aborts),
 * 1 when a file cannot be read or the corpus is empty, since a replay of
 * nothing proves nothing.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_NAME
#error "FUZZ_NAME names the target's corpus directory"
#endif

/* Inputs are capped by the targets; files past this are a corpus mistake. */
#define REPLAY_MAX_FILE (1u << 20)

static int
replay_file(const char *path)
{
	static uint8_t buf[REPLAY_MAX_FILE];
	FILE *f;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f) || !feof(f)) {
		fprintf(stderr, "replay: %s: %s\n", path,
		    ferror(f) ? "read error" : "over 1 MiB");
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

/* Runs each regular file of dir (not recursing); -1 on any error. */
static int
replay_dir(const char *dir, size_t *count)
{
	char path[4096];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = 0;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(path) == -1)
			rc = -1;
		else
			(*count)++;
	}
	closedir(d);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *deflt = "tests/fuzz/corpus/" FUZZ_NAME;
	size_t count = 0;
	struct stat st;
	int rc = 0;

	for (int i = argc > 1 ? 1 : 0; i < argc; i++) {
		const char *p = argc > 1 ? argv[i] : deflt;

		if (stat(p, &st) == -1) {
			fprintf(stderr, "replay: %s: %s\n", p, strerror(errno));
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			if (replay_dir(p, &count) == -1)
				rc = -1;
		} else if (replay_file(p) == -1) {
			rc = -1;
		} else {
			count++;
		}
	}
	printf("%s: %zu inputs replayed\n", FUZZ_NAME, count);
	if (count == 0) {
		fprintf(stderr, "replay: no inputs\n");
		return 1;
	}
	return rc == 0 ? 0 : 1;
}
