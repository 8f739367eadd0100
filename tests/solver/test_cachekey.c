/* Unit tests for solver/cachekey.c: what a cache key covers (and what it does not), and
 * the one-line explanations of a miss. */
#include "testlib.h"

#include "solver/sv.h"

static struct sv_vertex *
vertex(struct sv_graph *g, enum sv_op op, const char *def, struct sv_vertex *const *in, size_t n)
{
	json_t *j = json_loads(def, 0, NULL);
	assert_non_null(j);
	struct sv_vertex_meta m = {.stage = "0", .description = "COPY . /src", .line = 3};
	return sv_graph_add(g, op, j, in, n, &m);
}

static void
key_of(const struct sv_vertex *v, const char *const *in_keys, const char *content,
       json_t *components, char out[KILN_DIGEST_HEX_LEN + 1])
{
	json_t *r = sv_recipe_new(v, in_keys, content, components);
	sv_recipe_key(r, out);
	json_decref(r);
}

static void
test_cachekey__stable_and_covers_each_part(void **state)
{
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *v = vertex(g, SV_OP_FILE, "{\"a\":1,\"b\":[1,2]}", NULL, 0);
	struct sv_vertex *w = vertex(g, SV_OP_FILE, "{\"b\":[1,2],\"a\":1}", NULL, 0);
	struct sv_vertex *e = vertex(g, SV_OP_EXEC, "{\"a\":1,\"b\":[1,2]}", NULL, 0);
	char k1[KILN_DIGEST_HEX_LEN + 1], k2[KILN_DIGEST_HEX_LEN + 1];
	key_of(v, NULL, NULL, NULL, k1);
	key_of(w, NULL, NULL, NULL, k2);
	assert_true(kiln_digest_valid(k1));
	assert_string_equal(k1, k2); /* key order in the def does not matter */
	key_of(e, NULL, NULL, NULL, k2);
	assert_string_not_equal(k1, k2); /* the op does */
	key_of(v, NULL, "sha256:1111111111111111111111111111111111111111111111111111111111111111",
	       NULL, k2);
	assert_string_not_equal(k1, k2); /* content does */
	json_t *c = json_pack("{s:s}", "build-arg X", "sha256:00");
	key_of(v, NULL, NULL, c, k2);
	assert_string_not_equal(k1, k2); /* named components do */
	json_t *empty = json_object();
	key_of(v, NULL, NULL, empty, k2);
	assert_string_equal(k1, k2); /* no components is none */
	json_decref(c);
	json_decref(empty);
	sv_graph_free(g);
}

static void
test_cachekey__inputs_enter_by_key_not_digest(void **state)
{
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *p1 = vertex(g, SV_OP_SOURCE, "{\"ref\":\"a\"}", NULL, 0);
	struct sv_vertex *p2 = vertex(g, SV_OP_SOURCE, "{\"ref\":\"b\"}", NULL, 0);
	struct sv_vertex *c1 = vertex(g, SV_OP_EXEC, "{\"args\":[\"make\"]}", &p1, 1);
	struct sv_vertex *c2 = vertex(g, SV_OP_EXEC, "{\"args\":[\"make\"]}", &p2, 1);
	assert_ptr_not_equal(c1, c2); /* different digests */
	const char *ka = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	const char *kb = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	char k1[KILN_DIGEST_HEX_LEN + 1], k2[KILN_DIGEST_HEX_LEN + 1];
	key_of(c1, &ka, NULL, NULL, k1);
	key_of(c2, &ka, NULL, NULL, k2);
	assert_string_equal(k1, k2); /* parents with equal keys: equal children */
	key_of(c1, &kb, NULL, NULL, k2);
	assert_string_not_equal(k1, k2);
	json_t *r = sv_recipe_new(c1, &ka, NULL, NULL);
	assert_string_equal(json_string_value(json_array_get(json_object_get(r, "inputs"), 0)), ka);
	assert_true(kiln_digest_valid(json_string_value(json_object_get(r, "def"))));
	assert_string_equal(json_string_value(json_object_get(r, "op")), "exec");
	json_decref(r);
	sv_graph_free(g);
}

static char *
explain(const json_t *before, const json_t *now)
{
	struct kiln_buf b = KILN_BUF_INIT;
	sv_recipe_explain(before, now, "COPY . /src", &b);
	return kiln_buf_detach(&b, NULL);
}

static json_t *
recipe(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	return j;
}

static void
test_cachekey__explain_names_what_changed(void **state)
{
	json_t *base = recipe("{\"op\":\"file\",\"def\":\"d1\",\"inputs\":[\"k1\",\"k2\"],"
	                      "\"content\":\"c1\",\"components\":{\"file src/a.c\":\"x\","
	                      "\"file src/b.c\":\"y\",\"build-arg FOO\":\"f\"}}");
	struct {
		const char *now, *want;
	} cases[] = {
	        {"{\"op\":\"file\",\"def\":\"d1\",\"inputs\":[\"k1\",\"k2\"],\"content\":\"c2\","
	         "\"components\":{\"file src/a.c\":\"x2\",\"file src/b.c\":\"y\",\"build-arg "
	         "FOO\":\"f\"}}",
	         "COPY . /src: file src/a.c under COPY . /src changed"},
	        {"{\"op\":\"file\",\"def\":\"d2\",\"inputs\":[\"k1\",\"k2\"],\"content\":\"c1\","
	         "\"components\":{\"file src/a.c\":\"x\",\"file src/b.c\":\"y\",\"build-arg "
	         "FOO\":\"g\"}}",
	         "COPY . /src: build arg FOO changed"},
	        {"{\"op\":\"file\",\"def\":\"d1\",\"inputs\":[\"k9\",\"k2\"],\"content\":\"c1\","
	         "\"components\":{\"file src/a.c\":\"x\",\"file src/b.c\":\"y\",\"build-arg "
	         "FOO\":\"f\"}}",
	         "COPY . /src: parent step changed"},
	        {"{\"op\":\"file\",\"def\":\"d1\",\"inputs\":[\"k1\",\"k9\"],\"content\":\"c1\","
	         "\"components\":{\"file src/a.c\":\"x\",\"file src/b.c\":\"y\",\"build-arg "
	         "FOO\":\"f\"}}",
	         "COPY . /src: input step 1 changed"},
	        {"{\"op\":\"file\",\"def\":\"d1\",\"inputs\":[\"k1\",\"k2\"],\"content\":\"c3\","
	         "\"components\":{\"file src/a.c\":\"x\",\"build-arg FOO\":\"f\",\"file "
	         "src/c.c\":\"z\"}}",
	         "COPY . /src: file src/b.c under COPY . /src was removed; file src/c.c under COPY "
	         ". /src was added"},
	        {"{\"op\":\"file\",\"def\":\"d5\",\"inputs\":[\"k1\",\"k2\"],\"content\":\"c1\","
	         "\"components\":{\"file src/a.c\":\"x\",\"file src/b.c\":\"y\",\"build-arg "
	         "FOO\":\"f\"}}",
	         "COPY . /src: the definition of COPY . /src changed"},
	        {"{\"op\":\"file\",\"def\":\"d1\",\"inputs\":[\"k1\",\"k2\"],\"content\":\"c1\","
	         "\"components\":{\"file src/a.c\":\"x\",\"file src/b.c\":\"y\",\"build-arg "
	         "FOO\":\"f\"}}",
	         "COPY . /src: same inputs as before, but no usable cache record"},
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
		json_t *now = recipe(cases[i].now);
		_cleanup_free_ char *s = explain(base, now);
		assert_string_equal(s, cases[i].want);
		json_decref(now);
	}
	_cleanup_free_ char *first = explain(NULL, base);
	assert_string_equal(first, "COPY . /src: no earlier build of this step in the cache");
	json_decref(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cachekey__stable_and_covers_each_part),
	        cmocka_unit_test(test_cachekey__inputs_enter_by_key_not_digest),
	        cmocka_unit_test(test_cachekey__explain_names_what_changed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
