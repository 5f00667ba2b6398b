/* cli.c - see cli.h. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/log.h"
#include "../common/size.h"

int
cli_parse_num(const char *flag, const char *s, unsigned long long min,
    unsigned long long max, unsigned long long *out)
{
	/* fidxd's syntax (size.h), so "64K" means the same to both. */
	if (size_parse(s, min, max, out) == -1) {
		log_warnx("%s must be a number from %llu to %llu (K, M or G "
		    "multiplies by 1024, 1024^2, 1024^3), not '%s'", flag, min,
		    max, s);
		return -1;
	}
	return 0;
}

int
cli_parse_limit(const char *s, unsigned long long *out)
{
	if (size_parse(s, 0, FIDX_RESULTS_CEILING, out) == 0 && *out == 0) {
		log_warnx("--limit must be 1 or more, not 0 (fd reads 0 as no "
		    "limit, head as nothing; to test for a match, send the "
		    "output to /dev/null and read the exit status)");
		return -1;
	}
	return cli_parse_num("--limit", s, 1, FIDX_RESULTS_CEILING, out);
}

int
cli_parse_mode(const char *s, enum query_mode *mode)
{
	if (query_mode_parse(s, mode) == 0)
		return 0;
	log_warnx("--mode must be fuzzy, exact or regex, not '%s'", s);
	return -1;
}

int
cli_parse_color(const char *s)
{
	if (strcmp(s, "always") == 0)
		return 1;
	if (strcmp(s, "never") == 0)
		return 0;
	if (strcmp(s, "auto") == 0)
		return cli_color_auto();
	log_warnx("--color must be auto, always or never, not '%s'", s);
	return -1;
}

int
cli_color_auto(void)
{
	const char *no = getenv("NO_COLOR");

	return (no == NULL || no[0] == '\0') && isatty(STDOUT_FILENO);
}

int
cli_parse_seconds(const char *flag, const char *s, long long max_ms,
    long long *ms)
{
	double v;
	char *end;

	errno = 0;
	v = strtod(s, &end);
	/* Decimal only: no "inf", "nan" or hex floats. */
	if (*s == '\0' || strspn(s, "0123456789.") != strlen(s) ||
	    *end != '\0' || errno != 0 || !(v > 0) ||
	    v * 1000 > (double)max_ms) {
		log_warnx("%s must be seconds, more than 0 and at most %lld "
		    "(2.5 is two and a half), not '%s'", flag, max_ms / 1000,
		    s);
		return -1;
	}
	*ms = (long long)(v * 1000);
	if ((double)*ms < v * 1000)
		(*ms)++;
	return 0;
}

void
cli_print_highlighted(FILE *f, const char *path, size_t len,
    const uint32_t *pos, int npos)
{
	static const char on[] = "\033[1;32m", off[] = "\033[0m";
	size_t at = 0;

	if (pos == NULL || npos == 0) {
		fwrite(path, 1, len, f);
		return;
	}
	/* Runs of consecutive positions share one escape pair. */
	for (int k = 0; k < npos;) {
		int e = k;

		while (e + 1 < npos && pos[e + 1] == pos[e] + 1)
			e++;
		fwrite(path + at, 1, pos[k] - at, f);
		fputs(on, f);
		fwrite(path + pos[k], 1, pos[e] - pos[k] + 1, f);
		fputs(off, f);
		at = pos[e] + 1;
		k = e + 1;
	}
	fwrite(path + at, 1, len - at, f);
}

char *
cli_join(int argc, char **argv)
{
	size_t len = 0, at = 0;
	char *q;

	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if ((q = fidx_malloc(len + 1)) == NULL) {
		log_warn("query");
		return NULL;
	}
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (i > 0)
			q[at++] = ' ';
		memcpy(q + at, argv[i], n);
		at += n;
	}
	q[at] = '\0';
	return q;
}

bool
cli_warn_regex_errors(size_t n, size_t total, const char *what)
{
	char of[32] = "";

	if (n == 0)
		return false;
	if (total > 0)
		snprintf(of, sizeof(of), " of %zu", total);
	log_warnx("the regex could not be decided on %zu%s %s (PCRE2 hit its "
	    "match, depth or heap limit: simplify the pattern); they count as "
	    "no match", n, of, what);
	return true;
}
