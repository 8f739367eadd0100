/*
 * The hard-link clone of a tree: every directory made anew with its metadata, every
 * regular file linked (so it shares the source's inode and costs no data copy), every
 * symlink, device, fifo and overlay whiteout recreated as it is. The clone and the source
 * must be on one filesystem. Callers replace a cloned file by unlinking it and creating a
 * new one, never by writing into it: its inode belongs to the source too.
 */
#include "snap_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

struct cloner {
	struct kiln_buf path; /* the entry's path relative to the root, for messages */
	struct kiln_err *err;
};

static int clone_dir(struct cloner *c, int sfd, int dfd);

static int
clone_entry(struct cloner *c, int sdir, int ddir, const char *name, unsigned char type)
{
	/* Most entries are files: the directory says so, and a link needs no stat. */
	if (type == DT_REG) {
		if (linkat(sdir, name, ddir, name, 0) < 0)
			return kiln_err_set(c->err, errno, "clone: link `%s`", c->path.buf);
		return 0;
	}
	struct stat st;
	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_err_set(c->err, errno, "clone: stat `%s`", c->path.buf);
	if (S_ISREG(st.st_mode)) {
		/* The link carries content, owner, mode, xattrs and times with it. */
		if (linkat(sdir, name, ddir, name, 0) < 0)
			return kiln_err_set(c->err, errno, "clone: link `%s`", c->path.buf);
		return 0;
	}
	int r;
	if (S_ISDIR(st.st_mode)) {
		if (mkdirat(ddir, name, 0700) < 0)
			return kiln_err_set(c->err, errno, "clone: mkdir `%s`", c->path.buf);
		_cleanup_close_ int s =
		        openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		_cleanup_close_ int d =
		        s < 0 ? -1
		              : openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d < 0)
			return kiln_err_set(c->err, errno, "clone: open `%s`", c->path.buf);
		if ((r = clone_dir(c, s, d)) < 0)
			return r;
	} else if (S_ISLNK(st.st_mode)) {
		/* A new symlink rather than a link of the old one: both would do, but its
		 * times and owner are then this tree's own. */
		char target[PATH_MAX + 1];
		ssize_t n = readlinkat(sdir, name, target, PATH_MAX);
		if (n < 0)
			return kiln_err_set(c->err, errno, "clone: readlink `%s`", c->path.buf);
		target[n] = '\0';
		if (symlinkat(target, ddir, name) < 0)
			return kiln_err_set(c->err, errno, "clone: symlink `%s`", c->path.buf);
	} else if (mknodat(ddir, name, st.st_mode & (S_IFMT | 07777), st.st_rdev) < 0) {
		/* devices, fifos, sockets and overlay whiteouts (char 0/0) */
		return kiln_err_set(c->err, errno, "clone: mknod `%s`", c->path.buf);
	}
	if ((r = snap_meta_copy(sdir, name, ddir, &st)) < 0)
		return kiln_err_set(c->err, -r, "clone: metadata of `%s`", c->path.buf);
	return 0;
}

static int
clone_dir(struct cloner *c, int sfd, int dfd)
{
	int fd = openat(sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return kiln_err_set(c->err, e, "clone: read directory `%s`", c->path.buf);
	}
	size_t len = c->path.len;
	int r = 0;
	struct dirent *de;
	/* Read order: a clone has no order to keep, and sorting 20k names is not free. */
	while (r == 0 && (errno = 0, de = readdir(d))) {
		if (kiln_str_eq(de->d_name, ".") || kiln_str_eq(de->d_name, ".."))
			continue;
		if (len)
			kiln_buf_addch(&c->path, '/');
		kiln_buf_addstr(&c->path, de->d_name);
		r = clone_entry(c, sfd, dfd, de->d_name, de->d_type);
		kiln_buf_setlen(&c->path, len);
	}
	if (r == 0 && errno != 0)
		r = kiln_err_set(c->err, errno, "clone: read directory `%s`", c->path.buf);
	closedir(d);
	return r;
}

int
snap_clone_tree_at(int srcfd, int dstfd, struct kiln_err *err)
{
	struct cloner c = {.path = KILN_BUF_INIT, .err = err};
	int r = clone_dir(&c, srcfd, dstfd);
	kiln_buf_release(&c.path);
	if (r < 0)
		return r;
	/* The root's own metadata last: cloning its children moved its mtime. */
	struct stat st;
	if (fstat(srcfd, &st) < 0)
		return kiln_err_set(err, errno, "clone: stat the root");
	if ((r = snap_meta_copy(srcfd, ".", dstfd, &st)) < 0)
		return kiln_err_set(err, -r, "clone: metadata of the root");
	return 0;
}
