/*
 * shell.c - `fidx shell`: the embedded scripts of cli/shell/ on stdout.
 *
 * Without a flag both parts are printed, key bindings first, so one
 * eval sets up everything; --completion prints only what `make install`
 * puts in the shell's completion directory, --key-bindings only the
 * bindings.
 */
#include "shell.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../common/log.h"

static const char *const shell_names[] = { "bash", "zsh", "fish" };

static void
shell_usage(FILE *f)
{
	fprintf(f,
	    "usage: fidx shell bash | zsh | fish [--completion | "
	    "--key-bindings]\n"
	    "Prints the key bindings (Ctrl-T inserts paths picked with fidx "
	    "pick, Alt-C\n"
	    "changes into a picked path's directory) and the completion for "
	    "fidx:\n"
	    "  eval \"$(fidx shell bash)\"     in ~/.bashrc\n"
	    "  eval \"$(fidx shell zsh)\"      in ~/.zshrc, after compinit\n"
	    "  fidx shell fish | source      in "
	    "~/.config/fish/config.fish\n"
	    "      --completion     only the completion\n"
	    "      --key-bindings   only the key bindings\n");
}

/* Writes the embedded PART.SHELL; -1 (reported) if it is missing. */
static int
shell_print(const char *part, const char *sh)
{
	char name[64];
	int n;

	n = snprintf(name, sizeof(name), "%s.%s", part, sh);
	if (n < 0 || (size_t)n >= sizeof(name))
		fatalx("shell script name too long: %s.%s", part, sh);
	for (size_t i = 0; i < shell_scripts_count; i++) {
		if (strcmp(shell_scripts[i].name, name) != 0)
			continue;
		if (fwrite(shell_scripts[i].text, 1, shell_scripts[i].len,
		    stdout) != shell_scripts[i].len)
			return -1;
		return 0;
	}
	/* Embedding is from a fixed list: a missing one is a build bug. */
	fatalx("no embedded %s", name);
}

int
shell_main(int argc, char **argv, const char *sock)
{
	enum { OPT_COMPLETION = 256, OPT_KEYS };
	static const struct option longopts[] = {
		{ "completion", no_argument, NULL, OPT_COMPLETION },
		{ "key-bindings", no_argument, NULL, OPT_KEYS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "fidx";
	bool completion = true, keys = true, known = false;
	const char *sh;
	int ch;

	(void)sock;	/* the scripts name no socket: fidx finds its own */
	argv[0] = prog;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_COMPLETION:
			keys = false;
			break;
		case OPT_KEYS:
			completion = false;
			break;
		case 'h':
			shell_usage(stdout);
			return 0;
		default:
			shell_usage(stderr);
			return 2;
		}
	}
	if (!completion && !keys) {
		log_warnx("--completion and --key-bindings: give one or "
		    "neither (neither prints both)");
		return 2;
	}
	if (argc - optind != 1) {
		shell_usage(stderr);
		return 2;
	}
	sh = argv[optind];
	for (size_t i = 0; i < sizeof(shell_names) / sizeof(shell_names[0]);
	    i++)
		known = known || strcmp(sh, shell_names[i]) == 0;
	if (!known) {
		log_warnx("no scripts for the shell '%s': bash, zsh or fish",
		    sh);
		return 2;
	}
	if ((keys && shell_print("key-bindings", sh) == -1) ||
	    (completion && shell_print("completion", sh) == -1) ||
	    fflush(stdout) == EOF) {
		if (errno != EPIPE)
			log_warn("stdout");
		return 2;
	}
	return 0;
}
