/*
 * Internal: Dockerfile word expansion, as BuildKit's shell lexer (frontend/dockerfile/shell)
 * does it: quotes, the escape character, $v, ${v}, and the ${v:-w} family of modifiers.
 *
 *	struct fe_vars vars = FE_VARS_INIT;
 *	fe_vars_set(&vars, "a", "x");
 *	struct fe_shlex lx = {.escape = '\\', .vars = &vars};
 *	char *out;
 *	fe_expand_word(&lx, "${a:-y}/bin", &out, &err);   // "x/bin"
 */
#ifndef KILN_FE_SHLEX_H
#define KILN_FE_SHLEX_H

#include "fe.h"

/* An ordered set of variables (later set replaces earlier, keeping its place). */
struct fe_vars {
	struct kiln_strv kv; /* "KEY=VALUE"; change only through fe_vars_set */
	size_t *slots;       /* hash index: kv position + 1, 0 = empty; size a power of 2 */
	size_t nslots;
};
#define FE_VARS_INIT {KILN_STRV_INIT}
void fe_vars_set(struct fe_vars *vars, const char *key, const char *value);
/* The value, or NULL when unset. */
const char *fe_vars_get(const struct fe_vars *vars, const char *key);
void fe_vars_copy(struct fe_vars *dst, const struct fe_vars *src);
void fe_vars_release(struct fe_vars *vars);

struct fe_shlex {
	char escape;                 /* '\\' or '`' */
	const struct fe_vars *vars;  /* where $v is looked up */
	/* Optional fallback looked up when vars has no value (NULL: none). */
	const char *(*lookup)(void *ctx, const char *name);
	void *lookup_ctx;
};

/* Expand one word: quotes removed, escapes applied, variables substituted; whitespace is
 * kept as it is. *ret is malloc'ed. Fails on ${v:?msg}/${v?msg} and bad syntax. */
int fe_expand_word(const struct fe_shlex *lx, const char *word, char **ret, struct kiln_err *err);
/* Expand and split into words at unquoted whitespace (as ProcessWords does). */
int fe_expand_words(const struct fe_shlex *lx, const char *word, struct kiln_strv *ret,
		    struct kiln_err *err);

#endif
