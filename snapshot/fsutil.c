/*
 * Filesystem helpers for the snapshot store: fd-relative rm -rf and tree copy (the native
 * driver), directory listings, random names and a string set. Everything works relative
 * to directory fds and never follows a symlink it did not mean to: these run over trees
 * that came from untrusted layers.
 */
#include "snap_int.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

void
snap_fdpath(struct snap_fdpath *p, int dirfd, const char *name)
{
	snprintf(p->s, sizeof(p->s), "/proc/self/fd/%d/%s", dirfd, name);
}

int
snap_xattrs_copy(int sdir, const char *sname, int ddir, const char *dname)
{
	struct snap_fdpath sp, dp;
	snap_fdpath(&sp, sdir, sname);
	snap_fdpath(&dp, ddir, dname);
	ssize_t n = llistxattr(sp.s, NULL, 0);
	if (n < 0)
		return errno == ENOTSUP ? 0 : -errno;
	if (n == 0)
		return 0;
	_cleanup_free_ char *list = kiln_xmalloc((size_t)n);
	n = llistxattr(sp.s, list, (size_t)n);
	if (n < 0)
		return -errno;
	for (char *k = list; k < list + n; k += strlen(k) + 1) {
		ssize_t vn = lgetxattr(sp.s, k, NULL, 0);
		if (vn < 0)
			return -errno;
		_cleanup_free_ char *v = kiln_xmalloc((size_t)vn + 1);
		vn = lgetxattr(sp.s, k, v, (size_t)vn);
		if (vn < 0)
			return -errno;
		if (lsetxattr(dp.s, k, v, (size_t)vn, 0) < 0 && errno != ENOTSUP)
			return -errno;
	}
	return 0;
}

/* Hard links seen during a copy: source inode -> path of its first copy. */
struct ino_map {
	struct ino_ent {
		dev_t dev;
		ino_t ino;
		char *path;
	} * v;
	size_t n, alloc;
};

struct copier {
	int dst_root;
	struct ino_map links;
	struct kiln_err *err;
};

static int
copy_data(int sfd, int dfd)
{
	if (ioctl(dfd, FICLONE, sfd) == 0)
		return 0;
	for (;;) {
		ssize_t n = copy_file_range(sfd, NULL, dfd, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		break;
	}
	/* copy_file_range refused before copying anything: plain read/write. */
	char buf[65536];
	for (;;) {
		ssize_t n = read(sfd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(dfd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			off += w;
		}
	}
}

static int copy_dir(struct copier *c, int sfd, int dfd, const char *rel);

int
snap_meta_copy(int sdir, const char *name, int ddir, const struct stat *st)
{
	if (fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISLNK(st->st_mode) && fchmodat(ddir, name, st->st_mode & 07777, 0) < 0)
		return -errno;
	int r = snap_xattrs_copy(sdir, name, ddir, name);
	if (r < 0)
		return r;
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int
copy_entry(struct copier *c, int sdir, int ddir, const char *name, const char *rel)
{
	struct stat st;
	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_err_set(c->err, errno, "stat `%s`", rel);
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		for (size_t i = 0; i < c->links.n; i++) {
			struct ino_ent *e = &c->links.v[i];
			if (e->dev == st.st_dev && e->ino == st.st_ino) {
				if (linkat(c->dst_root, e->path, ddir, name, 0) < 0)
					return kiln_err_set(c->err, errno, "link `%s`", rel);
				return 0;
			}
		}
		KILN_GROW(c->links.v, c->links.alloc, c->links.n + 1);
		c->links.v[c->links.n++] = (struct ino_ent){
		        .dev = st.st_dev, .ino = st.st_ino, .path = kiln_xstrdup(rel)};
	}
	int r = 0;
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR: {
		if (mkdirat(ddir, name, 0700) < 0)
			return kiln_err_set(c->err, errno, "mkdir `%s`", rel);
		_cleanup_close_ int s =
		        openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		_cleanup_close_ int d =
		        openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s < 0 || d < 0)
			return kiln_err_set(c->err, errno, "open `%s`", rel);
		r = copy_dir(c, s, d, rel);
		if (r < 0)
			return r;
		break;
	}
	case S_IFREG: {
		_cleanup_close_ int s = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (s < 0)
			return kiln_err_set(c->err, errno, "open `%s`", rel);
		_cleanup_close_ int d = openat(
		        ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (d < 0)
			return kiln_err_set(c->err, errno, "create `%s`", rel);
		r = copy_data(s, d);
		if (r < 0)
			return kiln_err_set(c->err, -r, "copy `%s`", rel);
		break;
	}
	case S_IFLNK: {
		char target[4097];
		ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);
		if (n < 0)
			return kiln_err_set(c->err, errno, "readlink `%s`", rel);
		target[n] = '\0';
		if (symlinkat(target, ddir, name) < 0)
			return kiln_err_set(c->err, errno, "symlink `%s`", rel);
		break;
	}
	default:
		if (mknodat(ddir, name, st.st_mode & S_IFMT, st.st_rdev) < 0)
			return kiln_err_set(c->err, errno, "mknod `%s`", rel);
		break;
	}
	r = snap_meta_copy(sdir, name, ddir, &st);
	if (r < 0)
		return kiln_err_set(c->err, -r, "copy attributes of `%s`", rel);
	return 0;
}

static int
copy_dir(struct copier *c, int sfd, int dfd, const char *rel)
{
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	int r = kiln_dir_names(sfd, &names);
	if (r < 0)
		return kiln_err_set(c->err, -r, "list `%s`", rel);
	for (size_t i = 0; i < names.n; i++) {
		_cleanup_free_ char *child =
		        *rel ? kiln_xasprintf("%s/%s", rel, names.v[i]) : kiln_xstrdup(names.v[i]);
		r = copy_entry(c, sfd, dfd, names.v[i], child);
		if (r < 0)
			return r;
	}
	return 0;
}

int
snap_copy_tree(int srcfd, int dstfd, struct kiln_err *err)
{
	struct copier c = {.dst_root = dstfd, .err = err};
	int r = copy_dir(&c, srcfd, dstfd, "");
	for (size_t i = 0; i < c.links.n; i++)
		free(c.links.v[i].path);
	free(c.links.v);
	if (r < 0)
		return r;
	/* The root directory's own attributes. */
	struct stat st;
	if (fstat(srcfd, &st) < 0)
		return kiln_err_set(err, errno, "stat tree root");
	if (fchown(dstfd, st.st_uid, st.st_gid) < 0 || fchmod(dstfd, st.st_mode & 07777) < 0)
		return kiln_err_set(err, errno, "set tree root attributes");
	r = snap_xattrs_copy(srcfd, ".", dstfd, ".");
	if (r < 0)
		return kiln_err_set(err, -r, "copy tree root xattrs");
	struct timespec ts[2] = {st.st_atim, st.st_mtim};
	if (futimens(dstfd, ts) < 0)
		return kiln_err_set(err, errno, "set tree root times");
	return 0;
}

void
snap_random_name(char *out, size_t n)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t b[64];
	if (n > sizeof(b))
		n = sizeof(b);
	if (getrandom(b, n, 0) != (ssize_t)n) {
		/* getrandom on a small request only fails before the pool is ready. */
		for (size_t i = 0; i < n; i++)
			b[i] = (uint8_t)(rand() ^ (getpid() >> (i % 8)));
	}
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[b[i] % (sizeof(alphabet) - 1)];
	out[n] = '\0';
}

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h;
}

static void
strset_put(struct snap_strset *set, char *s)
{
	size_t i = hash_str(s) & (set->cap - 1);
	while (set->slots[i]) {
		if (kiln_str_eq(set->slots[i], s)) {
			free(s);
			return;
		}
		i = (i + 1) & (set->cap - 1);
	}
	set->slots[i] = s;
	set->n++;
}

void
snap_strset_add(struct snap_strset *set, const char *s)
{
	if ((set->n + 1) * 2 > set->cap) {
		struct snap_strset bigger = {.cap = set->cap ? set->cap * 2 : 64};
		bigger.slots = kiln_xcalloc(bigger.cap, sizeof(char *));
		for (size_t i = 0; i < set->cap; i++)
			if (set->slots[i])
				strset_put(&bigger, set->slots[i]);
		free(set->slots);
		*set = bigger;
	}
	strset_put(set, kiln_xstrdup(s));
}

bool
snap_strset_has(const struct snap_strset *set, const char *s)
{
	if (!set->cap)
		return false;
	size_t i = hash_str(s) & (set->cap - 1);
	while (set->slots[i]) {
		if (kiln_str_eq(set->slots[i], s))
			return true;
		i = (i + 1) & (set->cap - 1);
	}
	return false;
}

void
snap_strset_release(struct snap_strset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
	*set = (struct snap_strset){0};
}
