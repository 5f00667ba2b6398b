/*
 * output.h - how the CLI prints the daemon's answers.
 *
 * Owns: query results as paths relative to the current directory (with
 * highlight positions moved along), the `ls` table and the `stats` tree.
 * Never touches: the socket; the exit status (callers decide).
 *
 * The daemon names files relative to the project root. The CLI prints
 * them relative to where the user stands: with root /a and cwd /a/src,
 * "src/main.c" prints as "main.c" and "lib/x.c" as "../lib/x.c". When
 * the two share nothing but "/", the absolute path is clearer and is
 * printed instead. A highlight position follows its byte; bytes replaced
 * by "../" lose theirs.
 */
#ifndef FIDX_OUTPUT_H
#define FIDX_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct output_opts {
	const char *root;	/* realpath of the project root */
	const char *cwd;	/* realpath of the current directory */
	bool nul;		/* -0: NUL after each path, not '\n' */
	bool color;		/* highlight matched bytes */
	bool positions;		/* "p1,p2,...<TAB>" before each path */
	bool git;		/* "XY " (git's letters) before each path */
};

/*
 * git's two status letters and a space, "   " for none: coloured as git
 * colours them (the index's green, the work tree's red) when color.
 */
void output_git_letters(const char *xy, bool color);

/*
 * Prints each result of a query response (its "results" array). Returns
 * the number printed, or -1 (reported) on a malformed result or OOM.
 */
long output_results(json_t *results, const struct output_opts *o);

/*
 * Prints the `projects` array as a table, one project a line; cmd is
 * how a hint names fidx ("fidx --socket S" for a non-default socket).
 */
void output_projects(json_t *projects, const char *cmd);

/* What a project's state means for the command that asked. */
enum output_verdict {
	OUTPUT_COMPLETE,	/* ready (or still indexing) */
	OUTPUT_PARTIAL,		/* capped: usable, but files are missing */
	OUTPUT_FAILED,		/* error or gone: the walk did not happen */
};

/*
 * Says on stderr why the project p (an object with "state", and maybe
 * "message", "capped" and "cap", the cap hit: "files" or "bytes") is
 * not complete; cmd names fidx in hints. With notes, a
 * message on a complete project is shown too (a rebuild that reindex
 * waited for may have been cut, the live index kept).
 */
enum output_verdict output_project_verdict(json_t *p, const char *root,
    const char *cmd, bool notes);

/* Prints an object as "key: value" lines, nested objects indented. */
void output_tree(json_t *obj, int indent);

#endif
