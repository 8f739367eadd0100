/* Unit tests for ops/merge.c: a link tree applied onto a stage's tree as unpacking its
 * layer would (directories merge and take the link's metadata, anything else replaces
 * what is in its way, hard links stay links), on plain directories as roots, as root. */
#include "testlib.h"

#include "ops/ops_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

struct fx {
	char *tmp;
	char *dest, *link;
	int destfd, linkfd;
};

static int
setup(void **state)
{
	if (geteuid() != 0) {
		print_message("merge tests need root\n");
		exit(77);
	}
	struct fx *fx = kiln_xcalloc(1, sizeof(*fx));
	fx->tmp = test_tmpdir_new();
	fx->dest = kiln_xasprintf("%s/dest", fx->tmp);
	fx->link = kiln_xasprintf("%s/link", fx->tmp);
	assert_int_equal(mkdir(fx->dest, 0755), 0);
	assert_int_equal(mkdir(fx->link, 0755), 0);
	fx->destfd = open(fx->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fx->linkfd = open(fx->link, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->destfd >= 0 && fx->linkfd >= 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	close(fx->destfd);
	close(fx->linkfd);
	test_tmpdir_remove(fx->tmp);
	free(fx->dest);
	free(fx->link);
	free(fx);
	return 0;
}

static char *
slurp(const char *dir, const char *name)
{
	_cleanup_free_ char *p = kiln_path_join(dir, name);
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_err e = KILN_ERR_INIT;
	assert_int_equal(kiln_buf_read_fd(&b, fd, &e), 0);
	return kiln_buf_detach(&b, NULL);
}

static void
lstat_in(const char *dir, const char *name, struct stat *st)
{
	_cleanup_free_ char *p = kiln_path_join(dir, name);
	assert_int_equal(lstat(p, st), 0);
}

static void
mkdir_in(const char *dir, const char *name, mode_t mode)
{
	_cleanup_free_ char *p = kiln_path_join(dir, name);
	assert_int_equal(mkdir(p, mode), 0);
	assert_int_equal(chmod(p, mode), 0);
}

static void
merge(struct fx *fx)
{
	struct kiln_err err = KILN_ERR_INIT;
	if (ops_merge_tree(fx->linkfd, fx->destfd, NULL, &err) < 0)
		fail_msg("merge: %s", kiln_err_format(&err));
}

static void
test_merge__directories_merge_and_take_the_links_metadata(void **state)
{
	struct fx *fx = *state;
	/* The stage: /etc/keep in a 0700 directory owned by 5:5. */
	mkdir_in(fx->dest, "etc", 0700);
	_cleanup_free_ char *detc = kiln_path_join(fx->dest, "etc");
	assert_int_equal(chown(detc, 5, 5), 0);
	test_write_file(fx->dest, "etc/keep", "below");
	test_write_file(fx->dest, "etc/over", "old");
	/* The link: /etc (0755, 0:0, an old mtime) with a new file and a replacement. */
	mkdir_in(fx->link, "etc", 0755);
	test_write_file(fx->link, "etc/new", "new");
	test_write_file(fx->link, "etc/over", "replaced");
	_cleanup_free_ char *lnew = kiln_path_join(fx->link, "etc/new");
	assert_int_equal(chmod(lnew, 0751), 0);
	assert_int_equal(chown(lnew, 7, 8), 0);
	_cleanup_free_ char *letc = kiln_path_join(fx->link, "etc");
	struct timespec ts[2] = {{.tv_sec = 1000000}, {.tv_sec = 1000000}};
	assert_int_equal(utimensat(AT_FDCWD, letc, ts, 0), 0);
	merge(fx);
	_cleanup_free_ char *keep = slurp(fx->dest, "etc/keep");
	_cleanup_free_ char *nw = slurp(fx->dest, "etc/new");
	_cleanup_free_ char *over = slurp(fx->dest, "etc/over");
	assert_string_equal(keep, "below"); /* what was below stays */
	assert_string_equal(nw, "new");
	assert_string_equal(over, "replaced");
	struct stat st;
	lstat_in(fx->dest, "etc", &st);
	/* The directory is the link's now, as an unpacked layer's entry makes it. */
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mtim.tv_sec, 1000000);
	lstat_in(fx->dest, "etc/new", &st);
	assert_int_equal(st.st_mode & 07777, 0751);
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(st.st_gid, 8);
}

static void
test_merge__non_directories_replace_whatever_is_there(void **state)
{
	struct fx *fx = *state;
	/* The stage has a directory tree at /a, a symlink at /d and a file at /f. */
	mkdir_in(fx->dest, "a", 0755);
	test_write_file(fx->dest, "a/inner", "gone");
	_cleanup_free_ char *dd = kiln_path_join(fx->dest, "d");
	assert_int_equal(symlink("/etc", dd), 0);
	test_write_file(fx->dest, "f", "file");
	/* The link: a file at /a, a directory at /d and at /f, a symlink and a fifo. */
	test_write_file(fx->link, "a", "now a file");
	mkdir_in(fx->link, "d", 0755);
	test_write_file(fx->link, "d/x", "in d");
	mkdir_in(fx->link, "f", 0755);
	_cleanup_free_ char *ls = kiln_path_join(fx->link, "s");
	assert_int_equal(symlink("a", ls), 0);
	_cleanup_free_ char *lp = kiln_path_join(fx->link, "p");
	assert_int_equal(mkfifo(lp, 0600), 0);
	merge(fx);
	_cleanup_free_ char *a = slurp(fx->dest, "a");
	assert_string_equal(a, "now a file");
	struct stat st;
	lstat_in(fx->dest, "d", &st);
	assert_true(S_ISDIR(st.st_mode)); /* not written through the symlink */
	_cleanup_free_ char *x = slurp(fx->dest, "d/x");
	assert_string_equal(x, "in d");
	lstat_in(fx->dest, "f", &st);
	assert_true(S_ISDIR(st.st_mode));
	lstat_in(fx->dest, "s", &st);
	assert_true(S_ISLNK(st.st_mode));
	lstat_in(fx->dest, "p", &st);
	assert_true(S_ISFIFO(st.st_mode));
}

static void
test_merge__hard_links_stay_links(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->link, "one", "shared");
	_cleanup_free_ char *one = kiln_path_join(fx->link, "one");
	_cleanup_free_ char *two = kiln_path_join(fx->link, "two");
	assert_int_equal(link(one, two), 0);
	merge(fx);
	struct stat a, b;
	lstat_in(fx->dest, "one", &a);
	lstat_in(fx->dest, "two", &b);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 2);
	/* Copies: the link tree's own inode is not shared with the result. */
	struct stat l;
	lstat_in(fx->link, "one", &l);
	assert_int_not_equal(l.st_ino, a.st_ino);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_merge__directories_merge_and_take_the_links_metadata, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_merge__non_directories_replace_whatever_is_there, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_merge__hard_links_stay_links, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
