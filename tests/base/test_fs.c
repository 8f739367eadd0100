/* Unit tests for base/fs.c: atomic file replacement and directory listings. */
#include "testlib.h"

#include <fcntl.h>
#include <sys/stat.h>

static void
test_fs__atomic_write_replaces_and_leaves_no_temp(void **state)
{
	char *dir = test_tmpdir_new();
	test_write_file(dir, "sub/file", "old content");
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(kiln_write_file_atomic_at(dfd, "sub/file", "new", 3, 0600, &err), 0);

	struct kiln_buf b = KILN_BUF_INIT;
	char *path = kiln_xasprintf("%s/sub/file", dir);
	assert_int_equal(kiln_buf_read_file(&b, path, &err), 0);
	assert_string_equal(b.buf, "new");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* Only the file itself is left: no temp beside it. */
	_cleanup_close_ int sfd = openat(dfd, "sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	assert_int_equal(kiln_dir_names(sfd, &names), 0);
	assert_int_equal(names.n, 1);
	assert_string_equal(names.v[0], "file");

	kiln_buf_release(&b);
	free(path);
	test_tmpdir_remove(dir);
}

static void
test_fs__atomic_write_error_names_the_file(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	int r = kiln_write_file_atomic_at(AT_FDCWD, "/nonexistent-dir/x", "a", 1, 0644, &err);
	assert_int_equal(r, -ENOENT);
	assert_err_contains(&err, "/nonexistent-dir/x");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fs__atomic_write_replaces_and_leaves_no_temp),
		cmocka_unit_test(test_fs__atomic_write_error_names_the_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
