/* Test helpers for the snapshot tests: build layer tars with libarchive, list trees,
 * undo mounts. Header-only (static) so each test binary stays one source file. */
#ifndef KILN_TEST_LAYER_TAR_H
#define KILN_TEST_LAYER_TAR_H

#include "testlib.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

enum { T_FILE, T_DIR, T_SYMLINK, T_HARDLINK, T_CHR, T_BLK, T_FIFO };

struct tar_ent {
	int type;
	const char *path;
	const char *data; /* file content, or symlink / hard link target */
	unsigned mode;    /* permission bits; 0 = 0644 for files, 0755 for dirs */
	unsigned uid, gid;
	unsigned maj, min;
	const char *xname; /* one xattr */
	const char *xval;
	long mtime; /* 0 = a fixed default */
};

#define TF(p, d)                                                                                   \
	{                                                                                          \
		.type = T_FILE, .path = (p), .data = (d)                                           \
	}
#define TD(p)                                                                                      \
	{                                                                                          \
		.type = T_DIR, .path = (p)                                                         \
	}
#define TL(p, t)                                                                                   \
	{                                                                                          \
		.type = T_SYMLINK, .path = (p), .data = (t)                                        \
	}
#define TH(p, t)                                                                                   \
	{                                                                                          \
		.type = T_HARDLINK, .path = (p), .data = (t)                                       \
	}
#define T_MTIME    1600000000L
#define T_MEDIA    "application/vnd.oci.image.layer.v1.tar"
#define T_MEDIA_GZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define T_MEDIA_ZS "application/vnd.oci.image.layer.v1.tar+zstd"

/* Write the entries as a pax tar (compressed with "gzip", "zstd" or NULL) into a memfd;
 * returns the fd, positioned at 0. */
static inline int
tar_build(const struct tar_ent *ents, size_t n, const char *compress)
{
	int fd = memfd_create("layer", MFD_CLOEXEC);
	assert_true(fd >= 0);
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
	if (compress && kiln_str_eq(compress, "gzip"))
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	else if (compress && kiln_str_eq(compress, "zstd"))
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		const struct tar_ent *t = &ents[i];
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, t->path);
		archive_entry_set_uid(e, t->uid);
		archive_entry_set_gid(e, t->gid);
		archive_entry_set_mtime(e, t->mtime ? t->mtime : T_MTIME, 0);
		size_t size = 0;
		switch (t->type) {
		case T_FILE:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, t->mode ? t->mode : 0644);
			size = t->data ? strlen(t->data) : 0;
			archive_entry_set_size(e, (la_int64_t)size);
			break;
		case T_DIR:
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, t->mode ? t->mode : 0755);
			break;
		case T_SYMLINK:
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_perm(e, 0777);
			archive_entry_set_symlink(e, t->data);
			break;
		case T_HARDLINK:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, t->mode ? t->mode : 0644);
			archive_entry_set_hardlink(e, t->data);
			archive_entry_set_size(e, 0);
			break;
		case T_CHR:
		case T_BLK:
			archive_entry_set_filetype(e, t->type == T_CHR ? AE_IFCHR : AE_IFBLK);
			archive_entry_set_perm(e, t->mode ? t->mode : 0600);
			archive_entry_set_rdevmajor(e, t->maj);
			archive_entry_set_rdevminor(e, t->min);
			break;
		case T_FIFO:
			archive_entry_set_filetype(e, AE_IFIFO);
			archive_entry_set_perm(e, t->mode ? t->mode : 0644);
			break;
		}
		if (t->xname)
			archive_entry_xattr_add_entry(e, t->xname, t->xval, strlen(t->xval));
		assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
		if (size)
			assert_int_equal(archive_write_data(a, t->data, size), (la_ssize_t)size);
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* The text of file dir/rel, or NULL if it cannot be read (caller frees). */
static inline char *
slurp(const char *dir, const char *rel)
{
	char *p = kiln_xasprintf("%s/%s", dir, rel);
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	int r = kiln_buf_read_file(&b, p, &err);
	kiln_err_release(&err);
	free(p);
	if (r < 0) {
		kiln_buf_release(&b);
		return NULL;
	}
	return kiln_buf_detach(&b, NULL);
}

static inline bool
lexists(const char *dir, const char *rel, struct stat *st)
{
	struct stat tmp;
	char *p = kiln_xasprintf("%s/%s", dir, rel);
	int r = lstat(p, st ? st : &tmp);
	free(p);
	return r == 0;
}

static inline char *
xattr_of(const char *dir, const char *rel, const char *name)
{
	char *p = kiln_xasprintf("%s/%s", dir, rel);
	char v[256];
	ssize_t n = lgetxattr(p, name, v, sizeof(v) - 1);
	free(p);
	if (n < 0)
		return NULL;
	return kiln_xstrndup(v, (size_t)n);
}

static inline int
snap_test_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A sorted listing of a tree: one line per entry with type, mode, owner, size or link
 * target, and content of small files; the caller frees. */
static struct kiln_strv *list_acc;
static size_t list_prefix;
static inline int
list_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (ftw->level == 0)
		return 0;
	const char *rel = path + list_prefix;
	char extra[512] = "";
	if (S_ISLNK(st->st_mode)) {
		ssize_t n = readlink(path, extra, sizeof(extra) - 1);
		extra[n < 0 ? 0 : n] = '\0';
	} else if (S_ISREG(st->st_mode)) {
		FILE *f = fopen(path, "r");
		if (f) {
			size_t n = fread(extra, 1, sizeof(extra) - 1, f);
			extra[n] = '\0';
			fclose(f);
		}
	} else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		snprintf(extra, sizeof(extra), "%u,%u", major(st->st_rdev), minor(st->st_rdev));
	}
	kiln_strv_pushf(list_acc, "%s %o %u:%u %s", rel, (unsigned)st->st_mode,
	                (unsigned)st->st_uid, (unsigned)st->st_gid, extra);
	return 0;
}

static inline char *
tree_list(const char *dir)
{
	struct kiln_strv v = KILN_STRV_INIT;
	list_acc = &v;
	list_prefix = strlen(dir) + 1;
	assert_int_equal(nftw(dir, list_one, 16, FTW_PHYS), 0);
	if (v.n > 1)
		qsort(v.v, v.n, sizeof(char *), snap_test_cmp);
	struct kiln_buf b = KILN_BUF_INIT;
	for (size_t i = 0; i < v.n; i++)
		kiln_buf_addf(&b, "%s\n", v.v[i]);
	kiln_strv_release(&v);
	return kiln_buf_detach(&b, NULL);
}

/* Whether mount point mp is dir or below it (not a sibling sharing a prefix). */
static inline bool
below(const char *mp, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(mp, dir, n) == 0 && (mp[n] == '\0' || mp[n] == '/');
}

/* Unmount everything mounted at or below dir (deepest first). */
static inline void
umount_below(const char *dir)
{
	for (int round = 0; round < 8; round++) {
		FILE *f = fopen("/proc/self/mountinfo", "r");
		assert_non_null(f);
		char line[8192];
		bool any = false;
		struct kiln_strv pts = KILN_STRV_INIT;
		while (fgets(line, sizeof(line), f)) {
			char mp[4096];
			if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && below(mp, dir))
				kiln_strv_push(&pts, mp);
		}
		fclose(f);
		for (size_t i = pts.n; i-- > 0;) {
			umount2(pts.v[i], MNT_DETACH);
			any = true;
		}
		kiln_strv_release(&pts);
		if (!any)
			return;
	}
}

/* How many mounts are at or below dir. */
static inline int
mounts_below(const char *dir)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	assert_non_null(f);
	char line[8192];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		char mp[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && below(mp, dir))
			n++;
	}
	fclose(f);
	return n;
}

#endif
