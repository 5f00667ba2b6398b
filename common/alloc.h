/*
 * alloc.h - the one door to malloc, with failure injection for tests.
 *
 * Owns: the injection switch (a countdown to the one allocation to fail,
 * shared by every thread), the count of fidx_* allocations made, and each
 * thread's exemption from both.
 * Never touches: what callers do with the memory.
 *
 * Two families. fidx_malloc() and friends may return NULL: use them for
 * anything whose size input controls (paths, candidate lists, queries), and
 * turn NULL into an error the user sees. xmalloc() and friends never
 * return NULL: they are for small fixed control structures, where running
 * out of memory is a broken machine, not bad input (tmux's xmalloc).
 *
 * alloc_fail_at(n) makes the n-th fidx_* allocation from now fail (and only
 * that one), so tests can walk every error path (SQLite's test_malloc.c).
 * It counts nothing else: memory use is `fidx stats`' `memory` (malloc's
 * own figures and RSS), not this file's.
 * No fidx source calls malloc directly: the loop and the worker pool
 * take xmalloc (made once at start-up, fixed size); tests/test_*.c walk
 * alloc_fail_at() over the rest (query, proto, visits, index, walk).
 * jansson allocates through fidx_malloc (proto_alloc_init, called by
 * fidxd at start-up and by the tests) and PCRE2 through a general
 * context on it (regex.c), so tests/test_oom.c fails their allocations
 * too, across whole requests to a daemon context in the test's process.
 * libgit2 still allocates on its own (NEEDSWORK: GIT_OPT_SET_ALLOCATOR).
 * The switch is atomic: every thread's allocations count, the n-th of
 * them all fails, whichever thread makes it.
 */
#ifndef FIDX_ALLOC_H
#define FIDX_ALLOC_H

#include <stddef.h>

void *fidx_malloc(size_t size);
void *fidx_calloc(size_t n, size_t size);
/* Like reallocarray(3): checks n * size for overflow. */
void *fidx_reallocarray(void *p, size_t n, size_t size);
char *fidx_strndup(const char *s, size_t n);
char *fidx_strdup(const char *s);

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);

/* Fails the n-th fidx_* allocation after this call; 0 turns injection off. */
void alloc_fail_at(unsigned long n);
/* True once the injected failure has happened. */
int alloc_failed(void);
/* fidx_* allocations so far, every thread's (for tests: how many to walk). */
unsigned long alloc_calls_made(void);
/*
 * alloc_exempt(1) ... alloc_exempt(0): this thread's allocations in
 * between are neither counted nor failed (a test's own checks, made with
 * jansson, between the daemon's steps on the same thread).
 */
void alloc_exempt(int on);

#endif
