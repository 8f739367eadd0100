/* Unit tests for snapshot/fsutil.c: the native driver's tree copy keeps everything a
 * layer can hold; rm -rf never follows a symlink nor deletes through a mount. */
#include "layer_tar.h"

#include "snapshot/snap_int.h"

struct fixture {
	char *dir;
};

static int
setup(void **state)
{
	if (geteuid() != 0) {
		print_message("snapshot tests need root\n");
		exit(77);
	}
	struct fixture *f = kiln_xcalloc(1, sizeof(*f));
	f->dir = test_tmpdir_new();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int left = mounts_below(f->dir);
	umount_below(f->dir);
	test_tmpdir_remove(f->dir);
	free(f);
	assert_int_equal(left, 0);
	return 0;
}

static char *
path_in(struct fixture *f, const char *rel)
{
	return kiln_xasprintf("%s/%s", f->dir, rel);
}

static int
no_change(const struct snap_change *c, void *data, struct kiln_err *err)
{
	return kiln_err_invalid(err, "unexpected change %s", c->path);
}

static void
test_fsutil__copy_tree_keeps_everything(void **state)
{
	struct fixture *f = *state;
	test_write_file(f->dir, "src/bin/busybox", "elf");
	test_write_file(f->dir, "src/etc/secret", "s");
	_cleanup_free_ char *bb = path_in(f, "src/bin/busybox");
	_cleanup_free_ char *sh = path_in(f, "src/bin/sh");
	_cleanup_free_ char *ln = path_in(f, "src/bin/ash");
	_cleanup_free_ char *nul = path_in(f, "src/null");
	_cleanup_free_ char *fifo = path_in(f, "src/fifo");
	_cleanup_free_ char *sec = path_in(f, "src/etc/secret");
	_cleanup_free_ char *etc = path_in(f, "src/etc");
	assert_int_equal(link(bb, sh), 0);
	assert_int_equal(symlink("/bin/busybox", ln), 0);
	assert_int_equal(mknod(nul, S_IFCHR | 0666, makedev(1, 3)), 0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(chown(sec, 1000, 1001), 0);
	assert_int_equal(chmod(sec, 04710), 0);
	assert_int_equal(setxattr(bb, "user.kiln", "v", 1, 0), 0);
	assert_int_equal(setxattr(etc, "trusted.overlay.opaque", "y", 1, 0), 0);
	struct timespec ts[2] = {{.tv_sec = 1234}, {.tv_sec = 5678, .tv_nsec = 9}};
	assert_int_equal(utimensat(AT_FDCWD, etc, ts, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, ln, ts, AT_SYMLINK_NOFOLLOW), 0);

	_cleanup_free_ char *src = path_in(f, "src");
	_cleanup_free_ char *dst = path_in(f, "dst");
	assert_int_equal(mkdir(dst, 0700), 0);
	_cleanup_close_ int sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_copy_tree(sfd, dfd, &err), 0);

	_cleanup_free_ char *a = tree_list(src);
	_cleanup_free_ char *b = tree_list(dst);
	assert_string_equal(a, b);
	struct stat s1, s2;
	assert_true(lexists(dst, "bin/busybox", &s1));
	assert_true(lexists(dst, "bin/sh", &s2));
	assert_int_equal(s1.st_ino, s2.st_ino);
	assert_true(lexists(dst, "etc/secret", &s1));
	assert_int_equal(s1.st_mode & 07777, 04710);
	assert_int_equal(s1.st_uid, 1000);
	assert_true(lexists(dst, "etc", &s1));
	assert_int_equal(s1.st_mtim.tv_sec, 5678);
	assert_int_equal(s1.st_mtim.tv_nsec, 9);
	assert_true(lexists(dst, "bin/ash", &s1));
	assert_int_equal(s1.st_mtim.tv_sec, 5678);
	_cleanup_free_ char *x1 = xattr_of(dst, "bin/busybox", "user.kiln");
	_cleanup_free_ char *x2 = xattr_of(dst, "etc", "trusted.overlay.opaque");
	assert_string_equal(x1, "v");
	assert_string_equal(x2, "y");
	/* and a copy of a copy diffs as nothing */
	assert_int_equal(snap_native_diff_walk(sfd, dfd, no_change, NULL, &err), 0);
}

static void
test_fsutil__rm_rf_stays_on_its_side(void **state)
{
	struct fixture *f = *state;
	test_write_file(f->dir, "host/precious", "p");
	test_write_file(f->dir, "tree/a/b/c", "c");
	_cleanup_free_ char *host = path_in(f, "host");
	_cleanup_free_ char *ln = path_in(f, "tree/a/to-host");
	assert_int_equal(symlink(host, ln), 0);
	_cleanup_close_ int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(kiln_rm_rf_at(dfd, "tree"), 0);
	assert_false(lexists(f->dir, "tree", NULL));
	assert_true(lexists(f->dir, "host/precious", NULL));
	assert_int_equal(kiln_rm_rf_at(dfd, "tree"), 0); /* already gone is fine */

	/* a mount inside the tree is never deleted through */
	test_write_file(f->dir, "tree2/x", "x");
	_cleanup_free_ char *mnt = path_in(f, "tree2/mnt");
	assert_int_equal(mkdir(mnt, 0755), 0);
	assert_int_equal(mount(host, mnt, NULL, MS_BIND, NULL), 0);
	assert_int_equal(kiln_rm_rf_at(dfd, "tree2"), -EBUSY);
	assert_true(lexists(f->dir, "host/precious", NULL));
	assert_int_equal(umount2(mnt, 0), 0);
	assert_int_equal(kiln_rm_rf_at(dfd, "tree2"), 0);
	assert_false(lexists(f->dir, "tree2", NULL));
}

static void
test_fsutil__strset_and_random_names(void **state)
{
	struct snap_strset set = {0};
	for (int i = 0; i < 1000; i++) {
		_cleanup_free_ char *s = kiln_xasprintf("path/%d", i);
		snap_strset_add(&set, s);
		snap_strset_add(&set, s);
	}
	assert_int_equal(set.n, 1000);
	assert_true(snap_strset_has(&set, "path/0"));
	assert_true(snap_strset_has(&set, "path/999"));
	assert_false(snap_strset_has(&set, "path/1000"));
	snap_strset_release(&set);
	assert_false(snap_strset_has(&set, "path/0"));

	char a[11], b[11];
	snap_random_name(a, 10);
	snap_random_name(b, 10);
	assert_int_equal(strlen(a), 10);
	assert_int_equal(strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789"), 10);
	assert_string_not_equal(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_fsutil__copy_tree_keeps_everything, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_fsutil__rm_rf_stays_on_its_side, setup,
	                                        teardown),
	        cmocka_unit_test(test_fsutil__strset_and_random_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
