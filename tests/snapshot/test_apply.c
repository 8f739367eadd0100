/* Unit tests for snapshot/apply.c: layer tars applied to a directory keep what a layer
 * means (modes, owners, links, devices, xattrs, whiteouts) and never touch anything
 * outside the root, whatever the tar says. Run as root (CI is). */
#include "layer_tar.h"

#include "snapshot/snap_int.h"

struct fixture {
	char *dir;  /* holds root/, canary and outside/ */
	char *root; /* the snapshot being written */
	int rootfd;
};

#define CANARY "host canary\n"

static int
setup(void **state)
{
	if (geteuid() != 0) {
		print_message("snapshot tests need root\n");
		exit(77);
	}
	struct fixture *f = kiln_xcalloc(1, sizeof(*f));
	f->dir = test_tmpdir_new();
	test_write_file(f->dir, "canary", CANARY);
	test_write_file(f->dir, "outside/keep", CANARY);
	f->root = kiln_xasprintf("%s/root", f->dir);
	assert_int_equal(mkdir(f->root, 0755), 0);
	f->rootfd = open(f->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->rootfd >= 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	close(f->rootfd);
	free(f->root);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static int
apply_ents(struct fixture *f, const struct tar_ent *ents, size_t n, const char *compress,
           const char *media, enum snap_whiteouts w, struct kiln_err *err)
{
	int fd = tar_build(ents, n, compress);
	struct snap_apply_opts o = {.media_type = media, .whiteouts = w};
	int r = snap_tar_apply_at(f->rootfd, fd, &o, err);
	close(fd);
	return r;
}

#define APPLY(f, ents, w)                                                                          \
	do {                                                                                       \
		struct kiln_err _e = KILN_ERR_INIT;                                                \
		int _r = apply_ents((f), (ents), KILN_ARRAY_SIZE(ents), NULL, T_MEDIA, (w), &_e);  \
		if (_r < 0)                                                                        \
			fail_msg("apply: %s", kiln_err_format(&_e));                               \
	} while (0)

static void
assert_file(struct fixture *f, const char *rel, const char *want)
{
	_cleanup_free_ char *got = slurp(f->root, rel);
	assert_non_null(got);
	assert_string_equal(got, want);
}

static void
test_apply__files_modes_owners_times(void **state)
{
	struct fixture *f = *state;
	struct tar_ent ents[] = {
	        {.type = T_DIR, .path = "etc", .mode = 0750, .uid = 7, .gid = 8, .mtime = 1000},
	        {.type = T_FILE,
	         .path = "etc/conf",
	         .data = "a=b\n",
	         .mode = 0640,
	         .uid = 1000,
	         .gid = 2000,
	         .mtime = 2000},
	        {.type = T_FILE, .path = "usr/bin/su", .data = "#!", .mode = 04755},
	        {.type = T_FILE, .path = "./empty", .data = ""},
	};
	APPLY(f, ents, SNAP_WHITEOUTS_OVERLAY);
	struct stat st;
	assert_true(lexists(f->root, "etc", &st));
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(st.st_gid, 8);
	/* set after etc/conf was written into it */
	assert_int_equal(st.st_mtim.tv_sec, 1000);
	assert_file(f, "etc/conf", "a=b\n");
	assert_true(lexists(f->root, "etc/conf", &st));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 2000);
	assert_int_equal(st.st_mtim.tv_sec, 2000);
	/* chmod after chown: the set-uid bit survives */
	assert_true(lexists(f->root, "usr/bin/su", &st));
	assert_int_equal(st.st_mode & 07777, 04755);
	/* a parent missing from the tar is created */
	assert_true(lexists(f->root, "usr/bin", &st));
	assert_true(S_ISDIR(st.st_mode));
	assert_file(f, "empty", "");
}

static void
test_apply__links_devices_fifos(void **state)
{
	struct fixture *f = *state;
	struct tar_ent ents[] = {
	        TF("bin/busybox", "elf"),
	        TH("bin/sh", "bin/busybox"),
	        TH("/bin/ls", "./bin/busybox"),
	        TL("bin/ash", "busybox"),
	        TL("abs", "/etc/passwd"),
	        {.type = T_CHR, .path = "dev/null", .maj = 1, .min = 3, .mode = 0666},
	        {.type = T_BLK, .path = "dev/loop0", .maj = 7, .min = 0},
	        {.type = T_FIFO, .path = "run/fifo", .mode = 0620},
	};
	APPLY(f, ents, SNAP_WHITEOUTS_OVERLAY);
	struct stat a, b, c;
	assert_true(lexists(f->root, "bin/busybox", &a));
	assert_true(lexists(f->root, "bin/sh", &b));
	assert_true(lexists(f->root, "bin/ls", &c));
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_ino, c.st_ino);
	assert_int_equal(a.st_nlink, 3);
	char target[64] = {0};
	_cleanup_free_ char *p = kiln_xasprintf("%s/bin/ash", f->root);
	assert_int_equal(readlink(p, target, sizeof(target) - 1), 7);
	assert_string_equal(target, "busybox");
	_cleanup_free_ char *p2 = kiln_xasprintf("%s/abs", f->root);
	memset(target, 0, sizeof(target));
	assert_int_equal(readlink(p2, target, sizeof(target) - 1), 11);
	assert_string_equal(target, "/etc/passwd");
	assert_true(lexists(f->root, "dev/null", &a));
	assert_true(S_ISCHR(a.st_mode));
	assert_int_equal(major(a.st_rdev), 1);
	assert_int_equal(minor(a.st_rdev), 3);
	assert_int_equal(a.st_mode & 07777, 0666);
	assert_true(lexists(f->root, "dev/loop0", &a));
	assert_true(S_ISBLK(a.st_mode));
	assert_int_equal(major(a.st_rdev), 7);
	assert_true(lexists(f->root, "run/fifo", &a));
	assert_true(S_ISFIFO(a.st_mode));
	assert_int_equal(a.st_mode & 07777, 0620);
}

static void
test_apply__xattrs_kept_overlay_ones_dropped(void **state)
{
	struct fixture *f = *state;
	/* VFS_CAP_REVISION_2, cap_net_bind_service effective+permitted */
	static const char cap[] = "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	                          "\x00\x00\x00\x00\x00";
	struct tar_ent ents[] = {
	        {.type = T_FILE,
	         .path = "ping",
	         .data = "x",
	         .mode = 0755,
	         .xname = "user.kiln",
	         .xval = "hello"},
	        {.type = T_DIR, .path = "forged", .xname = "trusted.overlay.opaque", .xval = "y"},
	        {.type = T_DIR,
	         .path = "redir",
	         .xname = "trusted.overlay.redirect",
	         .xval = "/etc"},
	        {.type = T_FILE,
	         .path = "uovl",
	         .data = "",
	         .xname = "user.overlay.whiteout",
	         .xval = "y"},
	};
	APPLY(f, ents, SNAP_WHITEOUTS_OVERLAY);
	_cleanup_free_ char *v = xattr_of(f->root, "ping", "user.kiln");
	assert_non_null(v);
	assert_string_equal(v, "hello");
	assert_null(xattr_of(f->root, "forged", "trusted.overlay.opaque"));
	assert_null(xattr_of(f->root, "redir", "trusted.overlay.redirect"));
	assert_null(xattr_of(f->root, "uovl", "user.overlay.whiteout"));

	/* security.capability is binary: write it through libarchive by hand. */
	int fd = memfd_create("cap", MFD_CLOEXEC);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax(a);
	archive_write_open_fd(a, fd);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "bin/ping");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0755);
	archive_entry_set_uid(e, 0);
	archive_entry_set_size(e, 0);
	archive_entry_xattr_add_entry(e, "security.capability", cap, sizeof(cap) - 1);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
	lseek(fd, 0, SEEK_SET);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(snap_tar_apply_at(f->rootfd, fd, NULL, &err), 0);
	close(fd);
	_cleanup_free_ char *path = kiln_xasprintf("%s/bin/ping", f->root);
	char got[64];
	ssize_t n = lgetxattr(path, "security.capability", got, sizeof(got));
	assert_int_equal(n, sizeof(cap) - 1);
	assert_memory_equal(got, cap, sizeof(cap) - 1);
}

static void
test_apply__gzip_zstd_and_plain(void **state)
{
	struct fixture *f = *state;
	static const char *const comp[] = {NULL, "gzip", "zstd", "gzip", NULL};
	static const char *const media[] = {T_MEDIA, T_MEDIA_GZ, T_MEDIA_ZS, NULL,
	                                    "application/vnd.docker.image.rootfs.diff.tar"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(comp); i++) {
		_cleanup_free_ char *name = kiln_xasprintf("f%zu", i);
		struct tar_ent ents[] = {TF(name, "content")};
		struct kiln_err err = KILN_ERR_INIT;
		assert_int_equal(
		        apply_ents(f, ents, 1, comp[i], media[i], SNAP_WHITEOUTS_OVERLAY, &err), 0);
		assert_file(f, name, "content");
	}
	/* The diff_id is the digest of the uncompressed tar, whatever the compression. */
	struct tar_ent two[] = {TF("x", "1"), TD("d"), TF("d/y", "2")};
	struct kiln_digest got[3];
	for (size_t i = 0; i < 3; i++) {
		int fd = tar_build(two, KILN_ARRAY_SIZE(two), comp[i]);
		struct snap_apply_opts o = {.media_type = media[i], .ret_diff_id = &got[i]};
		struct kiln_err err = KILN_ERR_INIT;
		assert_int_equal(snap_tar_apply_at(f->rootfd, fd, &o, &err), 0);
		close(fd);
	}
	int plain = tar_build(two, KILN_ARRAY_SIZE(two), NULL);
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_err berr = KILN_ERR_INIT;
	assert_int_equal(kiln_buf_read_fd(&b, plain, &berr), 0);
	close(plain);
	struct kiln_digest want;
	kiln_sha256_buf(b.buf, b.len, &want);
	kiln_buf_release(&b);
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(got[i].bytes, want.bytes, sizeof(want.bytes));
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_digest_format(&want, hex);
	int zfd = tar_build(two, KILN_ARRAY_SIZE(two), "zstd");
	struct snap_apply_opts ok = {.media_type = T_MEDIA_ZS, .diff_id = hex};
	assert_int_equal(snap_tar_apply_at(f->rootfd, zfd, &ok, &berr), 0);
	close(zfd);

	/* A gzip layer declared as plain tar is not read as one. */
	struct tar_ent ents[] = {TF("x", "y")};
	struct kiln_err err = KILN_ERR_INIT;
	assert_true(apply_ents(f, ents, 1, "gzip", T_MEDIA, SNAP_WHITEOUTS_OVERLAY, &err) < 0);
	assert_err_contains(&err, "open layer: Unrecognized archive format");
	assert_int_equal(
	        apply_ents(f, ents, 1, NULL, "application/x-rar", SNAP_WHITEOUTS_OVERLAY, &err),
	        -EINVAL);
	assert_err_contains(&err, "unsupported layer media type `application/x-rar`");
}

static void
test_apply__overlay_whiteouts_and_opaque(void **state)
{
	struct fixture *f = *state;
	struct tar_ent ents[] = {
	        TF(".wh.gone", ""),         TD("etc"),
	        TF("etc/.wh..wh..opq", ""), TF("etc/new", "n"),
	        TF("var/lib/.wh.db", ""),   TF(".wh..wh.plnk", ""),
	};
	APPLY(f, ents, SNAP_WHITEOUTS_OVERLAY);
	struct stat st;
	assert_true(lexists(f->root, "gone", &st));
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	assert_true(lexists(f->root, "var/lib/db", &st));
	assert_true(S_ISCHR(st.st_mode));
	_cleanup_free_ char *v = xattr_of(f->root, "etc", "trusted.overlay.opaque");
	assert_non_null(v);
	assert_string_equal(v, "y");
	assert_file(f, "etc/new", "n");
	assert_false(lexists(f->root, ".wh.gone", NULL));
	assert_false(lexists(f->root, "etc/.wh..wh..opq", NULL));
	assert_false(lexists(f->root, ".wh..wh.plnk", NULL));
}

static void
test_apply__delete_whiteouts_on_a_copy(void **state)
{
	struct fixture *f = *state;
	struct tar_ent lower[] = {
	        TF("a", "a"),  TF("keep", "k"),         TD("etc"),  TF("etc/old", "o"),
	        TD("etc/sub"), TF("etc/sub/deep", "d"), TD("tree"), TF("tree/x", "x"),
	};
	APPLY(f, lower, SNAP_WHITEOUTS_DELETE);
	struct tar_ent upper[] = {
	        TF(".wh.a", ""),
	        TF(".wh.tree", ""),
	        TD("etc"),
	        TF("etc/new", "n"),
	        TF("etc/.wh..wh..opq", ""),
	        TF("etc/later", "l"),
	        TF(".wh.nothing-there", ""),
	};
	APPLY(f, upper, SNAP_WHITEOUTS_DELETE);
	assert_false(lexists(f->root, "a", NULL));
	assert_false(lexists(f->root, "tree", NULL));
	assert_file(f, "keep", "k");
	/* opaque: the lower contents go, what this layer wrote stays */
	assert_false(lexists(f->root, "etc/old", NULL));
	assert_false(lexists(f->root, "etc/sub", NULL));
	assert_file(f, "etc/new", "n");
	assert_file(f, "etc/later", "l");
	assert_false(lexists(f->root, "nothing-there", NULL));
}

static void
test_apply__replaces_entries_of_another_type(void **state)
{
	struct fixture *f = *state;
	struct tar_ent one[] = {TD("x"), TF("x/inner", "i"), TF("y", "file"), TD("z"),
	                        TF("z/keep", "k")};
	APPLY(f, one, SNAP_WHITEOUTS_DELETE);
	struct tar_ent two[] = {TF("x", "now a file"),
	                        TD("y"),
	                        TF("y/in", "in"),
	                        {.type = T_DIR, .path = "z", .mode = 0700}};
	APPLY(f, two, SNAP_WHITEOUTS_DELETE);
	assert_file(f, "x", "now a file");
	assert_file(f, "y/in", "in");
	/* a directory over a directory merges and takes the new mode */
	assert_file(f, "z/keep", "k");
	struct stat st;
	assert_true(lexists(f->root, "z", &st));
	assert_int_equal(st.st_mode & 07777, 0700);
}

/* ---- hostile layers ----
 *
 * Each case is applied in both whiteout modes. Afterwards the host canary files are
 * byte-identical, nothing new appeared next to the root, and the case either failed with
 * `err` in the message or (err == NULL) succeeded with its effect neutralised inside the
 * root: `inside` (if set) holds "pwned". "@" in a name stands for the test directory,
 * which holds the root, the canary and outside/keep.
 */
struct hostile {
	const char *name;
	struct tar_ent ents[4];
	const char *err;
	const char *inside;
};

static const struct hostile hostile[] = {
        {"dotdot file", {TF("../canary", "pwned")}, NULL, "canary"},
        {"deep dotdot", {TF("a/../../../../canary", "pwned")}, NULL, "canary"},
        {"absolute name", {TF("@/canary", "pwned")}, NULL, "@/canary"},
        {"absolute symlink parent",
         {TL("evil", "@"), TF("evil/canary", "pwned")},
         NULL,
         "@/canary"},
        {"relative symlink parent",
         {TL("evil", "../.."), TF("evil/canary", "pwned")},
         NULL,
         "canary"},
        {"nested relative symlink",
         {TD("d"), TL("d/evil", "../../../../"), TF("d/evil/canary", "pwned")},
         NULL,
         "canary"},
        {"file over symlink", {TL("link", "@/canary"), TF("link", "pwned")}, NULL, "link"},
        {"dir over symlink",
         {TL("sub", "@/outside"), TD("sub"), TF("sub/keep", "pwned")},
         NULL,
         "sub/keep"},
        {"symlink to dir, then file below",
         {TL("sub", "../outside"), TF("sub/keep", "pwned")},
         NULL,
         "outside/keep"},
        {"symlink loop in a parent",
         {TL("a", "b"), TL("b", "a"), TF("a/x", "pwned")},
         "Too many levels of symbolic links",
         NULL},
        {"hardlink dotdot", {TH("hl", "../canary")}, "not found in the layer", NULL},
        {"hardlink absolute", {TH("hl", "@/canary")}, "not found in the layer", NULL},
        {"hardlink via symlink",
         {TL("evil", "@"), TH("hl", "evil/canary")},
         "not found in the layer",
         NULL},
        {"hardlink to symlink, then write",
         {TL("s", "@/canary"), TH("h", "s"), TF("h", "pwned")},
         NULL,
         "h"},
        {"hardlink to directory", {TD("d"), TH("h", "d")}, "to directory", NULL},
        {"whiteout dotdot", {TF("../.wh.canary", "")}, NULL, NULL},
        {"whiteout of ..", {TF("sub/.wh...", "")}, "invalid whiteout", NULL},
        {"whiteout of .", {TF(".wh..", "")}, "invalid whiteout", NULL},
        {"whiteout via absolute symlink", {TL("evil", "@"), TF("evil/.wh.canary", "")}, NULL, NULL},
        {"whiteout via relative symlink",
         {TL("o", "../outside"), TF("o/.wh.keep", "")},
         NULL,
         NULL},
        {"opaque via symlink", {TL("o", "@/outside"), TF("o/.wh..wh..opq", "")}, NULL, NULL},
        {"opaque dotdot", {TF("../../.wh..wh..opq", "")}, NULL, NULL},
        {"forged overlay xattr",
         {{.type = T_DIR, .path = "x", .xname = "trusted.overlay.opaque", .xval = "y"},
          {.type = T_FILE,
           .path = "w",
           .data = "pwned",
           .xname = "trusted.overlay.whiteout",
           .xval = "y"}},
         NULL,
         "w"},
};

static char *
at_dir(const char *s, const char *dir)
{
	if (!s)
		return NULL;
	struct kiln_buf b = KILN_BUF_INIT;
	for (; *s; s++)
		if (*s == '@')
			kiln_buf_addstr(&b, dir);
		else
			kiln_buf_addch(&b, *s);
	return kiln_buf_detach(&b, NULL);
}

static size_t
count_entries(const char *path)
{
	DIR *d = opendir(path);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (!kiln_str_eq(de->d_name, ".") && !kiln_str_eq(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void
check_host(struct fixture *f, const char *case_name)
{
	_cleanup_free_ char *c = slurp(f->dir, "canary");
	_cleanup_free_ char *k = slurp(f->dir, "outside/keep");
	if (!c || !k || !kiln_str_eq(c, CANARY) || !kiln_str_eq(k, CANARY))
		fail_msg("%s: a host canary changed", case_name);
	if (count_entries(f->dir) != 3)
		fail_msg("%s: something appeared next to the root", case_name);
	_cleanup_free_ char *outside = kiln_xasprintf("%s/outside", f->dir);
	if (count_entries(outside) != 1)
		fail_msg("%s: something appeared in outside/", case_name);
}

static void
run_hostile(struct fixture *f, const struct hostile *h, enum snap_whiteouts w)
{
	struct tar_ent ents[4];
	char *owned[8] = {0};
	size_t n = 0, no = 0;
	for (; n < KILN_ARRAY_SIZE(h->ents) && h->ents[n].path; n++) {
		ents[n] = h->ents[n];
		ents[n].path = owned[no++] = at_dir(h->ents[n].path, f->dir);
		if (h->ents[n].type == T_SYMLINK || h->ents[n].type == T_HARDLINK)
			ents[n].data = owned[no++] = at_dir(h->ents[n].data, f->dir);
	}
	const char *mode = w == SNAP_WHITEOUTS_OVERLAY ? "overlay" : "delete";
	struct kiln_err err = KILN_ERR_INIT;
	int r = apply_ents(f, ents, n, NULL, T_MEDIA, w, &err);
	if (h->err) {
		if (r >= 0)
			fail_msg("%s (%s): applied, want an error", h->name, mode);
		_cleanup_free_ char *msg = kiln_err_format(&err);
		if (!strstr(msg, h->err))
			fail_msg("%s (%s): error `%s` lacks `%s`", h->name, mode, msg, h->err);
	} else if (r < 0) {
		fail_msg("%s (%s): %s", h->name, mode, kiln_err_format(&err));
	}
	kiln_err_release(&err);
	check_host(f, h->name);
	if (h->inside) {
		_cleanup_free_ char *rel = at_dir(h->inside, f->dir);
		_cleanup_free_ char *got = slurp(f->root, rel);
		if (!got || !kiln_str_eq(got, "pwned"))
			fail_msg("%s (%s): `%s` not written inside the root", h->name, mode, rel);
	}
	if (kiln_str_eq(h->name, "forged overlay xattr")) {
		assert_null(xattr_of(f->root, "x", "trusted.overlay.opaque"));
		assert_null(xattr_of(f->root, "w", "trusted.overlay.whiteout"));
	}
	for (size_t i = 0; i < no; i++)
		free(owned[i]);
	/* a fresh root for the next case */
	_cleanup_close_ int fd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(kiln_rm_children(fd), 0);
}

static void
test_apply__hostile_layers_stay_inside(void **state)
{
	struct fixture *f = *state;
	for (size_t i = 0; i < KILN_ARRAY_SIZE(hostile); i++) {
		run_hostile(f, &hostile[i], SNAP_WHITEOUTS_OVERLAY);
		run_hostile(f, &hostile[i], SNAP_WHITEOUTS_DELETE);
	}
}

static void
test_apply__hostile_over_existing_tree(void **state)
{
	/* The native driver applies onto a copy: deletes must stay inside it too. */
	struct fixture *f = *state;
	struct tar_ent base[] = {TF("canary", "inner"), TD("outside"), TF("outside/keep", "k")};
	APPLY(f, base, SNAP_WHITEOUTS_DELETE);
	_cleanup_free_ char *abs_wh = kiln_xasprintf("%s/.wh.canary", f->dir);
	struct tar_ent evil[] = {
	        TF("../.wh.canary", ""),
	        TF(abs_wh, ""),
	        TL("o", "../../outside"),
	        TF("o/.wh..wh..opq", ""),
	};
	APPLY(f, evil, SNAP_WHITEOUTS_DELETE);
	check_host(f, "whiteouts over an existing tree");
	/* neutralised inside: the root's own canary and outside/ contents are gone */
	assert_false(lexists(f->root, "canary", NULL));
	assert_false(lexists(f->root, "outside/keep", NULL));
	assert_true(lexists(f->root, "outside", NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_apply__files_modes_owners_times, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_apply__links_devices_fifos, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_apply__xattrs_kept_overlay_ones_dropped, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_apply__gzip_zstd_and_plain, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_apply__overlay_whiteouts_and_opaque, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_apply__delete_whiteouts_on_a_copy, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_apply__replaces_entries_of_another_type, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_apply__hostile_layers_stay_inside, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_apply__hostile_over_existing_tree, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
