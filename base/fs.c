/*
 * Filesystem helpers that untrusted trees need: directory listings, and rm -rf relative to
 * a directory fd that never follows a symlink and never deletes through a mount point (a
 * leftover bind mount must not cost the user the files behind it).
 */
#include "base.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
kiln_dir_names(int dirfd, struct kiln_strv *ret)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (kiln_str_eq(de->d_name, ".") || kiln_str_eq(de->d_name, ".."))
			continue;
		kiln_strv_push(ret, de->d_name);
	}
	int r = errno ? -errno : 0;
	closedir(d);
	if (ret->n > 1)
		qsort(ret->v, ret->n, sizeof(char *), cmp_str);
	return r;
}

/* Whether dirfd/name is the root of a mount. Bind mounts from the same filesystem keep
 * st_dev, so ask statx; where it cannot tell, a different st_dev still says so. */
static bool
is_mount_root(int dirfd, const char *name, const struct stat *st, dev_t dev)
{
	if (st->st_dev != dev)
		return true;
	struct statx stx;
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &stx) < 0)
		return true; /* cannot tell: do not descend */
	return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

static int
rm_children(int dirfd, dev_t dev)
{
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	int r = kiln_dir_names(dirfd, &names);
	if (r < 0)
		return r;
	for (size_t i = 0; i < names.n; i++) {
		struct stat st;
		if (fstatat(dirfd, names.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		if (S_ISDIR(st.st_mode)) {
			if (is_mount_root(dirfd, names.v[i], &st, dev))
				return -EBUSY; /* a mount: never delete through it */
			_cleanup_close_ int fd = openat(
			        dirfd, names.v[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return -errno;
			r = rm_children(fd, dev);
			if (r < 0)
				return r;
			if (unlinkat(dirfd, names.v[i], AT_REMOVEDIR) < 0 && errno != ENOENT)
				return -errno;
		} else if (unlinkat(dirfd, names.v[i], 0) < 0 && errno != ENOENT) {
			return -errno;
		}
	}
	return 0;
}

int
kiln_rm_children(int dirfd)
{
	struct stat st;
	if (fstat(dirfd, &st) < 0)
		return -errno;
	return rm_children(dirfd, st.st_dev);
}

int
kiln_rm_rf_at(int dirfd, const char *name)
{
	struct stat pst, st;
	if (fstat(dirfd, &pst) < 0)
		return -errno;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (is_mount_root(dirfd, name, &st, pst.st_dev))
		return -EBUSY;
	_cleanup_close_ int fd =
	        openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = rm_children(fd, st.st_dev);
	if (r < 0)
		return r;
	return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

int
kiln_write_all(int fd, const void *data, size_t len, struct kiln_err *err)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_err_set(err, errno, "write");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
kiln_open_in_place(int dirfd, const char *path, int *ret)
{
	struct stat st;
	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	/* A symlink (/dev/stdout, a user's link to elsewhere) is written through, as a shell
	 * would: a renamed temp file would replace the link itself. */
	bool link = S_ISLNK(st.st_mode);
	if (link && fstatat(dirfd, path, &st, 0) < 0 && errno != ENOENT)
		return -errno;
	if (!link && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
		return 0;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (S_ISBLK(st.st_mode))
		return -EINVAL; /* never a disk, whatever the path says */
	int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	*ret = fd;
	return 1;
}

int
kiln_output_open(struct kiln_output *o, const char *path, struct kiln_err *err)
{
	o->path = path;
	if (kiln_str_eq(path, "-")) {
		o->fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
		return o->fd < 0 ? kiln_err_set(err, errno, "dup standard output") : 0;
	}
	int d = kiln_open_in_place(AT_FDCWD, path, &o->fd);
	if (d < 0)
		return kiln_err_set(err, -d, "open `%s`", path);
	if (d > 0)
		return 0;
	o->tmp = kiln_xasprintf("%s.tmp-%d", path, (int)getpid());
	o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	return o->fd < 0 ? kiln_err_set(err, errno, "create `%s`", o->tmp) : 0;
}

int
kiln_output_commit(struct kiln_output *o, bool durable, struct kiln_err *err)
{
	if (!o->tmp)
		return 0;
	if (durable && fsync(o->fd) < 0)
		return kiln_err_set(err, errno, "fsync `%s`", o->tmp);
	if (rename(o->tmp, o->path) < 0)
		return kiln_err_set(err, errno, "rename to `%s`", o->path);
	free(o->tmp);
	o->tmp = NULL;
	return 0;
}

void
kiln_output_release(struct kiln_output *o)
{
	kiln_closep(&o->fd);
	if (o->tmp)
		unlink(o->tmp);
	free(o->tmp);
	o->tmp = NULL;
}

int
kiln_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                          struct kiln_err *err)
{
	_cleanup_close_ int direct = -1;
	int d = kiln_open_in_place(dirfd, path, &direct);
	if (d < 0)
		return kiln_err_set(err, -d, "write `%s`", path);
	if (d > 0)
		return kiln_write_all(direct, data, len, err) < 0
		               ? kiln_err_wrap(err, "write `%s`", path)
		               : 0;
	/* The temp file sits beside the target (same directory, so rename is atomic), hidden
	 * behind a dot and named by pid, so concurrent writers never share one. */
	const char *slash = strrchr(path, '/');
	size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
	_cleanup_free_ char *tmp =
	        kiln_xasprintf("%.*s.%s.tmp-%d", (int)dir_len, path, path + dir_len, (int)getpid());
	_cleanup_close_ int fd =
	        openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return kiln_err_set(err, errno, "write `%s`: create `%s`", path, tmp);
	int r = kiln_write_all(fd, data, len, err);
	if (r >= 0 && fsync(fd) < 0)
		r = kiln_err_set(err, errno, "fsync `%s`", tmp);
	if (r >= 0 && renameat(dirfd, tmp, dirfd, path) < 0)
		r = kiln_err_set(err, errno, "rename to `%s`", path);
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return kiln_err_wrap(err, "write `%s`", path);
	}
	return 0;
}
