/*
 * Walking the diff of a snapshot, for an exporter writing layer tars: each changed path
 * with its stat, deletions as OCI whiteouts and hidden lower directories as opaque
 * markers. An overlay upper dir already is such a diff (whiteouts are 0/0 character
 * devices, opaque dirs carry trusted.overlay.opaque=y); a native snapshot is compared
 * with its parent's tree.
 */
#include "snap_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static char *
join(const char *rel, const char *name)
{
	return *rel ? kiln_xasprintf("%s/%s", rel, name) : kiln_xstrdup(name);
}

static int
emit(snap_walk_fn fn, void *data, enum snap_change_kind kind, const char *rel, const char *name,
     const struct stat *st, int dirfd, struct kiln_err *err)
{
	_cleanup_free_ char *path = join(rel, name);
	_cleanup_free_ char *oci = NULL;
	if (kind == SNAP_CHANGE_WHITEOUT)
		oci = kiln_xasprintf("%s%s%s%s", rel, *rel ? "/" : "", SNAP_WH_PREFIX, name);
	else if (kind == SNAP_CHANGE_OPAQUE)
		oci = kiln_xasprintf("%s/%s", path, SNAP_WH_OPAQUE);
	struct snap_change c = {
	        .kind = kind,
	        .path = path,
	        .oci_name = oci ? oci : path,
	        .st = st,
	        .dirfd = dirfd,
	        .name = name,
	};
	return fn(&c, data, err);
}

static bool
is_opaque(int dirfd, const char *name)
{
	struct snap_fdpath p;
	snap_fdpath(&p, dirfd, name);
	char v[4];
	ssize_t n = lgetxattr(p.s, SNAP_OPAQUE_XATTR, v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

static int
upper_walk(int dirfd, const char *rel, snap_walk_fn fn, void *data, struct kiln_err *err)
{
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	int r = kiln_dir_names(dirfd, &names);
	if (r < 0)
		return kiln_err_set(err, -r, "list `%s` in upper dir", *rel ? rel : ".");
	for (size_t i = 0; i < names.n; i++) {
		const char *name = names.v[i];
		struct stat st;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return kiln_err_set(err, errno, "stat `%s` in upper dir", name);
		if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
			r = emit(fn, data, SNAP_CHANGE_WHITEOUT, rel, name, &st, dirfd, err);
			if (r < 0)
				return r;
			continue;
		}
		r = emit(fn, data, SNAP_CHANGE_ADD, rel, name, &st, dirfd, err);
		if (r < 0)
			return r;
		if (!S_ISDIR(st.st_mode))
			continue;
		if (is_opaque(dirfd, name)) {
			r = emit(fn, data, SNAP_CHANGE_OPAQUE, rel, name, &st, dirfd, err);
			if (r < 0)
				return r;
		}
		_cleanup_close_ int fd =
		        openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return kiln_err_set(err, errno, "open `%s` in upper dir", name);
		_cleanup_free_ char *child = join(rel, name);
		r = upper_walk(fd, child, fn, data, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int
snap_upper_walk_at(int upperfd, snap_walk_fn fn, void *data, struct kiln_err *err)
{
	return upper_walk(upperfd, "", fn, data, err);
}

static bool
same_link(int adir, int bdir, const char *name)
{
	char a[4097], b[4097];
	ssize_t an = readlinkat(adir, name, a, sizeof(a));
	ssize_t bn = readlinkat(bdir, name, b, sizeof(b));
	return an >= 0 && an == bn && memcmp(a, b, (size_t)an) == 0;
}

static bool
changed(int pdir, const struct stat *p, int tdir, const struct stat *t, const char *name)
{
	if ((p->st_mode & S_IFMT) != (t->st_mode & S_IFMT))
		return true;
	if (p->st_mode != t->st_mode || p->st_uid != t->st_uid || p->st_gid != t->st_gid)
		return true;
	if (S_ISDIR(t->st_mode))
		return p->st_mtim.tv_sec != t->st_mtim.tv_sec ||
		       p->st_mtim.tv_nsec != t->st_mtim.tv_nsec;
	if (p->st_size != t->st_size || p->st_rdev != t->st_rdev ||
	    p->st_mtim.tv_sec != t->st_mtim.tv_sec || p->st_mtim.tv_nsec != t->st_mtim.tv_nsec)
		return true;
	return S_ISLNK(t->st_mode) && !same_link(pdir, tdir, name);
}

/* pfd: the same directory in the parent tree, or -1 when it has none. */
static int
native_walk(int pfd, int tfd, const char *rel, snap_walk_fn fn, void *data, struct kiln_err *err)
{
	_cleanup_strv_ struct kiln_strv tnames = KILN_STRV_INIT, pnames = KILN_STRV_INIT;
	int r = kiln_dir_names(tfd, &tnames);
	if (r >= 0 && pfd >= 0)
		r = kiln_dir_names(pfd, &pnames);
	if (r < 0)
		return kiln_err_set(err, -r, "list `%s`", *rel ? rel : ".");
	size_t i = 0, j = 0;
	while (i < tnames.n || j < pnames.n) {
		int c = i == tnames.n ? 1 : j == pnames.n ? -1 : strcmp(tnames.v[i], pnames.v[j]);
		struct stat ts, ps;
		if (c > 0) {
			/* Only in the parent: deleted. */
			if (fstatat(pfd, pnames.v[j], &ps, AT_SYMLINK_NOFOLLOW) < 0)
				return kiln_err_set(err, errno, "stat `%s`", pnames.v[j]);
			r = emit(fn, data, SNAP_CHANGE_WHITEOUT, rel, pnames.v[j], &ps, tfd, err);
			if (r < 0)
				return r;
			j++;
			continue;
		}
		const char *name = tnames.v[i];
		if (fstatat(tfd, name, &ts, AT_SYMLINK_NOFOLLOW) < 0)
			return kiln_err_set(err, errno, "stat `%s`", name);
		bool in_parent = c == 0 && fstatat(pfd, name, &ps, AT_SYMLINK_NOFOLLOW) == 0;
		if (!in_parent || changed(pfd, &ps, tfd, &ts, name)) {
			r = emit(fn, data, SNAP_CHANGE_ADD, rel, name, &ts, tfd, err);
			if (r < 0)
				return r;
		}
		if (S_ISDIR(ts.st_mode)) {
			_cleanup_close_ int child_t =
			        openat(tfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			_cleanup_close_ int child_p = -1;
			if (in_parent && S_ISDIR(ps.st_mode))
				child_p = openat(pfd, name,
				                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (child_t < 0)
				return kiln_err_set(err, errno, "open `%s`", name);
			_cleanup_free_ char *child = join(rel, name);
			r = native_walk(child_p, child_t, child, fn, data, err);
			if (r < 0)
				return r;
		}
		i++;
		if (c == 0)
			j++;
	}
	return 0;
}

int
snap_native_diff_walk(int parentfd, int treefd, snap_walk_fn fn, void *data, struct kiln_err *err)
{
	return native_walk(parentfd, treefd, "", fn, data, err);
}
