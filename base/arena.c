/* A bump allocator: parse trees and graphs are built once and freed in one call. */
#include "base.h"

#define ARENA_BLOCK 65536

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

struct kiln_arena {
	struct arena_block *head;
};

struct kiln_arena *
kiln_arena_new(void)
{
	return kiln_xcalloc(1, sizeof(struct kiln_arena));
}

void
kiln_arena_free(struct kiln_arena *a)
{
	if (!a)
		return;
	struct arena_block *b = a->head;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	free(a);
}

void *
kiln_arena_alloc_uninit(struct kiln_arena *a, size_t size)
{
	size_t rounded = (size + 15) & ~(size_t)15;
	if (rounded < size)
		abort();
	struct arena_block *b = a->head;
	if (!b || b->size - b->used < rounded) {
		size_t cap = rounded > ARENA_BLOCK / 4 ? rounded : ARENA_BLOCK;
		if (rounded > ARENA_BLOCK / 4 && b) {
			/* A big allocation gets its own block behind the current one, so the
			 * current block's free space is not wasted. */
			struct arena_block *big = kiln_xmalloc(sizeof(*big) + cap);
			big->size = big->used = cap;
			big->next = b->next;
			b->next = big;
			return big->data;
		}
		struct arena_block *nb = kiln_xmalloc(sizeof(*nb) + cap);
		nb->size = cap;
		nb->used = 0;
		nb->next = b;
		a->head = b = nb;
	}
	void *p = b->data + b->used;
	b->used += rounded;
	return p;
}

void *
kiln_arena_alloc(struct kiln_arena *a, size_t size)
{
	void *p = kiln_arena_alloc_uninit(a, size);
	memset(p, 0, size);
	return p;
}

void *
kiln_arena_array(struct kiln_arena *a, size_t nmemb, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(nmemb, size, &total))
		abort();
	return kiln_arena_alloc(a, total);
}

char *
kiln_arena_strndup(struct kiln_arena *a, const char *s, size_t n)
{
	char *p = kiln_arena_alloc_uninit(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
kiln_arena_strdup(struct kiln_arena *a, const char *s)
{
	return kiln_arena_strndup(a, s, strlen(s));
}

char *
kiln_arena_printf(struct kiln_arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct kiln_buf sb = KILN_BUF_INIT;
	kiln_buf_vaddf(&sb, fmt, ap);
	va_end(ap);
	char *p = kiln_arena_strndup(a, sb.buf, sb.len);
	kiln_buf_release(&sb);
	return p;
}
