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

/*
 * fidx_big_*: the blocks that come and go with an index (its segments, a
 * builder's arrays, a segment writer's staging). From FIDX_BIG_MIN up each
 * is a mapping of its own, given back whole when freed. Why not malloc:
 * glibc serves a large request from an arena's free space whenever it has
 * some, whatever M_MMAP_THRESHOLD says (the threshold only chooses how an
 * arena grows), so segments landed in holes that a rebuild's transient
 * blocks left, small long-lived blocks (watch records) filled the gaps
 * between, and half-used pages stayed resident: bench/soak.sh found up to
 * 6 MiB of segments in the arenas, and RSS creeping above a flat heap.
 * Smaller blocks, and every block under ASan (so its redzones still check
 * them), are plain malloc. Each block carries its size in a 16-byte
 * header: free only with fidx_big_free (NULL is fine). They count as
 * fidx_* allocations for alloc_fail_at().
 */
#define FIDX_BIG_MIN (64 * 1024)
void *fidx_big_malloc(size_t size);
void *fidx_big_reallocarray(void *p, size_t n, size_t size);
void fidx_big_free(void *p);
/* The bytes a big block was given (the size last asked for). */
size_t fidx_big_size(const void *p);
/* True when p is a mapping of its own (not malloc'd). */
int fidx_big_mapped(const void *p);
/*
 * Gives the kernel back the whole pages inside [p + off, p + off + len)
 * of a mapped big block: they read as zeros after. Nothing for one from
 * malloc. For a block read once in order, as it is read.
 */
void fidx_big_discard(void *p, size_t off, size_t len);
/* Bytes fidx_big_discard() has given back since start (for tests). */
size_t alloc_big_discarded(void);
/* Bytes held in fidx_big_* mappings now (stats: memory.big_bytes). */
size_t alloc_big_bytes(void);
/* Tests: 1 maps big blocks even under ASan, 0 makes them all malloc. */
void alloc_big_maps(int on);

/*
 * Pools: blocks made together on one thread that die together (a query's
 * results as JSON: 10,000 results are 50,000 small blocks) cut one after
 * another from chunks that are big blocks of their own, while this thread
 * has a pool open (alloc_pool_begin ... alloc_pool_end); a chunk goes back
 * whole when the last block cut from it is freed, on whichever thread.
 * Why: made on a worker between blocks that live longer and freed later
 * on the loop thread, such a tree left holes in the worker's malloc arena,
 * and the next one touched them again; the trim gave them back each
 * second and each answer took them again: bench/soak.sh saw 5 MiB of
 * free arena resident for minutes at a time. fidx_pool_malloc/free are
 * jansson's allocator (proto_alloc_init); with no pool open, or while
 * big blocks are not mapped (under ASan, so its redzones still check each
 * block), they are malloc with a 16-byte header. Counted as fidx_*
 * allocations (alloc_fail_at).
 */
void alloc_pool_begin(void);
void alloc_pool_end(void);
void *fidx_pool_malloc(size_t size);
void fidx_pool_free(void *p);
/* Pool chunks alive now (for tests). */
size_t alloc_pool_chunks(void);

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
