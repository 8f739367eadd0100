/*
 * The file op: BuildKit's FileOp copy/mkdir/mkfile (solver/llbsolver/file/backend.go with
 * tonistiigi/fsutil's copy package), written against kiln's safe path helpers.
 *
 * Safety: the destination tree is untrusted (it came from an image or a RUN step), so no
 * destination path is ever handed to a path-taking syscall from the host's "/". Paths are
 * resolved to a directory fd inside the root first (kiln_path_*: symlinks resolve inside
 * the root), and everything below is done with *at() calls on names we just created or
 * checked with AT_SYMLINK_NOFOLLOW / O_NOFOLLOW. Sources are read the same way inside their
 * input's root.
 */
#include "file.h"

#include "frontend/dockerignore.h" /* frontend-internal, but ops links kiln_frontend */
#include "snapshot/snap.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>

/* ---- small helpers ---- */

static void
ignore_freep(struct fe_ignore **ig)
{
	fe_ignore_free(*ig);
}
#define _cleanup_ignore_ _cleanup_(ignore_freep)

static void
archive_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
#define _cleanup_archive_ _cleanup_(archive_freep)

static const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool
jbool(const json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

static bool
has_wildcard(const char *s)
{
	return strpbrk(s, "*?[\\") != NULL;
}

/* "dir/name" -> "dir" and "name" (both malloc'd); "/name" -> "/" and "name". */
static void
split_path(const char *path, char **dir, char **base)
{
	_cleanup_free_ char *c = kiln_path_join("/", path);
	char *slash = strrchr(c, '/');
	*base = kiln_xstrdup(slash + 1);
	*dir = slash == c ? kiln_xstrdup("/") : kiln_xstrndup(c, (size_t)(slash - c));
}

/* The target of the symlink O_PATH fd `fd` (malloc'd; on the heap, not on the stack of a
 * deep recursion), or NULL with errno set. */
static char *
read_link(int fd)
{
	char *buf = kiln_xmalloc(PATH_MAX);
	ssize_t n = readlinkat(fd, "", buf, PATH_MAX - 1);
	if (n < 0) {
		int e = errno;
		free(buf);
		errno = e;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* ---- ownership ---- */

struct owner {
	bool set;
	uid_t uid;
	gid_t gid;
};

/* A field (0-based) of the first line in an /etc/passwd-style text whose field 0 or, with
 * by_id, field 2 equals key. Returns a malloc'd copy of field `want`, or NULL. */
static char *
db_lookup(const char *text, const char *key, int key_field, int want)
{
	size_t klen = strlen(key);
	for (const char *line = text; line && *line;) {
		const char *end = strchrnul(line, '\n');
		const char *f = line;
		const char *fields[8] = {0};
		size_t lens[8] = {0};
		int n = 0;
		while (n < 8 && f <= end) {
			const char *c = memchr(f, ':', (size_t)(end - f));
			if (!c)
				c = end;
			fields[n] = f;
			lens[n] = (size_t)(c - f);
			n++;
			f = c + 1;
		}
		if (n > key_field && n > want && lens[key_field] == klen &&
		    memcmp(fields[key_field], key, klen) == 0 && line[0] != '#') {
			size_t l = lens[want];
			while (l && (fields[want][l - 1] == '\r'))
				l--;
			return kiln_xstrndup(fields[want], l);
		}
		line = *end ? end + 1 : NULL;
	}
	return NULL;
}

static int
read_root_file(int rootfd, const char *path, struct kiln_buf *out)
{
	struct kiln_err e = KILN_ERR_INIT;
	_cleanup_close_ int fd = kiln_path_openat_in_root(rootfd, path, O_RDONLY, 0, &e);
	kiln_err_release(&e);
	if (fd < 0)
		return fd;
	int r = kiln_buf_read_fd(out, fd, &e);
	kiln_err_release(&e);
	return r;
}

static bool
parse_id(const char *s, uint32_t *ret)
{
	uint64_t v;
	if (kiln_parse_u64(s, &v) < 0 || v > UINT32_MAX - 1)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/*
 * BuildKit's chown: a numeric user without a group gets gid = uid; a user name gets its
 * passwd entry's uid and gid; a group (number or name) replaces the gid. Names are looked
 * up in the destination's /etc/passwd and /etc/group.
 */
static int
owner_resolve(int dest_rootfd, const json_t *chown, struct owner *ret, struct kiln_err *err)
{
	*ret = (struct owner){0};
	if (!json_is_object(chown))
		return 0;
	const char *user = jstr(chown, "user");
	const char *group = jstr(chown, "group");
	if ((!user || !*user) && (!group || !*group))
		return 0;
	_cleanup_buf_ struct kiln_buf passwd = KILN_BUF_INIT;
	_cleanup_buf_ struct kiln_buf groups = KILN_BUF_INIT;
	bool have_passwd = false, have_group = false;
	uint32_t uid = 0, gid = 0;
	if (user && *user) {
		if (parse_id(user, &uid)) {
			gid = uid;
		} else {
			have_passwd = read_root_file(dest_rootfd, "/etc/passwd", &passwd) >= 0;
			_cleanup_free_ char *u =
			        have_passwd ? db_lookup(passwd.buf, user, 0, 2) : NULL;
			_cleanup_free_ char *g =
			        have_passwd ? db_lookup(passwd.buf, user, 0, 3) : NULL;
			if (!u || !parse_id(u, &uid) || !g || !parse_id(g, &gid))
				return kiln_err_invalid(err,
				                        "chown: unknown user \"%s\" in the "
				                        "destination's /etc/passwd",
				                        user);
		}
	}
	if (group && *group && !parse_id(group, &gid)) {
		have_group = read_root_file(dest_rootfd, "/etc/group", &groups) >= 0;
		_cleanup_free_ char *g = have_group ? db_lookup(groups.buf, group, 0, 2) : NULL;
		if (!g || !parse_id(g, &gid))
			return kiln_err_invalid(
			        err, "chown: unknown group \"%s\" in the destination's /etc/group",
			        group);
	}
	*ret = (struct owner){.set = true, .uid = uid, .gid = gid};
	return 0;
}

/* ---- modes ---- */

struct mode_spec {
	bool set;
	mode_t octal;    /* when sym is NULL */
	const char *sym; /* "u+x,g-w": applied to each file's own mode */
};

/* chmod(1)'s symbolic modes without umask: [ugoa]*([-+=]([rwxXst]*|[ugo]))+, comma-separated. */
static int
mode_apply_sym(const char *sym, mode_t mode, bool is_dir, mode_t *ret)
{
	mode_t m = mode & 07777;
	const char *p = sym;
	while (*p) {
		mode_t who = 0;
		for (; *p && strchr("ugoa", *p); p++)
			who |= *p == 'u' ? 04700 : *p == 'g' ? 02070 : *p == 'o' ? 01007 : 07777;
		if (!who)
			who = 07777;
		if (!*p || !strchr("+-=", *p))
			return -EINVAL;
		while (*p && strchr("+-=", *p)) {
			char op = *p++;
			mode_t bits = 0;
			for (; *p && strchr("rwxXst", *p); p++) {
				switch (*p) {
				case 'r':
					bits |= 0444;
					break;
				case 'w':
					bits |= 0222;
					break;
				case 'x':
					bits |= 0111;
					break;
				case 'X':
					if (is_dir || (mode & 0111))
						bits |= 0111;
					break;
				case 's':
					bits |= 06000;
					break;
				case 't':
					bits |= 01000;
					break;
				}
			}
			bits &= who;
			if (op == '+')
				m |= bits;
			else if (op == '-')
				m &= ~bits;
			else
				m = (m & ~(who & 07777)) | bits;
		}
		if (*p == ',')
			p++;
		else if (*p)
			return -EINVAL;
	}
	*ret = m;
	return 0;
}

static int
mode_parse(const json_t *j, struct mode_spec *ret, struct kiln_err *err)
{
	*ret = (struct mode_spec){0};
	if (!j || json_is_null(j))
		return 0;
	if (json_is_integer(j)) {
		json_int_t v = json_integer_value(j);
		if (v < 0 || v > 07777)
			return kiln_err_invalid(err, "invalid mode %lld", (long long)v);
		*ret = (struct mode_spec){.set = true, .octal = (mode_t)v};
		return 0;
	}
	const char *s = json_string_value(j);
	mode_t dummy;
	if (!s || !*s || mode_apply_sym(s, 0, false, &dummy) < 0)
		return kiln_err_invalid(err, "invalid mode %s", s ? s : "(not a string)");
	*ret = (struct mode_spec){.set = true, .sym = s};
	return 0;
}

static mode_t
mode_for(const struct mode_spec *ms, mode_t mode)
{
	if (!ms->set)
		return mode & 07777;
	if (!ms->sym)
		return ms->octal;
	mode_t m = mode & 07777;
	mode_apply_sym(ms->sym, mode, S_ISDIR(mode), &m);
	return m;
}

/* ---- the run context ---- */

struct fop {
	int dest_rootfd;
	const int *srcs;
	size_t nsrc;
	int cancel_fd;
	struct kiln_err *err;
	/* per copy action */
	const char *what; /* "COPY" etc for messages */
	struct owner owner;
	struct mode_spec mode;
	struct fe_ignore *exclude;
	/* Hard-linked sources: the absolute path in the destination root of each first copy.
	 * A hash table, not a list: files of a snapshot made by an incremental copy all have
	 * a second link (in the snapshot it was cloned from), so a COPY --from or -o
	 * type=local of 20k of them meets 20k "hard-linked" sources. */
	struct kiln_inode_map links;
	/* FICLONE / copy_file_range failed for good between this action's source and the
	 * destination (e.g. a context on ext4 into an overlay: EXDEV): not tried per file. */
	struct ops_copy_state copy;
	unsigned checks; /* cancelled() polls every 64th call */
	/* the incremental copy (ops_file_env) */
	struct ops_copy_manifest *record;
	const struct ops_copy_manifest *prev;
	bool *seen; /* prev's entries met again */
	size_t nseen, changed;
};

/* Whether a non-directory whose source stat is `st` is unchanged since prev recorded
 * it at destpath; then it is kept as the clone has it (and counted as met, recorded). */
static bool
incremental_keep(struct fop *f, const struct stat *st, const char *destpath)
{
	ssize_t i = ops_copy_manifest_find(f->prev, destpath);
	if (i < 0 || !ops_copy_entry_same(ops_copy_manifest_at(f->prev, (size_t)i), st))
		return false;
	if (!f->seen[i]) {
		f->seen[i] = true;
		f->nseen++;
	}
	if (f->record)
		ops_copy_manifest_add(f->record, destpath, st, 0);
	return true;
}

/* The incremental copy's verdict on one source entry that prev recorded at destpath
 * (NULL when it did not): 1 to keep what the clone has, 0 to copy as usual, -ESTALE with
 * f->err set when the clone cannot follow. */
static int
incremental_check(struct fop *f, const struct stat *st, bool dest_exists, const char *srcpath,
                  const char *destpath, const struct ops_copy_entry **ret_prev)
{
	*ret_prev = NULL;
	if (!f->prev)
		return 0;
	ssize_t i = ops_copy_manifest_find(f->prev, destpath);
	if (i < 0) {
		f->changed++;
		return 0;
	}
	const struct ops_copy_entry *pe = ops_copy_manifest_at(f->prev, (size_t)i);
	*ret_prev = pe;
	if (!f->seen[i]) {
		f->seen[i] = true;
		f->nseen++;
	}
	if ((pe->mode & S_IFMT) != (st->st_mode & S_IFMT))
		return kiln_err_set(f->err, ESTALE, "\"%s\" changed type", srcpath);
	if (S_ISDIR(st->st_mode))
		return 0; /* walked again: its children decide */
	if (dest_exists && ops_copy_entry_same(pe, st))
		return 1;
	/* Its links in the destination were made from the first copy, which the clone's
	 * other names of the old inode would not follow. */
	if (st->st_nlink > 1)
		return kiln_err_set(f->err, ESTALE, "\"%s\" changed and has hard links", srcpath);
	f->changed++;
	return 0;
}

static bool
cancelled(struct fop *f)
{
	if (f->cancel_fd < 0 || f->checks++ % 64 != 0)
		return false;
	struct pollfd p = {.fd = f->cancel_fd, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

static void
links_clear(struct fop *f)
{
	kiln_inode_map_clear(&f->links);
}

/* ---- source selection (shared by copy and the content digest) ---- */

/*
 * Expand Go filepath.Match-style wildcards component by component, as fsutil's
 * resolveWildcards does: a component without meta characters is taken as is (it may not
 * exist: the caller reports "not found"), one with them lists the directory reached so
 * far (inside the root, symlinks followed) and keeps the matching names in sorted order.
 */
static int
glob_in_root(int rootfd, const char *base, const char *rest, struct kiln_strv *out)
{
	while (*rest == '/')
		rest++;
	if (!*rest) {
		kiln_strv_push(out, base);
		return 0;
	}
	const char *end = strchrnul(rest, '/');
	_cleanup_free_ char *comp = kiln_xstrndup(rest, (size_t)(end - rest));
	if (!has_wildcard(comp)) {
		_cleanup_free_ char *next = kiln_path_join(base, comp);
		if (!*end) {
			struct kiln_err e = KILN_ERR_INIT;
			_cleanup_close_ int fd =
			        kiln_path_openat_in_root(rootfd, next, O_PATH | O_NOFOLLOW, 0, &e);
			kiln_err_release(&e);
			if (fd >= 0)
				kiln_strv_push(out, next);
			return 0;
		}
		return glob_in_root(rootfd, next, end, out);
	}
	struct kiln_err e = KILN_ERR_INIT;
	_cleanup_close_ int dfd =
	        kiln_path_openat_in_root(rootfd, base, O_RDONLY | O_DIRECTORY, 0, &e);
	kiln_err_release(&e);
	if (dfd < 0)
		return 0;
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	int r = kiln_dir_names(dfd, &names);
	if (r < 0)
		return r;
	for (size_t i = 0; i < names.n; i++) {
		if (fnmatch(comp, names.v[i], 0) != 0)
			continue;
		_cleanup_free_ char *next = kiln_path_join(base, names.v[i]);
		if ((r = glob_in_root(rootfd, next, end, out)) < 0)
			return r;
	}
	return 0;
}

/* The matched source paths (absolute, cleaned) of a copy action; *ret empty: none. */
static int
source_matches(int rootfd, const char *src, bool wildcard, struct kiln_strv *ret,
               struct kiln_err *err)
{
	_cleanup_free_ char *clean = kiln_path_join("/", src);
	if (!wildcard || !has_wildcard(clean)) {
		struct kiln_err e = KILN_ERR_INIT;
		_cleanup_close_ int fd =
		        kiln_path_openat_in_root(rootfd, clean, O_PATH | O_NOFOLLOW, 0, &e);
		kiln_err_release(&e);
		if (fd >= 0)
			kiln_strv_push(ret, clean);
		return 0;
	}
	int r = glob_in_root(rootfd, "/", clean, ret);
	if (r < 0)
		return kiln_err_set(err, -r, "expand `%s`", src);
	return 0;
}

/* Open a matched source: O_PATH fd (the symlink itself unless `follow`) and its stat. */
static int
source_open(int rootfd, const char *path, bool follow, struct stat *st, struct kiln_err *err)
{
	int fd = kiln_path_openat_in_root(rootfd, path, O_PATH | (follow ? 0 : O_NOFOLLOW), 0, err);
	if (fd < 0)
		return kiln_err_wrap(err, "\"%s\"", path);
	if (fstat(fd, st) < 0) {
		int r = kiln_err_set(err, errno, "stat \"%s\"", path);
		close(fd);
		return r;
	}
	return fd;
}

/* Reopen an O_PATH fd for reading (a directory or a regular file). */
static int
reopen_read(int pathfd, bool dir)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", pathfd);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | (dir ? O_DIRECTORY : 0));
	if (fd < 0 && errno == ENOENT && dir)
		fd = openat(pathfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* The --parents pivot: the part of the matched path kept below the destination. */
static const char *
parents_rel(const char *src, const char *match)
{
	/* "/a/./b/x.txt": "/a" is dropped, "b/x.txt" kept. */
	const char *piv = strstr(src, "/./");
	if (!piv && kiln_str_has_prefix(src, "./"))
		piv = src + 1;
	if (piv) {
		_cleanup_free_ char *pre = kiln_xstrndup(src, (size_t)(piv - src));
		_cleanup_free_ char *cpre = kiln_path_join("/", pre);
		size_t n = strlen(cpre);
		if (kiln_str_eq(cpre, "/"))
			return match + 1;
		if (strncmp(match, cpre, n) == 0 && (match[n] == '/' || !match[n]))
			return match[n] ? match + n + 1 : match + n;
	}
	return match + 1;
}

static bool
excluded(const struct fe_ignore *ex, const char *rel)
{
	return ex && *rel && fe_ignore_matches(ex, rel);
}

static bool
exclude_has_exceptions(const struct fe_ignore *ex)
{
	for (size_t i = 0; ex && i < fe_ignore_count(ex); i++)
		if (fe_ignore_pattern(ex, i)[0] == '!')
			return true;
	return false;
}

/* ---- writing into the destination ---- */

int
ops_copy_data(struct ops_copy_state *st, int in, int out, off_t size)
{
	if (size > 0 && !st->no_clone) {
		if (ioctl(out, FICLONE, in) == 0)
			return 0;
		st->no_clone = errno == EXDEV || errno == EOPNOTSUPP || errno == ENOTTY ||
		               errno == EINVAL || errno == ENOSYS;
	}
	off_t done = 0;
	bool cfr = !st->no_cfr;
	while (done < size || !cfr) {
		ssize_t n;
		if (cfr) {
			n = copy_file_range(in, NULL, out, NULL, (size_t)(size - done), 0);
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
			              errno == EOPNOTSUPP)) {
				cfr = false;
				st->no_cfr = errno != EINVAL; /* EINVAL may be this file's */
				if (lseek(in, done, SEEK_SET) < 0 || lseek(out, done, SEEK_SET) < 0)
					return -errno;
				continue;
			}
			if (n < 0)
				return -errno;
			if (n == 0)
				break; /* the file shrank */
			done += n;
			continue;
		}
		char buf[65536];
		n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		for (ssize_t w = 0; w < n;) {
			ssize_t m = write(out, buf + w, (size_t)(n - w));
			if (m < 0 && errno == EINTR)
				continue;
			if (m < 0)
				return -errno;
			w += m;
		}
	}
	return 0;
}

void
ops_copy_xattrs(int in, int out)
{
	char names[65536];
	ssize_t n = flistxattr(in, names, sizeof(names));
	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(names + i) + 1) {
		/* overlayfs's own attributes mean nothing in an image */
		if (kiln_str_has_prefix(names + i, "trusted.overlay.") ||
		    kiln_str_has_prefix(names + i, "user.overlay."))
			continue;
		char val[65536];
		ssize_t vn = fgetxattr(in, names + i, val, sizeof(val));
		if (vn >= 0)
			fsetxattr(out, names + i, val, (size_t)vn, 0);
	}
}

/* The xattrs of a cloned directory, before its source's are copied again: one removed
 * from the source since must go as it would from a fresh copy. */
static void
xattrs_clear(int fd)
{
	char names[65536];
	ssize_t n = flistxattr(fd, names, sizeof(names));
	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(names + i) + 1) {
		if (!kiln_str_has_prefix(names + i, "trusted.overlay.") &&
		    !kiln_str_has_prefix(names + i, "user.overlay."))
			fremovexattr(fd, names + i);
	}
}

/* Remove whatever non-directory is at dirfd/name (never following it). */
static int
remove_nondir(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Owner, mode and times of a new entry dirfd/name, as the source had them unless the
 * action overrides owner or mode. */
static int
set_meta(struct fop *f, int dirfd, const char *name, const struct stat *st)
{
	uid_t uid = f->owner.set ? f->owner.uid : st->st_uid;
	gid_t gid = f->owner.set ? f->owner.gid : st->st_gid;
	if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISLNK(st->st_mode) && fchmodat(dirfd, name, mode_for(&f->mode, st->st_mode), 0) < 0)
		return -errno;
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int copy_tree(struct fop *f, int srcfd, const struct stat *st, const char *rel,
                     const char *srcpath, int dirfd, const char *name, const char *destpath,
                     bool contents_only);

/* Copy the children of source directory `srcdir` into destination directory `dstdir`. */
static int
copy_children(struct fop *f, int srcdir, const char *rel, const char *srcpath, int dstdir,
              const char *destpath)
{
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	int r = kiln_dir_names(srcdir, &names);
	if (r < 0)
		return kiln_err_set(f->err, -r, "read directory \"%s\"", srcpath);
	bool exceptions = exclude_has_exceptions(f->exclude);
	for (size_t i = 0; i < names.n; i++) {
		const char *n = names.v[i];
		_cleanup_free_ char *crel =
		        *rel ? kiln_xasprintf("%s/%s", rel, n) : kiln_xstrdup(n);
		_cleanup_free_ char *cpath = kiln_path_join(srcpath, n);
		_cleanup_free_ char *cdest = kiln_path_join(destpath, n);
		struct stat cst;
		/* The incremental copy's common case, an unchanged file the clone holds, costs
		 * one stat: no open, no look at the destination (through an overlay). */
		if (f->prev && fstatat(srcdir, n, &cst, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !S_ISDIR(cst.st_mode) && !excluded(f->exclude, crel) &&
		    incremental_keep(f, &cst, cdest))
			continue;
		_cleanup_close_ int cfd = openat(srcdir, n, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0 || fstat(cfd, &cst) < 0)
			return kiln_err_set(f->err, errno, "stat \"%s\"", cpath);
		bool ex = excluded(f->exclude, crel);
		if (ex && !(S_ISDIR(cst.st_mode) && exceptions))
			continue;
		struct stat dst;
		bool existed = ex && fstatat(dstdir, n, &dst, AT_SYMLINK_NOFOLLOW) == 0;
		if ((r = copy_tree(f, cfd, &cst, crel, cpath, dstdir, n, cdest, false)) < 0)
			return r;
		/* An excluded directory walked only for "!" exceptions stays only if one of
		 * them put something in it. */
		if (ex && !existed)
			(void)unlinkat(dstdir, n, AT_REMOVEDIR);
	}
	return 0;
}

/*
 * Copy one source entry (O_PATH fd `srcfd`, stat `st`) to dirfd/name. A directory with
 * contents_only merges into an existing directory there (BuildKit keeps an existing
 * directory's metadata then); anything else replaces a non-directory in the way.
 */
static int
copy_tree(struct fop *f, int srcfd, const struct stat *st, const char *rel, const char *srcpath,
          int dirfd, const char *name, const char *destpath, bool contents_only)
{
	if (cancelled(f))
		return kiln_err_set(f->err, ECANCELED, "%s", f->what);
	int r;
	struct stat dst;
	bool exists = fstatat(dirfd, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	const struct ops_copy_entry *pe;
	if ((r = incremental_check(f, st, exists, srcpath, destpath, &pe)) < 0)
		return r;
	if (r > 0) {
		if (f->record)
			ops_copy_manifest_add(f->record, destpath, st, 0);
		return 0;
	}

	if (S_ISDIR(st->st_mode)) {
		bool created = false;
		if (exists && !S_ISDIR(dst.st_mode)) {
			if ((r = remove_nondir(dirfd, name)) < 0)
				return kiln_err_set(f->err, -r, "replace `%s`", destpath);
			exists = false;
		}
		if (!exists) {
			if (mkdirat(dirfd, name, 0700) < 0)
				return kiln_err_set(f->err, errno, "mkdir `%s`", destpath);
			created = true;
		}
		_cleanup_close_ int out =
		        openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (out < 0)
			return kiln_err_set(f->err, errno, "open `%s`", destpath);
		_cleanup_close_ int in = reopen_read(srcfd, true);
		if (in < 0)
			return kiln_err_set(f->err, -in, "open \"%s\"", srcpath);
		if ((r = copy_children(f, in, rel, srcpath, out, destpath)) < 0)
			return r;
		/* In the clone, a directory the first copy created exists, but its metadata
		 * is set again as then: children written since moved its mtime. */
		if (pe && (pe->flags & OPS_COPY_CREATED)) {
			created = true;
			xattrs_clear(out);
		}
		if (f->record)
			ops_copy_manifest_add(f->record, destpath, st,
			                      created ? OPS_COPY_CREATED : 0);
		if (created || !contents_only) {
			ops_copy_xattrs(in, out);
			if ((r = set_meta(f, dirfd, name, st)) < 0)
				return kiln_err_set(f->err, -r, "set metadata of `%s`", destpath);
		}
		return 0;
	}

	if (exists) {
		if (S_ISDIR(dst.st_mode))
			return kiln_err_set(
			        f->err, EISDIR,
			        "cannot replace directory `%s` with non-directory \"%s\"", destpath,
			        srcpath);
		if ((r = remove_nondir(dirfd, name)) < 0)
			return kiln_err_set(f->err, -r, "replace `%s`", destpath);
	}

	const char *first = !S_ISDIR(st->st_mode) && st->st_nlink > 1
	                            ? kiln_inode_map_get(&f->links, st->st_dev, st->st_ino)
	                            : NULL;
	if (first) {
		_cleanup_free_ char *ldir = NULL, *lbase = NULL;
		split_path(first, &ldir, &lbase);
		struct kiln_err e = KILN_ERR_INIT;
		_cleanup_close_ int lfd =
		        kiln_path_openat_in_root(f->dest_rootfd, ldir, O_PATH | O_DIRECTORY, 0, &e);
		kiln_err_release(&e);
		if (lfd >= 0 && linkat(lfd, lbase, dirfd, name, 0) == 0) {
			if (f->record)
				ops_copy_manifest_add(f->record, destpath, st, 0);
			return 0;
		}
		/* the first copy is gone: copy again, and link to that from now */
	}

	if (S_ISREG(st->st_mode)) {
		_cleanup_close_ int in = reopen_read(srcfd, false);
		if (in < 0)
			return kiln_err_set(f->err, -in, "open \"%s\"", srcpath);
		_cleanup_close_ int out = openat(
		        dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (out < 0)
			return kiln_err_set(f->err, errno, "create `%s`", destpath);
		if ((r = ops_copy_data(&f->copy, in, out, st->st_size)) < 0)
			return kiln_err_set(f->err, -r, "copy \"%s\" to `%s`", srcpath, destpath);
		ops_copy_xattrs(in, out);
	} else if (S_ISLNK(st->st_mode)) {
		_cleanup_free_ char *target = read_link(srcfd);
		if (!target)
			return kiln_err_set(f->err, errno, "readlink \"%s\"", srcpath);
		if (symlinkat(target, dirfd, name) < 0)
			return kiln_err_set(f->err, errno, "symlink `%s`", destpath);
	} else {
		/* devices, fifos, sockets: recreated, not opened */
		if (mknodat(dirfd, name, st->st_mode & (S_IFMT | 07777), st->st_rdev) < 0)
			return kiln_err_set(f->err, errno, "mknod `%s`", destpath);
	}
	if ((r = set_meta(f, dirfd, name, st)) < 0)
		return kiln_err_set(f->err, -r, "set metadata of `%s`", destpath);
	if (f->record)
		ops_copy_manifest_add(f->record, destpath, st, 0);
	if (st->st_nlink > 1)
		kiln_inode_map_set(&f->links, st->st_dev, st->st_ino, destpath);
	return 0;
}

/*
 * mkdir -p of `path` inside the destination: components that exist are kept as they are,
 * new ones get `mode` and the owner (BuildKit's MkdirAll with a chowner). Returns an
 * O_DIRECTORY fd of the last one.
 */
static int
mkdir_all(int rootfd, const char *path, mode_t mode, const struct owner *own, struct kiln_err *err)
{
	_cleanup_free_ char *clean = kiln_path_join("/", path);
	_cleanup_close_ int cur =
	        kiln_path_openat_in_root(rootfd, "/", O_RDONLY | O_DIRECTORY, 0, err);
	if (cur < 0)
		return cur;
	_cleanup_free_ char *sofar = kiln_xstrdup("/");
	char *save = NULL;
	for (char *c = strtok_r(clean, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		_cleanup_free_ char *next = kiln_path_join(sofar, c);
		free(sofar);
		sofar = TAKE_PTR(next);
		/* Resolve what exists through the root-confined walk (a symlink in the
		 * destination resolves inside it); create what is missing here. */
		int fd = kiln_path_openat_in_root(rootfd, sofar, O_RDONLY | O_DIRECTORY, 0, err);
		if (fd == -ENOENT) {
			kiln_err_release(err);
			*err = (struct kiln_err)KILN_ERR_INIT;
			struct stat lst;
			if (fstatat(cur, c, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(lst.st_mode)) {
				/* a dangling symlink: mkdir -p creates its target, inside */
				fd = kiln_path_mkdirat_in_root(rootfd, sofar, mode ? mode : 0755,
				                               err);
			} else {
				if (mkdirat(cur, c, mode) < 0 && errno != EEXIST)
					return kiln_err_set(err, errno, "mkdir `%s`", sofar);
				if (fchmodat(cur, c, mode, 0) < 0 ||
				    (own->set &&
				     fchownat(cur, c, own->uid, own->gid, AT_SYMLINK_NOFOLLOW) < 0))
					return kiln_err_set(err, errno, "mkdir `%s`", sofar);
				fd = openat(cur, c,
				            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (fd < 0)
					return kiln_err_set(err, errno, "open `%s`", sofar);
			}
		}
		if (fd < 0)
			return kiln_err_wrap(err, "mkdir `%s`", path);
		close(cur);
		cur = fd;
	}
	return TAKE_FD(cur);
}

/* ---- ADD: unpacking local archives ---- */

/* ADD --chown of an archive: the entries it extracted get the owner (BuildKit passes the
 * user to its tar applier). Each name is resolved again inside the directory it went to. */
static int
chown_entries(struct fop *f, int tar, int dirfd)
{
	if (lseek(tar, 0, SEEK_SET) < 0)
		return kiln_err_set(f->err, errno, "seek");
	_cleanup_archive_ struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, tar, 65536) != ARCHIVE_OK)
		return kiln_err_invalid(f->err, "reread: %s", archive_error_string(a));
	struct archive_entry *ent;
	int r;
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(ent);
		if (!name)
			continue;
		struct kiln_err e = KILN_ERR_INIT;
		_cleanup_close_ int fd =
		        kiln_path_openat_in_root(dirfd, name, O_PATH | O_NOFOLLOW, 0, &e);
		kiln_err_release(&e);
		if (fd < 0)
			continue; /* a whiteout, or replaced by a later entry */
		if (fchownat(fd, "", f->owner.uid, f->owner.gid,
		             AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return kiln_err_set(f->err, errno, "chown `%s`", name);
	}
	if (r != ARCHIVE_EOF)
		return kiln_err_invalid(f->err, "reread: %s", archive_error_string(a));
	return 0;
}

/*
 * If the file is a tar (plain or gzip/bzip2/xz/zstd-compressed, as Docker's ADD detects),
 * extract it into dest_dirfd and set *unpacked. The extraction is snapshot/apply.c's: every
 * entry resolved inside dest_dirfd. A compressed archive is decompressed into a memfd first
 * because snap_tar_apply_at reads only plain, gzip and zstd tars.
 */
static int
try_unpack(struct fop *f, int srcfd, const char *srcpath, const char *target, bool *unpacked)
{
	*unpacked = false;
	_cleanup_close_ int in = reopen_read(srcfd, false);
	if (in < 0)
		return kiln_err_set(f->err, -in, "open \"%s\"", srcpath);
	_cleanup_archive_ struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	struct archive_entry *ent;
	if (archive_read_open_fd(a, in, 65536) != ARCHIVE_OK ||
	    archive_read_next_header(a, &ent) != ARCHIVE_OK)
		return 0; /* not an archive: copied as a file */
	int filter = archive_filter_code(a, 0);
	archive_read_free(a);
	a = NULL;
	/* An archive always goes into a directory, made as BuildKit's MkdirAll would. */
	_cleanup_close_ int dest_dirfd = mkdir_all(f->dest_rootfd, target, 0755, &f->owner, f->err);
	if (dest_dirfd < 0)
		return kiln_err_wrap(f->err, "%s", f->what);
	if (lseek(in, 0, SEEK_SET) < 0)
		return kiln_err_set(f->err, errno, "seek \"%s\"", srcpath);
	_cleanup_close_ int tar = -1;
	if (filter == ARCHIVE_FILTER_NONE) {
		tar = TAKE_FD(in);
	} else {
		tar = memfd_create("kiln-add", MFD_CLOEXEC);
		if (tar < 0)
			return kiln_err_set(f->err, errno, "memfd");
		a = archive_read_new();
		archive_read_support_filter_all(a);
		archive_read_support_format_raw(a);
		if (archive_read_open_fd(a, in, 65536) != ARCHIVE_OK ||
		    archive_read_next_header(a, &ent) != ARCHIVE_OK)
			return kiln_err_invalid(f->err, "decompress \"%s\": %s", srcpath,
			                        archive_error_string(a));
		char buf[65536];
		la_ssize_t n;
		while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
			for (la_ssize_t w = 0; w < n;) {
				ssize_t m = write(tar, buf + w, (size_t)(n - w));
				if (m < 0)
					return kiln_err_set(f->err, errno, "decompress \"%s\"",
					                    srcpath);
				w += m;
			}
		if (n < 0)
			return kiln_err_invalid(f->err, "decompress \"%s\": %s", srcpath,
			                        archive_error_string(a));
		if (lseek(tar, 0, SEEK_SET) < 0)
			return kiln_err_set(f->err, errno, "seek");
	}
	struct snap_apply_opts o = SNAP_APPLY_OPTS_INIT;
	o.whiteouts = SNAP_WHITEOUTS_DELETE;
	if (snap_tar_apply_at(dest_dirfd, tar, &o, f->err) < 0)
		return kiln_err_wrap(f->err, "unpack \"%s\"", srcpath);
	*unpacked = true;
	if (f->owner.set && chown_entries(f, tar, dest_dirfd) < 0)
		return kiln_err_wrap(f->err, "unpack \"%s\"", srcpath);
	return 0;
}

/* ---- actions ---- */

static int
input_root(struct fop *f, const json_t *a, int *ret)
{
	json_t *in = json_object_get(a, "input");
	json_int_t i = in ? json_integer_value(in) : 0;
	if (in && !json_is_integer(in))
		return kiln_err_invalid(f->err, "file op: \"input\" must be an integer");
	if (i < 0 || (i > 0 && (size_t)i >= f->nsrc))
		return kiln_err_invalid(f->err, "file op: no input %lld", (long long)i);
	*ret = i == 0 ? f->dest_rootfd : f->srcs[i];
	if (*ret < 0)
		return kiln_err_invalid(f->err, "file op: input %lld has no root", (long long)i);
	return 0;
}

static int
exclude_parse(const json_t *a, struct fe_ignore **ret, struct kiln_err *err)
{
	*ret = NULL;
	json_t *ex = json_object_get(a, "exclude");
	if (!json_is_array(ex) || json_array_size(ex) == 0)
		return 0;
	_cleanup_strv_ struct kiln_strv pats = KILN_STRV_INIT;
	size_t i;
	json_t *p;
	json_array_foreach(ex, i, p)
	{
		if (json_is_string(p))
			kiln_strv_push(&pats, json_string_value(p));
	}
	return fe_ignore_from_list(pats.v, pats.n, ret, err);
}

/* Copy one matched source (already opened) as the action says. */
static int
copy_one(struct fop *f, const json_t *a, int srcroot, const char *match, const char *dest,
         bool dest_dir)
{
	bool follow = jbool(a, "follow_symlinks");
	bool contents = jbool(a, "dir_contents_only");
	struct stat st;
	_cleanup_close_ int sfd = source_open(srcroot, match, follow, &st, f->err);
	if (sfd < 0)
		return sfd;
	_cleanup_free_ char *mdir = NULL, *mbase = NULL;
	split_path(match, &mdir, &mbase);
	if (kiln_str_eq(match, "/"))
		mbase[0] = '\0';

	_cleanup_free_ char *target = NULL; /* the destination path of the source itself */
	if (jbool(a, "parents")) {
		const char *keep = parents_rel(jstr(a, "src"), match);
		target = kiln_path_join(dest, keep);
		dest_dir = false;
	} else {
		target = kiln_path_join("/", dest);
	}
	/* Does `target` name an existing directory (inside the destination root)? */
	struct kiln_err e = KILN_ERR_INIT;
	_cleanup_close_ int tfd =
	        kiln_path_openat_in_root(f->dest_rootfd, target, O_PATH | O_DIRECTORY, 0, &e);
	kiln_err_release(&e);
	bool target_is_dir = tfd >= 0;

	struct owner own = f->owner;
	if (jbool(a, "unpack") && S_ISREG(st.st_mode)) {
		bool done;
		int r = try_unpack(f, sfd, match, target, &done);
		if (r < 0 || done)
			return r;
	}

	/* BuildKit's prepareTargetDir: a non-directory (or, without contents_only, a
	 * directory) going to an existing or slash-ended directory lands inside it. */
	bool inside = S_ISDIR(st.st_mode) ? (!contents && (target_is_dir || dest_dir))
	                                  : (target_is_dir || dest_dir);
	if (inside && *mbase) {
		char *t = kiln_path_join(target, mbase);
		free(target);
		target = t;
	}
	if (S_ISDIR(st.st_mode) && kiln_str_eq(target, "/")) {
		_cleanup_close_ int root = kiln_path_openat_in_root(
		        f->dest_rootfd, "/", O_RDONLY | O_DIRECTORY, 0, f->err);
		if (root < 0)
			return root;
		_cleanup_close_ int in = reopen_read(sfd, true);
		if (in < 0)
			return kiln_err_set(f->err, -in, "open \"%s\"", match);
		return copy_children(f, in, "", match, root, "/");
	}
	_cleanup_free_ char *tdir = NULL, *tbase = NULL;
	split_path(target, &tdir, &tbase);
	if (!jbool(a, "create_dest_path") && !inside) {
		_cleanup_close_ int p = kiln_path_openat_in_root(f->dest_rootfd, tdir,
		                                                 O_PATH | O_DIRECTORY, 0, f->err);
		if (p < 0)
			return kiln_err_wrap(f->err, "%s", f->what);
	}
	_cleanup_close_ int pfd = mkdir_all(f->dest_rootfd, tdir, 0755, &own, f->err);
	if (pfd < 0)
		return kiln_err_wrap(f->err, "%s", f->what);
	/* The last component of a destination may be a symlink to a directory: BuildKit
	 * resolves it (inside the root); a symlink to anything else is replaced. */
	struct stat lst;
	if (fstatat(pfd, tbase, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode) &&
	    S_ISDIR(st.st_mode)) {
		_cleanup_close_ int through = kiln_path_openat_in_root(
		        f->dest_rootfd, target, O_RDONLY | O_DIRECTORY, 0, &e);
		kiln_err_release(&e);
		if (through >= 0) {
			_cleanup_close_ int in = reopen_read(sfd, true);
			if (in < 0)
				return kiln_err_set(f->err, -in, "open \"%s\"", match);
			return copy_children(f, in, "", match, through, target);
		}
	}
	return copy_tree(f, sfd, &st, "", match, pfd, tbase, target, contents);
}

/* The matches of one copy action, copied; f->exclude is the action's. */
static int
copy_matches(struct fop *f, const json_t *a, int srcroot, const char *src, const char *dest)
{
	bool wildcard = jbool(a, "allow_wildcard");
	_cleanup_strv_ struct kiln_strv matches = KILN_STRV_INIT;
	int r = source_matches(srcroot, src, wildcard, &matches, f->err);
	if (r < 0)
		return r;
	/* --exclude applies to a wildcard's matches by name too (COPY --exclude=*.txt hom*). */
	size_t keep = 0;
	for (size_t i = 0; i < matches.n; i++) {
		const char *base = strrchr(matches.v[i], '/') + 1;
		if (wildcard && has_wildcard(src) && excluded(f->exclude, base)) {
			free(matches.v[i]);
			continue;
		}
		matches.v[keep++] = matches.v[i];
	}
	matches.n = keep;
	if (matches.v)
		matches.v[keep] = NULL;
	if (matches.n == 0) {
		if (wildcard && has_wildcard(src) && jbool(a, "allow_empty_wildcard"))
			return 0;
		_cleanup_free_ char *clean = kiln_path_join("/", src);
		r = kiln_err_set(f->err, ENOENT, "%s failed: \"%s\": not found", f->what, clean);
		f->err->sys = false; /* the message says it all */
		return r;
	}
	size_t dl = strlen(dest);
	bool dest_dir = dl == 0 || dest[dl - 1] == '/' || kiln_str_eq(dest, ".") ||
	                kiln_str_has_suffix(dest, "/.") || matches.n > 1;
	for (size_t i = 0; i < matches.n; i++)
		if ((r = copy_one(f, a, srcroot, matches.v[i], dest, dest_dir)) < 0)
			return r;
	return 0;
}

static int
do_copy(struct fop *f, const json_t *a)
{
	const char *src = jstr(a, "src");
	const char *dest = jstr(a, "dest");
	if (!src || !dest)
		return kiln_err_invalid(f->err, "file op: copy needs \"src\" and \"dest\"");
	int srcroot = -1;
	int r = input_root(f, a, &srcroot);
	if (r < 0)
		return r;
	f->what = jbool(a, "unpack") ? "ADD" : "COPY";
	if ((r = owner_resolve(f->dest_rootfd, json_object_get(a, "chown"), &f->owner, f->err)) <
	            0 ||
	    (r = mode_parse(json_object_get(a, "mode"), &f->mode, f->err)) < 0)
		return kiln_err_wrap(f->err, "%s %s", f->what, src);
	_cleanup_ignore_ struct fe_ignore *ex = NULL;
	if ((r = exclude_parse(a, &ex, f->err)) < 0)
		return r;
	f->exclude = ex;
	f->copy = (struct ops_copy_state){0};
	r = copy_matches(f, a, srcroot, src, dest);
	f->exclude = NULL;
	links_clear(f);
	return r;
}

static int
do_mkdir(struct fop *f, const json_t *a)
{
	const char *path = jstr(a, "path");
	if (!path)
		return kiln_err_invalid(f->err, "file op: mkdir needs \"path\"");
	json_t *jm = json_object_get(a, "mode");
	mode_t mode = jm ? (mode_t)json_integer_value(jm) & 07777 : 0755;
	struct owner own;
	int r = owner_resolve(f->dest_rootfd, json_object_get(a, "chown"), &own, f->err);
	if (r < 0)
		return kiln_err_wrap(f->err, "mkdir %s", path);
	if (jbool(a, "parents")) {
		_cleanup_close_ int fd = mkdir_all(f->dest_rootfd, path, mode, &own, f->err);
		return fd < 0 ? kiln_err_wrap(f->err, "mkdir %s", path) : 0;
	}
	_cleanup_free_ char *dir = NULL, *base = NULL;
	split_path(path, &dir, &base);
	_cleanup_close_ int pfd =
	        kiln_path_openat_in_root(f->dest_rootfd, dir, O_RDONLY | O_DIRECTORY, 0, f->err);
	if (pfd < 0)
		return kiln_err_wrap(f->err, "mkdir %s", path);
	if (!*base)
		return 0;
	if (mkdirat(pfd, base, mode) < 0) {
		if (errno == EEXIST)
			return 0; /* BuildKit leaves whatever is there as it is */
		return kiln_err_set(f->err, errno, "mkdir %s", path);
	}
	if (fchmodat(pfd, base, mode, 0) < 0 ||
	    (own.set && fchownat(pfd, base, own.uid, own.gid, AT_SYMLINK_NOFOLLOW) < 0))
		return kiln_err_set(f->err, errno, "mkdir %s", path);
	return 0;
}

static int
do_mkfile(struct fop *f, const json_t *a)
{
	const char *path = jstr(a, "path");
	json_t *jd = json_object_get(a, "data");
	if (!path || !json_is_string(jd))
		return kiln_err_invalid(f->err, "file op: mkfile needs \"path\" and \"data\"");
	json_t *jm = json_object_get(a, "mode");
	mode_t mode = jm ? (mode_t)json_integer_value(jm) & 07777 : 0644;
	struct owner own;
	int r = owner_resolve(f->dest_rootfd, json_object_get(a, "chown"), &own, f->err);
	if (r < 0)
		return kiln_err_wrap(f->err, "mkfile %s", path);
	_cleanup_free_ char *dir = NULL, *base = NULL;
	split_path(path, &dir, &base);
	if (!*base)
		return kiln_err_invalid(f->err, "mkfile %s: not a file name", path);
	_cleanup_close_ int pfd =
	        kiln_path_openat_in_root(f->dest_rootfd, dir, O_RDONLY | O_DIRECTORY, 0, f->err);
	if (pfd < 0)
		return kiln_err_wrap(f->err, "mkfile %s", path);
	struct stat st;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
	    (r = remove_nondir(pfd, base)) < 0)
		return kiln_err_set(f->err, -r, "mkfile %s", path);
	_cleanup_close_ int fd =
	        openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return kiln_err_set(f->err, errno, "mkfile %s", path);
	const char *data = json_string_value(jd);
	size_t len = json_string_length(jd);
	for (size_t w = 0; w < len;) {
		ssize_t n = write(fd, data + w, len - w);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_err_set(f->err, errno, "mkfile %s", path);
		w += (size_t)n;
	}
	if ((own.set && fchown(fd, own.uid, own.gid) < 0) || fchmod(fd, mode) < 0)
		return kiln_err_set(f->err, errno, "mkfile %s", path);
	return 0;
}

int
ops_file_run(const json_t *def, int dest_rootfd, const int *src_rootfds, size_t nsrc,
             const struct ops_file_env *env, struct kiln_err *err)
{
	json_t *actions = json_object_get(def, "actions");
	if (!json_is_array(actions))
		return kiln_err_invalid(err, "file op: \"actions\" must be an array");
	struct fop f = {.dest_rootfd = dest_rootfd,
	                .srcs = src_rootfds,
	                .nsrc = nsrc,
	                .cancel_fd = env ? env->cancel_fd : -1,
	                .err = err,
	                .record = env ? env->record : NULL,
	                .prev = env ? env->prev : NULL};
	_cleanup_free_ bool *seen = NULL;
	if (f.prev)
		f.seen = seen = kiln_xcalloc(ops_copy_manifest_count(f.prev) + 1, sizeof(bool));
	size_t i;
	json_t *a;
	json_array_foreach(actions, i, a)
	{
		const char *kind = jstr(a, "action");
		int r;
		if (!kind)
			return kiln_err_invalid(err, "file op: action %zu has no \"action\"", i);
		if (kiln_str_eq(kind, "copy"))
			r = do_copy(&f, a);
		else if (kiln_str_eq(kind, "mkdir"))
			r = do_mkdir(&f, a);
		else if (kiln_str_eq(kind, "mkfile"))
			r = do_mkfile(&f, a);
		else
			r = kiln_err_invalid(err, "file op: unknown action \"%s\"", kind);
		if (r < 0)
			return r;
	}
	/* What the first copy wrote and nothing wrote now is from a deleted source. */
	if (f.prev && f.nseen != ops_copy_manifest_count(f.prev))
		return kiln_err_set(err, ESTALE, "%zu source entries are gone",
		                    ops_copy_manifest_count(f.prev) - f.nseen);
	if (env && env->ret_changed)
		*env->ret_changed = f.changed;
	return 0;
}

/* ---- content digest ---- */

struct dig {
	struct kiln_sha256 *h;
	struct ops_stat_index *idx;
	struct fe_ignore *exclude;
	struct ops_stat_batch *stats;
	struct kiln_err *err;
	/* Hash input gathered into blocks: a file's record is ~6 small pieces, and one
	 * EVP update per piece cost more than the hashing (20,000 files). */
	size_t blen;
	unsigned char buf[4096];
};

static void
dig_add(struct dig *d, const void *p, size_t len)
{
	if (d->blen + len > sizeof(d->buf)) {
		kiln_sha256_update(d->h, d->buf, d->blen);
		d->blen = 0;
		if (len > sizeof(d->buf)) {
			kiln_sha256_update(d->h, p, len);
			return;
		}
	}
	memcpy(d->buf + d->blen, p, len);
	d->blen += len;
}

static void
dig_str(struct dig *d, const char *s)
{
	dig_add(d, s, strlen(s) + 1);
}

/* The decimal text and its NUL, as "%llu" (by hand: three per file of a big context). */
static void
dig_u64(struct dig *d, uint64_t v)
{
	char b[24];
	char *p = b + sizeof(b);
	*--p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	dig_add(d, p, (size_t)(b + sizeof(b) - p));
}

static void
dig_head(struct dig *d, const struct stat *st, const char *rel)
{
	dig_str(d, *rel ? rel : ".");
	dig_u64(d, st->st_mode);
	dig_u64(d, st->st_uid);
	dig_u64(d, st->st_gid);
}

static int
dig_entry(struct dig *d, int fd, const struct stat *st, const char *rel, const char *srcpath)
{
	dig_head(d, st, rel);
	int r;
	if (S_ISLNK(st->st_mode)) {
		_cleanup_free_ char *target = read_link(fd);
		if (!target)
			return kiln_err_set(d->err, errno, "readlink \"%s\"", srcpath);
		dig_str(d, target);
	} else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		dig_u64(d, st->st_rdev);
	} else if (S_ISREG(st->st_mode)) {
		struct kiln_digest cd;
		if ((r = ops_stat_index_file_digest(d->idx, fd, st, &cd, d->err)) < 0)
			return kiln_err_wrap(d->err, "\"%s\"", srcpath);
		dig_add(d, cd.bytes, sizeof(cd.bytes));
	} else if (S_ISDIR(st->st_mode)) {
		_cleanup_close_ int in = reopen_read(fd, true);
		if (in < 0)
			return kiln_err_set(d->err, -in, "open \"%s\"", srcpath);
		_cleanup_dir_names_ struct ops_dir_names names = {0};
		if ((r = ops_dir_names_read(in, &names)) < 0)
			return kiln_err_set(d->err, -r, "read directory \"%s\"", srcpath);
		bool exceptions = exclude_has_exceptions(d->exclude);
		/* Every child's stat by name first (on both cores): an unchanged file the index
		 * knows is never opened (a no-change rebuild of a big context is a stat per
		 * file). */
		_cleanup_free_ struct stat *sts =
		        kiln_xreallocarray(NULL, names.n ? names.n : 1, sizeof(*sts));
		_cleanup_free_ int *serrs =
		        kiln_xreallocarray(NULL, names.n ? names.n : 1, sizeof(int));
		ops_stat_batch_run(d->stats, in, names.v, names.n, sts, serrs);
		_cleanup_buf_ struct kiln_buf crel = KILN_BUF_INIT;
		if (*rel) {
			kiln_buf_addstr(&crel, rel);
			kiln_buf_addch(&crel, '/');
		}
		size_t plen = crel.len;
		for (size_t i = 0; i < names.n; i++) {
			const char *n = names.v[i];
			kiln_buf_setlen(&crel, plen);
			kiln_buf_addstr(&crel, n);
			struct stat cst = sts[i];
			int serr = serrs[i];
			if (!serr && excluded(d->exclude, crel.buf) &&
			    !(S_ISDIR(cst.st_mode) && exceptions))
				continue;
			struct kiln_digest cd;
			if (!serr && S_ISREG(cst.st_mode) &&
			    ops_stat_index_lookup(d->idx, &cst, &cd)) {
				dig_head(d, &cst, crel.buf);
				dig_add(d, cd.bytes, sizeof(cd.bytes));
				continue;
			}
			_cleanup_free_ char *cpath = kiln_path_join(srcpath, n);
			if (serr)
				return kiln_err_set(d->err, serr, "stat \"%s\"", cpath);
			_cleanup_close_ int cfd = openat(in, n, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0 || fstat(cfd, &cst) < 0)
				return kiln_err_set(d->err, errno, "stat \"%s\"", cpath);
			if (excluded(d->exclude, crel.buf) && !(S_ISDIR(cst.st_mode) && exceptions))
				continue;
			if ((r = dig_entry(d, cfd, &cst, crel.buf, cpath)) < 0)
				return r;
		}
	}
	return 0;
}

int
ops_file_content_digest(const json_t *action, int src_rootfd, struct ops_stat_index *idx,
                        struct kiln_digest *ret, struct kiln_err *err)
{
	const char *src = jstr(action, "src");
	if (!src)
		return kiln_err_invalid(err, "file op: copy needs \"src\"");
	_cleanup_ignore_ struct fe_ignore *ex = NULL;
	int r = exclude_parse(action, &ex, err);
	if (r < 0)
		return r;
	bool wildcard = jbool(action, "allow_wildcard");
	_cleanup_strv_ struct kiln_strv matches = KILN_STRV_INIT;
	if ((r = source_matches(src_rootfd, src, wildcard, &matches, err)) < 0)
		return kiln_err_wrap(err, "failed to compute cache key");
	_cleanup_stat_batch_ struct ops_stat_batch *stats = ops_stat_batch_new();
	struct dig d = {
	        .h = kiln_sha256_new(), .idx = idx, .exclude = ex, .stats = stats, .err = err};
	size_t n = 0;
	for (size_t i = 0; i < matches.n; i++) {
		const char *base = strrchr(matches.v[i], '/') + 1;
		if (wildcard && has_wildcard(src) && excluded(ex, base))
			continue;
		n++;
		struct stat st;
		_cleanup_close_ int fd = source_open(src_rootfd, matches.v[i],
		                                     jbool(action, "follow_symlinks"), &st, err);
		if (fd < 0) {
			kiln_sha256_free(d.h);
			return kiln_err_wrap(err, "failed to compute cache key");
		}
		dig_str(&d, matches.v[i]);
		if ((r = dig_entry(&d, fd, &st, "", matches.v[i])) < 0) {
			kiln_sha256_free(d.h);
			return kiln_err_wrap(err, "failed to compute cache key");
		}
	}
	if (n == 0 && !(wildcard && has_wildcard(src) && jbool(action, "allow_empty_wildcard"))) {
		kiln_sha256_free(d.h);
		_cleanup_free_ char *clean = kiln_path_join("/", src);
		r = kiln_err_set(err, ENOENT, "failed to compute cache key: \"%s\": not found",
		                 clean);
		err->sys = false;
		return r;
	}
	kiln_sha256_update(d.h, d.buf, d.blen);
	kiln_sha256_final(d.h, ret);
	return 0;
}
