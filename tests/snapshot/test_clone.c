/* Unit tests for snapshot/clone.c: the hard-link clone shares every regular file's inode,
 * recreates everything else as it was (overlay whiteouts and opaque markers included), and
 * replacing a cloned file leaves the source untouched. */
#include "layer_tar.h"

#include "snapshot/snap_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

struct fixture {
	char *dir;
	int src, dst;
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
	_cleanup_free_ char *s = kiln_xasprintf("%s/src", f->dir);
	_cleanup_free_ char *d = kiln_xasprintf("%s/dst", f->dir);
	assert_int_equal(mkdir(s, 0755), 0);
	assert_int_equal(mkdir(d, 0755), 0);
	f->src = open(s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	f->dst = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->src >= 0 && f->dst >= 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	close(f->src);
	close(f->dst);
	umount_below(f->dir);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void
lstat_at(int dirfd, const char *rel, struct stat *st)
{
	assert_int_equal(fstatat(dirfd, rel, st, AT_SYMLINK_NOFOLLOW), 0);
}

static char *
read_at(int dirfd, const char *rel)
{
	_cleanup_close_ int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(kiln_buf_read_fd(&b, fd, &err), 0);
	return kiln_buf_detach(&b, NULL);
}

static void
write_at(int dirfd, const char *rel, const char *text)
{
	_cleanup_close_ int fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

static void
test_clone__links_files_and_recreates_the_rest(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(mkdirat(f->src, "d", 0750), 0);
	assert_int_equal(mkdirat(f->src, "d/opaque", 0755), 0);
	write_at(f->src, "d/file", "content");
	assert_int_equal(fchownat(f->src, "d/file", 1000, 1001, 0), 0);
	assert_int_equal(fchmodat(f->src, "d/file", 0604, 0), 0);
	assert_int_equal(linkat(f->src, "d/file", f->src, "hard", 0), 0);
	assert_int_equal(symlinkat("../elsewhere", f->src, "d/link"), 0);
	assert_int_equal(mknodat(f->src, "d/gone", S_IFCHR | 0, makedev(0, 0)), 0);
	assert_int_equal(mknodat(f->src, "fifo", S_IFIFO | 0640, 0), 0);
	assert_int_equal(fchownat(f->src, "d", 7, 8, AT_SYMLINK_NOFOLLOW), 0);
	_cleanup_free_ char *opq = kiln_xasprintf("%s/src/d/opaque", f->dir);
	assert_int_equal(lsetxattr(opq, SNAP_OPAQUE_XATTR, "y", 1, 0), 0);
	_cleanup_free_ char *dpath = kiln_xasprintf("%s/src/d", f->dir);
	assert_int_equal(lsetxattr(dpath, "user.note", "kept", 4, 0), 0);
	struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	assert_int_equal(utimensat(f->src, "d", old, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(utimensat(f->src, "d/link", old, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fchmod(f->src, 0711), 0);

	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_clone_tree_at(f->src, f->dst, &err), 0);

	struct stat s, d;
	/* regular files: the same inode, now with one more link */
	lstat_at(f->src, "d/file", &s);
	lstat_at(f->dst, "d/file", &d);
	assert_true(s.st_ino == d.st_ino);
	assert_int_equal(d.st_nlink, 4); /* d/file and hard, in both trees */
	lstat_at(f->dst, "hard", &d);
	assert_true(s.st_ino == d.st_ino);
	/* directories: new inodes with the old owner, mode, times and xattrs */
	lstat_at(f->src, "d", &s);
	lstat_at(f->dst, "d", &d);
	assert_true(s.st_ino != d.st_ino);
	assert_int_equal(d.st_mode, S_IFDIR | 0750);
	assert_int_equal(d.st_uid, 7);
	assert_int_equal(d.st_gid, 8);
	assert_int_equal(d.st_mtim.tv_sec, 1000000000);
	char val[16];
	_cleanup_free_ char *dd = kiln_xasprintf("%s/dst/d", f->dir);
	assert_int_equal(lgetxattr(dd, "user.note", val, sizeof(val)), 4);
	assert_memory_equal(val, "kept", 4);
	_cleanup_free_ char *dopq = kiln_xasprintf("%s/dst/d/opaque", f->dir);
	assert_int_equal(lgetxattr(dopq, SNAP_OPAQUE_XATTR, val, sizeof(val)), 1);
	assert_int_equal(val[0], 'y');
	/* the root's own metadata */
	assert_int_equal(fstat(f->dst, &d), 0);
	assert_int_equal(d.st_mode & 07777, 0711);
	/* symlinks, whiteouts, fifos: recreated */
	char target[64];
	ssize_t n = readlinkat(f->dst, "d/link", target, sizeof(target));
	assert_int_equal(n, strlen("../elsewhere"));
	assert_memory_equal(target, "../elsewhere", (size_t)n);
	lstat_at(f->dst, "d/link", &d);
	assert_int_equal(d.st_mtim.tv_sec, 1000000000);
	lstat_at(f->dst, "d/gone", &d);
	assert_true(S_ISCHR(d.st_mode) && d.st_rdev == makedev(0, 0));
	lstat_at(f->dst, "fifo", &d);
	assert_int_equal(d.st_mode, S_IFIFO | 0640);
}

static void
test_clone__replacing_a_cloned_file_keeps_the_source(void **state)
{
	struct fixture *f = *state;
	write_at(f->src, "a", "old");
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_clone_tree_at(f->src, f->dst, &err), 0);
	/* What the incremental copy does to a changed file: unlink, create. */
	assert_int_equal(unlinkat(f->dst, "a", 0), 0);
	write_at(f->dst, "a", "new content");
	_cleanup_free_ char *s = read_at(f->src, "a");
	_cleanup_free_ char *d = read_at(f->dst, "a");
	assert_string_equal(s, "old");
	assert_string_equal(d, "new content");
	struct stat st;
	lstat_at(f->src, "a", &st);
	assert_int_equal(st.st_nlink, 1);
}

static void
test_clone__into_a_non_empty_directory_fails(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(mkdirat(f->src, "sub", 0755), 0);
	write_at(f->src, "sub/x", "x");
	assert_int_equal(mkdirat(f->dst, "sub", 0755), 0);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_clone_tree_at(f->src, f->dst, &err), -EEXIST);
	assert_err_contains(&err, "clone: mkdir `sub`");
	kiln_err_release(&err);
}

static void
test_clone__names_the_entry_that_failed(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(mkdirat(f->src, "a", 0755), 0);
	assert_int_equal(mkdirat(f->src, "a/b", 0755), 0);
	write_at(f->src, "a/b/c", "x");
	assert_int_equal(mkdirat(f->dst, "a", 0755), 0);
	/* dst/a exists: the clone of a fails there, naming it */
	struct kiln_err err = KILN_ERR_INIT;
	assert_true(snap_clone_tree_at(f->src, f->dst, &err) < 0);
	assert_err_contains(&err, "`a`");
	kiln_err_release(&err);
	/* an empty tree clones to nothing but the root's metadata */
	_cleanup_free_ char *e = kiln_xasprintf("%s/empty", f->dir);
	_cleanup_free_ char *e2 = kiln_xasprintf("%s/empty2", f->dir);
	assert_int_equal(mkdir(e, 0700), 0);
	assert_int_equal(mkdir(e2, 0755), 0);
	_cleanup_close_ int efd = open(e, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int e2fd = open(e2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(snap_clone_tree_at(efd, e2fd, &err), 0);
	struct stat st;
	assert_int_equal(fstat(e2fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
}

/* A snapshot on `parent` with `file` written through its mount, committed as `name`. */
static void
commit_with(struct snap_store *s, const char *parent, const char *name, const char *file,
            const char *content)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare(s, parent, &m, &err), 0);
	test_write_file(snap_mount_path(m), file, content);
	assert_int_equal(snap_commit(m, name, &err), 0);
	snap_mount_release(m);
}

/* An overlay store in the fixture's dir with "base" and "step-1" (src/a = "one") on it. */
static struct snap_store *
store_with_step(struct fixture *f)
{
	_cleanup_free_ char *root = kiln_xasprintf("%s/root", f->dir);
	struct snap_store_opts o = {.driver = SNAP_DRIVER_OVERLAY};
	struct snap_store *s = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	if (snap_store_open(root, &o, &s, &err) < 0)
		fail_msg("open store: %s", kiln_err_format(&err));
	commit_with(s, NULL, "base", "etc/base", "b");
	commit_with(s, "base", "step-1", "src/a", "one");
	return s;
}

static void
test_clone__prepare_clone_starts_from_the_snapshot(void **state)
{
	struct fixture *f = *state;
	struct snap_store *s = store_with_step(f);
	struct kiln_err err = KILN_ERR_INIT;

	struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare_clone(s, "base", "step-1", &m, &err), 0);
	/* the merged tree is step-1's; the upper shares step-1's file */
	_cleanup_free_ char *a = kiln_xasprintf("%s/src/a", snap_mount_path(m));
	_cleanup_free_ char *base = kiln_xasprintf("%s/etc/base", snap_mount_path(m));
	assert_int_equal(access(a, F_OK), 0);
	assert_int_equal(access(base, F_OK), 0);
	_cleanup_free_ char *ua = kiln_xasprintf("%s/src/a", snap_mount_upper(m));
	struct stat st;
	assert_int_equal(stat(ua, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	/* replaced through the mount, as the incremental copy does */
	assert_int_equal(unlink(a), 0);
	test_write_file(snap_mount_path(m), "src/a", "two");
	assert_int_equal(snap_commit(m, "step-2", &err), 0);
	snap_mount_release(m);
	struct snap_mount *v = NULL;
	assert_int_equal(snap_view(s, "step-1", &v, &err), 0);
	_cleanup_free_ char *old = kiln_xasprintf("%s/src/a", snap_mount_path(v));
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(kiln_buf_read_file(&b, old, &err), 0);
	assert_string_equal(b.buf, "one");
	snap_mount_release(v);

	/* only onto the parent the clone was made on */
	assert_int_equal(snap_prepare_clone(s, NULL, "step-1", &m, &err), -EINVAL);
	assert_err_contains(&err, "not on the same parent");
	kiln_err_release(&err);
	assert_true(snap_prepare_clone(s, "base", "missing", &m, &err) < 0);
	kiln_err_release(&err);
	snap_store_free(s);
	assert_int_equal(mounts_below(f->dir), 0);
}

/* The snapshot a clone is made from cannot be removed until the clone is committed or
 * dropped: a clone of a tree being removed would miss files without noticing. */
static void
test_clone__source_kept_while_cloned(void **state)
{
	struct fixture *f = *state;
	struct snap_store *s = store_with_step(f);
	struct kiln_err err = KILN_ERR_INIT;
	struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare_clone(s, "base", "step-1", &m, &err), 0);
	assert_int_equal(snap_remove(s, "step-1", &err), -EBUSY);
	assert_err_contains(&err, "in use");
	kiln_err_release(&err);
	assert_int_equal(snap_commit(m, "step-2", &err), 0);
	snap_mount_release(m);
	assert_int_equal(snap_remove(s, "step-1", &err), 0);
	snap_store_free(s);
	assert_int_equal(mounts_below(f->dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_clone__links_files_and_recreates_the_rest,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_clone__replacing_a_cloned_file_keeps_the_source, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_clone__into_a_non_empty_directory_fails, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_clone__names_the_entry_that_failed, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_clone__prepare_clone_starts_from_the_snapshot,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_clone__source_kept_while_cloned, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
