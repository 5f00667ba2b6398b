/*
 * shell.h - `fidx shell bash|zsh|fish`: prints the key bindings (Ctrl-T,
 * Alt-C, on `fidx pick`) and the completion for fidx, for the shell to
 * evaluate: eval "$(fidx shell bash)", fidx shell fish | source.
 *
 * Owns: the choice of scripts printed and their order.
 * Never touches: the daemon, the terminal; the scripts' text is that of
 * cli/shell/, embedded at build time (cli/shell/embed.sh makes
 * shell_scripts[]), so an installed fidx needs no file of its own.
 */
#ifndef FIDX_SHELL_H
#define FIDX_SHELL_H

#include <stddef.h>

/* One embedded file of cli/shell/, by its base name. */
struct shell_script {
	const char *name;		/* "completion.zsh" */
	const unsigned char *text;	/* NUL-terminated too */
	size_t len;			/* without the NUL */
};

/* Every file embedded, from the generated shell_scripts.c. */
extern const struct shell_script shell_scripts[];
extern const size_t shell_scripts_count;

/*
 * `fidx shell SHELL [--completion | --key-bindings]`, argv from "shell"
 * on. Exit status: 0 printed, 2 a bad command line or stdout failed.
 */
int shell_main(int argc, char **argv, const char *sock);

#endif
