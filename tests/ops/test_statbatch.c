/* Unit tests for ops/statbatch.c: stats on two threads give what a plain loop gives. */
#include "testlib.h"

#include "ops/file.h"

#include <fcntl.h>
#include <sys/stat.h>

struct fx {
	char *tmp;
	int dirfd;
};

static int
setup(void **state)
{
	struct fx *fx = kiln_xcalloc(1, sizeof(*fx));
	fx->tmp = test_tmpdir_new();
	fx->dirfd = open(fx->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->dirfd >= 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	close(fx->dirfd);
	test_tmpdir_remove(fx->tmp);
	free(fx);
	return 0;
}

/* n names: files, a directory, a dangling symlink (not followed) and missing names. */
static void
make_names(struct fx *fx, size_t n, struct kiln_strv *names)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *name = kiln_xasprintf("n%zu", i);
		_cleanup_free_ char *p = kiln_xasprintf("%s/%s", fx->tmp, name);
		if (i % 50 == 7)
			assert_int_equal(mkdir(p, 0700), 0);
		else if (i % 50 == 9)
			assert_int_equal(symlink("nowhere", p), 0);
		else if (i % 50 != 11) /* left missing: ENOENT */
			test_write_file(fx->tmp, name, name);
		kiln_strv_push(names, name);
	}
}

static void
assert_like_a_loop(struct fx *fx, struct ops_stat_batch *b, const struct kiln_strv *names)
{
	size_t n = names->n;
	struct stat *st = kiln_xcalloc(n ? n : 1, sizeof(*st));
	int *errs = kiln_xcalloc(n ? n : 1, sizeof(int));
	ops_stat_batch_run(b, fx->dirfd, names->v, n, st, errs);
	for (size_t i = 0; i < n; i++) {
		struct stat want;
		int werr =
		        fstatat(fx->dirfd, names->v[i], &want, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
		assert_int_equal(errs[i], werr);
		if (werr)
			continue;
		assert_int_equal(st[i].st_ino, want.st_ino);
		assert_int_equal(st[i].st_mode, want.st_mode);
		assert_int_equal(st[i].st_size, want.st_size);
	}
	free(st);
	free(errs);
}

static void
test_statbatch__same_as_a_loop(void **state)
{
	struct fx *fx = *state;
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	make_names(fx, 1000, &names);
	struct ops_stat_batch *b = ops_stat_batch_new();
	/* many batches on one helper, big and small, and the empty one */
	for (int round = 0; round < 50; round++)
		assert_like_a_loop(fx, b, &names);
	_cleanup_strv_ struct kiln_strv few = KILN_STRV_INIT;
	for (size_t i = 0; i < 5; i++)
		kiln_strv_push(&few, names.v[i]);
	assert_like_a_loop(fx, b, &few);
	_cleanup_strv_ struct kiln_strv none = KILN_STRV_INIT;
	assert_like_a_loop(fx, b, &none);
	assert_like_a_loop(fx, b, &names);
	ops_stat_batch_free(b);
	/* without a batch: all on this thread */
	assert_like_a_loop(fx, NULL, &names);
	ops_stat_batch_free(NULL);
}

static void
test_statbatch__freed_unused_or_idle(void **state)
{
	struct fx *fx = *state;
	ops_stat_batch_free(ops_stat_batch_new()); /* no helper was ever started */
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	make_names(fx, 100, &names);
	struct ops_stat_batch *b = ops_stat_batch_new();
	assert_like_a_loop(fx, b, &names);
	ops_stat_batch_free(b); /* the helper is waiting for the next batch */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	        T(test_statbatch__same_as_a_loop),
	        T(test_statbatch__freed_unused_or_idle),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
