/* cmd.c - see cmd.h. */
#include "cmd.h"
#include "../common/proto.h"
#include "client.h"
#include "output.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"

enum {
	CMD_JSON = 1 << 0,
	CMD_WAIT = 1 << 1,
	CMD_ALL = 1 << 2,
	CMD_TIMEOUT = 1 << 3,
	CMD_HIDDEN = 1 << 4,
	CMD_EXCLUDE = 1 << 5,
	CMD_QUIET = 1 << 6,
};

struct cmd_opts {
	const char *sock;
	unsigned flags;			/* CMD_* given */
	const char *arg;		/* the one operand, if any */
	long long timeout_ms;		/* --timeout, with CMD_TIMEOUT */
	const char *exclude;		/* --exclude, with CMD_EXCLUDE */
};

/* req with "timeout_ms" when --timeout was given; NULL (freed) on OOM. */
static json_t *
cmd_with_timeout(json_t *req, const struct cmd_opts *o)
{
	if (req != NULL && (o->flags & CMD_TIMEOUT) &&
	    json_object_set_new(req, "timeout_ms",
	    json_integer(o->timeout_ms)) == -1) {
		json_decref(req);
		return NULL;
	}
	return req;
}

/*
 * Parses a subcommand's options (those in allowed, --socket and --help)
 * and its operand: none, optional (nargs -1) or required (1). Returns -1
 * with a message on a bad command line, 1 after printing help.
 */
static int
cmd_parse(int argc, char **argv, unsigned allowed, int nargs,
    const char *usage, struct cmd_opts *o)
{
	enum { OPT_SOCKET = 256, OPT_TIMEOUT, OPT_HIDDEN, OPT_EXCLUDE };
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "hidden", no_argument, NULL, OPT_HIDDEN },
		{ "exclude", required_argument, NULL, OPT_EXCLUDE },
		{ "json", no_argument, NULL, 'j' },
		{ "wait", no_argument, NULL, 'w' },
		{ "all", no_argument, NULL, 'a' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "fidx";
	const char *name = argv[0];
	unsigned flag;
	int ch;

	/* getopt's own messages read "fidx: ...", as all of ours do. */
	argv[0] = prog;
	while ((ch = getopt_long(argc, argv, "jwaqh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'j':
			flag = CMD_JSON;
			break;
		case 'w':
			flag = CMD_WAIT;
			break;
		case 'a':
			flag = CMD_ALL;
			break;
		case 'q':
			flag = CMD_QUIET;
			break;
		case OPT_SOCKET:
			o->sock = optarg;
			continue;
		case OPT_TIMEOUT:
			if ((allowed & CMD_TIMEOUT) != 0 &&
			    cli_parse_seconds("--timeout", optarg,
			    CMD_TIMEOUT_CEILING_MS, &o->timeout_ms) == -1)
				goto bad;
			flag = CMD_TIMEOUT;
			break;
		case OPT_HIDDEN:
			flag = CMD_HIDDEN;
			break;
		case OPT_EXCLUDE:
			if (o->exclude != NULL) {
				log_warnx("give --exclude once: one regex, "
				    "'a|b' for several");
				goto bad;
			}
			if (!proto_utf8_valid(optarg, strlen(optarg))) {
				log_warnx("--exclude must be valid UTF-8 (it "
				    "travels in a JSON string)");
				goto bad;
			}
			o->exclude = optarg;
			flag = CMD_EXCLUDE;
			break;
		case 'h':
			printf("usage: fidx %s\n", usage);
			return 1;
		default:
			goto bad;
		}
		if ((allowed & flag) == 0) {
			log_warnx("%s takes no option --%s", name,
			    flag == CMD_JSON ? "json" : flag == CMD_WAIT ?
			    "wait" : flag == CMD_ALL ? "all" :
			    flag == CMD_TIMEOUT ? "timeout" :
			    flag == CMD_QUIET ? "quiet" :
			    flag == CMD_HIDDEN ? "hidden" : "exclude");
			goto bad;
		}
		o->flags |= flag;
	}
	if (argc - optind > (nargs != 0) || (nargs == 1 && optind == argc))
		goto bad;
	o->arg = optind < argc ? argv[optind] : NULL;
	return 0;
bad:
	log_warnx("usage: fidx %s", usage);
	return -1;
}

/*
 * What cmd_connect() and cmd_call() did. Exit statuses (cmd.h) follow
 * from it in cmd_call_status(): a daemon not running, or a root it has
 * no project for, is "nothing to act on" (1, as docker rm of a missing
 * container), kept apart from errors (2) so that a script can tell
 * "already gone" from "could not ask".
 */
enum cmd_call_rc {
	CMD_CALL_ERROR = -1,	/* reported */
	CMD_CALL_OK = 0,	/* *resp is the answer */
	CMD_CALL_PRINTED,	/* --json: the answer is printed as is */
	CMD_CALL_NOTHING,	/* reported: not running, not a project */
};

static int
cmd_call_status(int rc)
{
	return rc == CMD_CALL_PRINTED ? 0 : rc == CMD_CALL_NOTHING ? 1 : 2;
}

/* True if a daemon answers on sock (nothing is said either way). */
static bool
cmd_running(const char *sock)
{
	struct fidx_err err;
	struct client c;
	int rc, saved;

	if (client_init(&c, sock, &err) == -1)
		return true;	/* let the real call say what is wrong */
	rc = client_connect_live(&c, NULL, &err);
	saved = errno;
	client_release(&c);
	return rc == 0 || !client_not_running(saved);
}

/* Connects, starting fidxd if start is set; reports failure. */
static int
cmd_connect(struct client *c, const char *sock, bool start)
{
	struct fidx_err err;
	int rc, saved;

	if (client_init(c, sock, &err) == -1) {
		log_warnx("%s", err.msg);
		return CMD_CALL_ERROR;
	}
	rc = start ? client_connect_or_start(c, NULL, &err) :
	    client_connect_live(c, NULL, &err);
	saved = errno;
	if (rc == 0)
		return CMD_CALL_OK;
	client_release(c);
	if (!start && client_not_running(saved)) {
		log_warnx("fidxd is not running on %s (`%s daemon start` "
		    "starts it)", c->path, c->cmd);
		return CMD_CALL_NOTHING;
	}
	log_warnx("%s", err.msg);
	return CMD_CALL_ERROR;
}

/*
 * Connects and makes one request (consumed). With json, prints the raw
 * answer (CMD_CALL_PRINTED) so the caller stops there. On CMD_CALL_OK
 * the caller owns *resp and must release c; on anything else c is
 * released and the failure reported.
 */
static int
cmd_call(struct client *c, const char *sock, bool start, json_t *req,
    bool json, json_t **resp)
{
	const char *line;
	size_t len;
	int rc;

	*resp = NULL;
	if (req == NULL) {
		log_warnx("out of memory building a request");
		return CMD_CALL_ERROR;
	}
	if ((rc = cmd_connect(c, sock, start)) != CMD_CALL_OK) {
		json_decref(req);
		return rc;
	}
	if (client_request(c, req, resp) == -1) {
		rc = strcmp(c->error_code, "no_project") == 0 ?
		    CMD_CALL_NOTHING : CMD_CALL_ERROR;
		json_decref(req);
		client_release(c);
		return rc;
	}
	json_decref(req);
	if (!json)
		return CMD_CALL_OK;
	line = client_response_line(c, &len);
	fwrite(line, 1, len, stdout);
	putchar('\n');
	json_decref(*resp);
	*resp = NULL;
	client_release(c);
	return CMD_CALL_PRINTED;
}

static const char *
cmd_str(json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "?";
}

/* The status for a command that printed: 2 if stdout failed. */
static int
cmd_done(int rc)
{
	if (fflush(stdout) == EOF && errno != EPIPE) {
		log_warn("stdout");
		return 2;
	}
	return rc;
}

int
cmd_add(int argc, char **argv, const char *sock)
{
	const char *usage = "add DIR [--wait [--timeout SECONDS]] [--hidden] "
	    "[--exclude REGEX] [--json]";
	struct cmd_opts o = { .sock = sock };
	struct fidx_err err;
	char root[PATH_MAX];
	struct client c;
	json_t *resp, *req;
	int rc;

	if ((rc = cmd_parse(argc, argv, CMD_WAIT | CMD_JSON | CMD_TIMEOUT |
	    CMD_HIDDEN | CMD_EXCLUDE, 1, usage, &o)) != 0)
		return rc == 1 ? 0 : 2;
	if (client_project_root(o.arg, root, sizeof(root), &err) == -1) {
		log_warnx("%s", err.msg);
		return 2;
	}
	req = cmd_with_timeout(json_pack("{s:s, s:s, s:b}", "op", "add",
	    "root", root, "wait", (o.flags & CMD_WAIT) != 0), &o);
	/* Sent only when given: fidxd keeps its defaults otherwise. */
	if (req != NULL && (o.flags & CMD_HIDDEN) &&
	    json_object_set_new(req, "hidden", json_true()) == -1) {
		json_decref(req);
		req = NULL;
	}
	if (req != NULL && o.exclude != NULL &&
	    json_object_set_new(req, "exclude", json_string(o.exclude)) ==
	    -1) {
		json_decref(req);
		req = NULL;
	}
	rc = cmd_call(&c, o.sock, true, req, (o.flags & CMD_JSON) != 0,
	    &resp);
	if (rc != CMD_CALL_OK)
		return cmd_done(cmd_call_status(rc));
	/* A walk that failed, or a root that is gone, is not an add. */
	rc = output_project_verdict(resp, root, c.cmd, true) == OUTPUT_FAILED ?
	    2 : 0;
	printf("%s %s (%s", json_is_false(json_object_get(resp, "added")) ?
	    "already a project:" : "added", root,
	    cmd_str(json_object_get(resp, "state")));
	if (json_is_integer(json_object_get(resp, "files")))
		printf(", %" JSON_INTEGER_FORMAT " files, generation %"
		    JSON_INTEGER_FORMAT, json_integer_value(json_object_get(
		    resp, "files")), json_integer_value(json_object_get(resp,
		    "generation")));
	printf(")\n");
	json_decref(resp);
	client_release(&c);
	return cmd_done(rc);
}

int
cmd_rm(int argc, char **argv, const char *sock)
{
	const char *usage = "rm DIR [--json]";
	struct cmd_opts o = { .sock = sock };
	struct fidx_err err;
	char root[PATH_MAX];
	struct client c = { .fd = -1 };	/* error_code read on every path */
	json_t *resp;
	int rc;

	if ((rc = cmd_parse(argc, argv, CMD_JSON, 1, usage, &o)) != 0)
		return rc == 1 ? 0 : 2;
	if (client_named_root(o.arg, root, sizeof(root), &err) == -1) {
		log_warnx("%s", err.msg);
		return 2;
	}
	rc = cmd_call(&c, o.sock, false, json_pack("{s:s, s:s}", "op",
	    "remove", "root", root), (o.flags & CMD_JSON) != 0, &resp);
	/*
	 * fidxd looks a root up among its projects before it looks at the
	 * disk, so bad_root for the absolute path sent here means no project
	 * has it either (a root gone from the disk that is not a project).
	 */
	if (rc == CMD_CALL_ERROR && strcmp(c.error_code, "bad_root") == 0)
		rc = CMD_CALL_NOTHING;
	if (rc != CMD_CALL_OK)
		return cmd_done(cmd_call_status(rc));
	/* A root that is no project is fidxd's no_project error (1). */
	printf("removed %s\n", root);
	json_decref(resp);
	client_release(&c);
	return cmd_done(0);
}

/*
 * The visit request for path under root: "path" when it is UTF-8 (a
 * JSON string), else "path_b64", its exact bytes in base64, so that a
 * Latin-1 name is visited too. NULL on OOM.
 */
static json_t *
cmd_visit_request(const char *root, const char *path)
{
	size_t len = strlen(path), n;
	json_t *req;
	char *b64;

	if (proto_utf8_valid(path, len))
		return json_pack("{s:s, s:s, s:s}", "op", "visit", "root", root,
		    "path", path);
	if ((b64 = proto_base64_encode(path, len, &n)) == NULL)
		return NULL;
	req = json_pack("{s:s, s:s, s:s%}", "op", "visit", "root", root,
	    "path_b64", b64, n);
	free(b64);
	return req;
}

/*
 * `fidx visit FILE`: tells fidxd the file was opened, so it ranks higher
 * at equal match quality. The project is the one fidx QUERY would use
 * here; the file must be under it.
 */
int
cmd_visit(int argc, char **argv, const char *sock)
{
	const char *usage = "visit FILE [--json]";
	struct cmd_opts o = { .sock = sock };
	char root[PATH_MAX], file[PATH_MAX];
	struct fidx_err err;
	struct client c;
	json_t *resp;
	size_t rlen;
	int rc;

	if ((rc = cmd_parse(argc, argv, CMD_JSON, 1, usage, &o)) != 0)
		return rc == 1 ? 0 : 2;
	if (realpath(o.arg, file) == NULL) {
		log_warn("%s", o.arg);
		return 2;
	}
	if (client_project_root(NULL, root, sizeof(root), &err) == -1 ||
	    client_root_check(root, &err) == -1) {
		log_warnx("%s", err.msg);
		return 2;
	}
	rlen = strlen(root);
	if (strncmp(file, root, rlen) != 0 || file[rlen] != '/') {
		log_warnx("%s is not under the project %s (run `fidx visit` "
		    "from the project's directory)", file, root);
		return 2;
	}
	rc = cmd_call(&c, o.sock, true, cmd_visit_request(root,
	    file + rlen + 1), (o.flags & CMD_JSON) != 0, &resp);
	if (rc != CMD_CALL_OK)
		return cmd_done(cmd_call_status(rc));
	json_decref(resp);
	client_release(&c);
	return cmd_done(0);
}

int
cmd_ls(int argc, char **argv, const char *sock)
{
	struct cmd_opts o = { .sock = sock };
	struct client c;
	json_t *resp;
	int rc;

	if ((rc = cmd_parse(argc, argv, CMD_JSON, 0, "ls [--json]",
	    &o)) != 0)
		return rc == 1 ? 0 : 2;
	rc = cmd_call(&c, o.sock, false, json_pack("{s:s}", "op", "projects"),
	    (o.flags & CMD_JSON) != 0, &resp);
	if (rc != CMD_CALL_OK)
		return cmd_done(cmd_call_status(rc));
	output_projects(json_object_get(resp, "projects"), c.cmd);
	json_decref(resp);
	client_release(&c);
	return cmd_done(0);
}

/* "N files, generation G", and the state when it is not ready. */
static void
cmd_print_counts(json_t *p)
{
	const char *state = json_string_value(json_object_get(p, "state"));

	printf("%" JSON_INTEGER_FORMAT " files, generation %"
	    JSON_INTEGER_FORMAT, json_integer_value(json_object_get(p,
	    "files")), json_integer_value(json_object_get(p, "generation")));
	if (state != NULL && strcmp(state, "ready") != 0)
		printf(" (%s)", state);
}

/*
 * Reports a reindex; returns the exit status: 0 when every walk was
 * done (a capped one is warned about on stderr, as its index is still
 * usable), 2 when one failed or its root is gone.
 */
static int
cmd_reindex_report(json_t *resp, const char *root, bool wait,
    const char *cmd, bool quiet)
{
	json_t *projects = json_object_get(resp, "projects"), *p;
	json_int_t n = json_integer_value(json_object_get(resp,
	    "reindexing"));
	int rc = 0;
	size_t i;

	if (!wait) {
		if (root == NULL)
			printf("reindexing %" JSON_INTEGER_FORMAT " projects\n",
			    n);
		else
			printf("reindexing %s\n", root);
		return 0;
	}
	/* Quiet: only what went wrong, on stderr (a cap is said there too). */
	if (root != NULL) {
		if (output_project_verdict(resp, root, cmd, true) ==
		    OUTPUT_FAILED)
			return 2;
		if (!quiet) {
			printf("reindexed %s: ", root);
			cmd_print_counts(resp);
			putchar('\n');
		}
		return 0;
	}
	if (!quiet)
		printf("reindexed %" JSON_INTEGER_FORMAT " projects\n", n);
	json_array_foreach(projects, i, p) {
		const char *r = cmd_str(json_object_get(p, "root"));

		if (output_project_verdict(p, r, cmd, true) == OUTPUT_FAILED)
			rc = 2;
		if (quiet)
			continue;
		printf("  %s: ", r);
		cmd_print_counts(p);
		putchar('\n');
	}
	return rc;
}

int
cmd_reindex(int argc, char **argv, const char *sock)
{
	const char *usage = "reindex [DIR | --all] [--wait [--timeout "
	    "SECONDS]] [--quiet] [--json]";
	struct cmd_opts o = { .sock = sock };
	struct fidx_err err;
	char root[PATH_MAX];
	struct client c;
	bool all, wait;
	json_t *resp, *req;
	int rc;

	if ((rc = cmd_parse(argc, argv, CMD_ALL | CMD_WAIT | CMD_JSON |
	    CMD_TIMEOUT | CMD_QUIET, -1, usage, &o)) != 0)
		return rc == 1 ? 0 : 2;
	all = (o.flags & CMD_ALL) != 0;
	/* --quiet is for cron: it waits (bounded) to know it went well. */
	wait = (o.flags & (CMD_WAIT | CMD_QUIET)) != 0;
	if (all && o.arg != NULL) {
		log_warnx("usage: fidx %s", usage);
		return 2;
	}
	/* A root named here may be gone: the daemon knows what it was. */
	if (!all && (o.arg != NULL ? client_named_root(o.arg, root,
	    sizeof(root), &err) : client_project_root(NULL, root,
	    sizeof(root), &err)) == -1) {
		log_warnx("%s", err.msg);
		return 2;
	}
	if (all)
		req = json_pack("{s:s, s:b, s:b}", "op", "reindex", "all", 1,
		    "wait", wait);
	else
		req = json_pack("{s:s, s:s, s:b}", "op", "reindex", "root",
		    root, "wait", wait);
	/* Quiet: no daemon is nothing to do, and no second one is started. */
	if ((o.flags & CMD_QUIET) && !cmd_running(o.sock)) {
		json_decref(req);
		return 0;
	}
	rc = cmd_call(&c, o.sock, false, cmd_with_timeout(req, &o),
	    (o.flags & CMD_JSON) != 0, &resp);
	if (rc != CMD_CALL_OK)
		return cmd_done(cmd_call_status(rc));
	rc = cmd_reindex_report(resp, all ? NULL : root, wait, c.cmd,
	    (o.flags & CMD_QUIET) != 0);
	json_decref(resp);
	client_release(&c);
	return cmd_done(rc);
}

/*
 * The project DIR names (gone or not: the daemon knows what it was), or
 * the one around the current directory; reported on failure.
 */
static int
cmd_root(const char *dir, char *root)
{
	struct fidx_err err;

	if ((dir != NULL ? client_named_root(dir, root, PATH_MAX, &err) :
	    client_project_root(NULL, root, PATH_MAX, &err)) == -1) {
		log_warnx("%s", err.msg);
		return -1;
	}
	return 0;
}

/*
 * fidx sync [DIR]: returns once every change made under DIR before it
 * is in the index (the daemon's sync op), so a script that just wrote a
 * file can query for it next.
 */
int
cmd_sync(int argc, char **argv, const char *sock)
{
	const char *usage = "sync [DIR] [--timeout SECONDS] [--json]";
	struct cmd_opts o = { .sock = sock };
	char root[PATH_MAX];
	struct client c;
	json_t *resp;
	const char *watch;
	int rc;

	if ((rc = cmd_parse(argc, argv, CMD_JSON | CMD_TIMEOUT, -1, usage,
	    &o)) != 0)
		return rc == 1 ? 0 : 2;
	if (cmd_root(o.arg, root) == -1)
		return 2;
	rc = cmd_call(&c, o.sock, false, cmd_with_timeout(json_pack(
	    "{s:s, s:s}", "op", "sync", "root", root), &o),
	    (o.flags & CMD_JSON) != 0, &resp);
	if (rc != CMD_CALL_OK)
		return cmd_done(cmd_call_status(rc));
	watch = json_string_value(json_object_get(resp, "watch"));
	printf("%s: generation %" JSON_INTEGER_FORMAT ", %" JSON_INTEGER_FORMAT
	    " files\n", root, json_integer_value(json_object_get(resp,
	    "generation")), json_integer_value(json_object_get(resp,
	    "files")));
	/* Not watched: the answer could not wait for changes. Say so. */
	rc = 0;
	if (watch != NULL && strcmp(watch, "watching") != 0) {
		const char *why = json_string_value(json_object_get(resp,
		    "watch_message"));

		log_warnx("%s is not watched (%s%s%s): recent changes may be "
		    "missing until its next rebuild", root, watch,
		    why ? ": " : "", why ? why : "");
		rc = 1;
	}
	json_decref(resp);
	client_release(&c);
	return cmd_done(rc);
}

/* A path of a git answer's file (path, or path_b64 decoded) to stdout. */
static void
cmd_git_path(json_t *f, const char *key)
{
	char b64key[32];
	const char *b64;
	size_t n;

	snprintf(b64key, sizeof(b64key), "%s_b64", key);
	b64 = json_string_value(json_object_get(f, b64key));
	if (b64 != NULL) {
		char *buf = malloc(strlen(b64) / 4 * 3 + 3);

		if (buf != NULL && proto_base64_decode(b64, strlen(b64), buf,
		    &n) == 0)
			fwrite(buf, 1, n, stdout);
		free(buf);
		return;
	}
	fputs(cmd_str(json_object_get(f, key)), stdout);
}

/*
 * fidx git [DIR]: the branch line and the changed files of DIR's work
 * tree, as `git status -sb` prints them (paths relative to the work
 * tree's top), from the daemon's cache.
 */
int
cmd_git(int argc, char **argv, const char *sock)
{
	const char *usage = "git [DIR] [--json]";
	struct cmd_opts o = { .sock = sock };
	char root[PATH_MAX];
	struct client c;
	json_t *resp, *files, *f, *v;
	const char *state, *up;
	bool color;
	size_t i;
	int rc;

	if ((rc = cmd_parse(argc, argv, CMD_JSON, -1, usage, &o)) != 0)
		return rc == 1 ? 0 : 2;
	if (cmd_root(o.arg, root) == -1)
		return 2;
	rc = cmd_call(&c, o.sock, true, json_pack("{s:s, s:s}", "op", "git",
	    "root", root), (o.flags & CMD_JSON) != 0, &resp);
	if (rc != CMD_CALL_OK)
		return cmd_done(rc == CMD_CALL_ERROR && strcmp(c.error_code,
		    "not_a_repository") == 0 ? 1 : cmd_call_status(rc));
	color = cli_color_auto();
	up = json_string_value(json_object_get(resp, "upstream"));
	printf("## %s%s%s", color ? "\033[32m" : "",
	    cmd_str(json_object_get(resp, "branch")), color ? "\033[0m" : "");
	if (json_is_true(json_object_get(resp, "detached")))
		printf(" (detached)");
	if (up != NULL)
		printf("...%s%s%s", color ? "\033[31m" : "", up,
		    color ? "\033[0m" : "");
	if (up != NULL && (json_integer_value(json_object_get(resp, "ahead")) ||
	    json_integer_value(json_object_get(resp, "behind")))) {
		json_int_t a = json_integer_value(json_object_get(resp,
		    "ahead"));
		json_int_t b = json_integer_value(json_object_get(resp,
		    "behind"));

		printf(" [");
		if (a)
			printf("ahead %" JSON_INTEGER_FORMAT, a);
		if (b)
			printf("%sbehind %" JSON_INTEGER_FORMAT, a ? ", " : "",
			    b);
		printf("]");
	}
	if ((state = json_string_value(json_object_get(resp, "state"))) !=
	    NULL)
		printf(" (%s)", state);
	if ((v = json_object_get(resp, "stash")) != NULL &&
	    json_integer_value(v) > 0)
		printf(" {stash %" JSON_INTEGER_FORMAT "}",
		    json_integer_value(v));
	putchar('\n');
	files = json_object_get(resp, "files");
	json_array_foreach(files, i, f) {
		char xy[3];

		snprintf(xy, sizeof(xy), "%s%s",
		    cmd_str(json_object_get(f, "index")),
		    cmd_str(json_object_get(f, "worktree")));
		output_git_letters(xy, color);
		if (json_object_get(f, "orig_path") != NULL) {
			cmd_git_path(f, "orig_path");
			fputs(" -> ", stdout);
		}
		cmd_git_path(f, "path");
		putchar('\n');
	}
	if (json_is_true(json_object_get(resp, "truncated")))
		log_warnx("%" JSON_INTEGER_FORMAT " changed paths in all; the "
		    "first %zu are shown", json_integer_value(json_object_get(
		    resp, "total")), json_array_size(files));
	json_decref(resp);
	client_release(&c);
	return cmd_done(0);
}

int
cmd_stats(int argc, char **argv, const char *sock)
{
	struct cmd_opts o = { .sock = sock };
	struct client c;
	json_t *resp;
	int rc;

	if ((rc = cmd_parse(argc, argv, CMD_JSON, 0, "stats [--json]",
	    &o)) != 0)
		return rc == 1 ? 0 : 2;
	rc = cmd_call(&c, o.sock, false, json_pack("{s:s}", "op", "stats"),
	    (o.flags & CMD_JSON) != 0, &resp);
	if (rc != CMD_CALL_OK)
		return cmd_done(cmd_call_status(rc));
	json_object_del(resp, "ok");
	json_object_del(resp, "id");
	output_tree(resp, 0);
	json_decref(resp);
	client_release(&c);
	return cmd_done(0);
}

/* Pings a connected daemon: its pid and version into the out values. */
static int
cmd_ping(struct client *c, json_int_t *pid, const char **version,
    json_t **resp)
{
	json_t *req = json_pack("{s:s}", "op", "ping");

	if (req == NULL) {
		log_warnx("out of memory building a request");
		return -1;
	}
	if (client_request(c, req, resp) == -1) {
		json_decref(req);
		return -1;
	}
	json_decref(req);
	*pid = json_integer_value(json_object_get(*resp, "pid"));
	*version = json_string_value(json_object_get(*resp, "version"));
	if (*version == NULL)
		*version = "?";
	return 0;
}

static int
cmd_daemon_start(struct client *c)
{
	struct fidx_err err;
	const char *version;
	json_t *resp;
	json_int_t pid;
	bool started;

	if (client_connect_or_start(c, &started, &err) == -1) {
		log_warnx("%s", err.msg);
		return 2;
	}
	if (cmd_ping(c, &pid, &version, &resp) == -1)
		return 2;
	printf("%s (pid %" JSON_INTEGER_FORMAT ", version %s)\n",
	    started ? "started" : "already running", pid, version);
	json_decref(resp);
	return 0;
}

/*
 * Asks fidxd to shut down, then waits, bounded, until its socket refuses
 * connections and its process has exited, so that a start right after
 * finds nothing left of the old daemon.
 */
static int
cmd_daemon_stop(struct client *c)
{
	json_t *req, *resp;
	struct fidx_err err;
	const char *version;
	json_int_t pid;
	int i = 0;

	if (cmd_ping(c, &pid, &version, &resp) == -1)
		return 2;
	json_decref(resp);
	if ((req = json_pack("{s:s}", "op", "shutdown")) == NULL) {
		log_warnx("out of memory building a request");
		return 2;
	}
	if (client_request(c, req, &resp) == -1) {
		json_decref(req);
		return 2;
	}
	json_decref(req);
	json_decref(resp);
	for (; i < CLIENT_STOP_TRIES; i++) {
		if (client_connect(c, &err) == -1 && client_not_running(errno))
			break;
		client_pause();
	}
	for (; i < CLIENT_STOP_TRIES && client_pid_alive((long)pid); i++)
		client_pause();
	if (i == CLIENT_STOP_TRIES) {
		log_warnx("fidxd (pid %" JSON_INTEGER_FORMAT ") has not "
		    "stopped %d ms after shutdown", pid,
		    CLIENT_STOP_TRIES * CLIENT_CONNECT_PAUSE_MS);
		return 2;
	}
	printf("stopped (pid %" JSON_INTEGER_FORMAT ")\n", pid);
	return 0;
}

/*
 * Stops a fidxd that holds the pid file but cannot be reached on its
 * socket (deleted, not bound again): by SIGTERM, the same clean exit
 * as a shutdown request, then a bounded wait for the process to go.
 */
static int
cmd_daemon_kill(struct client *c, long pid)
{
	int i;

	if (kill((pid_t)pid, SIGTERM) == -1) {
		log_warn("cannot stop fidxd (pid %ld)", pid);
		return 2;
	}
	for (i = 0; i < CLIENT_STOP_TRIES && client_pid_alive(pid); i++)
		client_pause();
	if (i == CLIENT_STOP_TRIES) {
		log_warnx("fidxd (pid %ld) has not stopped %d ms after "
		    "SIGTERM", pid, CLIENT_STOP_TRIES *
		    CLIENT_CONNECT_PAUSE_MS);
		return 2;
	}
	printf("stopped (pid %ld; it did not answer on %s)\n", pid, c->path);
	return 0;
}

int
cmd_daemon(int argc, char **argv, const char *sock)
{
	const char *usage = "daemon start | stop | status";
	struct cmd_opts o = { .sock = sock };
	const char *version;
	struct fidx_err err;
	struct client c;
	json_t *resp;
	json_int_t pid;
	long lost;
	int rc;

	if ((rc = cmd_parse(argc, argv, 0, 1, usage, &o)) != 0)
		return rc == 1 ? 0 : 2;
	if (strcmp(o.arg, "start") != 0 && strcmp(o.arg, "stop") != 0 &&
	    strcmp(o.arg, "status") != 0) {
		log_warnx("usage: fidx %s", usage);
		return 2;
	}
	if (client_init(&c, o.sock, &err) == -1) {
		log_warnx("%s", err.msg);
		return 2;
	}
	if (strcmp(o.arg, "start") == 0) {
		rc = cmd_daemon_start(&c);
	} else if (client_connect_live(&c, &lost, &err) == -1) {
		if (client_not_running(errno)) {
			printf("not running\n");
			rc = 1;
		} else if (errno == ENOTCONN && strcmp(o.arg, "stop") == 0) {
			rc = cmd_daemon_kill(&c, lost);
		} else {
			log_warnx("%s", err.msg);
			rc = 2;
		}
	} else if (strcmp(o.arg, "stop") == 0) {
		rc = cmd_daemon_stop(&c);
	} else if (cmd_ping(&c, &pid, &version, &resp) == 0) {
		printf("running, pid %" JSON_INTEGER_FORMAT ", version %s\n",
		    pid, version);
		json_decref(resp);
		rc = 0;
	} else {
		rc = 2;
	}
	client_release(&c);
	return cmd_done(rc);
}

/*
 * fidx fsmonitor 2 TOKEN: git's file-system monitor hook, protocol
 * version 2 (git config core.fsmonitor "fidx fsmonitor"; git runs it in
 * the work tree's top). Prints a token, a NUL, then each path changed
 * since TOKEN (relative to the work tree, a directory ending in '/'),
 * each NUL-terminated; "/" alone is everything. It never fails git: on
 * any error it says why on stderr and answers everything with a token no
 * daemon honours, exit 0, so git looks at every file as it would
 * without the hook (a non-zero exit would make git try version 1, which
 * this hook does not speak). Any other version: exit 1, and git does
 * without.
 */
int
cmd_fsmonitor(int argc, char **argv, const char *sock)
{
	static const char everything[] = "fidx:none:0\0/\0";
	struct fidx_err err;
	char root[PATH_MAX];
	struct client c;
	json_t *resp, *paths, *f;
	const char *token;
	size_t i;
	int rc;

	if (argc != 3 || strcmp(argv[1], "2") != 0) {
		log_warnx("fsmonitor speaks git's hook protocol version 2 "
		    "(usage: fidx fsmonitor 2 TOKEN; git runs it so with "
		    "core.fsmonitor set to \"fidx fsmonitor\")");
		return 1;
	}
	/*
	 * git runs the hook in the work tree's top: that is the root, with
	 * no repository discovery (libgit2 loaded and opened, ~10x the rest
	 * of the hook's time).
	 */
	if (client_project_root(".", root, sizeof(root), &err) == -1) {
		log_warnx("fsmonitor: %s", err.msg);
		goto all;
	}
	rc = cmd_call(&c, sock, true, json_pack("{s:s, s:s, s:s}", "op",
	    "changes", "root", root, "since", argv[2]), false, &resp);
	if (rc != CMD_CALL_OK)
		goto all;
	token = json_string_value(json_object_get(resp, "token"));
	paths = json_object_get(resp, "paths");
	if (token == NULL || *token == '\0' || !json_is_array(paths)) {
		json_decref(resp);
		client_release(&c);
		goto all;
	}
	fwrite(token, 1, strlen(token) + 1, stdout);
	if (json_is_true(json_object_get(resp, "all"))) {
		fwrite("/", 1, 2, stdout);
	} else {
		json_array_foreach(paths, i, f) {
			cmd_git_path(f, "path");
			putchar('\0');
		}
	}
	json_decref(resp);
	client_release(&c);
	(void)cmd_done(0);
	return 0;
all:
	fwrite(everything, 1, sizeof(everything) - 1, stdout);
	(void)cmd_done(0);
	return 0;
}
