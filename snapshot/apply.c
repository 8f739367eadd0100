/*
 * Applying a layer tar to a directory, as containerd's archive.Apply does, but with every
 * path resolved inside a root fd.
 *
 * A layer is hostile input. The rules, and containerd's choice behind each:
 * - Entry names are cleaned as if rooted at "/", so "../x" and "/x" land at <root>/x
 *   (containerd joins names onto "/" too): neutralised, not rejected.
 * - Parent directories are resolved with kiln_path_mkdirat_in_root: a symlink met on the
 *   way resolves inside the root, whether absolute or relative (containerd's
 *   fs.RootPath): neutralised.
 * - The entry itself is never followed: an existing non-directory at the name is
 *   unlinked and the new entry created with O_EXCL | O_NOFOLLOW, so a planted symlink is
 *   replaced, not written through.
 * - Hard link targets are resolved inside the root the same way and linked without
 *   following the last component; a missing target is an error (as in containerd).
 * - Whiteouts and opaque markers resolve their directory the same way, so they delete
 *   (native) or mark (overlay) only inside the root; where the directory is missing,
 *   there is nothing to hide (native) and it is created (overlay).
 * - A whiteout of "." or ".." (".wh..", ".wh...") is rejected: it names no entry (where
 *   containerd would join ".." and remove the parent directory).
 * - trusted.overlay.* and user.overlay.* xattrs from the tar are dropped: they would
 *   let a layer forge overlay whiteouts, opaque dirs or redirects.
 * - Symlink entries may point anywhere: their targets are data, never followed here.
 * - A symlink loop in a parent is an error (ELOOP), as the kernel would say.
 * tests/snapshot/test_apply.c holds one hostile case per rule.
 * Attribute order matters: chown clears set-id bits and capabilities, so chown, then
 * chmod, then xattrs, then times; directory times are set last, after their children.
 */
#include "snap_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static void
archive_readp(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
#define _cleanup_archive_read_ _cleanup_(archive_readp)

struct dir_time {
	char *path;
	struct timespec ts[2];
};

struct applier {
	int rootfd;
	enum snap_whiteouts whiteouts;
	struct archive *a;
	struct snap_strset created; /* paths this layer made (for DELETE-mode opaque dirs) */
	struct dir_time *dirs;
	size_t ndirs, dirs_alloc;
	struct kiln_err *err;
};

static int
setup_filters(struct archive *a, const char *media_type, struct kiln_err *err)
{
	if (!media_type) {
		archive_read_support_filter_gzip(a);
		archive_read_support_filter_zstd(a);
		archive_read_support_filter_none(a);
		return 0;
	}
	/* Media types: OCI ".tar", ".tar+gzip", ".tar+zstd" (and the non-distributable
	 * variants), Docker's "rootfs.diff.tar" and "rootfs.diff.tar.gzip". */
	if (kiln_str_has_suffix(media_type, "+gzip") || kiln_str_has_suffix(media_type, ".gzip"))
		archive_read_support_filter_gzip(a);
	else if (kiln_str_has_suffix(media_type, "+zstd"))
		archive_read_support_filter_zstd(a);
	else if (kiln_str_has_suffix(media_type, ".tar"))
		archive_read_support_filter_none(a);
	else
		return kiln_err_invalid(err, "unsupported layer media type `%s`", media_type);
	return 0;
}

/* Split a cleaned relative path into its parent ("" at the top) and base name. */
static void
split(const char *rel, char **parent, const char **base)
{
	const char *slash = strrchr(rel, '/');
	if (!slash) {
		*parent = kiln_xstrdup(".");
		*base = rel;
	} else {
		*parent = kiln_xstrndup(rel, (size_t)(slash - rel));
		*base = slash + 1;
	}
}

/* The entry name, cleaned as if rooted at "/", without the leading "/"; "" for the
 * root itself. */
static char *
clean_name(const char *name)
{
	_cleanup_free_ char *rooted = kiln_xasprintf("/%s", name);
	_cleanup_free_ char *clean = kiln_path_clean(rooted);
	return kiln_xstrdup(clean + 1);
}

static int
open_parent(struct applier *ap, const char *parent, bool create)
{
	struct kiln_err e = KILN_ERR_INIT;
	int fd = create ? kiln_path_mkdirat_in_root(ap->rootfd, parent, 0755, &e)
	                : kiln_path_openat_in_root(ap->rootfd, parent, O_RDONLY | O_DIRECTORY, 0,
	                                           &e);
	if (fd < 0) {
		if (fd == -ENOENT && !create) {
			kiln_err_release(&e);
			return fd;
		}
		kiln_err_release(ap->err);
		*ap->err = e;
	}
	return fd;
}

/* DELETE mode, `.wh..wh..opq` in dir `rel`: remove what the lower layers had in it. */
static int
remove_lower(struct applier *ap, int dirfd, const char *rel)
{
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	int r = kiln_dir_names(dirfd, &names);
	if (r < 0)
		return kiln_err_set(ap->err, -r, "list `%s`", rel);
	for (size_t i = 0; i < names.n; i++) {
		_cleanup_free_ char *child =
		        *rel ? kiln_xasprintf("%s/%s", rel, names.v[i]) : kiln_xstrdup(names.v[i]);
		if (!snap_strset_has(&ap->created, child)) {
			r = kiln_rm_rf_at(dirfd, names.v[i]);
			if (r < 0)
				return kiln_err_set(ap->err, -r, "remove `%s`", child);
			continue;
		}
		struct stat st;
		if (fstatat(dirfd, names.v[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode)) {
			/* A directory this layer re-declared over a lower one: its old
			 * children are lower contents too. */
			_cleanup_close_ int fd = openat(
			        dirfd, names.v[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return kiln_err_set(ap->err, errno, "open `%s`", child);
			r = remove_lower(ap, fd, child);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int
apply_whiteout(struct applier *ap, struct archive_entry *e, const char *rel, const char *parent,
               const char *base)
{
	const char *display = kiln_str_eq(parent, ".") ? "" : parent;
	if (kiln_str_eq(base, SNAP_WH_OPAQUE)) {
		_cleanup_close_ int dfd =
		        open_parent(ap, parent, ap->whiteouts == SNAP_WHITEOUTS_OVERLAY);
		if (dfd == -ENOENT)
			return 0; /* nothing below to hide */
		if (dfd < 0)
			return kiln_err_wrap(ap->err, "opaque directory `%s`", rel);
		if (ap->whiteouts == SNAP_WHITEOUTS_DELETE)
			return remove_lower(ap, dfd, display);
		if (fsetxattr(dfd, SNAP_OPAQUE_XATTR, "y", 1, 0) < 0)
			return kiln_err_set(ap->err, errno, "mark `%s` opaque", display);
		return 0;
	}
	if (kiln_str_has_prefix(base, SNAP_WH_META))
		return 0; /* aufs bookkeeping (.wh..wh.plnk etc.): not content */
	const char *victim = base + strlen(SNAP_WH_PREFIX);
	if (!*victim || kiln_str_eq(victim, ".") || kiln_str_eq(victim, ".."))
		return kiln_err_invalid(ap->err, "invalid whiteout `%s` in layer",
		                        archive_entry_pathname(e));
	_cleanup_free_ char *vrel =
	        *display ? kiln_xasprintf("%s/%s", display, victim) : kiln_xstrdup(victim);
	_cleanup_close_ int dfd = open_parent(ap, parent, ap->whiteouts == SNAP_WHITEOUTS_OVERLAY);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return kiln_err_wrap(ap->err, "whiteout `%s`", rel);
	int r = kiln_rm_rf_at(dfd, victim);
	if (r < 0)
		return kiln_err_set(ap->err, -r, "whiteout: remove `%s`", vrel);
	if (ap->whiteouts == SNAP_WHITEOUTS_DELETE)
		return 0;
	if (mknodat(dfd, victim, S_IFCHR, makedev(0, 0)) < 0)
		return kiln_err_set(ap->err, errno, "whiteout `%s`", vrel);
	if (fchownat(dfd, victim, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
	             AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_err_set(ap->err, errno, "chown whiteout `%s`", vrel);
	snap_strset_add(&ap->created, vrel);
	return 0;
}

static bool
xattr_dropped(const char *name)
{
	return kiln_str_has_prefix(name, "trusted.overlay.") ||
	       kiln_str_has_prefix(name, "user.overlay.");
}

static int
write_data(struct applier *ap, int fd, const char *rel)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	for (;;) {
		int r = archive_read_data_block(ap->a, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return kiln_err_set(ap->err, EIO, "read `%s` from layer: %s", rel,
			                    archive_error_string(ap->a));
		for (size_t done = 0; done < size;) {
			ssize_t w = pwrite(fd, (const char *)buf + done, size - done,
			                   (off_t)off + (off_t)done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return kiln_err_set(ap->err, errno, "write `%s`", rel);
			done += (size_t)w;
		}
	}
	return 0;
}

static int
set_meta(struct applier *ap, struct archive_entry *e, int dfd, const char *base, int fd,
         mode_t type, const char *rel)
{
	if (fchownat(dfd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
	             AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_err_set(ap->err, errno, "chown `%s`", rel);
	mode_t mode = archive_entry_perm(e) & 07777;
	if (type != S_IFLNK) {
		int r = fd >= 0 ? fchmod(fd, mode) : fchmodat(dfd, base, mode, 0);
		if (r < 0)
			return kiln_err_set(ap->err, errno, "chmod `%s`", rel);
	}
	struct snap_fdpath p;
	snap_fdpath(&p, dfd, base);
	const char *xname;
	const void *xval;
	size_t xsize;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &xname, &xval, &xsize) == ARCHIVE_OK) {
		if (xattr_dropped(xname))
			continue;
		if (lsetxattr(p.s, xname, xval, xsize, 0) == 0 || errno == ENOTSUP)
			continue;
		/* The kernel allows no user.* xattrs on symlinks; they cannot matter there. */
		if (errno == EPERM && type == S_IFLNK && kiln_str_has_prefix(xname, "user."))
			continue;
		return kiln_err_set(ap->err, errno, "set xattr %s on `%s`", xname, rel);
	}
	struct timespec ts[2] = {
	        {.tv_sec = archive_entry_atime_is_set(e) ? archive_entry_atime(e)
	                                                 : archive_entry_mtime(e),
	         .tv_nsec = archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e)
	                                                  : archive_entry_mtime_nsec(e)},
	        {.tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e)},
	};
	if (type == S_IFDIR) {
		KILN_GROW(ap->dirs, ap->dirs_alloc, ap->ndirs + 1);
		ap->dirs[ap->ndirs++] =
		        (struct dir_time){.path = kiln_xstrdup(rel), .ts = {ts[0], ts[1]}};
		return 0;
	}
	if (utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_err_set(ap->err, errno, "set times of `%s`", rel);
	return 0;
}

static int
apply_hardlink(struct applier *ap, const char *target, int dfd, const char *base, const char *rel)
{
	_cleanup_free_ char *trel = clean_name(target);
	if (!*trel)
		return kiln_err_invalid(ap->err, "hard link `%s` to the root directory", rel);
	_cleanup_free_ char *tparent = NULL;
	const char *tbase;
	split(trel, &tparent, &tbase);
	struct kiln_err e = KILN_ERR_INIT;
	_cleanup_close_ int tfd =
	        kiln_path_openat_in_root(ap->rootfd, tparent, O_PATH | O_DIRECTORY, 0, &e);
	kiln_err_release(&e);
	struct stat st;
	if (tfd < 0 || fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_err_set(ap->err, tfd < 0 ? -tfd : errno,
		                    "hard link `%s`: target `%s` not found in the layer", rel,
		                    target);
	if (S_ISDIR(st.st_mode))
		return kiln_err_invalid(ap->err, "hard link `%s` to directory `%s`", rel, target);
	if (linkat(tfd, tbase, dfd, base, 0) < 0)
		return kiln_err_set(ap->err, errno, "hard link `%s` to `%s`", rel, target);
	return 0;
}

static int
apply_entry(struct applier *ap, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	if (!name)
		return kiln_err_invalid(ap->err, "layer entry without a name");
	_cleanup_free_ char *rel = clean_name(name);
	if (!*rel)
		return 0; /* "./": the root keeps the store's attributes */
	_cleanup_free_ char *parent = NULL;
	const char *base;
	split(rel, &parent, &base);
	if (kiln_str_has_prefix(base, SNAP_WH_PREFIX))
		return apply_whiteout(ap, e, rel, parent, base);

	_cleanup_close_ int dfd = open_parent(ap, parent, true);
	if (dfd < 0)
		return kiln_err_wrap(ap->err, "layer entry `%s`", rel);

	const char *hardlink = archive_entry_hardlink(e);
	mode_t type = hardlink ? 0 : archive_entry_filetype(e);
	struct stat st;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* Replace anything but a directory meeting a directory, which keeps its
		 * contents and takes the new attributes. */
		if (!(type == S_IFDIR && S_ISDIR(st.st_mode))) {
			int r = kiln_rm_rf_at(dfd, base);
			if (r < 0)
				return kiln_err_set(ap->err, -r, "replace `%s`", rel);
		}
	} else if (errno != ENOENT) {
		return kiln_err_set(ap->err, errno, "stat `%s`", rel);
	}
	snap_strset_add(&ap->created, rel);

	if (hardlink)
		return apply_hardlink(ap, hardlink, dfd, base, rel);

	_cleanup_close_ int fd = -1;
	switch (type) {
	case S_IFDIR:
		if (mkdirat(dfd, base, 0700) < 0 && errno != EEXIST)
			return kiln_err_set(ap->err, errno, "mkdir `%s`", rel);
		fd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return kiln_err_set(ap->err, errno, "open `%s`", rel);
		break;
	case S_IFREG: {
		fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return kiln_err_set(ap->err, errno, "create `%s`", rel);
		int r = write_data(ap, fd, rel);
		if (r < 0)
			return r;
		if (ftruncate(fd, (off_t)archive_entry_size(e)) < 0)
			return kiln_err_set(ap->err, errno, "truncate `%s`", rel);
		break;
	}
	case S_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (!target)
			return kiln_err_invalid(ap->err, "symlink `%s` without a target", rel);
		if (symlinkat(target, dfd, base) < 0)
			return kiln_err_set(ap->err, errno, "symlink `%s`", rel);
		break;
	}
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO: {
		dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
		if (mknodat(dfd, base, type, type == S_IFIFO ? 0 : dev) < 0)
			return kiln_err_set(ap->err, errno, "mknod `%s`", rel);
		break;
	}
	default:
		return kiln_err_invalid(ap->err, "layer entry `%s` has unsupported type %#o", rel,
		                        (unsigned)type);
	}
	return set_meta(ap, e, dfd, base, fd, type, rel);
}

/* Directory times, set after everything inside them was written. */
static int
finish_dirs(struct applier *ap)
{
	for (size_t i = ap->ndirs; i-- > 0;) {
		struct dir_time *d = &ap->dirs[i];
		struct kiln_err e = KILN_ERR_INIT;
		_cleanup_close_ int fd = kiln_path_openat_in_root(
		        ap->rootfd, d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, &e);
		kiln_err_release(&e);
		if (fd < 0)
			continue; /* deleted or replaced later in the layer */
		if (futimens(fd, d->ts) < 0)
			return kiln_err_set(ap->err, errno, "set times of `%s`", d->path);
	}
	return 0;
}

/*
 * The layer is read twice over: a "raw" libarchive reader undoes the compression, and
 * the tar reader takes its output through tee_read, which hashes every uncompressed
 * byte. That digest is the layer's diff_id, which the image config names: checking it
 * stops a layer from being stored (and shared) under a diff_id it does not have.
 */
struct tee {
	struct archive *raw;
	struct kiln_sha256 *sha;
};

static la_ssize_t
tee_read(struct archive *a, void *data, const void **buf)
{
	struct tee *t = data;
	size_t size;
	la_int64_t off;
	int r = archive_read_data_block(t->raw, buf, &size, &off);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r < ARCHIVE_WARN) {
		archive_set_error(a, EIO, "%s", archive_error_string(t->raw));
		return -1;
	}
	kiln_sha256_update(t->sha, *buf, size);
	return (la_ssize_t)size;
}

/* Hash what the tar reader left unread (the zero blocks after the end marker). */
static int
tee_drain(struct tee *t, struct kiln_err *err)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	for (;;) {
		int r = archive_read_data_block(t->raw, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return kiln_err_set(err, EIO, "read layer: %s",
			                    archive_error_string(t->raw));
		kiln_sha256_update(t->sha, buf, size);
	}
}

static void
sha256p(struct kiln_sha256 **s)
{
	kiln_sha256_free(*s);
}

int
snap_tar_apply_at(int rootfd, int tar_fd, const struct snap_apply_opts *opts, struct kiln_err *err)
{
	struct snap_apply_opts defaults = SNAP_APPLY_OPTS_INIT;
	if (!opts)
		opts = &defaults;
	struct kiln_digest want;
	if (opts->diff_id && kiln_digest_parse(opts->diff_id, &want, err) < 0)
		return kiln_err_wrap(err, "layer diff_id");
	_cleanup_archive_read_ struct archive *raw = archive_read_new();
	_cleanup_archive_read_ struct archive *a = archive_read_new();
	_cleanup_(sha256p) struct kiln_sha256 *sha = kiln_sha256_new();
	if (!raw || !a)
		return kiln_err_set(err, ENOMEM, "archive_read_new");
	int r = setup_filters(raw, opts->media_type, err);
	if (r < 0)
		return r;
	archive_read_support_format_raw(raw);
	struct archive_entry *e;
	if (archive_read_open_fd(raw, tar_fd, 65536) != ARCHIVE_OK ||
	    archive_read_next_header(raw, &e) != ARCHIVE_OK)
		return kiln_err_set(err, EINVAL, "open layer: %s",
		                    archive_error_string(raw) ? archive_error_string(raw)
		                                              : "empty");
	struct tee tee = {.raw = raw, .sha = sha};
	archive_read_support_filter_none(a);
	archive_read_support_format_tar(a);
	if (archive_read_open(a, &tee, NULL, tee_read, NULL) != ARCHIVE_OK)
		return kiln_err_set(err, EINVAL, "open layer: %s", archive_error_string(a));

	struct applier ap = {.rootfd = rootfd, .whiteouts = opts->whiteouts, .a = a, .err = err};
	for (;;) {
		int ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			r = kiln_err_set(err, EINVAL, "read layer: %s", archive_error_string(a));
			goto out;
		}
		r = apply_entry(&ap, e);
		if (r < 0)
			goto out;
	}
	r = tee_drain(&tee, err);
	if (r < 0)
		goto out;
	struct kiln_digest got;
	kiln_sha256_final(TAKE_PTR(sha), &got);
	if (opts->diff_id && memcmp(got.bytes, want.bytes, sizeof(got.bytes)) != 0) {
		char hex[KILN_DIGEST_HEX_LEN + 1];
		kiln_digest_format(&got, hex);
		r = kiln_err_invalid(err, "layer content is %s, not its diff_id %s", hex,
		                     opts->diff_id);
		goto out;
	}
	if (opts->ret_diff_id)
		*opts->ret_diff_id = got;
	r = finish_dirs(&ap);
out:
	for (size_t i = 0; i < ap.ndirs; i++)
		free(ap.dirs[i].path);
	free(ap.dirs);
	snap_strset_release(&ap.created);
	return r;
}
