/* Unit tests for base/path.c: untrusted paths never leave their root, with openat2 and
 * with the fallback component walk. */
#include "testlib.h"

#include <fcntl.h>
#include <sys/stat.h>

struct fixture {
	char *dir;
	char *root;
	int rootfd;
};

static int
setup(void **state)
{
	struct fixture *f = kiln_xcalloc(1, sizeof(*f));
	f->dir = test_tmpdir_new();
	test_write_file(f->dir, "outside/secret", "host");
	test_write_file(f->dir, "root/etc/passwd", "inside");
	f->root = kiln_xasprintf("%s/root", f->dir);
	char *p = kiln_xasprintf("%s/abs", f->root);
	assert_int_equal(symlink("/etc", p), 0);
	free(p);
	p = kiln_xasprintf("%s/rel", f->root);
	assert_int_equal(symlink("../../outside", p), 0);
	free(p);
	f->rootfd = open(f->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->rootfd >= 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	close(f->rootfd);
	free(f->root);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void
read_inside(struct fixture *f, const char *path, const char *want)
{
	struct kiln_err err = KILN_ERR_INIT;
	int fd = kiln_path_openat_in_root(f->rootfd, path, O_RDONLY, 0, &err);
	assert_true(fd >= 0);
	char b[64] = {0};
	assert_true(read(fd, b, sizeof(b) - 1) >= 0);
	close(fd);
	assert_string_equal(b, want);
}

static void
test_path__dotdot_and_symlinks_stay_inside(void **state)
{
	struct fixture *f = *state;
	read_inside(f, "/etc/passwd", "inside");
	read_inside(f, "../../../etc/passwd", "inside");
	read_inside(f, "/abs/passwd", "inside");
	struct kiln_err err = KILN_ERR_INIT;
	/* rel -> ../../outside resolves to /outside inside the root, which does not exist. */
	assert_int_equal(kiln_path_openat_in_root(f->rootfd, "rel/secret", O_RDONLY, 0, &err), -ENOENT);
	kiln_err_release(&err);
}

static void
test_path__fallback_walk_stays_inside(void **state)
{
	struct fixture *f = *state;
	const char *paths[] = {"/etc/passwd", "../../../etc/passwd", "/abs/passwd", "abs/../abs/./passwd"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(paths); i++) {
		int fd = kiln_path_walk_in_root(f->rootfd, paths[i], O_RDONLY, 0);
		assert_true(fd >= 0);
		char b[64] = {0};
		assert_true(read(fd, b, sizeof(b) - 1) >= 0);
		close(fd);
		assert_string_equal(b, "inside");
	}
	assert_int_equal(kiln_path_walk_in_root(f->rootfd, "rel/secret", O_RDONLY, 0), -ENOENT);
	int fd = kiln_path_walk_in_root(f->rootfd, "abs/../etc/created", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	char *p = kiln_xasprintf("%s/etc/created", f->root);
	assert_int_equal(access(p, F_OK), 0);
	free(p);
}

static void
test_path__mkdir_through_symlink_stays_inside(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	int fd = kiln_path_mkdirat_in_root(f->rootfd, "rel/new/dir", 0755, &err);
	assert_true(fd >= 0);
	close(fd);
	struct stat st;
	char *inside = kiln_xasprintf("%s/outside/new/dir", f->root);
	char *outside = kiln_xasprintf("%s/outside/new", f->dir);
	assert_int_equal(stat(inside, &st), 0);
	assert_int_equal(stat(outside, &st), -1);
	free(inside);
	free(outside);
}

static void
test_path__create_file_inside(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	int fd = kiln_path_openat_in_root(f->rootfd, "/../etc/new", O_WRONLY | O_CREAT | O_EXCL, 0644, &err);
	assert_true(fd >= 0);
	close(fd);
	char *p = kiln_xasprintf("%s/etc/new", f->root);
	assert_int_equal(access(p, F_OK), 0);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_path__dotdot_and_symlinks_stay_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path__fallback_walk_stays_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path__mkdir_through_symlink_stays_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path__create_file_inside, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
