/*
 * fidx.c - the `fidx` command: dispatch to subcommands.
 *
 * For now only `fidx filter` exists; the daemon's subcommands join here.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "../common/log.h"

static void
fidx_usage(FILE *f)
{
	fprintf(f,
	    "usage: fidx filter [options] QUERY < candidates\n"
	    "       fidx --help | --version\n"
	    "Run 'fidx filter --help' for the filter's options.\n");
}

int
main(int argc, char **argv)
{
	log_init("fidx", 0);
	if (argc < 2) {
		fidx_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "filter") == 0)
		return filter_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fidx_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("fidx %s\n", FIDX_VERSION);
		return 0;
	}
	log_warnx("unknown command '%s'; see fidx --help", argv[1]);
	return 2;
}
