/* Unit tests for snapshot/walk.c: an upper dir and a native tree pair read as OCI
 * changes — stats, whiteout names, opaque markers, stable order, early stop. */
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
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

struct out {
	struct kiln_buf b;
	int stop_after;
	int seen;
};

static int
collect(const struct snap_change *c, void *data, struct kiln_err *err)
{
	struct out *o = data;
	static const char kinds[] = {'A', 'W', 'O'};
	kiln_buf_addf(&o->b, "%c %s %s %o\n", kinds[c->kind], c->path, c->oci_name,
	              (unsigned)(c->st->st_mode & S_IFMT) >> 12);
	if (++o->seen == o->stop_after)
		return kiln_err_set(err, ECANCELED, "stopped at %s", c->path);
	return 0;
}

static char *
path_in(struct fixture *f, const char *rel)
{
	return kiln_xasprintf("%s/%s", f->dir, rel);
}

static void
test_walk__upper_dir_changes(void **state)
{
	struct fixture *f = *state;
	test_write_file(f->dir, "up/b-file", "b");
	test_write_file(f->dir, "up/etc/conf", "c");
	test_write_file(f->dir, "up/etc/sub/x", "x");
	_cleanup_free_ char *wh1 = path_in(f, "up/a-gone");
	_cleanup_free_ char *wh2 = path_in(f, "up/etc/old");
	_cleanup_free_ char *ln = path_in(f, "up/link");
	_cleanup_free_ char *sub = path_in(f, "up/etc/sub");
	assert_int_equal(mknod(wh1, S_IFCHR, makedev(0, 0)), 0);
	assert_int_equal(mknod(wh2, S_IFCHR, makedev(0, 0)), 0);
	assert_int_equal(symlink("b-file", ln), 0);
	assert_int_equal(setxattr(sub, "trusted.overlay.opaque", "y", 1, 0), 0);
	/* a real device in the upper is content, not a whiteout */
	_cleanup_free_ char *dev = path_in(f, "up/null");
	assert_int_equal(mknod(dev, S_IFCHR | 0666, makedev(1, 3)), 0);

	_cleanup_free_ char *up = path_in(f, "up");
	_cleanup_close_ int fd = open(up, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct out o = {.b = KILN_BUF_INIT};
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_upper_walk_at(fd, collect, &o, &err), 0);
	assert_string_equal(o.b.buf, "W a-gone .wh.a-gone 2\n"
	                             "A b-file b-file 10\n"
	                             "A etc etc 4\n"
	                             "A etc/conf etc/conf 10\n"
	                             "W etc/old etc/.wh.old 2\n"
	                             "A etc/sub etc/sub 4\n"
	                             "O etc/sub etc/sub/.wh..wh..opq 4\n"
	                             "A etc/sub/x etc/sub/x 10\n"
	                             "A link link 12\n"
	                             "A null null 2\n");
	kiln_buf_release(&o.b);

	/* A callback's error stops the walk and comes back as is. */
	struct out stop = {.b = KILN_BUF_INIT, .stop_after = 3};
	assert_int_equal(snap_upper_walk_at(fd, collect, &stop, &err), -ECANCELED);
	assert_err_contains(&err, "stopped at etc");
	assert_int_equal(stop.seen, 3);
	kiln_buf_release(&stop.b);
}

static void
test_walk__native_tree_against_parent(void **state)
{
	struct fixture *f = *state;
	test_write_file(f->dir, "p/same", "s");
	test_write_file(f->dir, "p/changed", "old");
	test_write_file(f->dir, "p/gone", "g");
	test_write_file(f->dir, "p/d/gone2", "g");
	test_write_file(f->dir, "p/d/keep", "k");
	test_write_file(f->dir, "p/was-dir/x", "x");
	_cleanup_free_ char *pl = path_in(f, "p/l");
	assert_int_equal(symlink("same", pl), 0);
	/* the tree: a copy of p, then changes */
	_cleanup_free_ char *p = path_in(f, "p");
	_cleanup_free_ char *t = path_in(f, "t");
	assert_int_equal(mkdir(t, 0755), 0);
	_cleanup_close_ int pfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int tfd = open(t, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_copy_tree(pfd, tfd, &err), 0);
	struct out o = {.b = KILN_BUF_INIT};
	assert_int_equal(snap_native_diff_walk(pfd, tfd, collect, &o, &err), 0);
	assert_string_equal(o.b.buf, ""); /* an exact copy has no changes */

	test_write_file(t, "changed", "new!");
	test_write_file(t, "added", "a");
	_cleanup_free_ char *g = path_in(f, "t/gone");
	_cleanup_free_ char *g2 = path_in(f, "t/d/gone2");
	_cleanup_free_ char *tl = path_in(f, "t/l");
	_cleanup_free_ char *wx = path_in(f, "t/was-dir/x");
	_cleanup_free_ char *wd = path_in(f, "t/was-dir");
	assert_int_equal(unlink(g), 0);
	assert_int_equal(unlink(g2), 0);
	assert_int_equal(unlink(tl), 0);
	assert_int_equal(symlink("changed", tl), 0);
	assert_int_equal(unlink(wx), 0);
	assert_int_equal(rmdir(wd), 0);
	test_write_file(t, "was-dir", "file now");
	/* d lost a child, so its mtime moved: reported as changed */
	assert_int_equal(snap_native_diff_walk(pfd, tfd, collect, &o, &err), 0);
	assert_string_equal(o.b.buf, "A added added 10\n"
	                             "A changed changed 10\n"
	                             "A d d 4\n"
	                             "W d/gone2 d/.wh.gone2 10\n"
	                             "W gone .wh.gone 10\n"
	                             "A l l 12\n"
	                             "A was-dir was-dir 10\n");
	kiln_buf_release(&o.b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_walk__upper_dir_changes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_walk__native_tree_against_parent, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
