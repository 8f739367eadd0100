/* Unit tests for base/inodemap.c: paths by (device, inode). */
#include "testlib.h"

static void
test_inodemap__empty_map_finds_nothing(void **state)
{
	(void)state;
	struct kiln_inode_map m = {0};
	assert_null(kiln_inode_map_get(&m, 1, 2));
	kiln_inode_map_clear(&m);
}

static void
test_inodemap__set_get_and_replace(void **state)
{
	(void)state;
	struct kiln_inode_map m = {0};
	kiln_inode_map_set(&m, 1, 2, "/a");
	kiln_inode_map_set(&m, 2, 2, "/b"); /* same inode number, other device */
	assert_string_equal(kiln_inode_map_get(&m, 1, 2), "/a");
	assert_string_equal(kiln_inode_map_get(&m, 2, 2), "/b");
	assert_null(kiln_inode_map_get(&m, 1, 3));
	kiln_inode_map_set(&m, 1, 2, "/c");
	assert_string_equal(kiln_inode_map_get(&m, 1, 2), "/c");
	assert_int_equal(m.n, 2);
	kiln_inode_map_clear(&m);
	assert_null(kiln_inode_map_get(&m, 1, 2));
}

static void
test_inodemap__keeps_every_entry_as_it_grows(void **state)
{
	(void)state;
	struct kiln_inode_map m = {0};
	enum { N = 5000 };
	for (int i = 0; i < N; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/f%d", i);
		kiln_inode_map_set(&m, (dev_t)(i % 3), (ino_t)i * 4096, p);
	}
	assert_int_equal(m.n, N);
	for (int i = 0; i < N; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/f%d", i);
		const char *got = kiln_inode_map_get(&m, (dev_t)(i % 3), (ino_t)i * 4096);
		assert_non_null(got);
		assert_string_equal(got, p);
	}
	kiln_inode_map_clear(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_inodemap__empty_map_finds_nothing),
	        cmocka_unit_test(test_inodemap__set_get_and_replace),
	        cmocka_unit_test(test_inodemap__keeps_every_entry_as_it_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
