/* Unit tests for ops/copymanifest.c and the incremental copy it drives in ops/file.c: the
 * manifest's round trip and damage checks, racy entries, and a copy rerun on a hard-link
 * clone of its last result writing only what changed, never into a shared inode, and
 * refusing (-ESTALE) what a clone cannot follow. */
#include "testlib.h"

#include "ops/file.h"
#include "snapshot/snap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

struct fx {
	char *tmp;
	int srcs[2];
};

#define COPY_DEF                                                                                   \
	"{\"actions\":[{\"action\":\"copy\",\"input\":1,\"src\":\".\",\"dest\":\"/out\","          \
	"\"follow_symlinks\":false,\"dir_contents_only\":true,\"allow_wildcard\":true,"            \
	"\"create_dest_path\":true}]}"

static int
setup(void **state)
{
	if (geteuid() != 0) {
		print_message("ops copy tests need root (owners, links across trees)\n");
		exit(77);
	}
	struct fx *fx = kiln_xcalloc(1, sizeof(*fx));
	fx->tmp = test_tmpdir_new();
	_cleanup_free_ char *src = kiln_xasprintf("%s/src", fx->tmp);
	assert_int_equal(mkdir(src, 0755), 0);
	fx->srcs[0] = -1;
	fx->srcs[1] = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->srcs[1] >= 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	close(fx->srcs[1]);
	test_tmpdir_remove(fx->tmp);
	free(fx);
	return 0;
}

static int
dir_in(struct fx *fx, const char *name)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", fx->tmp, name);
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		fail_msg("mkdir %s", p);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static ino_t
ino_at(int dirfd, const char *rel)
{
	struct stat st;
	assert_int_equal(fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_ino;
}

static char *
text_at(int dirfd, const char *rel)
{
	_cleanup_close_ int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(kiln_buf_read_fd(&b, fd, &err), 0);
	return kiln_buf_detach(&b, NULL);
}

/* Run COPY_DEF into dest, recording into *ret_record; with prev, incrementally. */
static int
copy_run(struct fx *fx, int dest, const struct ops_copy_manifest *prev,
         struct ops_copy_manifest **ret_record, size_t *changed, struct kiln_err *err)
{
	_cleanup_json_ json_t *def = json_loads(COPY_DEF, 0, NULL);
	assert_non_null(def);
	struct ops_file_env env = OPS_FILE_ENV_INIT;
	env.record = *ret_record = ops_copy_manifest_new();
	env.prev = prev;
	env.ret_changed = changed;
	return ops_file_run(def, dest, fx->srcs, 2, &env, err);
}

/* Save and load back, as the next build reads it. */
static struct ops_copy_manifest *
round_trip(struct fx *fx, struct ops_copy_manifest *m, const char *name)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", fx->tmp, name);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ops_copy_manifest_save(m, p, &err), 0);
	struct ops_copy_manifest *back = NULL;
	assert_int_equal(ops_copy_manifest_load(p, &back, &err), 0);
	return back;
}

static void
test_copymanifest__round_trip_and_damage(void **state)
{
	struct fx *fx = *state;
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *m = ops_copy_manifest_new();
	struct stat st = {.st_mode = S_IFREG | 0644, .st_size = 7, .st_ino = 42, .st_uid = 3};
	st.st_ctim.tv_sec = 1000; /* long ago: not racy */
	ops_copy_manifest_add(m, "/out/b", &st, 0);
	st.st_ino = 43;
	st.st_mode = S_IFDIR | 0755;
	ops_copy_manifest_add(m, "/out", &st, OPS_COPY_CREATED);
	st.st_ctim.tv_sec = time(NULL); /* now: racy */
	st.st_ino = 44;
	st.st_mode = S_IFREG | 0600;
	ops_copy_manifest_add(m, "/out/a", &st, 0);

	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *b = round_trip(fx, m, "m");
	assert_int_equal(ops_copy_manifest_count(b), 3);
	/* sorted by path */
	assert_string_equal(ops_copy_manifest_at(b, 0)->path, "/out");
	assert_int_equal(ops_copy_manifest_at(b, 0)->flags, OPS_COPY_CREATED);
	ssize_t i = ops_copy_manifest_find(b, "/out/b");
	assert_int_equal(i, 2);
	const struct ops_copy_entry *e = ops_copy_manifest_at(b, (size_t)i);
	assert_int_equal(e->ino, 42);
	assert_int_equal(e->uid, 3);
	st = (struct stat){.st_mode = S_IFREG | 0644, .st_size = 7, .st_ino = 42, .st_uid = 3};
	st.st_ctim.tv_sec = 1000;
	assert_true(ops_copy_entry_same(e, &st));
	st.st_ctim.tv_nsec = 1; /* any change moves the ctime */
	assert_false(ops_copy_entry_same(e, &st));
	assert_int_equal(ops_copy_manifest_find(b, "/out/c"), -1);
	/* a racy entry never matches, even its own stat */
	e = ops_copy_manifest_at(b, (size_t)ops_copy_manifest_find(b, "/out/a"));
	assert_true(e->flags & OPS_COPY_RACY);

	/* a flipped byte or a cut file is damage, not a wrong answer */
	_cleanup_free_ char *p = kiln_xasprintf("%s/m", fx->tmp);
	_cleanup_close_ int fd = open(p, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 20), 1);
	struct kiln_err err = KILN_ERR_INIT;
	struct ops_copy_manifest *bad = NULL;
	assert_int_equal(ops_copy_manifest_load(p, &bad, &err), -EUCLEAN);
	assert_err_contains(&err, "damaged");
	kiln_err_release(&err);
	assert_int_equal(ftruncate(fd, 10), 0);
	assert_int_equal(ops_copy_manifest_load(p, &bad, &err), -EUCLEAN);
	kiln_err_release(&err);
	_cleanup_free_ char *none = kiln_xasprintf("%s/none", fx->tmp);
	assert_int_equal(ops_copy_manifest_load(none, &bad, &err), -ENOENT);
	kiln_err_release(&err);

	/* one path written twice cannot be followed */
	ops_copy_manifest_add(m, "/out/b", &st, 0);
	assert_int_equal(ops_copy_manifest_save(m, p, &err), -EEXIST);
	kiln_err_release(&err);
}

static void
test_copymanifest__incremental_copy_writes_only_what_changed(void **state)
{
	struct fx *fx = *state;
	int s = fx->srcs[1];
	test_write_file(fx->tmp, "src/a/x", "x1");
	test_write_file(fx->tmp, "src/a/y", "y1");
	test_write_file(fx->tmp, "src/b", "b1");
	assert_int_equal(symlinkat("a/x", s, "l"), 0);
	_cleanup_free_ char *srca = kiln_xasprintf("%s/src/a", fx->tmp);
	assert_int_equal(setxattr(srca, "user.k", "v", 1, 0), 0);
	usleep(1100 * 1000); /* older than a second: not racy */

	_cleanup_close_ int d1 = dir_in(fx, "d1");
	struct kiln_err err = KILN_ERR_INIT;
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *r1 = NULL;
	assert_int_equal(copy_run(fx, d1, NULL, &r1, NULL, &err), 0);
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *m1 = round_trip(fx, r1, "m1");
	assert_int_equal(ops_copy_manifest_count(m1), 6); /* out, a, a/x, a/y, b, l */

	/* a/x changed in place, c added */
	_cleanup_close_ int fd = openat(s, "a/x", O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_int_equal(write(fd, "+", 1), 1);
	test_write_file(fx->tmp, "src/c", "c1");
	assert_int_equal(removexattr(srca, "user.k"), 0);
	_cleanup_close_ int d2 = dir_in(fx, "d2");
	assert_int_equal(snap_clone_tree_at(d1, d2, &err), 0);
	size_t changed = 99;
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *r2 = NULL;
	assert_int_equal(copy_run(fx, d2, m1, &r2, &changed, &err), 0);
	assert_int_equal(changed, 2);
	_cleanup_free_ char *x2 = text_at(d2, "out/a/x");
	_cleanup_free_ char *x1 = text_at(d1, "out/a/x");
	_cleanup_free_ char *c2 = text_at(d2, "out/c");
	assert_string_equal(x2, "x1+");
	assert_string_equal(x1, "x1"); /* the old tree is untouched */
	assert_string_equal(c2, "c1");
	assert_true(ino_at(d2, "out/a/x") != ino_at(d1, "out/a/x"));
	assert_true(ino_at(d2, "out/a/y") == ino_at(d1, "out/a/y"));
	assert_int_equal(ops_copy_manifest_count(r2), 7);
	/* a directory's xattr removed from the source goes from the copy too */
	char v[8];
	_cleanup_free_ char *a1 = kiln_xasprintf("%s/d1/out/a", fx->tmp);
	_cleanup_free_ char *a2 = kiln_xasprintf("%s/d2/out/a", fx->tmp);
	assert_int_equal(getxattr(a1, "user.k", v, sizeof(v)), 1);
	assert_int_equal(getxattr(a2, "user.k", v, sizeof(v)), -1);

	/* a deleted source: the clone would keep it */
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *m2 = round_trip(fx, r2, "m2");
	assert_int_equal(unlinkat(s, "b", 0), 0);
	_cleanup_close_ int d3 = dir_in(fx, "d3");
	assert_int_equal(snap_clone_tree_at(d2, d3, &err), 0);
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *r3 = NULL;
	assert_int_equal(copy_run(fx, d3, m2, &r3, NULL, &err), -ESTALE);
	assert_err_contains(&err, "1 source entries are gone");
	kiln_err_release(&err);

	/* a file turned directory */
	assert_int_equal(mkdirat(s, "b", 0755), 0);
	_cleanup_close_ int d4 = dir_in(fx, "d4");
	assert_int_equal(snap_clone_tree_at(d2, d4, &err), 0);
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *r4 = NULL;
	assert_int_equal(copy_run(fx, d4, m2, &r4, NULL, &err), -ESTALE);
	assert_err_contains(&err, "changed type");
	kiln_err_release(&err);
}

static void
test_copymanifest__changed_hard_linked_file_is_refused(void **state)
{
	struct fx *fx = *state;
	int s = fx->srcs[1];
	test_write_file(fx->tmp, "src/a", "one");
	assert_int_equal(linkat(s, "a", s, "b", 0), 0);
	usleep(1100 * 1000);
	_cleanup_close_ int d1 = dir_in(fx, "d1");
	struct kiln_err err = KILN_ERR_INIT;
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *r1 = NULL;
	assert_int_equal(copy_run(fx, d1, NULL, &r1, NULL, &err), 0);
	assert_true(ino_at(d1, "out/a") == ino_at(d1, "out/b"));
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *m1 = round_trip(fx, r1, "m1");

	/* unchanged: kept, still one inode for both names */
	_cleanup_close_ int d2 = dir_in(fx, "d2");
	assert_int_equal(snap_clone_tree_at(d1, d2, &err), 0);
	size_t changed = 99;
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *r2 = NULL;
	assert_int_equal(copy_run(fx, d2, m1, &r2, &changed, &err), 0);
	assert_int_equal(changed, 0);
	assert_true(ino_at(d2, "out/a") == ino_at(d2, "out/b"));

	/* changed: refused, as the clone's second name would keep the old inode */
	_cleanup_close_ int fd = openat(s, "a", O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_int_equal(write(fd, "+", 1), 1);
	_cleanup_close_ int d3 = dir_in(fx, "d3");
	assert_int_equal(snap_clone_tree_at(d1, d3, &err), 0);
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *r3 = NULL;
	assert_int_equal(copy_run(fx, d3, m1, &r3, NULL, &err), -ESTALE);
	assert_err_contains(&err, "has hard links");
	kiln_err_release(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_copymanifest__round_trip_and_damage, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_copymanifest__incremental_copy_writes_only_what_changed, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_copymanifest__changed_hard_linked_file_is_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
