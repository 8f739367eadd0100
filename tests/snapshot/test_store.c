/* Unit tests for snapshot/store.c: layer chains unpacked once and mounted as overlays (or
 * copied by the native driver) give the merged view; commits, views, long chains, crash
 * leftovers and the automatic fallback. Run as root (CI is); every mount is undone. */
#include "layer_tar.h"

#include "snapshot/snap.h"

#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/wait.h>

struct fixture {
	char *dir;
	struct snap_store *s;
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
	snap_store_free(f->s);
	int left = mounts_below(f->dir);
	umount_below(f->dir);
	test_tmpdir_remove(f->dir);
	free(f);
	assert_int_equal(left, 0); /* no mount left behind */
	return 0;
}

static struct snap_store *
open_store(const char *root, enum snap_driver d)
{
	struct snap_store_opts o = {.driver = d};
	struct snap_store *s = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	if (snap_store_open(root, &o, &s, &err) < 0)
		fail_msg("open store: %s", kiln_err_format(&err));
	assert_int_equal(snap_store_driver(s), d);
	assert_null(snap_store_notice(s));
	return s;
}

/* The diff_id of the layer `ents` make: the digest of the uncompressed tar. */
static void
diff_id_of(const struct tar_ent *ents, size_t n, char out[KILN_DIGEST_HEX_LEN + 1])
{
	int plain = tar_build(ents, n, NULL);
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(kiln_buf_read_fd(&b, plain, &err), 0);
	close(plain);
	struct kiln_digest d;
	kiln_sha256_buf(b.buf, b.len, &d);
	kiln_buf_release(&b);
	kiln_digest_format(&d, out);
}

/* Apply a layer built from `ents` (gzip-compressed) with its real diff_id. */
static char *
layer_n(struct snap_store *s, const char *parent, const struct tar_ent *ents, size_t n)
{
	char diff_id[KILN_DIGEST_HEX_LEN + 1];
	diff_id_of(ents, n, diff_id);
	int fd = tar_build(ents, n, "gzip");
	char *name = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	if (snap_layer_apply(s, parent, fd, T_MEDIA_GZ, diff_id, &name, &err) < 0)
		fail_msg("apply layer: %s", kiln_err_format(&err));
	close(fd);
	_cleanup_free_ char *want = snap_chain_id(parent, diff_id);
	assert_string_equal(name, want);
	assert_true(snap_exists(s, name));
	return name;
}
#define LAYER(s, parent, ents) layer_n((s), (parent), (ents), KILN_ARRAY_SIZE(ents))

static size_t
count_in(struct snap_store *s, const char *area)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", snap_store_path(s), area);
	DIR *d = opendir(p);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static const struct tar_ent L1[] = {
        TF("a", "a1"),         TD("d"),           TF("d/x", "x"),
        TF("d/y", "y"),        TF("keep", "k"),   TD("gone-dir"),
        TF("gone-dir/f", "f"), TL("lnk", "keep"), TH("hard", "keep"),
};
static const struct tar_ent L2[] = {TF(".wh.a", ""), TF("b", "b2"), TF(".wh.gone-dir", "")};
static const struct tar_ent L3[] = {TD("d"), TF("d/.wh..wh..opq", ""), TF("d/z", "z3"),
                                    TF("b", "b3")};

/* Three layers: a file from the lowest, one deleted by a whiteout, a dir replaced by an
 * opaque one; returns the merged listing. */
static char *
three_layer_view(struct snap_store *s)
{
	_cleanup_free_ char *c1 = LAYER(s, NULL, L1);
	_cleanup_free_ char *c2 = LAYER(s, c1, L2);
	_cleanup_free_ char *c3 = LAYER(s, c2, L3);
	struct kiln_err err = KILN_ERR_INIT;
	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	if (snap_prepare(s, c3, &m, &err) < 0)
		fail_msg("prepare: %s", kiln_err_format(&err));
	const char *p = snap_mount_path(m);
	_cleanup_free_ char *keep = slurp(p, "keep");
	_cleanup_free_ char *b = slurp(p, "b");
	_cleanup_free_ char *z = slurp(p, "d/z");
	assert_string_equal(keep, "k");
	assert_string_equal(b, "b3");
	assert_string_equal(z, "z3");
	assert_false(lexists(p, "a", NULL));
	assert_false(lexists(p, "gone-dir", NULL));
	assert_false(lexists(p, "d/x", NULL));
	assert_false(lexists(p, "d/y", NULL));
	struct stat st1, st2;
	assert_true(lexists(p, "keep", &st1));
	assert_true(lexists(p, "hard", &st2));
	assert_int_equal(st1.st_nlink, 2);
	_cleanup_free_ char *parent = NULL;
	assert_int_equal(snap_parent(s, c3, &parent, &err), 0);
	assert_string_equal(parent, c2);
	return tree_list(p);
}

static void
test_store__chain_of_three_overlay_and_native_agree(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	_cleanup_free_ char *ov = three_layer_view(f->s);
	assert_int_equal(mounts_below(f->dir), 0);
	struct snap_store *n = open_store(f->dir, SNAP_DRIVER_NATIVE);
	_cleanup_free_ char *nat = three_layer_view(n);
	snap_store_free(n);
	assert_string_equal(ov, nat);
	assert_non_null(strstr(ov, "d/z 100644 0:0 z3\n"));
	assert_non_null(strstr(ov, "lnk 120777 0:0 keep\n"));
}

static void
test_store__layer_unpacked_once_per_diff_id(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	struct tar_ent other[] = {TF("other", "o")};
	_cleanup_free_ char *c1 = LAYER(f->s, NULL, L1);
	_cleanup_free_ char *o1 = LAYER(f->s, NULL, other);
	_cleanup_free_ char *a = LAYER(f->s, c1, L2);
	_cleanup_free_ char *b = LAYER(f->s, o1, L2);
	_cleanup_free_ char *again = LAYER(f->s, c1, L2);
	assert_string_not_equal(a, b);
	assert_string_equal(a, again);
	/* four chains, three diffs: L2 is shared by both images */
	assert_int_equal(count_in(f->s, "meta"), 4);
	assert_int_equal(count_in(f->s, "diffs"), 3);
	assert_int_equal(count_in(f->s, "tmp"), 0);
	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_prepare(f->s, b, &m, &err), 0);
	_cleanup_free_ char *o = slurp(snap_mount_path(m), "other");
	assert_string_equal(o, "o");
	assert_false(lexists(snap_mount_path(m), "keep", NULL));
}

static void
test_store__failed_layer_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	struct tar_ent ents[] = {TF("f", "x"), TH("h", "missing")};
	int fd = tar_build(ents, KILN_ARRAY_SIZE(ents), NULL);
	char *name = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	const char *id = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
	assert_true(snap_layer_apply(f->s, NULL, fd, T_MEDIA, id, &name, &err) < 0);
	close(fd);
	assert_err_contains(&err, "unpack layer sha256:1111");
	assert_null(name);
	assert_false(snap_exists(f->s, id));
	assert_int_equal(count_in(f->s, "tmp"), 0);
	assert_int_equal(count_in(f->s, "diffs"), 0);
	assert_int_equal(count_in(f->s, "meta"), 0);
	/* content that is not what its diff_id says is not stored under it */
	fd = tar_build(L1, KILN_ARRAY_SIZE(L1), "zstd");
	assert_int_equal(snap_layer_apply(f->s, NULL, fd, T_MEDIA_ZS, id, &name, &err), -EINVAL);
	close(fd);
	assert_err_contains(&err, ", not its diff_id sha256:1111");
	assert_null(name);
	assert_int_equal(count_in(f->s, "tmp"), 0);
	assert_int_equal(count_in(f->s, "diffs"), 0);
	assert_int_equal(count_in(f->s, "meta"), 0);
	assert_int_equal(snap_layer_apply(f->s, NULL, 0, T_MEDIA, "sha256:nope", &name, &err),
	                 -EINVAL);
	assert_err_contains(&err, "invalid layer diff_id");
	assert_true(snap_layer_apply(f->s, "sha256:missing", 0, T_MEDIA, id, &name, &err) < 0);
	assert_err_contains(&err, "parent of layer");
}

/* A chain of n one-file layers, prepared and viewed: every layer's file visible. */
static void
long_chain(struct fixture *f, int n)
{
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	char *parent = NULL;
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = kiln_xasprintf("f%03d", i);
		_cleanup_free_ char *data = kiln_xasprintf("layer %d", i);
		struct tar_ent ents[] = {TF(path, data), TF("top", data)};
		char *next = LAYER(f->s, parent, ents);
		free(parent);
		parent = next;
	}
	struct kiln_err err = KILN_ERR_INIT;
	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	if (snap_prepare(f->s, parent, &m, &err) < 0)
		fail_msg("prepare: %s", kiln_err_format(&err));
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = kiln_xasprintf("f%03d", i);
		_cleanup_free_ char *want = kiln_xasprintf("layer %d", i);
		_cleanup_free_ char *got = slurp(snap_mount_path(m), path);
		assert_non_null(got);
		assert_string_equal(got, want);
	}
	_cleanup_free_ char *top = slurp(snap_mount_path(m), "top");
	_cleanup_free_ char *want_top = kiln_xasprintf("layer %d", n - 1);
	assert_string_equal(top, want_top);
	test_write_file(snap_mount_path(m), "written", "w");
	_cleanup_free_ char *up = slurp(snap_mount_upper(m), "written");
	assert_string_equal(up, "w");
	_cleanup_snap_mount_ struct snap_mount *v = NULL;
	assert_int_equal(snap_view(f->s, parent, &v, &err), 0);
	_cleanup_free_ char *f0 = slurp(snap_mount_path(v), "f000");
	assert_string_equal(f0, "layer 0");
	free(parent);
}

static void
test_store__chain_of_90_layers_mounts(void **state)
{
	/* absolute lowerdirs would take ~11 KiB of options: mounted via l/ short links */
	long_chain(*state, 90);
}

static void
test_store__chain_of_400_layers_mounts(void **state)
{
	/* too long even for short links: lowers passed one by one through fsconfig */
	long_chain(*state, 400);
}

struct walk_out {
	struct kiln_buf b;
};

static int
collect(const struct snap_change *c, void *data, struct kiln_err *err)
{
	struct walk_out *w = data;
	static const char kinds[] = {'A', 'W', 'O'};
	kiln_buf_addf(&w->b, "%c %s\n", kinds[c->kind], c->oci_name);
	/* the entry is reachable through dirfd + name */
	struct stat st;
	if (c->kind != SNAP_CHANGE_OPAQUE && c->kind != SNAP_CHANGE_WHITEOUT &&
	    fstatat(c->dirfd, c->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_err_set(err, errno, "stat %s", c->path);
	return 0;
}

/* Run a step over L1: add, delete, modify, replace a dir; commit; return the walk. */
static char *
commit_step(struct snap_store *s)
{
	_cleanup_free_ char *c1 = LAYER(s, NULL, L1);
	struct kiln_err err = KILN_ERR_INIT;
	struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare(s, c1, &m, &err), 0);
	const char *p = snap_mount_path(m);
	test_write_file(p, "new", "new");
	test_write_file(p, "keep", "changed");
	_cleanup_free_ char *a = kiln_xasprintf("%s/a", p);
	assert_int_equal(unlink(a), 0);
	_cleanup_free_ char *gf = kiln_xasprintf("%s/gone-dir/f", p);
	_cleanup_free_ char *gd = kiln_xasprintf("%s/gone-dir", p);
	assert_int_equal(unlink(gf), 0);
	assert_int_equal(rmdir(gd), 0);
	assert_int_equal(mkdir(gd, 0755), 0);
	test_write_file(p, "gone-dir/g", "g");
	test_write_file(p, "n/inner", "i");

	assert_int_equal(snap_commit(m, "step-1", &err), 0);
	/* committed: not mounted any more, not committable again */
	assert_int_equal(mounts_below(snap_store_path(s)), 0);
	assert_true(snap_commit(m, "step-2", &err) < 0);
	assert_err_contains(&err, "not an active snapshot");
	snap_mount_release(m);
	assert_true(snap_exists(s, "step-1"));
	_cleanup_free_ char *parent = NULL;
	assert_int_equal(snap_parent(s, "step-1", &parent, &err), 0);
	assert_string_equal(parent, c1);

	/* the commit is a parent like any layer */
	assert_int_equal(snap_prepare(s, "step-1", &m, &err), 0);
	_cleanup_free_ char *keep = slurp(snap_mount_path(m), "keep");
	assert_string_equal(keep, "changed");
	assert_false(lexists(snap_mount_path(m), "a", NULL));
	assert_false(lexists(snap_mount_path(m), "gone-dir/f", NULL));
	assert_true(lexists(snap_mount_path(m), "gone-dir/g", NULL));
	assert_true(lexists(snap_mount_path(m), "d/x", NULL));
	assert_int_equal(snap_commit(m, "step-1", &err), -EEXIST);
	assert_err_contains(&err, "snapshot `step-1` exists");
	snap_mount_release(m);

	struct walk_out w = {.b = KILN_BUF_INIT};
	assert_int_equal(snap_diff_walk(s, "step-1", collect, &w, &err), 0);
	return kiln_buf_detach(&w.b, NULL);
}

static void
test_store__commit_and_upper_walk_overlay(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	_cleanup_free_ char *walk = commit_step(f->s);
	assert_string_equal(walk, "W .wh.a\n"
	                          "A gone-dir\n"
	                          "O gone-dir/.wh..wh..opq\n"
	                          "A gone-dir/g\n"
	                          "A keep\n"
	                          "A n\n"
	                          "A n/inner\n"
	                          "A new\n");
}

static void
test_store__commit_and_diff_walk_native(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_NATIVE);
	_cleanup_free_ char *walk = commit_step(f->s);
	/* No opaque dirs in a native diff: the replaced dir shows its deleted children.
	 * The copy keeps `hard` linked to `keep`, so writing one changed both. */
	assert_string_equal(walk, "W .wh.a\n"
	                          "A gone-dir\n"
	                          "W gone-dir/.wh.f\n"
	                          "A gone-dir/g\n"
	                          "A hard\n"
	                          "A keep\n"
	                          "A n\n"
	                          "A n/inner\n"
	                          "A new\n");
}

static void
test_store__view_is_read_only(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	_cleanup_free_ char *c1 = LAYER(f->s, NULL, L1);
	struct kiln_err err = KILN_ERR_INIT;
	_cleanup_snap_mount_ struct snap_mount *v = NULL;
	assert_int_equal(snap_view(f->s, c1, &v, &err), 0);
	assert_null(snap_mount_upper(v));
	_cleanup_free_ char *k = slurp(snap_mount_path(v), "keep");
	assert_string_equal(k, "k");
	_cleanup_free_ char *p = kiln_xasprintf("%s/newfile", snap_mount_path(v));
	assert_int_equal(open(p, O_WRONLY | O_CREAT, 0644), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(snap_commit(v, "x", &err), -EINVAL);
	assert_err_contains(&err, "not an active snapshot");
	assert_int_equal(snap_view(f->s, "sha256:nothing", &v, &err), -ENOENT);
	assert_err_contains(&err, "snapshot `sha256:nothing`");
}

static void
test_store__empty_prepare_and_bad_names(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	struct kiln_err err = KILN_ERR_INIT;
	struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare(f->s, NULL, &m, &err), 0);
	test_write_file(snap_mount_path(m), "hello", "world");
	_cleanup_free_ char *up = slurp(snap_mount_upper(m), "hello");
	assert_string_equal(up, "world");
	assert_int_equal(snap_commit(m, "../escape", &err), -EINVAL);
	assert_err_contains(&err, "invalid snapshot name");
	assert_int_equal(snap_commit(m, "base", &err), 0);
	snap_mount_release(m);
	_cleanup_free_ char *parent = NULL;
	assert_int_equal(snap_parent(f->s, "base", &parent, &err), 0);
	assert_null(parent);
	assert_false(snap_name_valid(".hidden"));
	assert_false(snap_name_valid("a/b"));
	assert_true(snap_name_valid("sha256:abc-1.2_x+y"));
}

static void
test_store__stale_leftovers_cleaned_on_open(void **state)
{
	struct fixture *f = *state;
	struct snap_store *s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	_cleanup_free_ char *c1 = LAYER(s, NULL, L1);
	_cleanup_free_ char *store = kiln_xstrdup(snap_store_path(s));
	snap_store_free(s);

	/* A process dies with a mounted active snapshot and a half-built layer. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct snap_store_opts o = {.driver = SNAP_DRIVER_OVERLAY};
		struct snap_store *cs = NULL;
		struct kiln_err err = KILN_ERR_INIT;
		struct snap_mount *m = NULL;
		if (snap_store_open(f->dir, &o, &cs, &err) < 0 ||
		    snap_prepare(cs, c1, &m, &err) < 0)
			_exit(1);
		_cleanup_free_ char *half = kiln_xasprintf("%s/tmp/half", store);
		if (mkdir(half, 0700) < 0)
			_exit(2);
		test_write_file(half, "fs/partial", "x");
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	_cleanup_free_ char *active = kiln_xasprintf("%s/active", store);
	assert_int_equal(mounts_below(active), 1);

	/* A second handle while the first is open leaves the first's mount alone. */
	struct kiln_err err = KILN_ERR_INIT;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	assert_int_equal(mounts_below(active), 0);
	assert_int_equal(count_in(f->s, "active"), 0);
	assert_int_equal(count_in(f->s, "tmp"), 0);
	assert_true(snap_exists(f->s, c1));
	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare(f->s, c1, &m, &err), 0);
	struct snap_store *other = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	assert_int_equal(mounts_below(active), 1);
	assert_int_equal(count_in(other, "active"), 1);
	snap_store_free(other);
	snap_mount_release(TAKE_PTR(m));
	assert_int_equal(mounts_below(active), 0);
	assert_int_equal(count_in(f->s, "active"), 0);
}

static void
test_store__killed_apply_leaves_no_snapshot(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	struct tar_ent ents[200];
	char *names[200];
	static char data[2048];
	memset(data, 'x', sizeof(data) - 1);
	for (int i = 0; i < 200; i++) {
		names[i] = kiln_xasprintf("dir/file%03d", i);
		ents[i] = (struct tar_ent)TF(names[i], data);
	}
	int fd = tar_build(ents, 200, NULL);
	for (int i = 0; i < 200; i++)
		free(names[i]);
	struct kiln_buf tar = KILN_BUF_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(kiln_buf_read_fd(&tar, fd, &err), 0);
	close(fd);
	const char *id = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		struct snap_store_opts o = {.driver = SNAP_DRIVER_OVERLAY};
		struct snap_store *cs = NULL;
		char *name = NULL;
		if (snap_store_open(f->dir, &o, &cs, &err) < 0)
			_exit(1);
		snap_layer_apply(cs, NULL, p[0], T_MEDIA, id, &name, &err);
		_exit(2);
	}
	close(p[0]);
	/* Feed half the layer, wait until the child has unpacked some of it, kill it. */
	size_t half = tar.len / 2;
	assert_int_equal(write(p[1], tar.buf, half), (ssize_t)half);
	_cleanup_free_ char *tmp = kiln_xasprintf("%s/tmp", snap_store_path(f->s));
	bool started = false;
	for (int i = 0; i < 500 && !started; i++) {
		DIR *d = opendir(tmp);
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.') {
				_cleanup_free_ char *probe =
				        kiln_xasprintf("%s/fs/dir/file010", de->d_name);
				started = lexists(tmp, probe, NULL);
			}
		closedir(d);
		usleep(10000);
	}
	assert_true(started);
	assert_int_equal(kill(pid, SIGKILL), 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	close(p[1]);
	kiln_buf_release(&tar);

	/* Nothing committed, half a tree in tmp/ until the next lone open. */
	assert_false(snap_exists(f->s, id));
	assert_int_equal(count_in(f->s, "diffs"), 0);
	assert_int_equal(count_in(f->s, "meta"), 0);
	assert_int_equal(count_in(f->s, "tmp"), 1);
	snap_store_free(f->s);
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	assert_int_equal(count_in(f->s, "tmp"), 0);
}

/*
 * A build killed in the middle of committing snapshot `name`: a child process commits
 * while this one holds the store's lock, which the commit takes after publishing its
 * diff and before writing its record; the child is killed there, as kill -9 of kiln
 * would. The store must be open in this process (so the child cleans nothing up).
 */
static void
killed_commit(struct snap_store *s, const char *name)
{
	size_t diffs_before = count_in(s, "diffs");
	int ready[2], go[2];
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct snap_store_opts o = {.driver = snap_store_driver(s)};
		struct snap_store *cs = NULL;
		struct snap_mount *m = NULL;
		struct kiln_err err = KILN_ERR_INIT;
		char c = 'r';
		_cleanup_free_ char *root = kiln_xstrdup(snap_store_path(s));
		*strstr(root, "/snapshots/") = '\0';
		if (snap_store_open(root, &o, &cs, &err) < 0 ||
		    snap_prepare(cs, NULL, &m, &err) < 0)
			_exit(1);
		test_write_file(snap_mount_path(m), "half", "done");
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		snap_commit(m, name, &err);
		_exit(3);
	}
	char c = 'g';
	assert_int_equal(read(ready[0], &c, 1), 1);
	_cleanup_free_ char *lock = kiln_xasprintf("%s/lock", snap_store_path(s));
	int lfd = open(lock, O_RDWR | O_CLOEXEC);
	assert_true(lfd >= 0);
	assert_int_equal(flock(lfd, LOCK_EX), 0);
	assert_int_equal(write(go[1], &c, 1), 1);
	for (int i = 0; i < 1000 && count_in(s, "diffs") == diffs_before; i++)
		usleep(10000);
	assert_int_equal(count_in(s, "diffs"), diffs_before + 1); /* published, no record */
	assert_int_equal(kill(pid, SIGKILL), 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	close(lfd);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(go[i]);
	}
	assert_false(snap_exists(s, name));
}

static void
test_store__orphan_of_killed_commit_collected(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	struct kiln_err err = KILN_ERR_INIT;
	struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare(f->s, NULL, &m, &err), 0);
	test_write_file(snap_mount_path(m), "f", "x");
	assert_int_equal(snap_commit(m, "kept", &err), 0);
	snap_mount_release(m);
	assert_int_equal(count_in(f->s, "pending"), 0);
	killed_commit(f->s, "lost");
	assert_int_equal(count_in(f->s, "diffs"), 2);
	assert_int_equal(count_in(f->s, "pending"), 1);

	/* Another handle is open: the orphan may still be some build's work in progress. */
	struct snap_store *other = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	assert_int_equal(count_in(other, "diffs"), 2);
	snap_store_free(other);
	snap_store_free(f->s);
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	assert_int_equal(count_in(f->s, "diffs"), 1);
	assert_int_equal(count_in(f->s, "l"), 1);
	assert_int_equal(count_in(f->s, "pending"), 0);
	assert_int_equal(count_in(f->s, "tmp"), 0);
	assert_int_equal(count_in(f->s, "active"), 0);
	assert_int_equal(snap_prepare(f->s, "kept", &m, &err), 0);
	_cleanup_free_ char *x = slurp(snap_mount_path(m), "f");
	assert_string_equal(x, "x");
	/* the name is free again, and a commit under it works and stays */
	assert_int_equal(snap_commit(m, "lost", &err), 0);
	snap_mount_release(m);
	snap_store_free(f->s);
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	assert_true(snap_exists(f->s, "lost"));
	assert_int_equal(count_in(f->s, "diffs"), 2);
	assert_int_equal(snap_remove(f->s, "lost", &err), 0);
	assert_int_equal(count_in(f->s, "diffs"), 1);
	assert_int_equal(count_in(f->s, "pending"), 0);
}

static void
test_store__open_reads_no_committed_record(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_NATIVE);
	struct kiln_err err = KILN_ERR_INIT;
	struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare(f->s, NULL, &m, &err), 0);
	test_write_file(snap_mount_path(m), "f", "x");
	assert_int_equal(snap_commit(m, "kept", &err), 0);
	snap_mount_release(m);
	/* a record nobody can read, and the leftovers of a killed build */
	_cleanup_free_ char *meta = kiln_xasprintf("%s/meta", snap_store_path(f->s));
	test_write_file(meta, "corrupt", "not a record");
	killed_commit(f->s, "lost");
	snap_store_free(f->s);
	f->s = NULL;

	int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(ifd >= 0);
	assert_true(inotify_add_watch(ifd, meta,
	                              IN_OPEN | IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_DELETE |
	                                      IN_MOVED_FROM) >= 0);
	f->s = open_store(f->dir, SNAP_DRIVER_NATIVE);
	char ev[4096];
	ssize_t n = read(ifd, ev, sizeof(ev));
	if (n > 0) {
		const struct inotify_event *e = (const void *)ev;
		fail_msg("opening the store touched meta/%s (mask %#x)", e->len ? e->name : "",
		         e->mask);
	}
	assert_int_equal(errno, EAGAIN);
	close(ifd);

	/* the killed build's diff is gone all the same; the corrupt record is as it was */
	assert_int_equal(count_in(f->s, "diffs"), 1);
	assert_int_equal(count_in(f->s, "pending"), 0);
	_cleanup_free_ char *text = slurp(meta, "corrupt");
	assert_string_equal(text, "not a record");
	assert_int_equal(snap_prepare(f->s, "kept", &m, &err), 0);
	_cleanup_free_ char *x = slurp(snap_mount_path(m), "f");
	assert_string_equal(x, "x");
	snap_mount_release(m);
}

static void
test_store__remove_keeps_what_others_need(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	struct tar_ent other[] = {TF("other", "o")};
	_cleanup_free_ char *c1 = LAYER(f->s, NULL, L1);
	_cleanup_free_ char *o1 = LAYER(f->s, NULL, other);
	_cleanup_free_ char *a = LAYER(f->s, c1, L2);
	_cleanup_free_ char *b = LAYER(f->s, o1, L2);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_remove(f->s, c1, &err), -EBUSY);
	assert_err_contains(&err, "is built on it");
	struct snap_mount *v = NULL;
	assert_int_equal(snap_view(f->s, a, &v, &err), 0);
	assert_int_equal(snap_remove(f->s, a, &err), -EBUSY);
	assert_err_contains(&err, "in use by an active snapshot");
	snap_mount_release(v);
	/* a's diff (L2) is shared with b: the record goes, the diff stays */
	assert_int_equal(snap_remove(f->s, a, &err), 0);
	assert_false(snap_exists(f->s, a));
	assert_int_equal(count_in(f->s, "diffs"), 3);
	assert_int_equal(snap_remove(f->s, c1, &err), 0);
	assert_int_equal(count_in(f->s, "diffs"), 2);
	assert_int_equal(count_in(f->s, "l"), 2);
	assert_int_equal(count_in(f->s, "tmp"), 0);
	assert_int_equal(snap_remove(f->s, c1, &err), -ENOENT);
	kiln_err_release(&err);
	struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare(f->s, b, &m, &err), 0);
	_cleanup_free_ char *o = slurp(snap_mount_path(m), "other");
	_cleanup_free_ char *bb = slurp(snap_mount_path(m), "b");
	assert_string_equal(o, "o");
	assert_string_equal(bb, "b2");
	snap_mount_release(m);
}

struct racer {
	struct snap_store *s;
	int fd;
	const char *diff_id;
	char *name;
	int rc;
};

static void *
race_apply(void *p)
{
	struct racer *r = p;
	struct kiln_err err = KILN_ERR_INIT;
	r->rc = snap_layer_apply(r->s, NULL, r->fd, T_MEDIA, r->diff_id, &r->name, &err);
	kiln_err_release(&err);
	return NULL;
}

static void
test_store__threads_unpacking_one_layer(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	char id[KILN_DIGEST_HEX_LEN + 1];
	diff_id_of(L1, KILN_ARRAY_SIZE(L1), id);
	struct racer r[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){.s = f->s, .diff_id = id};
		r[i].fd = tar_build(L1, KILN_ARRAY_SIZE(L1), NULL);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_apply, &r[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		close(r[i].fd);
		assert_int_equal(r[i].rc, 0);
		assert_string_equal(r[i].name, id);
		free(r[i].name);
	}
	assert_int_equal(count_in(f->s, "diffs"), 1);
	assert_int_equal(count_in(f->s, "meta"), 1);
	assert_int_equal(count_in(f->s, "tmp"), 0);
	/* and prepares from several threads get separate mounts */
	struct snap_mount *m[4];
	struct kiln_err err = KILN_ERR_INIT;
	for (int i = 0; i < 4; i++)
		assert_int_equal(snap_prepare(f->s, id, &m[i], &err), 0);
	assert_int_equal(mounts_below(snap_store_path(f->s)), 4);
	for (int i = 0; i < 4; i++)
		snap_mount_release(m[i]);
}

static void
test_store__auto_falls_back_to_native_with_notice(void **state)
{
	struct fixture *f = *state;
	/* overlayfs cannot use an overlay mount as its upper layer: put the root on one. */
	static const char *const sub[] = {"lo", "up", "wk", "root"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(sub); i++) {
		_cleanup_free_ char *p = kiln_xasprintf("%s/%s", f->dir, sub[i]);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	_cleanup_free_ char *opts = kiln_xasprintf("lowerdir=%s/lo,upperdir=%s/up,workdir=%s/wk",
	                                           f->dir, f->dir, f->dir);
	_cleanup_free_ char *root = kiln_xasprintf("%s/root", f->dir);
	assert_int_equal(mount("overlay", root, "overlay", 0, opts), 0);

	struct snap_store_opts o = {.driver = SNAP_DRIVER_OVERLAY};
	struct kiln_err err = KILN_ERR_INIT;
	assert_true(snap_store_open(root, &o, &f->s, &err) < 0);
	assert_err_contains(&err, "overlayfs is not usable");

	o.driver = SNAP_DRIVER_AUTO;
	assert_int_equal(snap_store_open(root, &o, &f->s, &err), 0);
	assert_int_equal(snap_store_driver(f->s), SNAP_DRIVER_NATIVE);
	assert_non_null(snap_store_notice(f->s));
	assert_non_null(strstr(snap_store_notice(f->s), "(Invalid argument); using the native "
	                                                "snapshotter"));
	_cleanup_free_ char *c1 = LAYER(f->s, NULL, L1);
	_cleanup_free_ char *c2 = LAYER(f->s, c1, L2);
	struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare(f->s, c2, &m, &err), 0);
	assert_false(lexists(snap_mount_path(m), "a", NULL));
	_cleanup_free_ char *b = slurp(snap_mount_path(m), "b");
	assert_string_equal(b, "b2");
	snap_mount_release(m);
	snap_store_free(TAKE_PTR(f->s));
	assert_int_equal(umount2(root, 0), 0);
}

static void
test_store__overlay_probe_remembered_for_the_boot(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	_cleanup_free_ char *store = kiln_xstrdup(snap_store_path(f->s));
	_cleanup_free_ char *rec = slurp(store, "probed");
	assert_true(kiln_str_has_prefix(rec, "kiln-overlay-probe 1 "));
	assert_non_null(strstr(rec, " extra="));
	snap_store_free(TAKE_PTR(f->s));

	/* The record is used: the store opens and mounts with the options it names. */
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	_cleanup_free_ char *c1 = LAYER(f->s, NULL, L1);
	struct snap_mount *m = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_prepare(f->s, c1, &m, &err), 0);
	_cleanup_free_ char *a = slurp(snap_mount_path(m), "a");
	assert_string_equal(a, "a1");
	snap_mount_release(m);
	snap_store_free(TAKE_PTR(f->s));

	/* Another boot's (or a damaged) record means a new probe, and a new record. */
	test_write_file(store, "probed", "kiln-overlay-probe 1 another-boot 1 2 0 3 extra=1\n");
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	_cleanup_free_ char *again = slurp(store, "probed");
	assert_string_equal(again, rec);
	snap_store_free(TAKE_PTR(f->s));
	test_write_file(store, "probed", "garbage");
	f->s = open_store(f->dir, SNAP_DRIVER_OVERLAY);
	_cleanup_free_ char *third = slurp(store, "probed");
	assert_string_equal(third, rec);
}

static void
test_store__driver_names(void **state)
{
	enum snap_driver d;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_driver_parse("native", &d, &err), 0);
	assert_int_equal(d, SNAP_DRIVER_NATIVE);
	assert_int_equal(snap_driver_parse("overlay", &d, &err), 0);
	assert_int_equal(d, SNAP_DRIVER_OVERLAY);
	assert_string_equal(snap_driver_name(d), "overlayfs");
	assert_int_equal(snap_driver_parse("btrfs", &d, &err), -EINVAL);
	assert_err_contains(&err, "unknown snapshotter `btrfs`");
}

static void
test_store__labels_travel_with_the_commit(void **state)
{
	struct fixture *f = *state;
	f->s = open_store(f->dir, SNAP_DRIVER_NATIVE);
	struct kiln_err err = KILN_ERR_INIT;
	struct snap_mount *m = NULL;
	assert_int_equal(snap_prepare(f->s, NULL, &m, &err), 0);
	assert_int_equal(snap_mount_set_label(m, SNAP_LABEL_LAYER, "x-link", &err), 0);
	assert_int_equal(snap_mount_set_label(m, "Bad Key", "v", &err), -EINVAL);
	assert_err_contains(&err, "invalid snapshot label");
	kiln_err_release(&err);
	assert_int_equal(snap_mount_set_label(m, "k", "two\nlines", &err), -EINVAL);
	kiln_err_release(&err);
	assert_int_equal(snap_commit(m, "merged", &err), 0);
	assert_int_equal(snap_mount_set_label(m, "late", "v", &err), -EINVAL);
	kiln_err_release(&err);
	snap_mount_release(m);
	_cleanup_free_ char *v = NULL;
	assert_int_equal(snap_label(f->s, "merged", SNAP_LABEL_LAYER, &v, &err), 0);
	assert_string_equal(v, "x-link");
	/* The record still reads as before: no parent, and an unknown label is absent. */
	_cleanup_free_ char *parent = NULL, *none = NULL;
	assert_int_equal(snap_parent(f->s, "merged", &parent, &err), 0);
	assert_null(parent);
	assert_int_equal(snap_label(f->s, "merged", "lay", &none, &err), -ENOENT);
	assert_null(none);
	/* A child has no labels of its own, and removal takes the labels along. */
	assert_int_equal(snap_prepare(f->s, "merged", &m, &err), 0);
	assert_int_equal(snap_commit(m, "child", &err), 0);
	snap_mount_release(m);
	assert_int_equal(snap_label(f->s, "child", SNAP_LABEL_LAYER, &none, &err), -ENOENT);
	assert_int_equal(snap_remove(f->s, "child", &err), 0);
	assert_int_equal(snap_remove(f->s, "merged", &err), 0);
	assert_int_equal(snap_label(f->s, "merged", SNAP_LABEL_LAYER, &none, &err), -ENOENT);
	kiln_err_release(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_store__chain_of_three_overlay_and_native_agree,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store__layer_unpacked_once_per_diff_id, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__failed_layer_leaves_nothing, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__chain_of_400_layers_mounts, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__chain_of_90_layers_mounts, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__commit_and_upper_walk_overlay, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__commit_and_diff_walk_native, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__view_is_read_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store__empty_prepare_and_bad_names, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__stale_leftovers_cleaned_on_open, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__killed_apply_leaves_no_snapshot, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__orphan_of_killed_commit_collected,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store__open_reads_no_committed_record, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__remove_keeps_what_others_need, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__threads_unpacking_one_layer, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__auto_falls_back_to_native_with_notice,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store__labels_travel_with_the_commit, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__overlay_probe_remembered_for_the_boot,
	                                        setup, teardown),
	        cmocka_unit_test(test_store__driver_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
