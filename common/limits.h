/*
 * limits.h - every bound fidx enforces, with its default and why.
 *
 * Owns: the default and hard ceiling of each limit.
 * Never touches: anything at run time; this header is constants only.
 *
 * Modelled on SQLite's sqliteLimit.h: each block says what the bound
 * covers, why the default is what it is, the hard ceiling, the flag that
 * sets it and the `stats` line that shows it. Hitting a bound is never a
 * crash and never silent: the caller reports what was cut.
 */
#ifndef FIDX_LIMITS_H
#define FIDX_LIMITS_H

#include <stdint.h>

/*
 * Bytes in one path (one candidate line). Entries store the length in
 * 16 bits, so 65535 is the ceiling; the default is Linux's PATH_MAX.
 * Longer lines are skipped and counted, never truncated (a truncated path
 * names a different file).
 * Flag: `fidx filter --max-line-bytes`.
 */
#define FIDX_MAX_PATH_DEFAULT 4096
#define FIDX_MAX_PATH_CEILING 65535

/*
 * Candidate lines `fidx filter` reads from stdin. Ten million paths is
 * several times every file on a big workstation; each costs 16 bytes of
 * entry plus its bytes. Past it the rest of the input is not read and
 * stderr says so.
 * Flag: `fidx filter --max-lines`.
 */
#define FIDX_FILTER_MAX_LINES_DEFAULT 10000000u
#define FIDX_FILTER_MAX_LINES_CEILING 100000000u

/*
 * Bytes `fidx filter` reads from stdin. Entry offsets are 32-bit, so the
 * ceiling is just under 4 GiB; the default of 1 GiB holds the ten
 * million lines above at 100 bytes each.
 * Flag: `fidx filter --max-input-bytes`.
 */
#define FIDX_FILTER_MAX_INPUT_DEFAULT (1024ull * 1024 * 1024)
#define FIDX_FILTER_MAX_INPUT_CEILING (4095ull * 1024 * 1024)

/*
 * Bytes in a query. A person types a few dozen; 1 KiB leaves room for
 * generated queries while keeping the scorer's table (query x path)
 * small. Stats: `queries_too_long`.
 * Flag: none; the protocol answers E_QUERY_TOO_LONG.
 */
#define FIDX_MAX_QUERY 1024

/*
 * Terms in a query (space-separated, including OR alternatives). Each term
 * is scored against each candidate, so this bounds the work per candidate.
 */
#define FIDX_MAX_TERMS 64

/*
 * Results per query. The default is what fits a picker's screen a few
 * times over; the ceiling bounds the response a client can ask for.
 * Flag: `--limit` (CLI), `"limit"` (protocol).
 */
#define FIDX_RESULTS_DEFAULT 50
#define FIDX_RESULTS_CEILING 10000

/*
 * Cells of the scorer's dynamic-programming table (query bytes x path
 * bytes between the first and last possible match) for which exact
 * positions are computed. Beyond it the scorer aligns greedily, which
 * costs O(path) and is still deterministic. 256 Ki cells cost 2.25 MiB of
 * scratch per scoring thread.
 */
#define FIDX_MATCH_DP_CELLS 262144

/* Daemon bounds (issue "The daemon"); listed here so `stats` has one home. */
#define FIDX_MAX_PROJECTS_DEFAULT 64
#define FIDX_MAX_FILES_DEFAULT 1000000
#define FIDX_MAX_INDEX_BYTES_DEFAULT (512ull * 1024 * 1024)
#define FIDX_MAX_CLIENTS_DEFAULT 256
#define FIDX_MAX_LINE_DEFAULT (64 * 1024)
#define FIDX_MAX_OUTPUT_DEFAULT (4 * 1024 * 1024)

/*
 * The most fidxd's flags accept. A message that says "raise --X" says so
 * only below X's ceiling: at it, raising is no advice.
 */
#define FIDX_MAX_PROJECTS_CEILING 100000
#define FIDX_MAX_FILES_CEILING UINT32_MAX	/* entry indexes are 32-bit */
#define FIDX_MAX_INDEX_BYTES_CEILING SIZE_MAX
#define FIDX_MAX_CLIENTS_CEILING 100000

_Static_assert(FIDX_MAX_PATH_DEFAULT <= FIDX_MAX_PATH_CEILING,
               "path default above its ceiling");
_Static_assert(FIDX_MAX_PATH_CEILING <= 65535,
               "entry lengths are 16-bit");
_Static_assert(FIDX_RESULTS_DEFAULT <= FIDX_RESULTS_CEILING,
               "result default above its ceiling");
_Static_assert(FIDX_MAX_QUERY < FIDX_MAX_LINE_DEFAULT,
               "a maximal query must fit in one request line");
_Static_assert(FIDX_MAX_LINE_DEFAULT <= FIDX_MAX_OUTPUT_DEFAULT,
               "an error echoing a request must fit in the output queue");

#endif
