/*
 * Unit tests for executor/run.c through the API the solver uses: line streaming, results,
 * timeout and cancel, option errors. Needs root (CI is root); skips when run by hand
 * without it. The container checks from the shell live in tests/integration/executor_run.sh.
 */
#include "testlib.h"

#include "executor/ex.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>

struct fixture {
	char *dir;
	char *rootfs;
	char *store;
};

static void
copy_file(const char *from, const char *to, mode_t mode)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, mode);
	assert_true(in >= 0 && out >= 0);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

static int
setup(void **state)
{
	struct fixture *f = kiln_xcalloc(1, sizeof(*f));
	f->dir = test_tmpdir_new();
	f->rootfs = kiln_xasprintf("%s/rootfs", f->dir);
	f->store = kiln_xasprintf("%s/store", f->dir);
	test_write_file(f->dir, "rootfs/etc/passwd",
	                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
	test_write_file(f->dir, "rootfs/etc/group", "root:x:0:\napp:x:1000:\n");
	char *bin = kiln_xasprintf("%s/bin", f->rootfs);
	assert_int_equal(mkdir(bin, 0755), 0);
	char *bb = kiln_xasprintf("%s/busybox", bin);
	copy_file("/bin/busybox", bb, 0755);
	static const char *const applets[] = {"sh",   "cat", "echo", "sleep", "printf",
	                                      "head", "tr",  "ls",   "test",  "env"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(applets); i++) {
		char *l = kiln_xasprintf("%s/%s", bin, applets[i]);
		assert_int_equal(symlink("busybox", l), 0);
		free(l);
	}
	free(bb);
	free(bin);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	test_tmpdir_remove(f->dir);
	free(f->rootfs);
	free(f->store);
	free(f);
	return 0;
}

struct captured {
	struct kiln_strv out, err;
};

static void
capture(void *data, int stream, const char *line, size_t len)
{
	struct captured *c = data;
	kiln_strv_push_take(stream == EX_STREAM_STDOUT ? &c->out : &c->err,
	                    kiln_xstrndup(line, len));
}

static void
captured_release(struct captured *c)
{
	kiln_strv_release(&c->out);
	kiln_strv_release(&c->err);
}

static struct ex_run_opts
opts_for(struct fixture *f, char *const *argv, struct captured *c)
{
	struct ex_run_opts o = EX_RUN_OPTS_INIT;
	o.rootfs = f->rootfs;
	o.argv = argv;
	o.store_root = f->store;
	o.tmpdir = f->dir;
	o.output = capture;
	o.output_data = c;
	return o;
}

static void
run_ok(struct ex_run_opts *o, struct ex_result *res)
{
	struct kiln_err err = KILN_ERR_INIT;
	int r = ex_run(o, res, &err);
	if (r < 0)
		fail_msg("ex_run: %s", err.msg);
}

static void
test_run__streams_lines_per_stream(void **state)
{
	struct fixture *f = *state;
	struct captured c = {0};
	char *argv[] = {"sh", "-c", "printf 'a\\nb\\n'; printf 'e1\\n' >&2; printf partial", NULL};
	struct ex_run_opts o = opts_for(f, argv, &c);
	struct ex_result res;
	run_ok(&o, &res);
	assert_int_equal(res.exit_code, 0);
	assert_int_equal(res.signal, 0);
	assert_int_equal(c.out.n, 3);
	assert_string_equal(c.out.v[0], "a");
	assert_string_equal(c.out.v[1], "b");
	assert_string_equal(c.out.v[2], "partial");
	assert_int_equal(c.err.n, 1);
	assert_string_equal(c.err.v[0], "e1");
	captured_release(&c);
}

static void
test_run__long_line_comes_in_pieces(void **state)
{
	struct fixture *f = *state;
	struct captured c = {0};
	char *argv[] = {"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; echo; echo end", NULL};
	struct ex_run_opts o = opts_for(f, argv, &c);
	struct ex_result res;
	run_ok(&o, &res);
	assert_int_equal(c.out.n, 3);
	assert_int_equal(strlen(c.out.v[0]), 65536);
	assert_int_equal(strlen(c.out.v[1]), 100000 - 65536);
	assert_string_equal(c.out.v[2], "end");
	captured_release(&c);

	/* exactly 64 KiB and its newline: one line, no empty one after it */
	char *exact[] = {"sh", "-c", "head -c 65536 /dev/zero | tr '\\0' y; echo; echo end", NULL};
	o.argv = exact;
	run_ok(&o, &res);
	assert_int_equal(c.out.n, 2);
	assert_int_equal(strlen(c.out.v[0]), 65536);
	assert_string_equal(c.out.v[1], "end");
	captured_release(&c);
}

static void
test_run__exit_code_and_env_defaults(void **state)
{
	struct fixture *f = *state;
	struct captured c = {0};
	char *argv[] = {"sh", "-c", "echo $PATH; echo $HOME; echo $X; exit 7", NULL};
	char *env[] = {"X=1", "X=2", NULL};
	struct ex_run_opts o = opts_for(f, argv, &c);
	o.env = env;
	o.user = "app";
	struct ex_result res;
	run_ok(&o, &res);
	assert_int_equal(res.exit_code, 7);
	assert_false(res.timed_out);
	assert_int_equal(c.out.n, 3);
	assert_string_equal(c.out.v[0],
	                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	assert_string_equal(c.out.v[1], "/home/app");
	assert_string_equal(c.out.v[2], "2"); /* the later value wins */
	captured_release(&c);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
test_run__timeout_kills(void **state)
{
	struct fixture *f = *state;
	struct captured c = {0};
	char *argv[] = {"sh", "-c", "echo up; sleep 100 & sleep 100", NULL};
	struct ex_run_opts o = opts_for(f, argv, &c);
	o.timeout_ms = 500;
	struct ex_result res;
	uint64_t t0 = now_ms();
	run_ok(&o, &res);
	assert_true(now_ms() - t0 < 5000);
	assert_true(res.timed_out);
	assert_false(res.cancelled);
	assert_int_equal(res.signal, SIGKILL);
	assert_int_equal(c.out.n, 1);
	captured_release(&c);
}

static void
test_run__cancel_fd_kills(void **state)
{
	struct fixture *f = *state;
	struct captured c = {0};
	char *argv[] = {"sleep", "100", NULL};
	struct ex_run_opts o = opts_for(f, argv, &c);
	/* An eventfd already signalled, as a failed sibling would leave it: the run is
	 * killed as soon as it starts, and the fd stays readable for the other runs. */
	int efd = eventfd(1, EFD_CLOEXEC);
	assert_true(efd >= 0);
	o.cancel_fd = efd;
	struct ex_result res;
	uint64_t t0 = now_ms();
	run_ok(&o, &res);
	assert_true(now_ms() - t0 < 5000);
	assert_true(res.cancelled);
	assert_int_equal(res.signal, SIGKILL);
	run_ok(&o, &res);
	assert_true(res.cancelled);
	close(efd);
	captured_release(&c);
}

static void
test_run__secret_as_env_only(void **state)
{
	struct fixture *f = *state;
	struct captured c = {0};
	char *argv[] = {"sh", "-c", "echo $TOKEN; test -e /run/secrets/tok || echo no-file", NULL};
	struct ex_mount m = {
	        .type = EX_MOUNT_SECRET, .id = "tok", .env = "TOKEN", .data = "abc", .data_len = 3};
	struct ex_run_opts o = opts_for(f, argv, &c);
	o.mounts = &m;
	o.nmounts = 1;
	struct ex_result res;
	run_ok(&o, &res);
	assert_int_equal(c.out.n, 2);
	assert_string_equal(c.out.v[0], "abc");
	assert_string_equal(c.out.v[1], "no-file");
	captured_release(&c);
}

static void
expect_fail(struct ex_run_opts *o, int code, const char *needle)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct ex_result res = {.exit_code = 99};
	assert_int_equal(ex_run(o, &res, &err), -code);
	assert_int_equal(res.exit_code, 99); /* untouched on failure */
	assert_err_contains(&err, needle);
}

static void
test_run__errors(void **state)
{
	struct fixture *f = *state;
	struct captured c = {0};
	char *argv[] = {"/nope", NULL};
	char *none[] = {NULL};
	struct ex_run_opts o = opts_for(f, argv, &c);
	expect_fail(&o, ENOENT, "exec /nope: No such file or directory");

	char *notfound[] = {"nope", NULL};
	o.argv = notfound;
	expect_fail(&o, ENOENT, "exec nope: executable file not found in $PATH");

	o = opts_for(f, none, &c);
	expect_fail(&o, EINVAL, "no command given");
	o = opts_for(f, argv, &c);
	o.rootfs = NULL;
	expect_fail(&o, EINVAL, "no rootfs given");
	o = opts_for(f, argv, &c);
	o.cwd = "rel";
	expect_fail(&o, EINVAL, "working directory rel is not absolute");
	o = opts_for(f, argv, &c);
	o.hostname = "evil\n1.2.3.4 registry";
	expect_fail(&o, EINVAL, "is not a DNS name");
	char *badenv[] = {"NOEQUALS", NULL};
	o = opts_for(f, argv, &c);
	o.env = badenv;
	expect_fail(&o, EINVAL, "\"NOEQUALS\" is not KEY=VALUE");
	o = opts_for(f, argv, &c);
	o.user = "ghost";
	expect_fail(&o, EINVAL, "no user \"ghost\"");
	struct ex_mount cache = {.type = EX_MOUNT_CACHE, .target = "/c"};
	o = opts_for(f, argv, &c);
	o.store_root = NULL;
	o.mounts = &cache;
	o.nmounts = 1;
	expect_fail(&o, EINVAL, "needs a store root");
	/* A failing first mount: the later ones were never set up and must not close
	 * anything (fd 0 stays open). */
	struct ex_mount two[] = {
	        {.type = EX_MOUNT_BIND, .target = "/a", .source = "/nonexistent/src"},
	        {.type = EX_MOUNT_TMPFS, .target = "/b"},
	};
	int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(probe >= 0);
	int fd0 = fcntl(0, F_GETFD) >= 0 ? 0 : probe;
	o = opts_for(f, argv, &c);
	o.mounts = two;
	o.nmounts = 2;
	expect_fail(&o, ENOENT, "--mount source /nonexistent/src");
	assert_true(fcntl(fd0, F_GETFD) >= 0);
	close(probe);
	o = opts_for(f, argv, &c);
	o.rootfs = "/nonexistent/rootfs";
	expect_fail(&o, ENOENT, "rootfs /nonexistent/rootfs");
	assert_int_equal(c.out.n + c.err.n, 0);

	/* The failed runs left nothing: no run directory, no mount point in the rootfs. */
	DIR *d = opendir(f->dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		assert_false(kiln_str_has_prefix(e->d_name, "kiln-run-"));
	closedir(d);
	static const char *const points[] = {"proc", "dev", "sys", "etc/hosts", "etc/hostname"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(points); i++) {
		char *p = kiln_xasprintf("%s/%s", f->rootfs, points[i]);
		struct stat st;
		assert_int_equal(lstat(p, &st), -1);
		free(p);
	}
	captured_release(&c);
}

int
main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: executor tests need root\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_run__streams_lines_per_stream, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_run__long_line_comes_in_pieces, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_run__exit_code_and_env_defaults, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_run__timeout_kills, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_run__cancel_fd_kills, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_run__secret_as_env_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_run__errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
