/*
 * Cache keys and their recipes. A key must change whenever anything a step's result
 * depends on changes, and nothing else: its definition, its inputs' keys (not digests,
 * so a parent rebuilt to the same key does not invalidate children), and what the op
 * says it reads (content digest, named components). The recipe is kept beside the key so
 * a miss can be explained by diffing it against the last recipe of the same step.
 */
#include "sv_int.h"

static void
digest_of(const json_t *j, char out[KILN_DIGEST_HEX_LEN + 1])
{
	struct kiln_digest d;
	sv_json_digest(j, &d);
	kiln_digest_format(&d, out);
}

json_t *
sv_recipe_new(const struct sv_vertex *v, const char *const *input_keys, const char *content,
              json_t *components)
{
	char def[KILN_DIGEST_HEX_LEN + 1];
	json_t *what = json_pack("{s:s, s:O}", "op", sv_op_name(v->op), "def", v->def);
	digest_of(what, def);
	json_decref(what);

	json_t *inputs = json_array();
	for (size_t i = 0; i < v->ninputs; i++)
		json_array_append_new(inputs, json_string(input_keys[i]));
	json_t *r = json_pack("{s:i, s:s, s:s, s:o}", "v", 1, "op", sv_op_name(v->op), "def", def,
	                      "inputs", inputs);
	if (content)
		json_object_set_new(r, "content", json_string(content));
	if (components && json_object_size(components))
		json_object_set(r, "components", components);
	return r;
}

void
sv_recipe_key(const json_t *recipe, char out[KILN_DIGEST_HEX_LEN + 1])
{
	digest_of(recipe, out);
}

static const char *
str_at(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool
str_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && kiln_str_eq(a, b));
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void reason(struct kiln_buf *out, const char *fmt, ...) KILN_PRINTF(2, 3);

static void
reason(struct kiln_buf *out, const char *fmt, ...)
{
	if (out->len)
		kiln_buf_addstr(out, "; ");
	va_list ap;
	va_start(ap, fmt);
	kiln_buf_vaddf(out, fmt, ap);
	va_end(ap);
}

/* Named components that differ, in name order; returns how many. */
static size_t
explain_components(const json_t *cb, const json_t *cn, const char *desc, struct kiln_buf *out)
{
	size_t n = json_object_size(cb) + json_object_size(cn), k = 0, found = 0;
	if (!n)
		return 0;
	_cleanup_free_ const char **names = kiln_xreallocarray(NULL, n, sizeof(*names));
	const char *name;
	json_t *val;
	json_object_foreach((json_t *)cb, name, val) names[k++] = name;
	json_object_foreach((json_t *)cn, name, val)
	{
		if (!json_object_get(cb, name))
			names[k++] = name;
	}
	qsort(names, k, sizeof(*names), cmp_str);
	for (size_t i = 0; i < k; i++) {
		const char *b = str_at(cb, names[i]), *a = str_at(cn, names[i]);
		if (str_same(a, b))
			continue;
		const char *what = a && b ? "changed" : a ? "was added" : "was removed";
		found++;
		if (kiln_str_has_prefix(names[i], "file "))
			reason(out, "file %s under %s %s", names[i] + 5, desc, what);
		else if (kiln_str_has_prefix(names[i], "build-arg "))
			reason(out, "build arg %s %s", names[i] + 10, what);
		else
			reason(out, "%s %s", names[i], what);
	}
	return found;
}

void
sv_recipe_explain(const json_t *before, const json_t *now, const char *description,
                  struct kiln_buf *out)
{
	const char *desc = description && *description ? description : "this step";
	if (!before) {
		kiln_buf_addf(out, "%s: no earlier build of this step in the cache", desc);
		return;
	}
	struct kiln_buf why = KILN_BUF_INIT;
	json_t *empty = json_object();
	const json_t *cb = json_object_get(before, "components");
	const json_t *cn = json_object_get(now, "components");
	size_t ncomp = explain_components(cb ? cb : empty, cn ? cn : empty, desc, &why);
	json_decref(empty);
	if (!ncomp) {
		/* Build args and files usually show up in the definition or content too; only
		 * when no component names the change is the coarser reason worth giving. */
		if (!str_same(str_at(before, "op"), str_at(now, "op")) ||
		    !str_same(str_at(before, "def"), str_at(now, "def")))
			reason(&why, "the definition of %s changed", desc);
		if (!str_same(str_at(before, "content"), str_at(now, "content")))
			reason(&why, "files read by %s changed", desc);
	}
	const json_t *ib = json_object_get(before, "inputs"), *in = json_object_get(now, "inputs");
	if (json_array_size(ib) != json_array_size(in)) {
		reason(&why, "its inputs changed");
	} else {
		for (size_t i = 0; i < json_array_size(in); i++) {
			if (!str_same(json_string_value(json_array_get(ib, i)),
			              json_string_value(json_array_get(in, i)))) {
				if (i == 0)
					reason(&why, "parent step changed");
				else
					reason(&why, "input step %zu changed", i);
				break;
			}
		}
	}
	if (!why.len)
		kiln_buf_addf(out, "%s: same inputs as before, but no usable cache record", desc);
	else
		kiln_buf_addf(out, "%s: %s", desc, why.buf);
	kiln_buf_release(&why);
}
