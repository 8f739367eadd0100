/*
 * The snapshot store: committed snapshots (named diffs with parents), active snapshots
 * (overlay mounts or native copies) and layer unpacking. The layout is described in
 * snap.h.
 *
 * Crash safety: anything is built under tmp/ and renamed into diffs/ whole; a meta record
 * is written to tmp/ and renamed into meta/ with RENAME_NOREPLACE, under the store's
 * lock file. A handle holds a shared lock on `users` while it is open; whoever opens the
 * store and can take that lock exclusively is alone, and removes what dead processes left
 * in tmp/ and active/ (unmounting first).
 *
 * Long chains: mount(2) takes one page of options. When absolute lowerdir paths do not
 * fit, the mount is made from a helper thread that has its own working directory
 * (unshare(CLONE_FS)) in l/, naming each lower by its 10-character link, as Docker's
 * overlay2 driver does from a re-exec'd child. Past ~350 layers even that is too long,
 * and the layers are passed one by one through fsconfig (mount_fsconfig).
 */
#include "snap_int.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define LINK_LEN       10
#define MAX_CHAIN      1000
#define MOUNT_DATA_MAX 4000 /* one page, less a margin */
#define OVERLAY_EXTRA  "index=off,redirect_dir=off,metacopy=off"

struct snap_store {
	char *path;
	int dirfd;
	enum snap_driver driver;
	char *notice;
	int users_fd;
	bool extra_opts; /* the kernel takes OVERLAY_EXTRA */
};

struct snap_mount {
	struct snap_store *s;
	char *id; /* under active/ */
	char *path;
	char *upper;
	bool mounted;
	bool readonly;
	bool committed;
	struct kiln_buf labels; /* "label KEY VALUE\n" lines for the meta record */
};

int
snap_driver_parse(const char *s, enum snap_driver *ret, struct kiln_err *err)
{
	if (kiln_str_eq(s, "auto"))
		*ret = SNAP_DRIVER_AUTO;
	else if (kiln_str_eq(s, "overlayfs") || kiln_str_eq(s, "overlay"))
		*ret = SNAP_DRIVER_OVERLAY;
	else if (kiln_str_eq(s, "native"))
		*ret = SNAP_DRIVER_NATIVE;
	else
		return kiln_err_invalid(err, "unknown snapshotter `%s` (auto, overlayfs, native)",
		                        s);
	return 0;
}

const char *
snap_driver_name(enum snap_driver d)
{
	switch (d) {
	case SNAP_DRIVER_OVERLAY:
		return "overlayfs";
	case SNAP_DRIVER_NATIVE:
		return "native";
	default:
		return "auto";
	}
}

bool
snap_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 200 || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._:+-", *p)))
			return false;
	return true;
}

char *
snap_chain_id(const char *parent_chain, const char *diff_id)
{
	if (!parent_chain)
		return kiln_xstrdup(diff_id);
	_cleanup_free_ char *in = kiln_xasprintf("%s %s", parent_chain, diff_id);
	struct kiln_digest d;
	kiln_sha256_buf(in, strlen(in), &d);
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_digest_format(&d, hex);
	return kiln_xstrdup(hex);
}

/* ---- locks, records, links ---- */

/* The store's metadata lock: a fresh open file description each time, so threads of one
 * process exclude each other too. Returns the fd to close, or -errno. */
static int
store_lock(struct snap_store *s, struct kiln_err *err)
{
	int fd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return kiln_err_set(err, errno, "open %s/lock", s->path);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int r = kiln_err_set(err, errno, "lock %s/lock", s->path);
			close(fd);
			return r;
		}
	}
	return fd;
}

/* `sync`: fsync the file. Not for files a later syncfs covers, nor for records in
 * active/, which a crash discards anyway. */
static int
write_file_at(int dirfd, const char *name, const char *content, bool sync)
{
	_cleanup_close_ int fd =
	        openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t n = strlen(content);
	if (write(fd, content, n) != (ssize_t)n)
		return errno ? -errno : -EIO;
	if (sync && fsync(fd) < 0)
		return -errno;
	return 0;
}

static int
read_file_at(int dirfd, const char *name, struct kiln_buf *out)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct kiln_err e = KILN_ERR_INIT;
	int r = kiln_buf_read_fd(out, fd, &e);
	kiln_err_release(&e);
	return r;
}

struct meta {
	char *diff;
	char *parent;
};

static void
meta_release(struct meta *m)
{
	free(m->diff);
	free(m->parent);
	*m = (struct meta){0};
}

static int
meta_read(struct snap_store *s, const char *name, struct meta *m, struct kiln_err *err)
{
	if (!snap_name_valid(name))
		return kiln_err_invalid(err, "invalid snapshot name `%s`", name);
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	_cleanup_free_ char *rel = kiln_xasprintf("meta/%s", name);
	int r = read_file_at(s->dirfd, rel, &b);
	if (r < 0)
		return kiln_err_set(err, -r, "snapshot `%s`", name);
	*m = (struct meta){0};
	char *save = NULL;
	for (char *line = strtok_r(b.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (kiln_str_has_prefix(line, "diff "))
			m->diff = kiln_xstrdup(line + 5);
		else if (kiln_str_has_prefix(line, "parent "))
			m->parent = kiln_xstrdup(line + 7);
	}
	if (!m->diff || !snap_name_valid(m->diff) || (m->parent && !snap_name_valid(m->parent))) {
		meta_release(m);
		return kiln_err_set(err, EUCLEAN, "snapshot `%s`: corrupt record", name);
	}
	return 0;
}

/* Publish meta/<name> atomically; -EEXIST (err untouched) if the name is taken. `labels`
 * (may be NULL) are "label KEY VALUE" lines, which meta_read skips. */
static int
meta_write(struct snap_store *s, const char *name, const char *diff, const char *parent,
           const char *labels, struct kiln_err *err)
{
	char rnd[17];
	snap_random_name(rnd, 16);
	_cleanup_free_ char *tmp = kiln_xasprintf("tmp/meta-%s", rnd);
	_cleanup_free_ char *dst = kiln_xasprintf("meta/%s", name);
	_cleanup_free_ char *text =
	        kiln_xasprintf("diff %s\n%s%s%s%s", diff, parent ? "parent " : "",
	                       parent ? parent : "", parent ? "\n" : "", labels ? labels : "");
	int r = write_file_at(s->dirfd, tmp, text, true);
	if (r < 0)
		return kiln_err_set(err, -r, "write snapshot record `%s`", name);
	if (renameat2(s->dirfd, tmp, s->dirfd, dst, RENAME_NOREPLACE) < 0) {
		r = -errno;
		unlinkat(s->dirfd, tmp, 0);
		if (r == -EEXIST)
			return r;
		return kiln_err_set(err, -r, "publish snapshot record `%s`", name);
	}
	return 0;
}

/* l/<link> -> ../diffs/<diff>/fs, recreated if a crash lost it. */
static int
ensure_link(struct snap_store *s, const char *diff, char link[LINK_LEN + 1], struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	_cleanup_free_ char *rel = kiln_xasprintf("diffs/%s/link", diff);
	int r = read_file_at(s->dirfd, rel, &b);
	if (r < 0 || b.len != LINK_LEN)
		return kiln_err_set(err, r < 0 ? -r : EUCLEAN, "read link of diff %s", diff);
	memcpy(link, b.buf, LINK_LEN + 1);
	_cleanup_free_ char *lpath = kiln_xasprintf("l/%s", link);
	_cleanup_free_ char *target = kiln_xasprintf("../diffs/%s/fs", diff);
	if (symlinkat(target, s->dirfd, lpath) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "link %s", lpath);
	return 0;
}

/*
 * pending/<diff> says "diffs/<diff> is being published for, or removed from, snapshot
 * <name>" (its text: "<name>\n"), for the commit diffs (c-*), which only that one record
 * ever names. Written before the diff is published or the record removed, and removed
 * once both agree, so the only diffs a killed process can leave nobody names are the ones
 * marked here: opening the store looks at pending/, never at every record. Published
 * by rename, so a marker is always whole.
 */
static int
pending_begin(struct snap_store *s, const char *diff, const char *name, struct kiln_err *err)
{
	char rnd[17];
	snap_random_name(rnd, 16);
	_cleanup_free_ char *tmp = kiln_xasprintf("tmp/pending-%s", rnd);
	_cleanup_free_ char *dst = kiln_xasprintf("pending/%s", diff);
	_cleanup_free_ char *text = kiln_xasprintf("%s\n", name);
	/* No fsync: a commit's publish_diff syncs the store before the diff appears; a
	 * removal whose marker a power loss drops leaves a diff behind, never loses one. */
	int r = write_file_at(s->dirfd, tmp, text, false);
	if (r == 0 && renameat(s->dirfd, tmp, s->dirfd, dst) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(s->dirfd, tmp, 0);
		return kiln_err_set(err, -r, "write %s/%s", s->path, dst);
	}
	return 0;
}

static void
pending_end(struct snap_store *s, const char *diff)
{
	_cleanup_free_ char *rel = kiln_xasprintf("pending/%s", diff);
	unlinkat(s->dirfd, rel, 0);
}

/*
 * Move the built tree tmp/<build>/fs (or `from`, a path relative to the store) into
 * diffs/<diff>: tmp/<build> gets its link file, then is renamed whole. -EEXIST (err
 * untouched) when diffs/<diff> already exists.
 */
static int
publish_diff(struct snap_store *s, const char *build, const char *diff, struct kiln_err *err)
{
	char link[LINK_LEN + 1];
	snap_random_name(link, LINK_LEN);
	_cleanup_free_ char *lrel = kiln_xasprintf("%s/link", build);
	int r = write_file_at(s->dirfd, lrel, link, false); /* the syncfs below */
	if (r < 0)
		return kiln_err_set(err, -r, "write %s", lrel);
	/* Everything written into the tree must be on disk before it is published. */
	if (syncfs(s->dirfd) < 0)
		return kiln_err_set(err, errno, "sync snapshot store");
	_cleanup_free_ char *dst = kiln_xasprintf("diffs/%s", diff);
	if (renameat2(s->dirfd, build, s->dirfd, dst, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			return -EEXIST;
		return kiln_err_set(err, errno, "publish %s", dst);
	}
	return 0;
}

static int
new_dir_in(struct snap_store *s, const char *area, char **ret_rel, struct kiln_err *err)
{
	char rnd[17];
	snap_random_name(rnd, 16);
	char *rel = kiln_xasprintf("%s/%s", area, rnd);
	if (mkdirat(s->dirfd, rel, 0700) < 0) {
		int r = kiln_err_set(err, errno, "mkdir %s/%s", s->path, rel);
		free(rel);
		return r;
	}
	*ret_rel = rel;
	return 0;
}

static int
open_dir_at(struct snap_store *s, const char *rel, struct kiln_err *err)
{
	int fd = openat(s->dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kiln_err_set(err, errno, "open %s/%s", s->path, rel);
	return fd;
}

static void
remove_rel(struct snap_store *s, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	_cleanup_free_ char *dir = kiln_xstrndup(rel, (size_t)(slash - rel));
	_cleanup_close_ int fd = openat(s->dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		kiln_rm_rf_at(fd, slash + 1);
}

/* The diffs of `name` and its ancestors, top first. */
static int
chain_diffs(struct snap_store *s, const char *name, struct kiln_strv *ret, struct kiln_err *err)
{
	_cleanup_free_ char *cur = name ? kiln_xstrdup(name) : NULL;
	while (cur) {
		if (ret->n >= MAX_CHAIN)
			return kiln_err_set(err, ELOOP, "snapshot `%s`: chain longer than %d", name,
			                    MAX_CHAIN);
		struct meta m;
		int r = meta_read(s, cur, &m, err);
		if (r < 0)
			return r;
		kiln_strv_push_take(ret, TAKE_PTR(m.diff));
		free(cur);
		cur = TAKE_PTR(m.parent);
	}
	return 0;
}

/* ---- mounting ---- */

struct mount_job {
	const char *cwd;
	const char *target;
	const char *data;
	unsigned long flags;
	int rc;
};

static void *
mount_thread(void *p)
{
	struct mount_job *j = p;
	/* The working directory becomes this thread's own: the caller's threads keep
	 * theirs. */
	if (unshare(CLONE_FS) < 0 || chdir(j->cwd) < 0 ||
	    mount("overlay", j->target, "overlay", j->flags, j->data) < 0)
		j->rc = -errno;
	return NULL;
}

static int
mount_from(const char *cwd, const char *target, unsigned long flags, const char *data)
{
	struct mount_job j = {.cwd = cwd, .target = target, .data = data, .flags = flags};
	pthread_t t;
	int r = pthread_create(&t, NULL, mount_thread, &j);
	if (r != 0)
		return -r;
	pthread_join(t, NULL);
	return j.rc;
}

/*
 * The new mount API takes one option per call (each value at most 256 bytes), and
 * overlayfs (Linux 6.8+) adds lowers one by one with "lowerdir+": no limit on the whole
 * chain but overlayfs' own 500 layers. Paths go through /proc/self/fd/<store fd> so
 * each stays short whatever the store path.
 */
static int
mount_fsconfig(struct snap_store *s, struct kiln_strv *diffs, const char *id, bool readonly,
               const char *target)
{
	_cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -errno;
	char p[256];
	for (size_t i = 0; i <= diffs->n; i++) {
		if (i < diffs->n)
			snprintf(p, sizeof(p), "/proc/self/fd/%d/diffs/%s/fs", s->dirfd,
			         diffs->v[i]);
		else
			snprintf(p, sizeof(p), "/proc/self/fd/%d/empty", s->dirfd);
		if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", p, 0) < 0)
			return -errno;
	}
	if (!readonly) {
		snprintf(p, sizeof(p), "/proc/self/fd/%d/active/%s/upper", s->dirfd, id);
		if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", p, 0) < 0)
			return -errno;
		snprintf(p, sizeof(p), "/proc/self/fd/%d/active/%s/work", s->dirfd, id);
		if (fsconfig(fs, FSCONFIG_SET_STRING, "workdir", p, 0) < 0)
			return -errno;
	}
	if (s->extra_opts) {
		static const char *const kv[][2] = {
		        {"index", "off"}, {"redirect_dir", "off"}, {"metacopy", "off"}};
		for (size_t i = 0; i < KILN_ARRAY_SIZE(kv); i++)
			if (fsconfig(fs, FSCONFIG_SET_STRING, kv[i][0], kv[i][1], 0) < 0)
				return -errno;
	}
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return -errno;
	_cleanup_close_ int mnt = fsmount(fs, FSMOUNT_CLOEXEC, readonly ? MOUNT_ATTR_RDONLY : 0);
	if (mnt < 0)
		return -errno;
	if (move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

static bool
opt_safe(const char *p)
{
	return !strpbrk(p, ",:\\");
}

/*
 * Mount an overlay of `diffs` (top first; the empty dir is added at the bottom) at
 * active/<id>/merged, with active/<id>/{upper,work} unless `readonly`.
 */
static int
mount_overlay(struct snap_store *s, struct kiln_strv *diffs, const char *id, bool readonly,
              struct kiln_err *err)
{
	_cleanup_free_ char *target = kiln_xasprintf("%s/active/%s/merged", s->path, id);
	unsigned long flags = readonly ? MS_RDONLY : 0;
	_cleanup_buf_ struct kiln_buf abs = KILN_BUF_INIT;
	kiln_buf_addstr(&abs, "lowerdir=");
	for (size_t i = 0; i < diffs->n; i++)
		kiln_buf_addf(&abs, "%s/diffs/%s/fs:", s->path, diffs->v[i]);
	kiln_buf_addf(&abs, "%s/empty", s->path);
	if (!readonly)
		kiln_buf_addf(&abs, ",upperdir=%s/active/%s/upper,workdir=%s/active/%s/work",
		              s->path, id, s->path, id);
	if (s->extra_opts)
		kiln_buf_addstr(&abs, "," OVERLAY_EXTRA);
	if (abs.len < MOUNT_DATA_MAX && opt_safe(s->path)) {
		if (mount("overlay", target, "overlay", flags, abs.buf) < 0)
			return kiln_err_set(err, errno, "mount overlay at %s", target);
		return 0;
	}

	_cleanup_buf_ struct kiln_buf rel = KILN_BUF_INIT;
	kiln_buf_addstr(&rel, "lowerdir=");
	for (size_t i = 0; i < diffs->n; i++) {
		char link[LINK_LEN + 1];
		int r = ensure_link(s, diffs->v[i], link, err);
		if (r < 0)
			return r;
		kiln_buf_addf(&rel, "%s:", link);
	}
	kiln_buf_addstr(&rel, "../empty");
	if (!readonly)
		kiln_buf_addf(&rel, ",upperdir=../active/%s/upper,workdir=../active/%s/work", id,
		              id);
	if (s->extra_opts)
		kiln_buf_addstr(&rel, "," OVERLAY_EXTRA);
	if (rel.len >= MOUNT_DATA_MAX) {
		int r = mount_fsconfig(s, diffs, id, readonly, target);
		if (r < 0)
			return kiln_err_set(err, -r, "mount overlay of %zu layers at %s", diffs->n,
			                    target);
		return 0;
	}
	_cleanup_free_ char *cwd = kiln_xasprintf("%s/l", s->path);
	int r = mount_from(cwd, target, flags, rel.buf);
	if (r < 0)
		return kiln_err_set(err, -r, "mount overlay of %zu layers at %s", diffs->n, target);
	return 0;
}

static void
unmount(const char *path)
{
	if (umount2(path, 0) < 0 && errno == EBUSY)
		umount2(path, MNT_DETACH);
}

/* ---- opening ---- */

static int
mkdir_p(const char *path)
{
	_cleanup_free_ char *p = kiln_xstrdup(path);
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*q = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static const char *const areas[] = {"tmp", "active", "diffs", "meta", "l", "empty", "pending"};

/* Remove what dead processes left behind; the caller is the store's only user. */
static int
clean_stale(struct snap_store *s, struct kiln_err *err)
{
	static const char *const stale[] = {"tmp", "active"};
	for (size_t a = 0; a < KILN_ARRAY_SIZE(stale); a++) {
		_cleanup_close_ int fd = open_dir_at(s, stale[a], err);
		if (fd < 0)
			return fd;
		_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
		int r = kiln_dir_names(fd, &names);
		if (r < 0)
			return kiln_err_set(err, -r, "list %s/%s", s->path, stale[a]);
		for (size_t i = 0; i < names.n; i++) {
			_cleanup_free_ char *m1 =
			        kiln_xasprintf("%s/%s/%s/merged", s->path, stale[a], names.v[i]);
			_cleanup_free_ char *m2 =
			        kiln_xasprintf("%s/%s/%s/m", s->path, stale[a], names.v[i]);
			umount2(m1, MNT_DETACH);
			umount2(m2, MNT_DETACH);
			r = kiln_rm_rf_at(fd, names.v[i]);
			if (r == -EBUSY)
				continue; /* still mounted (by another namespace?): leave it */
			if (r < 0)
				return kiln_err_set(err, -r, "remove stale %s/%s/%s", s->path,
				                    stale[a], names.v[i]);
		}
	}
	return 0;
}

/* Remove diffs/<diff> and its short link: out of diffs/ in one rename, then deleted.
 * False when the diff could not be moved out (it stays). */
static bool
drop_diff(struct snap_store *s, const char *diff)
{
	char link[LINK_LEN + 1];
	struct kiln_err e = KILN_ERR_INIT;
	if (ensure_link(s, diff, link, &e) == 0) {
		_cleanup_free_ char *lrel = kiln_xasprintf("l/%s", link);
		unlinkat(s->dirfd, lrel, 0);
	}
	kiln_err_release(&e);
	char rnd[17];
	snap_random_name(rnd, 16);
	_cleanup_free_ char *from = kiln_xasprintf("diffs/%s", diff);
	_cleanup_free_ char *to = kiln_xasprintf("tmp/rm-%s", rnd);
	if (renameat(s->dirfd, from, s->dirfd, to) < 0)
		return errno == ENOENT;
	remove_rel(s, to);
	return true;
}

/*
 * A process killed between publishing a commit's diff and its record, or between removing
 * a record and its diff, leaves a diff nobody names, and its pending/ marker: settle each
 * marker by the one record it names. Reads no other record, so opening costs the same
 * however many snapshots the store holds. Layer diffs are never marked: they are whole
 * and a later unpack of the same diff_id takes them.
 */
static int
gc_orphans(struct snap_store *s, struct kiln_err *err)
{
	_cleanup_close_ int pfd = open_dir_at(s, "pending", err);
	if (pfd < 0)
		return pfd;
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	int r = kiln_dir_names(pfd, &names);
	if (r < 0)
		return kiln_err_set(err, -r, "list %s/pending", s->path);
	for (size_t i = 0; i < names.n; i++) {
		const char *diff = names.v[i];
		_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
		if (kiln_str_has_prefix(diff, "c-") && snap_name_valid(diff) &&
		    read_file_at(pfd, diff, &b) == 0 && b.len > 1 && b.buf[b.len - 1] == '\n') {
			kiln_buf_setlen(&b, b.len - 1);
			struct meta m;
			struct kiln_err e = KILN_ERR_INIT;
			r = snap_name_valid(b.buf) ? meta_read(s, b.buf, &m, &e) : -EINVAL;
			kiln_err_release(&e);
			if (r == 0) {
				if (!kiln_str_eq(m.diff, diff))
					r = -ENOENT; /* the name went to another commit */
				meta_release(&m);
			}
			/* Any other failure (a corrupt record): unsure, keep the diff. */
			if (r == -ENOENT)
				drop_diff(s, diff);
		}
		unlinkat(pfd, diff, 0);
	}
	return 0;
}

static int
store_open_dir(const char *dir, enum snap_driver driver, struct snap_store **ret,
               struct kiln_err *err)
{
	int r = mkdir_p(dir);
	if (r < 0)
		return kiln_err_set(err, -r, "create snapshot store %s", dir);
	/* Absolute: mount targets are resolved by a helper thread in another cwd. */
	char *abs = realpath(dir, NULL);
	if (!abs)
		return kiln_err_set(err, errno, "resolve snapshot store %s", dir);
	struct snap_store *s = kiln_xcalloc(1, sizeof(*s));
	s->path = abs;
	s->driver = driver;
	s->users_fd = -1;
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		r = kiln_err_set(err, errno, "open snapshot store %s", dir);
		goto fail;
	}
	for (size_t i = 0; i < KILN_ARRAY_SIZE(areas); i++)
		if (mkdirat(s->dirfd, areas[i], 0700) < 0 && errno != EEXIST) {
			r = kiln_err_set(err, errno, "create %s/%s", dir, areas[i]);
			goto fail;
		}
	s->users_fd = openat(s->dirfd, "users", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->users_fd < 0) {
		r = kiln_err_set(err, errno, "open %s/users", dir);
		goto fail;
	}
	if (flock(s->users_fd, LOCK_EX | LOCK_NB) == 0) {
		int lfd = store_lock(s, err);
		if (lfd < 0) {
			r = lfd;
			goto fail;
		}
		r = clean_stale(s, err);
		if (r == 0)
			r = gc_orphans(s, err);
		close(lfd);
		if (r < 0)
			goto fail;
	}
	if (flock(s->users_fd, LOCK_SH) < 0) {
		r = kiln_err_set(err, errno, "lock %s/users", dir);
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	snap_store_free(s);
	return r;
}

static int
probe_in(struct snap_store *s, const char *dir)
{
	static const char *const sub[] = {"l1", "l2", "u", "w", "m"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(sub); i++) {
		_cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, sub[i]);
		if (mkdir(p, 0755) < 0)
			return -errno;
	}
	/* Layer diffs carry opaque xattrs, which need trusted.* support. */
	_cleanup_free_ char *l1 = kiln_xasprintf("%s/l1", dir);
	if (setxattr(l1, SNAP_OPAQUE_XATTR, "y", 1, 0) < 0)
		return -errno;
	_cleanup_free_ char *m = kiln_xasprintf("%s/m", dir);
	int r = 0;
	for (int extra = 1; extra >= 0; extra--) {
		_cleanup_free_ char *data =
		        kiln_xasprintf("lowerdir=%s/l1:%s/l2,upperdir=%s/u,workdir=%s/w%s", dir,
		                       dir, dir, dir, extra ? "," OVERLAY_EXTRA : "");
		r = mount("overlay", m, "overlay", 0, data) < 0 ? -errno : 0;
		if (r == 0) {
			s->extra_opts = extra;
			umount2(m, MNT_DETACH);
			break;
		}
	}
	return r;
}

/*
 * A successful probe is remembered in "probed" for the rest of the boot: the test mount's
 * unmount waits for an RCU grace period, 5-20 ms on a busy machine, a third of a no-change
 * rebuild. What decides the answer is the kernel (the same within a boot), the filesystem
 * under the store (the same while the store directory is the same inode) and who mounts
 * where (user, mount namespace), so the record holds the boot id, the store directory's
 * dev and inode, the euid and the mount namespace; anything else means probe again. Only successes
 * are kept: a failure falls back to the native store and is probed again next time, as before. NULL
 * when there is no boot id.
 */
static char *
probe_key(struct snap_store *s)
{
	char boot[64];
	_cleanup_close_ int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, boot, sizeof(boot) - 1);
	struct stat st, ns;
	if (n < 32 || fstat(s->dirfd, &st) < 0 || stat("/proc/self/ns/mnt", &ns) < 0)
		return NULL;
	boot[n] = '\0';
	boot[strcspn(boot, "\n")] = '\0';
	return kiln_xasprintf("kiln-overlay-probe 1 %s %llu %llu %u %llu", boot,
	                      (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
	                      (unsigned)geteuid(), (unsigned long long)ns.st_ino);
}

/* Can this store hold overlay diffs and mount them? Sets s->extra_opts. */
static int
probe_overlay(struct snap_store *s)
{
	_cleanup_free_ char *key = probe_key(s);
	if (key) {
		char got[256];
		_cleanup_close_ int fd =
		        openat(s->dirfd, "probed", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, got, sizeof(got) - 1);
		size_t klen = strlen(key);
		if (n > 0) {
			got[n] = '\0';
			if (strncmp(got, key, klen) == 0 &&
			    (kiln_str_eq(got + klen, " extra=0\n") ||
			     kiln_str_eq(got + klen, " extra=1\n"))) {
				s->extra_opts = got[klen + 7] == '1';
				return 0;
			}
		}
	}
	struct kiln_err e = KILN_ERR_INIT;
	_cleanup_free_ char *rel = NULL;
	int r = new_dir_in(s, "tmp", &rel, &e);
	kiln_err_release(&e);
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = kiln_xasprintf("%s/%s", s->path, rel);
	r = probe_in(s, dir);
	_cleanup_close_ int tfd = open_dir_at(s, "tmp", &e);
	kiln_err_release(&e);
	if (tfd >= 0)
		kiln_rm_rf_at(tfd, rel + strlen("tmp/"));
	if (r == 0 && key) {
		/* Best effort: without the record the next open probes again. */
		_cleanup_free_ char *rec = kiln_xasprintf("%s extra=%d\n", key, s->extra_opts);
		kiln_write_file_atomic_at(s->dirfd, "probed", rec, strlen(rec), 0644, &e);
		kiln_err_release(&e);
	}
	return r;
}

int
snap_store_open(const char *kiln_root, const struct snap_store_opts *opts, struct snap_store **ret,
                struct kiln_err *err)
{
	enum snap_driver want = opts ? opts->driver : SNAP_DRIVER_AUTO;
	struct snap_store *s = NULL;
	if (want != SNAP_DRIVER_NATIVE) {
		_cleanup_free_ char *dir = kiln_xasprintf("%s/snapshots/overlayfs", kiln_root);
		int r = store_open_dir(dir, SNAP_DRIVER_OVERLAY, &s, err);
		if (r < 0)
			return r;
		int probe = r = probe_overlay(s);
		if (r == 0) {
			*ret = s;
			return 0;
		}
		snap_store_free(s);
		s = NULL;
		if (want == SNAP_DRIVER_OVERLAY)
			return kiln_err_set(err, -r, "overlayfs is not usable under %s/snapshots",
			                    kiln_root);
		_cleanup_free_ char *ndir = kiln_xasprintf("%s/snapshots/native", kiln_root);
		r = store_open_dir(ndir, SNAP_DRIVER_NATIVE, &s, err);
		if (r < 0)
			return r;
		s->notice = kiln_xasprintf("overlayfs is not usable under %s/snapshots (%s); "
		                           "using the native snapshotter, which copies layers",
		                           kiln_root, strerror(-probe));
		*ret = s;
		return 0;
	}
	_cleanup_free_ char *dir = kiln_xasprintf("%s/snapshots/native", kiln_root);
	int r = store_open_dir(dir, SNAP_DRIVER_NATIVE, &s, err);
	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

void
snap_store_free(struct snap_store *s)
{
	if (!s)
		return;
	if (s->users_fd >= 0)
		close(s->users_fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->path);
	free(s->notice);
	free(s);
}

enum snap_driver
snap_store_driver(const struct snap_store *s)
{
	return s->driver;
}

const char *
snap_store_notice(const struct snap_store *s)
{
	return s->notice;
}

const char *
snap_store_path(const struct snap_store *s)
{
	return s->path;
}

bool
snap_exists(struct snap_store *s, const char *name)
{
	if (!snap_name_valid(name))
		return false;
	_cleanup_free_ char *rel = kiln_xasprintf("meta/%s", name);
	return faccessat(s->dirfd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int
snap_parent(struct snap_store *s, const char *name, char **ret_parent, struct kiln_err *err)
{
	struct meta m;
	int r = meta_read(s, name, &m, err);
	if (r < 0)
		return r;
	*ret_parent = TAKE_PTR(m.parent);
	meta_release(&m);
	return 0;
}

/* ---- layers ---- */

/* Build a tree in tmp/<build>/fs: a copy of `parent`'s tree when given (native), then
 * the layer applied. */
static int
build_layer(struct snap_store *s, const char *build, const char *parent_diff, int layer_fd,
            const char *media_type, const char *diff_id, struct kiln_err *err)
{
	_cleanup_free_ char *fsrel = kiln_xasprintf("%s/fs", build);
	if (mkdirat(s->dirfd, fsrel, 0755) < 0)
		return kiln_err_set(err, errno, "mkdir %s/%s", s->path, fsrel);
	_cleanup_close_ int fd = open_dir_at(s, fsrel, err);
	if (fd < 0)
		return fd;
	if (parent_diff) {
		_cleanup_free_ char *prel = kiln_xasprintf("diffs/%s/fs", parent_diff);
		_cleanup_close_ int pfd = open_dir_at(s, prel, err);
		if (pfd < 0)
			return pfd;
		int r = snap_copy_tree(pfd, fd, err);
		if (r < 0)
			return kiln_err_wrap(err, "copy parent tree");
	}
	struct snap_apply_opts o = {
	        .media_type = media_type,
	        .diff_id = diff_id,
	        .whiteouts = s->driver == SNAP_DRIVER_NATIVE ? SNAP_WHITEOUTS_DELETE
	                                                     : SNAP_WHITEOUTS_OVERLAY,
	};
	return snap_tar_apply_at(fd, layer_fd, &o, err);
}

int
snap_layer_apply(struct snap_store *s, const char *parent, int layer_fd, const char *media_type,
                 const char *diff_id, char **ret_name, struct kiln_err *err)
{
	if (!kiln_digest_valid(diff_id))
		return kiln_err_invalid(err, "invalid layer diff_id `%s`", diff_id);
	struct meta pm = {0};
	if (parent) {
		int r = meta_read(s, parent, &pm, err);
		if (r < 0)
			return kiln_err_wrap(err, "parent of layer %s", diff_id);
	}
	_cleanup_free_ char *pdiff = TAKE_PTR(pm.diff);
	meta_release(&pm);
	_cleanup_free_ char *name = snap_chain_id(parent, diff_id);
	if (snap_exists(s, name)) {
		*ret_name = TAKE_PTR(name);
		return 0;
	}

	/* Overlay diffs do not depend on the parent: one per diff_id. Native trees do. */
	const char *hex = strchr(s->driver == SNAP_DRIVER_OVERLAY ? diff_id : name, ':') + 1;
	_cleanup_free_ char *diff =
	        kiln_xasprintf("%s-%s", s->driver == SNAP_DRIVER_OVERLAY ? "layer" : "chain", hex);
	_cleanup_free_ char *drel = kiln_xasprintf("diffs/%s", diff);
	if (faccessat(s->dirfd, drel, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		_cleanup_free_ char *build = NULL;
		int r = new_dir_in(s, "tmp", &build, err);
		if (r < 0)
			return r;
		r = build_layer(s, build, s->driver == SNAP_DRIVER_NATIVE ? pdiff : NULL, layer_fd,
		                media_type, diff_id, err);
		if (r == 0)
			r = publish_diff(s, build, diff, err);
		if (r < 0)
			remove_rel(s, build);
		if (r < 0 && r != -EEXIST) /* EEXIST: another process unpacked it meanwhile */
			return kiln_err_wrap(err, "unpack layer %s", diff_id);
	}

	int lfd = store_lock(s, err);
	if (lfd < 0)
		return lfd;
	char link[LINK_LEN + 1];
	int r = ensure_link(s, diff, link, err);
	if (r == 0)
		r = meta_write(s, name, diff, parent, NULL, err);
	close(lfd);
	if (r < 0 && r != -EEXIST)
		return r;
	*ret_name = TAKE_PTR(name);
	return 0;
}

int
snap_layer_apply_path(struct snap_store *s, const char *parent, const char *layer_path,
                      const char *media_type, const char *diff_id, char **ret_name,
                      struct kiln_err *err)
{
	_cleanup_close_ int fd = open(layer_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_err_set(err, errno, "open layer %s", layer_path);
	return snap_layer_apply(s, parent, fd, media_type, diff_id, ret_name, err);
}

/* Whether any active snapshot or view in active/ was started over `name` or is being
 * cloned from it. */
static int
in_active_use(struct snap_store *s, const char *name, struct kiln_err *err)
{
	_cleanup_close_ int afd = open_dir_at(s, "active", err);
	if (afd < 0)
		return afd;
	_cleanup_strv_ struct kiln_strv ids = KILN_STRV_INIT;
	int r = kiln_dir_names(afd, &ids);
	if (r < 0)
		return kiln_err_set(err, -r, "list %s/active", s->path);
	for (size_t i = 0; i < ids.n; i++) {
		static const char *const uses[] = {"parent", "like"};
		for (size_t u = 0; u < KILN_ARRAY_SIZE(uses); u++) {
			_cleanup_free_ char *rel = kiln_xasprintf("%s/%s", ids.v[i], uses[u]);
			_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
			if (read_file_at(afd, rel, &b) == 0 && kiln_str_eq(b.buf, name))
				return 1;
		}
	}
	return 0;
}

int
snap_remove(struct snap_store *s, const char *name, struct kiln_err *err)
{
	int lfd = store_lock(s, err);
	if (lfd < 0)
		return lfd;
	struct meta m = {0};
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	_cleanup_close_ int mfd = -1;
	bool shared = false;
	int r = meta_read(s, name, &m, err);
	if (r < 0)
		goto out;
	r = in_active_use(s, name, err);
	if (r > 0)
		r = kiln_err_set(err, EBUSY, "remove snapshot `%s`: in use by an active snapshot",
		                 name);
	if (r < 0)
		goto out;
	mfd = open_dir_at(s, "meta", err);
	if (mfd < 0) {
		r = mfd;
		goto out;
	}
	r = kiln_dir_names(mfd, &names);
	if (r < 0) {
		r = kiln_err_set(err, -r, "list %s/meta", s->path);
		goto out;
	}
	for (size_t i = 0; i < names.n; i++) {
		if (kiln_str_eq(names.v[i], name))
			continue;
		struct meta o;
		r = meta_read(s, names.v[i], &o, err);
		if (r < 0)
			goto out;
		bool child = o.parent && kiln_str_eq(o.parent, name);
		shared |= kiln_str_eq(o.diff, m.diff);
		meta_release(&o);
		if (child) {
			r = kiln_err_set(err, EBUSY, "remove snapshot `%s`: `%s` is built on it",
			                 name, names.v[i]);
			goto out;
		}
	}
	/* A commit diff is marked until it is out of diffs/, so that a death between the
	 * record and the diff leaves the next lone open something to find. */
	bool marked = !shared && kiln_str_has_prefix(m.diff, "c-");
	if (marked && (r = pending_begin(s, m.diff, name, err)) < 0)
		goto out;
	if (unlinkat(mfd, name, 0) < 0) {
		r = kiln_err_set(err, errno, "remove snapshot record `%s`", name);
		if (marked)
			pending_end(s, m.diff);
		goto out;
	}
	r = 0;
	if (!shared) {
		/* Out of diffs/ in one rename, then deleted at leisure (or by the next
		 * lone open if this process dies first). */
		if (drop_diff(s, m.diff) && marked)
			pending_end(s, m.diff);
	}
out:
	close(lfd);
	meta_release(&m);
	return r;
}

/* ---- active snapshots ---- */

static struct snap_mount *
mount_new(struct snap_store *s, char *id_rel)
{
	struct snap_mount *m = kiln_xcalloc(1, sizeof(*m));
	m->s = s;
	kiln_buf_init(&m->labels, 0);
	m->id = kiln_xstrdup(id_rel + strlen("active/"));
	free(id_rel);
	return m;
}

static int
mkdirs_in(struct snap_store *s, const char *id, const char *const *names, size_t n,
          struct kiln_err *err)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *rel = kiln_xasprintf("active/%s/%s", id, names[i]);
		if (mkdirat(s->dirfd, rel, 0755) < 0)
			return kiln_err_set(err, errno, "mkdir %s/%s", s->path, rel);
	}
	return 0;
}

/*
 * Start an active snapshot (or view) over `parent`: resolve its chain and create
 * active/<id> recording the parent, under the store lock, so snap_remove either sees
 * the record or has already removed the parent (and this fails).
 */
static int
active_begin(struct snap_store *s, const char *parent, struct kiln_strv *diffs,
             struct snap_mount **ret, struct kiln_err *err)
{
	int lfd = store_lock(s, err);
	if (lfd < 0)
		return lfd;
	char *id_rel = NULL;
	int r = chain_diffs(s, parent, diffs, err);
	if (r == 0)
		r = new_dir_in(s, "active", &id_rel, err);
	if (r < 0) {
		close(lfd);
		return r;
	}
	struct snap_mount *m = mount_new(s, id_rel);
	_cleanup_free_ char *parent_rel = kiln_xasprintf("active/%s/parent", m->id);
	r = write_file_at(s->dirfd, parent_rel, parent ? parent : "", false);
	close(lfd);
	if (r < 0) {
		snap_mount_release(m);
		return kiln_err_set(err, -r, "write %s/%s", s->path, parent_rel);
	}
	*ret = m;
	return 0;
}

/* An overlay upper dir that starts as the hard-link clone of committed snapshot `like`'s
 * diff, before the mount (overlayfs must not see its upper change under it). */
static int
upper_clone(struct snap_store *s, const char *id, const char *parent, const char *like,
            struct kiln_err *err)
{
	/* Named in active/<id>/like under the store lock, so snap_remove refuses `like` until
	 * this snapshot is committed or dropped: a clone of a tree being removed would miss
	 * files without noticing. */
	int lock = store_lock(s, err);
	if (lock < 0)
		return lock;
	struct meta lm = {0};
	int r = meta_read(s, like, &lm, err);
	if (r == 0) {
		_cleanup_free_ char *like_rel = kiln_xasprintf("active/%s/like", id);
		r = write_file_at(s->dirfd, like_rel, like, false);
		if (r < 0)
			kiln_err_set(err, -r, "write %s/%s", s->path, like_rel);
		if (r < 0)
			meta_release(&lm);
	}
	close(lock);
	if (r < 0)
		return r;
	if (!kiln_str_eq(lm.parent ? lm.parent : "", parent ? parent : "")) {
		meta_release(&lm);
		return kiln_err_invalid(err, "clone `%s`: not on the same parent", like);
	}
	_cleanup_free_ char *lrel = kiln_xasprintf("diffs/%s/fs", lm.diff);
	_cleanup_free_ char *urel = kiln_xasprintf("active/%s/upper", id);
	meta_release(&lm);
	_cleanup_close_ int lfd = open_dir_at(s, lrel, err);
	if (lfd < 0)
		return lfd;
	_cleanup_close_ int ufd = open_dir_at(s, urel, err);
	if (ufd < 0)
		return ufd;
	r = snap_clone_tree_at(lfd, ufd, err);
	return r < 0 ? kiln_err_wrap(err, "clone `%s`", like) : 0;
}

static int
prepare(struct snap_store *s, const char *parent, const char *like, struct snap_mount **ret,
        struct kiln_err *err)
{
	_cleanup_strv_ struct kiln_strv diffs = KILN_STRV_INIT;
	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	if (like && s->driver == SNAP_DRIVER_NATIVE)
		return kiln_err_set(err, EOPNOTSUPP, "clone: the native driver has no upper dirs");
	int r = active_begin(s, parent, &diffs, &m, err);
	if (r < 0)
		return kiln_err_wrap(err, "prepare snapshot");
	if (s->driver == SNAP_DRIVER_NATIVE) {
		static const char *const sub[] = {"fs"};
		r = mkdirs_in(s, m->id, sub, 1, err);
		if (r < 0)
			return r;
		m->path = kiln_xasprintf("%s/active/%s/fs", s->path, m->id);
		m->upper = kiln_xstrdup(m->path);
		if (diffs.n) {
			_cleanup_free_ char *prel = kiln_xasprintf("diffs/%s/fs", diffs.v[0]);
			_cleanup_free_ char *frel = kiln_xasprintf("active/%s/fs", m->id);
			_cleanup_close_ int pfd = open_dir_at(s, prel, err);
			_cleanup_close_ int ffd = pfd < 0 ? -1 : open_dir_at(s, frel, err);
			if (ffd < 0)
				return -err->code;
			r = snap_copy_tree(pfd, ffd, err);
			if (r < 0)
				return kiln_err_wrap(err, "prepare snapshot on `%s`", parent);
		}
		*ret = TAKE_PTR(m);
		return 0;
	}
	static const char *const sub[] = {"upper", "work", "merged"};
	r = mkdirs_in(s, m->id, sub, KILN_ARRAY_SIZE(sub), err);
	if (r < 0)
		return r;
	if (like && (r = upper_clone(s, m->id, parent, like, err)) < 0)
		return r;
	r = mount_overlay(s, &diffs, m->id, false, err);
	if (r < 0)
		return r;
	m->mounted = true;
	m->path = kiln_xasprintf("%s/active/%s/merged", s->path, m->id);
	m->upper = kiln_xasprintf("%s/active/%s/upper", s->path, m->id);
	*ret = TAKE_PTR(m);
	return 0;
}

int
snap_prepare(struct snap_store *s, const char *parent, struct snap_mount **ret,
             struct kiln_err *err)
{
	return prepare(s, parent, NULL, ret, err);
}

int
snap_prepare_clone(struct snap_store *s, const char *parent, const char *like,
                   struct snap_mount **ret, struct kiln_err *err)
{
	if (!like)
		return kiln_err_invalid(err, "clone: no snapshot to clone");
	return prepare(s, parent, like, ret, err);
}

int
snap_view(struct snap_store *s, const char *name, struct snap_mount **ret, struct kiln_err *err)
{
	_cleanup_strv_ struct kiln_strv diffs = KILN_STRV_INIT;
	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	if (!name)
		return kiln_err_invalid(err, "view snapshot: no name");
	int r = active_begin(s, name, &diffs, &m, err);
	if (r < 0)
		return kiln_err_wrap(err, "view snapshot");
	m->readonly = true;
	if (s->driver == SNAP_DRIVER_NATIVE) {
		/* The committed tree itself; active/<id> only records that it is in use. */
		m->path = kiln_xasprintf("%s/diffs/%s/fs", s->path, diffs.v[0]);
		*ret = TAKE_PTR(m);
		return 0;
	}
	static const char *const sub[] = {"merged"};
	r = mkdirs_in(s, m->id, sub, 1, err);
	if (r < 0)
		return r;
	r = mount_overlay(s, &diffs, m->id, true, err);
	if (r < 0)
		return r;
	m->mounted = true;
	m->path = kiln_xasprintf("%s/active/%s/merged", s->path, m->id);
	*ret = TAKE_PTR(m);
	return 0;
}

const char *
snap_mount_path(const struct snap_mount *m)
{
	return m->path;
}

const char *
snap_mount_upper(const struct snap_mount *m)
{
	return m->upper;
}

int
snap_commit(struct snap_mount *m, const char *name, struct kiln_err *err)
{
	struct snap_store *s = m->s;
	if (m->readonly || m->committed)
		return kiln_err_invalid(err, "commit `%s`: not an active snapshot", name);
	if (!snap_name_valid(name))
		return kiln_err_invalid(err, "invalid snapshot name `%s`", name);
	if (snap_exists(s, name))
		return kiln_err_set(err, EEXIST, "commit: snapshot `%s` exists", name);
	/* The parent was recorded at prepare time. */
	const char *parent = NULL;
	_cleanup_free_ char *prel = kiln_xasprintf("active/%s/parent", m->id);
	_cleanup_buf_ struct kiln_buf pb = KILN_BUF_INIT;
	if (read_file_at(s->dirfd, prel, &pb) == 0 && pb.len)
		parent = pb.buf;

	if (m->mounted) {
		unmount(m->path);
		m->mounted = false;
	}
	_cleanup_free_ char *build = NULL;
	int r = new_dir_in(s, "tmp", &build, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *from = kiln_xasprintf(
	        "active/%s/%s", m->id, s->driver == SNAP_DRIVER_NATIVE ? "fs" : "upper");
	_cleanup_free_ char *to = kiln_xasprintf("%s/fs", build);
	if (renameat(s->dirfd, from, s->dirfd, to) < 0) {
		r = kiln_err_set(err, errno, "commit `%s`: move upper", name);
		remove_rel(s, build);
		return r;
	}
	char rnd[17];
	snap_random_name(rnd, 16);
	_cleanup_free_ char *diff = kiln_xasprintf("c-%s", rnd);
	r = pending_begin(s, diff, name, err);
	if (r == 0)
		r = publish_diff(s, build, diff, err);
	if (r < 0) {
		remove_rel(s, build);
		pending_end(s, diff);
		return r == -EEXIST ? kiln_err_set(err, EEXIST, "commit: diff %s exists", diff) : r;
	}
	m->committed = true;
	int lfd = store_lock(s, err);
	if (lfd < 0)
		return lfd; /* the diff stays marked: the next lone open removes it */
	char link[LINK_LEN + 1];
	r = ensure_link(s, diff, link, err);
	if (r == 0)
		r = meta_write(s, name, diff, parent, m->labels.buf, err);
	close(lfd);
	if (r < 0) {
		_cleanup_free_ char *drel = kiln_xasprintf("diffs/%s", diff);
		_cleanup_free_ char *lrel = kiln_xasprintf("l/%s", link);
		unlinkat(s->dirfd, lrel, 0);
		remove_rel(s, drel);
		pending_end(s, diff);
		if (r == -EEXIST)
			return kiln_err_set(err, EEXIST, "commit: snapshot `%s` exists", name);
		return r;
	}
	pending_end(s, diff);
	return 0;
}

void
snap_mount_release(struct snap_mount *m)
{
	if (!m)
		return;
	if (m->mounted)
		umount2(m->path, MNT_DETACH);
	if (m->id) {
		_cleanup_free_ char *rel = kiln_xasprintf("active/%s", m->id);
		remove_rel(m->s, rel);
	}
	free(m->id);
	free(m->path);
	free(m->upper);
	kiln_buf_release(&m->labels);
	free(m);
}

static bool
label_key_valid(const char *key)
{
	if (!*key || strlen(key) > 64)
		return false;
	for (const char *c = key; *c; c++)
		if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '.' ||
		      *c == '-'))
			return false;
	return true;
}

int
snap_mount_set_label(struct snap_mount *m, const char *key, const char *value, struct kiln_err *err)
{
	if (m->readonly || m->committed)
		return kiln_err_invalid(err, "label %s: not an active snapshot", key);
	if (!label_key_valid(key) || strchr(value, '\n'))
		return kiln_err_invalid(err, "invalid snapshot label `%s`", key);
	kiln_buf_addf(&m->labels, "label %s %s\n", key, value);
	return 0;
}

int
snap_label(struct snap_store *s, const char *name, const char *key, char **ret,
           struct kiln_err *err)
{
	*ret = NULL;
	if (!snap_name_valid(name))
		return kiln_err_invalid(err, "invalid snapshot name `%s`", name);
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	_cleanup_free_ char *rel = kiln_xasprintf("meta/%s", name);
	int r = read_file_at(s->dirfd, rel, &b);
	if (r < 0)
		return kiln_err_set(err, -r, "snapshot `%s`", name);
	size_t klen = strlen(key);
	char *save = NULL;
	for (char *line = strtok_r(b.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* The last one set wins. */
		if (kiln_str_has_prefix(line, "label ") && strncmp(line + 6, key, klen) == 0 &&
		    line[6 + klen] == ' ') {
			free(*ret);
			*ret = kiln_xstrdup(line + 7 + klen);
		}
	}
	return *ret ? 0 : -ENOENT;
}

/* ---- diffs ---- */

int
snap_diff_walk(struct snap_store *s, const char *name, snap_walk_fn fn, void *data,
               struct kiln_err *err)
{
	struct meta m;
	int r = meta_read(s, name, &m, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *rel = kiln_xasprintf("diffs/%s/fs", m.diff);
	_cleanup_close_ int fd = open_dir_at(s, rel, err);
	if (fd < 0 || s->driver == SNAP_DRIVER_OVERLAY) {
		meta_release(&m);
		return fd < 0 ? fd : snap_upper_walk_at(fd, fn, data, err);
	}
	_cleanup_close_ int pfd = -1;
	if (m.parent) {
		struct meta pm;
		r = meta_read(s, m.parent, &pm, err);
		if (r == 0) {
			_cleanup_free_ char *prel = kiln_xasprintf("diffs/%s/fs", pm.diff);
			pfd = open_dir_at(s, prel, err);
			r = pfd < 0 ? pfd : 0;
			meta_release(&pm);
		}
	}
	meta_release(&m);
	if (r < 0)
		return r;
	return snap_native_diff_walk(pfd, fd, fn, data, err);
}
