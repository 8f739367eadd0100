/* Unit tests for frontend/convert.c's build inputs: --build-context (fe_plan_opts
 * named_contexts) and what the base image's config brings (image_config). */
#include "testlib.h"

#include "frontend/fe.h"

#include <jansson.h>

struct fx {
	char *dir;
	char *other; /* a second directory for NAME=DIR */
	struct fe_named_context nc[4];
	size_t nnc;
	const char *base_config; /* image_config's answer (JSON), NULL: unknown */
	size_t config_calls;
};

static int
setup(void **state)
{
	struct fx *f = kiln_xcalloc(1, sizeof(*f));
	f->dir = test_tmpdir_new();
	f->other = test_tmpdir_new();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	test_tmpdir_remove(f->dir);
	test_tmpdir_remove(f->other);
	free(f);
	return 0;
}

static json_t *
image_config(void *data, const char *ref, const char *platform)
{
	struct fx *f = data;
	(void)ref;
	(void)platform;
	f->config_calls++;
	if (!f->base_config)
		return NULL;
	json_error_t je;
	json_t *j = json_loads(f->base_config, 0, &je);
	assert_non_null(j);
	return j;
}

static json_t *
plan_opts(struct fx *f, const char *df, bool with_config, struct kiln_err *err)
{
	test_write_file(f->dir, "Dockerfile", df);
	struct fe_plan_opts o = FE_PLAN_OPTS_INIT;
	o.context_dir = f->dir;
	o.named_contexts = f->nc;
	o.nnamed_contexts = f->nnc;
	if (with_config) {
		o.image_config = image_config;
		o.image_config_data = f;
	}
	struct sv_graph *g = NULL;
	if (fe_plan(&o, &g, err) < 0)
		return NULL;
	struct kiln_buf out = KILN_BUF_INIT;
	sv_graph_to_json(g, &out);
	sv_graph_free(g);
	json_error_t je;
	json_t *j = json_loads(out.buf, 0, &je);
	kiln_buf_release(&out);
	assert_non_null(j);
	return j;
}

static json_t *
plan(struct fx *f, const char *df, bool with_config)
{
	struct kiln_err err = KILN_ERR_INIT;
	json_t *j = plan_opts(f, df, with_config, &err);
	if (!j) {
		char *s = kiln_err_format(&err);
		fail_msg("fe_plan failed: %s", s);
	}
	return j;
}

static char *
plan_err(struct fx *f, const char *df)
{
	struct kiln_err err = KILN_ERR_INIT;
	json_t *j = plan_opts(f, df, false, &err);
	assert_null(j);
	char *s = kiln_err_format(&err);
	kiln_err_release(&err);
	return s;
}

/* The vertex whose description contains `needle` (the first one), or NULL. */
static json_t *
vertex(json_t *g, const char *needle)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(g, "vertices"), i, v)
	{
		const char *d = json_string_value(json_object_get(v, "description"));
		if (d && strstr(d, needle))
			return v;
	}
	return NULL;
}

static const char *
def_str(json_t *v, const char *key)
{
	assert_non_null(v);
	return json_string_value(json_object_get(json_object_get(v, "def"), key));
}

/* Every vertex with def.type == `type`, counted. */
static size_t
count_sources(json_t *g, const char *type, const char *key, const char *value)
{
	size_t n = 0, i;
	json_t *v;
	json_array_foreach(json_object_get(g, "vertices"), i, v)
	{
		const char *t = def_str(v, "type");
		const char *x = key ? def_str(v, key) : NULL;
		if (t && kiln_str_eq(t, type) && (!key || (x && kiln_str_eq(x, value))))
			n++;
	}
	return n;
}

static const char *
digest_of(json_t *g, const char *needle)
{
	json_t *v = vertex(g, needle);
	assert_non_null(v);
	return json_string_value(json_object_get(v, "digest"));
}

/* ---- --build-context ---- */

static void
test_convert_context__docker_image_replaces_from_image(void **state)
{
	struct fx *f = *state;
	f->nc[f->nnc++] = (struct fe_named_context){"alpine", "docker-image://busybox:1.36"};
	json_t *g = plan(f,
	                 "FROM alpine AS a\nRUN true\n"
	                 "FROM docker.io/library/alpine:latest\nCOPY --from=a /x /x\n",
	                 false);
	assert_int_equal(count_sources(g, "image", "ref", "docker.io/library/busybox:1.36"), 1);
	assert_int_equal(count_sources(g, "image", "ref", "docker.io/library/alpine:latest"), 0);
	/* RUN's base environment comes from the context's image */
	json_t *run = vertex(g, "RUN true");
	assert_string_equal(def_str(run, "base_env"), "docker.io/library/busybox:1.36");
	json_decref(g);
}

static void
test_convert_context__other_tag_is_not_the_context(void **state)
{
	struct fx *f = *state;
	f->nc[f->nnc++] = (struct fe_named_context){"alpine", "docker-image://busybox"};
	json_t *g = plan(f, "FROM alpine:3.18\n", false);
	assert_int_equal(count_sources(g, "image", "ref", "docker.io/library/alpine:3.18"), 1);
	json_decref(g);
}

static void
test_convert_context__dir_replaces_stage_for_copy_from(void **state)
{
	struct fx *f = *state;
	f->nc[f->nnc++] = (struct fe_named_context){"src", f->other};
	test_write_file(f->other, ".dockerignore", "*.key\n");
	json_t *g = plan(f,
	                 "FROM busybox AS src\nRUN echo stage\n"
	                 "FROM busybox\nCOPY --from=src . /x\n"
	                 "RUN --mount=from=src,target=/m true\n",
	                 false);
	/* the stage's RUN is not planned: the directory stands for the stage */
	assert_null(vertex(g, "RUN echo stage"));
	json_t *src = vertex(g, "[context src]");
	assert_non_null(src);
	char *real = realpath(f->other, NULL);
	assert_string_equal(def_str(src, "dir"), real);
	free(real);
	json_t *ex = json_object_get(json_object_get(src, "def"), "exclude");
	assert_int_equal(json_array_size(ex), 1);
	assert_string_equal(json_string_value(json_array_get(ex, 0)), "*.key");
	/* COPY and the mount read it: one source vertex, an input of both */
	assert_int_equal(count_sources(g, "local", "dir", def_str(src, "dir")), 1);
	const char *d = json_string_value(json_object_get(src, "digest"));
	json_t *copy = vertex(g, "COPY --from=src");
	json_t *run = vertex(g, "RUN --mount");
	assert_string_equal(json_string_value(json_array_get(json_object_get(copy, "inputs"), 1)),
	                    d);
	assert_string_equal(json_string_value(json_array_get(json_object_get(run, "inputs"), 1)),
	                    d);
	json_decref(g);
}

static void
test_convert_context__dir_as_from_copies_onto_scratch(void **state)
{
	struct fx *f = *state;
	f->nc[f->nnc++] = (struct fe_named_context){"rootfs", f->other};
	json_t *g = plan(f, "FROM rootfs\n", false);
	json_t *root = vertex(g, "FROM rootfs");
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "op")), "file");
	assert_int_equal(json_array_size(json_object_get(root, "inputs")), 2);
	assert_int_equal(count_sources(g, "scratch", NULL, NULL), 1);
	json_decref(g);
}

static void
test_convert_context__plan_without_contexts_unchanged(void **state)
{
	struct fx *f = *state;
	const char *df = "FROM busybox AS a\nRUN echo a\nFROM busybox\nCOPY --from=a /x /y\n";
	json_t *g1 = plan(f, df, false);
	char *d1 = kiln_xstrdup(digest_of(g1, "COPY"));
	f->nc[f->nnc++] = (struct fe_named_context){"other", "docker-image://busybox"};
	json_t *g2 = plan(f, df, false);
	assert_string_equal(d1, digest_of(g2, "COPY"));
	free(d1);
	json_decref(g1);
	json_decref(g2);
}

static void
test_convert_context__bad_values(void **state)
{
	struct fx *f = *state;
	f->nc[0] = (struct fe_named_context){"x", "git://example.com/repo"};
	f->nnc = 1;
	char *e = plan_err(f, "FROM x\n");
	assert_non_null(strstr(e, "unsupported"));
	free(e);
	f->nc[0] = (struct fe_named_context){"x", "/nonexistent/dir"};
	e = plan_err(f, "FROM x\n");
	assert_non_null(strstr(e, "--build-context x"));
	free(e);
	f->nc[0] = (struct fe_named_context){"x", "docker-image://Not A Ref"};
	e = plan_err(f, "FROM x\n");
	assert_non_null(strstr(e, "--build-context x"));
	free(e);
}

/* ---- the base image's config: ONBUILD triggers, WorkingDir ---- */

static void
test_convert_context__base_triggers_run_after_from(void **state)
{
	struct fx *f = *state;
	f->base_config = "{\"config\": {\"OnBuild\": [\"ARG V=one\", \"RUN echo trig $V\","
	                 " \"ENV FROM_TRIGGER=$V\"]}}";
	json_t *g = plan(f, "FROM busybox\nRUN echo mine\n", true);
	assert_true(f->config_calls >= 1);
	json_t *trig = vertex(g, "RUN echo trig $V");
	assert_non_null(trig);
	json_t *mine = vertex(g, "RUN echo mine");
	assert_non_null(mine);
	/* the trigger's step comes first, and the stage's RUN is built on it */
	assert_string_equal(json_string_value(json_array_get(json_object_get(mine, "inputs"), 0)),
	                    json_string_value(json_object_get(trig, "digest")));
	/* ENV in a trigger expands when it runs: V is the trigger's ARG */
	json_t *env = json_object_get(json_object_get(mine, "def"), "env");
	bool found = false;
	size_t i;
	json_t *e;
	json_array_foreach(env, i, e) found |=
	        kiln_str_eq(json_string_value(e), "FROM_TRIGGER=one");
	assert_true(found);
	/* the triggers are consumed: not in the result's OnBuild */
	json_t *r = json_array_get(json_object_get(g, "results"), 0);
	json_t *cfg = json_object_get(json_object_get(r, "config"), "config");
	assert_null(json_object_get(cfg, "OnBuild"));
	json_decref(g);
}

static void
test_convert_context__bad_base_trigger_names_from_line(void **state)
{
	struct fx *f = *state;
	f->base_config = "{\"config\": {\"OnBuild\": [\"FROM other\"]}}";
	test_write_file(f->dir, "Dockerfile", "# comment\nFROM busybox\n");
	struct fe_plan_opts o = FE_PLAN_OPTS_INIT;
	o.context_dir = f->dir;
	o.image_config = image_config;
	o.image_config_data = f;
	struct sv_graph *g = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	assert_true(fe_plan(&o, &g, &err) < 0);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.msg, "FROM other"));
	kiln_err_release(&err);
}

static void
test_convert_context__relative_workdir_below_base_workdir(void **state)
{
	struct fx *f = *state;
	f->base_config = "{\"config\": {\"WorkingDir\": \"/go\"}}";
	json_t *g = plan(f, "FROM golang\nRUN first\nWORKDIR src\nRUN second\nCOPY a rel/\n", true);
	json_t *first = vertex(g, "RUN first");
	assert_string_equal(def_str(first, "cwd"), "/go");
	assert_null(json_object_get(json_object_get(first, "def"), "default_cwd"));
	assert_string_equal(def_str(vertex(g, "RUN second"), "cwd"), "/go/src");
	json_t *copy = vertex(g, "COPY a rel/");
	json_t *a = json_array_get(json_object_get(json_object_get(copy, "def"), "actions"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "dest")), "/go/src/rel/");
	json_decref(g);
}

static void
test_convert_context__without_image_config_plan_unchanged(void **state)
{
	struct fx *f = *state;
	/* kiln plan: no store, so "/" and the flag that lets the build take the image's */
	json_t *g = plan(f, "FROM golang\nRUN first\nWORKDIR src\nRUN second\n", false);
	json_t *first = vertex(g, "RUN first");
	assert_string_equal(def_str(first, "cwd"), "/");
	assert_true(json_is_true(json_object_get(json_object_get(first, "def"), "default_cwd")));
	assert_string_equal(def_str(vertex(g, "RUN second"), "cwd"), "/src");
	char *d1 = kiln_xstrdup(digest_of(g, "RUN second"));
	json_decref(g);
	/* an image without WorkingDir or triggers plans exactly as without the callback */
	f->base_config = "{\"config\": {\"Env\": [\"PATH=/bin\"]}}";
	g = plan(f, "FROM golang\nRUN first\nWORKDIR src\nRUN second\n", true);
	assert_string_equal(digest_of(g, "RUN second"), d1);
	free(d1);
	json_decref(g);
}

static void
test_convert_context__image_config_asked_once_per_image(void **state)
{
	struct fx *f = *state;
	f->base_config = "{\"config\": {\"WorkingDir\": \"/w\"}}";
	json_t *g = plan(f,
	                 "FROM busybox AS a\nRUN a\nFROM busybox AS b\nRUN b\n"
	                 "FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
	                 true);
	assert_int_equal(f->config_calls, 1);
	assert_string_equal(def_str(vertex(g, "RUN b"), "cwd"), "/w");
	json_decref(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_convert_context__docker_image_replaces_from_image, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_convert_context__other_tag_is_not_the_context,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_convert_context__dir_replaces_stage_for_copy_from, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_convert_context__dir_as_from_copies_onto_scratch, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_convert_context__plan_without_contexts_unchanged, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_convert_context__bad_values, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_convert_context__base_triggers_run_after_from,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_convert_context__bad_base_trigger_names_from_line, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_convert_context__relative_workdir_below_base_workdir, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_convert_context__without_image_config_plan_unchanged, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_convert_context__image_config_asked_once_per_image, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
