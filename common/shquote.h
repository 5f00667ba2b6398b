/*
 * shquote.h - one shell word, for the commands that hints spell out.
 *
 * Owns: quoting a string so that a POSIX shell reads it back as one word,
 * byte for byte ("fidx --socket '/tmp/my s' ls", "git config --global
 * --add safe.directory '/srv/it'\''s'").
 * Never touches: messages themselves, anything else.
 *
 * A hint is there to be pasted; a path with a space, a quote or a '$'
 * pasted unquoted runs a different command.
 */
#ifndef FIDX_SHQUOTE_H
#define FIDX_SHQUOTE_H

#include <stddef.h>

/*
 * The longest shquote() of n bytes, its NUL included: every byte a ' (as
 * '\'' , 4 bytes), and the two quotes around.
 */
#define SHQUOTE_SIZE(n) (4 * (n) + 3)

/*
 * Writes s into buf as one shell word: as it is when made only of
 * characters no shell treats specially (and not empty), else between
 * single quotes with each ' written '\''. Returns the length it needs,
 * as snprintf does; buf (size > 0) is always NUL-terminated.
 */
size_t shquote(char *buf, size_t size, const char *s);

#endif
