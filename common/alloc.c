/* alloc.c - see alloc.h. */
#include "alloc.h"
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/*
 * Armed by tests only (no flag, no environment variable reaches it); read
 * by every thread that allocates, so atomic: the daemon's walkers,
 * workers and watcher allocate while a test's loop thread does.
 */
static atomic_ulong alloc_countdown;
static atomic_int alloc_fired;
static atomic_ulong alloc_calls;
static _Thread_local int alloc_exempt_depth;
static atomic_size_t alloc_big_mapped;
static atomic_size_t alloc_big_given_back;

static int
alloc_should_fail(void)
{
	unsigned long c;

	if (alloc_exempt_depth > 0)
		return 0;
	atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
	c = atomic_load_explicit(&alloc_countdown, memory_order_relaxed);
	while (c != 0) {
		if (!atomic_compare_exchange_weak(&alloc_countdown, &c, c - 1))
			continue;
		if (c == 1) {
			atomic_store(&alloc_fired, 1);
			errno = ENOMEM;
			return 1;
		}
		return 0;
	}
	return 0;
}

void
alloc_fail_at(unsigned long n)
{
	atomic_store(&alloc_countdown, n);
	atomic_store(&alloc_fired, 0);
}

int
alloc_failed(void)
{
	return atomic_load(&alloc_fired);
}

unsigned long
alloc_calls_made(void)
{
	return atomic_load(&alloc_calls);
}

void
alloc_exempt(int on)
{
	alloc_exempt_depth += on ? 1 : -1;
}

void *
fidx_malloc(size_t size)
{
	if (alloc_should_fail())
		return NULL;
	return malloc(size == 0 ? 1 : size);
}

void *
fidx_calloc(size_t n, size_t size)
{
	if (alloc_should_fail())
		return NULL;
	return calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
}

void *
fidx_reallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	if (alloc_should_fail())
		return NULL;
	return realloc(p, n * size == 0 ? 1 : n * size);
}

char *
fidx_strndup(const char *s, size_t n)
{
	char *d;

	if ((d = fidx_malloc(n + 1)) == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void *
xmalloc(size_t size)
{
	void *p;

	if ((p = malloc(size == 0 ? 1 : size)) == NULL)
		fatal("malloc %zu bytes", size);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL)
		fatal("calloc %zu x %zu bytes", n, size);
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	void *q;

	if (size != 0 && n > SIZE_MAX / size)
		fatalx("reallocarray %zu x %zu overflows", n, size);
	if ((q = realloc(p, n * size == 0 ? 1 : n * size)) == NULL)
		fatal("realloc %zu x %zu bytes", n, size);
	return q;
}

char *
xstrdup(const char *s)
{
	char *d;

	if ((d = strdup(s)) == NULL)
		fatal("strdup");
	return d;
}

char *
fidx_strdup(const char *s)
{
	return fidx_strndup(s, strlen(s));
}

/*
 * A big block's header: the mapping's length (0 for a block from malloc)
 * and the size asked for. 16 bytes, so what follows keeps malloc's
 * alignment.
 */
struct alloc_big {
	size_t maplen;
	size_t size;
};

#if defined(__SANITIZE_ADDRESS__)
static atomic_int alloc_big_on = 0;
#else
static atomic_int alloc_big_on = 1;
#endif

static size_t
alloc_big_maplen(size_t total)
{
	size_t page = 4096;

	return (total + page - 1) & ~(page - 1);
}

static void *
alloc_big_map(size_t total)
{
	struct alloc_big *h;
	size_t len = alloc_big_maplen(total);

	h = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (h == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	h->maplen = len;
	atomic_fetch_add_explicit(&alloc_big_mapped, len, memory_order_relaxed);
	return h;
}

void *
fidx_big_malloc(size_t size)
{
	struct alloc_big *h;
	size_t total;

	if (size > SIZE_MAX - 4096 - sizeof(*h)) {
		errno = ENOMEM;
		return NULL;
	}
	if (alloc_should_fail())
		return NULL;
	total = sizeof(*h) + size;
	if (atomic_load_explicit(&alloc_big_on, memory_order_relaxed) &&
	    size >= FIDX_BIG_MIN)
		h = alloc_big_map(total);
	else if ((h = malloc(total)) != NULL)
		h->maplen = 0;
	if (h == NULL)
		return NULL;
	h->size = size;
	return h + 1;
}

void *
fidx_big_reallocarray(void *p, size_t n, size_t size)
{
	struct alloc_big *h, *nh;
	size_t total, len;

	if ((size != 0 && n > SIZE_MAX / size) ||
	    n * size > SIZE_MAX - 4096 - sizeof(*h)) {
		errno = ENOMEM;
		return NULL;
	}
	if (p == NULL)
		return fidx_big_malloc(n * size);
	if (alloc_should_fail())
		return NULL;
	h = (struct alloc_big *)p - 1;
	total = sizeof(*h) + n * size;
	if (h->maplen != 0) {
		/* The kernel moves the pages: nothing is copied. */
		len = alloc_big_maplen(total);
		nh = mremap(h, h->maplen, len, MREMAP_MAYMOVE);
		if (nh == MAP_FAILED) {
			errno = ENOMEM;
			return NULL;
		}
		atomic_fetch_add_explicit(&alloc_big_mapped, len,
		    memory_order_relaxed);
		atomic_fetch_sub_explicit(&alloc_big_mapped, nh->maplen,
		    memory_order_relaxed);
		nh->maplen = len;
		nh->size = n * size;
		return nh + 1;
	}
	if (!atomic_load_explicit(&alloc_big_on, memory_order_relaxed) ||
	    n * size < FIDX_BIG_MIN) {
		if ((nh = realloc(h, total)) == NULL)
			return NULL;
		nh->size = n * size;
		return nh + 1;
	}
	/*
	 * Past the line: from malloc to a mapping of its own. Smaller than
	 * it was only if mapping was off when the block was made (tests).
	 */
	if ((nh = alloc_big_map(total)) == NULL)
		return NULL;
	memcpy(nh + 1, p, h->size < n * size ? h->size : n * size);
	nh->size = n * size;
	free(h);
	return nh + 1;
}

void
fidx_big_free(void *p)
{
	struct alloc_big *h;

	if (p == NULL)
		return;
	h = (struct alloc_big *)p - 1;
	if (h->maplen == 0) {
		free(h);
		return;
	}
	atomic_fetch_sub_explicit(&alloc_big_mapped, h->maplen,
	    memory_order_relaxed);
	munmap(h, h->maplen);
}

/* ---- pools ---- */

/*
 * A chunk: its blocks follow the header, 16-byte aligned, each after a
 * header naming its chunk (NULL: a block of malloc's). live counts the
 * blocks not freed, and one more while a thread cuts from the chunk.
 */
struct alloc_chunk {
	atomic_size_t live;
	size_t used, cap;
	size_t pad_;
};

struct alloc_pooled {
	struct alloc_chunk *chunk;
	size_t pad_;
};

#define ALLOC_CHUNK (256 * 1024)
/* Larger blocks (a dump's buffer) are malloc's, not a chunk's tail. */
#define ALLOC_POOL_MAX (ALLOC_CHUNK / 8)

static _Thread_local int alloc_pool_depth;
static _Thread_local struct alloc_chunk *alloc_pool_cur;
static atomic_size_t alloc_chunks_live;

static void
alloc_chunk_unref(struct alloc_chunk *c)
{
	if (atomic_fetch_sub_explicit(&c->live, 1, memory_order_acq_rel) == 1) {
		atomic_fetch_sub_explicit(&alloc_chunks_live, 1,
		    memory_order_relaxed);
		fidx_big_free(c);
	}
}

void
alloc_pool_begin(void)
{
	alloc_pool_depth++;
}

void
alloc_pool_end(void)
{
	if (--alloc_pool_depth > 0 || alloc_pool_cur == NULL)
		return;
	alloc_chunk_unref(alloc_pool_cur);
	alloc_pool_cur = NULL;
}

/* A block of n bytes (a multiple of 16) from this thread's chunk, or NULL. */
static struct alloc_pooled *
alloc_pool_cut(size_t n)
{
	struct alloc_chunk *c = alloc_pool_cur;
	struct alloc_pooled *b;

	if (c == NULL || c->used + n > c->cap) {
		/* Not counted as an allocation: the block asking for it is. */
		alloc_exempt(1);
		c = fidx_big_malloc(ALLOC_CHUNK);
		alloc_exempt(0);
		if (c == NULL)
			return NULL;
		if (alloc_pool_cur != NULL)
			alloc_chunk_unref(alloc_pool_cur);
		atomic_init(&c->live, 1);
		c->used = sizeof(*c);
		c->cap = ALLOC_CHUNK;
		alloc_pool_cur = c;
		atomic_fetch_add_explicit(&alloc_chunks_live, 1,
		    memory_order_relaxed);
	}
	b = (struct alloc_pooled *)((char *)c + c->used);
	c->used += n;
	atomic_fetch_add_explicit(&c->live, 1, memory_order_relaxed);
	b->chunk = c;
	return b;
}

void *
fidx_pool_malloc(size_t size)
{
	struct alloc_pooled *b = NULL;
	size_t n;

	if (size > SIZE_MAX - 2 * sizeof(*b)) {
		errno = ENOMEM;
		return NULL;
	}
	if (alloc_should_fail())
		return NULL;
	n = (sizeof(*b) + size + 15) & ~(size_t)15;
	if (alloc_pool_depth > 0 && n <= ALLOC_POOL_MAX &&
	    atomic_load_explicit(&alloc_big_on, memory_order_relaxed))
		b = alloc_pool_cut(n);
	if (b == NULL) {
		if ((b = malloc(sizeof(*b) + size)) == NULL)
			return NULL;
		b->chunk = NULL;
	}
	return b + 1;
}

void
fidx_pool_free(void *p)
{
	struct alloc_pooled *b;

	if (p == NULL)
		return;
	b = (struct alloc_pooled *)p - 1;
	if (b->chunk == NULL)
		free(b);
	else
		alloc_chunk_unref(b->chunk);
}

size_t
alloc_pool_chunks(void)
{
	return atomic_load_explicit(&alloc_chunks_live, memory_order_relaxed);
}

void
alloc_big_maps(int on)
{
	atomic_store(&alloc_big_on, on);
}

size_t
fidx_big_size(const void *p)
{
	return ((const struct alloc_big *)p - 1)->size;
}

int
fidx_big_mapped(const void *p)
{
	return ((const struct alloc_big *)p - 1)->maplen != 0;
}

void
fidx_big_discard(void *p, size_t off, size_t len)
{
	uintptr_t lo, hi, page = 4096;

	if (!fidx_big_mapped(p) || len == 0)
		return;
	lo = ((uintptr_t)p + off + page - 1) & ~(page - 1);
	hi = ((uintptr_t)p + off + len) & ~(page - 1);
	if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
		atomic_fetch_add_explicit(&alloc_big_given_back, hi - lo,
		    memory_order_relaxed);
}

size_t
alloc_big_discarded(void)
{
	return atomic_load_explicit(&alloc_big_given_back,
	    memory_order_relaxed);
}

size_t
alloc_big_bytes(void)
{
	return atomic_load_explicit(&alloc_big_mapped, memory_order_relaxed);
}
