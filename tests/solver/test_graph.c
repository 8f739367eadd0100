/* Unit tests for solver/graph.c: the plan's JSON (written by hand, so checked against what
 * jansson prints for the same tree) and the digest encoding. */
#include "testlib.h"

#include "solver/sv.h"

#include <jansson.h>

/* A def with every JSON shape the writer handles: escapes, control characters, UTF-8,
 * empty containers, nesting deeper than its indent table, numbers, literals. */
static json_t *
tricky_def(void)
{
	json_t *deep = json_string("bottom");
	for (int i = 0; i < 70; i++)
		deep = json_pack("{s:o}", i % 2 ? "k" : "a", json_pack("[o]", deep));
	json_error_t e;
	json_t *def =
	        json_loads("{\"args\": [\"sh\", \"-c\", \"echo \\\"a\\\\b\\\" \\t\\n\\r\\b\\f "
	                   "\\u0001\\u001f \\u007f é ☃ /\"],"
	                   " \"empty_o\": {}, \"empty_a\": [], \"neg\": -42, \"big\": "
	                   "9007199254740993, \"t\": true, \"f\": false, \"n\": null,"
	                   " \"z\": \"a\\u0000b\", \"real\": 1.5}",
	                   JSON_ALLOW_NUL, &e);
	assert_non_null(def);
	json_object_set_new(def, "deep", deep);
	return def;
}

/* What sv_graph_to_json printed before it was hand-written: a jansson tree of the graph
 * dumped with JSON_INDENT(2) | JSON_PRESERVE_ORDER. */
static char *
jansson_reference(const struct sv_graph *g)
{
	json_t *vs = json_array();
	for (size_t i = 0; i < g->nvertices; i++) {
		const struct sv_vertex *v = g->vertices[i];
		json_t *in = json_array();
		for (size_t j = 0; j < v->ninputs; j++)
			json_array_append_new(in, json_string(v->inputs[j]->digest_hex));
		json_t *jv = json_pack("{s:s, s:s, s:o, s:O}", "digest", v->digest_hex, "op",
		                       sv_op_name(v->op), "inputs", in, "def", v->def);
		if (v->stage)
			json_object_set_new(jv, "stage", json_string(v->stage));
		if (v->description)
			json_object_set_new(jv, "description", json_string(v->description));
		if (v->line)
			json_object_set_new(jv, "line", json_integer(v->line));
		json_array_append_new(vs, jv);
	}
	json_t *rs = json_array();
	for (size_t i = 0; i < g->nresults; i++) {
		const struct sv_result *r = &g->results[i];
		json_t *jr = json_pack("{s:s, s:s, s:b}", "stage", r->name, "vertex",
		                       r->vertex ? r->vertex->digest_hex : "", "target", r->target);
		if (r->config)
			json_object_set(jr, "config", r->config);
		json_array_append_new(rs, jr);
	}
	json_t *root = json_pack("{s:o, s:o}", "vertices", vs, "results", rs);
	char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	assert_non_null(s);
	char *out = kiln_xasprintf("%s\n", s);
	free(s);
	return out;
}

static void
assert_json_matches_jansson(const struct sv_graph *g)
{
	_cleanup_free_ char *want = jansson_reference(g);
	_cleanup_buf_ struct kiln_buf got = KILN_BUF_INIT;
	sv_graph_to_json(g, &got);
	assert_int_equal(got.len, strlen(want));
	assert_string_equal(got.buf, want);

	/* The streamed form writes the same bytes. */
	FILE *f = tmpfile();
	assert_non_null(f);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(sv_graph_write_json(g, fileno(f), &err), 0);
	_cleanup_buf_ struct kiln_buf streamed = KILN_BUF_INIT;
	rewind(f);
	assert_int_equal(kiln_buf_read_fd(&streamed, fileno(f), &err), 0);
	fclose(f);
	assert_string_equal(streamed.buf, want);
}

static void
test_graph__json_empty_graph(void **state)
{
	(void)state;
	struct sv_graph *g = sv_graph_new();
	assert_json_matches_jansson(g);
	sv_graph_free(g);
}

static void
test_graph__json_same_as_jansson(void **state)
{
	(void)state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex_meta m = {.stage = "build", .description = "FROM \"x\"\n", .line = 7};
	struct sv_vertex *src =
	        sv_graph_add(g, SV_OP_SOURCE, json_pack("{s:s}", "type", "scratch"), NULL, 0, &m);
	struct sv_vertex *ex = sv_graph_add(g, SV_OP_EXEC, tricky_def(), &src, 1, NULL);
	struct sv_vertex *in[] = {ex, src};
	sv_graph_add(g, SV_OP_FILE, json_pack("{s:[]}", "actions"), in, 2, &m);
	sv_graph_add_result(g, "build", ex, json_pack("{s:s, s:{}}", "os", "linux", "config"),
	                    true);
	sv_graph_add_result(g, "1", NULL, NULL, false);
	assert_int_equal(g->nvertices, 3);
	assert_json_matches_jansson(g);
	sv_graph_free(g);
}

/* One env array shared by several defs and a config, at two depths, as the frontend
 * shares it between RUNs: the writer reuses its text only where the indent matches. */
static void
test_graph__json_shared_arrays(void **state)
{
	(void)state;
	struct sv_graph *g = sv_graph_new();
	json_t *env = json_array();
	for (int i = 0; i < 12; i++)
		json_array_append_new(env, json_sprintf("V%d=\"%d\"\n", i, i));
	json_t *other = json_deep_copy(env);
	json_array_append_new(other, json_string("LAST=1"));
	struct sv_vertex *prev = NULL;
	for (int i = 0; i < 4; i++) {
		json_t *def =
		        json_pack("{s:[s,i], s:O}", "args", "run", i, "env", i == 2 ? other : env);
		prev = sv_graph_add(g, SV_OP_EXEC, def, prev ? &prev : NULL, prev ? 1 : 0, NULL);
	}
	sv_graph_add_result(g, "0", prev, json_pack("{s:{s:O}}", "config", "Env", env), true);
	assert_int_equal(g->nvertices, 4);
	assert_json_matches_jansson(g);
	json_decref(env);
	json_decref(other);
	sv_graph_free(g);
}

/* A big output crosses the streaming writer's flush size many times. */
static void
test_graph__json_large_graph_streams_whole(void **state)
{
	(void)state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *prev = NULL;
	for (int i = 0; i < 2000; i++) {
		json_t *def = json_pack("{s:[s,s,i]}", "args", "echo", "a long enough argument", i);
		prev = sv_graph_add(g, SV_OP_EXEC, def, prev ? &prev : NULL, prev ? 1 : 0, NULL);
	}
	assert_int_equal(g->nvertices, 2000);
	assert_json_matches_jansson(g);
	sv_graph_free(g);
}

/* The digest encoding, spelled out: digests are cache keys, so a change in how they are
 * computed (buffering, another SHA-256 API) must not change a single one. */
static void
put_len(struct kiln_buf *b, char tag, size_t n)
{
	kiln_buf_addch(b, tag);
	for (int i = 0; i < 8; i++)
		kiln_buf_addch(b, (unsigned char)(n >> (8 * i)));
}

static void
put_str(struct kiln_buf *b, char tag, const char *s)
{
	put_len(b, tag, strlen(s));
	kiln_buf_addstr(b, s);
}

static void
test_graph__digest_encoding(void **state)
{
	(void)state;
	/* {"b": ["x", 3, true], "a": {}} hashed as its keys sort: a, then b. */
	json_t *def = json_pack("{s:[s,i,b], s:{}}", "b", "x", 3, 1, "a");
	_cleanup_buf_ struct kiln_buf enc = KILN_BUF_INIT;
	put_len(&enc, 'o', 2);
	put_str(&enc, 'k', "a");
	put_len(&enc, 'o', 0);
	put_str(&enc, 'k', "b");
	put_len(&enc, 'a', 3);
	put_str(&enc, 's', "x");
	put_len(&enc, 'i', 3);
	put_len(&enc, 't', 0);
	struct kiln_digest want, got;
	kiln_sha256_buf(enc.buf, enc.len, &want);
	sv_json_digest(def, &got);
	assert_memory_equal(got.bytes, want.bytes, sizeof(want.bytes));

	/* A vertex: its op, its def, its inputs' digests. */
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *a = sv_graph_add(g, SV_OP_SOURCE, json_incref(def), NULL, 0, NULL);
	_cleanup_buf_ struct kiln_buf venc = KILN_BUF_INIT;
	put_str(&venc, 'p', "source");
	kiln_buf_add(&venc, enc.buf, enc.len);
	put_len(&venc, 'a', 0);
	kiln_sha256_buf(venc.buf, venc.len, &want);
	assert_memory_equal(a->digest.bytes, want.bytes, sizeof(want.bytes));

	/* A def longer than the hashing buffer, with an input. */
	json_t *big = json_array();
	_cleanup_buf_ struct kiln_buf benc = KILN_BUF_INIT;
	put_str(&benc, 'p', "exec");
	put_len(&benc, 'a', 3000);
	for (int i = 0; i < 3000; i++) {
		char s[32];
		snprintf(s, sizeof(s), "ENV_%d=value", i);
		json_array_append_new(big, json_string(s));
		put_str(&benc, 's', s);
	}
	put_len(&benc, 'a', 1);
	kiln_buf_add(&benc, a->digest.bytes, sizeof(a->digest.bytes));
	struct sv_vertex *b = sv_graph_add(g, SV_OP_EXEC, big, &a, 1, NULL);
	kiln_sha256_buf(benc.buf, benc.len, &want);
	assert_memory_equal(b->digest.bytes, want.bytes, sizeof(want.bytes));

	json_decref(def);
	sv_graph_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_graph__json_empty_graph),
	        cmocka_unit_test(test_graph__json_same_as_jansson),
	        cmocka_unit_test(test_graph__json_shared_arrays),
	        cmocka_unit_test(test_graph__json_large_graph_streams_whole),
	        cmocka_unit_test(test_graph__digest_encoding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
