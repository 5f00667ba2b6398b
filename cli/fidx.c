/*
 * fidx.c - the `fidx` command: options every command shares, dispatch to
 * subcommands, and the query itself (any first word that names no
 * subcommand).
 *
 * A query goes to the daemon for the project enclosing the current
 * directory (--root, else the git work tree, else the directory itself);
 * results come back relative to that root and print relative to the
 * current directory. Exit status is grep's: 0 results, 1 none, 2 error.
 */
#include "cli.h"
#include "client.h"
#include "cmd.h"
#include "output.h"
#include "pick.h"
#include "shell.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/log.h"
#include "../common/proto.h"
#include "../common/query.h"

struct fidx_opts {
	const char *sock;
	const char *root;
	enum query_mode mode;
	bool mode_set;
	unsigned long long limit;	/* 0: the daemon's default */
	bool json;
	bool nul;
	bool positions;
	bool git;
	int color;			/* -1 until decided */
	int typos;			/* -1: the daemon's default */
	long long timeout_ms;		/* 0: the daemon's --wait-ms */
};

static const struct {
	const char *name;
	int (*fn)(int, char **, const char *);
} fidx_cmds[] = {
	{ "add", cmd_add },
	{ "rm", cmd_rm },
	{ "visit", cmd_visit },
	{ "ls", cmd_ls },
	{ "reindex", cmd_reindex },
	{ "stats", cmd_stats },
	{ "sync", cmd_sync },
	{ "git", cmd_git },
	{ "fsmonitor", cmd_fsmonitor },
	{ "pick", pick_main },
	{ "daemon", cmd_daemon },
	{ "shell", shell_main },
};

static void
fidx_usage(FILE *f)
{
	fprintf(f,
	    "usage: fidx [options] QUERY...      find files in this project\n"
	    "       fidx add DIR [--wait] [--hidden] [--exclude REGEX]  index "
	    "DIR\n"
	    "       fidx rm DIR                  forget DIR\n"
	    "       fidx ls [--json]             list projects\n"
	    "       fidx visit FILE              rank FILE higher: it was "
	    "opened\n"
	    "       fidx reindex [DIR | --all] [--wait] [--quiet]   walk again\n"
	    "       fidx sync [DIR]              wait until every change so far "
	    "is indexed\n"
	    "       fidx git [DIR]               branch and changed files, as "
	    "git status -sb\n"
	    "       fidx fsmonitor 2 TOKEN       git's file-system monitor "
	    "hook: git config\n"
	    "                                    core.fsmonitor \"fidx "
	    "fsmonitor\"\n"
	    "       fidx stats [--json]          limits, usage, memory\n"
	    "       fidx pick [--query Q] [--height N[%%]] [--multi | --no-multi]\n"
	    "                 [--exact | --regex] [--git] [-0] [--root DIR]\n"
	    "                                    choose files interactively "
	    "(fidx pick --help)\n"
	    "       fidx daemon start | stop | status\n"
	    "       fidx filter [options] QUERY < candidates (no daemon)\n"
	    "       fidx shell bash | zsh | fish [--completion | "
	    "--key-bindings]\n"
	    "                                    key bindings (Ctrl-T, Alt-C) "
	    "and completion:\n"
	    "                                    eval \"$(fidx shell bash)\"\n"
	    "       fidx --help | --version\n"
	    "Query options:\n"
	    "  -n, --limit N        results (default %d, at most %d)\n"
	    "  -m, --mode MODE      fuzzy (default), exact or regex\n"
	    "  -j, --json           print the daemon's answer as is\n"
	    "  -0, --null           end each path with NUL, not newline\n"
	    "  -p, --positions      prefix each path with the matched byte "
	    "offsets\n"
	    "      --color=WHEN     highlight matches: auto (a terminal and no "
	    "NO_COLOR),\n"
	    "                       always, never\n"
	    "      --root DIR       project root (default: the git work tree, "
	    "else .)\n"
	    "      --git            git's status letters before each path "
	    "(as git status -s)\n"
	    "      --typos N        bytes a one-word query may have wrong, 0-2 "
	    "(0: off)\n"
	    "      --timeout SECS   wait at most this for an index being built "
	    "(2.5: two\n"
	    "                       and a half seconds; default fidxd's "
	    "--wait-ms, 10 s);\n"
	    "                       add --wait and reindex --wait take it too\n"
	    "Every command takes --socket PATH (default $FIDX_SOCKET, else\n"
	    "$XDG_RUNTIME_DIR/fidx/sock).\n"
	    "Words of the query are joined by spaces; start it with -- if\n"
	    "it begins with '-' or names a subcommand. Exit status: 0 found,\n"
	    "1 nothing found, 2 error (a project whose root is gone, or whose\n"
	    "walk failed, is an error for add/reindex --wait and queries).\n",
	    FIDX_RESULTS_DEFAULT, FIDX_RESULTS_CEILING);
}

static int
fidx_parse(int argc, char **argv, struct fidx_opts *o)
{
	enum { OPT_COLOR = 256, OPT_ROOT, OPT_SOCKET, OPT_VERSION, OPT_TYPOS,
	    OPT_TIMEOUT, OPT_GIT };
	static const struct option longopts[] = {
		{ "limit", required_argument, NULL, 'n' },
		{ "mode", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "null", no_argument, NULL, '0' },
		{ "positions", no_argument, NULL, 'p' },
		{ "color", required_argument, NULL, OPT_COLOR },
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "typos", required_argument, NULL, OPT_TYPOS },
		{ "git", no_argument, NULL, OPT_GIT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "fidx";
	int ch;

	argv[0] = prog;		/* for getopt's own messages */
	while ((ch = getopt_long(argc, argv, "n:m:j0ph", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'n':
			if (cli_parse_limit(optarg, &o->limit) == -1)
				return -1;
			break;
		case 'm':
			if (cli_parse_mode(optarg, &o->mode) == -1)
				return -1;
			o->mode_set = true;
			break;
		case 'j':
			o->json = true;
			break;
		case '0':
			o->nul = true;
			break;
		case 'p':
			o->positions = true;
			break;
		case OPT_COLOR:
			if ((o->color = cli_parse_color(optarg)) == -1)
				return -1;
			break;
		case OPT_ROOT:
			o->root = optarg;
			break;
		case OPT_GIT:
			o->git = true;
			break;
		case OPT_TYPOS: {
			unsigned long long v;

			if (cli_parse_num("--typos", optarg, 0, 2, &v) == -1)
				return -1;
			o->typos = (int)v;
			break;
		}
		case OPT_TIMEOUT:
			if (cli_parse_seconds("--timeout", optarg,
			    CMD_TIMEOUT_CEILING_MS, &o->timeout_ms) == -1)
				return -1;
			break;
		case OPT_SOCKET:
			o->sock = optarg;
			break;
		case 'h':
			fidx_usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf("fidx %s\n", FIDX_VERSION);
			exit(0);
		default:
			log_warnx("see fidx --help");
			return -1;
		}
	}
	if (optind == argc) {
		log_warnx("no query; see fidx --help");
		return -1;
	}
	return 0;
}

static json_t *
fidx_request(const struct fidx_opts *o, const char *root, const char *q)
{
	size_t n = strlen(q), elen;
	char *b64 = NULL;
	json_t *req;

	req = json_pack("{s:s, s:s, s:b}", "op", "query", "root", root,
	    "positions", o->color || o->positions || o->json);
	if (req == NULL)
		goto oom;
	/* A JSON string is UTF-8: other bytes (Latin-1 names) go in base64. */
	if (proto_utf8_valid(q, n)) {
		if (json_object_set_new(req, "q", json_string(q)) == -1)
			goto oom;
	} else if ((b64 = proto_base64_encode(q, n, &elen)) == NULL ||
	    json_object_set_new(req, "q_b64", json_stringn(b64, elen)) ==
	    -1) {
		goto oom;
	}
	free(b64);
	b64 = NULL;
	if (o->mode_set && json_object_set_new(req, "mode",
	    json_string(query_mode_name(o->mode))) == -1)
		goto oom;
	if (o->limit > 0 && json_object_set_new(req, "limit",
	    json_integer((json_int_t)o->limit)) == -1)
		goto oom;
	if (o->typos >= 0 && json_object_set_new(req, "typos",
	    json_integer(o->typos)) == -1)
		goto oom;
	if (o->git && json_object_set_new(req, "git", json_true()) == -1)
		goto oom;
	if (o->timeout_ms > 0 && json_object_set_new(req, "timeout_ms",
	    json_integer(o->timeout_ms)) == -1)
		goto oom;
	return req;
oom:
	free(b64);
	json_decref(req);
	log_warnx("out of memory building the request");
	return NULL;
}

/* Prints the answer; returns the exit status. */
static int
fidx_print(struct client *c, json_t *resp, const struct fidx_opts *o,
    const char *root)
{
	json_t *results = json_object_get(resp, "results");
	struct output_opts oo = {
		.root = root, .nul = o->nul, .color = o->color == 1,
		.positions = o->positions, .git = o->git,
	};
	enum output_verdict verdict;
	char cwd[PATH_MAX];
	const char *line;
	size_t len;

	/* Says on stderr when the answer covers less than the project. */
	verdict = output_project_verdict(resp, root, c->cmd, false);
	if (o->json) {
		line = client_response_line(c, &len);
		fwrite(line, 1, len, stdout);
		putchar('\n');
	} else {
		if (realpath(".", cwd) == NULL) {
			log_warn("the current directory");
			return 2;
		}
		oo.cwd = cwd;
		if (output_results(results, &oo) == -1)
			return 2;
	}
	if (fflush(stdout) == EOF && errno != EPIPE) {
		log_warn("stdout");
		return 2;
	}
	if (json_array_size(results) > 0)
		return 0;
	/* Nothing found because there is no index (gone, failed): an error. */
	return verdict == OUTPUT_FAILED ? 2 : 1;
}

static int
fidx_query(int argc, char **argv)
{
	struct fidx_opts o = { .color = -1, .typos = -1 };
	char root[PATH_MAX], *q = NULL;
	struct client c = { .fd = -1 };
	json_t *req = NULL, *resp = NULL;
	struct fidx_err err;
	int rc = 2;

	if (fidx_parse(argc, argv, &o) == -1)
		return 2;
	if (o.color == -1)
		o.color = !o.json && !o.nul && cli_color_auto();
	if (o.json)
		o.color = 0;
	if ((o.root != NULL ? client_named_root(o.root, root, sizeof(root),
	    &err) : client_project_root(NULL, root, sizeof(root),
	    &err)) == -1) {
		log_warnx("%s", err.msg);
		return 2;
	}
	if ((q = cli_join(argc - optind, argv + optind)) == NULL ||
	    (req = fidx_request(&o, root, q)) == NULL)
		goto out;
	if (client_init(&c, o.sock, &err) == -1 ||
	    client_connect_or_start(&c, NULL, &err) == -1) {
		log_warnx("%s", err.msg);
		goto out;
	}
	/*
	 * --git: one git op first, which waits for the status if it is not
	 * cached, so this one-shot query's letters are there (a picker that
	 * queries again and again takes "pending" once instead).
	 */
	if (o.git) {
		json_t *g = json_pack("{s:s,s:s,s:i}", "op", "git", "root",
		    root, "limit", 1), *gr = NULL;

		/* Said on stderr (not a repository...): the query goes on. */
		if (g == NULL || (client_request(&c, g, &gr) == -1 &&
		    c.error_code[0] == '\0')) {
			json_decref(g);
			goto out;
		}
		json_decref(g);
		json_decref(gr);
	}
	if (client_request(&c, req, &resp) == -1)
		goto out;
	rc = fidx_print(&c, resp, &o, root);
	/* As fidx filter: "nothing found" is not known of undecided files. */
	if (cli_warn_regex_errors((size_t)json_integer_value(json_object_get(
	    resp, "regex_errors")), 0, "files") && rc == 1)
		rc = 2;
out:
	json_decref(resp);
	json_decref(req);
	client_release(&c);
	free(q);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *sock = NULL;
	int i;

	log_init("fidx", 0);
	/* Options before the first word that every command shares. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			sock = argv[++i];
		else if (strncmp(argv[i], "--socket=", 9) == 0)
			sock = argv[i] + 9;
		else
			break;
	}
	if (i == argc) {
		fidx_usage(stderr);
		return 2;
	}
	if (strcmp(argv[i], "filter") == 0)
		return filter_main(argc - i, argv + i);
	for (size_t k = 0; k < sizeof(fidx_cmds) / sizeof(fidx_cmds[0]); k++)
		if (strcmp(argv[i], fidx_cmds[k].name) == 0)
			return fidx_cmds[k].fn(argc - i, argv + i, sock);
	return fidx_query(argc, argv);
}
