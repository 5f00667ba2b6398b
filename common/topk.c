/* topk.c - see topk.h. */
#include "topk.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

int
topk_init(struct topk *t, size_t k)
{
	t->n = 0;
	t->k = k;
	t->items = fidx_big_reallocarray(NULL, k, sizeof(*t->items));
	return t->items == NULL ? -1 : 0;
}

void
topk_release(struct topk *t)
{
	fidx_big_free(t->items);
	t->items = NULL;
	t->n = t->k = 0;
}

bool
topk_better(const struct topk_item *a, const struct topk_item *b)
{
	int c;

	if (a->score != b->score)
		return a->score > b->score;
	if (a->len != b->len)
		return a->len < b->len;
	if ((c = memcmp(a->path, b->path, a->len)) != 0)
		return c < 0;
	return a->index < b->index;
}

static void
topk_sift_down(struct topk_item *h, size_t n, size_t i)
{
	struct topk_item x = h[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		/* Follow the worse child: the root holds the worst item. */
		if (c + 1 < n && topk_better(&h[c], &h[c + 1]))
			c++;
		if (!topk_better(&x, &h[c]))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

void
topk_push(struct topk *t, const struct topk_item *item)
{
	struct topk_item *h = t->items;

	if (t->k == 0)
		return;
	if (t->n < t->k) {
		size_t i = t->n++;

		while (i > 0) {
			size_t parent = (i - 1) / 2;

			if (!topk_better(&h[parent], item))
				break;
			h[i] = h[parent];
			i = parent;
		}
		h[i] = *item;
		return;
	}
	if (!topk_better(item, &h[0]))
		return;
	h[0] = *item;
	topk_sift_down(h, t->n, 0);
}

void
topk_merge(struct topk *dst, const struct topk *src)
{
	for (size_t i = 0; i < src->n; i++)
		topk_push(dst, &src->items[i]);
}

void
topk_sort(struct topk *t)
{
	/* Heap sort: repeatedly move the worst to the end. */
	for (size_t n = t->n; n > 1; n--) {
		struct topk_item worst = t->items[0];

		t->items[0] = t->items[n - 1];
		t->items[n - 1] = worst;
		topk_sift_down(t->items, n - 1, 0);
	}
}
