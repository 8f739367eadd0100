/* Unit tests for exporter/layer.c: a committed snapshot's diff becomes a layer tar that
 * says what changed (whiteouts, opaque dirs, hard links, xattrs, owners, devices), applies
 * back to the same tree, and is byte-for-byte the same every time. Each test runs on the
 * overlay and on the native driver. Run as root (CI is); every mount is undone. */
#include "snapshot/layer_tar.h"

#include "exporter/exp.h"
#include "registry/reg.h"
#include "snapshot/snap.h"

struct fixture {
	enum snap_driver driver;
	char *dir;
	char *root; /* the kiln root: snapshots/ and content/ */
	struct snap_store *ss;
	struct reg_store *rs;
	char *base; /* the base snapshot (chain id of BASE) */
};

static const struct tar_ent BASE[] = {
        TD("data"),          TF("data/a", "a"),    TF("data/b", "b"),  TD("etc"),
        TF("etc/keep", "k"), TF("etc/old", "old"), TF("top-old", "t"), TD("var"),
};

#define LONG_NAME                                                                                  \
	"deep/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"               \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.txt"

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

static char *
apply_base(struct snap_store *ss)
{
	char diff_id[KILN_DIGEST_HEX_LEN + 1];
	diff_id_of(BASE, KILN_ARRAY_SIZE(BASE), diff_id);
	int fd = tar_build(BASE, KILN_ARRAY_SIZE(BASE), "gzip");
	char *name = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	if (snap_layer_apply(ss, NULL, fd, T_MEDIA_GZ, diff_id, &name, &err) < 0)
		fail_msg("apply base: %s", kiln_err_format(&err));
	close(fd);
	return name;
}

static struct snap_store *
open_snaps(const char *root, enum snap_driver d)
{
	struct snap_store_opts o = {.driver = d};
	struct snap_store *s = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	if (snap_store_open(root, &o, &s, &err) < 0)
		fail_msg("open store: %s", kiln_err_format(&err));
	assert_int_equal(snap_store_driver(s), d);
	return s;
}

static int
setup(void **state)
{
	if (geteuid() != 0) {
		print_message("exporter tests need root\n");
		exit(77);
	}
	struct fixture *f = kiln_xcalloc(1, sizeof(*f));
	f->driver = *(enum snap_driver *)*state;
	f->dir = test_tmpdir_new();
	f->root = kiln_xasprintf("%s/root", f->dir);
	f->ss = open_snaps(f->root, f->driver);
	struct kiln_err err = KILN_ERR_INIT;
	if (reg_store_open(f->root, &f->rs, &err) < 0)
		fail_msg("open reg store: %s", kiln_err_format(&err));
	f->base = apply_base(f->ss);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	snap_store_free(f->ss);
	reg_store_free(f->rs);
	int left = mounts_below(f->dir);
	umount_below(f->dir);
	test_tmpdir_remove(f->dir);
	free(f->root);
	free(f->base);
	free(f);
	assert_int_equal(left, 0);
	return 0;
}

static char *
at(const char *root, const char *rel)
{
	return kiln_xasprintf("%s/%s", root, rel);
}

static void
put(const char *root, const char *rel, const char *content, mode_t mode, uid_t uid, gid_t gid)
{
	test_write_file(root, rel, content);
	_cleanup_free_ char *p = at(root, rel);
	assert_int_equal(chown(p, uid, gid), 0); /* first: chown clears set-user-ID */
	assert_int_equal(chmod(p, mode), 0);
}

/* The changes the entry tests look for, made in a snapshot on the base. */
static void
change_tree(const char *p)
{
	_cleanup_free_ char *old = at(p, "etc/old"), *top = at(p, "top-old");
	assert_int_equal(unlink(old), 0);
	assert_int_equal(unlink(top), 0);
	/* data/ replaced by a new directory */
	_cleanup_free_ char *data = at(p, "data"), *da = at(p, "data/a"), *db = at(p, "data/b");
	assert_int_equal(unlink(da), 0);
	assert_int_equal(unlink(db), 0);
	assert_int_equal(rmdir(data), 0);
	assert_int_equal(mkdir(data, 0700), 0);
	put(p, "data/c", "c", 0600, 0, 0);
	/* a new file with owner, mode, xattr and a second name */
	put(p, "bin/tool", "#!/bin/sh\n", 04750, 1234, 5678);
	_cleanup_free_ char *tool = at(p, "bin/tool"), *tool2 = at(p, "bin/tool2");
	assert_int_equal(link(tool, tool2), 0);
	assert_int_equal(lsetxattr(tool, "user.kiln.test", "yes", 3, 0), 0);
	_cleanup_free_ char *lnk = at(p, "bin/sh-link");
	assert_int_equal(symlink("tool", lnk), 0);
	_cleanup_free_ char *dev = at(p, "dev"), *null = at(p, "dev/null"),
	                    *fifo = at(p, "dev/fifo");
	assert_int_equal(mkdir(dev, 0755), 0);
	assert_int_equal(mknod(null, S_IFCHR | 0666, makedev(1, 3)), 0);
	assert_int_equal(mkfifo(fifo, 0640), 0);
	put(p, "etc/keep", "changed", 0644, 0, 0);
	/* file capabilities: VFS_CAP_REVISION_2 | effective, permitted CAP_NET_BIND_SERVICE */
	static const unsigned char cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04};
	put(p, "bin/ping", "ping", 0755, 0, 0);
	_cleanup_free_ char *ping = at(p, "bin/ping");
	assert_int_equal(lsetxattr(ping, "security.capability", cap, sizeof(cap), 0), 0);
	/* a name past ustar's 100 bytes */
	put(p, LONG_NAME, "long", 0644, 0, 0);
}

typedef void (*change_fn)(const char *root);

/* Prepare on `parent`, change, commit as `name`. */
static void
commit_step(struct fixture *f, const char *parent, const char *name, change_fn fn)
{
	struct kiln_err err = KILN_ERR_INIT;
	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	if (snap_prepare(f->ss, parent, &m, &err) < 0)
		fail_msg("prepare: %s", kiln_err_format(&err));
	if (fn)
		fn(snap_mount_path(m));
	if (snap_commit(m, name, &err) < 0)
		fail_msg("commit: %s", kiln_err_format(&err));
}

static struct exp_layer export(struct fixture *f, const char *snap, const struct exp_layer_opts *o)
{
	struct exp_layer l;
	struct kiln_err err = KILN_ERR_INIT;
	if (exp_layer_from_snapshot(f->ss, snap, f->rs, o, &l, &err) < 0)
		fail_msg("export: %s", kiln_err_format(&err));
	return l;
}

/* One entry read back from a layer. */
struct ent {
	char *path;
	mode_t mode;
	int64_t uid, gid, mtime;
	char *link;   /* hard link target */
	char *target; /* symlink target */
	char *xattrs; /* "name=value;" sorted as written */
	char *data;
	bool atime, ctime, uname;
	dev_t rdev;
};

static void
ents_free(struct ent *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].link);
		free(v[i].target);
		free(v[i].xattrs);
		free(v[i].data);
	}
	free(v);
}

/* Read the layer blob back: checks the gzip and diff_id, returns the entries. */
static struct ent *
read_layer(struct fixture *f, const struct exp_layer *l, size_t *ret_n)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct kiln_buf gz = KILN_BUF_INIT;
	if (reg_blob_read(f->rs, l->digest, 1 << 26, &gz, &err) < 0)
		fail_msg("read blob: %s", kiln_err_format(&err));
	assert_int_equal((int64_t)gz.len, l->size);
	/* gzip header: no mtime, no name */
	assert_int_equal((unsigned char)gz.buf[0], 0x1f);
	assert_int_equal(gz.buf[3] & 0x08, 0);
	assert_int_equal(gz.buf[4] | gz.buf[5] | gz.buf[6] | gz.buf[7], 0);
	/* uncompress (libarchive's gzip reader, raw format) to check the diff_id */
	struct archive *ra = archive_read_new();
	archive_read_support_filter_gzip(ra);
	archive_read_support_format_raw(ra);
	assert_int_equal(archive_read_open_memory(ra, gz.buf, gz.len), ARCHIVE_OK);
	struct archive_entry *re;
	assert_int_equal(archive_read_next_header(ra, &re), ARCHIVE_OK);
	assert_int_equal(archive_filter_code(ra, 0), ARCHIVE_FILTER_GZIP);
	struct kiln_buf tar = KILN_BUF_INIT;
	char zbuf[65536];
	la_ssize_t zn;
	while ((zn = archive_read_data(ra, zbuf, sizeof(zbuf))) > 0)
		kiln_buf_add(&tar, zbuf, (size_t)zn);
	assert_int_equal(zn, 0);
	archive_read_free(ra);
	struct kiln_digest d;
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_sha256_buf(tar.buf, tar.len, &d);
	kiln_digest_format(&d, hex);
	assert_string_equal(hex, l->diff_id);
	/* xattrs once (SCHILY), and no access or change times anywhere */
	assert_null(memmem(tar.buf, tar.len, "LIBARCHIVE.", 11));
	assert_null(memmem(tar.buf, tar.len, "atime=", 6));
	assert_null(memmem(tar.buf, tar.len, "ctime=", 6));

	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, tar.buf, tar.len), ARCHIVE_OK);
	struct ent *v = NULL;
	size_t n = 0, alloc = 0;
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		KILN_GROW(v, alloc, n + 1);
		struct ent *x = &v[n++];
		*x = (struct ent){0};
		x->path = kiln_xstrdup(archive_entry_pathname(e));
		x->mode = archive_entry_mode(e);
		x->uid = archive_entry_uid(e);
		x->gid = archive_entry_gid(e);
		x->mtime = archive_entry_mtime(e);
		x->atime = archive_entry_atime_is_set(e);
		x->ctime = archive_entry_ctime_is_set(e);
		/* ustar has the fields; empty means none was written */
		x->uname = (archive_entry_uname(e) && *archive_entry_uname(e)) ||
		           (archive_entry_gname(e) && *archive_entry_gname(e));
		x->rdev = archive_entry_rdev(e);
		if (archive_entry_hardlink(e))
			x->link = kiln_xstrdup(archive_entry_hardlink(e));
		if (archive_entry_symlink(e))
			x->target = kiln_xstrdup(archive_entry_symlink(e));
		struct kiln_buf xb = KILN_BUF_INIT;
		archive_entry_xattr_reset(e);
		const char *xn;
		const void *xv;
		size_t xl;
		while (archive_entry_xattr_next(e, &xn, &xv, &xl) == ARCHIVE_OK)
			kiln_buf_addf(&xb, "%s=%.*s;", xn, (int)xl, (const char *)xv);
		x->xattrs = kiln_buf_detach(&xb, NULL);
		struct kiln_buf db = KILN_BUF_INIT;
		char buf[4096];
		la_ssize_t got;
		while ((got = archive_read_data(a, buf, sizeof(buf))) > 0)
			kiln_buf_add(&db, buf, (size_t)got);
		x->data = kiln_buf_detach(&db, NULL);
	}
	assert_int_equal(r, ARCHIVE_EOF);
	archive_read_free(a);
	kiln_buf_release(&tar);
	kiln_buf_release(&gz);
	*ret_n = n;
	return v;
}

static const struct ent *
find(const struct ent *v, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (kiln_str_eq(v[i].path, path))
			return &v[i];
	return NULL;
}

static size_t
index_of(const struct ent *v, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (kiln_str_eq(v[i].path, path))
			return i;
	fail_msg("no entry %s", path);
	return 0;
}

static void
test_layer__entries_say_what_changed(void **state)
{
	struct fixture *f = *state;
	commit_step(f, f->base, "step1", change_tree);
	struct exp_layer l = export(f, "step1", NULL);
	assert_false(l.empty);
	assert_false(l.cached);
	assert_string_equal(l.media_type, REG_MT_OCI_LAYER_GZIP);
	size_t n;
	struct ent *v = read_layer(f, &l, &n);

	/* deletions */
	const struct ent *wh = find(v, n, "etc/.wh.old");
	assert_non_null(wh);
	assert_true(S_ISREG(wh->mode));
	assert_string_equal(wh->data, "");
	assert_non_null(find(v, n, ".wh.top-old"));
	assert_null(find(v, n, "etc/old"));
	/* the replaced directory */
	if (f->driver == SNAP_DRIVER_OVERLAY) {
		assert_non_null(find(v, n, "data/.wh..wh..opq"));
		assert_true(index_of(v, n, "data/") < index_of(v, n, "data/.wh..wh..opq"));
		assert_true(index_of(v, n, "data/.wh..wh..opq") < index_of(v, n, "data/c"));
	} else {
		assert_non_null(find(v, n, "data/.wh.a"));
		assert_non_null(find(v, n, "data/.wh.b"));
	}
	const struct ent *data = find(v, n, "data/");
	assert_non_null(data);
	assert_int_equal(data->mode, S_IFDIR | 0700);
	/* owners, modes, xattr, hard link */
	const struct ent *tool = find(v, n, "bin/tool");
	assert_non_null(tool);
	assert_int_equal(tool->mode, S_IFREG | 04750);
	assert_int_equal(tool->uid, 1234);
	assert_int_equal(tool->gid, 5678);
	assert_string_equal(tool->data, "#!/bin/sh\n");
	assert_string_equal(tool->xattrs, "user.kiln.test=yes;");
	const struct ent *tool2 = find(v, n, "bin/tool2");
	assert_non_null(tool2);
	assert_non_null(tool2->link);
	assert_string_equal(tool2->link, "bin/tool");
	assert_string_equal(find(v, n, "bin/sh-link")->target, "tool");
	const struct ent *null = find(v, n, "dev/null");
	assert_non_null(null);
	assert_true(S_ISCHR(null->mode));
	assert_int_equal(null->rdev, makedev(1, 3));
	assert_true(S_ISFIFO(find(v, n, "dev/fifo")->mode));
	assert_string_equal(find(v, n, "etc/keep")->data, "changed");
	const struct ent *ping = find(v, n, "bin/ping");
	assert_non_null(ping);
	assert_non_null(strstr(ping->xattrs, "security.capability="));
	assert_string_equal(find(v, n, LONG_NAME)->data, "long");
	/* unchanged files are not in the layer */
	assert_null(find(v, n, "var/"));
	/* nothing host-specific */
	for (size_t i = 0; i < n; i++) {
		assert_false(v[i].atime);
		assert_false(v[i].ctime);
		assert_false(v[i].uname);
		assert_null(strstr(v[i].xattrs, "overlay"));
	}
	/* sorted: parents first, names bytewise */
	assert_true(index_of(v, n, "bin/") < index_of(v, n, "bin/sh-link"));
	assert_true(index_of(v, n, "bin/sh-link") < index_of(v, n, "bin/tool"));
	assert_true(index_of(v, n, "bin/tool") < index_of(v, n, "bin/tool2"));
	ents_free(v, n);
}

static void
test_layer__applies_back_to_the_same_tree(void **state)
{
	struct fixture *f = *state;
	commit_step(f, f->base, "step1", change_tree);
	struct exp_layer l = export(f, "step1", NULL);

	/* a fresh store: the base layer, then the exported one */
	_cleanup_free_ char *root2 = kiln_xasprintf("%s/root2", f->dir);
	struct snap_store *ss2 = open_snaps(root2, f->driver);
	_cleanup_free_ char *base2 = apply_base(ss2);
	struct kiln_err err = KILN_ERR_INIT;
	int fd = reg_blob_open(f->rs, l.digest, &err);
	assert_true(fd >= 0);
	_cleanup_free_ char *top2 = NULL;
	if (snap_layer_apply(ss2, base2, fd, l.media_type, l.diff_id, &top2, &err) < 0)
		fail_msg("apply exported layer: %s", kiln_err_format(&err));
	close(fd);

	_cleanup_snap_mount_ struct snap_mount *want = NULL, *got = NULL;
	assert_int_equal(snap_view(f->ss, "step1", &want, &err), 0);
	assert_int_equal(snap_view(ss2, top2, &got, &err), 0);
	_cleanup_free_ char *a = tree_list(snap_mount_path(want));
	_cleanup_free_ char *b = tree_list(snap_mount_path(got));
	assert_string_equal(b, a);
	assert_non_null(strstr(b, "bin/tool 104750 1234:5678 #!/bin/sh\n"));
	assert_null(strstr(b, "etc/old"));
	assert_null(strstr(b, "data/a"));
	_cleanup_free_ char *x = xattr_of(snap_mount_path(got), "bin/tool", "user.kiln.test");
	assert_string_equal(x, "yes");
	_cleanup_free_ char *pcap = at(snap_mount_path(got), "bin/ping");
	unsigned char cap[32];
	assert_int_equal(lgetxattr(pcap, "security.capability", cap, sizeof(cap)), 20);
	assert_int_equal(cap[5], 0x04);
	struct stat s1, s2;
	assert_true(lexists(snap_mount_path(got), "bin/tool", &s1));
	assert_true(lexists(snap_mount_path(got), "bin/tool2", &s2));
	assert_int_equal(s1.st_ino, s2.st_ino);
	snap_mount_release(TAKE_PTR(got));
	snap_store_free(ss2);
}

static void
rm_cache(struct fixture *f)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/exporter", f->root);
	struct stat st;
	assert_int_equal(stat(p, &st), 0); /* the index was written */
	_cleanup_close_ int fd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(kiln_rm_rf_at(fd, "exporter"), 0);
	assert_int_equal(stat(p, &st), -1);
}

static void
test_layer__deterministic_and_cached(void **state)
{
	struct fixture *f = *state;
	commit_step(f, f->base, "step1", change_tree);
	struct exp_layer a = export(f, "step1", NULL);
	struct exp_layer cached = export(f, "step1", NULL);
	assert_true(cached.cached);
	assert_string_equal(cached.digest, a.digest);
	assert_string_equal(cached.diff_id, a.diff_id);
	assert_int_equal(cached.size, a.size);

	rm_cache(f);
	struct exp_layer b = export(f, "step1", NULL);
	assert_false(b.cached);
	assert_string_equal(b.diff_id, a.diff_id);
	assert_string_equal(b.digest, a.digest);
	assert_int_equal(b.size, a.size);

	struct exp_layer_opts o = EXP_LAYER_OPTS_INIT;
	o.no_cache = true;
	struct exp_layer c = export(f, "step1", &o);
	assert_false(c.cached);
	assert_string_equal(c.digest, a.digest);
}

static void
old_and_new(const char *p)
{
	put(p, "new", "n", 0644, 0, 0);
	put(p, "old", "o", 0644, 0, 0);
	_cleanup_free_ char *old = at(p, "old");
	struct timespec ts[2] = {{.tv_sec = 500}, {.tv_sec = 500}};
	assert_int_equal(utimensat(AT_FDCWD, old, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void
test_layer__source_date_epoch_clamps_mtimes(void **state)
{
	struct fixture *f = *state;
	commit_step(f, f->base, "step1", old_and_new);
	struct exp_layer_opts o = EXP_LAYER_OPTS_INIT;
	o.source_date_epoch = 1000000;
	o.rewrite_timestamp = true;
	struct exp_layer clamped = export(f, "step1", &o);
	size_t n;
	struct ent *v = read_layer(f, &clamped, &n);
	assert_int_equal(find(v, n, "new")->mtime, 1000000);
	assert_int_equal(find(v, n, "old")->mtime, 500);
	for (size_t i = 0; i < n; i++)
		assert_true(v[i].mtime <= 1000000);
	ents_free(v, n);

	/* without the clamp: mtimes kept, so another layer, not the cached clamped one */
	struct exp_layer kept = export(f, "step1", NULL);
	assert_false(kept.cached);
	assert_string_not_equal(kept.diff_id, clamped.diff_id);
	v = read_layer(f, &kept, &n);
	assert_true(find(v, n, "new")->mtime > 1000000);
	ents_free(v, n);
	/* the clamped record is still there */
	struct exp_layer again = export(f, "step1", &o);
	assert_true(again.cached);
	assert_string_equal(again.digest, clamped.digest);
}

static void
test_layer__empty_diff_is_buildkits_empty_layer(void **state)
{
	struct fixture *f = *state;
	commit_step(f, f->base, "nothing", NULL);
	struct exp_layer l = export(f, "nothing", NULL);
	assert_true(l.empty);
	assert_string_equal(
	        l.digest,
	        "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1");
	assert_string_equal(
	        l.diff_id,
	        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");
	assert_int_equal(l.size, 32);
	size_t n;
	struct ent *v = read_layer(f, &l, &n); /* checks the blob against both digests */
	assert_int_equal(n, 0);
	ents_free(v, n);
}

static void
step2_change(const char *p)
{
	put(p, "two", "2", 0644, 0, 0);
}

static void
test_layer__chain_oldest_first(void **state)
{
	struct fixture *f = *state;
	commit_step(f, f->base, "step1", change_tree);
	commit_step(f, "step1", "step2", step2_change);
	struct kiln_err err = KILN_ERR_INIT;
	struct exp_layer *v = NULL;
	size_t n = 0;
	assert_int_equal(exp_chain_layers(f->ss, "step2", f->base, f->rs, NULL, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	struct exp_layer one = export(f, "step1", NULL), two = export(f, "step2", NULL);
	assert_string_equal(v[0].diff_id, one.diff_id);
	assert_string_equal(v[1].diff_id, two.diff_id);
	exp_layers_free(v, n);

	/* down to the root: the base layer too, and it is the base tar itself */
	assert_int_equal(exp_chain_layers(f->ss, "step2", NULL, f->rs, NULL, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	char base_id[KILN_DIGEST_HEX_LEN + 1];
	diff_id_of(BASE, KILN_ARRAY_SIZE(BASE), base_id);
	size_t bn;
	struct ent *be = read_layer(f, &v[0], &bn);
	assert_int_equal(bn, KILN_ARRAY_SIZE(BASE));
	assert_non_null(find(be, bn, "etc/old"));
	ents_free(be, bn);
	exp_layers_free(v, n);

	assert_int_equal(exp_chain_layers(f->ss, "step2", "step2", f->rs, NULL, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	exp_layers_free(v, n);

	assert_int_equal(exp_chain_layers(f->ss, "step1", "step2", f->rs, NULL, &v, &n, &err),
	                 -EINVAL);
	assert_err_contains(&err, "not an ancestor");
	assert_int_equal(exp_chain_layers(f->ss, "missing", NULL, f->rs, NULL, &v, &n, &err),
	                 -ENOENT);
	kiln_err_release(&err);
}

static void
many_links(const char *p)
{
	for (int i = 0; i < 80; i++) {
		_cleanup_free_ char *rel = kiln_xasprintf("links/f%02d", i);
		_cleanup_free_ char *content = kiln_xasprintf("%d", i);
		test_write_file(p, rel, content);
		_cleanup_free_ char *a = kiln_xasprintf("%s/links/f%02d", p, i);
		_cleanup_free_ char *b = kiln_xasprintf("%s/links/g%02d", p, i);
		assert_int_equal(link(a, b), 0);
	}
}

static void
test_layer__many_hard_links(void **state)
{
	struct fixture *f = *state;
	commit_step(f, f->base, "links", many_links);
	struct exp_layer l = export(f, "links", NULL);
	size_t n;
	struct ent *v = read_layer(f, &l, &n);
	for (int i = 0; i < 80; i++) {
		char fname[32], gname[32];
		snprintf(fname, sizeof(fname), "links/f%02d", i);
		snprintf(gname, sizeof(gname), "links/g%02d", i);
		const struct ent *fe = find(v, n, fname), *ge = find(v, n, gname);
		assert_non_null(fe);
		assert_non_null(ge);
		assert_null(fe->link);
		assert_non_null(ge->link);
		assert_string_equal(ge->link, fname);
	}
	ents_free(v, n);
}

/* 5 MiB that compress partly: a chunk of text (deflated), one of random bytes (stored),
 * one of base64 (Huffman only), then text and random bytes mixed in one chunk. */
static void
big_file(const char *p)
{
	size_t n = 5u << 20;
	_cleanup_free_ char *data = kiln_xmalloc(n + 1);
	uint64_t x = 88172645463325252ull;
	static const char b64[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i++) {
		/* whole chunks of text, random bytes, base64; then the two mixed */
		size_t mode = i < (3u << 20) ? (i >> 20) : 1 + (i / 4096) % 2;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (mode == 0)
			data[i] = "kiln layer text "[i % 16];
		else if (mode == 1)
			data[i] = (char)x;
		else
			data[i] = b64[x % 64];
	}
	_cleanup_free_ char *path = at(p, "big");
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
}

/* The blob decompressed (any filter libarchive knows): its sha256. */
static void
blob_diff_id(struct fixture *f, const char *digest, char out[KILN_DIGEST_HEX_LEN + 1])
{
	struct kiln_err err = KILN_ERR_INIT;
	_cleanup_close_ int fd = reg_blob_open(f->rs, digest, &err);
	assert_true(fd >= 0);
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	struct archive_entry *e;
	assert_int_equal(archive_read_open_fd(a, fd, 65536), ARCHIVE_OK);
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
	struct kiln_sha256 *sha = kiln_sha256_new();
	char buf[65536];
	la_ssize_t n;
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
		kiln_sha256_update(sha, buf, (size_t)n);
	assert_int_equal(n, 0);
	archive_read_free(a);
	struct kiln_digest d;
	kiln_sha256_final(sha, &d);
	kiln_digest_format(&d, out);
}

static void
test_layer__compressions_same_tar(void **state)
{
	struct fixture *f = *state;
	commit_step(f, f->base, "big", big_file);
	struct exp_layer_opts o = EXP_LAYER_OPTS_INIT;
	struct exp_layer gz = export(f, "big", &o);
	assert_string_equal(gz.media_type, REG_MT_OCI_LAYER_GZIP);
	o.compression = EXP_COMPRESSION_ZSTD;
	struct exp_layer zs = export(f, "big", &o);
	assert_false(zs.cached); /* the gzip record is not the zstd one */
	assert_string_equal(zs.media_type, REG_MT_OCI_LAYER_ZSTD);
	o.compression = EXP_COMPRESSION_NONE;
	struct exp_layer raw = export(f, "big", &o);
	assert_string_equal(raw.media_type, REG_MT_OCI_LAYER);
	/* one tar, three blobs, each decompressing to it */
	assert_string_equal(gz.diff_id, zs.diff_id);
	assert_string_equal(gz.diff_id, raw.diff_id);
	assert_string_equal(raw.digest, raw.diff_id);
	assert_string_not_equal(gz.digest, zs.digest);
	char got[KILN_DIGEST_HEX_LEN + 1];
	blob_diff_id(f, gz.digest, got);
	assert_string_equal(got, gz.diff_id);
	blob_diff_id(f, zs.digest, got);
	assert_string_equal(got, zs.diff_id);
	assert_true(gz.size < raw.size * 3 / 4);
	assert_true(zs.size < raw.size * 3 / 4);

	/* each compression is cached on its own; a new level is a new blob */
	o.compression = EXP_COMPRESSION_ZSTD;
	assert_true(export(f, "big", &o).cached);
	o.compression = EXP_COMPRESSION_GZIP;
	struct exp_layer again = export(f, "big", &o);
	assert_true(again.cached);
	assert_string_equal(again.digest, gz.digest);
	o.compression_level = 1;
	struct exp_layer fast = export(f, "big", &o);
	assert_false(fast.cached);
	assert_string_equal(fast.diff_id, gz.diff_id);
	assert_string_not_equal(fast.digest, gz.digest);

	/* the parallel gzip and zstd give the same bytes every time */
	o.no_cache = true;
	o.compression_level = -1;
	assert_string_equal(export(f, "big", &o).digest, gz.digest);
	o.compression = EXP_COMPRESSION_ZSTD;
	assert_string_equal(export(f, "big", &o).digest, zs.digest);
}

static void
test_layer__bad_snapshot_name(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	struct exp_layer l;
	assert_int_equal(exp_layer_from_snapshot(f->ss, "../x", f->rs, NULL, &l, &err), -EINVAL);
	assert_err_contains(&err, "bad snapshot name");
	assert_true(exp_layer_from_snapshot(f->ss, "nosuch", f->rs, NULL, &l, &err) < 0);
	assert_err_contains(&err, "nosuch");
}

static enum snap_driver overlay = SNAP_DRIVER_OVERLAY, native = SNAP_DRIVER_NATIVE;

#define BOTH(t)                                                                                    \
	cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, &overlay),                    \
	        cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, &native)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        BOTH(test_layer__entries_say_what_changed),
	        BOTH(test_layer__applies_back_to_the_same_tree),
	        BOTH(test_layer__deterministic_and_cached),
	        BOTH(test_layer__source_date_epoch_clamps_mtimes),
	        BOTH(test_layer__empty_diff_is_buildkits_empty_layer),
	        BOTH(test_layer__chain_oldest_first),
	        BOTH(test_layer__many_hard_links),
	        BOTH(test_layer__bad_snapshot_name),
	        BOTH(test_layer__compressions_same_tar),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
