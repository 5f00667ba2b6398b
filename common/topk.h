/*
 * topk.h - the k best results of a query, kept in a bounded heap.
 *
 * Owns: the heap array (k items, allocated once at topk_init).
 * Never touches: the paths the items point to (borrowed from the caller's
 * arena, which must outlive the heap), scoring, I/O.
 *
 * Order, best first: higher score, then shorter path, then bytewise
 * smaller path, then smaller index. The last key makes the order total,
 * so results are the same whatever the thread split or input order.
 * Pushing costs O(log k) only when the item beats the current k-th, so a
 * query over a million candidates never sorts them all.
 */
#ifndef FIDX_TOPK_H
#define FIDX_TOPK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct topk_item {
	const char *path;	/* borrowed */
	uint32_t len;
	uint32_t index;		/* the candidate's position in its list */
	int32_t score;
	uint32_t extra;		/* caller's use (e.g. a source id); not ordered */
};

struct topk {
	struct topk_item *items;	/* a min-heap: items[0] is the worst kept */
	size_t n, k;
};

/* Returns -1 (errno ENOMEM) if the k-item array cannot be allocated. */
int topk_init(struct topk *t, size_t k);
void topk_release(struct topk *t);

/* True if a is better than b in the order above. */
bool topk_better(const struct topk_item *a, const struct topk_item *b);

/* True if an item with this score could still enter: a cheap pre-check. */
static inline bool
topk_wants(const struct topk *t, int32_t score)
{
	return t->n < t->k || (t->k > 0 && score >= t->items[0].score);
}

void topk_push(struct topk *t, const struct topk_item *item);

/* Pushes every item of src into dst (src is left unchanged). */
void topk_merge(struct topk *dst, const struct topk *src);

/* Sorts the kept items best first, in place; the heap is spent after it. */
void topk_sort(struct topk *t);

#endif
