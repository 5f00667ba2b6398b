/* alloc.c - see alloc.h. */
#include "alloc.h"
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Armed by tests only (no flag, no environment variable reaches it); read
 * by every thread that allocates, so atomic: the daemon's walkers,
 * workers and watcher allocate while a test's loop thread does.
 */
static atomic_ulong alloc_countdown;
static atomic_int alloc_fired;
static atomic_ulong alloc_calls;
static _Thread_local int alloc_exempt_depth;

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
