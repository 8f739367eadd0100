/* Unit tests for ops/file.c and ops/statindex.c: the file op on plain directories as roots
 * (as root: owners and mknod), and the content digest with its stat index. */
#include "testlib.h"

#include "ops/file.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>

struct fx {
	char *tmp;
	char *dest, *src, *host; /* host: a directory outside both roots */
	int destfd, srcfd;
	int srcs[2];
};

static int
setup(void **state)
{
	struct fx *fx = kiln_xcalloc(1, sizeof(*fx));
	fx->tmp = test_tmpdir_new();
	fx->dest = kiln_xasprintf("%s/dest", fx->tmp);
	fx->src = kiln_xasprintf("%s/src", fx->tmp);
	fx->host = kiln_xasprintf("%s/host", fx->tmp);
	assert_int_equal(mkdir(fx->dest, 0755), 0);
	assert_int_equal(mkdir(fx->src, 0755), 0);
	assert_int_equal(mkdir(fx->host, 0755), 0);
	fx->destfd = open(fx->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fx->srcfd = open(fx->src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->destfd >= 0 && fx->srcfd >= 0);
	fx->srcs[0] = -1;
	fx->srcs[1] = fx->srcfd;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	close(fx->destfd);
	close(fx->srcfd);
	free(fx->dest);
	free(fx->src);
	free(fx->host);
	test_tmpdir_remove(fx->tmp);
	free(fx);
	return 0;
}

/* Run a def given as JSON text; returns the op's result, err filled on failure. */
static int
run_def(struct fx *fx, const char *json, struct kiln_err *err)
{
	json_error_t je;
	_cleanup_json_ json_t *def = json_loads(json, 0, &je);
	if (!def)
		fail_msg("bad test JSON: %s: %s", je.text, json);
	return ops_file_run(def, fx->destfd, fx->srcs, 2, NULL, err);
}

static void
run_ok(struct fx *fx, const char *json)
{
	struct kiln_err err = KILN_ERR_INIT;
	if (run_def(fx, json, &err) < 0) {
		char *s = kiln_err_format(&err);
		fail_msg("%s: %s", json, s);
	}
}

/* A copy from input 1 with the Dockerfile COPY defaults and `extra` members. */
static void
copy_ok(struct fx *fx, const char *src, const char *dest, const char *extra)
{
	_cleanup_free_ char *j = kiln_xasprintf(
	        "{\"actions\":[{\"action\":\"copy\",\"input\":1,\"src\":\"%s\",\"dest\":\"%s\","
	        "\"follow_symlinks\":true,\"dir_contents_only\":true,\"allow_wildcard\":true,"
	        "\"allow_empty_wildcard\":false,\"create_dest_path\":true%s%s}]}",
	        src, dest, extra ? "," : "", extra ? extra : "");
	run_ok(fx, j);
}

static int
copy_err(struct fx *fx, const char *src, const char *dest, const char *extra, struct kiln_err *err)
{
	_cleanup_free_ char *j = kiln_xasprintf(
	        "{\"actions\":[{\"action\":\"copy\",\"input\":1,\"src\":\"%s\",\"dest\":\"%s\","
	        "\"follow_symlinks\":true,\"dir_contents_only\":true,\"allow_wildcard\":true,"
	        "\"create_dest_path\":true%s%s}]}",
	        src, dest, extra ? "," : "", extra ? extra : "");
	return run_def(fx, j, err);
}

static char *
slurp(const char *dir, const char *rel)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, rel);
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	if (kiln_buf_read_file(&b, p, &err) < 0) {
		kiln_err_release(&err);
		kiln_buf_release(&b);
		return NULL;
	}
	return kiln_buf_detach(&b, NULL);
}

static void
assert_content(const char *dir, const char *rel, const char *want)
{
	_cleanup_free_ char *got = slurp(dir, rel);
	if (!got)
		fail_msg("%s/%s: missing", dir, rel);
	assert_string_equal(got, want);
}

static struct stat
lst(const char *dir, const char *rel)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, rel);
	struct stat st;
	if (lstat(p, &st) < 0)
		fail_msg("lstat %s: %s", p, strerror(errno));
	return st;
}

static bool
exists(const char *dir, const char *rel)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, rel);
	struct stat st;
	return lstat(p, &st) == 0;
}

static void
mk(const char *dir, const char *rel)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void
ln_s(const char *target, const char *dir, const char *rel)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, rel);
	assert_int_equal(symlink(target, p), 0);
}

static void
chmod_rel(const char *dir, const char *rel, mode_t m)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, rel);
	assert_int_equal(chmod(p, m), 0);
}

/* ---- copy: paths ---- */

static void
test_file__copy_file_to_new_path(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "a.txt", "A");
	copy_ok(fx, "/a.txt", "/x/y/b.txt", NULL);
	assert_content(fx->dest, "x/y/b.txt", "A");
	assert_true(S_ISDIR(lst(fx->dest, "x/y").st_mode));
}

static void
test_file__copy_file_into_existing_dir(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "a.txt", "A");
	mk(fx->dest, "app");
	copy_ok(fx, "/a.txt", "/app", NULL);
	assert_content(fx->dest, "app/a.txt", "A");
}

static void
test_file__copy_trailing_slash_makes_dir(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "a.txt", "A");
	copy_ok(fx, "/a.txt", "/new/", NULL);
	assert_content(fx->dest, "new/a.txt", "A");
	/* without the slash, the file takes the name */
	copy_ok(fx, "/a.txt", "/other", NULL);
	assert_true(S_ISREG(lst(fx->dest, "other").st_mode));
}

static void
test_file__copy_dir_copies_contents(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/one", "1");
	test_write_file(fx->src, "d/sub/two", "2");
	copy_ok(fx, "/d", "/out", NULL);
	assert_content(fx->dest, "out/one", "1");
	assert_content(fx->dest, "out/sub/two", "2");
	assert_false(exists(fx->dest, "out/d"));
	/* into an existing directory: merged, not nested */
	test_write_file(fx->dest, "out2/keep", "k");
	copy_ok(fx, "/d/", "/out2", NULL);
	assert_content(fx->dest, "out2/keep", "k");
	assert_content(fx->dest, "out2/one", "1");
	/* the whole context to "/" */
	copy_ok(fx, "/", "/", NULL);
	assert_content(fx->dest, "d/sub/two", "2");
}

static void
test_file__copy_wildcards(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "a.go", "a");
	test_write_file(fx->src, "b.go", "b");
	test_write_file(fx->src, "c.txt", "c");
	test_write_file(fx->src, "pkg/x/m.go", "m");
	copy_ok(fx, "/*.go", "/w/", NULL);
	assert_content(fx->dest, "w/a.go", "a");
	assert_content(fx->dest, "w/b.go", "b");
	assert_false(exists(fx->dest, "w/c.txt"));
	copy_ok(fx, "/p?g/*/[l-n].go", "/w2/", NULL);
	assert_content(fx->dest, "w2/m.go", "m");
	/* several matches and no slash: a directory all the same */
	copy_ok(fx, "/[ab].go", "/w3", NULL);
	assert_content(fx->dest, "w3/a.go", "a");
	/* an empty match is fine only with allow_empty_wildcard */
	copy_ok(fx, "/*.none", "/w4/", "\"allow_empty_wildcard\":true");
	assert_false(exists(fx->dest, "w4"));
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(copy_err(fx, "/*.none", "/w4/", NULL, &err), -ENOENT);
	assert_err_contains(&err, "\"/*.none\": not found");
}

static void
test_file__copy_missing_source_names_it(void **state)
{
	struct fx *fx = *state;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(copy_err(fx, "/nope/foo", "/x", NULL, &err), -ENOENT);
	assert_err_contains(&err, "COPY failed: \"/nope/foo\": not found");
}

static void
test_file__copy_file_over_dir_fails(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/x", "file");
	test_write_file(fx->dest, "o/x/keep", "k");
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(copy_err(fx, "/d", "/o", NULL, &err), -EISDIR);
	assert_err_contains(&err, "cannot replace directory `/o/x`");
	assert_content(fx->dest, "o/x/keep", "k");
}

static void
test_file__copy_from_dest_itself(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->dest, "etc/conf", "c");
	run_ok(fx, "{\"actions\":[{\"action\":\"copy\",\"input\":0,\"src\":\"/etc/conf\","
	           "\"dest\":\"/backup/\",\"create_dest_path\":true}]}");
	assert_content(fx->dest, "backup/conf", "c");
}

/* ---- copy: symlinks, hard links, metadata ---- */

static void
test_file__copy_symlink_followed_at_top(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "real.txt", "R");
	ln_s("real.txt", fx->src, "link");
	copy_ok(fx, "/link", "/f", NULL);
	assert_true(S_ISREG(lst(fx->dest, "f").st_mode));
	assert_content(fx->dest, "f", "R");
	/* without follow_symlinks the link itself is copied */
	run_ok(fx, "{\"actions\":[{\"action\":\"copy\",\"input\":1,\"src\":\"/link\","
	           "\"dest\":\"/g\"}]}");
	assert_true(S_ISLNK(lst(fx->dest, "g").st_mode));
	/* a symlink to a directory copies the directory's contents */
	test_write_file(fx->src, "realdir/in", "I");
	ln_s("/realdir", fx->src, "dirlink");
	copy_ok(fx, "/dirlink", "/dl/", NULL);
	assert_content(fx->dest, "dl/in", "I");
}

static void
test_file__copy_symlink_inside_tree_kept(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/real", "R");
	ln_s("/etc/passwd", fx->src, "d/abs");
	ln_s("real", fx->src, "d/rel");
	copy_ok(fx, "/d", "/o/", NULL);
	char buf[64] = {0};
	_cleanup_free_ char *p = kiln_xasprintf("%s/o/abs", fx->dest);
	assert_true(readlink(p, buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, "/etc/passwd");
	assert_true(S_ISLNK(lst(fx->dest, "o/rel").st_mode));
}

static void
test_file__copy_hardlinks_kept(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/a", "same");
	_cleanup_free_ char *a = kiln_xasprintf("%s/d/a", fx->src);
	_cleanup_free_ char *b = kiln_xasprintf("%s/d/b", fx->src);
	assert_int_equal(link(a, b), 0);
	copy_ok(fx, "/d", "/h/", NULL);
	struct stat sa = lst(fx->dest, "h/a"), sb = lst(fx->dest, "h/b");
	assert_int_equal(sa.st_ino, sb.st_ino);
	assert_int_equal(sa.st_nlink, 2);
	assert_content(fx->dest, "h/b", "same");
}

static void
test_file__copy_keeps_metadata(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/f", "x");
	_cleanup_free_ char *f = kiln_xasprintf("%s/d/f", fx->src);
	_cleanup_free_ char *d = kiln_xasprintf("%s/d", fx->src);
	assert_int_equal(chown(f, 123, 456), 0);
	assert_int_equal(chmod(f, 04751), 0);
	assert_int_equal(setxattr(f, "user.kiln", "v", 1, 0), 0);
	struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1200000000}};
	assert_int_equal(utimensat(AT_FDCWD, f, ts, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, d, ts, 0), 0);
	copy_ok(fx, "/d", "/m/", NULL);
	struct stat st = lst(fx->dest, "m/f");
	assert_int_equal(st.st_uid, 123);
	assert_int_equal(st.st_gid, 456);
	assert_int_equal(st.st_mode & 07777, 04751);
	assert_int_equal(st.st_mtim.tv_sec, 1200000000);
	char v[8] = {0};
	_cleanup_free_ char *df = kiln_xasprintf("%s/m/f", fx->dest);
	assert_int_equal(getxattr(df, "user.kiln", v, sizeof(v)), 1);
	assert_string_equal(v, "v");
}

/* ---- chown / chmod ---- */

static void
write_etc(struct fx *fx)
{
	test_write_file(fx->dest, "etc/passwd",
	                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1500:App:/home/app:/bin/sh\n");
	test_write_file(fx->dest, "etc/group", "root:x:0:\nstaff:x:50:app\n");
}

static void
test_file__chown_by_name_from_dest(void **state)
{
	struct fx *fx = *state;
	write_etc(fx);
	/* the source root's passwd must not count */
	test_write_file(fx->src, "etc/passwd", "app:x:7:7::/:/bin/sh\n");
	test_write_file(fx->src, "d/f", "x");
	copy_ok(fx, "/d", "/o/", "\"chown\":{\"user\":\"app\"}");
	struct stat st = lst(fx->dest, "o/f");
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1500);
	/* the created destination directory too */
	assert_int_equal(lst(fx->dest, "o").st_uid, 1000);
	copy_ok(fx, "/d", "/p/", "\"chown\":{\"user\":\"app\",\"group\":\"staff\"}");
	st = lst(fx->dest, "p/f");
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 50);
}

static void
test_file__chown_by_number(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "f", "x");
	copy_ok(fx, "/f", "/a", "\"chown\":{\"user\":\"42\"}");
	assert_int_equal(lst(fx->dest, "a").st_uid, 42);
	assert_int_equal(lst(fx->dest, "a").st_gid, 42); /* gid = uid, as Docker */
	copy_ok(fx, "/f", "/b", "\"chown\":{\"user\":\"42\",\"group\":\"7\"}");
	assert_int_equal(lst(fx->dest, "b").st_gid, 7);
}

static void
test_file__chown_unknown_user_fails(void **state)
{
	struct fx *fx = *state;
	write_etc(fx);
	test_write_file(fx->src, "f", "x");
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(copy_err(fx, "/f", "/a", "\"chown\":{\"user\":\"bob\"}", &err), -EINVAL);
	assert_err_contains(&err, "unknown user \"bob\"");
	assert_int_equal(
	        copy_err(fx, "/f", "/a", "\"chown\":{\"user\":\"app\",\"group\":\"wheel\"}", &err),
	        -EINVAL);
	assert_err_contains(&err, "unknown group \"wheel\"");
	assert_false(exists(fx->dest, "a"));
}

static void
test_file__chmod_octal(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/f", "x");
	copy_ok(fx, "/d", "/o", "\"mode\":448"); /* 0700 */
	assert_int_equal(lst(fx->dest, "o/f").st_mode & 07777, 0700);
}

static void
test_file__chmod_symbolic(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/plain", "x");
	test_write_file(fx->src, "d/exe", "x");
	mk(fx->src, "d/sub");
	chmod_rel(fx->src, "d/plain", 0664);
	chmod_rel(fx->src, "d/exe", 0775);
	chmod_rel(fx->src, "d/sub", 0700);
	copy_ok(fx, "/d", "/o/", "\"mode\":\"u+x,g-w,o+X\"");
	assert_int_equal(lst(fx->dest, "o/plain").st_mode & 07777, 0744);
	assert_int_equal(lst(fx->dest, "o/exe").st_mode & 07777, 0755);
	assert_int_equal(lst(fx->dest, "o/sub").st_mode & 07777, 0701);
	copy_ok(fx, "/d/plain", "/q", "\"mode\":\"a=r\"");
	assert_int_equal(lst(fx->dest, "q").st_mode & 07777, 0444);
}

/* ---- --parents, --exclude ---- */

static void
test_file__parents_keep_source_path(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "a/b/x.txt", "x");
	test_write_file(fx->src, "a/c/y.txt", "y");
	copy_ok(fx, "/a/*/*.txt", "/out/", "\"parents\":true");
	assert_content(fx->dest, "out/a/b/x.txt", "x");
	assert_content(fx->dest, "out/a/c/y.txt", "y");
	/* "/./" pivots: what is before it is dropped */
	copy_ok(fx, "/a/./b/x.txt", "/piv/", "\"parents\":true");
	assert_content(fx->dest, "piv/b/x.txt", "x");
	assert_false(exists(fx->dest, "piv/a"));
}

static void
test_file__exclude(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/keep.c", "k");
	test_write_file(fx->src, "d/skip.o", "s");
	test_write_file(fx->src, "d/sub/deep.o", "s");
	test_write_file(fx->src, "d/sub/deep.c", "k");
	copy_ok(fx, "/d", "/o/", "\"exclude\":[\"*.o\",\"sub/*.o\"]");
	assert_true(exists(fx->dest, "o/keep.c"));
	assert_true(exists(fx->dest, "o/sub/deep.c"));
	assert_false(exists(fx->dest, "o/skip.o"));
	assert_false(exists(fx->dest, "o/sub/deep.o"));
	/* "!" exceptions re-include below an excluded directory; nothing else of it stays */
	test_write_file(fx->src, "e/docs/a.md", "a");
	test_write_file(fx->src, "e/docs/b.txt", "b");
	test_write_file(fx->src, "e/gen/x", "x");
	copy_ok(fx, "/e", "/ex/", "\"exclude\":[\"docs\",\"gen\",\"!docs/*.md\"]");
	assert_content(fx->dest, "ex/docs/a.md", "a");
	assert_false(exists(fx->dest, "ex/docs/b.txt"));
	assert_false(exists(fx->dest, "ex/gen"));
	/* wildcard matches are excluded by name */
	copy_ok(fx, "/d/*", "/w/", "\"exclude\":[\"*.o\"]");
	assert_true(exists(fx->dest, "w/keep.c"));
	assert_false(exists(fx->dest, "w/skip.o"));
}

/* ---- ADD: unpack ---- */

struct ent {
	char type; /* f, d, l (symlink), h (hard link) */
	const char *path, *data;
};

static void
write_tar(const char *path, const char *filter, const struct ent *e, size_t n)
{
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	if (filter)
		assert_int_equal(archive_write_add_filter_by_name(a, filter), ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_mtime(ae, 1600000000, 0);
		size_t len = 0;
		if (e[i].type == 'f') {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			len = strlen(e[i].data);
			archive_entry_set_size(ae, (la_int64_t)len);
		} else if (e[i].type == 'd') {
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, 0755);
		} else if (e[i].type == 'l') {
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_perm(ae, 0777);
			archive_entry_set_symlink(ae, e[i].data);
		} else {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].data);
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (len)
			assert_int_equal(archive_write_data(a, e[i].data, len), (la_ssize_t)len);
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

static void
add_ok(struct fx *fx, const char *src, const char *dest)
{
	_cleanup_free_ char *j = kiln_xasprintf(
	        "{\"actions\":[{\"action\":\"copy\",\"input\":1,\"src\":\"%s\",\"dest\":\"%s\","
	        "\"follow_symlinks\":true,\"dir_contents_only\":true,\"allow_wildcard\":true,"
	        "\"create_dest_path\":true,\"unpack\":true}]}",
	        src, dest);
	run_ok(fx, j);
}

static void
test_file__add_unpacks_archives(void **state)
{
	struct fx *fx = *state;
	const struct ent e[] = {{'d', "top", NULL}, {'f', "top/f.txt", "tar!"}};
	const char *filters[] = {NULL, "gzip", "bzip2", "xz", "zstd"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(filters); i++) {
		_cleanup_free_ char *name = kiln_xasprintf("a%zu.tar", i);
		_cleanup_free_ char *p = kiln_xasprintf("%s/%s", fx->src, name);
		write_tar(p, filters[i], e, KILN_ARRAY_SIZE(e));
		_cleanup_free_ char *src = kiln_xasprintf("/%s", name);
		_cleanup_free_ char *dest = kiln_xasprintf("/x%zu", i);
		add_ok(fx, src, dest);
		_cleanup_free_ char *rel = kiln_xasprintf("x%zu/top/f.txt", i);
		assert_content(fx->dest, rel, "tar!");
	}
	/* --chown applies to what the archive held, not to what was there */
	test_write_file(fx->dest, "z/old", "o");
	_cleanup_free_ char *j =
	        kiln_xasprintf("{\"actions\":[{\"action\":\"copy\",\"input\":1,\"src\":\"/a0.tar\","
	                       "\"dest\":\"/z\",\"unpack\":true,\"chown\":{\"user\":\"77\"}}]}");
	run_ok(fx, j);
	assert_int_equal(lst(fx->dest, "z/top/f.txt").st_uid, 77);
	assert_int_equal(lst(fx->dest, "z/top").st_gid, 77);
	assert_int_equal(lst(fx->dest, "z/old").st_uid, 0);
	/* a file that is no archive is copied as it is */
	test_write_file(fx->src, "plain.tar", "not a tar at all");
	add_ok(fx, "/plain.tar", "/y/");
	assert_content(fx->dest, "y/plain.tar", "not a tar at all");
	add_ok(fx, "/plain.tar", "/y2");
	assert_content(fx->dest, "y2", "not a tar at all");
}

static void
test_file__add_hostile_tar_stays_inside(void **state)
{
	struct fx *fx = *state;
	_cleanup_free_ char *outside = kiln_xasprintf("%s/host", fx->tmp);
	_cleanup_free_ char *evil = kiln_xasprintf("%s/evil.tar", fx->src);
	const struct ent e[] = {
	        {'f', "../../host/dotdot", "escaped"},
	        {'l', "esc", outside},           /* absolute symlink to the host dir */
	        {'f', "esc/through", "escaped"}, /* written through the symlink? */
	        {'l', "up", "../../../host"},    /* relative escape */
	        {'f', "up/through2", "escaped"},
	        {'h', "hl", "/../../host/nothere"}, /* hard link to outside */
	};
	write_tar(evil, NULL, e, KILN_ARRAY_SIZE(e));
	struct kiln_err err = KILN_ERR_INIT;
	_cleanup_free_ char *j =
	        kiln_xstrdup("{\"actions\":[{\"action\":\"copy\",\"input\":1,\"src\":\"/evil.tar\","
	                     "\"dest\":\"/un/\",\"create_dest_path\":true,\"unpack\":true}]}");
	/* The hard link to a missing target fails the unpack, after the rest is written. */
	assert_int_equal(run_def(fx, j, &err), -ENOENT);
	assert_err_contains(&err, "unpack \"/evil.tar\"");
	assert_false(exists(fx->host, "dotdot"));
	assert_false(exists(fx->host, "through"));
	assert_false(exists(fx->host, "through2"));
	assert_false(exists(fx->tmp, "dotdot"));
	/* ".." stops at the destination directory; symlinks resolve inside it */
	assert_content(fx->dest, "un/host/dotdot", "escaped");
	assert_content(fx->dest, "un/host/through2", "escaped");
	_cleanup_free_ char *through = kiln_xasprintf("un%s/through", outside);
	assert_content(fx->dest, through, "escaped");
}

/* ---- mkdir / mkfile ---- */

static void
test_file__mkdir_parents_chown(void **state)
{
	struct fx *fx = *state;
	write_etc(fx);
	run_ok(fx, "{\"actions\":[{\"action\":\"mkdir\",\"path\":\"/w/a/b\",\"mode\":488,"
	           "\"parents\":true,\"chown\":{\"user\":\"app\"}}]}");
	struct stat st = lst(fx->dest, "w/a/b");
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(lst(fx->dest, "w").st_uid, 1000);
	/* an existing directory is left as it is */
	run_ok(fx, "{\"actions\":[{\"action\":\"mkdir\",\"path\":\"/etc\",\"mode\":448,"
	           "\"parents\":true,\"chown\":{\"user\":\"app\"}}]}");
	assert_int_equal(lst(fx->dest, "etc").st_uid, 0);
	/* without parents, the parent must exist */
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(run_def(fx,
	                         "{\"actions\":[{\"action\":\"mkdir\",\"path\":\"/no/such\","
	                         "\"mode\":493}]}",
	                         &err),
	                 -ENOENT);
	assert_err_contains(&err, "mkdir /no/such");
}

static void
test_file__mkfile(void **state)
{
	struct fx *fx = *state;
	run_ok(fx, "{\"actions\":[{\"action\":\"mkfile\",\"path\":\"/hello.sh\",\"mode\":493,"
	           "\"data\":\"#!/bin/sh\\necho hi\\n\"}]}");
	assert_content(fx->dest, "hello.sh", "#!/bin/sh\necho hi\n");
	assert_int_equal(lst(fx->dest, "hello.sh").st_mode & 07777, 0755);
	/* replaces an existing file, and a symlink in its place is not written through */
	ln_s(fx->host, fx->dest, "victim");
	run_ok(fx, "{\"actions\":[{\"action\":\"mkfile\",\"path\":\"/victim\",\"mode\":420,"
	           "\"data\":\"x\"}]}");
	assert_true(S_ISREG(lst(fx->dest, "victim").st_mode));
}

static void
test_file__link_copies_like_copy(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/f", "x");
	copy_ok(fx, "/d", "/a/", NULL);
	copy_ok(fx, "/d", "/b/", "\"link\":true");
	assert_content(fx->dest, "b/f", "x");
	assert_int_equal(lst(fx->dest, "a/f").st_mode, lst(fx->dest, "b/f").st_mode);
}

static void
test_file__cancel_stops_the_copy(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/f", "x");
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	struct ops_file_env env = OPS_FILE_ENV_INIT;
	env.cancel_fd = p[0];
	_cleanup_json_ json_t *def = json_loads(
	        "{\"actions\":[{\"action\":\"copy\",\"input\":1,\"src\":\"/d\",\"dest\":\"/o/\"}]}",
	        0, NULL);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ops_file_run(def, fx->destfd, fx->srcs, 2, &env, &err), -ECANCELED);
	kiln_err_release(&err);
	assert_false(exists(fx->dest, "o/f"));
	close(p[0]);
	close(p[1]);
}

static void
test_file__dest_symlink_to_dir_is_followed_inside(void **state)
{
	struct fx *fx = *state;
	mk(fx->dest, "real");
	ln_s("/real", fx->dest, "app");
	test_write_file(fx->src, "f", "x");
	copy_ok(fx, "/f", "/app", NULL);
	assert_content(fx->dest, "real/f", "x");
	assert_true(S_ISLNK(lst(fx->dest, "app").st_mode));
}

/* ---- the destination cannot lead outside ---- */

static void
test_file__dest_symlink_does_not_escape(void **state)
{
	struct fx *fx = *state;
	ln_s(fx->host, fx->dest, "etc"); /* /etc -> an absolute host path */
	ln_s("../../../..", fx->dest, "up");
	test_write_file(fx->src, "f", "x");
	test_write_file(fx->src, "d/g", "y");
	copy_ok(fx, "/f", "/etc/f", NULL);
	copy_ok(fx, "/d", "/etc/", NULL);
	copy_ok(fx, "/f", "/up/f2", NULL);
	run_ok(fx, "{\"actions\":[{\"action\":\"mkdir\",\"path\":\"/etc/sub\",\"mode\":493,"
	           "\"parents\":true}, {\"action\":\"mkfile\",\"path\":\"/etc/mf\",\"mode\":420,"
	           "\"data\":\"z\"}]}");
	assert_false(exists(fx->host, "f"));
	assert_false(exists(fx->host, "g"));
	assert_false(exists(fx->host, "sub"));
	assert_false(exists(fx->host, "mf"));
	assert_false(exists(fx->tmp, "f2"));
	/* they landed inside the root, at the symlink's target taken as a root path */
	_cleanup_free_ char *inside = kiln_xasprintf("%s%s", fx->dest, fx->host);
	assert_content(inside, "f", "x");
	assert_content(inside, "g", "y");
	assert_true(exists(inside, "sub"));
	assert_content(fx->dest, "f2", "x");
}

/* ---- content digest ---- */

static void
digest_of(struct fx *fx, const char *action_json, struct ops_stat_index *idx, struct kiln_digest *d)
{
	_cleanup_json_ json_t *a = json_loads(action_json, 0, NULL);
	assert_non_null(a);
	struct kiln_err err = KILN_ERR_INIT;
	if (ops_file_content_digest(a, fx->srcfd, idx, d, &err) < 0) {
		char *s = kiln_err_format(&err);
		fail_msg("digest: %s", s);
	}
}

#define ACT_D                                                                                      \
	"{\"action\":\"copy\",\"input\":1,\"src\":\"/d\",\"dest\":\"/\",\"allow_wildcard\":true}"

static void
test_file__digest_tracks_content_mode_owner_link(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/f", "one");
	ln_s("f", fx->src, "d/l");
	struct kiln_digest d0, d1;
	digest_of(fx, ACT_D, NULL, &d0);
	digest_of(fx, ACT_D, NULL, &d1);
	assert_memory_equal(d0.bytes, d1.bytes, 32);

	_cleanup_free_ char *f = kiln_xasprintf("%s/d/f", fx->src);
	struct timespec ts[2] = {{.tv_sec = 1000}, {.tv_sec = 2000}};
	assert_int_equal(utimensat(AT_FDCWD, f, ts, 0), 0);
	digest_of(fx, ACT_D, NULL, &d1);
	assert_memory_equal(d0.bytes, d1.bytes, 32); /* mtime does not count */

	test_write_file(fx->src, "d/f", "two");
	digest_of(fx, ACT_D, NULL, &d1);
	assert_memory_not_equal(d0.bytes, d1.bytes, 32);
	d0 = d1;
	assert_int_equal(chmod(f, 0600), 0);
	digest_of(fx, ACT_D, NULL, &d1);
	assert_memory_not_equal(d0.bytes, d1.bytes, 32);
	d0 = d1;
	assert_int_equal(chown(f, 5, 5), 0);
	digest_of(fx, ACT_D, NULL, &d1);
	assert_memory_not_equal(d0.bytes, d1.bytes, 32);
	d0 = d1;
	_cleanup_free_ char *l = kiln_xasprintf("%s/d/l", fx->src);
	assert_int_equal(unlink(l), 0);
	assert_int_equal(symlink("other", l), 0);
	digest_of(fx, ACT_D, NULL, &d1);
	assert_memory_not_equal(d0.bytes, d1.bytes, 32);
	d0 = d1;
	/* an excluded file does not count */
	const char *ex = "{\"action\":\"copy\",\"input\":1,\"src\":\"/d\",\"dest\":\"/\","
	                 "\"exclude\":[\"junk\"]}";
	digest_of(fx, ex, NULL, &d0);
	test_write_file(fx->src, "d/junk", "j");
	digest_of(fx, ex, NULL, &d1);
	assert_memory_equal(d0.bytes, d1.bytes, 32);
}

static void
test_file__digest_missing_source_fails(void **state)
{
	struct fx *fx = *state;
	_cleanup_json_ json_t *a = json_loads(
	        "{\"action\":\"copy\",\"input\":1,\"src\":\"/foo\",\"dest\":\"/\"}", 0, NULL);
	struct kiln_digest d;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ops_file_content_digest(a, fx->srcfd, NULL, &d, &err), -ENOENT);
	assert_err_contains(&err, "failed to compute cache key: \"/foo\": not found");
}

/* The digest as the contract spells it, one plain recursive walk: per entry its path
 * relative to the source ("." for the source itself), mode, uid and gid as decimal text,
 * each NUL-terminated, then a symlink's target or a regular file's content SHA-256;
 * directory entries in strcmp order; the matched source path first. */
static void
ref_add_str(struct kiln_sha256 *h, const char *s)
{
	kiln_sha256_update(h, s, strlen(s) + 1);
}

static void
ref_walk(struct kiln_sha256 *h, const char *path, const char *rel)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	char num[32];
	ref_add_str(h, *rel ? rel : ".");
	snprintf(num, sizeof(num), "%u", (unsigned)st.st_mode);
	ref_add_str(h, num);
	snprintf(num, sizeof(num), "%u", (unsigned)st.st_uid);
	ref_add_str(h, num);
	snprintf(num, sizeof(num), "%u", (unsigned)st.st_gid);
	ref_add_str(h, num);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		assert_true(n >= 0);
		target[n] = '\0';
		ref_add_str(h, target);
	} else if (S_ISREG(st.st_mode)) {
		_cleanup_buf_ struct kiln_buf data = KILN_BUF_INIT;
		struct kiln_err err = KILN_ERR_INIT;
		assert_int_equal(kiln_buf_read_file(&data, path, &err), 0);
		struct kiln_digest d;
		kiln_sha256_buf(data.buf, data.len, &d);
		kiln_sha256_update(h, d.bytes, sizeof(d.bytes));
	} else if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
		assert_int_equal(kiln_dir_names(fd, &names), 0);
		for (size_t i = 0; i < names.n; i++) {
			_cleanup_free_ char *cpath = kiln_xasprintf("%s/%s", path, names.v[i]);
			_cleanup_free_ char *crel = *rel ? kiln_xasprintf("%s/%s", rel, names.v[i])
			                                 : kiln_xstrdup(names.v[i]);
			ref_walk(h, cpath, crel);
		}
	}
}

static void
test_file__digest_of_a_big_tree_follows_the_contract(void **state)
{
	struct fx *fx = *state;
	/* Directories big enough for the walk's parallel stats, names that sort differently
	 * by their first bytes and beyond, owners, modes and symlinks. */
	for (int dir = 0; dir < 3; dir++)
		for (int i = 0; i < 150; i++) {
			_cleanup_free_ char *rel = kiln_xasprintf(
			        "d/s%d/%s%03d", dir, i % 3 ? "file-with-long-name-" : "F", i);
			_cleanup_free_ char *content = kiln_xasprintf("content %d %d", dir, i);
			test_write_file(fx->src, rel, content);
			_cleanup_free_ char *p = kiln_xasprintf("%s/%s", fx->src, rel);
			assert_int_equal(chmod(p, i % 5 ? 0644 : 0755), 0);
			if (i % 7 == 0)
				assert_int_equal(lchown(p, 1000 + i, 2000 + dir), 0);
			if (i % 11 == 0) {
				_cleanup_free_ char *l = kiln_xasprintf("%s.lnk", p);
				assert_int_equal(symlink(rel, l), 0);
			}
		}
	test_write_file(fx->src, "d/top", "top");
	_cleanup_free_ char *d = kiln_xasprintf("%s/d", fx->src);
	struct kiln_sha256 *h = kiln_sha256_new();
	ref_add_str(h, "/d");
	ref_walk(h, d, "");
	struct kiln_digest want, got;
	kiln_sha256_final(h, &want);

	digest_of(fx, ACT_D, NULL, &got);
	assert_memory_equal(got.bytes, want.bytes, 32);
	_cleanup_free_ char *ipath = kiln_xasprintf("%s/statindex", fx->tmp);
	struct ops_stat_index *idx;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ops_stat_index_open(ipath, &idx, &err), 0);
	digest_of(fx, ACT_D, idx, &got); /* every file read */
	assert_memory_equal(got.bytes, want.bytes, 32);
	digest_of(fx, ACT_D, idx, &got); /* every file from the index */
	assert_memory_equal(got.bytes, want.bytes, 32);
	struct ops_stat_index_stats s;
	ops_stat_index_get_stats(idx, &s);
	assert_int_equal(s.reads, s.hits);
	assert_true(s.reads > 450);
	ops_stat_index_free(idx);
}

static void
test_file__stat_index_avoids_rereading(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->src, "d/a", "aaa");
	test_write_file(fx->src, "d/b", "bbb");
	_cleanup_free_ char *ipath = kiln_xasprintf("%s/statindex", fx->tmp);
	struct ops_stat_index *idx;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ops_stat_index_open(ipath, &idx, &err), 0);
	struct kiln_digest d0, d1, dnone;
	digest_of(fx, ACT_D, idx, &d0);
	struct ops_stat_index_stats s;
	ops_stat_index_get_stats(idx, &s);
	assert_int_equal(s.reads, 2);
	assert_int_equal(s.hits, 0);
	digest_of(fx, ACT_D, idx, &d1);
	ops_stat_index_get_stats(idx, &s);
	assert_int_equal(s.reads, 2);
	assert_int_equal(s.hits, 2);
	assert_memory_equal(d0.bytes, d1.bytes, 32);
	digest_of(fx, ACT_D, NULL, &dnone);
	assert_memory_equal(d0.bytes, dnone.bytes, 32);
	/* a changed file is read again */
	test_write_file(fx->src, "d/a", "AAAA");
	digest_of(fx, ACT_D, idx, &d1);
	ops_stat_index_get_stats(idx, &s);
	assert_int_equal(s.reads, 3);
	assert_memory_not_equal(d0.bytes, d1.bytes, 32);
	assert_int_equal(ops_stat_index_save(idx, &err), 0);
	assert_int_equal(ops_stat_index_save(idx, &err), 0); /* unchanged: nothing to write */
	ops_stat_index_free(idx);

	/* Reloaded: entries written within a second of the save are racy and dropped. */
	assert_int_equal(ops_stat_index_open(ipath, &idx, &err), 0);
	ops_stat_index_get_stats(idx, &s);
	assert_int_equal(s.stored, 0);
	ops_stat_index_free(idx);

	/* An index saved well after the files changed is trusted across builds. */
	assert_int_equal(ops_stat_index_open(ipath, &idx, &err), 0);
	digest_of(fx, ACT_D, idx, &d0);
	ops_stat_index_set_save_time(idx, (int64_t)time(NULL) + 10);
	assert_int_equal(ops_stat_index_save(idx, &err), 0);
	ops_stat_index_free(idx);
	assert_int_equal(ops_stat_index_open(ipath, &idx, &err), 0);
	ops_stat_index_get_stats(idx, &s);
	assert_int_equal(s.stored, 2);
	digest_of(fx, ACT_D, idx, &d0);
	ops_stat_index_get_stats(idx, &s);
	assert_int_equal(s.hits, 2);
	assert_int_equal(s.reads, 0);
	assert_memory_equal(d0.bytes, d1.bytes, 32);
	ops_stat_index_free(idx);
}

int
main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_file needs root (chown, mknod)\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	        T(test_file__copy_file_to_new_path),
	        T(test_file__copy_file_into_existing_dir),
	        T(test_file__copy_trailing_slash_makes_dir),
	        T(test_file__copy_dir_copies_contents),
	        T(test_file__copy_wildcards),
	        T(test_file__copy_missing_source_names_it),
	        T(test_file__copy_file_over_dir_fails),
	        T(test_file__copy_from_dest_itself),
	        T(test_file__copy_symlink_followed_at_top),
	        T(test_file__copy_symlink_inside_tree_kept),
	        T(test_file__copy_hardlinks_kept),
	        T(test_file__copy_keeps_metadata),
	        T(test_file__chown_by_name_from_dest),
	        T(test_file__chown_by_number),
	        T(test_file__chown_unknown_user_fails),
	        T(test_file__chmod_octal),
	        T(test_file__chmod_symbolic),
	        T(test_file__parents_keep_source_path),
	        T(test_file__exclude),
	        T(test_file__add_unpacks_archives),
	        T(test_file__add_hostile_tar_stays_inside),
	        T(test_file__mkdir_parents_chown),
	        T(test_file__mkfile),
	        T(test_file__link_copies_like_copy),
	        T(test_file__cancel_stops_the_copy),
	        T(test_file__dest_symlink_to_dir_is_followed_inside),
	        T(test_file__dest_symlink_does_not_escape),
	        T(test_file__digest_tracks_content_mode_owner_link),
	        T(test_file__digest_missing_source_fails),
	        T(test_file__digest_of_a_big_tree_follows_the_contract),
	        T(test_file__stat_index_avoids_rereading),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
