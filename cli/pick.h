/*
 * pick.h - `fidx pick`, the interactive picker.
 *
 * Owns: the picker's state (the query line, the results shown, the
 * marks, the requests in flight on its one connection to fidxd), the
 * keys' meanings and the layout drawn.
 * Never touches: the terminal's modes and escapes except through term.h,
 * the socket except through client.h; stdout until the picker is done
 * (then only the picked paths go there, as output.c prints them).
 *
 * Every keystroke that changes the query sends one query with an id and
 * "supersede": the daemon cancels the one before, and answers to every
 * query but the last sent are dropped, so typing never waits for a stale
 * answer. At most PICK_MAX_INFLIGHT requests are unanswered; past that
 * the newest query waits for a slot and older keystrokes' are never sent.
 * Exit status: 0 picked, 1 nothing to pick, 2 error (the daemon went
 * away: the terminal is restored first, then one line on stderr), 130
 * Esc or Ctrl-C; a signal kills it with that signal after restoring.
 */
#ifndef FIDX_PICK_H
#define FIDX_PICK_H

/* Requests sent and not yet answered on the picker's connection. */
#define PICK_MAX_INFLIGHT 16

/*
 * Paths marked with Tab. Each drawn row looks its path up among them,
 * so they are kept few enough for a linear search per row.
 */
#define PICK_MAX_MARKS 1024

/*
 * While a project has no index yet, each query waits this long in the
 * daemon (timeout_ms), then is sent again: the header stays current and
 * the list fills in once the first walk is done.
 */
#define PICK_INDEXING_POLL_MS 200

/* With --git, while the status is "pending": the pause before asking again. */
#define PICK_GIT_RETRY_MS 100

/*
 * How often an idle picker asks `projects` (cheap: no scoring) whether
 * its project has a new generation or is gone, to query again if so.
 */
#define PICK_REFRESH_MS 1000

/* After a `busy` answer, the pause before the query is sent again. */
#define PICK_BUSY_RETRY_MS 50

int pick_main(int argc, char **argv, const char *sock);

#endif
