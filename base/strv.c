/* A NULL-terminated vector of owned strings, for argv and environment lists. */
#include "base.h"

static char *strv_empty[1];

void
kiln_strv_push_take(struct kiln_strv *sv, char *s)
{
	KILN_GROW(sv->v, sv->alloc, sv->n + 2);
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

void
kiln_strv_push(struct kiln_strv *sv, const char *s)
{
	kiln_strv_push_take(sv, kiln_xstrdup(s));
}

void
kiln_strv_pushf(struct kiln_strv *sv, const char *fmt, ...)
{
	struct kiln_buf sb = KILN_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	kiln_buf_vaddf(&sb, fmt, ap);
	va_end(ap);
	kiln_strv_push_take(sv, kiln_buf_detach(&sb, NULL));
}

void
kiln_strv_release(struct kiln_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	*sv = (struct kiln_strv)KILN_STRV_INIT;
}

char **
kiln_strv_detach(struct kiln_strv *sv)
{
	if (!sv->v)
		KILN_GROW(sv->v, sv->alloc, 1), sv->v[0] = NULL;
	char **v = sv->v;
	*sv = (struct kiln_strv)KILN_STRV_INIT;
	return v;
}

char *const *
kiln_strv_get(struct kiln_strv *sv)
{
	return sv->v ? sv->v : strv_empty;
}
