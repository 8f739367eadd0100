/* Allocation that never fails: out of memory is not a condition kiln recovers from. */
#include "base.h"

static void __attribute__((noreturn))
die_oom(size_t size)
{
	fprintf(stderr, "kiln: out of memory (allocating %zu bytes)\n", size);
	abort();
}

void *
kiln_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		die_oom(size);
	return p;
}

void *
kiln_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		die_oom(nmemb * size);
	return p;
}

void *
kiln_xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		die_oom(size);
	return p;
}

void *
kiln_xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(nmemb, size, &total)) {
		fprintf(stderr, "kiln: allocation size overflow (%zu * %zu)\n", nmemb, size);
		abort();
	}
	return kiln_xrealloc(ptr, total);
}

char *
kiln_xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		die_oom(strlen(s));
	return p;
}

char *
kiln_xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		die_oom(n);
	return p;
}

char *
kiln_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		die_oom(0);
	return s;
}

void
kiln_xgrow(void **arr, size_t *alloc, size_t need, size_t elem_size)
{
	if (need <= *alloc)
		return;
	size_t n = *alloc ? *alloc : 8;
	while (n < need) {
		if (__builtin_mul_overflow(n, 2, &n)) {
			n = need;
			break;
		}
	}
	*arr = kiln_xreallocarray(*arr, n, elem_size);
	*alloc = n;
}
