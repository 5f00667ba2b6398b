/*
 * cli.h - what the subcommands of `fidx` share.
 *
 * Owns: argument helpers and terminal output helpers.
 * Never touches: the daemon's state; the socket (client.c, later).
 */
#ifndef FIDX_CLI_H
#define FIDX_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/query.h"

/*
 * Parses a number in [min, max] for flag, in fidxd's syntax (size.h:
 * decimal, K/M/G suffix); logs and returns -1 if not.
 */
int cli_parse_num(const char *flag, const char *s, unsigned long long min,
    unsigned long long max, unsigned long long *out);

/*
 * -n/--limit of `fidx` and `fidx filter` alike: 1 to FIDX_RESULTS_CEILING.
 * 0 is refused, as it reads two ways (fd's --max-results 0 is no limit,
 * head -n 0 prints nothing); logs and returns -1 if not.
 */
int cli_parse_limit(const char *s, unsigned long long *out);

/*
 * "always" -> 1, "never" -> 0, "auto" -> cli_color_auto(); -1 if bad.
 */
int cli_parse_color(const char *s);

/*
 * Colour when nothing says otherwise: stdout is a terminal and NO_COLOR
 * is unset or empty (no-color.org). Only --color=always overrides it.
 */
int cli_color_auto(void);

/*
 * Parses seconds (a decimal, "2.5") in (0, max_ms / 1000] for flag into
 * whole milliseconds, rounded up; logs and returns -1 if not.
 */
int cli_parse_seconds(const char *flag, const char *s, long long max_ms,
    long long *ms);

/* --mode: fuzzy, exact or regex; logs and returns -1 for anything else. */
int cli_parse_mode(const char *s, enum query_mode *mode);

/* Writes path with the bytes at pos (sorted) highlighted, or plain if NULL. */
void cli_print_highlighted(FILE *f, const char *path, size_t len,
    const uint32_t *pos, int npos);

/*
 * The words of argv joined by single spaces, as a shell user means
 * `fidx a b` (and `fidx filter a b`); the caller frees it. NULL
 * (reported) when out of memory.
 */
char *cli_join(int argc, char **argv);

/*
 * Warns that the regex could not be decided on n candidates ("lines",
 * "files"; of total, 0 if unknown): PCRE2 gave up on them, and they count
 * as no match. Returns true if n > 0: "nothing found" then exits 2.
 */
bool cli_warn_regex_errors(size_t n, size_t total, const char *what);

int filter_main(int argc, char **argv);

#endif
