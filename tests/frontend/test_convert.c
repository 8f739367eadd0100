/* Unit tests for frontend/convert*.c: Dockerfile + context -> build graph. */
#include "testlib.h"

#include "frontend/convert.h"
#include "frontend/fe.h"

#include <jansson.h>

struct fx {
	char *dir;
};

static int
setup(void **state)
{
	struct fx *f = kiln_xcalloc(1, sizeof(*f));
	f->dir = test_tmpdir_new();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* Plan `df` in the fixture's context; returns the graph as JSON (sv_graph_to_json), or
 * NULL with *err filled. `args` is a NULL-terminated list of "K=V" or NULL. */
static json_t *
plan_full(struct fx *f, const char *df, const char *target, const char *platform, char *const *args,
          struct kiln_err *err)
{
	test_write_file(f->dir, "Dockerfile", df);
	struct fe_plan_opts o = FE_PLAN_OPTS_INIT;
	o.context_dir = f->dir;
	o.target = target;
	o.build_args = args;
	o.platform = platform;
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
	/* every vertex of every plan carries its metadata */
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(j, "vertices"), i, v)
	{
		assert_true(json_is_string(json_object_get(v, "stage")));
		assert_true(json_is_string(json_object_get(v, "description")));
		assert_true(json_is_array(json_object_get(v, "inputs")));
	}
	return j;
}

static json_t *
plan(struct fx *f, const char *df, const char *target, char *const *args)
{
	struct kiln_err err = KILN_ERR_INIT;
	json_t *j = plan_full(f, df, target, NULL, args, &err);
	if (!j) {
		char *s = kiln_err_format(&err);
		fail_msg("fe_plan failed: %s", s);
	}
	return j;
}

static char *
plan_err(struct fx *f, const char *df, const char *target, char *const *args)
{
	struct kiln_err err = KILN_ERR_INIT;
	json_t *j = plan_full(f, df, target, NULL, args, &err);
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

static json_t *
vertex_by_digest(json_t *g, const char *digest)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(g, "vertices"), i, v)
	{
		if (kiln_str_eq(json_string_value(json_object_get(v, "digest")), digest))
			return v;
	}
	return NULL;
}

static json_t *
result(json_t *g, const char *stage)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(g, "results"), i, r)
	{
		if (kiln_str_eq(json_string_value(json_object_get(r, "stage")), stage))
			return r;
	}
	return NULL;
}

static json_t *
config_of(json_t *g, const char *stage)
{
	json_t *r = result(g, stage);
	assert_non_null(r);
	return json_object_get(json_object_get(r, "config"), "config");
}

/* Does the string array `a` contain `s`? */
static bool
has_str(json_t *a, const char *s)
{
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e)
	{
		if (json_is_string(e) && kiln_str_eq(json_string_value(e), s))
			return true;
	}
	return false;
}

static json_t *
run_env(json_t *g, const char *needle)
{
	json_t *v = vertex(g, needle);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "op")), "exec");
	return json_object_get(json_object_get(v, "def"), "env");
}

static const char *
digest_of(json_t *g, const char *needle)
{
	json_t *v = vertex(g, needle);
	assert_non_null(v);
	return json_string_value(json_object_get(v, "digest"));
}

/* ---- ARG scoping ---- */

static void
test_convert__global_arg_usable_in_from(void **state)
{
	json_t *g = plan(*state, "ARG IMG=alpine\nARG TAG=3.19\nFROM $IMG:${TAG}\nRUN true\n", NULL,
	                 NULL);
	json_t *src = vertex(g, "FROM ");
	assert_non_null(src);
	assert_string_equal(json_string_value(json_object_get(json_object_get(src, "def"), "ref")),
	                    "docker.io/library/alpine:3.19");
	json_decref(g);
}

static void
test_convert__global_arg_invisible_until_redeclared(void **state)
{
	json_t *g = plan(*state,
	                 "ARG V=1\nFROM busybox\nENV before=${V:-unset}\nARG V\nENV after=$V\n"
	                 "RUN echo\n",
	                 NULL, NULL);
	json_t *env = config_of(g, "0");
	assert_true(has_str(json_object_get(env, "Env"), "before=unset"));
	assert_true(has_str(json_object_get(env, "Env"), "after=1"));
	json_decref(g);
}

static void
test_convert__stage_arg_default_and_build_arg_override(void **state)
{
	const char *df = "ARG G=global\nFROM busybox\nARG A=default\nARG G\nRUN echo $A $G\n";
	json_t *g = plan(*state, df, NULL, NULL);
	json_t *env = run_env(g, "RUN echo");
	assert_true(has_str(env, "A=default"));
	assert_true(has_str(env, "G=global"));
	json_decref(g);

	char *args[] = {"A=cli", "G=cli-global", NULL};
	g = plan(*state, df, NULL, args);
	env = run_env(g, "RUN echo");
	assert_true(has_str(env, "A=cli"));
	assert_true(has_str(env, "G=cli-global"));
	json_decref(g);
}

static void
test_convert__arg_in_run_env_not_in_config(void **state)
{
	json_t *g = plan(*state, "FROM busybox\nARG SECRETISH=1\nENV E=2\nRUN env\n", NULL, NULL);
	json_t *env = run_env(g, "RUN env");
	assert_true(has_str(env, "SECRETISH=1"));
	assert_true(has_str(env, "E=2"));
	json_t *cenv = json_object_get(config_of(g, "0"), "Env");
	assert_true(has_str(cenv, "E=2"));
	assert_false(has_str(cenv, "SECRETISH=1"));
	json_decref(g);
}

static void
test_convert__args_and_env_inherited_from_parent_stage(void **state)
{
	json_t *g = plan(*state,
	                 "FROM busybox AS base\nARG A=1\nENV E=2\n"
	                 "FROM base\nRUN echo $A $E\n",
	                 NULL, NULL);
	json_t *env = run_env(g, "RUN echo");
	assert_true(has_str(env, "A=1"));
	assert_true(has_str(env, "E=2"));
	assert_true(has_str(json_object_get(config_of(g, "1"), "Env"), "E=2"));
	json_decref(g);
}

static void
test_convert__proxy_args(void **state)
{
	const char *df = "FROM busybox\nRUN echo ${HTTP_PROXY:-none}\nLABEL p=${HTTP_PROXY}\n";
	json_t *g = plan(*state, df, NULL, NULL);
	json_t *def = json_object_get(vertex(g, "RUN echo"), "def");
	assert_null(json_object_get(def, "proxy_env"));
	json_decref(g);

	char *args[] = {"HTTP_PROXY=http://proxy:3128", NULL};
	g = plan(*state, df, NULL, args);
	def = json_object_get(vertex(g, "RUN echo"), "def");
	assert_true(has_str(json_object_get(def, "proxy_env"), "HTTP_PROXY=http://proxy:3128"));
	assert_false(has_str(json_object_get(def, "env"), "HTTP_PROXY=http://proxy:3128"));
	/* usable without declaration, never in the image config's Env */
	json_t *cfg = config_of(g, "0");
	assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "Labels"), "p")),
	                    "http://proxy:3128");
	json_t *e;
	size_t i;
	json_array_foreach(json_object_get(cfg, "Env"), i, e)
	{
		assert_null(strstr(json_string_value(e), "PROXY"));
	}
	json_decref(g);
}

static void
test_convert__platform_args(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	json_t *g =
	        plan_full(*state,
	                  "FROM --platform=$BUILDPLATFORM busybox AS b\n"
	                  "ENV before=${TARGETARCH:-unset}\nARG TARGETARCH\nARG TARGETPLATFORM\n"
	                  "RUN echo $TARGETARCH\n"
	                  "FROM busybox:${TARGETARCH}\n",
	                  "b", "linux/arm64/v8", NULL, &err);
	assert_non_null(g);
	json_t *env = run_env(g, "RUN echo");
	assert_true(has_str(env, "TARGETARCH=arm64"));
	assert_true(has_str(env, "TARGETPLATFORM=linux/arm64"));
	assert_true(has_str(json_object_get(config_of(g, "b"), "Env"), "before=unset"));
	json_decref(g);

	g = plan_full(*state, "FROM busybox:${TARGETARCH}\n", NULL, "linux/arm/v7", NULL, &err);
	assert_non_null(g);
	json_t *src = json_object_get(vertex(g, "FROM"), "def");
	assert_string_equal(json_string_value(json_object_get(src, "ref")),
	                    "docker.io/library/busybox:arm");
	assert_string_equal(json_string_value(json_object_get(src, "platform")), "linux/arm/v7");
	json_decref(g);
}

/* ---- ENV semantics ---- */

static void
test_convert__env_sees_variables_before_instruction(void **state)
{
	json_t *g = plan(*state, "FROM scratch\nENV a=old\nENV a=new b=$a\nENV c=$a\n", NULL, NULL);
	json_t *env = json_object_get(config_of(g, "0"), "Env");
	assert_true(has_str(env, "a=new"));
	assert_true(has_str(env, "b=old"));
	assert_true(has_str(env, "c=new"));
	/* FROM scratch has BuildKit's default PATH */
	assert_true(
	        has_str(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	json_decref(g);
}

static void
test_convert__run_is_not_expanded(void **state)
{
	json_t *g = plan(*state, "FROM busybox\nENV X=1\nRUN echo $X\nRUN [\"echo\", \"$X\"]\n",
	                 NULL, NULL);
	json_t *a = json_object_get(json_object_get(vertex(g, "RUN echo"), "def"), "args");
	assert_string_equal(json_string_value(json_array_get(a, 0)), "/bin/sh");
	assert_string_equal(json_string_value(json_array_get(a, 1)), "-c");
	assert_string_equal(json_string_value(json_array_get(a, 2)), "echo $X");
	a = json_object_get(json_object_get(vertex(g, "RUN [\"echo\""), "def"), "args");
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_array_get(a, 1)), "$X");
	json_decref(g);
}

/* ---- stages ---- */

static void
test_convert__target_prunes_unneeded_stages(void **state)
{
	const char *df = "FROM busybox AS a\nRUN echo a\n"
	                 "FROM busybox AS b\nRUN echo b\n"
	                 "FROM busybox AS c\nCOPY --from=a /x /x\nRUN echo c\n";
	json_t *g = plan(*state, df, "c", NULL);
	assert_non_null(vertex(g, "RUN echo a"));
	assert_null(vertex(g, "RUN echo b"));
	assert_null(result(g, "b"));
	assert_non_null(result(g, "a"));
	assert_true(json_is_true(json_object_get(result(g, "c"), "target")));
	assert_false(json_is_true(json_object_get(result(g, "a"), "target")));
	json_decref(g);

	g = plan(*state, df, "b", NULL);
	assert_null(vertex(g, "RUN echo a"));
	assert_null(vertex(g, "RUN echo c"));
	assert_int_equal(json_array_size(json_object_get(g, "results")), 1);
	json_decref(g);
}

static void
test_convert__stage_names_case_insensitive(void **state)
{
	const char *df = "FROM busybox AS Build\nRUN echo build\n"
	                 "FROM BUILD AS next\nRUN echo next\n"
	                 "FROM busybox\nCOPY --from=bUiLd /a /a\n";
	json_t *g = plan(*state, df, "NEXT", NULL);
	json_t *next = vertex(g, "RUN echo next");
	assert_non_null(next);
	/* FROM BUILD builds on the stage, not on an image named "build" */
	json_t *in = vertex_by_digest(
	        g, json_string_value(json_array_get(json_object_get(next, "inputs"), 0)));
	assert_string_equal(json_string_value(json_object_get(in, "description")),
	                    "[build 2/2] RUN echo build");
	json_decref(g);
	g = plan(*state, df, NULL, NULL);
	json_t *copy = vertex(g, "COPY --from=bUiLd");
	assert_string_equal(json_string_value(json_array_get(json_object_get(copy, "inputs"), 1)),
	                    digest_of(g, "RUN echo build"));
	json_decref(g);
}

static void
test_convert__copy_from_index_name_and_image(void **state)
{
	json_t *g = plan(*state,
	                 "FROM busybox AS first\nRUN echo one\n"
	                 "FROM scratch\nCOPY --from=0 /a /a\nCOPY --from=first /b /b\n"
	                 "COPY --from=alpine:3.19 /c /c\nCOPY --from=nosuchstage /d /d\n",
	                 NULL, NULL);
	const char *one = digest_of(g, "RUN echo one");
	json_t *v = vertex(g, "COPY --from=0");
	assert_string_equal(json_string_value(json_array_get(json_object_get(v, "inputs"), 1)),
	                    one);
	v = vertex(g, "COPY --from=first");
	assert_string_equal(json_string_value(json_array_get(json_object_get(v, "inputs"), 1)),
	                    one);
	v = vertex(g, "COPY --from=alpine");
	json_t *img = vertex_by_digest(
	        g, json_string_value(json_array_get(json_object_get(v, "inputs"), 1)));
	assert_string_equal(json_string_value(json_object_get(json_object_get(img, "def"), "ref")),
	                    "docker.io/library/alpine:3.19");
	v = vertex(g, "COPY --from=nosuchstage");
	img = vertex_by_digest(g,
	                       json_string_value(json_array_get(json_object_get(v, "inputs"), 1)));
	assert_string_equal(json_string_value(json_object_get(json_object_get(img, "def"), "ref")),
	                    "docker.io/library/nosuchstage:latest");
	json_decref(g);
}

static void
test_convert__from_own_or_later_name_is_image(void **state)
{
	json_t *g = plan(*state, "FROM later AS self\nFROM busybox AS later\n", "self", NULL);
	json_t *v = vertex(g, "FROM");
	assert_string_equal(json_string_value(json_object_get(json_object_get(v, "def"), "ref")),
	                    "docker.io/library/later:latest");
	json_decref(g);
}

static void
test_convert__run_mount_from_stage(void **state)
{
	json_t *g = plan(*state,
	                 "FROM busybox AS tools\nRUN echo tools\n"
	                 "FROM busybox\nWORKDIR /w\n"
	                 "RUN --mount=type=bind,from=tools,source=/bin,target=t "
	                 "--mount=type=cache,target=/c,id=cc,sharing=locked "
	                 "--mount=type=secret,id=tok --mount=type=tmpfs,target=/tmp,size=1024 "
	                 "--mount=type=ssh make\n",
	                 NULL, NULL);
	json_t *run = vertex(g, "make");
	json_t *m = json_object_get(json_object_get(run, "def"), "mounts");
	assert_int_equal(json_array_size(m), 5);
	json_t *bind = json_array_get(m, 0);
	assert_string_equal(json_string_value(json_object_get(bind, "target")), "/w/t");
	assert_string_equal(json_string_value(json_object_get(bind, "source")), "/bin");
	assert_true(json_is_true(json_object_get(bind, "readonly")));
	json_int_t idx = json_integer_value(json_object_get(bind, "input"));
	assert_int_equal(idx, 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(run, "inputs"), idx)),
	                    digest_of(g, "RUN echo tools"));
	json_t *cache = json_array_get(m, 1);
	assert_string_equal(json_string_value(json_object_get(cache, "id")), "cc");
	assert_string_equal(json_string_value(json_object_get(cache, "sharing")), "locked");
	json_t *secret = json_array_get(m, 2);
	assert_string_equal(json_string_value(json_object_get(secret, "target")),
	                    "/run/secrets/tok");
	assert_int_equal(json_integer_value(json_object_get(secret, "mode")), 0400);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(m, 3), "size")), 1024);
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 4), "id")),
	                    "default");
	json_decref(g);
}

/* ---- errors ---- */

static void
test_convert__unknown_instruction_has_line(void **state)
{
	char *e = plan_err(*state, "FROM busybox\nRUN true\nFOOBAR baz\n", NULL, NULL);
	assert_non_null(strstr(e, "Dockerfile:3: "));
	assert_non_null(strstr(e, "unknown instruction: FOOBAR"));
	free(e);
}

static void
test_convert__unknown_target(void **state)
{
	char *e = plan_err(*state, "FROM busybox AS a\n", "nope", NULL);
	assert_non_null(strstr(e, "target stage \"nope\" could not be found"));
	assert_non_null(strstr(e, "Dockerfile"));
	free(e);
}

static void
test_convert__circular_copy_from(void **state)
{
	char *e =
	        plan_err(*state, "FROM busybox AS a\nRUN true\nCOPY --from=a /x /y\n", NULL, NULL);
	assert_non_null(strstr(e, "Dockerfile:3: "));
	assert_non_null(strstr(e, "circular dependency detected on stage: a"));
	free(e);

	/* a later stage may be named, but not one that needs this stage */
	e = plan_err(*state, "FROM busybox AS a\nCOPY --from=b /x /y\nFROM a AS b\n", NULL, NULL);
	assert_non_null(strstr(e, "circular dependency"));
	free(e);
}

static void
test_convert__instruction_before_from(void **state)
{
	char *e = plan_err(*state, "ARG A=1\nRUN true\nFROM busybox\n", NULL, NULL);
	assert_non_null(strstr(e, "Dockerfile:2: "));
	free(e);
}

/* ---- digests ---- */

static void
test_convert__digests_stable_across_plans(void **state)
{
	const char *df = "FROM busybox AS b\nARG V=1\nCOPY . /src\nRUN make\n"
	                 "FROM busybox\nCOPY --from=b /src /src\n";
	json_t *g1 = plan(*state, df, NULL, NULL);
	json_t *g2 = plan(*state, df, NULL, NULL);
	json_t *v1 = json_object_get(g1, "vertices"), *v2 = json_object_get(g2, "vertices");
	assert_int_equal(json_array_size(v1), json_array_size(v2));
	for (size_t i = 0; i < json_array_size(v1); i++)
		assert_string_equal(
		        json_string_value(json_object_get(json_array_get(v1, i), "digest")),
		        json_string_value(json_object_get(json_array_get(v2, i), "digest")));
	json_decref(g1);
	json_decref(g2);
}

static void
test_convert__digest_changes_only_with_used_build_arg(void **state)
{
	const char *df = "FROM busybox\nARG USED=1\nRUN make\n";
	json_t *g0 = plan(*state, df, NULL, NULL);
	char *a1[] = {"USED=2", NULL};
	json_t *g1 = plan(*state, df, NULL, a1);
	char *a2[] = {"UNUSED=2", NULL};
	json_t *g2 = plan(*state, df, NULL, a2);
	assert_string_not_equal(digest_of(g0, "RUN make"), digest_of(g1, "RUN make"));
	assert_string_equal(digest_of(g0, "RUN make"), digest_of(g2, "RUN make"));
	json_decref(g0);
	json_decref(g1);
	json_decref(g2);
}

static void
test_convert__independent_stages_share_only_sources(void **state)
{
	json_t *g = plan(*state,
	                 "FROM busybox AS a\nRUN echo a\nFROM busybox AS b\nRUN echo b\n"
	                 "FROM scratch\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
	                 NULL, NULL);
	json_t *a = vertex(g, "RUN echo a"), *b = vertex(g, "RUN echo b");
	/* both run on the one busybox source vertex, and nothing else joins them */
	assert_string_equal(json_string_value(json_array_get(json_object_get(a, "inputs"), 0)),
	                    json_string_value(json_array_get(json_object_get(b, "inputs"), 0)));
	assert_int_equal(json_array_size(json_object_get(a, "inputs")), 1);
	assert_string_equal(json_string_value(json_object_get(a, "stage")), "a");
	assert_string_equal(json_string_value(json_object_get(b, "stage")), "b");
	json_decref(g);
}

/* ---- context ---- */

static void
test_convert__dockerignore_in_local_source(void **state)
{
	struct fx *f = *state;
	test_write_file(f->dir, ".dockerignore", "# comment\n*.log\nbuild/\n!build/keep\n");
	json_t *g = plan(f, "FROM busybox\nCOPY src/ app.sh /app/\nCOPY . /all\n", NULL, NULL);
	json_t *copy = vertex(g, "COPY src/");
	json_t *ctx = vertex_by_digest(
	        g, json_string_value(json_array_get(json_object_get(copy, "inputs"), 1)));
	json_t *def = json_object_get(ctx, "def");
	assert_string_equal(json_string_value(json_object_get(def, "type")), "local");
	assert_string_equal(json_string_value(json_object_get(def, "name")), "context");
	json_t *inc = json_object_get(def, "include");
	assert_int_equal(json_array_size(inc), 2);
	assert_true(has_str(inc, "src"));
	assert_true(has_str(inc, "app.sh"));
	json_t *ex = json_object_get(def, "exclude");
	assert_true(has_str(ex, "*.log"));
	assert_true(has_str(ex, "!build/keep"));
	json_t *a = json_array_get(json_object_get(json_object_get(copy, "def"), "actions"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "dest")), "/app/");
	/* COPY . reads the whole context: no include list */
	copy = vertex(g, "COPY . /all");
	ctx = vertex_by_digest(
	        g, json_string_value(json_array_get(json_object_get(copy, "inputs"), 1)));
	assert_null(json_object_get(json_object_get(ctx, "def"), "include"));
	json_decref(g);
}

/* ---- image config ---- */

static void
test_convert__image_config_fields(void **state)
{
	json_t *g =
	        plan(*state,
	             "FROM busybox\nMAINTAINER me\nLABEL a=1 \"b c\"=\"d e\"\nEXPOSE 80 53/udp\n"
	             "ENV X=1\nWORKDIR /app\nWORKDIR sub\nUSER 1000:1000\nVOLUME /data\n"
	             "STOPSIGNAL SIGINT\nSHELL [\"/bin/bash\", \"-c\"]\n"
	             "HEALTHCHECK --interval=30s --retries=3 CMD wget -q localhost\n"
	             "ENTRYPOINT [\"/bin/app\"]\nCMD serve\nONBUILD RUN echo child\n",
	             NULL, NULL);
	json_t *r = result(g, "0");
	json_t *top = json_object_get(r, "config");
	assert_string_equal(json_string_value(json_object_get(top, "os")), "linux");
	assert_non_null(json_object_get(top, "architecture"));
	assert_string_equal(json_string_value(json_object_get(top, "author")), "me");
	assert_string_equal(json_string_value(json_object_get(top, "base")),
	                    "docker.io/library/busybox:latest");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(top, "rootfs"), "type")),
	        "layers");
	json_t *c = json_object_get(top, "config");
	assert_true(has_str(json_object_get(c, "Env"), "X=1"));
	assert_string_equal(json_string_value(json_object_get(c, "WorkingDir")), "/app/sub");
	assert_string_equal(json_string_value(json_object_get(c, "User")), "1000:1000");
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "Labels"), "b c")),
	                    "d e");
	assert_non_null(json_object_get(json_object_get(c, "ExposedPorts"), "80/tcp"));
	assert_non_null(json_object_get(json_object_get(c, "ExposedPorts"), "53/udp"));
	assert_non_null(json_object_get(json_object_get(c, "Volumes"), "/data"));
	assert_string_equal(json_string_value(json_object_get(c, "StopSignal")), "SIGINT");
	assert_true(has_str(json_object_get(c, "Shell"), "/bin/bash"));
	json_t *hc = json_object_get(c, "Healthcheck");
	assert_string_equal(json_string_value(json_array_get(json_object_get(hc, "Test"), 0)),
	                    "CMD-SHELL");
	assert_int_equal(json_integer_value(json_object_get(hc, "Interval")), 30000000000LL);
	assert_int_equal(json_integer_value(json_object_get(hc, "Retries")), 3);
	assert_true(has_str(json_object_get(c, "Entrypoint"), "/bin/app"));
	/* shell-form CMD runs with the SHELL in effect */
	json_t *cmd = json_object_get(c, "Cmd");
	assert_string_equal(json_string_value(json_array_get(cmd, 0)), "/bin/bash");
	assert_string_equal(json_string_value(json_array_get(cmd, 2)), "serve");
	assert_true(has_str(json_object_get(c, "OnBuild"), "RUN echo child"));
	json_t *hist = json_object_get(top, "history");
	assert_true(json_array_size(hist) >= 14);
	json_t *h0 = json_array_get(hist, 0);
	assert_string_equal(json_string_value(json_object_get(h0, "created_by")), "MAINTAINER me");
	assert_true(json_is_true(json_object_get(h0, "empty_layer")));
	/* WORKDIR creates the directory: a mkdir file vertex */
	json_t *wd = vertex(g, "WORKDIR sub");
	json_t *act = json_array_get(json_object_get(json_object_get(wd, "def"), "actions"), 0);
	assert_string_equal(json_string_value(json_object_get(act, "action")), "mkdir");
	assert_string_equal(json_string_value(json_object_get(act, "path")), "/app/sub");
	json_decref(g);
}

static void
test_convert__onbuild_runs_in_child_stage(void **state)
{
	json_t *g = plan(*state,
	                 "FROM busybox AS base\nONBUILD RUN echo trigger\n"
	                 "FROM base\nRUN echo child\n",
	                 NULL, NULL);
	json_t *child = vertex(g, "RUN echo child");
	json_t *trig = vertex_by_digest(
	        g, json_string_value(json_array_get(json_object_get(child, "inputs"), 0)));
	assert_string_equal(json_string_value(json_object_get(trig, "op")), "exec");
	assert_string_equal(json_string_value(json_array_get(
	                            json_object_get(json_object_get(trig, "def"), "args"), 2)),
	                    "echo trigger");
	assert_null(json_object_get(config_of(g, "1"), "OnBuild"));
	json_decref(g);
}

static void
test_convert__heredoc_run(void **state)
{
	json_t *g = plan(*state,
	                 "FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\n"
	                 "RUN <<EOF\n#!/bin/sh\necho script\nEOF\n",
	                 NULL, NULL);
	json_t *v = vertex(g, "[stage-0 2/3]");
	json_t *a = json_object_get(json_object_get(v, "def"), "args");
	assert_string_equal(json_string_value(json_array_get(a, 2)), "echo one\necho two\n");
	v = vertex(g, "[stage-0 3/3]");
	a = json_object_get(json_object_get(v, "def"), "args");
	assert_string_equal(json_string_value(json_array_get(a, 2)), "/dev/pipes/EOF");
	json_t *m = json_array_get(json_object_get(json_object_get(v, "def"), "mounts"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "target")), "/dev/pipes/");
	json_decref(g);
}

static void
test_convert__add_url_and_copy_flags(void **state)
{
	json_t *g = plan(*state,
	                 "FROM busybox\nARG U=1000\n"
	                 "ADD --checksum=sha256:"
	                 "0000000000000000000000000000000000000000000000000000000000000000 "
	                 "https://example.com/a/tool.tgz /opt/\n"
	                 "COPY --chown=$U:grp --chmod=0755 --link --exclude=*.md a b /dst/\n",
	                 NULL, NULL);
	json_t *add = vertex(g, "ADD ");
	json_t *http = vertex_by_digest(
	        g, json_string_value(json_array_get(json_object_get(add, "inputs"), 1)));
	json_t *def = json_object_get(http, "def");
	assert_string_equal(json_string_value(json_object_get(def, "type")), "http");
	assert_string_equal(json_string_value(json_object_get(def, "url")),
	                    "https://example.com/a/tool.tgz");
	assert_non_null(json_object_get(def, "checksum"));
	json_t *act = json_array_get(json_object_get(json_object_get(add, "def"), "actions"), 0);
	assert_string_equal(json_string_value(json_object_get(act, "src")), "/tool.tgz");
	assert_true(json_is_false(json_object_get(act, "unpack")));
	json_t *copy = vertex(g, "COPY --chown");
	json_t *acts = json_object_get(json_object_get(copy, "def"), "actions");
	assert_int_equal(json_array_size(acts), 2);
	act = json_array_get(acts, 0);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(act, "chown"), "user")), "1000");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(act, "chown"), "group")), "grp");
	assert_int_equal(json_integer_value(json_object_get(act, "mode")), 0755);
	assert_true(json_is_true(json_object_get(act, "link")));
	assert_true(has_str(json_object_get(act, "exclude"), "*.md"));
	json_decref(g);
}

static const char *
input_digest(json_t *v, size_t i)
{
	return json_string_value(json_array_get(json_object_get(v, "inputs"), i));
}

static void
test_convert__copy_link_is_independent_of_the_stage(void **state)
{
	struct fx *f = *state;
	test_write_file(f->dir, "app", "x");
	json_t *g1 = plan(f, "FROM busybox\nRUN echo v1 > /a\nWORKDIR /w\nCOPY --link app rel/\n",
	                  NULL, NULL);
	json_t *g2 = plan(f, "FROM busybox\nRUN echo v2 > /a\nWORKDIR /w\nCOPY --link app rel/\n",
	                  NULL, NULL);
	json_t *c1 = vertex(g1, "] COPY --link"), *c2 = vertex(g2, "] COPY --link");
	assert_non_null(c1);
	assert_non_null(c2);
	/* The copy is made on scratch: the same vertex whatever the RUN below does. */
	assert_string_equal(json_string_value(json_object_get(c1, "digest")),
	                    json_string_value(json_object_get(c2, "digest")));
	json_t *base = vertex_by_digest(g1, input_digest(c1, 0));
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(base, "def"), "type")),
	        "scratch");
	json_t *act = json_array_get(json_object_get(json_object_get(c1, "def"), "actions"), 0);
	/* A relative destination still goes below WORKDIR. */
	assert_string_equal(json_string_value(json_object_get(act, "dest")), "/w/rel/");
	/* The merge puts it on the stage: inputs [the WORKDIR step, the copy]. */
	json_t *m1 = vertex(g1, "] LINK COPY --link app rel/");
	json_t *m2 = vertex(g2, "] LINK COPY --link app rel/");
	assert_non_null(m1);
	assert_non_null(m2);
	assert_string_equal(input_digest(m1, 1), json_string_value(json_object_get(c1, "digest")));
	json_t *below = vertex_by_digest(g1, input_digest(m1, 0));
	assert_non_null(
	        strstr(json_string_value(json_object_get(below, "description")), "WORKDIR"));
	json_t *ma = json_array_get(json_object_get(json_object_get(m1, "def"), "actions"), 0);
	assert_string_equal(json_string_value(json_object_get(ma, "action")), "merge");
	assert_int_equal(json_integer_value(json_object_get(ma, "input")), 1);
	assert_string_not_equal(json_string_value(json_object_get(m1, "digest")),
	                        json_string_value(json_object_get(m2, "digest")));
	/* The stage's result is the merge; one history entry for the instruction. */
	assert_string_equal(json_string_value(json_object_get(result(g1, "0"), "vertex")),
	                    json_string_value(json_object_get(m1, "digest")));
	json_decref(g1);
	json_decref(g2);
}

static void
test_convert__copy_link_chown_names_refused(void **state)
{
	struct fx *f = *state;
	test_write_file(f->dir, "app", "x");
	_cleanup_free_ char *e =
	        plan_err(f, "FROM busybox\nCOPY --link --chown=bob app /app\n", NULL, NULL);
	assert_non_null(strstr(e, "Dockerfile:2:"));
	assert_non_null(strstr(e, "names cannot be looked up with --link"));
	free(e);
	e = plan_err(f, "FROM busybox\nCOPY --link --chown=1:staff app /app\n", NULL, NULL);
	assert_non_null(strstr(e, "--chown=1:staff"));
	/* root is id 0, numbers are ids: no lookup needed. */
	json_t *g = plan(f, "FROM busybox\nCOPY --link --chown=root:7 app /app\n", NULL, NULL);
	json_t *act = json_array_get(
	        json_object_get(json_object_get(vertex(g, "] COPY --link"), "def"), "actions"), 0);
	json_t *own = json_object_get(act, "chown");
	assert_string_equal(json_string_value(json_object_get(own, "user")), "0");
	assert_string_equal(json_string_value(json_object_get(own, "group")), "7");
	json_decref(g);
	/* With --chmod BuildKit copies onto the stage as without --link: names work. */
	g = plan(f, "FROM busybox\nCOPY --link --chmod=644 --chown=bob app /app\n", NULL, NULL);
	assert_null(vertex(g, "LINK COPY"));
	json_decref(g);
}

static void
test_convert__copy_parents_keeps_pivot(void **state)
{
	struct fx *f = *state;
	json_t *g = plan(f, "FROM busybox\nCOPY --parents ./a/./b/x.txt c/../d/y.txt /dst/\n", NULL,
	                 NULL);
	json_t *acts =
	        json_object_get(json_object_get(vertex(g, "COPY --parents"), "def"), "actions");
	assert_int_equal(json_array_size(acts), 2);
	json_t *a0 = json_array_get(acts, 0), *a1 = json_array_get(acts, 1);
	/* The "/./" pivot survives for the file op; other paths are cleaned as usual. */
	assert_string_equal(json_string_value(json_object_get(a0, "src")), "/a/./b/x.txt");
	assert_string_equal(json_string_value(json_object_get(a1, "src")), "/d/y.txt");
	assert_true(json_is_true(json_object_get(a0, "parents")));
	json_decref(g);
}

static void
test_convert__ref_normalize(void **state)
{
	struct {
		const char *in, *out;
	} ok[] = {
	        {"busybox", "docker.io/library/busybox:latest"},
	        {"busybox:1.36", "docker.io/library/busybox:1.36"},
	        {"user/app", "docker.io/user/app:latest"},
	        {"docker.io/busybox", "docker.io/library/busybox:latest"},
	        {"index.docker.io/library/busybox", "docker.io/library/busybox:latest"},
	        {"localhost:5000/x", "localhost:5000/x:latest"},
	        {"ghcr.io/o/r:v1", "ghcr.io/o/r:v1"},
	        {"busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
	         "docker.io/library/busybox@sha256:"
	         "0000000000000000000000000000000000000000000000000000000000000000"},
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(ok); i++) {
		char *s = NULL;
		struct kiln_err err = KILN_ERR_INIT;
		assert_int_equal(fe_ref_normalize(ok[i].in, &s, &err), 0);
		assert_string_equal(s, ok[i].out);
		free(s);
	}
	const char *bad[] = {"Busybox", "a//b", "busybox:", "x@sha256:12", "-a"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(bad); i++) {
		char *s = NULL;
		struct kiln_err err = KILN_ERR_INIT;
		assert_int_equal(fe_ref_normalize(bad[i], &s, &err), -EINVAL);
		assert_err_contains(&err, "invalid reference format");
	}
	(void)state;
}

static void
test_convert__build_arg_overrides_global_in_from(void **state)
{
	char *args[] = {"TAG=1.36", NULL};
	json_t *g = plan(*state, "ARG TAG=latest\nFROM busybox:$TAG\n", NULL, args);
	json_t *src = json_object_get(vertex(g, "FROM"), "def");
	assert_string_equal(json_string_value(json_object_get(src, "ref")),
	                    "docker.io/library/busybox:1.36");
	json_decref(g);
}

static void
test_convert__arg_without_value_stays_unset(void **state)
{
	json_t *g = plan(*state, "FROM busybox\nARG NOVAL\nRUN echo\n", NULL, NULL);
	json_t *env = run_env(g, "RUN echo");
	size_t i;
	json_t *e;
	json_array_foreach(env, i, e)
	{
		assert_false(kiln_str_has_prefix(json_string_value(e), "NOVAL"));
	}
	json_t *h = json_object_get(json_object_get(result(g, "0"), "config"), "history");
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "created_by")),
	                    "ARG NOVAL");
	json_decref(g);
}

static void
test_convert__copy_heredoc_expands_keeping_quotes(void **state)
{
	json_t *g = plan(*state,
	                 "FROM busybox\nENV NAME=world\nCOPY <<EOF <<'RAW' /etc/\n"
	                 "echo \"hello $NAME\"\nEOF\nkeep $NAME\nRAW\n",
	                 NULL, NULL);
	json_t *copy = vertex(g, "[stage-0 3/3]");
	assert_non_null(copy);
	json_t *acts = json_object_get(json_object_get(copy, "def"), "actions");
	assert_int_equal(json_array_size(acts), 2);
	const char *want[] = {"echo \"hello world\"\n", "keep $NAME\n"};
	for (size_t i = 0; i < 2; i++) {
		json_t *a = json_array_get(acts, i);
		assert_string_equal(json_string_value(json_object_get(a, "dest")), "/etc/");
		json_t *in = vertex_by_digest(
		        g, json_string_value(json_array_get(
		                   json_object_get(copy, "inputs"),
		                   json_integer_value(json_object_get(a, "input")))));
		json_t *mk =
		        json_array_get(json_object_get(json_object_get(in, "def"), "actions"), 0);
		assert_string_equal(json_string_value(json_object_get(mk, "action")), "mkfile");
		assert_string_equal(json_string_value(json_object_get(mk, "data")), want[i]);
	}
	json_decref(g);
}

static void
test_convert__paths_resolve_against_workdir(void **state)
{
	json_t *g = plan(
	        *state,
	        "FROM busybox\nWORKDIR /a\nWORKDIR b\nWORKDIR /c\nCOPY f .\n"
	        "COPY g h\nRUN --mount=type=cache,target=/abs --mount=type=cache,target=rel x\n",
	        NULL, NULL);
	json_t *c = config_of(g, "0");
	assert_string_equal(json_string_value(json_object_get(c, "WorkingDir")), "/c");
	json_t *a = json_array_get(
	        json_object_get(json_object_get(vertex(g, "COPY f"), "def"), "actions"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "dest")), "/c/");
	a = json_array_get(json_object_get(json_object_get(vertex(g, "COPY g"), "def"), "actions"),
	                   0);
	assert_string_equal(json_string_value(json_object_get(a, "dest")), "/c/h");
	json_t *m = json_object_get(json_object_get(vertex(g, "target=rel"), "def"), "mounts");
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "target")),
	                    "/abs");
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "target")),
	                    "/c/rel");
	json_decref(g);
}

static void
test_convert__copy_errors(void **state)
{
	char *e = plan_err(*state, "FROM busybox\nCOPY a b /notadir\n", NULL, NULL);
	assert_non_null(strstr(e, "Dockerfile:2: "));
	assert_non_null(strstr(e, "must be a directory"));
	free(e);
	e = plan_err(*state, "FROM busybox\nADD --checksum=sha256:00 local /x\n", NULL, NULL);
	assert_non_null(strstr(e, "Dockerfile:2: "));
	free(e);
	e = plan_err(*state, "FROM busybox\nENV X=${X:?must be set}\n", NULL, NULL);
	assert_non_null(strstr(e, "Dockerfile:2: "));
	free(e);
}

static void
test_convert__bad_platform(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	assert_null(plan_full(*state, "FROM busybox\n", NULL, "linux", NULL, &err));
	assert_err_contains(&err, "invalid platform");
	assert_null(plan_full(*state, "FROM --platform=nope busybox\n", NULL, NULL, NULL, &err));
	assert_err_contains(&err, "Dockerfile:1: ");
}

/* Plan with and without replay; both must give the same JSON, or the same error. */
static void
assert_replay_same(struct fx *f, const char *df, char *const *args)
{
	test_write_file(f->dir, "Dockerfile", df);
	struct kiln_buf out[2] = {KILN_BUF_INIT, KILN_BUF_INIT};
	for (int i = 0; i < 2; i++) {
		struct fe_plan_opts o = FE_PLAN_OPTS_INIT;
		o.context_dir = f->dir;
		o.build_args = args;
		struct sv_graph *g = NULL;
		struct kiln_err err = KILN_ERR_INIT;
		if (fe_plan_replay(&o, i == 0, &g, &err) < 0) {
			char *e = kiln_err_format(&err);
			kiln_buf_addf(&out[i], "error: %s", e);
			free(e);
			kiln_err_release(&err);
		} else {
			sv_graph_to_json(g, &out[i]);
			sv_graph_free(g);
		}
	}
	assert_string_equal(out[0].buf, out[1].buf);
	kiln_buf_release(&out[0]);
	kiln_buf_release(&out[1]);
}

static void
test_convert__replay_gives_the_same_graph(void **state)
{
	/* stages with shared prefixes that diverge in state, text, heredocs and --from */
	assert_replay_same(
	        *state,
	        "ARG V=1\nFROM busybox AS a\nARG V\nENV X=$V\nWORKDIR /w\nRUN echo $X\n"
	        "COPY f g/\nRUN <<EOF\n#!/bin/sh\necho hi\nEOF\nUSER u\nWORKDIR w2\n"
	        "FROM busybox AS b\nARG V\nENV X=$V\nWORKDIR /w\nRUN echo $X\nCOPY f g/\n"
	        "RUN <<EOF\n#!/bin/sh\necho bye\nEOF\nCOPY --from=a /w /a\n"
	        "FROM busybox AS c\nARG V=2\nENV X=$V\nWORKDIR /w\nRUN echo $X\n"
	        "FROM busybox:1 AS d\nARG V\nENV X=$V\nWORKDIR /w\nRUN echo $X\n"
	        "FROM scratch AS e\nCOPY <<EOF /x\n$PATH\nEOF\nFROM scratch AS f\n"
	        "COPY <<EOF /x\n$PATH\nEOF\nCOPY --from=c /w /c\nCOPY --from=d /w /d\n"
	        "COPY --from=b /w /b\nCOPY --from=e /x /e\n",
	        NULL);
	/* a stage that would replay a stage copying from it: still a cycle */
	assert_replay_same(*state,
	                   "FROM busybox AS a\nRUN x\nCOPY --from=b /y /y\n"
	                   "FROM busybox AS b\nRUN x\nCOPY --from=b /y /y\n",
	                   NULL);
	/* RUN --mount=from and ${} in flags end the replay */
	char *args[] = {"M=a", NULL};
	assert_replay_same(
	        *state,
	        "FROM busybox AS a\nRUN x\nFROM busybox AS b\nRUN x\n"
	        "RUN --mount=type=bind,from=a,target=/a y\n"
	        "FROM busybox AS c\nARG M\nRUN x\nRUN --mount=type=bind,from=$M,target=/a y\n",
	        args);

	/* random Dockerfiles from a pool of lines, with shared and diverging prefixes */
	static const char *const pool[] = {
	        "RUN echo a",
	        "RUN echo $X",
	        "ENV X=1",
	        "ENV X=2 Y=$X",
	        "ARG X=3",
	        "ARG Y",
	        "WORKDIR /w",
	        "WORKDIR sub",
	        "USER 1:1",
	        "COPY a b/",
	        "COPY --chown=$X a /c",
	        "ADD https://example.com/f.tgz /d/",
	        "LABEL l=$X",
	        "SHELL [\"/bin/bash\", \"-c\"]",
	        "RUN --mount=type=cache,target=/c make",
	        "COPY --from=0 /a /a",
	        "COPY --from=s1 /a /b",
	        "ONBUILD RUN echo t",
	        "RUN <<EOF\necho h\nEOF",
	        "COPY <<EOF /h\n$X\nEOF",
	};
	static const char *const froms[] = {"FROM busybox", "FROM alpine", "FROM scratch",
	                                    "FROM s0"};
	uint32_t seed = 12345;
	for (int iter = 0; iter < 150; iter++) {
		struct kiln_buf df = KILN_BUF_INIT;
		int nst = 1 + (int)((seed = seed * 1103515245 + 12345) >> 16) % 4;
		for (int sidx = 0; sidx < nst; sidx++) {
			seed = seed * 1103515245 + 12345;
			kiln_buf_addf(&df, "%s AS s%d\n", froms[(seed >> 16) % 4], sidx);
			int n = (int)((seed >> 8) % 7);
			for (int k = 0; k < n; k++) {
				/* mostly the same lines in every stage, sometimes different */
				seed = seed * 1103515245 + 12345;
				size_t pick =
				        ((seed >> 16) % 5 == 0) ? (seed >> 4) % 20 : (size_t)k % 20;
				kiln_buf_addf(&df, "%s\n", pool[pick]);
			}
		}
		assert_replay_same(*state, df.buf, NULL);
		kiln_buf_release(&df);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	        T(test_convert__copy_link_is_independent_of_the_stage),
	        T(test_convert__copy_link_chown_names_refused),
	        T(test_convert__copy_parents_keeps_pivot),
	        T(test_convert__global_arg_usable_in_from),
	        T(test_convert__global_arg_invisible_until_redeclared),
	        T(test_convert__stage_arg_default_and_build_arg_override),
	        T(test_convert__arg_in_run_env_not_in_config),
	        T(test_convert__args_and_env_inherited_from_parent_stage),
	        T(test_convert__proxy_args),
	        T(test_convert__platform_args),
	        T(test_convert__env_sees_variables_before_instruction),
	        T(test_convert__run_is_not_expanded),
	        T(test_convert__target_prunes_unneeded_stages),
	        T(test_convert__stage_names_case_insensitive),
	        T(test_convert__copy_from_index_name_and_image),
	        T(test_convert__from_own_or_later_name_is_image),
	        T(test_convert__run_mount_from_stage),
	        T(test_convert__unknown_instruction_has_line),
	        T(test_convert__unknown_target),
	        T(test_convert__circular_copy_from),
	        T(test_convert__instruction_before_from),
	        T(test_convert__digests_stable_across_plans),
	        T(test_convert__digest_changes_only_with_used_build_arg),
	        T(test_convert__independent_stages_share_only_sources),
	        T(test_convert__dockerignore_in_local_source),
	        T(test_convert__image_config_fields),
	        T(test_convert__onbuild_runs_in_child_stage),
	        T(test_convert__heredoc_run),
	        T(test_convert__add_url_and_copy_flags),
	        T(test_convert__ref_normalize),
	        T(test_convert__build_arg_overrides_global_in_from),
	        T(test_convert__arg_without_value_stays_unset),
	        T(test_convert__copy_heredoc_expands_keeping_quotes),
	        T(test_convert__paths_resolve_against_workdir),
	        T(test_convert__copy_errors),
	        T(test_convert__bad_platform),
	        T(test_convert__replay_gives_the_same_graph),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
