/* Unit tests for ops/ops.c, ops/source.c and ops/exec.c: small graphs solved through the
 * ops on a real snapshot store (as root), a context holding busybox as the only tool. */
#include "testlib.h"

#include "ops/ops.h"
#include "registry/reg.h"
#include "snapshot/snap.h"

#include <fcntl.h>
#include <sys/stat.h>

struct fx {
	char *tmp, *root, *ctx;
	struct snap_store *snaps;
	struct reg_store *reg;
	struct sv_cache *cache;
	struct ops *ops;
	unsigned cached, finished;
};

static int
setup(void **state)
{
	if (geteuid() != 0) {
		print_message("needs root (CI runs as root)\n");
		exit(77);
	}
	struct fx *fx = kiln_xcalloc(1, sizeof(*fx));
	fx->tmp = test_tmpdir_new();
	fx->root = kiln_xasprintf("%s/root", fx->tmp);
	fx->ctx = kiln_xasprintf("%s/ctx", fx->tmp);
	assert_int_equal(mkdir(fx->root, 0700), 0);
	assert_int_equal(mkdir(fx->ctx, 0755), 0);
	test_write_file(fx->ctx, "hello.txt", "hello\n");
	/* busybox into the context, to copy into scratch and run */
	struct kiln_buf bb = KILN_BUF_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(kiln_buf_read_file(&bb, "/bin/busybox", &err), 0);
	_cleanup_free_ char *p = kiln_xasprintf("%s/busybox", fx->ctx);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bb.buf, bb.len), (ssize_t)bb.len);
	close(fd);
	kiln_buf_release(&bb);

	struct snap_store_opts so = SNAP_STORE_OPTS_INIT;
	assert_int_equal(snap_store_open(fx->root, &so, &fx->snaps, &err), 0);
	assert_int_equal(reg_store_open(fx->root, &fx->reg, &err), 0);
	assert_int_equal(sv_cache_open(fx->root, &fx->cache, &err), 0);
	struct ops_opts oo = OPS_OPTS_INIT;
	oo.root = fx->root;
	oo.snaps = fx->snaps;
	oo.reg = fx->reg;
	oo.context_dir = fx->ctx;
	oo.no_pull = true;
	assert_int_equal(ops_new(&oo, &fx->ops, &err), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	ops_free(fx->ops);
	sv_cache_free(fx->cache);
	reg_store_free(fx->reg);
	snap_store_free(fx->snaps);
	test_tmpdir_remove(fx->tmp);
	free(fx->root);
	free(fx->ctx);
	free(fx);
	return 0;
}

static void
on_event(void *data, const struct sv_event *ev)
{
	struct fx *fx = data;
	if (ev->type == SV_EVENT_CACHED)
		fx->cached++;
	else if (ev->type == SV_EVENT_FINISHED)
		fx->finished++;
}

static json_t *
J(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j)
		fail_msg("bad JSON in test: %s", je.text);
	return j;
}

/* scratch + context -> busybox copied to /bin/busybox: the root of the exec tests. */
static struct sv_vertex *
busybox_root(struct sv_graph *g)
{
	struct sv_vertex *scratch = sv_graph_add(g, SV_OP_SOURCE, J("{\"type\":\"scratch\"}"), NULL,
	                                         0, &(struct sv_vertex_meta){0});
	struct sv_vertex *ctx = sv_graph_add(
	        g, SV_OP_SOURCE, J("{\"type\":\"local\",\"name\":\"context\",\"exclude\":[]}"),
	        NULL, 0, &(struct sv_vertex_meta){0});
	struct sv_vertex *in[] = {scratch, ctx};
	return sv_graph_add(g, SV_OP_FILE,
	                    J("{\"actions\":[{\"action\":\"copy\",\"input\":1,\"src\":\"/busybox\","
	                      "\"dest\":\"/bin/busybox\",\"create_dest_path\":true},"
	                      "{\"action\":\"copy\",\"input\":1,\"src\":\"/hello.txt\","
	                      "\"dest\":\"/hello.txt\"}]}"),
	                    in, 2, &(struct sv_vertex_meta){.description = "COPY busybox"});
}

static int
solve(struct fx *fx, struct sv_graph *g, struct sv_vertex *want, bool no_cache,
      struct sv_solver **ret, struct kiln_err *err)
{
	struct sv_solve_opts so = SV_SOLVE_OPTS_INIT;
	so.jobs = 2;
	so.no_cache = no_cache;
	so.progress = on_event;
	so.progress_data = fx;
	assert_int_equal(sv_solver_new(ops_vtable(), fx->ops, fx->cache, &so, ret, err), 0);
	return sv_solve(*ret, g, &want, 1, err);
}

/* The text of `path` in committed snapshot `snap`. */
static char *
snap_read(struct fx *fx, const char *snap, const char *path)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct snap_mount *m = NULL;
	assert_int_equal(snap_view(fx->snaps, snap, &m, &err), 0);
	_cleanup_free_ char *p = kiln_path_join(snap_mount_path(m), path);
	struct kiln_buf b = KILN_BUF_INIT;
	int r = kiln_buf_read_file(&b, p, &err);
	snap_mount_release(m);
	if (r < 0) {
		kiln_err_release(&err);
		kiln_buf_release(&b);
		return NULL;
	}
	return kiln_buf_detach(&b, NULL);
}

static int
find_size(void *data, const struct sv_cache_entry *e)
{
	if (e->size == *(uint64_t *)data)
		*(uint64_t *)data = 0;
	return 0;
}

static void
test_ops__exec_runs_with_env_and_commits(void **state)
{
	struct fx *fx = *state;
	struct kiln_err err = KILN_ERR_INIT;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *root = busybox_root(g);
	struct sv_vertex *run = sv_graph_add(
	        g, SV_OP_EXEC,
	        J("{\"args\":[\"/bin/busybox\",\"sh\",\"-c\",\"/bin/busybox cat /hello.txt > /out; "
	          "echo $FOO $(/bin/busybox pwd) >> /out\"],\"env\":[\"FOO=bar\",\"PATH=/bin\"],"
	          "\"cwd\":\"/w\",\"user\":\"\",\"network\":\"none\",\"security\":\"sandbox\","
	          "\"mounts\":[]}"),
	        &root, 1, &(struct sv_vertex_meta){.description = "RUN"});
	struct sv_solver *s = NULL;
	assert_int_equal(solve(fx, g, run, false, &s, &err), 0);
	const char *res = sv_solver_result(s, run);
	assert_non_null(res);
	_cleanup_free_ char *out = snap_read(fx, res, "/out");
	assert_string_equal(out, "hello\nbar /w\n");
	assert_ptr_equal(ops_stage_root(run), root->inputs[0]);
	assert_int_equal(fx->cached, 0);
	/* The run's record carries the bytes it added: /out, 13 bytes. */
	uint64_t want = 13;
	assert_int_equal(sv_cache_list(fx->cache, find_size, &want, &err), 0);
	assert_int_equal(want, 0);
	sv_solver_free(s);

	/* Again: every vertex from the cache, the same snapshot. */
	assert_int_equal(solve(fx, g, run, false, &s, &err), 0);
	assert_int_equal(fx->cached, 4);
	assert_true(ops_vtable()->result_exists(fx->ops, sv_solver_result(s, run)));
	assert_false(ops_vtable()->result_exists(fx->ops, "x-no-such-snapshot"));
	sv_solver_free(s);
	sv_graph_free(g);
}

static void
test_ops__exec_failure_names_process_and_exit_code(void **state)
{
	struct fx *fx = *state;
	struct kiln_err err = KILN_ERR_INIT;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *root = busybox_root(g);
	struct sv_vertex *run = sv_graph_add(
	        g, SV_OP_EXEC,
	        J("{\"args\":[\"/bin/busybox\",\"sh\",\"-c\",\"echo \\\"last words\\\"; exit 3\"],"
	          "\"env\":[],\"cwd\":\"/\",\"mounts\":[]}"),
	        &root, 1, &(struct sv_vertex_meta){.description = "RUN fail", .line = 7});
	struct sv_solver *s = NULL;
	assert_true(solve(fx, g, run, false, &s, &err) < 0);
	char *text = kiln_err_format(&err);
	assert_non_null(strstr(text, "Dockerfile:7: RUN fail: process \"/bin/busybox sh -c echo "
	                             "\\\"last words\\\"; exit 3\" did not complete successfully: "
	                             "exit code: 3"));
	assert_non_null(strstr(text, "last words"));
	free(text);
	kiln_err_release(&err);
	sv_solver_free(s);
	sv_graph_free(g);
}

static void
test_ops__missing_image_says_how_to_get_it(void **state)
{
	struct fx *fx = *state;
	struct kiln_err err = KILN_ERR_INIT;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *img = sv_graph_add(
	        g, SV_OP_SOURCE,
	        J("{\"type\":\"image\",\"ref\":\"docker.io/library/nope:1\",\"platform\":\"\"}"),
	        NULL, 0, &(struct sv_vertex_meta){.description = "FROM nope:1", .line = 1});
	struct sv_solver *s = NULL;
	assert_true(solve(fx, g, img, false, &s, &err) < 0);
	assert_err_contains(&err, "image docker.io/library/nope:1 not in the store (kiln "
	                          "pull/load/import it)");
	sv_solver_free(s);
	sv_graph_free(g);
}

static void
test_ops__foreign_platform_is_refused(void **state)
{
	struct fx *fx = *state;
	struct kiln_err err = KILN_ERR_INIT;
	struct sv_graph *g = sv_graph_new();
	struct reg_platform host = REG_PLATFORM_INIT;
	reg_platform_host(&host);
	const char *other =
	        kiln_str_eq(host.architecture, "s390x") ? "linux/ppc64le" : "linux/s390x";
	reg_platform_release(&host);
	_cleanup_free_ char *def = kiln_xasprintf(
	        "{\"type\":\"image\",\"ref\":\"docker.io/library/x:1\",\"platform\":\"%s\"}",
	        other);
	struct sv_vertex *img = sv_graph_add(g, SV_OP_SOURCE, J(def), NULL, 0,
	                                     &(struct sv_vertex_meta){.description = "FROM x"});
	struct sv_solver *s = NULL;
	assert_true(solve(fx, g, img, false, &s, &err) < 0);
	assert_err_contains(&err, "only the host platform can be built");
	sv_solver_free(s);
	sv_graph_free(g);
}

static void
test_ops__network_host_needs_allow(void **state)
{
	struct fx *fx = *state;
	struct kiln_err err = KILN_ERR_INIT;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *root = busybox_root(g);
	struct sv_vertex *run = sv_graph_add(
	        g, SV_OP_EXEC,
	        J("{\"args\":[\"/bin/busybox\",\"true\"],\"env\":[],\"cwd\":\"/\","
	          "\"network\":\"host\",\"mounts\":[]}"),
	        &root, 1, &(struct sv_vertex_meta){.description = "RUN --network=host"});
	struct sv_solver *s = NULL;
	assert_true(solve(fx, g, run, false, &s, &err) < 0);
	assert_err_contains(&err, "needs --allow network.host");
	sv_solver_free(s);
	sv_graph_free(g);
}

static void
test_ops__export_local_copies_the_tree(void **state)
{
	struct fx *fx = *state;
	struct kiln_err err = KILN_ERR_INIT;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *root = busybox_root(g);
	struct sv_solver *s = NULL;
	assert_int_equal(solve(fx, g, root, false, &s, &err), 0);
	_cleanup_free_ char *dest = kiln_xasprintf("%s/out", fx->tmp);
	assert_int_equal(ops_export_local(fx->ops, sv_solver_result(s, root), dest, &err), 0);
	_cleanup_free_ char *p = kiln_xasprintf("%s/hello.txt", dest);
	struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(kiln_buf_read_file(&b, p, &err), 0);
	assert_string_equal(b.buf, "hello\n");
	kiln_buf_release(&b);
	_cleanup_free_ char *bb = kiln_xasprintf("%s/bin/busybox", dest);
	assert_int_equal(access(bb, X_OK), 0);
	sv_solver_free(s);
	sv_graph_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_ops__exec_runs_with_env_and_commits, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_ops__exec_failure_names_process_and_exit_code,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ops__missing_image_says_how_to_get_it, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_ops__foreign_platform_is_refused, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_ops__network_host_needs_allow, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_ops__export_local_copies_the_tree, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
