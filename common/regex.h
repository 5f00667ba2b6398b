/*
 * regex.h - one PCRE2 pattern made to match paths of any bytes.
 *
 * Owns: the two compilations of a pattern (UTF mode and byte mode) and
 * the rule that says which one a subject is matched with.
 * Never touches: match data (each caller keeps its own, per thread),
 * smart case and other options (the caller passes them), threads.
 *
 * Why two: UTF mode reads a valid UTF-8 path a character at a time ("."
 * is "é"); PCRE2_MATCH_INVALID_UTF lets it run on any bytes, but (PCRE2
 * 10.42, checked) no item matches an invalid byte there, not ".", "[^e]"
 * or "\C", so "caf." could never find a Latin-1 "caf\xe9". A subject
 * that is not valid UTF-8 is therefore matched in byte mode, where every
 * byte is one character, as the fuzzy and exact modes see it. A pattern
 * that needs UTF mode (\x{100}) keeps it for every subject; one that is
 * not UTF-8 itself (a Latin-1 byte) has only byte mode. Only when neither
 * compiles is the pattern bad.
 *
 * A compiled regex is read-only: threads may match with it at once.
 * The JIT reads past a subject's end: see QUERY_PAD (query.h).
 */
#ifndef FIDX_REGEX_H
#define FIDX_REGEX_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif

#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* Fields are regex.c's; callers hold one and pass it by pointer. */
struct regex {
	pcre2_code *utf;	/* UTF mode, or NULL: not a UTF pattern */
	pcre2_code *bytes;	/* byte mode, or NULL: needs UTF mode */
};

/*
 * Compiles text (len bytes) with opts (PCRE2_CASELESS, ...; the modes are
 * added here), JIT too where it can. On failure returns -1 with rx
 * holding nothing and err saying "bad <what> at offset N: <PCRE2's
 * reason>" (what: "regex", "exclude regex") with errno EINVAL, or, with
 * errno ENOMEM, that PCRE2 ran out of memory (not a bad pattern).
 */
int regex_compile(struct regex *rx, const char *text, size_t len,
    uint32_t opts, const char *what, struct fidx_err *err);

/* A compilation of rx, for sizing match data: both have the same groups. */
const pcre2_code *regex_any(const struct regex *rx);

/* The compilation that subject s (len bytes) is matched with. */
const pcre2_code *regex_code(const struct regex *rx, const char *s,
    size_t len);

/* Frees both compilations; rx may be released again. */
void regex_release(struct regex *rx);

/*
 * Frees the compile context every pattern is made with (made once, on
 * the first compile), so a leak checker at exit sees only what fidx
 * leaked. Call once, at exit, when no pattern will be compiled again.
 */
void regex_shutdown(void);

#endif
