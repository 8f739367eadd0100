/* Unit tests for ops/dirnames.c: a directory's names, sorted as kiln_dir_names sorts. */
#include "testlib.h"

#include "ops/file.h"

#include <fcntl.h>
#include <sys/stat.h>

struct fx {
	char *tmp;
};

static int
setup(void **state)
{
	struct fx *fx = kiln_xcalloc(1, sizeof(*fx));
	fx->tmp = test_tmpdir_new();
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	test_tmpdir_remove(fx->tmp);
	free(fx);
	return 0;
}

static void
assert_same_as_kiln_dir_names(const char *dir)
{
	_cleanup_close_ int a = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int b = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(a >= 0 && b >= 0);
	_cleanup_strv_ struct kiln_strv want = KILN_STRV_INIT;
	assert_int_equal(kiln_dir_names(a, &want), 0);
	_cleanup_dir_names_ struct ops_dir_names got = {0};
	assert_int_equal(ops_dir_names_read(b, &got), 0);
	assert_int_equal(got.n, want.n);
	for (size_t i = 0; i < want.n; i++)
		assert_string_equal(got.v[i], want.v[i]);
	assert_null(got.v[got.n]);
}

static void
test_dirnames__empty(void **state)
{
	struct fx *fx = *state;
	assert_same_as_kiln_dir_names(fx->tmp);
}

static void
test_dirnames__sorted_like_strcmp(void **state)
{
	struct fx *fx = *state;
	/* shared 8-byte prefixes, short names, bytes >= 0x80, dots, and a long name */
	const char *names[] = {
	        "b",   "a",       "abcdefgh", "abcdefghi",    "abcdefgg",          "abcdefgh0",
	        "ABC", "a.b",     ".hidden",  "..dots",       "\xc3\xa9t\xc3\xa9", "\x7f",
	        "z",   "abcdefg", "0",        "abcdefgh\xff",
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(names); i++)
		test_write_file(fx->tmp, names[i], "x");
	char longname[256];
	memset(longname, 'q', 255);
	longname[255] = '\0';
	test_write_file(fx->tmp, longname, "x");
	assert_same_as_kiln_dir_names(fx->tmp);
}

static void
test_dirnames__many_entries_grow_the_buffer(void **state)
{
	struct fx *fx = *state;
	/* ~5,000 long names: several getdents64 calls and buffer growth */
	for (int i = 0; i < 5000; i++) {
		_cleanup_free_ char *p = kiln_xasprintf("%s/%0200d-%d", fx->tmp, (4999 - i) * 7, i);
		_cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
	}
	assert_same_as_kiln_dir_names(fx->tmp);
}

static void
test_dirnames__not_a_directory(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->tmp, "f", "x");
	_cleanup_free_ char *p = kiln_xasprintf("%s/f", fx->tmp);
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	_cleanup_dir_names_ struct ops_dir_names got = {0};
	assert_int_equal(ops_dir_names_read(fd, &got), -ENOTDIR);
	assert_int_equal(got.n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	        T(test_dirnames__empty),
	        T(test_dirnames__sorted_like_strcmp),
	        T(test_dirnames__many_entries_grow_the_buffer),
	        T(test_dirnames__not_a_directory),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
