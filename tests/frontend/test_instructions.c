/* Unit tests for frontend/instructions.c: typed instructions, flags, --mount, durations. */
#include "testlib.h"

#include "frontend/instructions.h"
#include "frontend/fe.h"

static struct kiln_arena *arena;
static struct fe_ast *asts[32];
static size_t nasts;

static int
setup(void **state)
{
	arena = kiln_arena_new();
	return 0;
}

static int
teardown(void **state)
{
	kiln_arena_free(arena);
	arena = NULL;
	while (nasts)
		fe_ast_free(asts[--nasts]);
	return 0;
}

static size_t
count(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* A node as the parser makes it, on lines 7-8 of "Dockerfile". */
static struct fe_node *
mk(const char *name, const char *const *flags, const char *const *args, bool json)
{
	struct fe_node *n = kiln_arena_alloc(arena, sizeof(*n));
	n->name = name;
	n->original = "";
	n->nflags = count(flags);
	n->flags = (const char **)flags;
	n->nargs = count(args);
	n->args = (const char **)args;
	n->json = json;
	n->start_line = 7;
	n->end_line = 8;
	return n;
}

#define V(...)         ((const char *const[]){__VA_ARGS__, NULL})
#define NOV            ((const char *const *)NULL)
#define NODE(n, f, a)  mk((n), (f), (a), false)
#define JNODE(n, f, a) mk((n), (f), (a), true)

static struct fe_cmd *
ok(const struct fe_node *n)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_cmd *c = NULL;
	int r = fe_cmd_parse(arena, "Dockerfile", n, &c, &err);
	if (r < 0) {
		char *s = kiln_err_format(&err);
		print_error("unexpected error: %s\n", s);
		free(s);
		kiln_err_release(&err);
	}
	assert_int_equal(r, 0);
	assert_non_null(c);
	return c;
}

/* Parse must fail at Dockerfile:7 with a message containing `msg`. */
static void
bad_at(const struct fe_node *n, const char *msg, const char *file, int line)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_cmd *c = NULL;
	int r = fe_cmd_parse(arena, "Dockerfile", n, &c, &err);
	if (r != -EINVAL)
		print_error("%s:%d: expected failure \"%s\", got %d\n", file, line, msg, r);
	assert_int_equal(r, -EINVAL);
	assert_null(c);
	assert_int_equal(err.line, 7);
	assert_int_equal(err.line_end, 8);
	char *want = kiln_xasprintf("Dockerfile:7: %s", msg);
	test_assert_err_contains(&err, want, file, line);
	free(want);
}
#define bad(n, msg) bad_at((n), (msg), __FILE__, __LINE__)

static struct fe_mount
mount_ok(const char *spec)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_mount m;
	int r = fe_mount_parse(arena, spec, &m, &err);
	if (r < 0) {
		char *s = kiln_err_format(&err);
		print_error("mount %s: %s\n", spec, s);
		free(s);
		kiln_err_release(&err);
	}
	assert_int_equal(r, 0);
	return m;
}

static void
mount_bad_at(const char *spec, const char *msg, const char *file, int line)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_mount m;
	assert_int_equal(fe_mount_parse(arena, spec, &m, &err), -EINVAL);
	test_assert_err_contains(&err, msg, file, line);
}
#define mount_bad(spec, msg) mount_bad_at((spec), (msg), __FILE__, __LINE__)

/* ---- FROM ---- */

static void
test_from__image_only(void **state)
{
	struct fe_cmd *c = ok(NODE("from", NOV, V("alpine:3.19")));
	assert_int_equal(c->kind, FE_CMD_FROM);
	assert_string_equal(c->from.image, "alpine:3.19");
	assert_null(c->from.stage_name);
	assert_null(c->from.platform);
	assert_int_equal(c->start_line, 7);
	assert_int_equal(c->end_line, 8);
}

static void
test_from__stage_name_lowercased_and_platform(void **state)
{
	struct fe_cmd *c = ok(NODE("from", V("--platform=$BUILDPLATFORM"),
	                           V("golang:1.22", "As", "Build-1_x.y")));
	assert_string_equal(c->from.image, "golang:1.22");
	assert_string_equal(c->from.stage_name, "build-1_x.y");
	assert_string_equal(c->from.platform, "$BUILDPLATFORM");
}

static void
test_from__errors(void **state)
{
	bad(NODE("from", NOV, NOV), "FROM requires either one or three arguments");
	bad(NODE("from", NOV, V("a", "b")), "FROM requires either one or three arguments");
	bad(NODE("from", NOV, V("a", "AZ", "b")), "FROM requires either one or three arguments");
	bad(NODE("from", NOV, V("a", "as", "b", "c")),
	    "FROM requires either one or three arguments");
	bad(NODE("from", NOV, V("a", "as", "1st")), "invalid name for build stage: \"1st\"");
	bad(NODE("from", NOV, V("a", "as", "a$b")), "invalid name for build stage: \"a$b\"");
	bad(NODE("from", NOV, V("a", "as", "_x")), "invalid name for build stage");
	bad(NODE("from", V("--platform"), V("a")), "missing a value on flag: --platform");
	bad(NODE("from", V("--plat=x"), V("a")), "unknown flag: --plat");
	bad(NODE("from", V("--platform=a", "--platform=b"), V("a")),
	    "duplicate flag specified: --platform");
}

/* ---- RUN ---- */

static void
test_run__shell_form(void **state)
{
	struct fe_cmd *c = ok(NODE("run", NOV, V("echo  hi && true")));
	assert_int_equal(c->kind, FE_CMD_RUN);
	assert_true(c->run.cmd.shell_form);
	assert_int_equal(c->run.cmd.argc, 1);
	assert_string_equal(c->run.cmd.argv[0], "echo  hi && true");
	assert_int_equal(c->run.nmounts, 0);
	assert_null(c->run.network);
	assert_null(c->run.security);
}

static void
test_run__exec_form(void **state)
{
	struct fe_cmd *c = ok(JNODE("run", NOV, V("echo", "a b")));
	assert_false(c->run.cmd.shell_form);
	assert_int_equal(c->run.cmd.argc, 2);
	assert_string_equal(c->run.cmd.argv[1], "a b");
}

static void
test_run__flags(void **state)
{
	struct fe_cmd *c = ok(NODE("run",
	                           V("--mount=type=cache,target=/root/.cache", "--network=none",
	                             "--security=insecure", "--mount=target=/src"),
	                           V("make")));
	assert_int_equal(c->run.nmounts, 2);
	assert_int_equal(c->run.mounts[0].type, FE_MOUNT_CACHE);
	assert_string_equal(c->run.mounts[0].target, "/root/.cache");
	assert_int_equal(c->run.mounts[1].type, FE_MOUNT_BIND);
	assert_string_equal(c->run.network, "none");
	assert_string_equal(c->run.security, "insecure");
	c = ok(NODE("run", V("--network=host", "--security=sandbox"), V("x")));
	assert_string_equal(c->run.network, "host");
	assert_string_equal(c->run.security, "sandbox");
	c = ok(NODE("run", V("--network=default"), V("x")));
	assert_string_equal(c->run.network, "default");
}

static void
test_run__heredocs_from_node(void **state)
{
	struct fe_node *n = NODE("run", NOV, V("<<EOF"));
	struct fe_heredoc h = {.name = "EOF", .content = "echo a\n", .expand = true, .fd = -1};
	n->heredocs = &h;
	n->nheredocs = 1;
	struct fe_cmd *c = ok(n);
	assert_int_equal(c->run.nheredocs, 1);
	assert_string_equal(c->run.heredocs[0].content, "echo a\n");
	assert_true(c->run.heredocs[0].expand);
}

static void
test_run__errors(void **state)
{
	bad(NODE("run", V("--network=bridge"), V("x")), "unsupported network mode \"bridge\"");
	bad(NODE("run", V("--security=root"), V("x")), "unsupported security mode \"root\"");
	bad(NODE("run", V("--network=none", "--network=host"), V("x")),
	    "duplicate flag specified: --network");
	bad(NODE("run", V("--mount"), V("x")), "missing a value on flag: --mount");
	bad(NODE("run", V("--network"), V("x")), "missing a value on flag: --network");
	bad(NODE("run", V("--x"), V("x")), "unknown flag: --x");
	bad(NODE("run", V("--mount=type=nfs,target=/x"), V("x")),
	    "--mount=type=nfs,target=/x: unsupported mount type \"nfs\"");
	bad(NODE("run", V("--mount=type=cache"), V("x")),
	    "--mount=type=cache: mount type cache requires a target");
	bad(NODE("run", NOV, NOV), "RUN requires at least one argument");
}

static void
test_run__mount_values_with_variables_are_deferred(void **state)
{
	struct fe_cmd *c = ok(NODE(
	        "run", V("--mount=type=cache,target=$HOME/.cache,uid=$UID,sharing=${S},mode=$M"),
	        V("x")));
	assert_string_equal(c->run.mounts[0].target, "$HOME/.cache");
	assert_true(c->run.mounts[0].has_uid);
	c = ok(NODE("run", V("--mount=type=$T,target=/x,sharing=locked"), V("x")));
	assert_string_equal(c->run.mounts[0].target, "/x");
	/* A stage picked by a variable is refused before expansion, as in BuildKit. */
	bad(NODE("run", V("--mount=from=$STAGE,target=/x"), V("x")),
	    "--mount=from=$STAGE,target=/x: 'from' doesn't support variable expansion, define "
	    "alias stage instead");
	/* Keys are never expanded, so a bad key is an error now. */
	bad(NODE("run", V("--mount=target=$X,bogus=1"), V("x")),
	    "--mount=target=$X,bogus=1: unexpected key 'bogus'");
}

/* ---- CMD / ENTRYPOINT / SHELL ---- */

static void
test_cmd__shell_and_exec_form(void **state)
{
	struct fe_cmd *c = ok(NODE("cmd", NOV, V("echo $HOME")));
	assert_int_equal(c->kind, FE_CMD_CMD);
	assert_true(c->cmdline.shell_form);
	assert_int_equal(c->cmdline.argc, 1);
	assert_string_equal(c->cmdline.argv[0], "echo $HOME");
	c = ok(JNODE("entrypoint", NOV, V("/bin/app", "-v")));
	assert_int_equal(c->kind, FE_CMD_ENTRYPOINT);
	assert_false(c->cmdline.shell_form);
	assert_int_equal(c->cmdline.argc, 2);
	c = ok(JNODE("cmd", NOV, NOV));
	assert_int_equal(c->cmdline.argc, 0);
	bad(NODE("cmd", V("--a=1"), V("x")), "unknown flag: --a");
	bad(NODE("entrypoint", V("--a"), V("x")), "unknown flag: --a");
}

static void
test_shell__json_only(void **state)
{
	struct fe_cmd *c = ok(JNODE("shell", NOV, V("/bin/bash", "-c")));
	assert_int_equal(c->kind, FE_CMD_SHELL);
	assert_int_equal(c->cmdline.argc, 2);
	assert_string_equal(c->cmdline.argv[0], "/bin/bash");
	bad(NODE("shell", NOV, V("/bin/bash -c")),
	    "SHELL requires the arguments to be in JSON form");
	bad(JNODE("shell", NOV, NOV), "SHELL requires at least one argument");
}

/* ---- ENV / LABEL / ARG ---- */

static void
test_env__pairs_and_legacy(void **state)
{
	struct fe_cmd *c = ok(NODE("env", NOV, V("a", "1", "=", "b", "\"2 3\"", "=")));
	assert_int_equal(c->kind, FE_CMD_ENV);
	assert_int_equal(c->kv.nkvs, 2);
	assert_string_equal(c->kv.kvs[0].key, "a");
	assert_string_equal(c->kv.kvs[0].value, "1");
	assert_string_equal(c->kv.kvs[1].key, "b");
	assert_string_equal(c->kv.kvs[1].value, "\"2 3\"");
	c = ok(NODE("env", NOV, V("PATH", "/usr/bin:/bin  x", "")));
	assert_int_equal(c->kv.nkvs, 1);
	assert_string_equal(c->kv.kvs[0].value, "/usr/bin:/bin  x");
	bad(NODE("env", NOV, NOV), "ENV requires at least one argument");
	bad(NODE("env", NOV, V("", "x", "=")), "ENV names can not be blank");
	bad(NODE("env", NOV, V("a", "b")), "Bad input to ENV, too many arguments");
	bad(NODE("env", V("--x=1"), V("a", "b", "=")), "unknown flag: --x");
}

static void
test_label__pairs(void **state)
{
	struct fe_cmd *c = ok(NODE("label", NOV, V("\"a b\"", "c", "=", "d", "", "=")));
	assert_int_equal(c->kind, FE_CMD_LABEL);
	assert_int_equal(c->kv.nkvs, 2);
	assert_string_equal(c->kv.kvs[0].key, "\"a b\"");
	assert_string_equal(c->kv.kvs[1].value, "");
	bad(NODE("label", NOV, NOV), "LABEL requires at least one argument");
}

static void
test_arg__several_with_and_without_default(void **state)
{
	struct fe_cmd *c = ok(NODE("arg", NOV, V("a=\"b c\"", "d", "e=", "f=g=h")));
	assert_int_equal(c->kind, FE_CMD_ARG);
	assert_int_equal(c->kv.nkvs, 4);
	assert_string_equal(c->kv.kvs[0].key, "a");
	assert_string_equal(c->kv.kvs[0].value, "\"b c\"");
	assert_string_equal(c->kv.kvs[1].key, "d");
	assert_null(c->kv.kvs[1].value);
	assert_string_equal(c->kv.kvs[2].value, "");
	assert_string_equal(c->kv.kvs[3].key, "f");
	assert_string_equal(c->kv.kvs[3].value, "g=h");
	bad(NODE("arg", NOV, NOV), "ARG requires at least one argument");
	bad(NODE("arg", NOV, V("=x")), "ARG names can not be blank");
}

/* ---- one-value instructions, EXPOSE, VOLUME ---- */

static void
test_single_value_instructions(void **state)
{
	static const struct {
		const char *name, *upper;
		enum fe_cmd_kind kind;
	} t[] = {
	        {"maintainer", "MAINTAINER", FE_CMD_MAINTAINER},
	        {"user", "USER", FE_CMD_USER},
	        {"workdir", "WORKDIR", FE_CMD_WORKDIR},
	        {"stopsignal", "STOPSIGNAL", FE_CMD_STOPSIGNAL},
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(t); i++) {
		struct fe_cmd *c = ok(NODE(t[i].name, NOV, V("a b")));
		assert_int_equal(c->kind, t[i].kind);
		assert_string_equal(c->value, "a b");
		assert_string_equal(fe_cmd_kind_name(c->kind), t[i].upper);
		char *msg = kiln_xasprintf("%s requires exactly one argument", t[i].upper);
		bad(NODE(t[i].name, NOV, NOV), msg);
		bad(NODE(t[i].name, NOV, V("a", "b")), msg);
		free(msg);
		bad(NODE(t[i].name, V("--q=1"), V("a")), "unknown flag: --q");
	}
}

static void
test_expose__ports_as_written(void **state)
{
	struct fe_cmd *c = ok(NODE("expose", NOV, V("8080/tcp", "53/udp", "$PORT")));
	assert_int_equal(c->kind, FE_CMD_EXPOSE);
	assert_int_equal(c->list.nwords, 3);
	assert_string_equal(c->list.words[0], "8080/tcp");
	assert_string_equal(c->list.words[2], "$PORT");
	bad(NODE("expose", NOV, NOV), "EXPOSE requires at least one argument");
}

static void
test_volume__json_and_list(void **state)
{
	struct fe_cmd *c = ok(JNODE("volume", NOV, V(" /data ", "/logs")));
	assert_int_equal(c->kind, FE_CMD_VOLUME);
	assert_int_equal(c->list.nwords, 2);
	assert_string_equal(c->list.words[0], "/data");
	c = ok(NODE("volume", NOV, V("/a", "/b")));
	assert_int_equal(c->list.nwords, 2);
	bad(JNODE("volume", NOV, V("/a", "  ")), "VOLUME specified can not be an empty string");
	bad(NODE("volume", NOV, NOV), "VOLUME requires at least one argument");
}

/* ---- COPY / ADD ---- */

static void
test_copy__all_flags(void **state)
{
	struct fe_cmd *c = ok(NODE("copy",
	                           V("--from=build", "--chown=1:2", "--chmod=0755", "--link",
	                             "--parents=true", "--exclude=*.md", "--exclude=tmp/"),
	                           V("a", "b*", "/dst/")));
	assert_int_equal(c->kind, FE_CMD_COPY);
	assert_int_equal(c->copy.nsources, 2);
	assert_string_equal(c->copy.sources[0], "a");
	assert_string_equal(c->copy.sources[1], "b*");
	assert_string_equal(c->copy.dest, "/dst/");
	assert_string_equal(c->copy.from, "build");
	assert_string_equal(c->copy.chown, "1:2");
	assert_string_equal(c->copy.chmod, "0755");
	assert_true(c->copy.link);
	assert_true(c->copy.parents);
	assert_int_equal(c->copy.nexcludes, 2);
	assert_string_equal(c->copy.excludes[0], "*.md");
	assert_string_equal(c->copy.excludes[1], "tmp/");
	assert_int_equal(c->copy.unpack, -1);
	assert_null(c->copy.checksum);
}

static void
test_copy__bool_flag_forms(void **state)
{
	struct fe_cmd *c = ok(NODE("copy", V("--link=false", "--parents=TRUE"), V("a", "b")));
	assert_false(c->copy.link);
	assert_true(c->copy.parents);
	c = ok(NODE("copy", NOV, V("a", "b")));
	assert_false(c->copy.link);
	assert_false(c->copy.parents);
	assert_null(c->copy.from);
	bad(NODE("copy", V("--link="), V("a", "b")), "missing a value on flag: --link");
	bad(NODE("copy", V("--link=yes"), V("a", "b")),
	    "expecting boolean value for flag --link, not: yes");
	bad(NODE("copy", V("--link", "--link"), V("a", "b")), "duplicate flag specified: --link");
	bad(NODE("copy", V("--from"), V("a", "b")), "missing a value on flag: --from");
	bad(NODE("copy", V("--exclude"), V("a", "b")), "missing a value on flag: --exclude");
}

static void
test_copy__add_only_flags_rejected(void **state)
{
	bad(NODE("copy", V("--checksum=sha256:x"), V("a", "b")), "unknown flag: --checksum");
	bad(NODE("copy", V("--keep-git-dir"), V("a", "b")), "unknown flag: --keep-git-dir");
	bad(NODE("copy", V("--unpack"), V("a", "b")), "unknown flag: --unpack");
}

static void
test_copy__arg_count_and_heredocs(void **state)
{
	bad(NODE("copy", NOV, V("a")),
	    "COPY requires at least two arguments, but only one was provided");
	bad(NODE("add", NOV, V("a")), "ADD requires at least two arguments");
	bad(NODE("copy", NOV, NOV), "COPY requires at least two arguments");
	struct fe_node *n = NODE("copy", NOV, V("<<A", "x", "<<-\"B\"", "/dst"));
	struct fe_heredoc h[] = {
	        {.name = "A", .content = "a\n", .expand = true, .fd = -1},
	        {.name = "B", .content = "b\n", .chomp = true, .fd = -1},
	};
	n->heredocs = h;
	n->nheredocs = 2;
	struct fe_cmd *c = ok(n);
	assert_int_equal(c->copy.nsources, 1);
	assert_string_equal(c->copy.sources[0], "x");
	assert_int_equal(c->copy.nheredocs, 2);
	assert_string_equal(c->copy.heredocs[0].name, "A");
	assert_string_equal(c->copy.heredocs[1].content, "b\n");
	assert_string_equal(c->copy.dest, "/dst");
	bad(NODE("copy", NOV, V("a", "<<EOF")), "COPY cannot accept a heredoc as a destination");
	/* JSON form has no heredocs: "<<A" is a file name there. */
	c = ok(JNODE("copy", NOV, V("<<A", "/dst")));
	assert_int_equal(c->copy.nsources, 1);
	assert_string_equal(c->copy.sources[0], "<<A");
}

static void
test_add__all_flags(void **state)
{
	struct fe_cmd *c =
	        ok(NODE("add",
	                V("--chown=u", "--chmod=644", "--link=true", "--checksum=sha256:ab",
	                  "--keep-git-dir", "--unpack=false", "--exclude=x"),
	                V("https://example.com/a.tar", "/d")));
	assert_int_equal(c->kind, FE_CMD_ADD);
	assert_string_equal(c->copy.chown, "u");
	assert_string_equal(c->copy.chmod, "644");
	assert_true(c->copy.link);
	assert_string_equal(c->copy.checksum, "sha256:ab");
	assert_true(c->copy.keep_git_dir);
	assert_int_equal(c->copy.unpack, 0);
	assert_int_equal(c->copy.nexcludes, 1);
	c = ok(NODE("add", V("--unpack"), V("a", "b")));
	assert_int_equal(c->copy.unpack, 1);
	c = ok(NODE("add", NOV, V("a", "b")));
	assert_int_equal(c->copy.unpack, -1);
	assert_false(c->copy.keep_git_dir);
	bad(NODE("add", V("--from=x"), V("a", "b")), "unknown flag: --from");
	bad(NODE("add", V("--parents"), V("a", "b")), "unknown flag: --parents");
	bad(NODE("add", V("--keep-git-dir=maybe"), V("a", "b")),
	    "expecting boolean value for flag --keep-git-dir, not: maybe");
	bad(NODE("add", V("--checksum"), V("a", "b")), "missing a value on flag: --checksum");
}

static void
test_flags__double_dash_ends_flags(void **state)
{
	struct fe_cmd *c = ok(NODE("copy", V("--link", "--", "--bogus"), V("a", "b")));
	assert_true(c->copy.link);
}

/* ---- HEALTHCHECK ---- */

static void
test_healthcheck__cmd_with_flags(void **state)
{
	struct fe_cmd *c = ok(NODE("healthcheck",
	                           V("--interval=1m30s", "--timeout=5s", "--start-period=1.5s",
	                             "--start-interval=250ms", "--retries=3"),
	                           V("CMD", "curl -f http://localhost/")));
	assert_int_equal(c->kind, FE_CMD_HEALTHCHECK);
	assert_false(c->healthcheck.none);
	assert_true(c->healthcheck.test.shell_form);
	assert_int_equal(c->healthcheck.test.argc, 1);
	assert_string_equal(c->healthcheck.test.argv[0], "curl -f http://localhost/");
	assert_int_equal(c->healthcheck.interval, 90000000000LL);
	assert_int_equal(c->healthcheck.timeout, 5000000000LL);
	assert_int_equal(c->healthcheck.start_period, 1500000000LL);
	assert_int_equal(c->healthcheck.start_interval, 250000000LL);
	assert_int_equal(c->healthcheck.retries, 3);
	c = ok(JNODE("healthcheck", NOV, V("cmd", "/bin/check", "-q")));
	assert_false(c->healthcheck.test.shell_form);
	assert_int_equal(c->healthcheck.test.argc, 2);
	assert_int_equal(c->healthcheck.retries, -1);
	assert_int_equal(c->healthcheck.interval, 0);
	c = ok(NODE("healthcheck", V("--interval=0s", "--retries=0"), V("CMD", "x")));
	assert_int_equal(c->healthcheck.interval, 0);
	assert_int_equal(c->healthcheck.retries, 0);
}

static void
test_healthcheck__none(void **state)
{
	struct fe_cmd *c = ok(NODE("healthcheck", NOV, V("none")));
	assert_true(c->healthcheck.none);
	bad(NODE("healthcheck", NOV, V("NONE", "x")), "HEALTHCHECK NONE takes no arguments");
	bad(NODE("healthcheck", V("--interval=5s"), V("NONE")),
	    "HEALTHCHECK NONE takes no arguments");
}

static void
test_healthcheck__errors(void **state)
{
	bad(NODE("healthcheck", NOV, NOV), "HEALTHCHECK requires at least one argument");
	bad(NODE("healthcheck", NOV, V("CMD")), "Missing command after HEALTHCHECK CMD");
	bad(NODE("healthcheck", NOV, V("connect", "tcp")),
	    "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)");
	bad(NODE("healthcheck", V("--interval=5"), V("CMD", "x")),
	    "invalid duration \"5\" for --interval");
	bad(NODE("healthcheck", V("--timeout=abc"), V("CMD", "x")),
	    "invalid duration \"abc\" for --timeout");
	bad(NODE("healthcheck", V("--start-period=1us"), V("CMD", "x")),
	    "Interval \"start-period\" cannot be less than 1ms");
	bad(NODE("healthcheck", V("--start-interval=-1s"), V("CMD", "x")),
	    "Interval \"start-interval\" cannot be less than 1ms");
	bad(NODE("healthcheck", V("--retries=-1"), V("CMD", "x")),
	    "--retries cannot be negative (-1)");
	bad(NODE("healthcheck", V("--retries=x"), V("CMD", "x")),
	    "invalid value \"x\" for --retries");
	bad(NODE("healthcheck", V("--retries=99999999999"), V("CMD", "x")),
	    "invalid value \"99999999999\" for --retries");
	bad(NODE("healthcheck", V("--retries"), V("CMD", "x")),
	    "missing a value on flag: --retries");
	bad(NODE("healthcheck", V("--interval=1s", "--interval=2s"), V("CMD", "x")),
	    "duplicate flag specified: --interval");
	bad(NODE("healthcheck", V("--mount=x"), V("CMD", "x")), "unknown flag: --mount");
}

/* ---- ONBUILD ---- */

static void
test_onbuild__trigger_parsed(void **state)
{
	struct fe_node *sub = NODE("copy", V("--from=a"), V("b", "c"));
	sub->original = "COPY --from=a b c";
	struct fe_node *n = NODE("onbuild", NOV, NOV);
	n->original = "ONBUILD COPY --from=a b c";
	n->sub = sub;
	struct fe_cmd *c = ok(n);
	assert_int_equal(c->kind, FE_CMD_ONBUILD);
	assert_non_null(c->onbuild.cmd);
	assert_int_equal(c->onbuild.cmd->kind, FE_CMD_COPY);
	assert_string_equal(c->onbuild.cmd->copy.from, "a");
	assert_string_equal(c->onbuild.expression, "COPY --from=a b c");
	assert_int_equal(c->onbuild.cmd->start_line, 7);
}

static void
test_onbuild__expression_from_original_and_heredocs(void **state)
{
	struct fe_node *sub = NODE("run", NOV, V("<<EOF"));
	sub->original = NULL;
	sub->start_line = 0;
	struct fe_heredoc h = {.name = "EOF", .content = "make\n", .fd = -1};
	sub->heredocs = &h;
	sub->nheredocs = 1;
	struct fe_node *n = NODE("onbuild", NOV, NOV);
	n->original = "onbuild  RUN <<EOF";
	n->sub = sub;
	struct fe_cmd *c = ok(n);
	assert_string_equal(c->onbuild.expression, "RUN <<EOF\nmake\nEOF");
	assert_int_equal(c->onbuild.cmd->start_line, 7);
	assert_int_equal(c->onbuild.cmd->run.nheredocs, 1);
}

static void
test_onbuild__errors(void **state)
{
	struct fe_node *n = NODE("onbuild", NOV, NOV);
	bad(n, "ONBUILD requires at least one argument");
	n->sub = NODE("onbuild", NOV, NOV);
	bad(n, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
	n->sub = NODE("from", NOV, V("x"));
	bad(n, "FROM isn't allowed as an ONBUILD trigger");
	n->sub = NODE("maintainer", NOV, V("x"));
	bad(n, "MAINTAINER isn't allowed as an ONBUILD trigger");
	n->sub = NODE("foo", NOV, V(""));
	bad(n, "unknown instruction: FOO");
	n->sub = NODE("run", V("--bad"), V("x"));
	bad(n, "unknown flag: --bad");
	n->sub = NODE("run", NOV, V("x"));
	n->flags = (const char **)V("--a");
	n->nflags = 1;
	bad(n, "unknown flag: --a");
}

/* ---- unknown ---- */

static void
test_unknown_instruction(void **state)
{
	bad(NODE("foobar", NOV, V("")), "unknown instruction: FOOBAR");
	bad(NODE("foo", V("--x"), V("")), "unknown instruction: FOO");
}

static void
test_kind_names(void **state)
{
	assert_string_equal(fe_cmd_kind_name(FE_CMD_RUN), "RUN");
	assert_string_equal(fe_cmd_kind_name(FE_CMD_HEALTHCHECK), "HEALTHCHECK");
	assert_string_equal(fe_cmd_kind_name(FE_CMD_WORKDIR), "WORKDIR");
	assert_string_equal(fe_cmd_kind_name((enum fe_cmd_kind)999), "UNKNOWN");
}

/* ---- --mount ---- */

static void
test_mount__bind_defaults(void **state)
{
	struct fe_mount m = mount_ok("target=/src");
	assert_int_equal(m.type, FE_MOUNT_BIND);
	assert_string_equal(m.target, "/src");
	assert_true(m.readonly);
	assert_null(m.source);
	assert_null(m.from);
	m = mount_ok("type=bind,src=a,dst=/b,from=stage,rw");
	assert_string_equal(m.source, "a");
	assert_string_equal(m.target, "/b");
	assert_string_equal(m.from, "stage");
	assert_false(m.readonly);
	m = mount_ok("source=a,destination=/b,readwrite=true");
	assert_string_equal(m.target, "/b");
	assert_false(m.readonly);
	m = mount_ok("Type=BIND,Target=/b,readwrite=false");
	assert_true(m.readonly);
}

static void
test_mount__readonly_forms(void **state)
{
	assert_true(mount_ok("type=cache,target=/c,ro").readonly);
	assert_true(mount_ok("type=cache,target=/c,readonly").readonly);
	assert_true(mount_ok("type=cache,target=/c,ro=true").readonly);
	assert_true(mount_ok("type=cache,target=/c,readonly=1").readonly);
	assert_false(mount_ok("type=cache,target=/c,ro=false").readonly);
	assert_false(mount_ok("type=cache,target=/c").readonly);
	assert_false(mount_ok("target=/c,rw=1").readonly);
	mount_bad("target=/c,ro=yes", "invalid value for ro: yes");
	mount_bad("target=/c,rw=maybe", "invalid value for rw: maybe");
	mount_bad("target=/c,readonly=2", "invalid value for readonly: 2");
}

static void
test_mount__cache_options(void **state)
{
	struct fe_mount m = mount_ok("type=cache,target=/c,id=go,sharing=locked,mode=0700,"
	                             "uid=1000,gid=100,from=base,source=sub");
	assert_int_equal(m.type, FE_MOUNT_CACHE);
	assert_string_equal(m.id, "go");
	assert_int_equal(m.sharing, FE_SHARING_LOCKED);
	assert_true(m.has_mode && m.has_uid && m.has_gid);
	assert_int_equal(m.mode, 0700);
	assert_int_equal(m.uid, 1000);
	assert_int_equal(m.gid, 100);
	assert_false(m.readonly);
	assert_int_equal(mount_ok("type=cache,target=/c").sharing, FE_SHARING_SHARED);
	assert_int_equal(mount_ok("type=cache,target=/c,sharing=private").sharing,
	                 FE_SHARING_PRIVATE);
	assert_int_equal(mount_ok("type=cache,target=/c,sharing=Shared").sharing,
	                 FE_SHARING_SHARED);
	mount_bad("type=cache,target=/c,sharing=all", "unsupported sharing value \"all\"");
	mount_bad("type=cache,target=/c,mode=0800", "invalid value 0800 for mode");
	mount_bad("type=cache,target=/c,uid=-1", "invalid value -1 for uid");
	mount_bad("type=cache,target=/c,gid=x", "invalid value x for gid");
	mount_bad("type=cache,target=/c,uid=4294967296", "invalid value 4294967296 for uid");
	mount_bad("type=cache,id=x", "mount type cache requires a target");
}

static void
test_mount__tmpfs_size(void **state)
{
	struct fe_mount m = mount_ok("type=tmpfs,target=/t");
	assert_int_equal(m.type, FE_MOUNT_TMPFS);
	assert_int_equal(m.size, 0);
	assert_false(m.readonly);
	assert_int_equal(mount_ok("type=tmpfs,target=/t,size=1024").size, 1024);
	assert_int_equal(mount_ok("type=tmpfs,target=/t,size=64m").size, 64ull << 20);
	assert_int_equal(mount_ok("type=tmpfs,target=/t,size=64MiB").size, 64ull << 20);
	assert_int_equal(mount_ok("type=tmpfs,target=/t,size=2G").size, 2ull << 30);
	assert_int_equal(mount_ok("type=tmpfs,target=/t,size=1.5k").size, 1536);
	assert_int_equal(mount_ok("type=tmpfs,target=/t,size=3 kb").size, 3072);
	mount_bad("type=tmpfs,target=/t,size=lots", "invalid value for size: lots");
	mount_bad("type=tmpfs,target=/t,size=-1", "invalid value for size: -1");
	mount_bad("type=tmpfs,target=/t,size=10x", "invalid value for size: 10x");
	mount_bad("type=cache,target=/t,size=1m", "unexpected key 'size' for mount type 'cache'");
	mount_bad("type=tmpfs,size=1m", "mount type tmpfs requires a target");
	mount_bad("type=tmpfs,target=/t,mode=0700", "mode not allowed for \"tmpfs\" type mounts");
}

static void
test_mount__secret_and_ssh(void **state)
{
	struct fe_mount m = mount_ok("type=secret,id=tok,required,env=TOKEN,mode=0400,uid=1");
	assert_int_equal(m.type, FE_MOUNT_SECRET);
	assert_string_equal(m.id, "tok");
	assert_true(m.required);
	assert_string_equal(m.env, "TOKEN");
	assert_true(m.readonly);
	assert_null(m.target);
	m = mount_ok("required=false,type=secret,target=/run/s");
	assert_false(m.required);
	m = mount_ok("type=ssh");
	assert_int_equal(m.type, FE_MOUNT_SSH);
	assert_null(m.target);
	assert_false(m.required); /* as BuildKit: optional unless required=true */
	m = mount_ok("type=ssh,required=false");
	assert_false(m.required);
	m = mount_ok("type=ssh,id=default,required=true,target=/ssh");
	assert_true(m.required);
	mount_bad("type=secret", "invalid secret mount. one of source, target required");
	mount_bad("type=secret,id=a,source=b", "both source and id can't be set");
	mount_bad("type=secret,id=a,from=x", "secret mount should not have a from");
	mount_bad("type=secret,id=a,sharing=locked", "invalid cache sharing set for secret mount");
	mount_bad("type=secret,id=a,required=perhaps", "invalid value for required: perhaps");
	mount_bad("type=ssh,env=X", "unexpected key 'env' for mount type 'ssh'");
	mount_bad("target=/x,required", "unexpected key 'required' for mount type 'bind'");
}

static void
test_mount__key_and_syntax_errors(void **state)
{
	mount_bad("type=bind,target=/x,sharing=locked", "invalid cache sharing set for bind mount");
	mount_bad("target=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'");
	mount_bad("target=/x,bogus", "invalid field 'bogus' must be a key=value pair");
	mount_bad("type=nfs,target=/x", "unsupported mount type \"nfs\"");
	mount_bad("type=bind", "mount type bind requires a target");
	mount_bad("target=/x,uid=1", "uid not allowed for \"bind\" type mounts");
	mount_bad("target=/x,gid=1", "gid not allowed for \"bind\" type mounts");
	mount_bad("", "failed to parse csv mounts");
	mount_bad("target=a\"b", "bare \" in non-quoted-field");
	mount_bad("\"target=/x", "extraneous or missing \" in quoted-field");
	/* csv quoting lets a value hold a comma */
	struct fe_mount m = mount_ok("\"target=/a,b\",\"source=x\"\"y\"");
	assert_string_equal(m.target, "/a,b");
	assert_string_equal(m.source, "x\"y");
}

static void
test_mount__variables_checked_strictly_after_expansion(void **state)
{
	/* fe_mount_parse is for expanded specs: a leftover $ is just text. */
	struct fe_mount m = mount_ok("target=/x$y,from=$z");
	assert_string_equal(m.target, "/x$y");
	assert_string_equal(m.from, "$z");
	mount_bad("type=cache,target=/x,uid=$U", "invalid value $U for uid");
}

/* ---- Go durations ---- */

static void
test_duration__go_syntax(void **state)
{
	int64_t ns;
	static const struct {
		const char *s;
		int64_t ns;
	} good[] = {
	        {"0", 0},
	        {"+0", 0},
	        {"-0", 0},
	        {"5s", 5000000000LL},
	        {"1m30s", 90000000000LL},
	        {"1.5h", 5400000000000LL},
	        {"300ms", 300000000LL},
	        {"-1.5h", -5400000000000LL},
	        {"10us", 10000},
	        {"10\xc2\xb5s", 10000},
	        {"10\xce\xbcs", 10000},
	        {"7ns", 7},
	        {".5s", 500000000LL},
	        {"1.s", 1000000000LL},
	        {"2h45m", 9900000000000LL},
	        {"1h1m1s1ms1us1ns", 3661001001001LL},
	        {"0s", 0},
	        {"9223372036854775807ns", INT64_MAX},
	        {"-9223372036854775808ns", INT64_MIN},
	        {"0.000000001s", 1},
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(good); i++) {
		ns = 12345;
		if (fe_duration_parse(good[i].s, &ns) != 0 || ns != good[i].ns)
			print_error("duration %s -> %lld\n", good[i].s, (long long)ns);
		assert_int_equal(fe_duration_parse(good[i].s, &ns), 0);
		assert_int_equal(ns, good[i].ns);
	}
	static const char *const badv[] = {
	        "",         "5",   "s",   ".s", "1x", "1.2.3s", "--1s",
	        "1s ",      " 1s", "1 s", "-",  "+",  "1e3s",   "9223372036854775808ns",
	        "3000000h",
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(badv); i++) {
		ns = 12345;
		if (fe_duration_parse(badv[i], &ns) == 0)
			print_error("duration \"%s\" accepted\n", badv[i]);
		assert_true(fe_duration_parse(badv[i], &ns) < 0);
		assert_int_equal(ns, 12345);
	}
}

/* ---- through the real parser ---- */

/* Parse `text` with fe_parse; the tree lives until the test's teardown. */
static struct fe_ast *
parse_text(const char *text)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ast *ast = NULL;
	int r = fe_parse("Dockerfile", text, strlen(text), &ast, &err);
	if (r < 0) {
		char *s = kiln_err_format(&err);
		print_error("fe_parse: %s\n", s);
		free(s);
		kiln_err_release(&err);
	}
	assert_int_equal(r, 0);
	assert_true(nasts < KILN_ARRAY_SIZE(asts));
	asts[nasts++] = ast;
	return ast;
}

static struct fe_cmd *
parsed(const char *text, size_t idx)
{
	struct fe_ast *ast = parse_text(text);
	assert_true(idx < ast->nnodes);
	return ok(&ast->nodes[idx]);
}

/* Instruction `idx` of `text` must fail at `line` with `msg`. */
static void
parsed_bad_at(const char *text, size_t idx, int line, const char *msg, const char *file,
              int srcline)
{
	struct fe_ast *ast = parse_text(text);
	assert_true(idx < ast->nnodes);
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_cmd *c = NULL;
	assert_int_equal(fe_cmd_parse(arena, "Dockerfile", &ast->nodes[idx], &c, &err), -EINVAL);
	assert_int_equal(err.line, line);
	char *want = kiln_xasprintf("Dockerfile:%d: %s", line, msg);
	test_assert_err_contains(&err, want, file, srcline);
	free(want);
}
#define parsed_bad(text, idx, line, msg)                                                           \
	parsed_bad_at((text), (idx), (line), (msg), __FILE__, __LINE__)

static void
test_parsed__every_instruction(void **state)
{
	static const char text[] = "ARG A=1 B\n"
	                           "FROM --platform=linux/arm64 img AS Base\n"
	                           "RUN --mount=type=bind,source=\"a b\",target=/x \\\n"
	                           "  --network=host make\n"
	                           "CMD [\"a\", \"b\"]\n"
	                           "ENTRYPOINT run it\n"
	                           "SHELL [\"/bin/sh\", \"-ec\"]\n"
	                           "LABEL k=v\n"
	                           "MAINTAINER me <m@e>\n"
	                           "EXPOSE 80 443\n"
	                           "ENV X y z\n"
	                           "ADD --unpack a.tar /\n"
	                           "COPY --from=\"st\" --exclude=a --exclude=b src /d\n"
	                           "ONBUILD RUN x\n"
	                           "STOPSIGNAL 9\n"
	                           "HEALTHCHECK --retries=2 CMD [\"check\"]\n"
	                           "USER u:g\n"
	                           "VOLUME /v1 /v2\n"
	                           "WORKDIR /w\n";
	static const enum fe_cmd_kind kinds[] = {
	        FE_CMD_ARG,        FE_CMD_FROM,       FE_CMD_RUN,         FE_CMD_CMD,
	        FE_CMD_ENTRYPOINT, FE_CMD_SHELL,      FE_CMD_LABEL,       FE_CMD_MAINTAINER,
	        FE_CMD_EXPOSE,     FE_CMD_ENV,        FE_CMD_ADD,         FE_CMD_COPY,
	        FE_CMD_ONBUILD,    FE_CMD_STOPSIGNAL, FE_CMD_HEALTHCHECK, FE_CMD_USER,
	        FE_CMD_VOLUME,     FE_CMD_WORKDIR,
	};
	struct fe_ast *ast = parse_text(text);
	assert_int_equal(ast->nnodes, KILN_ARRAY_SIZE(kinds));
	struct fe_cmd *c[KILN_ARRAY_SIZE(kinds)];
	for (size_t i = 0; i < KILN_ARRAY_SIZE(kinds); i++) {
		c[i] = ok(&ast->nodes[i]);
		assert_int_equal(c[i]->kind, kinds[i]);
	}
	assert_int_equal(c[0]->kv.nkvs, 2);
	assert_null(c[0]->kv.kvs[1].value);
	assert_string_equal(c[1]->from.stage_name, "base");
	assert_string_equal(c[1]->from.platform, "linux/arm64");
	assert_int_equal(c[2]->start_line, 3);
	assert_int_equal(c[2]->end_line, 4);
	assert_string_equal(c[2]->run.mounts[0].source, "a b");
	assert_string_equal(c[2]->run.network, "host");
	assert_string_equal(c[2]->run.cmd.argv[0], "make");
	assert_false(c[3]->cmdline.shell_form);
	assert_true(c[4]->cmdline.shell_form);
	assert_string_equal(c[4]->cmdline.argv[0], "run it");
	assert_string_equal(c[5]->cmdline.argv[1], "-ec");
	assert_string_equal(c[7]->value, "me <m@e>");
	assert_int_equal(c[8]->list.nwords, 2);
	assert_string_equal(c[9]->kv.kvs[0].key, "X");
	assert_string_equal(c[9]->kv.kvs[0].value, "y z");
	assert_int_equal(c[10]->copy.unpack, 1);
	assert_string_equal(c[11]->copy.from, "st");
	assert_int_equal(c[11]->copy.nexcludes, 2);
	assert_int_equal(c[12]->onbuild.cmd->kind, FE_CMD_RUN);
	assert_string_equal(c[12]->onbuild.expression, "RUN x");
	assert_string_equal(c[13]->value, "9");
	assert_int_equal(c[14]->healthcheck.retries, 2);
	assert_false(c[14]->healthcheck.test.shell_form);
	assert_string_equal(c[14]->healthcheck.test.argv[0], "check");
	assert_int_equal(c[16]->list.nwords, 2);
	assert_string_equal(c[17]->value, "/w");
	assert_int_equal(c[17]->start_line, 19);
}

static void
test_parsed__heredocs(void **state)
{
	struct fe_cmd *c = parsed("COPY <<A <<-'B' /dst/\nfoo\nA\n\tbar $x\n\tB\n", 0);
	assert_int_equal(c->copy.nsources, 0);
	assert_int_equal(c->copy.nheredocs, 2);
	assert_string_equal(c->copy.heredocs[0].name, "A");
	assert_string_equal(c->copy.heredocs[0].content, "foo\n");
	assert_true(c->copy.heredocs[0].expand);
	assert_string_equal(c->copy.heredocs[1].name, "B");
	assert_false(c->copy.heredocs[1].expand);
	assert_string_equal(c->copy.dest, "/dst/");
	assert_int_equal(c->end_line, 5);
	c = parsed("ONBUILD RUN <<EOF\nmake\nEOF\n", 0);
	assert_string_equal(c->onbuild.expression, "RUN <<EOF\nmake\nEOF");
	assert_int_equal(c->onbuild.cmd->run.nheredocs, 1);
	c = parsed("RUN <<EOF sh\necho\nEOF\n", 0);
	assert_int_equal(c->run.nheredocs, 1);
	assert_string_equal(c->run.heredocs[0].content, "echo\n");
}

static void
test_parsed__errors_carry_line(void **state)
{
	parsed_bad("FROM a\n\n# c\nFOOBAR x y\n", 1, 4, "unknown instruction: FOOBAR");
	parsed_bad("FROM a\nRUN --mount=type=tmpfs,target=/t,size=big \\\n  x\n", 1, 2,
	           "--mount=type=tmpfs,target=/t,size=big: invalid value for size: big");
	parsed_bad("FROM a\nONBUILD ONBUILD RUN x\n", 1, 2,
	           "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
	parsed_bad("FROM a\nONBUILD FROM b\n", 1, 2, "FROM isn't allowed as an ONBUILD trigger");
	parsed_bad("FROM a\nONBUILD maintainer b\n", 1, 2,
	           "MAINTAINER isn't allowed as an ONBUILD trigger");
	parsed_bad("FROM a\nONBUILD FOO b\n", 1, 2, "unknown instruction: FOO");
	parsed_bad("FROM a as\n", 0, 1, "FROM requires either one or three arguments");
	parsed_bad("COPY --link -- a\n", 0, 1, "COPY requires at least two arguments");
	parsed_bad("SHELL [\"a\"] x\n", 0, 1, "SHELL requires the arguments to be in JSON form");
	parsed_bad("HEALTHCHECK CMD\n", 0, 1, "Missing command after HEALTHCHECK CMD");
	parsed_bad("ADD --link=nope a b\n", 0, 1,
	           "expecting boolean value for flag --link, not: nope");
}

static void
test_parsed__double_dash_and_escape(void **state)
{
	struct fe_cmd *c = parsed("COPY --link -- --from=x /d\n", 0);
	assert_true(c->copy.link);
	assert_null(c->copy.from);
	assert_string_equal(c->copy.sources[0], "--from=x");
	c = parsed("# escape=`\nRUN --mount=target=/a` b echo\n", 0);
	assert_string_equal(c->run.mounts[0].target, "/a b");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_from__image_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_from__stage_name_lowercased_and_platform,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_from__errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_run__shell_form, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_run__exec_form, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_run__flags, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_run__heredocs_from_node, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_run__errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_run__mount_values_with_variables_are_deferred,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cmd__shell_and_exec_form, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_shell__json_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_env__pairs_and_legacy, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_label__pairs, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_arg__several_with_and_without_default, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_single_value_instructions, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_expose__ports_as_written, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_volume__json_and_list, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_copy__all_flags, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_copy__bool_flag_forms, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_copy__add_only_flags_rejected, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_copy__arg_count_and_heredocs, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_add__all_flags, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_flags__double_dash_ends_flags, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_healthcheck__cmd_with_flags, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_healthcheck__none, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_healthcheck__errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_onbuild__trigger_parsed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_onbuild__expression_from_original_and_heredocs,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_onbuild__errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_instruction, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_kind_names, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mount__bind_defaults, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mount__readonly_forms, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mount__cache_options, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mount__tmpfs_size, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mount__secret_and_ssh, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mount__key_and_syntax_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_mount__variables_checked_strictly_after_expansion, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_duration__go_syntax, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_parsed__every_instruction, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_parsed__heredocs, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_parsed__errors_carry_line, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_parsed__double_dash_and_escape, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
