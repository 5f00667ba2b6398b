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
 * small. Also the ceiling: the scorer's per-byte arrays are this long.
 * Flag: none. Stats: `limits.query_bytes`. A longer one is answered
 * `query_too_long` (PROTO_E_QUERY_TOO_LONG), counted only among
 * `counters.errors`; `fidx filter` says so and exits 2.
 * NEEDSWORK: a counter of its own, as every other refusal has.
 */
#define FIDX_MAX_QUERY 1024

/*
 * Terms in a query (space-separated, including OR alternatives). Each term
 * is scored against each candidate, so this bounds the work per candidate;
 * 64 is more words than anyone types. Also the ceiling (arrays of it).
 * Flag and stats: none; more fails the compile ("query has too many
 * terms"), which the daemon answers `bad_query`.
 */
#define FIDX_MAX_TERMS 64

/*
 * Results per query. The default is what fits a picker's screen a few
 * times over; the ceiling bounds the response a client can ask for.
 * Flag: `--limit` (CLI), `"limit"` (protocol). Stats: `limits.results`
 * (the ceiling). More is refused: `bad_request`, or fidx's usage error.
 */
#define FIDX_RESULTS_DEFAULT 50
#define FIDX_RESULTS_CEILING 10000

/*
 * Cells of the scorer's dynamic-programming table (query bytes x path
 * bytes between the first and last possible match) for which exact
 * positions are computed. Beyond it the scorer aligns greedily, which
 * costs O(path) and is still deterministic. 256 Ki cells cost 2.25 MiB of
 * scratch per scoring thread. Flag and stats: none, as passing it is no
 * refusal: such a path is scored and highlighted by the greedy alignment,
 * and matches exactly when the DP would have matched it.
 */
#define FIDX_MATCH_DP_CELLS 262144

/*
 * The daemon's bounds. Each is set by a fidxd flag, shown against its use
 * in `fidx stats` (`limits`, `usage`), and counted when hit (`counters`);
 * README.md's table of bounds says the same for users. A message that
 * says "raise --X" says so only below X's ceiling: at it, raising is no
 * advice.
 */

/*
 * Projects held at once. A person works in a handful; editors, shells
 * and the cron line add the same roots again, not new ones. The registry
 * is searched linearly, which the ceiling keeps bounded.
 * Ceiling: FIDX_MAX_PROJECTS_CEILING. Flag: --max-projects.
 * Stats: `limits.projects`, `usage.projects`; when hit, `add` answers
 * `capped` and `counters.projects_refused` counts it.
 */
#define FIDX_MAX_PROJECTS_DEFAULT 64
#define FIDX_MAX_PROJECTS_CEILING 100000

/*
 * Files in one project's index. A million holds the largest trees people
 * open (a monorepo, a whole /usr) at about path length + 16 bytes each.
 * Ceiling: FIDX_MAX_FILES_CEILING, as entry indexes are 32-bit.
 * Flag: --max-files. Stats: `limits.files_per_project`; when hit the walk
 * stops, the project's state is `capped` ("cap":"files" in answers) and
 * `counters.rebuilds_capped` counts it.
 */
#define FIDX_MAX_FILES_DEFAULT 1000000
#define FIDX_MAX_FILES_CEILING UINT32_MAX

/*
 * Index bytes of all projects together, counting both snapshots while a
 * rebuild runs and every walk in progress. 512 MiB holds several million
 * files at typical path lengths and leaves a workstation's memory to the
 * programs people run. Ceiling: none beyond size_t
 * (FIDX_MAX_INDEX_BYTES_CEILING); the machine's memory is the real one.
 * Flag: --max-index-bytes (K, M, G). Stats: `limits.index_bytes`,
 * `usage.index_bytes`; when hit, as for files ("cap":"bytes"), and a
 * rebuild cut shorter than the live index is dropped for it
 * (`counters.rebuilds_kept_old`).
 */
#define FIDX_MAX_INDEX_BYTES_DEFAULT (512ull * 1024 * 1024)
#define FIDX_MAX_INDEX_BYTES_CEILING SIZE_MAX

/*
 * Connected clients. An editor or two per project, shells and pickers;
 * each holds at most a request line in and the output cap out, so 256
 * clients that all stopped reading would hold about 1 GiB, the worst
 * this default allows. Ceiling: FIDX_MAX_CLIENTS_CEILING, past any
 * descriptor limit a user is given. Flag: --max-clients.
 * Stats: `limits.clients`, `usage.clients`; the client over it gets a
 * `capped` error line and is closed (`counters.clients_refused`).
 */
#define FIDX_MAX_CLIENTS_DEFAULT 256
#define FIDX_MAX_CLIENTS_CEILING 100000

/*
 * Bytes in one request line. The longest real request is a query of
 * FIDX_MAX_QUERY bytes, JSON-escaped (up to 6 bytes each), beside a root
 * of PATH_MAX bytes: 64 KiB holds that with room, and a client sending
 * more is broken or hostile. Ceiling: 64 MiB; the least it takes is
 * 2 * FIDX_MAX_QUERY (both checked where fidxd reads the flag).
 * Flag: --max-line-bytes. Stats: `limits.line_bytes`; a longer line is
 * answered `line_too_long` and the connection closed
 * (`counters.lines_too_long`).
 */
#define FIDX_MAX_LINE_DEFAULT (64 * 1024)

/*
 * Output queued for one client. The largest answer (10,000 results with
 * positions) takes about 1 MiB at typical path lengths; 4 MiB holds it
 * with room, and a client that lets more pile up is not reading.
 * Ceiling: 4 GiB; the least it takes is 4096 bytes (both checked where
 * fidxd reads the flag). Flag: --max-output-bytes.
 * Stats: `limits.output_bytes_per_client`, `usage.output_bytes` and
 * `usage.output_bytes_max_client`; a client over it is dropped
 * (`counters.clients_dropped`), and one response alone over it is
 * answered `too_large` instead (`counters.responses_too_large`).
 * NEEDSWORK: the ceilings and minimums of this limit and the one above
 * are literals in indexer/main.c's flag checks; they belong here.
 */
#define FIDX_MAX_OUTPUT_DEFAULT (4 * 1024 * 1024)

/*
 * Queries waiting for the query worker. A query on a large index (at
 * least --inline-max-files files) is scored off the loop by one worker
 * thread that uses every scoring thread; the rest wait in a queue, each
 * holding a compiled query and a snapshot reference, not a copy. A
 * picker cancels its stale queries (supersede), so a queue this deep
 * means many clients querying large projects at once. Ceiling:
 * FIDX_MAX_QUEUED_QUERIES_CEILING. Flag: --max-queued-queries.
 * Stats: `limits.query_queue`, `usage.query_queue`,
 * `usage.queries_running`; a query refused for it is answered `busy`
 * (`counters.queries_busy`); cancelled ones are
 * `counters.queries_cancelled`.
 */
#define FIDX_MAX_QUEUED_QUERIES_DEFAULT 64
#define FIDX_MAX_QUEUED_QUERIES_CEILING 65536

/*
 * Narrowing sets (query.h, ops_query.c): a connection sending queries
 * with "supersede":true keeps the candidate set of its last finished
 * query, a bitmap of one bit per entry of the project's index (125 KiB
 * for a million files), so the next keystroke scores only those, and the
 * answer's best paths (at most 256 and 64 KiB, charged too: the next
 * query's first floor, dropped alone if they do not fit). Per
 * connection: an index over the cap keeps none; default 1 MiB, an
 * index of 8 million files. All connections: 64 MiB, the picker of
 * each of the 256 clients the default allows on a 2-million-file index.
 * Over either the query is scored whole and nothing is kept
 * (`narrow.counters.over_cap`). 0 turns narrowing off. Ceilings:
 * FIDX_NARROW_BYTES_CEILING. Flags: --max-narrow-bytes (per
 * connection), --max-narrow-total-bytes. Stats: `narrow.limits.bytes`,
 * `narrow.limits.total_bytes`, `narrow.usage.bytes`, `narrow.usage.sets`.
 */
#define FIDX_NARROW_BYTES_DEFAULT (1024 * 1024)
#define FIDX_NARROW_TOTAL_BYTES_DEFAULT (64 * 1024 * 1024)
#define FIDX_NARROW_BYTES_CEILING (1ull << 40)

/*
 * The git status cache (indexer/gitcache.h). An editor asks for a
 * project's status on every file switch; the answer is kept this long
 * (ms) from its computation, then freed by a timer: 5 s is shorter
 * than a person takes to notice a stale letter and long enough that a
 * burst of questions costs one status. Ceiling: an hour. A request may
 * ask for a younger answer ("max_age_ms"), never an older one.
 * Flag: --git-ttl-ms. Stats: `limits.git_ttl_ms`,
 * `git.counters.expired`.
 */
#define FIDX_GIT_TTL_MS_DEFAULT 5000
#define FIDX_GIT_TTL_MS_CEILING 3600000

/*
 * Projects whose status is kept (least recently used evicted first). A
 * person works in a handful at once; 32 holds them all, and the
 * services fidx replaces died of exactly this cache having no cap.
 * Ceiling: FIDX_MAX_GIT_PROJECTS_CEILING (the lookup is a linear scan).
 * Flag: --max-git-projects. Stats: `limits.git_projects`,
 * `git.usage.entries`, `git.counters.evicted_lru`.
 */
#define FIDX_MAX_GIT_PROJECTS_DEFAULT 32
#define FIDX_MAX_GIT_PROJECTS_CEILING 4096

/*
 * Bytes over every cached status: each entry's header, root and status
 * block, exactly as allocated. A status costs ~40 bytes plus its paths a
 * changed file, so 64 MiB holds hundreds of thousands of changed paths.
 * A hard limit: evictions (least recently used first) happen before the
 * insert, and a status bigger than the whole cap is answered, not kept.
 * Flag: --max-git-bytes. Stats: `limits.git_bytes`, `git.usage.bytes`,
 * `git.counters.evicted_bytes`, `git.counters.too_big`.
 */
#define FIDX_MAX_GIT_BYTES_DEFAULT (64u * 1024 * 1024)
#define FIDX_MAX_GIT_BYTES_CEILING SIZE_MAX

/*
 * Paths held in one project's status. A tree with 100,000 changed or
 * untracked paths is a build output nobody ignored; the rest are counted,
 * not held, and the answer says "truncated". Ceiling: the 32-bit entry
 * lengths of a repo_status, far above.
 * Flag: --max-git-paths. Stats: `limits.git_paths`,
 * `git.counters.truncated`.
 */
#define FIDX_MAX_GIT_PATHS_DEFAULT 100000
#define FIDX_MAX_GIT_PATHS_CEILING 100000000

/*
 * libgit2's own memory, shared by every repository it opens (repo.h says
 * why these sizes): its object cache, and the pack-file windows it maps
 * at once. Ceilings: what libgit2's ssize_t and size_t options hold.
 * Flags: --git-object-cache-bytes, --git-mapped-bytes. Stats:
 * `limits.git_object_cache_bytes`, `limits.git_mapped_bytes`,
 * `git.usage.object_cache_bytes`.
 */
#define FIDX_GIT_OBJECT_CACHE_DEFAULT (16u * 1024 * 1024)
#define FIDX_GIT_OBJECT_CACHE_CEILING (SIZE_MAX / 2)	/* ssize_t's largest */
#define FIDX_GIT_MAPPED_DEFAULT (256u * 1024 * 1024)
#define FIDX_GIT_MAPPED_CEILING ((unsigned long long)SIZE_MAX)

/*
 * The change log git's file-system monitor hook reads (`fidx fsmonitor`,
 * the `changes` op): paths changed, all projects, in one ring. Past
 * either bound the oldest go and a token older than them is answered
 * "everything" (git then looks at every file, as without the hook). A
 * save touches a path or two; 65,536 entries is a checkout's worth, at
 * ~60 bytes plus its path each; 8 MiB holds them at ~70-byte paths.
 * Flags: --max-changes, --max-changes-bytes. Stats: `changes.usage.entries`
 * against `limits.changes`, `changes.usage.bytes` against
 * `limits.changes_bytes`, `changes.counters.dropped`.
 */
#define FIDX_MAX_CHANGES_DEFAULT 65536
#define FIDX_MAX_CHANGES_CEILING (16u * 1024 * 1024)
#define FIDX_MAX_CHANGES_BYTES_DEFAULT (8u * 1024 * 1024)
#define FIDX_MAX_CHANGES_BYTES_CEILING SIZE_MAX

/*
 * Watcher events queued for the loop, and changed paths waiting for a
 * delta (all projects; one bound, the same number). Past either, events
 * are lost and the project they belong to is rebuilt whole, counted.
 * 65,536 paths is a big untar's burst; it costs ~100 bytes each.
 * Flag: --watch-queue. Stats: `watch.limits.queue`, `watch.usage.queued`,
 * `watch.usage.queued_peak`, `watch.usage.pending`,
 * `watch.counters.overflows`, `watch.counters.overflow_rebuilds`.
 */
#define FIDX_WATCH_QUEUE_DEFAULT 65536
#define FIDX_WATCH_QUEUE_CEILING (16u * 1024 * 1024)

/*
 * Directories watched, all projects: our own bound under the kernel's
 * fs.inotify.max_user_watches (which every process of the user shares).
 * Past either, the project asking is degraded: it still answers and is
 * walked every --degraded-rebuild-ms. Each watch costs ~250 bytes here
 * and in libinotifytools, and a kernel watch ~1 KiB of unswappable memory.
 * Flag: --max-watches. Stats: `watch.limits.watches`,
 * `watch.usage.watches`, `watch.counters.nospace`.
 */
#define FIDX_MAX_WATCHES_DEFAULT 1000000
#define FIDX_MAX_WATCHES_CEILING 100000000

/*
 * The longest a burst's batch waits for more events: the first change
 * after a quiet spell is applied at once, later ones wait 5, 10, 20 ms...
 * up to this while events keep coming. Flag: --watch-settle-max-ms.
 * Stats: `watch.limits.settle_max_ms`.
 */
#define FIDX_WATCH_SETTLE_MAX_MS_DEFAULT 200
#define FIDX_WATCH_SETTLE_MAX_MS_CEILING 60000

/*
 * How often a degraded project (no inotify watches to be had) is walked
 * again, since nothing else keeps it fresh. Flag: --degraded-rebuild-ms.
 * Stats: `watch.limits.degraded_rebuild_ms`,
 * `watch.counters.degraded_rebuilds`.
 */
#define FIDX_DEGRADED_REBUILD_MS_DEFAULT (5u * 60 * 1000)
#define FIDX_DEGRADED_REBUILD_MS_CEILING (24u * 3600 * 1000)

/*
 * Daemon bounds defined beside the module that enforces them, each with
 * its comment there:
 *   wait for an index  FIDXD_WAIT_MS_DEFAULT (indexer/main.c): --wait-ms,
 *                      "timeout_ms"; `limits.wait_ms`,
 *                      `counters.waits_timed_out`
 *   walks at once      2, at most 8 (indexer/main.c): --walkers;
 *                      `limits.walkers`, `usage.walks`
 *   scoring threads    SEARCH_MAX_THREADS (indexer/search.h): --threads;
 *                      `limits.search_threads`
 *   visit store        VISITS_* (indexer/visits.h): --max-visits,
 *                      --max-visits-per-project; `visits.limits`,
 *                      `visits.usage`, `visits.counters.evicted`
 *   git waiters        GITCACHE_WAITERS_DEFAULT (indexer/gitcache.h):
 *                      per project; `limits.git_waiters`,
 *                      `git.counters.waiters_refused`
 *   log file           LOG_FILE_MAX_DEFAULT (common/log.h):
 *                      --max-log-bytes; `log.bytes`, `log.max_bytes`
 */

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
