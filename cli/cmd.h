/*
 * cmd.h - the subcommands of `fidx` that manage the daemon and its
 * projects: add, rm, ls, reindex, stats, daemon.
 *
 * Owns: each subcommand's options, its request and its exit status.
 * Never touches: the socket itself (client.c) or how answers are laid
 * out (output.c).
 *
 * Each takes argv from the subcommand's name on, and the socket given by
 * a --socket before the name (NULL: the default; a --socket after the
 * name wins). Each returns the exit status: 0 done, 1 nothing to act on
 * (not running; not a project, fidxd's no_project), 2 an error, already
 * reported. 1 is kept apart from 2 so that a script can tell "already
 * gone" from "could not ask" (cmd_call_status in cmd.c).
 *
 * Only `add` and `daemon start` start fidxd when it is not running (as
 * does a query); the others report that it is not, since a fresh daemon
 * has no projects to list, remove, reindex or count.
 */
#ifndef FIDX_CMD_H
#define FIDX_CMD_H

/*
 * The longest --timeout: fidxd refuses a "timeout_ms" over an hour
 * (OPS_WAIT_CEILING_MS in indexer/ops.c).
 */
#define CMD_TIMEOUT_CEILING_MS 3600000

int cmd_add(int argc, char **argv, const char *sock);
int cmd_rm(int argc, char **argv, const char *sock);
int cmd_visit(int argc, char **argv, const char *sock);
int cmd_ls(int argc, char **argv, const char *sock);
int cmd_reindex(int argc, char **argv, const char *sock);
int cmd_stats(int argc, char **argv, const char *sock);
int cmd_sync(int argc, char **argv, const char *sock);
int cmd_git(int argc, char **argv, const char *sock);
int cmd_fsmonitor(int argc, char **argv, const char *sock);
int cmd_daemon(int argc, char **argv, const char *sock);

#endif
